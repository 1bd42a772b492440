"""Two ``copilot serve`` processes on one PostgreSQL and one data directory behave as one service.

A session made on one server is answered on the other; the same proposal approved on both at once runs once;
a WebSocket on either server gets every event of the session, in order; and a server killed in the middle of
a step loses it to the other only once its heartbeat has stopped, with nothing run twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from copilot.session.heartbeat import HEARTBEAT_S, STALE_S
from tests.api.conftest import (
    Event,
    Server,
    approve,
    for_step,
    get_session,
    is_state,
    new_session,
    read_until,
    seqs,
    step_by_id,
    steps_of,
    store_env,
    versions,
    wait_for,
    wait_for_gate,
)
from tests.api.test_restart import assert_versions_intact, clean_table
from tests.pg import Cluster


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, postgresql: Cluster) -> Iterator[tuple[Server, Server, str]]:
    """Servers A and B (each with its own port and log) on one database and A's data directory, and the URL."""
    folder, name = tmp_path_factory.mktemp("two"), postgresql.create_database()
    url = postgresql.url(name)
    a = Server(folder / "a", env=store_env(url))
    b = Server(folder / "b", env=store_env(url) | {"COPILOT_DATA_DIR": str(a.data_dir)})
    try:
        for server in (a, b):
            server.folder.mkdir()
            server.spawn()
        for server in (a, b):
            server.wait_healthy()
        yield a, b, url
    finally:
        for server in (a, b):
            server.terminate()
        postgresql.drop_database(name)


@pytest.fixture
def servers(pair: tuple[Server, Server, str]) -> tuple[Server, Server, str]:
    """The module's two servers (each test makes its own sessions), restarted if a test killed one."""
    for server in pair[:2]:
        if server.process is None or server.process.poll() is not None:
            server.restart()
    return pair


