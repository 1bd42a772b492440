"""The approval gate: approve a pending step (optionally with edited parameters) or reject it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.schemas import ApproveRequest, RejectRequest
from copilot.views import SessionView

router = APIRouter(prefix="/api/sessions/{session_id}/steps/{step_id}", tags=["steps"])


@router.post("/approve")
def approve(
    session_id: str, step_id: int, engine: EngineDep, owner: OwnerDep,
    body: Annotated[ApproveRequest | None, Body()] = None,
) -> SessionView:  # fmt: skip
    """Run the pending step, with its proposed parameters or edited ones (checked against the tool's schema).

    Approving a step already approved changes nothing and runs nothing twice."""
    return engine.approve(session_id, step_id, owner, body.params if body else None)


@router.post("/reject")
def reject(session_id: str, step_id: int, body: RejectRequest, engine: EngineDep, owner: OwnerDep) -> SessionView:
    """Refuse the pending step; the coordinator re-plans with the reason."""
    return engine.reject(session_id, step_id, owner, body.reason)
