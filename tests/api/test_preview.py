"""Preview, then approve, over real HTTP: the gate shows the change itself, and approving commits exactly it.

A data-changing step runs once, before the person is asked; its table waits as a pending version that is
no version of the session. Approving names the proposal (and may name the preview) and moves the session
to that very table (the same content hash) with no second run; editing makes a new preview; anything that
does not name the preview shown, or comes after the data moved on, commits nothing.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import (
    Server,
    approve,
    edit,
    for_step,
    get_session,
    messy_csv,
    new_session,
    persisted_events,
    reject,
    step_by_id,
    versions,
    wait_for,
    wait_for_gate,
)


def gate_of(api: httpx.Client, session_id: str, tool: str) -> dict[str, Any]:
    """Approve every step before the first ``tool`` step and return the session waiting at it."""
    session = wait_for_gate(api, session_id)
    while session["pending_step"]["tool"] != tool:
        response = approve(api, session_id, session["pending_step"])
        assert response.status_code == 200, response.text
        session = wait_for_gate(api, session_id)
    return session


def approve_preview(api: httpx.Client, session_id: str, pending: dict[str, Any], **body: Any) -> httpx.Response:
    return api.post(f"/api/sessions/{session_id}/steps/{pending['id']}/approve",
                    json={"proposal": pending["proposal"], "preview": pending["preview"]["id"], **body})  # fmt: skip


def test_approving_commits_the_previewed_table_and_runs_nothing_again(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    session = wait_for_gate(api, session_id)
    pending, shown = session["pending_step"], session["pending_step"]["preview"]
    assert pending["tool"] == "coerce_types" and shown["status"] == "ready"
    assert shown["base_version"] == session["version"] and shown["params"] == pending["params"]
    assert len(versions(api, session_id)) == 1  # previewed, not committed: the lineage has not moved
    by_column = {c["column"]: c for c in shown["columns"]}
    assert by_column["age"]["dtype_after"] == "float64" and by_column["age"]["changed"] == 10  # the '?' codes
    assert {(c["before"], c["after"]) for c in shown["cells"] if c["column"] == "age"} == {("?", None)}
    requested = [e for e in persisted_events(server, session_id) if e["type"] == "approval_requested"]
    assert requested[-1]["data"]["preview"]["id"] == shown["id"]  # the event carries the same preview

    response = approve_preview(api, session_id, pending)
    assert response.status_code == 200, response.text
    after = wait_for_gate(api, session_id)
    current = next(v for v in versions(api, session_id) if v["current"])
    assert (current["id"], current["content_hash"]) == (shown["version"], shown["content_hash"])
    assert (current["n_rows"], current["n_columns"]) == (shown["rows_after"], shown["columns_after"])
    step = step_by_id(after, pending["id"])
    assert step["status"] == "done" and step["runs"] == 1 and step["summary"] == shown["summary"]
    events = persisted_events(server, session_id)
    assert len(for_step(events, "preview_started", pending["id"])) == 1
    assert for_step(events, "step_started", pending["id"]) == []


def test_the_preview_can_also_be_named_by_its_content_hash(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    body = {"proposal": pending["proposal"], "preview": pending["preview"]["content_hash"]}
    response = api.post(f"/api/sessions/{session_id}/steps/{pending['id']}/approve", json=body)
    assert response.status_code == 200, response.text
    assert step_by_id(wait_for_gate(api, session_id), pending["id"])["version"] == pending["preview"]["version"]


def test_an_approval_naming_another_preview_or_other_params_commits_nothing(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    other = {**pending["params"], "infer": False}
    for body in ({"preview": "ab" * 16}, {"params": other}):
        response = api.post(f"/api/sessions/{session_id}/steps/{pending['id']}/approve",
                            json={"proposal": pending["proposal"], **body})  # fmt: skip
        assert response.status_code == 409, response.text
        assert "nothing was committed" in response.json()["detail"], response.text
    session = get_session(api, session_id)
    assert session["pending_step"] == pending and len(versions(api, session_id)) == 1
    same = approve_preview(api, session_id, pending, params=pending["params"])  # the previewed ones: fine
    assert same.status_code == 200, same.text


def test_editing_makes_a_new_preview_that_is_approved_in_turn(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    edited = {"columns": {"age": {"type": "numeric", "min": 0, "max": 60}}, "infer": False}
    first = edit(api, session_id, pending, edited)
    assert first.status_code == 200, first.text
    assert edit(api, session_id, pending, edited).status_code == 200  # a retried edit makes no third preview
    again = wait_for_gate(api, session_id)["pending_step"]
    assert again["id"] == pending["id"] and again["proposal"] != pending["proposal"]
    assert again["preview"]["id"] != pending["preview"]["id"] and again["preview"]["params"]["infer"] is False
    assert {c["column"] for c in again["preview"]["columns"]} == {"age"}  # smoker is no longer inferred
    assert approve(api, session_id, pending).status_code == 409  # the first preview is gone
    assert approve_preview(api, session_id, again).status_code == 200
    step = step_by_id(wait_for_gate(api, session_id), pending["id"])
    assert step["params"]["infer"] is False and step["runs"] == 2  # two previews, no run after approval
    assert step["version"] == again["preview"]["version"]
    assert len(for_step(persisted_events(server, session_id), "preview_started", pending["id"])) == 2


def test_a_failing_preview_fails_before_anything_is_asked(api: httpx.Client, server: Server) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    response = edit(api, session_id, pending, {"columns": {"city": {"type": "numeric"}}, "infer": False})
    assert response.status_code == 200, response.text  # valid by the schema; the tool itself refuses
    session = wait_for(api, session_id)
    step = step_by_id(session, pending["id"])
    assert step["status"] == "failed" and "'city'" in step["error"] and "cannot be read as numeric" in step["error"]
    asked = [e for e in persisted_events(server, session_id) if e["type"] == "approval_requested"]
    assert [e["data"]["proposal"] for e in asked if e["data"]["id"] == pending["id"]] == [pending["proposal"]]
    assert session["pending_step"] is None or session["pending_step"]["proposal"] != pending["proposal"]
    assert all(v["step_id"] != pending["id"] for v in versions(api, session_id))


def test_a_preview_of_a_version_no_longer_current_is_refused(api: httpx.Client) -> None:
    session_id = new_session(api)
    first = wait_for_gate(api, session_id)["pending_step"]
    assert approve_preview(api, session_id, first).status_code == 200
    waiting = wait_for_gate(api, session_id)
    pending = waiting["pending_step"]
    assert pending["preview"]["base_version"] == waiting["version"]
    assert api.post(f"/api/sessions/{session_id}/undo").status_code == 200
    count = len(versions(api, session_id))
    late = approve_preview(api, session_id, pending)
    assert late.status_code == 409, late.text
    session = wait_for_gate(api, session_id)
    assert session["pending_step"]["preview"]["base_version"] == session["version"] != waiting["version"]
    assert len(versions(api, session_id)) == count
    assert step_by_id(session, first["id"])["status"] == "reverted"


def test_rejecting_discards_the_preview(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    assert reject(api, session_id, pending, "keep the codes as text").status_code == 200
    assert approve_preview(api, session_id, pending).status_code == 409
    session = wait_for_gate(api, session_id)
    assert session["pending_step"]["id"] != pending["id"] and len(versions(api, session_id)) == 1
    gone = api.get(f"/api/sessions/{session_id}/previews/{pending['preview']['id']}/rows")
    assert gone.status_code == 200 and gone.json()["total"] == 0  # still readable, as the record of what was refused


def test_the_rows_a_step_would_drop_come_with_its_evidence_page_by_page(api: httpx.Client) -> None:
    session_id = new_session(api, messy_csv(300))  # 300 rows: enough for the step to see flipped labels
    session = gate_of(api, session_id, "label_issues")
    shown = session["pending_step"]["preview"]
    assert shown["dropped_rows"] > 0 and shown["rows_after"] == shown["rows_before"] - shown["dropped_rows"]
    assert {"given", "suggested"} <= set(shown["evidence_columns"])
    for row in shown["dropped"]:
        assert row["evidence"]["given"] == row["values"]["outcome"] != row["evidence"]["suggested"]
    counts = shown["class_counts"]
    assert sum(before - after for before, after in counts.values()) == shown["dropped_rows"]
    base = f"/api/sessions/{session_id}/previews/{shown['id']}/rows"
    seen = []
    for offset in range(0, shown["dropped_rows"], 2):
        page = api.get(base, params={"offset": offset, "limit": 2})
        assert page.status_code == 200, page.text
        assert page.json()["total"] == shown["dropped_rows"]
        seen += [r["row"] for r in page.json()["rows"]]
    assert seen == sorted(seen) and len(set(seen)) == shown["dropped_rows"]
    assert seen[: len(shown["dropped"])] == [r["row"] for r in shown["dropped"]]
    assert approve_preview(api, session_id, session["pending_step"]).status_code == 200
    current = next(v for v in versions(api, session_id) if v["current"])
    assert current["n_rows"] == shown["rows_after"]


def test_the_changed_cells_of_a_column_page_by_page(api: httpx.Client) -> None:
    session_id = new_session(api)
    session = gate_of(api, session_id, "impute")
    shown = session["pending_step"]["preview"]
    filled = {c["column"]: c["changed"] for c in shown["columns"] if c["changed"]}
    assert filled and sum(filled.values()) == shown["changed_cells"]
    for column, changed in filled.items():
        page = api.get(f"/api/sessions/{session_id}/previews/{shown['id']}/cells",
                       params={"column": column, "limit": 500})  # fmt: skip
        assert page.status_code == 200, page.text
        cells = page.json()["cells"]
        assert page.json()["total"] == len(cells) == changed
        assert all(c["before"] is None and c["after"] is not None for c in cells)  # imputation fills gaps only


def test_preview_pages_refuse_what_they_do_not_hold(api: httpx.Client) -> None:
    session_id = new_session(api)
    shown = wait_for_gate(api, session_id)["pending_step"]["preview"]
    base = f"/api/sessions/{session_id}/previews"
    assert api.get(f"{base}/{'f' * 32}/rows").status_code == 404
    assert api.get(f"{base}/../../etc/rows").status_code == 404
    missing = api.get(f"{base}/{shown['id']}/cells", params={"column": "no_such_column"})
    assert missing.status_code == 404 and "no_such_column" in missing.json()["detail"]
    assert api.get(f"{base}/{shown['id']}/rows", params={"limit": 0}).status_code == 422
    other = new_session(api)
    assert api.get(f"/api/sessions/{other}/previews/{shown['id']}/rows").status_code == 404
