"""Chat with an LLM set up: answers stream as token events, and rules in free text bind the plan."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from copilot.engine import Engine
from copilot.views import EventView
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


def test_a_rule_in_free_text_becomes_guidance_the_worker_must_honour(
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
    for _ in range(100):
        view = wait_for(llm_engine, session_id, GATES)
        if view.guidance["allow_row_drops"] is False and view.pending_step is not None:
            break
    assert view.guidance["allow_row_drops"] is False
    assert view.pending_step is not None and view.pending_step.params["action"] == "flag"
    corrections = [r["messages"][-1]["content"] for r in script.requests if r.get("tools")]
    assert any("forbade dropping rows" in c for c in corrections)
    request = next(r for r in script.requests if r.get("response_format") and "precious" in r["messages"][1]["content"])
    assert json.loads(request["messages"][1]["content"])["messages"] == [
        "every record here is precious to the hospital"
    ]
