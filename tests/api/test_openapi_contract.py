"""The OpenAPI document says what the server answers: every error status names the one error body the server
sends, and a real error of each kind parses as that body; security is declared only where tokens are."""

from __future__ import annotations

import json
from typing import Any

import httpx

from copilot.api.contract import ErrorBody
from tests.api.conftest import messy_csv, new_session, wait_for_gate

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_error_status_names_the_error_body_the_server_sends(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(document)
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]
    for path, method, op in operations(document):
        errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
        assert "500" in errors, (method, path)
        assert ("404" in errors) == ("{" in path), (method, path)
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, status)
    approve = document["paths"]["/api/sessions/{session_id}/steps/{step_id}/approve"]["post"]["responses"]
    assert {"409", "422", "404"} <= set(approve)
    assert {"400", "413"} <= set(document["paths"]["/api/sessions"]["post"]["responses"])


def test_without_tokens_the_document_asks_for_no_token(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert "securitySchemes" not in document["components"]
    assert [(m, p) for p, m, op in operations(document) if "security" in op or "401" in op["responses"]] == []


def test_real_errors_parse_as_the_documented_body(api: httpx.Client) -> None:
    session_id = new_session(api, messy_csv())
    session = wait_for_gate(api, session_id)
    step = session["pending_step"]
    answers = {
        404: api.get("/api/sessions/no-such-session"),
        422: api.post(f"/api/sessions/{session_id}/steps/{step['id']}/approve", json={"proposal": 3, "odd": 1}),
        409: api.post(f"/api/sessions/{session_id}/steps/{step['id']}/approve", json={"proposal": "deadbeef"}),
        400: api.post("/api/sessions", files={"file": ("notes.txt", b"\x00\x01", "text/plain")},
                      data={"target": "outcome"}),
    }  # fmt: skip
    for expected, answer in answers.items():
        assert answer.status_code == expected, (expected, answer.text)
        body = ErrorBody.model_validate(answer.json())
        assert body.detail, answer.text
    invalid = ErrorBody.model_validate(answers[422].json())
    assert invalid.errors and all(e.loc[0] == "body" for e in invalid.errors)
