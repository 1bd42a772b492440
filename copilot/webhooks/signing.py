"""Webhook signatures: ``Copilot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, as a receiver checks them.

The HMAC covers ``f"{t}."`` and the exact body bytes, under the subscription's secret, so neither the body
nor the time can be changed without the secret; refusing old times stops a recorded request being replayed
later. A receiver needs only :func:`verify_signature` (standard library only)::

    from copilot.webhooks import verify_signature
    if not verify_signature(secret, request.headers["Copilot-Signature"], raw_body):
        reject()
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "v1"


def signature(secret: str, body: bytes, at: int) -> str:
    """The hex HMAC-SHA256 of ``f"{at}." + body`` under ``secret``."""
    return hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, at: int) -> str:
    return f"t={at},{SCHEME}={signature(secret, body, at)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: float = 300, now: float | None = None) -> bool:
    """Whether ``header`` (the ``Copilot-Signature`` value) signs ``body`` (the raw bytes received) under
    ``secret``, at a time at most ``tolerance_s`` seconds from ``now`` (default: this machine's clock).
    Compared in constant time; a malformed header is False, never an exception."""
    stamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            stamp = int(value)
        elif key == SCHEME and value:
            signatures.append(value)
    if stamp is None or abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    expected = signature(secret, body, stamp)
    return any(hmac.compare_digest(expected.encode(), given.encode()) for given in signatures)
