"""A client of one ``copilot serve``, through the public HTTP and WebSocket API other services use.

Behind ``copilot clean --server URL``. Answers are parsed with the shared read models of
:mod:`copilot.session.views`; nothing else of the server is imported.

Retries: creating a session and approving a step carry an ``Idempotency-Key`` (a fresh one per
logical request) and are sent again with the same key after a connection error or a time-out, so
the server can answer a retry without running it twice. Other calls are sent again only when they
are reads. The WebSocket reconnects with ``?after=`` the last event it passed on, so none is lost
or repeated.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from copilot.session.views import EventView, SessionView, VersionView

RETRIES = 3  # after the first try: 0.25 + 0.5 + 1 s of waiting in all
BACKOFF_S = 0.25
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # the server reads and profiles the table before it answers
MAX_FRAME_BYTES = 64 * 1024 * 1024
NEEDS_TOKEN = "the server needs a token: pass --token or set COPILOT_TOKEN"
WRONG_TOKEN = "the server refused the token: pass the right one with --token or COPILOT_TOKEN"
T = TypeVar("T")


class RemoteError(Exception):
    """The server could not be reached, refused the token, or refused a request; said for a person."""


class Remote:
    """The API of the server at ``base_url``, acting for ``token`` (none: a server without tokens)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=TIMEOUT)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.http.close()

    def create_session(self, source: Path, fields: dict[str, str]) -> SessionView:
        """Upload ``source`` with the form ``fields`` (target, id_columns, goal, policy)."""
        with source.open("rb") as file:  # httpx rewinds it for a retry
            files = {"file": (source.name, file, "application/octet-stream")}
            response = self.send("POST", "/api/sessions", keyed=True, files=files, data=fields, timeout=UPLOAD_TIMEOUT)
        return SessionView.model_validate(response.json())

    def session(self, session_id: str) -> SessionView:
        return SessionView.model_validate(self.send("GET", f"/api/sessions/{session_id}").json())

    def columns(self, session_id: str) -> list[str]:
        """The columns of the session's current version, from its profile."""
        return list(self.send("GET", f"/api/sessions/{session_id}/profile").json()["columns"])

    def current_version(self, session_id: str) -> VersionView:
        """The version in use. The list may come whole or in pages (``{"items": [...], "next_cursor": ...}``)."""
        params: dict[str, str] = {}
        while True:
            page = self.send("GET", f"/api/sessions/{session_id}/versions", params=params).json()
            items = page if isinstance(page, list) else page["items"]
            current = next((VersionView.model_validate(v) for v in items if v["current"]), None)
            cursor = None if isinstance(page, list) else page.get("next_cursor")
            if current is not None:
                return current
            if not cursor:
                raise RemoteError(f"the server lists no current version of session {session_id}")
            params = {"cursor": str(cursor)}

    def send(
        self, method: str, path: str, *, keyed: bool = False, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """One request, retried as the module says; a status other than success or ``allow`` is a RemoteError."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
        call = functools.partial(self.http.request, method, path, headers=headers, **kwargs)
        response = self._retrying(call, retry=keyed or method == "GET")
        if response.is_success or response.status_code in allow:
            return response
        raise RemoteError(self.refusal(response))

    def download(self, path: str, dest: Path, params: dict[str, str] | None = None) -> None:
        """Stream ``path`` to ``dest`` through a temporary file beside it, renamed once whole: a failure
        leaves no half file, and an older ``dest`` as it was."""

        def fetch() -> None:
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as file, self.http.stream("GET", path, params=params) as response:
                    if not response.is_success:
                        response.read()
                        raise RemoteError(self.refusal(response))
                    for chunk in response.iter_bytes():
                        file.write(chunk)
                os.replace(tmp, dest)
            finally:
                Path(tmp).unlink(missing_ok=True)

        self._retrying(fetch, retry=True)

    def events(self, session_id: str) -> Events:
        return Events(self, session_id)

    def refusal(self, response: httpx.Response) -> str:
        """What the server's refusal means for the person at the terminal."""
        if response.status_code == 401:
            return WRONG_TOKEN if self.token else NEEDS_TOKEN
        what = f"{response.request.method} {response.request.url.path}"
        if response.status_code >= 500:
            return f"the server failed ({response.status_code}) on {what}: {detail(response)}"
        return f"the server refused {what} ({response.status_code}): {detail(response)}"

    def _retrying(self, call: Callable[[], T], retry: bool) -> T:
        for attempt in range(RETRIES + 1):
            try:
                return call()
            except httpx.TransportError as exc:
                if not retry or attempt == RETRIES:
                    raise RemoteError(self._unreachable(exc)) from None
                time.sleep(BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    def _unreachable(self, exc: Exception) -> str:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return f"cannot reach {self.base_url}: is `copilot serve` running? ({exc})"
        if isinstance(exc, httpx.TimeoutException):
            return f"{self.base_url} did not answer in time ({type(exc).__name__})"
        return f"lost the connection to {self.base_url}: {exc}"


def detail(response: httpx.Response) -> str:
    """The ``detail`` of an error body, or the start of whatever else came back."""
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:500] or response.reason_phrase


class Events:
    """A session's events over its WebSocket, each once and in order; reconnects after a dropped connection."""

    def __init__(self, remote: Remote, session_id: str) -> None:
        self.remote, self.session_id = remote, session_id
        self.seen = 0  # the last seq passed on
        self.socket: ClientConnection | None = None
        self.drops = 0  # connections lost in a row

    def __enter__(self) -> Events:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.socket is not None:
            self.socket.close()

    def next(self, timeout: float | None = None) -> EventView | None:
        """The next event; None when none came within ``timeout`` seconds."""
        while True:
            socket = self.socket or self._connect()
            try:
                frame = json.loads(socket.recv(timeout=timeout))
            except TimeoutError:
                return None
            except ConnectionClosed as closed:
                self._dropped(closed)
                continue
            self.drops = 0
            if frame.get("type") == "token" or frame.get("seq", 0) <= self.seen:  # live text pieces, error frames
                continue
            event = EventView.model_validate(frame)
            self.seen = event.seq
            return event

    def _connect(self) -> ClientConnection:
        scheme, _, rest = self.remote.base_url.partition("://")
        url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/sessions/{self.session_id}/ws?after={self.seen}"
        while True:
            try:
                self.socket = connect(url, additional_headers=self.remote.headers, max_size=MAX_FRAME_BYTES)
                return self.socket
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self.drops += 1
                if self.drops > RETRIES:
                    raise RemoteError(f"cannot follow the session at {url.partition('?')[0]}: {exc}") from None
                time.sleep(BACKOFF_S * 2 ** (self.drops - 1))

    def _dropped(self, closed: ConnectionClosed) -> None:
        self.socket = None
        code = closed.rcvd.code if closed.rcvd is not None else None
        if code == 4401:
            raise RemoteError(WRONG_TOKEN if self.remote.token else NEEDS_TOKEN)
        if code == 4404:
            raise RemoteError(f"the server has no session {self.session_id} for this token")
        self.drops += 1
        if self.drops > RETRIES:
            raise RemoteError(f"lost the connection to {self.remote.base_url} while following the session ({closed})")
