"""What the engine shows of its state: read models shared by the API, the CLI and tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from agents.llm import Share
from agents.plan import StepStatus
from agents.rules import RuleSuggestion
from copilot.settings import Policy

SessionState = Literal[
    "created", "profiling", "planning", "previewing", "awaiting_approval", "running", "done", "stopped", "failed"
]
EventType = Literal[
    "session_state", "plan_updated", "approval_requested", "step_started", "progress", "step_finished",
    "step_failed", "message", "token", "version_created", "error", "rules_changed", "rules_suggested",
    "preview_started",
]  # fmt: skip


class WhereView(BaseModel):
    """Where a step's tool ran: in this server's sandbox, or as a task on a Ray cluster."""

    executor: Literal["local", "ray"]
    task_id: str | None = Field(None, description="The Ray task (ray only).")
    node_id: str | None = Field(None, description="The Ray node it ran on (ray only).")


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
    runs: int = Field(0, description="How many times the tool ran in the sandbox; approving a preview adds none.")
    executor: WhereView | None = Field(None, description="Where its tool last ran; None if it never ran.")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Histogram(BaseModel):
    """A numeric column before and after the step, on the same bins (``edges``); ``below`` and ``above`` count,
    as [before, after], the values outside them (bins span the values after the step)."""

    edges: list[float]
    before: list[int]
    after: list[int]
    below: list[int]
    above: list[int]


class ColumnChange(BaseModel):
    column: str
    changed: int = Field(description="Cells of the kept rows whose value would change.")
    dtype_before: str | None
    dtype_after: str | None
    histogram: Histogram | None


class DroppedRow(BaseModel):
    row: Any = Field(description="The row's label: its place in the uploaded file.")
    evidence: dict[str, Any] = Field(description="The step's reasons for this row (e.g. given and suggested label).")
    values: dict[str, Any]


class ChangedCell(BaseModel):
    row: Any
    column: str
    before: Any
    after: Any


class MappingGroup(BaseModel):
    """One category a step would make, with the spellings it gathers: edit them with the step's ``mapping``."""

    category: str
    cells: int
    variants: dict[str, int] = Field(description="Each spelling, as written, with its number of cells.")


class PreviewView(BaseModel):
    """What approving the pending step would change: the step ran in the sandbox on ``base_version`` and its
    table waits as a pending version. Approving commits exactly it (``content_hash``), with no second run."""

    id: str
    status: Literal["ready", "committed", "discarded"]
    base_version: str = Field(description="The version it was made on; once that is not current it is refused.")
    version: str | None = Field(description="The version approving makes current; None: the table stays as it is.")
    content_hash: str | None = Field(description="SHA-256 of the pending table's Parquet file.")
    params: dict[str, Any] = Field(description="The parameters it ran with: approving runs exactly these.")
    summary: str
    metrics: dict[str, float]
    rows_before: int
    rows_after: int
    columns_before: int
    columns_after: int
    columns_added: list[str]
    columns_removed: list[str]
    dropped_rows: int
    added_rows: int
    evidence_columns: list[str] = Field(description="The names in each dropped row's evidence.")
    value_columns: list[str]
    dropped: list[DroppedRow] = Field(description="The first rows that would go; page with .../previews/{id}/rows.")
    changed_cells: int
    columns: list[ColumnChange]
    cells: list[ChangedCell] = Field(description="A sample of changed cells; page with .../previews/{id}/cells.")
    class_counts: dict[str, list[int]] | None = Field(description="Rows per class of the target: [before, after].")
    mappings: dict[str, list[MappingGroup]] = Field(
        default_factory=dict,
        description="Per column, the categories the step would make and the spellings each gathers "
        "(harmonise_categories); change them with the step's `mapping` parameter and preview again.",
    )
    duration_s: float | None


class PendingStep(BaseModel):
    """The step waiting for a human: approve or reject, naming ``proposal``; a data-changing step carries the
    ``preview`` of its change, which approving commits (edit its parameters through ``.../preview``)."""

    id: int
    proposal: str = Field(description="This proposal's id, never reused: an approval or rejection must name it.")
    tool: str
    params: dict[str, Any]
    rationale: str
    params_schema: dict[str, Any]
    preview: PreviewView | None = Field(None, description="What approving would change; None for read-only steps.")


class PreviewPage(BaseModel):
    total: int
    offset: int
    limit: int


class DroppedPage(PreviewPage):
    evidence_columns: list[str]
    value_columns: list[str]
    rows: list[DroppedRow]


class CellsPage(PreviewPage):
    cells: list[ChangedCell]


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
    content_hash: str = Field(description="SHA-256 of the version's Parquet file (a preview names the same).")
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


class ColumnProfile(BaseModel):
    """One column's semantic type and the facts it was judged from (``tools.feature_types``). Fields a later
    version of the profile adds may appear too."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="numeric, categorical, boolean, identifier, text, date, personal or constant.")
    evidence: str = Field(description="Why, in words.")
    dtype: str
    missing: int
    missing_pct: float
    n_unique: int | None = None
    sentinels: list[str] = Field(default_factory=list, description="Codes that stand for a missing value.")
    sentinel_count: int = 0
    numeric_as_text: bool = False
    unit: str | None = None
    decimal_mark: str | None = None
    unparseable: int = 0
    level_codes: dict[str, int] = Field(default_factory=dict)
    top_values: list[tuple[str, int]] | None = Field(None, description="The commonest values and their counts.")
    spelling_variants: int | None = None
    stats: dict[str, float | str | None] | None = Field(None, description="Five numbers, mean, std, point mass.")


class TargetProfile(BaseModel):
    model_config = ConfigDict(extra="allow")

    column: str
    task: str
    n_classes: int | None = None
    missing: int
    class_counts: dict[str, int] | None = None


class ProfileView(BaseModel):
    """The feature-type profile of a version of the table."""

    model_config = ConfigDict(extra="allow")

    n_rows: int
    n_columns: int
    columns: dict[str, ColumnProfile]
    target: TargetProfile | None = None
    duplicate_rows: int = Field(0, description="Rows equal to an earlier one, identifiers aside.")
    suggested_id_columns: list[str] = Field(default_factory=list)


class ReportView(BaseModel):
    """Every step of a session with its parameters, approvals, summary, findings and metrics."""

    session: str
    input: str
    target: str
    task: str
    state: SessionState
    id_columns: list[str]
    score_before: float | None
    score_after: float | None
    score_note: str | None
    rows_before: int
    rows_after: int
    steps: list[StepView]
    versions: list[VersionView]
