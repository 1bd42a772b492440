"""The approval gate: approve a pending step (optionally with edited parameters) or reject it, by its proposal id."""

from __future__ import annotations

from fastapi import APIRouter

from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.schemas import ApproveRequest, RejectRequest
from copilot.views import SessionView

router = APIRouter(prefix="/api/sessions/{session_id}/steps/{step_id}", tags=["steps"])


@router.post("/approve")
def approve(session_id: str, step_id: int, body: ApproveRequest, engine: EngineDep, owner: OwnerDep) -> SessionView:
    """Run the pending step named by its proposal id, with its proposed parameters or edited ones (checked
    against the tool's schema and the rules in force: a call that breaks one is a 422 that quotes it).

    A proposal that is no longer pending is a 409 that says what is pending now, and nothing runs.
    Approving the same proposal again changes nothing and runs nothing twice."""
    return engine.approve(session_id, step_id, owner, body.proposal, body.params)


@router.post("/reject")
def reject(session_id: str, step_id: int, body: RejectRequest, engine: EngineDep, owner: OwnerDep) -> SessionView:
    """Refuse the pending step named by its proposal id; the coordinator re-plans with the reason."""
    return engine.reject(session_id, step_id, owner, body.proposal, body.reason)
