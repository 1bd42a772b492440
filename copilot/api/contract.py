"""The OpenAPI document says what the server answers: one error body for every error status, and a bearer
scheme only where tokens are configured.

FastAPI documents validation errors as its ``HTTPValidationError`` (``detail`` a list), but every error this
server sends is :class:`ErrorBody` (``detail`` a sentence, with ``errors`` for invalid fields), so the
document names that for each error status an operation declares. Without tokens no operation needs the
``Authorization`` header, and the document says none is needed.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import compile_path

from copilot.api.links import add_links

REF = "#/components/schemas/{model}"
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is: 'body', 'query' or 'path', then the field.")
    msg: str


class ErrorBody(BaseModel):
    """Every error answer: ``detail`` says what went wrong and what to do."""

    detail: str = Field(description="What went wrong, for a person: which file, which column, what to do.")
    errors: list[FieldError] | None = Field(None, description="Each invalid field (422).")
    pending: dict[str, Any] | None = Field(None, description="On a stale approval (409): the step pending now.")


#: Statuses a route declares besides those every operation may answer (404 on a path with an id, 422 on
#: any input, 401 with tokens, 500): ``responses=CONFLICT`` on a route that refuses what is no longer so.
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The session moved on, or a request with the same Idempotency-Key is still being "
        "answered; nothing was done."
    }
}
IN_FLIGHT: dict[int | str, dict[str, Any]] = {
    409: {"description": "A request with the same Idempotency-Key is still being answered; retry it."}
}
BAD_FILE: dict[int | str, dict[str, Any]] = {
    400: {"description": "The file cannot be read as a table; the detail says why."},
    413: {"description": "The file is larger than COPILOT_MAX_UPLOAD_MB (an upload) or COPILOT_MAX_FILE_MB."},
}
UPLOAD: dict[int | str, dict[str, Any]] = BAD_FILE | {
    415: {"description": "The body is not multipart/form-data with a 'file' and a 'target' field."}
}
IMPORT: dict[int | str, dict[str, Any]] = BAD_FILE | {
    404: {"description": "No such file in COPILOT_IMPORT_DIR, or the server has none (creating from a path is off)."}
}


def operation_id(route: APIRoute) -> str:
    """The route function's name (``approve_step``), so a generated client's methods read as verbs."""
    return route.name


def install_contract(app: FastAPI, tokens: bool) -> None:
    """Serve the document as :func:`document` corrects it, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = document(schema, tokens)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(schema: dict[str, Any], tokens: bool) -> dict[str, Any]:
    """``schema`` with ErrorBody for every error status, the statuses each operation can answer, and security
    only with tokens."""
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    for name in _FASTAPI_ERRORS:
        models.pop(name, None)
    body = ErrorBody.model_json_schema(ref_template=REF)
    models.update(body.pop("$defs", {}))
    models["ErrorBody"] = body
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            _document_errors(path, operation, tokens)
    if not tokens:
        components.pop("securitySchemes", None)
    add_links(schema)
    return schema


def _document_errors(path: str, operation: dict[str, Any], tokens: bool) -> None:
    responses = operation.setdefault("responses", {})
    secured = bool(operation.get("security"))
    if not tokens:
        operation.pop("security", None)
    statuses = {"500": "An internal error; the server log has the details."}
    if secured and tokens:
        statuses["401"] = "The bearer token is missing or not one of COPILOT_TOKENS."
    if "{" in path:
        statuses["404"] = "No such session (or step, version, preview, webhook) for this token."
    if operation.get("parameters") or operation.get("requestBody"):
        statuses["422"] = "A field is invalid; `errors` lists each one."
    if operation.get("requestBody"):
        statuses["400"] = "The body cannot be read: not JSON, or not UTF-8."
    for status, description in statuses.items():
        responses.setdefault(status, {"description": description})
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = error
            if response.get("description") == "Validation Error":
                response["description"] = statuses.get(status, response["description"])


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the document lists for ``path``: the ``Allow`` header of a 405, so it agrees with the
    document whichever route answered. A path the document names as it is (``/api/sessions/from-path``)
    takes its own methods, not those of a template it also fits (``/api/sessions/{session_id}``)."""
    paths: dict[str, Any] = app.openapi()["paths"]
    if path in paths:
        return sorted(m.upper() for m in paths[path])
    if not hasattr(app.state, "method_patterns"):
        app.state.method_patterns = [(compile_path(route)[0], [m.upper() for m in ops]) for route, ops in paths.items()]
    return sorted({m for pattern, methods in app.state.method_patterns if pattern.match(path) for m in methods})
