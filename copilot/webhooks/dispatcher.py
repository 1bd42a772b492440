"""Send the outbox: a thread that claims due deliveries and POSTs them, signed, with retries and back-off.

Deliveries to one subscription go one at a time, in the order of their events: one waits while an earlier
one is pending (being sent, or waiting to be retried), so a receiver sees a session's events in ``seq`` order
unless one of them failed for good. Different subscriptions are served at once, by ``SENDERS`` threads.

A delivery is claimed with one conditional UPDATE (``claimed_until`` in the future) before it is sent, so two
servers on one database never send the same attempt; a claim its server did not release (it died mid-send)
expires after ``claim_s`` and the delivery is tried again. Delivery is therefore at least once: a receiver
drops repeats by the ``Copilot-Delivery`` id. The URL is checked against the allow-list again before each
POST, redirects are never followed (a 3xx fails the delivery: it could point anywhere), and proxies from the
environment are not used.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from importlib.metadata import version
from typing import Any, Literal

import httpx
from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from copilot.settings import Settings
from copilot.storage.store import DeliveryRow, Store, WebhookRow, now
from copilot.webhooks.signing import signature_header
from copilot.webhooks.urls import allowed

log = logging.getLogger(__name__)
SENDERS = 4  # POSTs at once, so that one slow receiver does not hold up the others
POLL_S = 1.0  # how often the store is read for deliveries that other servers wrote, or whose claim expired
BACKOFF_CAP_S = 600.0
RETRIED_STATUSES = frozenset({408, 429})
Verdict = Literal["delivered", "retry", "failed"]


def verdict(status_code: int | None, attempt: int, attempts: int) -> Verdict:
    """What the ``attempt``-th POST's answer means: 2xx is delivered; no answer (a network error or a
    time-out), 5xx, 408 and 429 are retried while attempts are left; any other status fails at once."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    transient = status_code is None or status_code >= 500 or status_code in RETRIED_STATUSES
    return "retry" if transient and attempt < attempts else "failed"


def backoff(attempt: int, first_s: float) -> float:
    """Seconds to wait after the ``attempt``-th failed POST: ``first_s``, doubled each time, capped."""
    return min(first_s * 2 ** (attempt - 1), BACKOFF_CAP_S)


