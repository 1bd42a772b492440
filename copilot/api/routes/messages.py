"""Chat messages of a session: goals, domain rules, questions."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from copilot.api.contract import IN_FLIGHT
from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.idempotency import OnceDep
from copilot.api.paging import WindowDep
from copilot.api.schemas import MessageRequest, MessagesPage
from copilot.session.views import MessageView

router = APIRouter(prefix="/api/sessions/{session_id}/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MessageView, responses=IN_FLIGHT)
def post_message(
    session_id: str, body: MessageRequest, engine: EngineDep, owner: OwnerDep, once: OnceDep
) -> MessageView | Response:
    """A chat message; "approve" or "reject" act only on the ``proposal`` it names, "accept the rules" only
    on the ``suggestion`` it names."""
    post = lambda: engine.post_message(session_id, owner, body.text, body.proposal, body.suggestion)  # noqa: E731
    return once(("message", session_id, body), post, status.HTTP_201_CREATED)


@router.get("")
def list_messages(session_id: str, engine: EngineDep, owner: OwnerDep, window: WindowDep) -> MessagesPage:
    """The session's messages, oldest first, a page at a time."""
    return window.page(MessagesPage, lambda offset, limit: engine.messages(session_id, owner, offset, limit))
