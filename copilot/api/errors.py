"""Every error the API answers with, decided here: domain errors to HTTP statuses, never a stack trace.

Bodies are ``{"detail": message}``; validation errors add ``"errors": [{"loc": [...], "msg": ...}]``.
The WebSocket reports the same errors as frames, through :func:`status_for` and :func:`error_data`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from copilot.api.contract import allowed_methods
from copilot.errors import (
    Conflict,
    CopilotError,
    InputFileError,
    InvalidParams,
    NotFound,
    PipelineError,
    Stale,
    StorageError,
    TableError,
)

log = logging.getLogger(__name__)

#: Most specific first; any other CopilotError is a 400.
_STATUS: tuple[tuple[type[CopilotError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidParams, 422),
    (TableError, 422),
    (PipelineError, 422),
    (InputFileError, 400),
    (StorageError, 500),
)
INTERNAL_ERROR = "internal error; see the server log"


def status_for(exc: CopilotError) -> int:
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 400)


def error_data(exc: CopilotError) -> dict[str, Any]:
    """``{"detail": ...}``, with the field errors of invalid parameters, or what is pending now for a stale
    approval."""
    if isinstance(exc, InvalidParams):
        return {"detail": str(exc), "errors": exc.errors}
    if isinstance(exc, Stale):
        return {"detail": str(exc), "pending": exc.pending}
    return {"detail": str(exc)}


def validation_data(errors: Sequence[Any]) -> dict[str, Any]:
    """Pydantic errors as ``{"detail": "body.reason: String should ...", "errors": [{"loc", "msg"}]}``."""
    listed = [{"loc": list(error["loc"]), "msg": error["msg"]} for error in errors]
    first = listed[0]
    detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first["loc"] else first["msg"]
    if len(listed) > 1:
        detail += f" (and {len(listed) - 1} more)"
    return {"detail": detail, "errors": listed}


async def _copilot_error(_: Request, exc: CopilotError) -> JSONResponse:
    return JSONResponse(error_data(exc), status_code=status_for(exc))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(validation_data(exc.errors()), status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own refusals (404, 405, 415, an unreadable body) in the same body; a 405
    names every method the document lists for the path, not only those of the route that matched."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The server logs the traceback too (Starlette re-raises after answering); this line ties it to the request.
    log.error("unhandled %s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
    return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.exception_handler(CopilotError)(_copilot_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_internal_error)
