"""Subscriptions as their owner manages them: make one (for a session or for every session of the owner),
list, delete, and read a subscription's delivery log. Another owner's look like none (:class:`NotFound`)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from copilot.errors import NotFound, UrlNotAllowed
from copilot.storage.store import DeliveryRow, SessionRow, WebhookRow
from copilot.webhooks.urls import Target, parse_url
from copilot.webhooks.views import CreatedWebhook, DeliveryView, WebhookEvent, WebhookView

ALLOW_LIST = "COPILOT_WEBHOOK_URLS"


def check_url(url: str, prefixes: Sequence[Target]) -> None:
    """Refuse a URL that is not under one of the allow-list's prefixes, saying why and what to do."""
    if not prefixes:
        raise UrlNotAllowed(f"webhooks are off on this server: {ALLOW_LIST} is empty; its operator can turn them "
                            "on by listing the URL prefixes webhooks may go to")  # fmt: skip
    try:
        target = parse_url(url)
    except ValueError as exc:
        reason = str(exc)
    else:
        if any(prefix.covers(target) for prefix in prefixes):
            return
        reason = "its scheme, host, port or path is under none of the allowed prefixes"
    raise UrlNotAllowed(f"{url!r} is not an allowed webhook URL ({reason}): use a URL under one of the "
                        f"prefixes in the server's {ALLOW_LIST}, or ask its operator to add one")  # fmt: skip


def create(
    db: Session, owner: str, url: str, events: list[WebhookEvent], prefixes: Sequence[Target],
    session_id: str | None = None,
) -> CreatedWebhook:  # fmt: skip
    """A new subscription with a fresh secret, for ``session_id`` or (None) every session of ``owner``."""
    if session_id is not None:
        _owned_session(db, session_id, owner)
    check_url(url, prefixes)
    row = WebhookRow(id=uuid.uuid4().hex, owner=owner, session_id=session_id, url=url,
                     secret=secrets.token_urlsafe(32), events=list(events))  # fmt: skip
    db.add(row)
    db.flush()
    return CreatedWebhook(**_view(row).model_dump(), secret=row.secret)


def webhook_list(db: Session, owner: str, offset: int = 0, limit: int | None = None) -> list[WebhookView]:
    """The owner's subscriptions, for one session or all, oldest first; deleted ones stay, marked inactive,
    so the list only grows at its end and a page never shifts."""
    query = select(WebhookRow).where(WebhookRow.owner == owner).order_by(WebhookRow.created_at, WebhookRow.id)
    return [_view(row) for row in db.scalars(query.offset(offset).limit(limit))]


def delete(db: Session, owner: str, webhook_id: str) -> None:
    """Deactivate a subscription; its pending deliveries are cancelled (a POST under way is not recorded)."""
    row = _owned_webhook(db, webhook_id, owner)
    row.active = False
    pending = (DeliveryRow.subscription_id == row.id, DeliveryRow.status == "pending")
    db.execute(update(DeliveryRow).where(*pending).values(status="cancelled", next_at=None))


def delivery_log(
    db: Session, owner: str, webhook_id: str, offset: int = 0, limit: int | None = None
) -> list[DeliveryView]:
    """The deliveries of a subscription, oldest first, with each attempt's outcome."""
    row = _owned_webhook(db, webhook_id, owner)
    query = select(DeliveryRow).where(DeliveryRow.subscription_id == row.id)
    query = query.order_by(DeliveryRow.created_at, DeliveryRow.seq, DeliveryRow.id).offset(offset).limit(limit)
    return [DeliveryView.model_validate(d, from_attributes=True) for d in db.scalars(query)]


def _view(row: WebhookRow) -> WebhookView:
    return WebhookView(id=row.id, url=row.url, events=row.events, session_id=row.session_id,  # type: ignore[arg-type]
                       created_at=row.created_at, active=row.active)  # fmt: skip


def _owned_session(db: Session, session_id: str, owner: str) -> SessionRow:
    session = db.get(SessionRow, session_id) if len(session_id) <= 32 else None
    if session is None or session.owner != owner:
        raise NotFound(f"no session {session_id!r}")
    return session


def _owned_webhook(db: Session, webhook_id: str, owner: str) -> WebhookRow:
    row = db.get(WebhookRow, webhook_id) if len(webhook_id) <= 32 else None
    if row is None or row.owner != owner or not row.active:
        raise NotFound(f"no webhook {webhook_id!r}")
    return row
