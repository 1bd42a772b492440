"""The worker turns the next plan step into a validated tool call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents.plan import PlanStep
from tools.registry import Registry, UnknownToolError

_COLUMN_MAPS = frozenset({"columns", "ranges", "mapping"})


class ToolCallError(ValueError):
    """A step names an unknown tool or parameters that fail the tool's schema."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [{"loc": ["params"], "msg": message}]


@dataclass(frozen=True)
class ToolCall:
    tool: str
    params: dict[str, Any]


def validate_call(registry: Registry, tool: str, params: dict[str, Any], columns: list[str] | None = None) -> ToolCall:
    """Check ``params`` against the tool's schema, and column names against ``columns``;
    the error names the field or the column."""
    try:
        tool_cls = registry.get(tool)
    except UnknownToolError as exc:
        raise ToolCallError(str(exc)) from None
    try:
        parsed = tool_cls.parse_params(params)
    except ValidationError as exc:
        errors = [{"loc": ["params", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'params'}: {e['msg']}" for e in errors)
        raise ToolCallError(f"invalid parameters for {tool}: {problems}", errors) from None
    call = ToolCall(tool, parsed.model_dump(mode="json"))
    if columns is not None:
        unknown = sorted(set(referenced_columns(call.params)) - set(columns))
        if unknown:
            raise ToolCallError(f"{tool} names column(s) {unknown} that the table does not have; it has {columns}")
    return call


def referenced_columns(params: Any, key: str = "") -> list[str]:
    """Column names inside tool parameters, by the conventions the tools share: a ``column``
    field, a ``columns`` list, and the keys of ``columns``, ``ranges`` or ``mapping`` mappings."""
    if isinstance(params, dict):
        if key in _COLUMN_MAPS:
            return [str(k) for k in params]
        found = [v for k, v in params.items() if k == "column" and isinstance(v, str)]
        return found + [c for k, v in params.items() if k != "column" for c in referenced_columns(v, k)]
    if isinstance(params, list):
        if key == "columns":
            return [v for v in params if isinstance(v, str)]
        return [c for item in params for c in referenced_columns(item, key)]
    return []


class RuleBasedWorker:
    """Takes the coordinator's parameters as they are, once they pass the schema."""

    name = "rule-based"

    def prepare(self, step: PlanStep, registry: Registry, columns: list[str]) -> ToolCall:
        return validate_call(registry, step.tool, step.params, columns)
