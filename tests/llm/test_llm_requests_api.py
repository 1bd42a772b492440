"""``GET /api/sessions/{id}/llm-requests`` on a served instance: its owner reads exactly what left for the
LLM; any other token gets the 404 of a session that does not exist."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Server, new_session, wait_for_gate
from tests.llm.fake_openai import FakeOpenAI

ALICE, BOB = "tok-alice", "tok-bob"


def test_the_owner_reads_every_request_sent_and_nobody_else_can(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.script.steps = [("evaluate:baseline", "evaluate"), ("impute", "impute"), ("evaluate:final", "evaluate")]
    server = Server(tmp_path, tokens=f"{ALICE},{BOB}", env={"COPILOT_LLM_MODEL": "fake-model"})
    server.start()
    try:
        with server.client(ALICE) as alice, server.client(BOB) as bob:
            session_id = new_session(alice, policy="mutating")
            gate = wait_for_gate(alice, session_id)
            assert gate["agents"] == "llm:fake-model" and gate["llm_share"] == "aggregates"
            answer = alice.get(f"/api/sessions/{session_id}/llm-requests")
            assert answer.status_code == 200, answer.text
            sent = answer.json()["items"]
            assert [r["request"] for r in sent] == fake.script.requests
            assert [r["purpose"] for r in sent] == ["plan", "call", "plan", "call"]  # baseline ran; impute waits
            assert len(sent) == gate["llm_usage"]["calls"] and all(r["at"] for r in sent)
            refused = bob.get(f"/api/sessions/{session_id}/llm-requests")
            assert refused.status_code == 404 and session_id in refused.json()["detail"]
            assert bob.get("/api/sessions/0123456789abcdef/llm-requests").status_code == 404
    finally:
        server.terminate()
