"""The approval gate holds: no step that changes data runs unless the policy lets it or a person approved it.

Each test tries to get around the gate over HTTP and then checks what actually
ran: the version list (one new version per step that changed data) and the
stored events: a data-changing step runs once, as its preview, before the person
is asked (``preview_started``), and approving it commits that run (``step_finished``).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.conftest import (
    Server,
    approve,
    edit,
    for_step,
    get_session,
    mutating_tools,
    new_session,
    persisted_events,
    reject,
    step_by_id,
    steps_of,
    versions,
    wait_for,
    wait_for_gate,
)

RUN_EVENTS = ("preview_started", "step_started", "step_finished", "step_failed")
ONE_RUN = ["preview_started", "step_finished"]  # previewed at the gate, committed on approval
PREVIEW_ONLY = ["preview_started"]  # previewed at the gate, and nothing since: no version, no commit


def runs_of(server: Server, session_id: str, step_id: int) -> list[str]:
    """What the stored events say happened to the step: ``ONE_RUN`` for one previewed and approved run."""
    events = persisted_events(server, session_id)
    return [e["type"] for kind in RUN_EVENTS for e in for_step(events, kind, step_id)]


def versions_of(api: httpx.Client, session_id: str, step_id: int) -> list[str]:
    return [v["id"] for v in versions(api, session_id) if v["step_id"] == step_id]


def test_nothing_changes_before_approval(api: httpx.Client) -> None:
    session_id = new_session(api)
    session = wait_for_gate(api, session_id)
    assert session["pending_step"]["tool"] in mutating_tools(api)
    time.sleep(1.0)  # a gate that leaks would run the step by now
    session = get_session(api, session_id)
    assert session["state"] == "awaiting_approval"
    mutating = mutating_tools(api)
    assert [s for s in session["plan"] if s["tool"] in mutating and s["status"] in {"running", "done"}] == []
    only = versions(api, session_id)
    assert len(only) == 1 and only[0]["step_id"] is None and session["version"] == only[0]["id"]
    report = api.get(f"/api/sessions/{session_id}/report")
    assert report.status_code == 200
    done = [s["tool"] for s in report.json()["steps"] if s["status"] == "done"]
    assert set(done).isdisjoint(mutating), done


def test_a_step_of_another_session_cannot_be_approved(api: httpx.Client, server: Server) -> None:
    a, b = new_session(api), new_session(api)
    session_a, session_b = wait_for_gate(api, a), wait_for_gate(api, b)
    b_step = session_b["pending_step"]["id"]
    assert b_step not in [s["id"] for s in session_a["plan"]], "step ids must identify one session's step"
    response = approve(api, a, session_b["pending_step"])
    assert response.status_code in {404, 409}, response.text
    assert approve(api, a, 10**9).status_code == 404
    time.sleep(0.5)
    for session_id, before in ((a, session_a), (b, session_b)):
        now = get_session(api, session_id)
        assert now["state"] == "awaiting_approval"
        assert now["pending_step"]["id"] == before["pending_step"]["id"]
        assert len(versions(api, session_id)) == 1
    assert runs_of(server, b, b_step) == PREVIEW_ONLY


def test_approving_twice_runs_the_step_once(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    step_id = pending["id"]
    first, second = approve(api, session_id, pending), approve(api, session_id, pending)
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    session = wait_for_gate(api, session_id)
    assert step_by_id(session, step_id)["status"] == "done"
    assert len(versions_of(api, session_id, step_id)) == 1
    assert runs_of(server, session_id, step_id) == ONE_RUN


def test_concurrent_approvals_run_the_step_once(server: Server) -> None:
    with server.client() as api:
        session_id = new_session(api)
        pending = wait_for_gate(api, session_id)["pending_step"]
        step_id = pending["id"]
        barrier = threading.Barrier(4)
        statuses: list[int] = []

        def approve_at_once() -> None:
            with server.client() as own:
                barrier.wait()
                statuses.append(approve(own, session_id, pending).status_code)

        threads = [threading.Thread(target=approve_at_once) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert statuses == [200] * 4
        wait_for_gate(api, session_id)
        assert len(versions_of(api, session_id, step_id)) == 1
        assert runs_of(server, session_id, step_id) == ONE_RUN


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"infer": [1]}, "infer"),
        ({"no_such_field": 1}, "no_such_field"),
        ({"columns": {"no_such_column": {"type": "numeric"}}}, "no_such_column"),
    ],
    ids=["wrong-type", "unknown-field", "unknown-column"],
)
def test_invalid_params_are_422_naming_the_field_and_the_step_still_waits(
    api: httpx.Client, params: dict[str, object], named: str
) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    assert pending["tool"] == "coerce_types"
    response = edit(api, session_id, pending, params)
    assert response.status_code == 422, response.text
    assert named in str(response.json()["detail"]), response.text
    time.sleep(0.3)
    session = get_session(api, session_id)
    assert session["state"] == "awaiting_approval" and session["pending_step"] == pending
    assert len(versions(api, session_id)) == 1


def test_edited_params_are_the_ones_that_run(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    edited = {"columns": {"age": {"type": "numeric", "min": 0, "max": 120}}, "infer": False}
    assert edit(api, session_id, pending, edited).status_code == 200
    again = wait_for_gate(api, session_id)["pending_step"]
    assert again["id"] == pending["id"] and again["proposal"] != pending["proposal"]
    assert approve(api, session_id, again).status_code == 200
    session = wait_for_gate(api, session_id)
    step = step_by_id(session, pending["id"])
    assert step["status"] == "done"
    assert step["params"]["infer"] is False and step["params"]["columns"]["age"]["max"] == 120


def test_a_rejected_step_is_replaced_and_cannot_be_approved(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    rejected_key = step_by_id(get_session(api, session_id), pending["id"])["key"]
    response = reject(api, session_id, pending, "the '?' codes mean 'not asked', keep them as text")
    assert response.status_code == 200, response.text
    session = wait_for_gate(api, session_id)
    assert step_by_id(session, pending["id"])["status"] == "rejected"
    following = session["pending_step"]
    assert following["id"] != pending["id"]
    assert step_by_id(session, following["id"])["key"] != rejected_key
    again = approve(api, session_id, pending)
    assert again.status_code == 409, again.text
    assert again.json()["detail"]
    assert runs_of(server, session_id, pending["id"]) == PREVIEW_ONLY
    assert versions_of(api, session_id, pending["id"]) == []


def test_approving_a_finished_step_runs_nothing(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    step_id = pending["id"]
    assert approve(api, session_id, pending).status_code == 200
    following = wait_for_gate(api, session_id)["pending_step"]["id"]
    count = len(versions(api, session_id))
    late = approve(api, session_id, pending)
    assert late.status_code in {200, 409}, late.text
    time.sleep(0.5)
    session = get_session(api, session_id)
    assert session["state"] == "awaiting_approval" and session["pending_step"]["id"] == following
    assert len(versions(api, session_id)) == count
    assert runs_of(server, session_id, step_id) == ONE_RUN


def test_policy_never_runs_to_the_end_without_asking(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api, policy="never")
    session = wait_for(api, session_id, timeout=120)
    assert session["state"] == "done", (session["error"], steps_of(session))
    assert session["pending_step"] is None and session["score_after"] is not None
    assert {s["status"] for s in session["plan"]} == {"done"}, steps_of(session)
    assert len(versions(api, session_id)) > 1
    assert [e for e in persisted_events(server, session_id) if e["type"] == "approval_requested"] == []


def test_policy_always_asks_even_for_a_read_only_diagnostic(api: httpx.Client) -> None:
    session_id = new_session(api, policy="always")
    session = wait_for_gate(api, session_id)
    assert session["pending_step"]["tool"] == "evaluate"
    assert session["score_before"] is None
    assert [s for s in session["plan"] if s["status"] == "done"] == []
    assert len(versions(api, session_id)) == 1
