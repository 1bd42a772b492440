"""Downloads: the dataset versions (CSV or Parquet, the table's own columns), the pipeline spec,
the standalone script and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from copilot.api.deps import EngineDep, OwnerDep, SettingsDep
from copilot.api.paging import WindowDep
from copilot.api.schemas import VersionsPage
from copilot.api.tables import csv_chunks, parquet_without_index
from copilot.data.pipeline import PipelineSpec
from copilot.session.views import ReportView

router = APIRouter(prefix="/api/sessions/{session_id}", tags=["downloads"])

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"


@router.get("/versions")
def list_versions(session_id: str, engine: EngineDep, owner: OwnerDep, window: WindowDep) -> VersionsPage:
    """The versions of the session's data, oldest first, a page at a time; ``current`` marks the one in use."""
    return window.page(VersionsPage, lambda offset, limit: engine.versions(session_id, owner, offset, limit))


@router.get(
    "/versions/{version_id}/data",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, PARQUET_MEDIA_TYPE: {}}, "description": "The table."}},
)
def download_version(
    session_id: str, version_id: str, engine: EngineDep, settings: SettingsDep, owner: OwnerDep,
    format: Literal["csv", "parquet"] = "csv",
) -> Response:  # fmt: skip
    """One version of the table, as CSV (converted while it streams) or Parquet, without pandas' row index."""
    path = engine.version_file(session_id, version_id, owner)
    stem = Path(engine.get_session(session_id, owner).source).stem or "data"
    filename = f"{stem}.{version_id[:12]}.{format}"
    if format == "csv":
        headers = {"Content-Disposition": _attachment(filename)}
        return StreamingResponse(csv_chunks(path), media_type="text/csv; charset=utf-8", headers=headers)
    copy = parquet_without_index(path, settings.data_dir / "downloads")
    if copy is None:
        return FileResponse(path, media_type=PARQUET_MEDIA_TYPE, filename=filename)
    return FileResponse(copy, media_type=PARQUET_MEDIA_TYPE, filename=filename, background=BackgroundTask(copy.unlink))


@router.get("/pipeline.json")
def get_pipeline(session_id: str, engine: EngineDep, owner: OwnerDep) -> PipelineSpec:
    """The approved steps with their fitted state, for ``copilot apply`` on new data."""
    return engine.pipeline(session_id, owner)


@router.get("/pipeline.py", response_class=Response, responses={200: {"content": {"text/x-python": {}}}})
def get_pipeline_script(session_id: str, engine: EngineDep, owner: OwnerDep) -> Response:
    """A standalone script (pandas and scikit-learn only) that reproduces the cleaning."""
    return Response(engine.pipeline_script(session_id, owner), media_type="text/x-python; charset=utf-8")


@router.get("/report")
def get_report(session_id: str, engine: EngineDep, owner: OwnerDep) -> ReportView:
    """Every step with its parameters, approvals, summary, findings and metrics."""
    return engine.report(session_id, owner)


def _attachment(filename: str) -> str:
    quoted = quote(filename)
    return f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"
