"""The LLM path through a served instance: a session planned by the LLM over HTTP, and a chat answer
streamed to a WebSocket client as ``token`` events before the whole message arrives."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Server, approve, new_session, read_until, wait_for, wait_for_gate
from tests.llm.fake_openai import FakeOpenAI


def test_tokens_stream_over_the_websocket_and_usage_shows_in_the_session(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.script.steps = [("evaluate:baseline", "evaluate"), ("impute", "impute"), ("evaluate:final", "evaluate")]
    fake.script.chat_text = "Weight is missing in about one row in ten."
    server = Server(tmp_path, env={"COPILOT_LLM_MODEL": "fake-model", "COPILOT_LLM_TIMEOUT_S": "2"})
    server.start()
    try:
        with server.client() as api:
            session_id = new_session(api, policy="mutating")
            gate = wait_for_gate(api, session_id)
            assert gate["agents"] == "llm:fake-model" and gate["pending_step"]["tool"] == "impute"
            with server.connect(session_id, after=None) as ws:
                sent = api.post(f"/api/sessions/{session_id}/messages", json={"text": "anything that worries you?"})
                assert sent.status_code in (200, 201), sent.text
                frames = read_until(ws, lambda f: f["type"] == "message" and f["data"]["role"] == "assistant")
            tokens = [f["data"]["text"] for f in frames if f["type"] == "token"]
            assert "".join(tokens).strip() == fake.script.chat_text and len(tokens) > 3
            assert frames[-1]["data"]["text"] == fake.script.chat_text
            gate = wait_for_gate(api, session_id)
            assert approve(api, session_id, gate["pending_step"]).status_code == 200
            done = wait_for(api, session_id)
            assert done["state"] == "done"
            usage = done["llm_usage"]
            assert usage["calls"] == len(fake.script.requests) and usage["fallbacks"] == 0
    finally:
        server.terminate()
