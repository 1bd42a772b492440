"""Webhooks: a session's events POSTed, signed, to the URLs its owner subscribed (``copilot.webhooks.outbox``).

A receiver checks each request with :func:`verify_signature`.
"""

from copilot.webhooks.signing import verify_signature

__all__ = ["verify_signature"]
