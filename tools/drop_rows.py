"""Drop training rows: by conditions on column values, a missing target, or too many missing cells.

A missing cell never satisfies a comparison (``!=`` and ``not_in`` included);
only ``isna`` matches it. Numeric columns compare as numbers, every other
column compares as text.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tools._frame import ROW_CAP, is_number_dtype, json_labels, plural, require_columns
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult

Op = Literal["<", "<=", ">", ">=", "==", "!=", "isna", "notna", "in", "not_in"]
ORDER_OPS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
Scalar = float | str


class Condition(BaseModel):
    """One test on a column; a row matching the conditions (see ``how``) is dropped."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="The column to test.")
    op: Op = Field(description="Comparison; isna/notna take no value; in/not_in take a list.")
    value: Scalar | list[Scalar] | None = Field(
        None, description="What to compare with: a number for numeric columns, text otherwise."
    )

    def text(self) -> str:
        return f"{self.column} {self.op}" + ("" if self.value is None else f" {self.value!r}")


class DropRowsParams(ToolParams):
    conditions: list[Condition] = Field(
        default_factory=list,
        description='Drop rows matching these, e.g. [{"column": "age", "op": ">", "value": 120}].',
    )
    how: Literal["any", "all"] = Field(
        "any", description="any: a row matching one condition is dropped; all: only rows matching every one."
    )
    missing_target: bool = Field(True, description="Also drop rows whose target is missing.")
    max_missing_pct: float = Field(
        100.0,
        ge=0,
        le=100,
        description="Also drop rows with more than this percentage of feature cells missing (100 = off).",
    )


class DropRows(Tool):
    name = "drop_rows"
    description = (
        "Drop training rows that match conditions on column values (e.g. age > 120, city isna), rows "
        "with a missing target, and rows with too many missing feature cells."
    )
    category = "missingness"
    mutates = True
    train_only = True
    Params = DropRowsParams

    def run(self, table: pd.DataFrame, params: DropRowsParams, ctx: ToolContext) -> ToolResult:
        require_columns(table, [c.column for c in params.conditions], "drop_rows")
        per_condition = {c.text(): condition_mask(table, c) for c in params.conditions}
        reasons = {
            "conditions": combine(list(per_condition.values()), params.how, table.index),
            "missing_target": missing_target(table, ctx, params.missing_target),
            "too_many_missing": too_many_missing(table, ctx, params.max_missing_pct),
        }
        drop = pd.concat(reasons.values(), axis=1).any(axis=1)
        if len(table) and drop.all():
            raise ValueError(f"drop_rows would remove all {len(table)} rows; loosen the conditions")
        out = table.loc[~drop].copy()
        return _result(table, out, drop, reasons, per_condition)


def condition_mask(table: pd.DataFrame, cond: Condition) -> pd.Series:
    """Rows where ``cond`` holds (never on a missing cell, except for isna)."""
    series = table[cond.column]
    if cond.op == "isna":
        return series.isna()
    if cond.op == "notna":
        return series.notna()
    values = _values(series, cond)
    if cond.op in ("in", "not_in"):
        hit = _as_compared(series).isin(values)
        hit = hit if cond.op == "in" else ~hit
    elif cond.op in ORDER_OPS:
        hit = getattr(series, ORDER_OPS[cond.op])(values[0])
    else:
        hit = _as_compared(series) == values[0]
        hit = hit if cond.op == "==" else ~hit
    return hit.fillna(False).astype(bool) & series.notna()


def _as_compared(series: pd.Series) -> pd.Series:
    return series if is_number_dtype(series) else series.astype("str")


def _values(series: pd.Series, cond: Condition) -> list[Scalar]:
    """The condition's values, checked against the column's kind."""
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    if cond.value is None or not values:
        raise ValueError(f"drop_rows: condition '{cond.text()}' needs a value")
    if cond.op not in ("in", "not_in") and len(values) != 1:
        raise ValueError(f"drop_rows: condition '{cond.text()}' takes one value; use 'in' for a list")
    numeric = is_number_dtype(series)
    if cond.op in ORDER_OPS and not numeric:
        raise ValueError(
            f"drop_rows: '{cond.op}' needs a numeric column, but {cond.column!r} is {series.dtype}; "
            "convert it with coerce_types first or use ==, !=, in"
        )
    kind = float if numeric else str
    wrong = [v for v in values if not isinstance(v, kind)]
    if wrong:
        holds = "numbers" if numeric else "text"
        raise ValueError(f"drop_rows: column {cond.column!r} holds {holds}; {wrong[0]!r} cannot be compared with it")
    return values


def combine(masks: list[pd.Series], how: str, index: pd.Index) -> pd.Series:
    """Rows matching any (or all) of the masks; no masks match no row."""
    if not masks:
        return pd.Series(False, index=index)
    frame = pd.concat(masks, axis=1)
    return frame.any(axis=1) if how == "any" else frame.all(axis=1)


def missing_target(table: pd.DataFrame, ctx: ToolContext, enabled: bool) -> pd.Series:
    if not enabled or not ctx.target or ctx.target not in table.columns:
        return pd.Series(False, index=table.index)
    return table[ctx.target].isna()


def too_many_missing(table: pd.DataFrame, ctx: ToolContext, max_missing_pct: float) -> pd.Series:
    """Rows with more than ``max_missing_pct`` % of their feature cells missing (100 turns it off)."""
    features = ctx.feature_columns(table)
    if max_missing_pct >= 100 or not features:
        return pd.Series(False, index=table.index)
    return 100.0 * table[features].isna().mean(axis=1) > max_missing_pct


def _result(
    table: pd.DataFrame,
    out: pd.DataFrame,
    drop: pd.Series,
    reasons: dict[str, pd.Series],
    per_condition: dict[str, pd.Series],
) -> ToolResult:
    by_reason = {name: int(mask.sum()) for name, mask in reasons.items()}
    findings = {
        "dropped": int(drop.sum()),
        "by_reason": by_reason,
        "per_condition": {text: int(mask.sum()) for text, mask in per_condition.items()},
        "rows": json_labels(table.index[drop][:ROW_CAP]),
    }
    metrics = {"rows_dropped": float(findings["dropped"]), "rows_kept": float(len(out))}
    metrics |= {f"rows_{name}": float(n) for name, n in by_reason.items()}
    chart = Chart("bar", "Rows dropped by reason", list(by_reason), [float(v) for v in by_reason.values()])
    return ToolResult(
        summary=_summary(findings, len(table), len(out)),
        table=out,
        findings=findings,
        metrics=metrics,
        charts=[chart] if findings["dropped"] else [],
    )


def _summary(findings: dict, total: int, kept: int) -> str:
    if not findings["dropped"]:
        return f"No row matched; all {plural(total, 'row')} kept."
    words = {
        "conditions": "matching the conditions ({})".format(", ".join(findings["per_condition"])),
        "missing_target": "with a missing target",
        "too_many_missing": "with too many missing feature cells",
    }
    parts = [f"{n} {words[name]}" for name, n in findings["by_reason"].items() if n]
    return f"Dropped {findings['dropped']} of {plural(total, 'row')}: {'; '.join(parts)}. {kept} remain."
