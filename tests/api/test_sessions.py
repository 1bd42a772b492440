"""Sessions over HTTP: create, list, read, profile, chat, undo, stop; the registry and the probes."""

from __future__ import annotations

import time

import httpx

from tests.api.conftest import (
    approve,
    get_session,
    messy_csv,
    new_session,
    step_by_id,
    upload,
    versions,
    wait_for,
    wait_for_gate,
)
from tools.landlock import abi_version

STEP_FIELDS = {"id", "key", "tool", "params", "rationale", "status", "summary", "error", "metrics", "findings",
               "charts", "version", "started_at", "finished_at"}  # fmt: skip
SESSION_FIELDS = {"id", "state", "target", "task", "goal", "policy", "source", "version", "plan", "pending_step",
                  "score_before", "score_after", "error", "created_at", "updated_at"}  # fmt: skip
BUILT_INS = {"feature_types", "coerce_types", "drop_columns", "drop_rows", "impute", "duplicates", "outliers",
             "label_issues", "leakage", "evaluate"}  # fmt: skip


def test_create_answers_201_with_the_session(api: httpx.Client) -> None:
    response = upload(api, messy_csv(), filename="clinic visits.csv", goal="predict outcome")
    assert response.status_code == 201, response.text
    session = response.json()
    assert session.keys() >= SESSION_FIELDS
    assert session["target"] == "outcome" and session["task"] == "classification"
    assert session["goal"] == "predict outcome" and session["policy"] == "mutating"
    assert session["source"] == "clinic visits.csv"
    assert session["version"]
    for step in session["plan"]:
        assert step.keys() >= STEP_FIELDS


def test_list_and_get_show_the_session(api: httpx.Client) -> None:
    session_id = new_session(api)
    listed = api.get("/api/sessions")
    assert listed.status_code == 200
    assert session_id in [s["id"] for s in listed.json()["items"]]
    assert get_session(api, session_id)["id"] == session_id


def test_a_new_session_scores_the_baseline_and_stops_at_the_first_change(api: httpx.Client) -> None:
    session = wait_for_gate(api, new_session(api))
    baseline = session["plan"][0]
    assert (baseline["tool"], baseline["status"]) == ("evaluate", "done")
    assert "score" in baseline["metrics"] and session["score_before"] is not None
    pending = session["pending_step"]
    assert pending["tool"] == "coerce_types"
    assert step_by_id(session, pending["id"])["status"] == "awaiting_approval"
    assert pending["rationale"] and "properties" in pending["params_schema"]


def test_profile_describes_every_column(api: httpx.Client) -> None:
    session_id = new_session(api)
    response = api.get(f"/api/sessions/{session_id}/profile")
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["n_rows"] == 200
    assert {"record_id", "age", "weight", "outcome"} <= profile["columns"].keys()
    assert profile["columns"]["age"]["numeric_as_text"] is True


def test_unknown_session_is_404_with_a_message(api: httpx.Client) -> None:
    for path in ("", "/profile", "/versions", "/messages", "/report"):
        response = api.get(f"/api/sessions/no-such-session{path}")
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"], path


def test_an_empty_file_is_refused_naming_it(api: httpx.Client) -> None:
    response = upload(api, b"", filename="empty.csv")
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "empty.csv" in detail and "empty" in detail.lower()


def test_a_wrong_target_is_refused_with_the_columns_and_a_suggestion(api: httpx.Client) -> None:
    response = upload(api, messy_csv(), target="outcom")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "'outcom'" in detail and "Did you mean 'outcome'" in detail
    assert "record_id" in detail and "weight" in detail


def test_an_unknown_policy_is_refused(api: httpx.Client) -> None:
    response = upload(api, messy_csv(), policy="sometimes")
    assert response.status_code == 422, response.text
    assert "policy" in response.text


def test_messages_are_stored_and_listed(api: httpx.Client) -> None:
    session_id = new_session(api)
    response = api.post(f"/api/sessions/{session_id}/messages", json={"text": "age over 120 is impossible"})
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["role"] == "user" and message["text"] == "age over 120 is impossible"
    listed = api.get(f"/api/sessions/{session_id}/messages")
    assert listed.status_code == 200
    assert message["id"] in [m["id"] for m in listed.json()["items"] if m["role"] == "user"]


def test_undo_returns_to_the_parent_version(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    first = versions(api, session_id)
    assert len(first) == 1 and first[0]["current"]
    assert approve(api, session_id, pending).status_code == 200
    wait_for_gate(api, session_id)
    after = versions(api, session_id)
    assert [v["step_id"] for v in after] == [None, pending["id"]]
    assert after[1]["parent"] == first[0]["id"]

    response = api.post(f"/api/sessions/{session_id}/undo")
    assert response.status_code == 200, response.text
    session = wait_for(api, session_id)
    assert session["version"] == first[0]["id"]
    assert step_by_id(session, pending["id"])["status"] == "reverted"
    assert [v["id"] for v in versions(api, session_id) if v["current"]] == [first[0]["id"]]


def test_undo_at_the_first_version_is_a_conflict(api: httpx.Client) -> None:
    session_id = new_session(api)
    wait_for_gate(api, session_id)
    response = api.post(f"/api/sessions/{session_id}/undo")
    assert response.status_code == 409, response.text
    assert response.json()["detail"]


def test_stop_ends_the_session_and_nothing_runs_after(api: httpx.Client) -> None:
    session_id = new_session(api)
    pending = wait_for_gate(api, session_id)["pending_step"]
    response = api.post(f"/api/sessions/{session_id}/stop")
    assert response.status_code == 200, response.text
    assert wait_for(api, session_id)["state"] == "stopped"
    assert approve(api, session_id, pending).status_code in {404, 409}
    time.sleep(0.5)
    session = get_session(api, session_id)
    assert session["state"] == "stopped" and session["pending_step"] is None
    assert [s for s in session["plan"] if s["status"] in {"running", "done"} and s["tool"] != "evaluate"] == []
    assert len(versions(api, session_id)) == 1


def test_tools_lists_the_built_ins_with_json_schemas(api: httpx.Client) -> None:
    response = api.get("/api/tools")
    assert response.status_code == 200
    tools = {tool["name"]: tool for tool in response.json()["tools"]}
    assert tools.keys() >= BUILT_INS
    for name in BUILT_INS:
        assert tools[name]["description"] and isinstance(tools[name]["mutates"], bool)
        assert tools[name]["params_schema"]["type"] == "object", name
    assert not tools["evaluate"]["mutates"] and tools["impute"]["mutates"]
    assert "method" in tools["impute"]["params_schema"]["properties"]


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").status_code == 200
    ready = api.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    layers = body["layers"]
    assert set(layers) == {"namespaces", "landlock_abi", "landlock_tcp", "landlock_scoped", "audit_hooks"}
    assert body["kernel_isolation"] == (layers["namespaces"] and layers["landlock_abi"] > 0)
    assert layers["landlock_abi"] == abi_version() and "audit hooks" in body["isolation"]
