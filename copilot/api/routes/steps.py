"""The approval gate: see a pending step's preview, approve it, edit its parameters (a new preview) or reject it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from copilot.api.contract import CONFLICT
from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.idempotency import OnceDep
from copilot.api.schemas import ApproveRequest, PreviewRequest, RejectRequest
from copilot.session.views import CellsPage, DroppedPage, SessionView

router = APIRouter(prefix="/api/sessions/{session_id}", tags=["steps"])
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="How many entries to skip.")]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many entries.")]


@router.post("/steps/{step_id}/approve", response_model=SessionView, responses=CONFLICT)
def approve_step(
    session_id: str, step_id: int, body: ApproveRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Approve the pending step named by its proposal id. A data-changing step commits its preview as it is
    (the session moves to the previewed version, and the tool does not run again); a read-only step runs, with
    its proposed parameters or edited ones. Either way the call is checked against the tool's schema and the
    rules in force (a call that breaks one is a 422 that quotes it).

    A proposal that is no longer pending, a preview other than the one shown, parameters other than those
    previewed, or a preview made on a version that is no longer current is a 409, and nothing is committed.
    Approving the same proposal again changes nothing and runs nothing twice; with an `Idempotency-Key`, a
    retry also gets the first answer back."""
    run = lambda: engine.approve(session_id, step_id, owner, body.proposal, body.params, body.preview)  # noqa: E731
    return once(("approve", session_id, step_id, body), run)


@router.post("/steps/{step_id}/preview", response_model=SessionView, responses=CONFLICT)
def preview_step(
    session_id: str, step_id: int, body: PreviewRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Edit the pending step's parameters: its preview is discarded and the step is previewed with these (the
    session is `previewing`, then waits again with a new proposal id and preview). Invalid parameters, or ones
    that break a rule, are a 422 and the step keeps waiting as it was."""
    return once(("preview", session_id, step_id, body),
                lambda: engine.preview(session_id, step_id, owner, body.proposal, body.params))  # fmt: skip


@router.post("/steps/{step_id}/reject", response_model=SessionView, responses=CONFLICT)
def reject_step(
    session_id: str, step_id: int, body: RejectRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Refuse the pending step named by its proposal id (its preview is discarded); the coordinator re-plans
    with the reason."""
    return once(("reject", session_id, step_id, body),
                lambda: engine.reject(session_id, step_id, owner, body.proposal, body.reason))  # fmt: skip


@router.get("/previews/{preview_id}/rows")
def preview_rows(
    session_id: str, preview_id: str, engine: EngineDep, owner: OwnerDep, offset: Offset = 0, limit: Limit = 20
) -> DroppedPage:
    """A page of the rows the preview would drop, in the table's order, each with the step's evidence."""
    return engine.preview_rows(session_id, preview_id, owner, offset, limit)


@router.get("/previews/{preview_id}/cells")
def preview_cells(
    session_id: str, preview_id: str, engine: EngineDep, owner: OwnerDep,
    column: Annotated[str, Query(min_length=1, max_length=1000, description="A column the preview changes.")],
    offset: Offset = 0, limit: Limit = 50,
) -> CellsPage:  # fmt: skip
    """A page of the cells of one column that the preview would change, before → after."""
    return engine.preview_cells(session_id, preview_id, owner, column, offset, limit)
