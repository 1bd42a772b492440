"""Webhooks: subscribe a URL to a session's events, or to those of every session of this token, instead of
holding a WebSocket open; list and delete subscriptions, and read what was delivered."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from copilot.api.contract import IN_FLIGHT
from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.idempotency import OnceDep
from copilot.api.paging import WindowDep
from copilot.api.schemas import DeliveriesPage, WebhookRequest, WebhooksPage
from copilot.session.engine import Engine
from copilot.webhooks import subscriptions
from copilot.webhooks.views import CreatedWebhook, DeliveryView, WebhookView

router = APIRouter(tags=["webhooks"])
REFUSED_URL: dict[int | str, dict[str, Any]] = {
    422: {"description": "A field is invalid, or the URL is not under COPILOT_WEBHOOK_URLS (or webhooks are off)."}
}


@router.post("/api/webhooks", status_code=status.HTTP_201_CREATED, response_model=CreatedWebhook,
             responses=REFUSED_URL | IN_FLIGHT)  # fmt: skip
def create_owner_webhook(
    body: WebhookRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> CreatedWebhook | Response:
    """POST the chosen events of every session of this token, later ones included, to `url`. The answer holds
    the subscription's `secret`, which signs each POST (`Copilot-Signature`); it is never shown again, except
    to a retry with the same `Idempotency-Key` (which makes no second subscription)."""
    return once(("webhook", body), lambda: _create(engine, owner, body, None), status.HTTP_201_CREATED)


@router.post("/api/sessions/{session_id}/webhooks", status_code=status.HTTP_201_CREATED,
             response_model=CreatedWebhook, responses=REFUSED_URL | IN_FLIGHT)  # fmt: skip
def create_session_webhook(
    session_id: str, body: WebhookRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> CreatedWebhook | Response:
    """POST the chosen events of this session to `url`; the answer holds the `secret`, shown only now."""
    return once(
        ("webhook", session_id, body), lambda: _create(engine, owner, body, session_id), status.HTTP_201_CREATED
    )


def _create(engine: Engine, owner: str, body: WebhookRequest, session_id: str | None) -> CreatedWebhook:
    with engine.store.transaction() as db:
        prefixes = engine.settings.webhook_prefixes()
        return subscriptions.create(db, owner, body.url, body.events, prefixes, session_id=session_id)


@router.get("/api/webhooks")
def list_webhooks(engine: EngineDep, owner: OwnerDep, window: WindowDep) -> WebhooksPage:
    """This token's subscriptions, for one session or for all, oldest first (without their secrets); deleted
    ones stay listed, inactive."""

    def read(offset: int, limit: int) -> list[WebhookView]:
        with engine.store.transaction() as db:
            return subscriptions.webhook_list(db, owner, offset, limit)

    return window.page(WebhooksPage, read)


@router.delete("/api/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: str, engine: EngineDep, owner: OwnerDep) -> None:
    """Stop the subscription: nothing more is sent, including deliveries still pending or being retried."""
    with engine.store.transaction() as db:
        subscriptions.delete(db, owner, webhook_id)


@router.get("/api/webhooks/{webhook_id}/deliveries")
def list_deliveries(webhook_id: str, engine: EngineDep, owner: OwnerDep, window: WindowDep) -> DeliveriesPage:
    """The subscription's delivery log, oldest first: each event, its status, every attempt (time, the
    receiver's status or the error, duration) and when a pending one is due next."""

    def read(offset: int, limit: int) -> list[DeliveryView]:
        with engine.store.transaction() as db:
            return subscriptions.delivery_log(db, owner, webhook_id, offset, limit)

    return window.page(DeliveriesPage, read)
