"""The worker turns the next plan step into a validated tool call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents.plan import PlanStep
from tools.registry import Registry, UnknownToolError


class ToolCallError(ValueError):
    """A step names an unknown tool or parameters that fail the tool's schema."""


@dataclass(frozen=True)
class ToolCall:
    tool: str
    params: dict[str, Any]


def validate_call(registry: Registry, tool: str, params: dict[str, Any]) -> ToolCall:
    """Check ``params`` against the tool's schema; the error names the field."""
    try:
        tool_cls = registry.get(tool)
    except UnknownToolError as exc:
        raise ToolCallError(str(exc)) from None
    try:
        parsed = tool_cls.parse_params(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        raise ToolCallError(f"invalid parameters for {tool}: {problems}") from None
    return ToolCall(tool, parsed.model_dump(mode="json"))


class RuleBasedWorker:
    """Takes the coordinator's parameters as they are, once they pass the schema."""

    name = "rule-based"

    def prepare(self, step: PlanStep, registry: Registry) -> ToolCall:
        return validate_call(registry, step.tool, step.params)
