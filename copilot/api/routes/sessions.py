"""Sessions: create one from an upload (or a file in the import folder), list, read, profile, undo, stop."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from copilot.api.contract import CONFLICT, IMPORT, IN_FLIGHT, UPLOAD
from copilot.api.deps import EngineDep, OwnerDep, SettingsDep
from copilot.api.idempotency import OnceDep, file_digest
from copilot.api.paging import MAX_POSITION, Window, WindowDep
from copilot.api.schemas import CreateFromPath, EventsPage, SessionOptions, SessionsPage
from copilot.api.uploads import FILE_FIELD, copy_import, receive_upload, resolve_import
from copilot.session.views import Policy, ProfileView, SessionView

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def _upload_body() -> dict[str, Any]:
    """The multipart form as the document declares it: :class:`SessionOptions`' fields and limits, with the
    identifier columns as one comma-separated string and the policy blank for the server's default."""
    fields = SessionOptions.model_json_schema()["properties"]
    policy = {"type": "string", "enum": [*get_args(Policy), ""], "description": fields["policy"]["description"]}
    ids = {"type": "string", "maxLength": 10_000, "description": "Identifier columns, comma-separated."}
    table = {"type": "string", "format": "binary", "description": "The table: .csv, .tsv, .parquet, .xlsx or .jsonl."}
    properties = {FILE_FIELD: table, **fields, "policy": policy, "id_columns": ids}
    form = {"type": "object", "required": [FILE_FIELD, "target"], "properties": properties}
    form["additionalProperties"] = False  # an unknown field is a 422, as in every JSON body
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}}}


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_upload_body(), response_model=SessionView,
             responses=UPLOAD | IN_FLIGHT)  # fmt: skip
async def create_session(
    request: Request, engine: EngineDep, settings: SettingsDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Upload a table (streamed to disk, at most COPILOT_MAX_UPLOAD_MB) and start a session on it. With an
    `Idempotency-Key`, a retry of the same upload gets the same session back instead of a second one."""
    upload = await receive_upload(request, settings.data_dir / "uploads")
    options = upload.options

    def create() -> SessionView:
        return engine.create_session(
            upload.path, upload.filename, options.target, owner,
            goal=options.goal, policy=options.policy, id_columns=options.id_columns, llm_share=options.llm_share,
        )  # fmt: skip

    try:
        request_id = ("create", upload.filename, file_digest(upload.path), options)
        return await run_in_threadpool(once, request_id, create, status.HTTP_201_CREATED)
    finally:
        upload.path.unlink(missing_ok=True)


@router.post("/from-path", status_code=status.HTTP_201_CREATED, response_model=SessionView,
             responses=IMPORT | IN_FLIGHT)  # fmt: skip
def create_session_from_path(
    body: CreateFromPath, engine: EngineDep, settings: SettingsDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Start a session on a file inside the server's COPILOT_IMPORT_DIR (off unless that is set)."""
    source = resolve_import(settings.import_dir, body.path)
    copy = copy_import(source, settings.data_dir / "uploads", settings.max_file_mb)

    def create() -> SessionView:
        return engine.create_session(copy, source.name, body.target, owner, goal=body.goal, policy=body.policy,
                                     id_columns=body.id_columns, llm_share=body.llm_share)  # fmt: skip

    try:
        return once(("create_from_path", file_digest(copy), body), create, status.HTTP_201_CREATED)
    finally:
        copy.unlink(missing_ok=True)


@router.get("")
def list_sessions(engine: EngineDep, owner: OwnerDep, window: WindowDep) -> SessionsPage:
    """The caller's sessions, oldest first, a page at a time."""
    return window.page(SessionsPage, lambda offset, limit: engine.list_sessions(owner, offset, limit))


@router.get("/{session_id}")
def get_session(session_id: str, engine: EngineDep, owner: OwnerDep) -> SessionView:
    return engine.get_session(session_id, owner)


@router.get("/{session_id}/events")
def list_events(
    session_id: str, engine: EngineDep, owner: OwnerDep, window: WindowDep,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="Instead of `cursor`: events after this `seq`.")
    ] = None,
) -> EventsPage:  # fmt: skip
    """The session's events in order, a page at a time: what the WebSocket sends, for a client that polls."""
    start = window if after is None else Window(after, window.limit)
    return start.page(EventsPage, lambda offset, limit: engine.events_after(session_id, owner, offset, limit))


@router.get("/{session_id}/profile")
def get_profile(session_id: str, engine: EngineDep, owner: OwnerDep) -> ProfileView:
    """The feature-type profile of the current version: a semantic type per column, with evidence."""
    return engine.profile(session_id, owner)


@router.post("/{session_id}/undo", response_model=SessionView, responses=CONFLICT)
def undo_step(session_id: str, engine: EngineDep, owner: OwnerDep, once: OnceDep) -> SessionView | Response:
    """Go back to the parent of the current version; the coordinator re-plans from there (a stopped
    session stays stopped). Refused with 409 while a step runs. With an `Idempotency-Key`, a retry does not
    undo a second step."""
    return once(("undo", session_id), lambda: engine.undo(session_id, owner))


@router.post("/{session_id}/stop", response_model=SessionView, responses=CONFLICT)
def stop_session(session_id: str, engine: EngineDep, owner: OwnerDep, once: OnceDep) -> SessionView | Response:
    """Stop the session for good: proposed steps are dropped and a running step is cancelled (what it
    would have changed is discarded); what was approved and finished stays."""
    return once(("stop", session_id), lambda: engine.stop(session_id, owner))
