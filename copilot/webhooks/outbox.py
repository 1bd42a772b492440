"""The transactional outbox: a delivery row for each subscription an event matches, written in the event's
own transaction, so an event that commits is delivered (by this server or another, after a crash too) and
one rolled back is never sent. The dispatcher (``copilot.webhooks.dispatcher``) sends what is due."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from copilot.settings import Settings
from copilot.storage.store import DeliveryRow, EventRow, SessionRow, Store, WebhookRow
from copilot.webhooks.dispatcher import Dispatcher
from copilot.webhooks.views import WebhookEvent


def hook_event(kind: str, data: dict[str, Any]) -> WebhookEvent | None:
    """The webhook event an engine event is, if any."""
    if kind == "approval_requested":
        return "awaiting_approval"
    if kind == "step_finished" or kind == "step_failed":
        return kind
    if kind == "session_state" and data.get("state") == "done":
        return "done"
    return None


class Outbox:
    """The engine's side of webhooks; off (nothing written, nothing sent) while COPILOT_WEBHOOK_URLS is empty."""

    def __init__(self, store: Store, settings: Settings, runner: str) -> None:
        self.dispatcher = Dispatcher(store, settings, runner) if settings.webhook_prefixes() else None

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()

    def stop(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()

    def enqueue(self, db: Session, session: SessionRow, row: EventRow) -> None:
        """In the caller's transaction: one pending delivery per active subscription of the session, or of
        its owner, that asks for this event; the dispatcher is woken once the transaction commits."""
        dispatcher = self.dispatcher
        hook = hook_event(row.type, row.data) if dispatcher is not None else None
        if dispatcher is None or hook is None:
            return
        subscribed = (WebhookRow.owner == session.owner, WebhookRow.active.is_(True),
                      or_(WebhookRow.session_id.is_(None), WebhookRow.session_id == session.id))  # fmt: skip
        with db.no_autoflush:  # the engine's pending changes are not this query's business
            subscriptions = [s for s in db.scalars(select(WebhookRow).where(*subscribed)) if hook in s.events]
        for subscription in subscriptions:
            delivery = uuid.uuid4().hex
            body = {"id": delivery, "event": hook, "session_id": session.id, "seq": row.seq,
                    "at": row.at.isoformat(), "data": row.data}  # fmt: skip
            db.add(DeliveryRow(id=delivery, subscription_id=subscription.id, session_id=session.id, event=hook,
                               seq=row.seq, body=body, status="pending", attempts=[], next_at=row.at))  # fmt: skip
        if subscriptions:
            event.listen(db, "after_commit", lambda _: dispatcher.wake(), once=True)
