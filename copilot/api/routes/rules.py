"""The rules in force: accept the rules an LLM suggested (they never apply by themselves)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from copilot.api.contract import CONFLICT
from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.idempotency import OnceDep
from copilot.api.schemas import AcceptRulesRequest
from copilot.session.views import SessionView

router = APIRouter(prefix="/api/sessions/{session_id}/rules", tags=["rules"])


@router.post("/accept", response_model=SessionView, responses=CONFLICT)
def accept_rules(
    session_id: str, body: AcceptRulesRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> SessionView | Response:
    """Put the suggested rules named by their id in force (only what still tightens the rules in force);
    a suggestion that is no longer waiting is a 409. The plan is re-made to honour them."""
    return once(("accept_rules", session_id, body), lambda: engine.accept_rules(session_id, owner, body.suggestion))
