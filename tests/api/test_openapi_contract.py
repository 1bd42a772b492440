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
        assert ("404" in errors) == ("{" in path or path.endswith("from-path")), (method, path)
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


def test_operations_are_named_and_every_answer_is_a_model(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids)) and all(i.isidentifier() and "api" not in i for i in ids), ids
    for path, method, op in operations(document):
        assert op.get("tags"), (method, path)
        for status, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("2") and schema is not None:  # files (CSV, Parquet, Python) aside
                assert "$ref" in schema, (method, path, status, schema)


def test_every_list_is_a_page_with_limit_and_cursor(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    models = document["components"]["schemas"]
    lists = 0
    for path, method, op in operations(document):
        ok = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        model = models.get(ok.get("$ref", "").rsplit("/", 1)[-1], {})
        if any(p.get("type") == "array" for p in model.get("properties", {}).values()) and "items" in model.get(
            "properties", {}
        ):
            lists += 1
            assert {"limit", "cursor"} <= {p["name"] for p in op.get("parameters", [])}, (method, path)
            assert model["required"] == ["items", "next_cursor"], (method, path)
    assert lists >= 6


def test_a_created_session_links_to_the_calls_on_it(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    created = document["paths"]["/api/sessions"]["post"]["responses"]["201"]["links"]
    assert created["get_session"]["parameters"] == {"session_id": "$response.body#/id"}
    ids = {op["operationId"] for _, _, op in operations(document)}
    gate = document["paths"]["/api/sessions/{session_id}"]["get"]["responses"]["200"]["links"]
    assert {"approve_step", "preview_step", "reject_step"} <= set(gate) and {
        link["operationId"] for link in gate.values()
    } <= ids


def test_a_wrong_method_names_what_the_document_allows(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    for path in ("/api/sessions", "/api/sessions/from-path", "/api/sessions/abc/undo", "/api/sessions/abc/messages"):
        listed = document["paths"].get(path) or document["paths"][path.replace("abc", "{session_id}")]
        answer = api.request("PATCH", path)
        assert answer.status_code == 405, (path, answer.text)
        assert answer.headers["allow"] == ", ".join(sorted(m.upper() for m in listed)), path
        assert ErrorBody.model_validate(answer.json()).detail
    assert api.get("/api/no-such-thing").json() == {"detail": "Not Found"}


def test_the_upload_form_is_what_the_server_reads(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    form = document["paths"]["/api/sessions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["additionalProperties"] is False and form["properties"]["target"]["minLength"] == 1
    extra = api.post("/api/sessions", files={"file": ("t.csv", messy_csv(), "text/csv")},
                     data={"target": "outcome", "colour": "red"})  # fmt: skip
    assert extra.status_code == 422 and "colour" in extra.text
    assert {"415", "413", "400"} <= set(document["paths"]["/api/sessions"]["post"]["responses"])
