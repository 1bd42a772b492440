"""Events over the WebSocket: in order, gap-free, replayed exactly once after a reconnect; actions in."""

from __future__ import annotations

import json

import httpx

from tests.api.conftest import (
    EVENT_TYPES,
    Event,
    Server,
    approve,
    close_code,
    for_step,
    get_session,
    is_state,
    new_session,
    persisted_events,
    read_idle,
    read_until,
    receive,
    seqs,
    step_by_id,
    versions,
    wait_for,
    wait_for_gate,
)


def test_events_arrive_in_order_without_gaps(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    with server.connect(session_id, after=0) as ws:
        events = read_until(ws, lambda e: e["type"] == "approval_requested")
    assert seqs(events) == list(range(1, len(events) + 1))
    for event in events:
        assert set(event) == {"seq", "type", "at", "data"}, event
        assert event["type"] in EVENT_TYPES and isinstance(event["data"], dict)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session_state"
    baseline = get_session(api, session_id)["plan"][0]["id"]
    assert len(for_step(events, "step_started", baseline)) == 1
    assert len(for_step(events, "step_finished", baseline)) == 1


def test_frames_go_uncompressed_even_to_a_client_that_offers_compression(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    with server.connect(session_id, after=0) as ws:  # the websockets client offers permessage-deflate
        assert "permessage-deflate" in (ws.request.headers.get("Sec-WebSocket-Extensions") or "")
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert receive(ws, 10) is not None


def test_reconnecting_after_n_replays_exactly_the_missed_events(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    with server.connect(session_id, after=0) as ws:
        seen = read_idle(ws)
    n = len(seen)
    assert seqs(seen) == list(range(1, n + 1))

    assert approve(api, session_id, pending).status_code == 200
    assert api.post(f"/api/sessions/{session_id}/messages", json={"text": "while you were away"}).status_code == 201
    wait_for_gate(api, session_id)

    with server.connect(session_id, after=n) as ws:
        missed = read_idle(ws)
        everything = persisted_events(server, session_id)
        assert missed == everything[n:]
        assert seqs(missed) == list(range(n + 1, len(everything) + 1))
        assert len(for_step(missed, "step_finished", pending["id"])) == 1  # the preview, committed
        assert "while you were away" in json.dumps([e["data"] for e in missed if e["type"] == "message"])

        assert api.post(f"/api/sessions/{session_id}/messages", json={"text": "still here"}).status_code == 201
        live = read_until(ws, lambda e: e["type"] == "message", timeout=10)
    assert seqs(live)[0] == len(everything) + 1, "a live event after the replay continues the sequence"


def test_a_client_that_drops_mid_run_misses_nothing(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api, policy="never")
    with server.connect(session_id, after=0) as ws:
        first = [receive(ws, 30) for _ in range(5)]
    assert None not in first
    with server.connect(session_id, after=5) as ws:
        rest = read_until(ws, is_state("done", "failed", "stopped"), timeout=120)
        rest += read_idle(ws, 0.5, first=0.5)
    got = seqs([e for e in first if e is not None] + rest)
    assert got == list(range(1, len(got) + 1)), got
    assert wait_for(api, session_id)["state"] == "done"
    everything = persisted_events(server, session_id)
    assert seqs(everything) == got
    assert [without_time(e) for e in rest] == [without_time(e) for e in everything[5:]]
    assert [e["at"] for e in rest] == [e["at"] for e in everything[5:]], "live and replayed times must be the same"


def without_time(event: Event) -> Event:
    return {key: value for key, value in event.items() if key != "at"}


def test_approve_over_the_websocket(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    with server.connect(session_id, after=0) as ws:
        read_idle(ws, 0.5)
        ws.send(json.dumps({"action": "approve", "step_id": pending["id"], "proposal": pending["proposal"],
                            "preview": pending["preview"]["id"]}))  # fmt: skip
        events = read_until(ws, lambda e: e["type"] == "step_finished" and e["data"].get("step_id") == pending["id"])
    assert for_step(events, "step_started", pending["id"]) == []  # committed as previewed: no second run
    assert [e["type"] for e in events[-2:]] == ["version_created", "step_finished"]
    assert events[-2]["data"]["version"] == pending["preview"]["version"]
    assert [e for e in events if e["type"] == "error"] == []
    session = wait_for_gate(api, session_id)
    assert step_by_id(session, pending["id"])["status"] == "done"
    assert [v["step_id"] for v in versions(api, session_id)] == [None, pending["id"]]


def test_an_edit_over_the_websocket_comes_back_as_a_new_preview(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    edited = {**pending["params"], "infer": False}
    with server.connect(session_id, after=len(persisted_events(server, session_id))) as ws:
        ws.send(json.dumps({"action": "preview", "step_id": pending["id"], "proposal": pending["proposal"],
                            "params": edited}))  # fmt: skip
        events = read_until(ws, lambda e: e["type"] == "approval_requested", timeout=60)
    assert [e for e in events if e["type"] == "error"] == []
    assert events[0]["type"] in {"session_state", "preview_started"}
    asked = events[-1]["data"]
    assert asked["id"] == pending["id"] and asked["proposal"] != pending["proposal"]
    assert asked["preview"]["params"] == asked["params"] and asked["params"]["infer"] is False


def test_invalid_actions_answer_with_error_frames_and_keep_the_connection(server: Server, api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    bad_frames = [
        ("not json at all", None),
        (json.dumps({"action": "dance"}), None),
        (json.dumps({"action": "approve", "step_id": pending["id"]}), 422),  # no proposal named
        (json.dumps({"action": "approve", "step_id": 10**9, "proposal": pending["proposal"]}), 404),
        (json.dumps({"action": "approve", "step_id": pending["id"], "proposal": "ab" * 16}), 409),
        (
            json.dumps(
                {
                    "action": "approve",
                    "step_id": pending["id"],
                    "proposal": pending["proposal"],
                    "params": {"no_such_field": 1},
                }
            ),
            422,
        ),
    ]
    with server.connect(session_id, after=0) as ws:
        read_idle(ws, 0.5)
        for frame, status in bad_frames:
            ws.send(frame)
            error = read_until(ws, lambda e: e["type"] == "error", timeout=10)[-1]
            assert error["data"]["detail"], frame
            assert isinstance(error["data"]["status"], int) and error["data"]["status"] >= 400, error
            if status is not None:
                assert error["data"]["status"] == status, error
        assert "no_such_field" in error["data"]["detail"]
        ws.send(json.dumps({"action": "message", "text": "still listening?"}))
        reply = read_until(ws, lambda e: e["type"] == "message", timeout=10)[-1]
    assert "still listening?" in json.dumps(reply["data"])
    session = get_session(api, session_id)
    assert session["state"] == "awaiting_approval" and session["pending_step"]["id"] == pending["id"]
    assert len(versions(api, session_id)) == 1


def test_an_unknown_session_closes_with_4404(server: Server) -> None:
    assert close_code(server.ws_url("no-such-session")) == 4404
