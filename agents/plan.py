"""The plan a coordinator proposes and the guidance a human gives it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

#: The pseudo-tool of a backtracking step: approving ``revert`` with ``{"step": KEY}`` returns the
#: data to the version before step KEY, which must be the step that made the current version.
REVERT = "revert"
#: A step whose key ends so cleans the rows held out for scoring, once the gain is measured, the way the
#: step of the key before it cleaned the others (``tools.holdout``).
HELD_OUT_SUFFIX = ":held_out"
#: The key of the score of the cleaned data that the session's gain is read from.
FINAL_SCORE = "evaluate:final"

#: ``superseded``: shown at the gate, then withdrawn because the plan was re-made; kept so that its id and
#: proposal are never reused, and left out of the plan the person sees.
StepStatus = Literal[
    "proposed",
    "previewing",
    "awaiting_approval",
    "running",
    "done",
    "failed",
    "rejected",
    "skipped",
    "reverted",
    "superseded",
]


class PlanStep(BaseModel):
    """One step: a registered tool, its parameters, and why."""

    key: str = Field(description="What the step is for, e.g. 'evaluate:baseline'; a plan never repeats a key.")
    tool: str
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str
    expected: str = Field("", description="What the step should change.")
    status: StepStatus = "proposed"


class RequestedStep(BaseModel):
    """A tool the human asked for by name (e.g. a plugin), with its parameters."""

    tool: str
    params: dict[str, Any] = Field(default_factory=dict)


class Guidance(BaseModel):
    """What the domain expert told the co-pilot; every plan must honour it."""

    goal: str = ""
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="Valid value ranges, e.g. {'age': (0, 120)}."
    )
    keep_columns: list[str] = Field(default_factory=list, description="Columns never to drop.")
    allow_row_drops: bool = Field(True, description="False: never drop rows (relabel or impute instead).")
    requested: list[RequestedStep] = Field(
        default_factory=list,
        description="Extra tools to run, after the planned cleaning and before the final score.",
    )


class Observation(BaseModel):
    """What happened when a step ran (or was skipped), as the coordinator sees it."""

    key: str
    tool: str
    status: StepStatus
    summary: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    findings: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)  # what it ran with
