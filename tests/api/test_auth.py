"""Tokens and tenancy: no token → 401, and one token's sessions do not exist for another."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.api.conftest import (
    Server,
    bearer,
    close_code,
    new_session,
    read_until,
    running_server,
    versions,
    wait_for_gate,
)

TOKEN_A, TOKEN_B = "tok-a", "tok-b"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("secured"), tokens=f"{TOKEN_A},{TOKEN_B}") as srv:
        yield srv


@pytest.fixture(scope="module")
def owned(secured: Server) -> tuple[str, dict[str, Any]]:
    """A session made with token A, resting at its first gate, and that session."""
    with secured.client(TOKEN_A) as a:
        session_id = new_session(a)
        return session_id, wait_for_gate(a, session_id)


def test_probes_need_no_token(secured: Server) -> None:
    assert httpx.get(f"{secured.base_url}/healthz").status_code == 200
    assert httpx.get(f"{secured.base_url}/readyz").status_code == 200


@pytest.mark.parametrize("headers", [{}, bearer("tok-c"), {"Authorization": "tok-a"}, bearer("tok-a,tok-b")],
                         ids=["none", "unknown", "not-bearer", "both-joined"])  # fmt: skip
def test_a_missing_or_wrong_token_is_401(secured: Server, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/api/sessions"), ("GET", "/api/tools"), ("POST", "/api/sessions")):
        response = httpx.request(method, f"{secured.base_url}{path}", headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["detail"]


def test_a_session_belongs_to_the_token_that_made_it(secured: Server, owned: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = owned
    with secured.client(TOKEN_A) as a:
        assert session_id in [s["id"] for s in a.get("/api/sessions").json()["items"]]
        assert a.get(f"/api/sessions/{session_id}").status_code == 200
    with secured.client(TOKEN_B) as b:
        assert session_id not in [s["id"] for s in b.get("/api/sessions").json()["items"]]


def test_another_token_gets_404_everywhere(secured: Server, owned: tuple[str, dict[str, Any]]) -> None:
    session_id, session = owned
    step_id = session["pending_step"]["id"]
    base = f"/api/sessions/{session_id}"
    calls = [("GET", base), ("GET", f"{base}/profile"), ("GET", f"{base}/messages"), ("GET", f"{base}/versions"),
             ("GET", f"{base}/versions/{session['version']}/data?format=csv"), ("GET", f"{base}/pipeline.json"),
             ("GET", f"{base}/pipeline.py"), ("GET", f"{base}/report"), ("POST", f"{base}/steps/{step_id}/approve"),
             ("POST", f"{base}/steps/{step_id}/reject"), ("POST", f"{base}/messages"), ("POST", f"{base}/undo"),
             ("POST", f"{base}/stop"), ("POST", f"{base}/rules/accept"), ("GET", f"{base}/llm-requests")]  # fmt: skip
    named = {"proposal": session["pending_step"]["proposal"]}
    bodies = {
        "approve": named,
        "reject": {**named, "reason": "not mine"},
        "messages": {"text": "hello"},
        "accept": {"suggestion": "ab" * 16},
    }
    with secured.client(TOKEN_B) as b:
        for method, path in calls:
            body = bodies.get(path.rsplit("/", 1)[-1], {}) if method == "POST" else None
            response = b.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
    with secured.client(TOKEN_A) as a:
        now = wait_for_gate(a, session_id)
        assert now["pending_step"]["id"] == step_id
        assert len(versions(a, session_id)) == 1
        assert a.get(f"{base}/messages").json()["items"] == []


def test_websocket_needs_the_owners_token(secured: Server, owned: tuple[str, dict[str, Any]]) -> None:
    session_id, _ = owned
    url = secured.ws_url(session_id)
    assert close_code(url) == 4401
    assert close_code(url, bearer("tok-c")) == 4401
    assert close_code(url, bearer(TOKEN_B)) == 4404
    assert close_code(secured.ws_url(session_id, token=TOKEN_B)) == 4404
    with secured.connect(session_id, after=0, token=TOKEN_A) as ws:
        assert read_until(ws, lambda e: e.get("seq") == 1, timeout=10)[-1]["type"] == "session_state"
    with connect(secured.ws_url(session_id, token=TOKEN_A), open_timeout=10) as ws:
        assert read_until(ws, lambda e: e.get("seq") == 1, timeout=10)[-1]["type"] == "session_state"


def test_with_tokens_the_document_declares_the_bearer_scheme_and_its_401(secured: Server) -> None:
    with secured.client() as anyone:
        document = anyone.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            probe = path in ("/healthz", "/readyz")
            assert ("security" in op) == (not probe), (method, path)
            assert ("401" in op["responses"]) == (not probe), (method, path)
