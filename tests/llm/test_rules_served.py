"""The person's rules stay the person's, over a real server planned by an LLM (the fake OpenAI server).

An LLM that reads "loosen the rules" into a message cannot loosen them: the rule stays in force, the chat
says what was refused, and the next proposal still honours the rule. A tightening reading waits as a
suggestion until the person accepts it by its id over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server, new_session, wait_for, wait_for_gate
from tests.api.test_trust import duplicated_csv, say
from tests.llm.fake_openai import FakeOpenAI

STEPS = [{"key": "duplicates", "tool": "duplicates", "rationale": "Rows repeat."}]


def plan(task: dict[str, Any]) -> dict[str, Any]:
    said = " ".join(task["messages"])
    if "precious" in said:
        return {"steps": STEPS, "guidance": {"keep_columns": ["bmi"], "ranges": {"age": [18, 90]}}}
    if "weekend" in said:  # a reading that would undo the person's rules
        return {"steps": STEPS, "guidance": {"allow_row_drops": True, "ranges": {"age": [0, 500]}}}
    return {"steps": STEPS}


def replies(api: httpx.Client, session_id: str) -> list[str]:
    messages = api.get(f"/api/sessions/{session_id}/messages").json()["items"]
    return [m["text"] for m in messages if m["role"] == "assistant"]


def test_an_llm_cannot_loosen_a_rule_and_its_tighter_reading_waits_for_the_person(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    fake.script.plan_fn = plan
    fake.script.arguments = {"duplicates": {"mode": "exact", "action": "drop"}}
    server = Server(tmp_path, env={"COPILOT_LLM_MODEL": "fake-model", "COPILOT_LLM_TIMEOUT_S": "2"})
    server.start()
    try:
        with server.client() as api:
            session_id = new_session(api, duplicated_csv(), goal="never drop rows; age must be between 0 and 120")
            ruled = wait_for_gate(api, session_id)
            assert ruled["guidance"]["allow_row_drops"] is False and ruled["guidance"]["ranges"]["age"] == [0, 120]
            say(api, session_id, "we talked it over at the weekend")
            for _ in range(200):
                if any("Your rules stay" in r for r in replies(api, session_id)):
                    break
                wait_for(api, session_id)
            refusal = next(r for r in replies(api, session_id) if "Your rules stay" in r)
            assert "allow row drops again" in refusal and "widen age" in refusal
            session = wait_for_gate(api, session_id)
            assert session["guidance"] == ruled["guidance"] and session["rule_suggestion"] is None
            assert session["pending_step"]["params"]["action"] != "drop"

            say(api, session_id, "each of these records is precious")
            for _ in range(200):
                session = wait_for(api, session_id)
                if session["rule_suggestion"] is not None:
                    break
            suggestion = session["rule_suggestion"]
            assert suggestion["changes"] == ["keep column bmi", "age must lie in 18..90"]
            assert session["guidance"] == ruled["guidance"]  # not in force before the person says so
            stale = api.post(f"/api/sessions/{session_id}/rules/accept", json={"suggestion": "ab" * 16})
            assert stale.status_code == 409, stale.text
            accepted = api.post(f"/api/sessions/{session_id}/rules/accept", json={"suggestion": suggestion["id"]})
            assert accepted.status_code == 200, accepted.text
            rules = wait_for(api, session_id)["guidance"]
            assert rules["keep_columns"] == ["bmi"] and rules["ranges"]["age"] == [18, 90]
            assert rules["allow_row_drops"] is False
    finally:
        server.terminate()
