"""An approval runs exactly what the person saw, and the person's rules bind every call: tried over a real server.

Each test takes an ordinary path a careless or hostile client can take (a stale tab, an old proposal replayed
after the plan changed, an edit that breaks a rule, stop and undo while a step runs, "approve" in the chat
with no proposal on screen) and checks what actually ran: the stored events and the version list.
"""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pandas as pd

from tests.api.conftest import (
    Server,
    approve,
    csv_bytes,
    get_session,
    new_session,
    persisted_events,
    read_until,
    step_by_id,
    versions,
    wait_for,
    wait_for_gate,
)


def duplicated_csv(n: int = 120) -> bytes:
    """A clean table with five repeated rows: after the baseline score, the first gate is ``duplicates``
    with ``action: drop``."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"age": rng.integers(20, 80, n), "bmi": rng.normal(25, 4, n).round(1),
                          "outcome": rng.choice(["a", "b"], n)})  # fmt: skip
    return csv_bytes(pd.concat([table, table.iloc[:5]], ignore_index=True))


def say(api: httpx.Client, session_id: str, text: str, **seen: str) -> None:
    response = api.post(f"/api/sessions/{session_id}/messages", json={"text": text, **seen})
    assert response.status_code == 201, response.text


def runs(server: Server, session_id: str) -> list[int]:
    """The steps whose outcome was kept, in order: a read-only step that ran, a preview that was committed."""
    return [e["data"]["step_id"] for e in persisted_events(server, session_id) if e["type"] == "step_finished"]


def test_a_stale_approval_after_a_chat_rule_is_409_and_runs_nothing(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api, duplicated_csv())
    shown = wait_for_gate(api, session_id)["pending_step"]
    assert (shown["tool"], shown["params"]["action"]) == ("duplicates", "drop")
    ran_before = runs(server, session_id)
    say(api, session_id, "never drop rows")
    now = wait_for_gate(api, session_id)["pending_step"]
    assert now["proposal"] != shown["proposal"] and now["params"]["action"] != "drop"
    stale = approve(api, session_id, shown)
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert "not waiting for approval" in body["detail"] and body["pending"]["proposal"] == now["proposal"]
    with server.connect(session_id, after=None) as ws:
        ws.send(json.dumps({"action": "approve", "step_id": shown["id"], "proposal": shown["proposal"]}))
        error = read_until(ws, lambda e: e["type"] == "error", timeout=10)[-1]
    assert error["data"]["status"] == 409 and error["data"]["pending"]["proposal"] == now["proposal"]
    assert runs(server, session_id) == ran_before
    session = get_session(api, session_id)
    assert session["pending_step"]["proposal"] == now["proposal"] and len(versions(api, session_id)) == 1
    assert shown["id"] != now["id"] and shown["id"] not in [s["id"] for s in session["plan"]]  # ids never reused


def test_an_edited_drop_after_never_drop_rows_is_refused_quoting_the_rule(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api, duplicated_csv())
    wait_for_gate(api, session_id)
    say(api, session_id, "never drop rows")
    pending = wait_for_gate(api, session_id)["pending_step"]
    assert pending["tool"] == "duplicates" and pending["params"]["action"] == "flag"
    refused = approve(api, session_id, pending, {**pending["params"], "action": "drop"})
    assert refused.status_code == 422, refused.text
    assert "your rule says never drop rows" in refused.json()["detail"]
    session = get_session(api, session_id)
    assert session["pending_step"]["proposal"] == pending["proposal"]  # still waiting, as it was
    assert len(versions(api, session_id)) == 1 and pending["id"] not in runs(server, session_id)
    assert approve(api, session_id, pending).status_code == 200  # as proposed (flag), it runs
    flagged = step_by_id(wait_for(api, session_id), pending["id"])
    assert flagged["status"] == "done" and flagged["params"]["action"] == "flag"


def test_approve_in_the_chat_acts_only_on_the_proposal_on_screen(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api, duplicated_csv())
    shown = wait_for_gate(api, session_id)["pending_step"]
    say(api, session_id, "approve")  # a script or an old client: no proposal named
    say(api, session_id, "yes", proposal="ab" * 16)  # a proposal that is not the pending one
    session = wait_for_gate(api, session_id)
    assert session["pending_step"]["proposal"] == shown["proposal"] and shown["id"] not in runs(server, session_id)
    messages = api.get(f"/api/sessions/{session_id}/messages").json()["items"]
    replies = [m["text"] for m in messages if m["role"] == "assistant"]
    assert any("does not say which proposal you saw" in r for r in replies), replies
    assert any("not waiting for approval" in r for r in replies), replies
    say(api, session_id, "approve", proposal=shown["proposal"])
    done = step_by_id(wait_for(api, session_id), shown["id"])
    assert done["status"] == "done" and runs(server, session_id).count(shown["id"]) == 1


def test_stop_then_undo_while_a_step_runs_leaves_a_consistent_session(api: httpx.Client, server: Server) -> None:
    """A step runs while its preview is made: a stop cancels it (or, if the preview is ready by then, withdraws
    it from the gate), and nothing it made is kept."""
    session_id = new_session(api, duplicated_csv(3000))
    with server.connect(session_id, after=0) as ws:
        started = read_until(ws, lambda e: e["type"] in {"preview_started", "approval_requested"})[-1]
    assert started["type"] == "preview_started", started  # the first data-changing step, before its gate
    step_id = started["data"]["step_id"]
    before = [v["id"] for v in versions(api, session_id)]
    assert api.post(f"/api/sessions/{session_id}/stop").status_code == 200
    undo = api.post(f"/api/sessions/{session_id}/undo")  # nothing to undo: the step made nothing
    assert undo.status_code == 409, undo.text
    session = wait_for(api, session_id, frozenset({"stopped"}))
    step = step_by_id(session, step_id)
    assert step["status"] == "skipped" and session["pending_step"] is None, step
    time.sleep(1.0)  # the cancelled preview's end, should it still arrive, changes nothing
    session = get_session(api, session_id)
    assert [v["id"] for v in versions(api, session_id)] == before and session["version"] == before[0]
    assert step_id not in runs(server, session_id)
    assert [s for s in session["plan"] if s["status"] in {"running", "previewing", "awaiting_approval"}] == []
    assert session["state"] == "stopped"  # undo never re-opens a stopped session