class Dispatcher:
    def __init__(self, store: Store, settings: Settings, runner: str) -> None:
        self.store, self.runner = store, runner
        self.prefixes = settings.webhook_prefixes()
        self.attempts, self.backoff_s = settings.webhook_attempts, settings.webhook_backoff_s
        self.claim_s = 2 * settings.webhook_timeout_s + 5.0  # a send and its record take well under this
        self.timeout_s = settings.webhook_timeout_s
        self._client: httpx.Client | None = None
        self._senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhook")
        self._slots = threading.BoundedSemaphore(SENDERS)
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        agent = {"User-Agent": f"datacopilot/{version('datacopilot')} webhooks"}
        self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False, trust_env=False, headers=agent)
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming; a POST under way may finish (else its claim expires and it is sent again)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S)
        self._senders.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Look for due deliveries now (a transaction that wrote some has committed)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the round: a wake during it starts the next one at once
            try:
                wait = self.dispatch()
            except Exception:  # a busy or unreachable store: the next round tries again
                log.exception("webhook dispatch failed")
                wait = POLL_S
            self._wake.wait(wait)

    def dispatch(self) -> float:
        """Claim what is due, as many as there are free senders, and hand each to a sender; return how long
        to wait before the next round."""
        at = now()
        claimable = DeliveryRow.status == "pending", _unclaimed(at)
        with self.store.transaction() as db:
            due = db.scalars(select(DeliveryRow.id).where(*claimable, DeliveryRow.next_at <= at, ~_behind())
                             .order_by(DeliveryRow.next_at, DeliveryRow.created_at).limit(SENDERS)).all()  # fmt: skip
        for delivery_id in due:
            if not self._slots.acquire(blocking=False):
                return POLL_S  # every sender is busy; each wakes this loop when it is done
            if self._claim(delivery_id, at):
                self._senders.submit(self._send, delivery_id)
            else:
                self._slots.release()
        with self.store.transaction() as db:
            upcoming = db.scalar(select(func.min(DeliveryRow.next_at)).where(*claimable, DeliveryRow.next_at > at))
        return POLL_S if upcoming is None else min(POLL_S, max((upcoming - now()).total_seconds(), 0.0))

    def _claim(self, delivery_id: str, at: datetime) -> bool:
        claim = (update(DeliveryRow).where(DeliveryRow.id == delivery_id, DeliveryRow.status == "pending",
                                           DeliveryRow.next_at <= at, _unclaimed(at))
                 .values(claimed_by=self.runner, claimed_until=at + timedelta(seconds=self.claim_s)))  # fmt: skip
        with self.store.transaction() as db:
            return db.scalars(claim.returning(DeliveryRow.id)).first() is not None

    def _send(self, delivery_id: str) -> None:
        """Sender thread: one attempt of one claimed delivery, recorded; refused if its URL is no longer allowed."""
        try:
            with self.store.transaction() as db:
                delivery = db.get_one(DeliveryRow, delivery_id)
                subscription = db.get_one(WebhookRow, delivery.subscription_id)
                url, secret, body, attempts = subscription.url, subscription.secret, delivery.body, delivery.attempts
            if not allowed(url, self.prefixes):
                log.warning("webhook delivery %s refused: %s is no longer in COPILOT_WEBHOOK_URLS", delivery_id, url)
                self._record(delivery_id, "refused", attempts, None)
                return
            attempt = self._post(url, secret, body)
            attempts = [*attempts, attempt]
            outcome = verdict(attempt["status_code"], len(attempts), self.attempts)
            if outcome == "retry":
                due = now() + timedelta(seconds=backoff(len(attempts), self.backoff_s))
                self._record(delivery_id, "pending", attempts, due)
            else:
                self._record(delivery_id, outcome, attempts, None)
        except Exception:  # its claim expires and it is tried again
            log.exception("webhook delivery %s could not be sent", delivery_id)
        finally:
            self._slots.release()
            self._wake.set()

    def _post(self, url: str, secret: str, body: dict[str, Any]) -> dict[str, Any]:
        """One POST; the attempt as the delivery log keeps it. The receiver's body is not read."""
        assert self._client is not None, "started"
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Copilot-Event": body["event"], "Copilot-Delivery": body["id"],
                   "Copilot-Signature": signature_header(secret, payload, int(time.time()))}  # fmt: skip
        started, at = time.monotonic(), now()
        status_code, error = None, None
        try:
            with self._client.stream("POST", url, content=payload, headers=headers) as response:
                status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".removesuffix(": ")[:500]
        if status_code is not None and 300 <= status_code < 400:
            error = "a redirect, not followed: webhooks go only to the URL subscribed"
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        return {"at": at.isoformat(), "status_code": status_code, "error": error, "duration_ms": duration_ms}

    def _record(self, delivery_id: str, status: str, attempts: list[dict[str, Any]], next_at: datetime | None) -> None:
        """Write the outcome and release the claim, unless the delivery was cancelled or taken over meanwhile."""
        ours = (DeliveryRow.id == delivery_id, DeliveryRow.status == "pending", DeliveryRow.claimed_by == self.runner)
        values = {"status": status, "attempts": attempts, "next_at": next_at, "claimed_by": None,
                  "claimed_until": None}  # fmt: skip
        with self.store.transaction() as db:
            db.execute(update(DeliveryRow).where(*ours).values(values))


def _unclaimed(at: datetime) -> ColumnElement[bool]:
    return or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < at)


def _behind() -> ColumnElement[bool]:
    """Whether an earlier delivery to the same subscription is still pending."""
    earlier = aliased(DeliveryRow)
    before = or_(earlier.created_at < DeliveryRow.created_at,
                 and_(earlier.created_at == DeliveryRow.created_at, earlier.seq < DeliveryRow.seq))  # fmt: skip
    return exists().where(earlier.subscription_id == DeliveryRow.subscription_id, earlier.status == "pending", before)
