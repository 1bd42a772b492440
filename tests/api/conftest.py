"""A real ``copilot serve`` in a subprocess, and helpers that drive it over HTTP and WebSocket.

Every test in ``tests/api`` talks to the server as another service or the
browser would: multipart uploads and JSON over loopback HTTP, events over a
WebSocket. Nothing is imported from the server; only its data directory is
shared, so a test can kill the process and start it again on the same store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import messy_table

START_TIMEOUT = 30.0
REST_STATES = frozenset({"awaiting_approval", "done", "stopped", "failed"})
EVENT_TYPES = frozenset({
    "session_state", "plan_updated", "approval_requested", "step_started", "progress", "step_finished",
    "step_failed", "message", "token", "version_created", "error", "rules_changed", "rules_suggested",
    "preview_started",
})  # fmt: skip
Event = dict[str, Any]


@dataclass
class Server:
    """One ``copilot serve`` process on a fixed port and data directory."""

    folder: Path
    tokens: str = ""
    port: int = field(default_factory=lambda: free_port())
    env: dict[str, str] = field(default_factory=dict)  # more COPILOT_* settings for this server
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.spawn()
        self.wait_healthy()

    def spawn(self) -> None:
        """Start the process without waiting for it to answer (servers started together start faster)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
        env |= {"COPILOT_DATA_DIR": str(self.data_dir), "COPILOT_TOKENS": self.tokens, "PYTHONUNBUFFERED": "1"}
        env |= self.env
        command = [sys.executable, "-m", "copilot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            log.write(f"\n--- start {time.strftime('%H:%M:%S')} ---\n".encode())
            self.process = subprocess.Popen(command, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT)

    def restart(self) -> None:
        """Start again on the same port and data directory (after :meth:`kill` or :meth:`terminate`)."""
        assert self.process is None or self.process.poll() is not None, "the server is still running"
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"the server ignored SIGTERM for 20 s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=bearer(token), timeout=30.0)

    def ws_url(self, session_id: str, after: int | None = 0, token: str | None = None) -> str:
        query = [f"{key}={value}" for key, value in (("after", after), ("token", token)) if value is not None]
        return f"ws://127.0.0.1:{self.port}/api/sessions/{session_id}/ws" + ("?" + "&".join(query) if query else "")

    def connect(self, session_id: str, after: int | None = 0, token: str | None = None) -> ClientConnection:
        """A WebSocket on the session's events, authenticated by header when ``token`` is given."""
        return connect(self.ws_url(session_id, after), additional_headers=bearer(token), open_timeout=10,
                       max_size=None)  # fmt: skip

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"copilot serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"copilot serve did not answer /healthz within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def store_env(database_url: str | None) -> dict[str, str]:
    """The settings that put a server on ``database_url`` (None: the SQLite file in its data directory)."""
    return {"COPILOT_DATABASE_URL": database_url} if database_url else {}


@contextmanager
def running_server(folder: Path, tokens: str = "", database_url: str | None = None) -> Iterator[Server]:
    server = Server(folder, tokens, env=store_env(database_url))
    server.start()
    try:
        yield server
    finally:
        server.terminate()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server without tokens, shared by every test that does not stop it (each makes its own sessions)."""
    with running_server(tmp_path_factory.mktemp("server")) as srv:
        yield srv


@pytest.fixture(scope="session")
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# --- tables -------------------------------------------------------------------------------------------------------


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def messy_csv(n: int = 200, seed: int = 0) -> bytes:
    """``tests.conftest.messy_table``: its first gate is ``coerce_types`` (``age`` holds ``?`` codes)."""
    return csv_bytes(messy_table(n, seed))


# --- HTTP ---------------------------------------------------------------------------------------------------------


def upload(client: httpx.Client, content: bytes, target: str = "outcome", filename: str = "messy.csv",
           **fields: str) -> httpx.Response:  # fmt: skip
    files = {"file": (filename, content, "text/csv")}
    return client.post("/api/sessions", files=files, data={"target": target, **fields})


def new_session(client: httpx.Client, content: bytes | None = None, target: str = "outcome", **fields: str) -> str:
    """Create a session from ``content`` (default: the messy table) and return its id."""
    response = upload(client, messy_csv() if content is None else content, target, **fields)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def get_session(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(client: httpx.Client, session_id: str, states: frozenset[str] = REST_STATES,
             timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
    """Poll the session until its state is one of ``states``; fail with the last one seen."""
    deadline = time.monotonic() + timeout
    session = get_session(client, session_id)
    while session["state"] not in states:
        if time.monotonic() > deadline:
            pytest.fail(f"session {session_id} still {session['state']!r} after {timeout:.0f} s: {steps_of(session)}")
        time.sleep(0.1)
        session = get_session(client, session_id)
    return session


def wait_for_gate(client: httpx.Client, session_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the session rests; it must rest at an approval gate with a pending step."""
    session = wait_for(client, session_id, timeout=timeout)
    assert session["state"] == "awaiting_approval", (session["state"], session["error"], steps_of(session))
    assert session["pending_step"] is not None, session
    return session


NO_PROPOSAL = "0" * 32  # a proposal id the server never gives


def approve(
    client: httpx.Client, session_id: str, step: dict[str, Any] | int, params: dict[str, Any] | None = None
) -> httpx.Response:
    """Approve ``step``: a ``pending_step`` as the session showed it, or a bare step id (no proposal)."""
    step_id, proposal = _proposal(step)
    body = {"proposal": proposal} | ({} if params is None else {"params": params})
    return client.post(f"/api/sessions/{session_id}/steps/{step_id}/approve", json=body)


def edit(client: httpx.Client, session_id: str, step: dict[str, Any], params: dict[str, Any]) -> httpx.Response:
    """Ask for a new preview of ``step`` with ``params`` (the way a person edits a data-changing step)."""
    return client.post(f"/api/sessions/{session_id}/steps/{step['id']}/preview",
                       json={"proposal": step["proposal"], "params": params})  # fmt: skip


def reject(client: httpx.Client, session_id: str, step: dict[str, Any] | int, reason: str) -> httpx.Response:
    step_id, proposal = _proposal(step)
    return client.post(f"/api/sessions/{session_id}/steps/{step_id}/reject",
                       json={"proposal": proposal, "reason": reason})  # fmt: skip


def _proposal(step: dict[str, Any] | int) -> tuple[int, str]:
    return (int(step["id"]), str(step["proposal"])) if isinstance(step, dict) else (step, NO_PROPOSAL)


def versions(client: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/sessions/{session_id}/versions")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def step_by_id(session: dict[str, Any], step_id: int) -> dict[str, Any]:
    return next(step for step in session["plan"] if step["id"] == step_id)


def steps_of(session: dict[str, Any]) -> list[tuple[int, str, str, str | None]]:
    """A compact view of the plan for assertion messages."""
    return [(s["id"], s["tool"], s["status"], s["error"]) for s in session["plan"]]


def mutating_tools(client: httpx.Client) -> set[str]:
    response = client.get("/api/tools")
    assert response.status_code == 200, response.text
    return {tool["name"] for tool in response.json()["tools"] if tool["mutates"]}


# --- WebSocket ----------------------------------------------------------------------------------------------------


def receive(ws: ClientConnection, timeout: float) -> Event | None:
    """The next frame as JSON, or ``None`` when nothing came within ``timeout`` seconds."""
    try:
        return dict(json.loads(ws.recv(timeout=timeout)))
    except TimeoutError:
        return None


def read_until(ws: ClientConnection, done: Callable[[Event], bool], timeout: float = 60.0) -> list[Event]:
    """Frames up to and including the first for which ``done`` is true; fails after ``timeout`` seconds."""
    frames: list[Event] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        frame = receive(ws, left)
        if frame is None:
            break
        frames.append(frame)
        if done(frame):
            return frames
    pytest.fail(f"no awaited frame within {timeout:.0f} s; got {[(f.get('seq'), f['type']) for f in frames]}")


def read_idle(ws: ClientConnection, idle: float = 1.0, first: float = 10.0) -> list[Event]:
    """Frames until none arrives for ``idle`` seconds (for a session at rest: everything it replays).

    The first frame may take up to ``first`` seconds: a busy server answers a new connection late."""
    frames = []
    while (frame := receive(ws, idle if frames else first)) is not None:
        frames.append(frame)
    return frames


def persisted_events(server: Server, session_id: str, token: str | None = None) -> list[Event]:
    """Every stored event of a session at rest, from a fresh connection with ``after=0``."""
    with server.connect(session_id, after=0, token=token) as ws:
        return [frame for frame in read_idle(ws) if "seq" in frame]


def seqs(events: list[Event]) -> list[int]:
    return [int(event["seq"]) for event in events if "seq" in event]


def for_step(events: list[Event], kind: str, step_id: int) -> list[Event]:
    """Events of type ``kind`` about the step ``step_id``."""
    return [e for e in events if e["type"] == kind and e["data"].get("step_id") == step_id]


def is_state(*states: str) -> Callable[[Event], bool]:
    return lambda event: event["type"] == "session_state" and event["data"].get("state") in states


def close_code(url: str, headers: dict[str, str] | None = None) -> int | None:
    """The close code the server ends a WebSocket with before sending any event, or ``None``."""
    try:
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    except (InvalidStatus, TimeoutError):
        return None
    return None
