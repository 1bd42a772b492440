"""The human's rules, checked in code against every tool call and every tool's output.

Whoever wrote a call's parameters (the rule-based coordinator, an LLM or the
person editing an approval card) it must honour the rules in force: a call
that drops a column the human said to keep, drops rows when the human said
never to, or loosens a range the human set is refused with a sentence that
quotes the rule. People change their rules first, then the call. Rows whose
target is missing are the one exception to "no row drops": an ML-ready table
cannot hold them, and the plan says so.

The parameters say what a call means to do; :func:`output_violations` checks
what it did, so a tool (a plugin, say) whose parameters look harmless cannot
break a rule either.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from agents.plan import Guidance
from agents.worker import ToolCall

#: Tools whose ``action`` parameter removes rows, and the actions that do.
ROW_DROPPING_ACTIONS: dict[str, set[str]] = {"duplicates": {"drop"}, "label_issues": {"drop"}, "outliers": {"drop"}}
Range = tuple[float | None, float | None]


def violations(call: ToolCall, guidance: Guidance) -> list[str]:
    """Each way the call breaks the guidance, as a sentence that quotes the rule; empty when it honours it."""
    found = []
    kept = sorted(set(_dropped_columns(call)) & set(guidance.keep_columns))
    if kept:
        how = "replaces them by date features" if call.tool == "date_features" else "drops them"
        found.append(f"your rule says keep column(s) {kept}, and this {call.tool} call {how}")
    if not guidance.allow_row_drops and _drops_rows(call.tool, call.params):
        found.append(f"your rule says never drop rows, and {call.tool} with these parameters drops rows")
    for column, rule in guidance.ranges.items():
        given = (call.params.get("ranges") or {}).get(column)
        if "ranges" in call.params and given is not None and not _within(_as_range(given), rule):
            found.append(f"your rule says {column} must lie in {describe_range(rule)}, and this call allows "
                         f"{describe_range(_as_range(given))}")  # fmt: skip
    return found


def output_violations(before: pd.DataFrame, after: pd.DataFrame, guidance: Guidance, target: str) -> list[str]:
    """Each rule the step's output breaks, compared with its input: a kept column gone, rows dropped
    (other than those with a missing target) when drops are forbidden, or cells newly out of a range."""
    found = []
    gone = sorted(c for c in guidance.keep_columns if c in before.columns and c not in after.columns)
    if gone:
        found.append(f"your rule says keep column(s) {gone}, and the step removed them")
    if not guidance.allow_row_drops:
        dropped = before.index.difference(after.index)
        no_target = before[target].isna() if target in before.columns else pd.Series(False, index=before.index)
        really = int((~no_target.loc[dropped]).sum())
        if really:
            found.append(f"your rule says never drop rows, and the step dropped {really} row(s)")
    for column, rule in guidance.ranges.items():
        if column in before.columns and column in after.columns:
            new = int(_outside(after[column], rule).sum()) - int(_outside(before[column], rule).sum())
            if new > 0:
                found.append(f"your rule says {column} must lie in {describe_range(rule)}, and the step put "
                             f"{new} more value(s) outside it")  # fmt: skip
    return found


def comply(tool: str, params: dict[str, Any], guidance: Guidance) -> dict[str, Any]:
    """``params`` changed as little as possible to honour the guidance: kept columns are not dropped (a
    kept date column named to date_features stays a date), with row drops forbidden a row-dropping action
    only flags, and ranges are the rules' at their widest. For the fall-back worker."""
    out = dict(params)
    if tool == "drop_columns":
        out["columns"] = [c for c in out.get("columns", []) if c not in guidance.keep_columns]
    if tool == "date_features" and out.get("columns"):
        out["columns"] = {c: "keep" if c in guidance.keep_columns else a for c, a in out["columns"].items()}
    if tool == "personal_data":  # a kept column stays, as a pseudonym
        out["columns"] = {c: "pseudonymise" if c in guidance.keep_columns and a == "drop" else a
                          for c, a in (out.get("columns") or {}).items()}  # fmt: skip
    if not guidance.allow_row_drops and _drops_rows(tool, out):
        if tool == "drop_rows":
            out |= {"conditions": [], "max_missing_pct": 100.0}
        else:
            out["action"] = "flag"
    if out.get("ranges"):
        out["ranges"] = {c: _narrowed(_as_range(r), guidance.ranges.get(c)) for c, r in out["ranges"].items()}
    return out


def describe_range(rule: Range) -> str:
    low, high = rule
    return f"{'-∞' if low is None else f'{low:g}'}..{'∞' if high is None else f'{high:g}'}"


def _dropped_columns(call: ToolCall) -> list[str]:
    """The columns a call removes: those drop_columns names, the date columns date_features replaces, and
    the ones personal_data is told to drop (those it drops by default show in its output)."""
    if call.tool == "date_features":
        return [c for c, action in (call.params.get("columns") or {}).items() if action != "keep"]
    if call.tool == "personal_data":
        return [c for c, action in (call.params.get("columns") or {}).items() if action == "drop"]
    return list(call.params.get("columns", [])) if call.tool == "drop_columns" else []


def _drops_rows(tool: str, params: dict[str, Any]) -> bool:
    if tool == "drop_rows":
        return bool(params.get("conditions")) or float(params.get("max_missing_pct", 100.0)) < 100.0
    return params.get("action") in ROW_DROPPING_ACTIONS.get(tool, set())


def _as_range(value: Any) -> Range:
    low, high = value
    return (None if low is None else float(low), None if high is None else float(high))


def _within(given: Range, rule: Range) -> bool:
    """Whether ``given`` is at least as strict as ``rule`` on both ends."""
    low_ok = rule[0] is None or (given[0] is not None and given[0] >= rule[0])
    high_ok = rule[1] is None or (given[1] is not None and given[1] <= rule[1])
    return low_ok and high_ok


def _narrowed(given: Range, rule: Range | None) -> list[float | None]:
    if rule is None:
        return list(given)
    low = rule[0] if given[0] is None or (rule[0] is not None and given[0] < rule[0]) else given[0]
    high = rule[1] if given[1] is None or (rule[1] is not None and given[1] > rule[1]) else given[1]
    return [low, high]


def _outside(column: pd.Series, rule: Range) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    low, high = (-math.inf if rule[0] is None else rule[0]), (math.inf if rule[1] is None else rule[1])
    return (values < low) | (values > high)
