"""Sessions: create one from an upload (or a file in the import folder), list, read, profile, undo, stop."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from agents.llm import SHARE_LEVELS
from copilot.api.contract import BAD_FILE, CONFLICT
from copilot.api.deps import EngineDep, OwnerDep, SettingsDep
from copilot.api.schemas import CreateFromPath
from copilot.api.uploads import FILE_FIELD, copy_import, receive_upload, resolve_import
from copilot.views import Policy, SessionView

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD, "target"],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary",
                                     "description": "The table: .csv, .tsv, .parquet, .xlsx or .jsonl."},
                        "target": {"type": "string", "description": "The column to predict."},
                        "goal": {"type": "string", "description": "The goal and domain rules, in plain words."},
                        "policy": {"type": "string", "enum": list(get_args(Policy)),
                                   "description": "Approval policy; default: the server's COPILOT_POLICY."},
                        "id_columns": {"type": "string", "description": "Identifier columns, comma-separated."},
                        "llm_share": {"type": "string", "enum": list(SHARE_LEVELS),
                                      "description": "What an LLM may see: aggregates (default), categories or "
                                                     "samples; at most the server's COPILOT_LLM_SHARE."},
                    },
                }
            }
        },
    }
}  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_UPLOAD_BODY, responses=BAD_FILE)
async def create_session(request: Request, engine: EngineDep, settings: SettingsDep, owner: OwnerDep) -> SessionView:
    """Upload a table (streamed to disk, at most COPILOT_MAX_UPLOAD_MB) and start a session on it."""
    upload = await receive_upload(request, settings.data_dir / "uploads")
    options = upload.options
    try:
        return await run_in_threadpool(
            engine.create_session, upload.path, upload.filename, options.target, owner,
            goal=options.goal, policy=options.policy, id_columns=options.id_columns, llm_share=options.llm_share,
        )  # fmt: skip
    finally:
        upload.path.unlink(missing_ok=True)


@router.post("/from-path", status_code=status.HTTP_201_CREATED, responses=BAD_FILE)
def create_session_from_path(
    body: CreateFromPath, engine: EngineDep, settings: SettingsDep, owner: OwnerDep
) -> SessionView:
    """Start a session on a file inside the server's COPILOT_IMPORT_DIR (off unless that is set)."""
    source = resolve_import(settings.import_dir, body.path)
    copy = copy_import(source, settings.data_dir / "uploads", settings.max_file_mb)
    try:
        return engine.create_session(copy, source.name, body.target, owner, goal=body.goal, policy=body.policy,
                                     id_columns=body.id_columns, llm_share=body.llm_share)  # fmt: skip
    finally:
        copy.unlink(missing_ok=True)


@router.get("")
def list_sessions(engine: EngineDep, owner: OwnerDep) -> list[SessionView]:
    """The caller's sessions, oldest first."""
    return engine.list_sessions(owner)


@router.get("/{session_id}")
def get_session(session_id: str, engine: EngineDep, owner: OwnerDep) -> SessionView:
    return engine.get_session(session_id, owner)


@router.get("/{session_id}/profile")
def get_profile(session_id: str, engine: EngineDep, owner: OwnerDep) -> dict[str, Any]:
    """The feature-type profile of the current version: a semantic type per column, with evidence."""
    return engine.profile(session_id, owner)


@router.post("/{session_id}/undo", responses=CONFLICT)
def undo(session_id: str, engine: EngineDep, owner: OwnerDep) -> SessionView:
    """Go back to the parent of the current version; the coordinator re-plans from there (a stopped
    session stays stopped). Refused with 409 while a step runs."""
    return engine.undo(session_id, owner)


@router.post("/{session_id}/stop", responses=CONFLICT)
def stop(session_id: str, engine: EngineDep, owner: OwnerDep) -> SessionView:
    """Stop the session for good: proposed steps are dropped and a running step is cancelled (what it
    would have changed is discarded); what was approved and finished stays."""
    return engine.stop(session_id, owner)
