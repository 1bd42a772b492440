"""What left for an LLM: every request a session sent, exactly as sent, for its owner to read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agents.llm import Purpose
from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.paging import Page, WindowDep
from copilot.session.planning import sent_requests

router = APIRouter(prefix="/api/sessions/{session_id}", tags=["llm"])


class LLMRequestView(BaseModel):
    id: int
    purpose: Purpose = Field(description="plan (the coordinator), call (the worker) or reply (a chat answer).")
    at: datetime
    request: dict[str, Any] = Field(description="The request as sent: model, messages, and tools or response_format.")


class LLMRequestsPage(Page[LLMRequestView]):
    """What a session sent to an LLM, oldest first."""


@router.get("/llm-requests")
def list_llm_requests(session_id: str, engine: EngineDep, owner: OwnerDep, window: WindowDep) -> LLMRequestsPage:
    """The requests this session sent to an LLM, oldest first, failed ones included, a page at a time; empty
    with the rule-based agents. Another owner's session is a 404."""

    def read(offset: int, limit: int) -> list[LLMRequestView]:
        with engine.store.transaction() as db:
            rows = sent_requests(db, session_id, owner, offset, limit)
            return [LLMRequestView.model_validate(row, from_attributes=True) for row in rows]

    return window.page(LLMRequestsPage, read)
