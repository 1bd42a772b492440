"""Chat messages of a session: goals, domain rules, questions."""

from __future__ import annotations

from fastapi import APIRouter, status

from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.schemas import MessageRequest
from copilot.views import MessageView

router = APIRouter(prefix="/api/sessions/{session_id}/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_201_CREATED)
def post_message(session_id: str, body: MessageRequest, engine: EngineDep, owner: OwnerDep) -> MessageView:
    """A chat message; "approve" or "reject" act only on the ``proposal`` it names, "accept the rules" only
    on the ``suggestion`` it names."""
    return engine.post_message(session_id, owner, body.text, body.proposal, body.suggestion)


@router.get("")
def list_messages(session_id: str, engine: EngineDep, owner: OwnerDep) -> list[MessageView]:
    """Every message of the session, oldest first."""
    return engine.messages(session_id, owner)
