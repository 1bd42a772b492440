"""Webhooks over real HTTP: a ``copilot serve`` POSTs session events to a receiver on loopback in this process.

Each test acts for its own token and listens on its own path of the receiver, so the deliveries it sees are
its own although the tests share one server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from copilot.webhooks import verify_signature
from tests.api.conftest import Server, approve, new_session, wait_for_gate

BACKOFF = {"COPILOT_WEBHOOK_BACKOFF_S": "0.2", "COPILOT_WEBHOOK_TIMEOUT_S": "2"}
TOKENS = [f"hook-token-{n}" for n in range(1, 8)]
ALL_EVENTS = ["awaiting_approval", "step_finished", "step_failed", "done"]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A loopback HTTP server that records every request by path and answers with the statuses queued for
    that path (a 3xx redirects to ``/elsewhere``), then 200."""

    requests: list[Request] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(Request(self.path, dict(self.headers), body))
                    queued = receiver.answers.get(self.path, [])
                    status = queued.pop(0) if queued else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.base_url}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def answer(self, path: str, *statuses: int) -> None:
        with self._lock:
            self.answers[path] = list(statuses)

    def at(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait(self, path: str, done: Callable[[list[Request]], bool], timeout: float = 30.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while not done(got := self.at(path)):
            if time.monotonic() > deadline:
                pytest.fail(f"{path}: {[(r.headers.get('Copilot-Event'), r.json.get('seq')) for r in got]}")
            time.sleep(0.05)
        return got

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def events(requests: list[Request]) -> list[str]:
    return [r.json["event"] for r in requests]


def told_of(requests: list[Request]) -> list[tuple[str, int | None]]:
    """Each request's event and the step it names."""
    return [(r.json["event"], r.json["data"].get("step_id")) for r in requests]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def bystander() -> Iterator[Receiver]:
    """A receiver on a port the allow-list does not name: nothing may ever reach it."""
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    env = BACKOFF | {"COPILOT_WEBHOOK_URLS": f"https://hooks.example.org/copilot/,{receiver.base_url}/hooks/"}
    server = Server(tmp_path_factory.mktemp("hooks"), tokens=",".join(TOKENS), env=env)
    server.start()
    yield server
    server.terminate()


@pytest.fixture
def as_token(hooks_server: Server) -> Iterator[Callable[[int], httpx.Client]]:
    clients: list[httpx.Client] = []

    def client(n: int) -> httpx.Client:
        clients.append(hooks_server.client(TOKENS[n - 1]))
        return clients[-1]

    yield client
    for c in clients:
        c.close()


def subscribe(api: httpx.Client, url: str, session_id: str | None = None, **body: Any) -> dict[str, Any]:
    path = f"/api/sessions/{session_id}/webhooks" if session_id else "/api/webhooks"
    response = api.post(path, json={"url": url, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliveries(api: httpx.Client, webhook_id: str, settled: int = 0, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The delivery log, once at least ``settled`` of its deliveries are no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/api/webhooks/{webhook_id}/deliveries")
        assert response.status_code == 200, response.text
        log = list(response.json()["items"])
        if sum(d["status"] != "pending" for d in log) >= settled:
            return log
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {settled} deliveries settled: {log}")
        time.sleep(0.1)


def test_a_session_hook_is_told_of_the_gate_then_of_the_step_signed(
    as_token: Callable[[int], httpx.Client], receiver: Receiver
) -> None:
    api, path = as_token(1), "/hooks/session"
    session_id = new_session(api)
    first = wait_for_gate(api, session_id)["pending_step"]  # reached before the hook exists
    hook = subscribe(api, receiver.base_url + path, session_id, events=["awaiting_approval", "step_finished"])
    assert hook["session_id"] == session_id and hook["events"] == ["awaiting_approval", "step_finished"]
    assert len(hook["secret"]) >= 40
    assert approve(api, session_id, first).status_code == 200
    second = wait_for_gate(api, session_id)["pending_step"]
    got = receiver.wait(path, lambda rs: "awaiting_approval" in events(rs))
    assert got[0].json["event"] == "step_finished" and got[0].json["data"]["step_id"] == first["id"]
    assert events(got).count("awaiting_approval") == 1 and got[-1].json["data"]["proposal"] == second["proposal"]
    assert approve(api, session_id, second).status_code == 200
    told = receiver.wait(path, lambda rs: ("step_finished", second["id"]) in told_of(rs))
    got = told[: told_of(told).index(("step_finished", second["id"])) + 1]  # up to it: later steps may follow
    assert events(got).index("awaiting_approval") < len(got) - 1  # the gate came before its step finished
    seqs = [r.json["seq"] for r in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    for request in got:
        body, header = request.json, request.headers["Copilot-Signature"]
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Copilot-Event"] == body["event"] and request.headers["Copilot-Delivery"] == body["id"]
        assert body["session_id"] == session_id and set(body) == {"id", "event", "session_id", "seq", "at", "data"}
        assert verify_signature(hook["secret"], header, request.body)
        assert not verify_signature("another secret", header, request.body)
        assert not verify_signature(hook["secret"], header, request.body.replace(b'"seq":', b'"seq":1'))
    listed = api.get("/api/webhooks").json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    log = deliveries(api, hook["id"], settled=len(got))
    assert [d["id"] for d in log] == [r.json["id"] for r in got]
    assert all(d["status"] == "delivered" and len(d["attempts"]) == 1 for d in log), log


def test_a_failing_receiver_is_retried_and_a_refusing_one_is_not(
    as_token: Callable[[int], httpx.Client], receiver: Receiver
) -> None:
    api = as_token(2)
    receiver.answer("/hooks/flaky", 500, 500)
    receiver.answer("/hooks/refusing", 400)
    flaky = subscribe(api, receiver.base_url + "/hooks/flaky", events=["awaiting_approval"])
    refusing = subscribe(api, receiver.base_url + "/hooks/refusing", events=["awaiting_approval"])
    receiver.answer("/hooks/down", *[503] * 100)
    down = subscribe(api, receiver.base_url + "/hooks/down", events=["awaiting_approval"])
    session_id = new_session(api)  # an owner's hook covers sessions made after it
    wait_for_gate(api, session_id)
    [delivered] = deliveries(api, flaky["id"], settled=1)
    assert delivered["status"] == "delivered" and delivered["session_id"] == session_id, delivered
    assert [a["status_code"] for a in delivered["attempts"]] == [500, 500, 200] and delivered["next_at"] is None
    times = [a["at"] for a in delivered["attempts"]]
    assert times == sorted(times) and all(a["duration_ms"] >= 0 for a in delivered["attempts"])
    tries = receiver.at("/hooks/flaky")
    assert len(tries) == 3 and len({r.headers["Copilot-Delivery"] for r in tries}) == 1  # one delivery, retried
    [failed] = deliveries(api, refusing["id"], settled=1)
    assert failed["status"] == "failed" and [a["status_code"] for a in failed["attempts"]] == [400], failed
    # A hook deleted while its receiver is down stops being retried.
    receiver.wait("/hooks/down", lambda rs: len(rs) >= 2)
    assert api.delete(f"/api/webhooks/{down['id']}").status_code == 204
    tried = len(receiver.at("/hooks/down"))
    time.sleep(1.5)  # retries would be due after 0.2, 0.4, 0.8 s
    assert len(receiver.at("/hooks/refusing")) == 1 and len(receiver.at("/hooks/down")) <= tried + 1


def test_a_url_outside_the_allow_list_is_refused_and_never_called(
    as_token: Callable[[int], httpx.Client], receiver: Receiver, bystander: Receiver, api: httpx.Client
) -> None:
    client, port = as_token(3), receiver.http.server_address[1]
    refused = [
        f"{bystander.base_url}/hooks/x",  # another port
        f"http://127.0.0.1:{port}.evil.example/hooks/x",  # the port continued into a host name
        f"http://localhost:{port}/hooks/x",  # a host other than the one listed
        f"http://127.0.0.1:{port}@127.0.0.1:{bystander.http.server_address[1]}/hooks/x",  # user info
        f"https://127.0.0.1:{port}/hooks/x",  # https for http
        f"http://127.0.0.1:{port}/hooksx",  # not on a / boundary
        f"http://127.0.0.1:{port}/hooks/../elsewhere",
        "http://hooks.example.org/copilot/x",  # http for https
    ]
    for url in refused:
        response = client.post("/api/webhooks", json={"url": url})
        assert response.status_code == 422, (url, response.text)
        assert "COPILOT_WEBHOOK_URLS" in response.json()["detail"], response.text
        assert response.json()["errors"][0]["loc"] == ["body", "url"]
    hook = subscribe(client, f"{receiver.base_url}/hooks/allowed", events=["awaiting_approval"])
    session_id = new_session(client)
    for url in refused:
        response = client.post(f"/api/sessions/{session_id}/webhooks", json={"url": url})
        assert response.status_code == 422 and "COPILOT_WEBHOOK_URLS" in response.json()["detail"], response.text
    assert [h["id"] for h in client.get("/api/webhooks").json()["items"]] == [hook["id"]]
    wait_for_gate(client, session_id)
    receiver.wait("/hooks/allowed", lambda rs: len(rs) >= 1)
    assert deliveries(client, hook["id"], settled=1)[0]["status"] == "delivered"
    assert bystander.requests == []
    # A server with no allow-list sends no webhooks at all, and says how to turn them on.
    off = api.post("/api/webhooks", json={"url": f"{receiver.base_url}/hooks/x"})
    assert off.status_code == 422 and "COPILOT_WEBHOOK_URLS is empty" in off.json()["detail"], off.text


def test_a_redirect_is_not_followed(as_token: Callable[[int], httpx.Client], receiver: Receiver) -> None:
    api = as_token(4)
    receiver.answer("/hooks/moved", 302)
    hook = subscribe(api, receiver.base_url + "/hooks/moved", events=["awaiting_approval"])
    wait_for_gate(api, new_session(api))
    [failed] = deliveries(api, hook["id"], settled=1)
    assert failed["status"] == "failed" and [a["status_code"] for a in failed["attempts"]] == [302], failed
    assert "redirect" in failed["attempts"][0]["error"]
    time.sleep(0.5)
    assert len(receiver.at("/hooks/moved")) == 1 and receiver.at("/elsewhere") == []


def test_tokens_see_and_are_told_of_only_their_own(
    as_token: Callable[[int], httpx.Client], receiver: Receiver, hooks_server: Server
) -> None:
    alice, bob = as_token(5), as_token(6)
    owner_wide = subscribe(alice, receiver.base_url + "/hooks/alice")
    bobs_session = new_session(bob)
    bobs = subscribe(bob, receiver.base_url + "/hooks/bob", bobs_session)
    assert bobs["events"] == ALL_EVENTS and bobs["session_id"] == bobs_session
    alices_session = new_session(alice)
    assert alice.get(f"/api/webhooks/{bobs['id']}/deliveries").status_code == 404
    assert alice.delete(f"/api/webhooks/{bobs['id']}").status_code == 404
    on_bobs = alice.post(f"/api/sessions/{bobs_session}/webhooks", json={"url": receiver.base_url + "/hooks/a"})
    assert on_bobs.status_code == 404, on_bobs.text
    assert [h["id"] for h in alice.get("/api/webhooks").json()["items"]] == [owner_wide["id"]]
    assert [h["id"] for h in bob.get("/api/webhooks").json()["items"]] == [bobs["id"]]
    wait_for_gate(bob, bobs_session)
    wait_for_gate(alice, alices_session)
    got = receiver.wait("/hooks/alice", lambda rs: len(rs) >= 1)
    time.sleep(0.5)
    assert {r.json["session_id"] for r in receiver.at("/hooks/alice")} == {alices_session}, got
    assert {r.json["session_id"] for r in receiver.at("/hooks/bob")} <= {bobs_session}
    assert alice.delete(f"/api/webhooks/{owner_wide['id']}").status_code == 204
    assert alice.get(f"/api/webhooks/{owner_wide['id']}/deliveries").status_code == 404
    assert alice.delete(f"/api/webhooks/{owner_wide['id']}").status_code == 404
    listed = alice.get("/api/webhooks").json()["items"]
    assert [(h["id"], h["active"]) for h in listed] == [(owner_wide["id"], False)]
    assert [h["active"] for h in bob.get("/api/webhooks").json()["items"]] == [True]


def test_a_pending_delivery_survives_a_kill_and_restart(hooks_server: Server, receiver: Receiver) -> None:
    """Last in this module: it kills the shared server (and starts it again)."""
    path = "/hooks/restart"
    receiver.answer(path, *[503] * 100)
    with hooks_server.client(TOKENS[6]) as api:
        hook = subscribe(api, receiver.base_url + path, events=["awaiting_approval"])
        wait_for_gate(api, new_session(api))
        receiver.wait(path, lambda rs: len(rs) >= 1)
    hooks_server.kill()  # at most 6 attempts in 6 s, so the delivery is still pending
    failed = len(receiver.at(path))
    receiver.answer(path)  # the receiver is back
    hooks_server.restart()
    with hooks_server.client(TOKENS[6]) as api:
        [delivered] = deliveries(api, hook["id"], settled=1)
    assert delivered["status"] == "delivered", delivered
    codes = [a["status_code"] for a in delivered["attempts"]]
    assert codes[-1] == 200 and set(codes[:-1]) == {503} and len(codes) >= 2, codes
    got = receiver.at(path)
    assert len(got) >= failed + 1 and len({r.headers["Copilot-Delivery"] for r in got}) == 1
    assert verify_signature(hook["secret"], got[-1].headers["Copilot-Signature"], got[-1].body)
