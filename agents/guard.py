"""The human's rules, checked against a tool call in code: an LLM cannot talk its way past them.

A call proposed by an agent that drops a column the human said to keep, or
drops rows when the human said never to, is refused with a message the LLM
can act on. Rows whose target is missing are the one exception to "no row
drops": an ML-ready table cannot hold them, and the plan says so. The human
editing a step's parameters is not checked here: people may overrule their
own rules.
"""

from __future__ import annotations

from typing import Any

from agents.plan import Guidance
from agents.worker import ToolCall

#: Tools whose ``action`` parameter removes rows, and the actions that do.
ROW_DROPPING_ACTIONS: dict[str, set[str]] = {"duplicates": {"drop"}, "label_issues": {"drop"}, "outliers": {"drop"}}


def violations(call: ToolCall, guidance: Guidance) -> list[str]:
    """Each way the call breaks the guidance, as a sentence; empty when it honours it."""
    found = []
    kept = sorted(set(_dropped_columns(call)) & set(guidance.keep_columns))
    if kept:
        found.append(f"the user asked to keep column(s) {kept}; do not drop them")
    if not guidance.allow_row_drops and _drops_rows(call.tool, call.params):
        found.append(f"the user forbade dropping rows; {call.tool} with these parameters drops rows")
    return found


def comply(tool: str, params: dict[str, Any], guidance: Guidance) -> dict[str, Any]:
    """``params`` changed as little as possible to honour the guidance: kept columns are not dropped,
    and with row drops forbidden a row-dropping action only flags. For the fall-back worker."""
    out = dict(params)
    if tool == "drop_columns":
        out["columns"] = [c for c in out.get("columns", []) if c not in guidance.keep_columns]
    if not guidance.allow_row_drops and _drops_rows(tool, out):
        if tool == "drop_rows":
            out |= {"conditions": [], "max_missing_pct": 100.0}
        else:
            out["action"] = "flag"
    return out


def _dropped_columns(call: ToolCall) -> list[str]:
    return list(call.params.get("columns", [])) if call.tool == "drop_columns" else []


def _drops_rows(tool: str, params: dict[str, Any]) -> bool:
    if tool == "drop_rows":
        return bool(params.get("conditions")) or float(params.get("max_missing_pct", 100.0)) < 100.0
    return params.get("action") in ROW_DROPPING_ACTIONS.get(tool, set())
