"""The LLM coordinator and worker through the real ``openai`` client and the real engine, against
the fake OpenAI-compatible server: a good run, broken answers, rejections, failures, time-outs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from copilot.session.engine import Engine
from copilot.session.views import SessionView
from tests.conftest import messy_table
from tests.llm.conftest import OWNER, llm_settings, wait_for
from tests.llm.fake_openai import Script

GOOD_PLAN = [("evaluate:baseline", "evaluate"), ("coerce_types", "coerce_types"), ("impute", "impute"),
             ("evaluate:final", "evaluate")]  # fmt: skip
GATES = {"awaiting_approval", "done", "failed", "stopped"}


def _create(engine: Engine, tmp_path: Path, rows: int = 120, policy: str = "mutating") -> SessionView:
    upload = tmp_path / "upload.csv"
    messy_table(rows).to_csv(upload, index=False)
    return engine.create_session(upload, "patients.csv", "outcome", OWNER, policy=policy)  # type: ignore[arg-type]


def _approve_all(engine: Engine, session_id: str) -> SessionView:
    """Approve every step as it comes, until the session ends."""
    for _ in range(30):
        view = wait_for(engine, session_id, GATES)
        if view.state != "awaiting_approval":
            return view
        assert view.pending_step is not None
        engine.approve(session_id, view.pending_step.id, OWNER, view.pending_step.proposal)
    raise AssertionError("the session did not end")


def _requests(script: Script, kind: str) -> list[dict[str, Any]]:
    shape = {"plan": "response_format", "call": "tools"}[kind]
    return [r for r in script.requests if r.get(shape)]


def _assistant_texts(engine: Engine, session_id: str) -> list[str]:
    return [m.text for m in engine.messages(session_id, OWNER) if m.role == "assistant"]


def test_a_good_run_plans_and_calls_tools_through_the_llm(llm_engine: Engine, script: Script, tmp_path: Path) -> None:
    script.steps = GOOD_PLAN
    script.arguments = {"impute": {"method": "simple"}, "evaluate": {"folds": 3}}
    session = _create(llm_engine, tmp_path)
    done = _approve_all(llm_engine, session.id)
    assert done.state == "done" and done.agents == "llm:fake-model"
    assert [s.key for s in done.plan] == [k for k, _ in GOOD_PLAN]
    assert all(s.status == "done" for s in done.plan)
    impute = next(s for s in done.plan if s.tool == "impute")
    assert impute.params["method"] == "simple"  # the worker's choice, not the rule-based "auto"
    assert next(s for s in done.plan if s.key == "evaluate:final").params["folds"] == 3
    final = pd.read_parquet(llm_engine.version_file(session.id, done.version, OWNER))
    assert final[["age", "weight"]].notna().all().all() and pd.api.types.is_numeric_dtype(final["age"])
    usage = done.llm_usage
    plans, calls = _requests(script, "plan"), _requests(script, "call")
    assert usage["calls"] == len(plans) + len(calls) and usage["fallbacks"] == 0
    assert usage["prompt_tokens"] == 100 * usage["calls"]
    assert {t["function"]["name"] for t in calls[0]["tools"]} >= {"impute", "outliers", "label_issues"}
    assert _assistant_texts(llm_engine, session.id) == []


def test_broken_json_gets_a_correction_and_then_the_call_passes(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    script.steps = GOOD_PLAN
    script.arguments = {"impute": {"method": "simple"}}
    script.fault("call", "broken_json@impute")
    session = _create(llm_engine, tmp_path)
    done = _approve_all(llm_engine, session.id)
    impute_calls = [r for r in _requests(script, "call") if '"tool": "impute"' in r["messages"][1]["content"]]
    retry = impute_calls[1]["messages"]
    assert retry[-1]["role"] == "tool" and "not valid JSON" in retry[-1]["content"]
    assert next(s for s in done.plan if s.tool == "impute").params["method"] == "simple"
    assert done.llm_usage["fallbacks"] == 0


def test_an_unknown_tool_and_a_missing_column_are_corrected(llm_engine: Engine, script: Script, tmp_path: Path) -> None:
    script.steps = GOOD_PLAN
    script.arguments = {"impute": {"method": "knn"}}
    script.fault("call", "unknown_tool@impute", "missing_column@impute")
    session = _create(llm_engine, tmp_path)
    done = _approve_all(llm_engine, session.id)
    last = [r["messages"][-1] for r in _requests(script, "call")]
    corrections = [m["content"] for m in last if m["role"] == "tool"]
    assert any("no tool named 'clean_everything'" in c for c in corrections)
    assert any("no_such_column" in c and "does not have" in c for c in corrections)
    assert next(s for s in done.plan if s.tool == "impute").params["method"] == "knn"


def test_a_worker_that_stays_wrong_hands_the_step_to_the_rule_based_worker(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    script.steps = GOOD_PLAN
    script.fault("call", *["missing_column@impute"] * 3)
    session = _create(llm_engine, tmp_path)
    view = _approve_until(llm_engine, session.id, "impute")
    assert view.pending_step is not None and view.pending_step.params["method"] == "auto"  # the rule-based choice
    assert view.llm_usage["fallbacks"] == 1
    assert any("LLM worker could not prepare `impute`" in t for t in _assistant_texts(llm_engine, session.id))


def _approve_until(engine: Engine, session_id: str, tool: str) -> SessionView:
    for _ in range(20):
        view = wait_for(engine, session_id, GATES)
        assert view.pending_step is not None, f"the session ended before {tool}"
        if view.pending_step.tool == tool:
            return view
        engine.approve(session_id, view.pending_step.id, OWNER, view.pending_step.proposal)
    raise AssertionError(f"{tool} was never proposed")


def test_a_rejection_reaches_the_coordinator_which_plans_around_it(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    script.steps = GOOD_PLAN
    session = _create(llm_engine, tmp_path)
    view = _approve_until(llm_engine, session.id, "coerce_types")
    assert view.pending_step is not None
    llm_engine.reject(session.id, view.pending_step.id, OWNER, view.pending_step.proposal, "age codes are meaningful")
    after = wait_for(llm_engine, session.id, GATES)
    assert after.pending_step is not None and after.pending_step.tool == "impute"
    history = json.loads(_requests(script, "plan")[-1]["messages"][1]["content"])["history"]
    assert {"key": "coerce_types", "status": "rejected"}.items() <= next(
        h for h in history if h["key"] == "coerce_types"
    ).items()


def test_a_500_is_retried_and_the_llm_keeps_planning(llm_engine: Engine, script: Script, tmp_path: Path) -> None:
    script.steps = GOOD_PLAN
    script.fault("plan", "http_500")
    session = _create(llm_engine, tmp_path, policy="always")
    view = wait_for(llm_engine, session.id, GATES)
    assert view.agents == "llm:fake-model" and view.llm_usage["fallbacks"] == 0
    assert len(_requests(script, "plan")) == 2  # the 500, then the SDK's retry
    assert view.plan[0].rationale == "Scripted step evaluate:baseline."


def test_time_outs_fall_back_to_the_rule_based_coordinator_and_say_so(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    script.steps = GOOD_PLAN
    script.fault("plan", "timeout", "timeout")
    script.delay_s = 3.0
    session = _create(llm_engine, tmp_path, policy="always")
    view = wait_for(llm_engine, session.id, GATES, timeout=30)
    assert view.state == "awaiting_approval" and view.agents == "rule-based"
    assert view.llm_usage["fallbacks"] == 1 and view.llm_usage["failed_calls"] == 1
    notes = _assistant_texts(llm_engine, session.id)
    assert any("could not plan (the LLM" in n and "rule-based coordinator planned instead" in n for n in notes)


def test_nonsense_gets_one_correction_then_the_rule_based_plan(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    script.fault("plan", "nonsense", "nonsense")
    session = _create(llm_engine, tmp_path, policy="always")
    view = wait_for(llm_engine, session.id, GATES)
    plans = _requests(script, "plan")
    assert "does not match the schema" in plans[1]["messages"][-1]["content"]
    assert view.agents == "rule-based" and view.plan[0].key == "evaluate:baseline"
    assert any("still invalid after a correction" in n for n in _assistant_texts(llm_engine, session.id))


def test_the_budget_caps_llm_calls_per_session(tmp_path: Path, script: Script) -> None:
    engine = Engine(llm_settings(tmp_path, llm_max_calls=3))
    engine.start()
    try:
        script.steps = GOOD_PLAN
        session = _create(engine, tmp_path)
        done = _approve_all(engine, session.id)
    finally:
        engine.close()
    assert done.state == "done" and done.llm_usage["calls"] == 3 == len(script.requests)
    assert any("budget of 3 calls is used up" in t for t in _assistant_texts(engine, session.id))


def test_backtracking_restores_the_version_before_the_step(llm_engine: Engine, script: Script, tmp_path: Path) -> None:
    def plan(task: dict[str, Any]) -> dict[str, Any]:
        seen = {h["key"] for h in task["history"]}
        if "outliers" not in seen:
            return {"steps": [{"key": "outliers", "tool": "outliers", "rationale": "`weight` has a slip."}]}
        if task["current_step"] == "outliers" and "revert:outliers" not in seen:
            why = "The score fell after outliers; undo it."
            return {"steps": [{"key": "revert:outliers", "tool": "revert", "rationale": why}]}
        return {"steps": []}

    script.plan_fn = plan
    script.arguments = {"outliers": {"method": "robust_z", "action": "set_missing", "threshold": 3.0}}
    session = _create(llm_engine, tmp_path)
    first_version = session.version
    view = _approve_until(llm_engine, session.id, "outliers")
    assert view.pending_step is not None
    llm_engine.approve(session.id, view.pending_step.id, OWNER, view.pending_step.proposal)
    view = wait_for(llm_engine, session.id, GATES)
    assert view.version != first_version
    assert view.pending_step is not None and view.pending_step.tool == "revert"
    assert view.pending_step.rationale == "The score fell after outliers; undo it."
    llm_engine.approve(session.id, view.pending_step.id, OWNER, view.pending_step.proposal)
    done = wait_for(llm_engine, session.id, {"done"})
    assert done.version == first_version
    assert {s.key: s.status for s in done.plan} == {"outliers": "reverted", "revert:outliers": "done"}
    assert [s.tool for s in llm_engine.pipeline(session.id, OWNER).steps] == []
