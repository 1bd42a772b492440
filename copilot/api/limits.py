"""Limits on what a client may send: the size of an upload, and the rate of WebSocket messages.

The upload cap is enforced while the body streams in.

A declared ``Content-Length`` over the cap is refused before any of the body is read; a body without
one (chunked) is counted as it arrives and refused as soon as it passes the cap. Either way the
client gets a 413 and the connection is closed, so the rest of the body is never read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    """Raised from ``receive`` to stop the route reading a body past the cap."""


class UploadSizeLimit:
    """ASGI middleware: bodies sent to ``path`` may be at most ``max_mb`` MiB."""

    def __init__(self, app: ASGIApp, path: str, max_mb: float) -> None:
        self.app = app
        self.path = path.rstrip("/")
        self.max_mb = max_mb
        self.max_bytes = int(max_mb * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:  # the route answered before reading it all; nothing left to say
                return
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the upload is larger than the server's limit of {self.max_mb:g} MiB (COPILOT_MAX_UPLOAD_MB)"
        response = JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class MessageRate:
    """A token bucket: at most ``burst`` messages at once, ``per_second`` on average after that."""

    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock()

    def allow(self) -> bool:
        """Take one message's token; False when the sender is over the rate."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
