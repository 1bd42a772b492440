"""What the API shows of webhooks: subscriptions (their secret only once, when made) and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

#: What a subscription can ask for: a step waits at the gate (the engine's ``approval_requested``), a step
#: finished or failed, the session is done.
WebhookEvent = Literal["awaiting_approval", "step_finished", "step_failed", "done"]
#: In the store a delivery may also be ``cancelled`` (its subscription was deleted), but then its log is gone.
DeliveryStatus = Literal["pending", "delivered", "failed", "refused"]


class WebhookView(BaseModel):
    id: str
    url: str
    events: list[WebhookEvent]
    session_id: str | None = Field(
        description="The one session it is for; null: every session of its token, later ones included."
    )
    created_at: datetime
    active: bool = Field(True, description="False once deleted: nothing more is sent for it.")


class CreatedWebhook(WebhookView):
    secret: str = Field(
        description="The key of the Copilot-Signature HMAC on each POST. Shown only in this answer: keep it now."
    )


class AttemptView(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when none came back.")
    error: str | None = Field(description="A network error or time-out, or why the status counts as a failure.")
    duration_ms: float


class DeliveryView(BaseModel):
    id: str = Field(description="Sent as the Copilot-Delivery header and the body's id: the same on every retry.")
    event: WebhookEvent
    session_id: str
    seq: int = Field(description="The event's sequence number in its session.")
    status: DeliveryStatus = Field(
        description="pending (to be sent or retried), delivered (a 2xx came back), failed (another status, or "
        "every attempt failed), refused (its URL is no longer in COPILOT_WEBHOOK_URLS; not sent)."
    )
    attempts: list[AttemptView]
    next_at: datetime | None = Field(description="When a pending delivery is due next.")
    created_at: datetime
