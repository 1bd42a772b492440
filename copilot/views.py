"""What the engine shows of its state: read models shared by the API, the CLI and tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from agents.llm import Share
from agents.plan import StepStatus
from agents.rules import RuleSuggestion
from copilot.settings import Policy

SessionState = Literal["created", "profiling", "planning", "awaiting_approval", "running", "done", "stopped", "failed"]
EventType = Literal[
    "session_state", "plan_updated", "approval_requested", "step_started", "progress", "step_finished",
    "step_failed", "message", "token", "version_created", "error", "rules_changed", "rules_suggested",
]  # fmt: skip


class StepView(BaseModel):
    id: int
    key: str
    tool: str
    params: dict[str, Any]
    rationale: str
    status: StepStatus
    summary: str = ""
    error: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    findings: dict[str, Any] = Field(default_factory=dict)
    charts: list[dict[str, Any]] = Field(default_factory=list)
    version: str | None = Field(None, description="The version this step produced, if any.")
    duration_s: float | None = Field(None, description="Seconds the tool ran in the sandbox.")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class PendingStep(BaseModel):
    """The step waiting for a human: approve (optionally with edited params) or reject, naming ``proposal``."""

    id: int
    proposal: str = Field(description="This proposal's id, never reused: an approval or rejection must name it.")
    tool: str
    params: dict[str, Any]
    rationale: str
    params_schema: dict[str, Any]


class SessionView(BaseModel):
    id: str
    state: SessionState
    target: str
    task: str
    goal: str
    policy: Policy
    source: str = Field(description="The uploaded file's name.")
    version: str = Field(description="The current dataset version.")
    plan: list[StepView] = Field(description="Every step so far and those still proposed, in order.")
    pending_step: PendingStep | None
    score_before: float | None = None
    score_after: float | None = None
    score_note: str | None = Field(None, description="Why the two scores are not on the same rows, when they are not.")
    error: str | None = None
    guidance: dict[str, Any] = Field(default_factory=dict, description="The rules the plan honours.")
    rule_suggestion: RuleSuggestion | None = Field(
        None, description="Rules an LLM read from the chat, waiting for the person to accept them by their id."
    )
    agents: str = Field("rule-based", description="Who planned the last proposal: rule-based or llm:MODEL.")
    llm_usage: dict[str, int] = Field(default_factory=dict, description="LLM calls, tokens and fall-backs so far.")
    llm_share: Share = Field(
        "aggregates",
        description="What an LLM may see of this session's data: aggregates (counts and coarse statistics, no cell "
        "value), categories (also the text of common categories) or samples (also a few rows). Every request "
        "sent is at /api/sessions/{id}/llm-requests.",
    )
    created_at: datetime
    updated_at: datetime


class VersionView(BaseModel):
    id: str
    parent: str | None
    step_id: int | None
    tool: str | None
    n_rows: int
    n_columns: int
    created_at: datetime
    current: bool


class EventView(BaseModel):
    seq: int
    type: EventType
    at: datetime
    data: dict[str, Any]
    _frame: str | None = PrivateAttr(None)

    def frame(self) -> str:
        """The event as a WebSocket text frame, serialised once however many clients receive it."""
        if self._frame is None:
            self._frame = self.model_dump_json()
        return self._frame


class MessageView(BaseModel):
    id: int
    role: Literal["user", "assistant"]
    text: str
    at: datetime
