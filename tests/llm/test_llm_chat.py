"""Chat with an LLM set up: answers stream as token events, and rules in free text bind the plan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import Stale
from copilot.session.engine import Engine
from copilot.session.views import EventView, SessionView
from tests.conftest import messy_table
from tests.llm.conftest import OWNER, wait_for
from tests.llm.fake_openai import Script

GATES = {"awaiting_approval", "done", "failed"}


def _create(engine: Engine, tmp_path: Path) -> str:
    upload = tmp_path / "upload.csv"
    messy_table(120).to_csv(upload, index=False)
    return engine.create_session(upload, "patients.csv", "outcome", OWNER, policy="always").id


async def _chat_and_listen(engine: Engine, session_id: str, text: str) -> list[EventView]:
    """Post ``text`` and collect the live events until the assistant's whole message arrives."""
    subscription = engine.bus.subscribe(session_id)
    try:
        await asyncio.to_thread(engine.post_message, session_id, OWNER, text)
        events = []
        while not (events and events[-1].type == "message" and events[-1].data["role"] == "assistant"):
            events.append(await asyncio.wait_for(subscription.get(), timeout=20))
        return events
    finally:
        engine.bus.unsubscribe(subscription)


def test_an_answer_streams_as_tokens_then_is_stored_whole(llm_engine: Engine, script: Script, tmp_path: Path) -> None:
    script.steps = [("evaluate:baseline", "evaluate")]
    script.chat_text = "About 10% of weight is missing, and age holds a few question marks."
    session_id = _create(llm_engine, tmp_path)
    wait_for(llm_engine, session_id, GATES)
    with ThreadPoolExecutor(1) as pool:  # a loop of its own: another test may leave one running in this thread
        events = pool.submit(asyncio.run, _chat_and_listen(llm_engine, session_id, "what worries you?")).result()
    tokens = [e.data["text"] for e in events if e.type == "token"]
    assert len(tokens) == len(script.chat_text.split(" ")) and "".join(tokens).strip() == script.chat_text
    assert events[-1].data["text"] == script.chat_text
    stored = [m.text for m in llm_engine.messages(session_id, OWNER) if m.role == "assistant"]
    assert stored == [script.chat_text]
    usage = wait_for(llm_engine, session_id, GATES).llm_usage
    assert usage["completion_tokens"] >= 10  # the streamed call's usage is counted too


def _settle(engine: Engine, session_id: str, done: Callable[[SessionView], bool]) -> SessionView:
    for _ in range(100):
        view = wait_for(engine, session_id, GATES)
        if done(view):
            return view
    raise AssertionError(f"session {session_id} never got there: {view}")


def test_a_rule_the_llm_reads_in_free_text_binds_only_once_the_person_accepts_it(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    def plan(task: dict[str, Any]) -> dict[str, Any]:
        precious = any("precious" in m for m in task["messages"])
        steps = [{"key": "duplicates", "tool": "duplicates", "rationale": "Rows repeat."}]
        return {"steps": steps, "guidance": {"allow_row_drops": False} if precious else {}}

    script.plan_fn = plan
    script.arguments = {"duplicates": {"mode": "exact", "action": "drop"}}
    session_id = _create(llm_engine, tmp_path)
    first = wait_for(llm_engine, session_id, GATES)
    assert first.pending_step is not None and first.pending_step.params["action"] == "drop"
    llm_engine.post_message(session_id, OWNER, "every record here is precious to the hospital")
    view = _settle(llm_engine, session_id, lambda v: v.rule_suggestion is not None and v.pending_step is not None)
    assert view.guidance["allow_row_drops"] is True  # read by the LLM, not yet the person's rule
    assert view.rule_suggestion is not None and view.rule_suggestion.changes == ["never drop rows"]
    assert view.pending_step is not None and view.pending_step.params["action"] == "drop"
    said = [m.text for m in llm_engine.messages(session_id, OWNER) if m.role == "assistant"]
    assert any("suggests these rules: never drop rows" in m and "accept" in m for m in said), said
    with pytest.raises(Stale):
        llm_engine.accept_rules(session_id, OWNER, "ab" * 16)
    llm_engine.accept_rules(session_id, OWNER, view.rule_suggestion.id)
    view = _settle(
        llm_engine, session_id, lambda v: v.pending_step is not None and v.guidance["allow_row_drops"] is False
    )
    assert view.rule_suggestion is None
    assert view.pending_step is not None and view.pending_step.params["action"] == "flag"
    corrections = [r["messages"][-1]["content"] for r in script.requests if r.get("tools")]
    assert any("never drop rows" in c for c in corrections)
    changed = [e for e in llm_engine.events_after(session_id, OWNER, 0) if e.type == "rules_changed"]
    assert (
        changed and changed[-1].data["guidance"]["allow_row_drops"] is False and "accepting" in changed[-1].data["by"]
    )
    request = next(r for r in script.requests if r.get("response_format") and "precious" in r["messages"][1]["content"])
    assert json.loads(request["messages"][1]["content"])["messages"] == [
        "every record here is precious to the hospital"
    ]


def test_an_llm_answer_that_loosens_a_rule_leaves_it_in_force_and_says_so(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    def plan(task: dict[str, Any]) -> dict[str, Any]:
        loosen = any("weekend" in m for m in task["messages"])
        steps = [{"key": "duplicates", "tool": "duplicates", "rationale": "Rows repeat."}]
        wider = {"allow_row_drops": True, "ranges": {"age": [0, 500]}, "keep_columns": []}
        return {"steps": steps, "guidance": wider if loosen else {}}

    script.plan_fn = plan
    script.arguments = {"duplicates": {"mode": "exact", "action": "drop"}}
    session_id = _create(llm_engine, tmp_path)
    wait_for(llm_engine, session_id, GATES)
    llm_engine.post_message(session_id, OWNER, "never drop rows; age must be between 0 and 120; keep weight")
    ruled = _settle(llm_engine, session_id, lambda v: v.guidance["allow_row_drops"] is False and v.pending_step)
    llm_engine.post_message(session_id, OWNER, "over the weekend we talked about it with the team")
    said = lambda: [m.text for m in llm_engine.messages(session_id, OWNER) if m.role == "assistant"]  # noqa: E731
    view = _settle(llm_engine, session_id, lambda v: any("Your rules stay" in m for m in said()))
    assert view.guidance == ruled.guidance
    assert view.guidance["allow_row_drops"] is False and view.guidance["ranges"]["age"] == [0.0, 120.0]
    assert view.guidance["keep_columns"] == ["weight"] and view.rule_suggestion is None
    refusal = next(m for m in said() if "Your rules stay" in m)
    assert "allow row drops again" in refusal and "widen age" in refusal
    assert view.pending_step is not None and view.pending_step.params["action"] == "flag"