def rows(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Read the shared store directly: what the API shows is checked against what is stored."""
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text(query), params)]
    finally:
        engine.dispose()


def all_events(client: httpx.Client, session_id: str) -> list[Event]:
    response = client.get(f"/api/sessions/{session_id}/events", params={"after": 0, "limit": 500})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_session_made_on_one_server_is_approved_on_the_other(servers: tuple[Server, Server, str]) -> None:
    a, b, url = servers
    with a.client() as on_a, b.client() as on_b:
        session_id = new_session(on_a)
        pending = wait_for_gate(on_b, session_id)["pending_step"]  # B reads the gate A's planning made
        assert approve(on_b, session_id, pending).status_code == 200
        after = wait_for(on_a, session_id)
        done = step_by_id(after, pending["id"])
        assert (done["status"], done["runs"]) == ("done", 1), steps_of(after)
        assert [v["step_id"] for v in assert_versions_intact(on_a, session_id)] == [None, pending["id"]]
        assert get_session(on_b, session_id) == get_session(on_a, session_id)
    approvals = rows(url, "SELECT owner, decision FROM approvals WHERE step_id = :s", s=pending["id"])
    assert len(approvals) == 1 and approvals[0][1] == "approve", approvals


def test_the_same_proposal_approved_on_both_servers_at_once_runs_once(servers: tuple[Server, Server, str]) -> None:
    """Policy ``always``: read-only steps run when approved, data-changing ones commit their preview; at each of
    three gates both servers get the same approval in the same instant."""
    a, b, url = servers
    raced: list[int] = []
    with a.client() as on_a, b.client() as on_b:
        session_id = new_session(on_a, policy="always")
        for _ in range(3):
            session = wait_for(on_a, session_id)
            if session["state"] != "awaiting_approval":
                break
            pending, start = session["pending_step"], threading.Barrier(2)
            answers: dict[str, int] = {}

            def send(name: str, client: httpx.Client, pending: dict[str, Any] = pending,
                     start: threading.Barrier = start, answers: dict[str, int] = answers) -> None:  # fmt: skip
                start.wait(timeout=10)
                answers[name] = approve(client, session_id, pending).status_code

            threads = [threading.Thread(target=send, args=args) for args in (("a", on_a), ("b", on_b))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert answers == {"a": 200, "b": 200}, answers  # the later one is a retry of the earlier: no change
            raced.append(pending["id"])
        assert len(raced) >= 2, steps_of(session)
        session = wait_for(on_b, session_id)
        assert all(step_by_id(session, s)["runs"] == 1 for s in raced), steps_of(session)
        assert_versions_intact(on_a, session_id)
        events = all_events(on_a, session_id)
    for step_id in raced:
        approvals = rows(url, "SELECT id FROM approvals WHERE step_id = :s AND decision = 'approve'", s=step_id)
        assert len(approvals) == 1, (step_id, approvals)
        assert len(for_step(events, "step_started", step_id)) <= 1
        assert len(for_step(events, "step_finished", step_id)) == 1, (step_id, [e["type"] for e in events])
    assert seqs(events) == list(range(1, len(events) + 1))


def test_one_idempotency_key_sent_to_both_servers_at_once_undoes_one_step(servers: tuple[Server, Server, str]) -> None:
    a, b, _ = servers
    with a.client() as on_a, b.client() as on_b:
        session_id = new_session(on_a)
        for client in (on_a, on_b):  # two versions made: a second undo would have something to undo
            pending = wait_for_gate(client, session_id)["pending_step"]
            assert approve(client, session_id, pending).status_code == 200
        wait_for(on_a, session_id)
        start, answers = threading.Barrier(2), dict[str, int]()
        key = {"Idempotency-Key": f"undo-{session_id}"}

        def undo(name: str, client: httpx.Client) -> None:
            start.wait(timeout=10)
            answers[name] = client.post(f"/api/sessions/{session_id}/undo", headers=key).status_code

        threads = [threading.Thread(target=undo, args=args) for args in (("a", on_a), ("b", on_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert 200 in answers.values() and set(answers.values()) <= {200, 409}, answers  # 409: "still answered"
        undos = [e for e in all_events(on_b, session_id) if e["type"] == "version_created" and "undo_of" in e["data"]]
        assert len(undos) == 1, undos


def test_a_websocket_on_either_server_gets_every_event_in_order(servers: tuple[Server, Server, str]) -> None:
    a, b, _ = servers
    with a.client() as on_a, b.client() as on_b:
        session_id = new_session(on_a)
        with a.connect(session_id, after=0) as ws_a, b.connect(session_id, after=0) as ws_b:
            got: dict[str, list[Event]] = {}
            readers = [threading.Thread(target=lambda n=n, ws=ws: got.update({n: read_until(ws, is_state("stopped"))}))
                       for n, ws in (("a", ws_a), ("b", ws_b))]  # fmt: skip
            for reader in readers:  # read as the events come: an unread socket stops answering pings
                reader.start()
            for client in (on_b, on_a):  # each gate answered on the other server than the last
                pending = wait_for_gate(client, session_id)["pending_step"]
                assert approve(client, session_id, pending).status_code == 200
            wait_for(on_a, session_id)
            assert on_b.post(f"/api/sessions/{session_id}/stop").status_code == 200
            for reader in readers:
                reader.join(timeout=30)
        stored = all_events(on_b, session_id)
        assert seqs(stored) == list(range(1, len(stored) + 1))
        assert set(got) == {"a", "b"}, "a WebSocket never saw the session stop"
        for name, frames in got.items():
            events = [frame for frame in frames if "seq" in frame]
            assert [(e["seq"], e["type"]) for e in events] == [(e["seq"], e["type"]) for e in stored], name
        middle = len(stored) // 2
        with b.connect(session_id, after=middle) as ws:  # a reconnect to the other server replays the rest
            replayed = read_until(ws, lambda e: e.get("seq") == len(stored), timeout=10)
        assert seqs(replayed) == list(range(middle + 1, len(stored) + 1))


def test_a_server_killed_mid_step_loses_it_to_the_other_once_its_heartbeat_stops(
    servers: tuple[Server, Server, str],
) -> None:
    a, b, url = servers
    with a.client() as on_a, b.client() as on_b:
        session_id = new_session(on_a, clean_table(), target="label")
        with b.connect(session_id, after=0) as ws:  # B hears of A's run through the store
            started = read_until(ws, lambda e: e["type"] == "preview_started", timeout=120)[-1]
            step_id = started["data"]["step_id"]
            read_until(ws, lambda e: e["type"] == "progress")  # A's sandbox runs the tool
            assert rows(url, "SELECT runner FROM steps WHERE id = :s", s=step_id)[0][0].split(":")[1] == str(
                a.process.pid if a.process else None
            )
            a.kill()
            killed = time.monotonic()
            failed = read_until(ws, lambda e: e["type"] == "step_failed" and e["data"]["step_id"] == step_id,
                                timeout=STALE_S + 4 * HEARTBEAT_S)[-1]  # fmt: skip
            waited = time.monotonic() - killed
        assert waited >= STALE_S - HEARTBEAT_S, (
            f"taken over {waited:.1f} s after the kill, before the heartbeat stopped"
        )
        assert "interrupted" in failed["data"]["error"]
        session = wait_for(on_b, session_id, timeout=120)
        assert session["state"] in {"awaiting_approval", "done"}, (session["error"], steps_of(session))
        taken = step_by_id(session, step_id)
        assert (taken["status"], taken["runs"]) == ("failed", 1) and "interrupted" in taken["error"], taken
        if session["pending_step"] is not None:  # proposed again, and previewed once, by B
            again = session["pending_step"]
            assert again["id"] != step_id and step_by_id(session, again["id"])["runs"] == 1
            assert approve(on_b, session_id, again).status_code == 200
            wait_for(on_b, session_id, timeout=120)
        made = [v["step_id"] for v in versions(on_b, session_id)]
        assert step_id not in made and len(made) == len(set(made)), made
    later = "SELECT DISTINCT runner FROM steps WHERE session_id = :s AND id > :i AND runner IS NOT NULL"
    runners = rows(url, later, s=session_id, i=step_id)  # what ran after the kill ran on B
    assert runners and all(r[0].split(":")[1] == str(b.process.pid if b.process else None) for r in runners), runners
