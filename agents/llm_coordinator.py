"""The LLM coordinator: a plan as structured output, validated by pydantic and by the registry.

The model answers a JSON document that must match :class:`LLMPlan`'s schema.
Nothing is parsed with ``eval`` or regular expressions: the JSON is validated
by pydantic, then checked against the registry, the history and the table's
columns. A plan that fails either check gets one corrective message; a second
failure raises :class:`~agents.llm.LLMError` and the rule-based coordinator
takes over.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agents.llm import LLMClient, LLMError, Usage
from agents.plan import REVERT, Guidance, Observation, PlanStep
from agents.rule_based import PlanningState
from agents.summary import shown_data
from tools.registry import Registry

MAX_STEPS = 40  # observed steps after which a session's plan is over, whatever the LLM says
CORRECTIONS = 1
_FINDING_FIELDS = {"column", "metric", "score", "method", "recommendation", "count", "missing", "filled", "n"}


class LLMStep(BaseModel):
    key: str = Field(min_length=1, max_length=100, description="Unique name of the step, e.g. 'impute'.")
    tool: str = Field(description="A registered tool, or 'revert'.")
    rationale: str = Field(min_length=1, description="Why, in one sentence grounded in the numbers.")
    expected: str = Field("", description="What the step should change.")


class GuidanceUpdate(BaseModel):
    """Rules read from the expert's chat; empty when there are none."""

    goal: str | None = None
    keep_columns: list[str] = Field(default_factory=list)
    allow_row_drops: bool | None = None
    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)

    def applied_to(self, guidance: Guidance) -> Guidance:
        keep = [*guidance.keep_columns, *(c for c in self.keep_columns if c not in guidance.keep_columns)]
        return guidance.model_copy(update={
            "goal": self.goal or guidance.goal, "keep_columns": keep, "ranges": {**guidance.ranges, **self.ranges},
            "allow_row_drops": guidance.allow_row_drops if self.allow_row_drops is None else self.allow_row_drops,
        })  # fmt: skip


class LLMPlan(BaseModel):
    steps: list[LLMStep]
    guidance: GuidanceUpdate = Field(default_factory=GuidanceUpdate)


RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "plan", "schema": LLMPlan.model_json_schema()}}


class LLMCoordinator:
    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.system = (files("agents") / "prompts" / "coordinator.md").read_text(encoding="utf-8")

    def plan(
        self, state: PlanningState, registry: Registry, draft: list[PlanStep], usage: Usage
    ) -> tuple[list[PlanStep], Guidance | None]:
        """The remaining steps (parameters still to be chosen) and the guidance, if the chat changed it."""
        if len(state.history) >= MAX_STEPS:
            return [], None
        task = planning_input(state, registry, draft)
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": json.dumps(task)}]
        for attempt in range(CORRECTIONS + 1):
            reply = self.client.chat(messages, usage, response_format=RESPONSE_FORMAT)
            try:
                return self._checked(reply.content, state, registry)
            except ValueError as exc:
                if attempt == CORRECTIONS:
                    raise LLMError(f"its plan was still invalid after a correction: {exc}") from None
                messages += [{"role": "assistant", "content": reply.content},
                             {"role": "user", "content": f"That plan is invalid: {exc}. Answer the corrected "
                                                         "plan as JSON matching the schema."}]  # fmt: skip
        raise AssertionError("unreachable")

    def _checked(
        self, content: str, state: PlanningState, registry: Registry
    ) -> tuple[list[PlanStep], Guidance | None]:
        try:
            plan = LLMPlan.model_validate_json(content)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])
            raise ValueError(f"the JSON does not match the schema ({problems})") from None
        problems = plan_problems(plan, state, registry)
        if problems:
            raise ValueError("; ".join(problems))
        update = plan.guidance
        changed = update.applied_to(state.guidance)
        steps = [PlanStep(key=s.key, tool=s.tool, params=_revert_params(s), rationale=s.rationale,
                          expected=s.expected) for s in plan.steps]  # fmt: skip
        return steps, (changed if changed != state.guidance else None)


def plan_problems(plan: LLMPlan, state: PlanningState, registry: Registry) -> list[str]:
    """Each way the plan breaks the registry, the history or the table, as a sentence."""
    problems = []
    keys = [s.key for s in plan.steps]
    for step in plan.steps:
        if step.tool != REVERT and step.tool not in registry.names():
            problems.append(f"step {step.key!r} names the tool {step.tool!r}, which is not registered")
        if state.seen(step.key):
            problems.append(f"step {step.key!r} is already in the history; use a new key or drop it")
        current = state.current_step
        if step.tool == REVERT and step.key != f"{REVERT}:{current}":
            problems.append(f"step {step.key!r}: only the step that made the current version ({current!r}) "
                            f"can be reverted, with the key 'revert:{current}'")  # fmt: skip
    problems += [f"the key {k!r} is used twice" for k in sorted({k for k in keys if keys.count(k) > 1})]
    columns = set(state.profile["columns"])
    named = [*plan.guidance.keep_columns, *plan.guidance.ranges]
    problems += [f"guidance names the column {c!r}, which the table does not have" for c in named if c not in columns]
    return problems


def planning_input(state: PlanningState, registry: Registry, draft: list[PlanStep]) -> dict:
    """The coordinator's view of the session: the data at its share level (:mod:`agents.summary`), rules,
    history."""
    return {
        "target": state.target, "task": state.task, "data": shown_data(state), "guidance": state.guidance.model_dump(),
        "history": [observation_summary(o) for o in state.history], "current_step": state.current_step,
        "messages": state.messages[-10:], "tools": tool_catalogue(registry),
        "draft": [{"key": s.key, "tool": s.tool, "params": s.params} for s in draft],
    }  # fmt: skip


def tool_catalogue(registry: Registry) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "category": t.category, "changes_data": t.mutates}
            for t in registry.tools.values()]  # fmt: skip


def observation_summary(obs: Observation) -> dict[str, Any]:
    """What the LLM learns from a step: its fate, metrics and the counts and columns of its findings.
    Tool summaries and row-level findings are left out: they may quote cell values."""
    metrics = {k: round(v, 4) for k, v in obs.metrics.items()}
    return {"key": obs.key, "tool": obs.tool, "status": obs.status, "metrics": metrics,
            "findings": _safe_findings(obs.findings)}  # fmt: skip


def _safe_findings(findings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in findings.items():
        if isinstance(value, bool | int | float):
            out[name] = value
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "column" in v for v in value):
            out[name] = [{k: v for k, v in item.items() if k in _FINDING_FIELDS} for item in value[:20]]
    return out


def _revert_params(step: LLMStep) -> dict[str, Any]:
    return {"step": step.key.split(":", 1)[1]} if step.tool == REVERT else {}
