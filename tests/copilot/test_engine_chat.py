"""Chat without an LLM: the engine reads gate actions, rules and questions and acts on them."""

from __future__ import annotations

import time
from pathlib import Path

from copilot.session.conversation import CHAT_HELP
from copilot.session.engine import Engine
from copilot.session.views import SessionView
from tests.conftest import messy_table

OWNER = "alice"
GATES = {"awaiting_approval", "done", "failed", "stopped"}


def _create(engine: Engine, tmp_path: Path) -> SessionView:
    upload = tmp_path / "upload.csv"
    messy_table(150).to_csv(upload, index=False)
    return engine.create_session(upload, "patients.csv", "outcome", OWNER, policy="mutating")


def _wait(engine: Engine, session_id: str, timeout: float = 60) -> SessionView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = engine.get_session(session_id, OWNER)
        if view.state in GATES:
            return view
        time.sleep(0.05)
    raise AssertionError("the session did not reach a gate")


def _replies(engine: Engine, session_id: str) -> list[str]:
    return [m.text for m in engine.messages(session_id, OWNER) if m.role == "assistant"]


def test_rules_said_in_chat_change_the_plan_at_once(engine: Engine, tmp_path: Path) -> None:
    session = _wait(engine, _create(engine, tmp_path).id)
    assert session.pending_step is not None and session.pending_step.tool == "coerce_types"
    assert any(s.key == "drop_columns:useless" and "site" in s.params["columns"] for s in session.plan)
    engine.post_message(session.id, OWNER, "Please keep site, and never drop patients; age must be between 0 and 120")
    after = _wait(engine, session.id)
    assert after.guidance["keep_columns"] == ["site"] and after.guidance["allow_row_drops"] is False
    assert after.guidance["ranges"] == {"age": [0.0, 120.0]}
    assert not any(s.key == "drop_columns:useless" for s in after.plan)
    labels = next(s for s in after.plan if s.tool == "label_issues")
    assert labels.params["action"] == "relabel"
    assert any(s.tool == "outliers" and s.params["ranges"] == {"age": [0.0, 120.0]} for s in after.plan)
    reply = _replies(engine, session.id)[-1]
    assert "Rows will not be dropped." in reply and "`site` will be kept." in reply


def test_approve_and_undo_in_chat_act_on_the_gate(engine: Engine, tmp_path: Path) -> None:
    session = _wait(engine, _create(engine, tmp_path).id)
    first_version = session.version
    assert session.pending_step is not None
    coerce_id = session.pending_step.id
    engine.post_message(session.id, OWNER, "looks good, go ahead")  # names no proposal: nothing runs
    assert _wait(engine, session.id).pending_step == session.pending_step
    assert "does not say which proposal you saw" in _replies(engine, session.id)[-1]
    engine.post_message(session.id, OWNER, "looks good, go ahead", proposal=session.pending_step.proposal)
    after = _wait(engine, session.id)
    assert next(s for s in after.plan if s.id == coerce_id).status == "done"
    assert after.version != first_version
    engine.post_message(session.id, OWNER, "undo")
    undone = _wait(engine, session.id)
    assert undone.version == first_version
    assert next(s for s in undone.plan if s.id == coerce_id).status == "reverted"


def test_questions_are_answered_from_the_profile_and_nonsense_gets_help(engine: Engine, tmp_path: Path) -> None:
    session = _wait(engine, _create(engine, tmp_path).id)
    pending = session.pending_step
    engine.post_message(session.id, OWNER, "how many rows are there?")
    engine.post_message(session.id, OWNER, "purple monkey dishwasher")
    replies = _replies(engine, session.id)
    assert "150 rows" in replies[-2] and replies[-1] == CHAT_HELP
    still = engine.get_session(session.id, OWNER)
    assert still.pending_step == pending  # neither message touched the gate


def test_a_gate_word_with_nothing_waiting_is_answered_not_ignored(engine: Engine, tmp_path: Path) -> None:
    session = _wait(engine, _create(engine, tmp_path).id)
    engine.stop(session.id, OWNER)
    engine.post_message(session.id, OWNER, "approve")
    assert "nothing to approve" in _replies(engine, session.id)[-1]


def test_rules_in_the_goal_bind_the_first_plan(engine: Engine, tmp_path: Path) -> None:
    upload = tmp_path / "upload.csv"
    messy_table(150).to_csv(upload, index=False)
    goal = "Predict outcome; weight must be between 30 and 250; never drop patients"
    session = engine.create_session(upload, "patients.csv", "outcome", OWNER, goal=goal, policy="always")
    assert session.goal == goal and session.guidance["goal"] == goal
    assert session.guidance["ranges"] == {"weight": [30.0, 250.0]} and session.guidance["allow_row_drops"] is False
    outliers = next(s for s in session.plan if s.tool == "outliers")
    assert outliers.params["ranges"] == {"weight": [30.0, 250.0]}
    assert next(s for s in session.plan if s.tool == "label_issues").params["action"] == "relabel"
    assert _replies(engine, session.id) == ["From your goal: `weight` must lie in 30..250. Rows will not be dropped."]
