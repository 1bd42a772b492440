"""Drop feature columns that are constant or almost entirely missing, or those the user names."""

from __future__ import annotations

import pandas as pd
from pydantic import Field

from tools._frame import (
    column_kinds,
    json_value,
    plural,
    protected_columns,
    refuse_protected,
    require_columns,
)
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult


class DropColumnsParams(ToolParams):
    columns: list[str] = Field(
        default_factory=list,
        description=(
            "Columns to drop. Empty means: drop every constant feature column and every feature column "
            "with at least max_missing_pct percent missing. The target and identifiers are never dropped."
        ),
    )
    max_missing_pct: float = Field(
        95.0,
        gt=0,
        le=100,
        description="When columns is empty, drop feature columns with at least this percentage missing.",
    )


def reapply_drop_columns(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Drop the fitted columns that ``table`` has (a column already absent is fine)."""
    return table.drop(columns=[c for c in fitted["columns"] if c in table.columns])


class DropColumns(Tool):
    name = "drop_columns"
    description = (
        "Drop columns: by default every constant feature column and every feature column that is "
        "almost entirely missing (>= max_missing_pct); or exactly the columns named. Never drops the "
        "target or identifier columns. The same columns are dropped from new data."
    )
    category = "schema"
    mutates = True
    Params = DropColumnsParams
    reapply = staticmethod(reapply_drop_columns)

    def run(self, table: pd.DataFrame, params: DropColumnsParams, ctx: ToolContext) -> ToolResult:
        if params.columns:
            require_columns(table, params.columns, "drop_columns")
            refuse_protected(table, ctx, params.columns, "drop_columns")
            dropped = [{"column": c, "reason": "requested"} for c in dict.fromkeys(params.columns)]
        else:
            dropped = useless_columns(table, ctx, params.max_missing_pct)
        fitted = {"columns": [d["column"] for d in dropped]}
        out = reapply_drop_columns(table, fitted)
        return ToolResult(
            summary=_summary(dropped, out),
            table=out,
            findings={"dropped": dropped, "kept": len(out.columns)},
            metrics={"columns_dropped": float(len(dropped)), "columns_kept": float(len(out.columns))},
            charts=_charts(table),
            fitted=fitted,
        )


def useless_columns(table: pd.DataFrame, ctx: ToolContext, max_missing_pct: float) -> list[dict[str, str]]:
    """Feature columns at least ``max_missing_pct`` % missing, or holding a single value."""
    kinds = column_kinds(table, ctx)
    protected = protected_columns(table, ctx)
    found = []
    for col in table.columns:
        if col in protected:
            continue
        reason = _why_useless(table[col], kinds[col], max_missing_pct)
        if reason:
            found.append({"column": str(col), "reason": reason})
    return found


def _why_useless(series: pd.Series, kind: str, max_missing_pct: float) -> str | None:
    missing_pct = 100.0 * float(series.isna().mean()) if len(series) else 0.0
    if missing_pct >= max_missing_pct:
        return f"{missing_pct:.1f}% missing (threshold {max_missing_pct:g}%)"
    if kind == "constant" or series.nunique(dropna=False) <= 1:
        values = series.dropna()
        value = json_value(values.iloc[0]) if len(values) else None
        return f"constant: every value is {value!r}" + (" or missing" if series.isna().any() else "")
    return None


def _summary(dropped: list[dict[str, str]], out: pd.DataFrame) -> str:
    if not dropped:
        return "No constant or mostly-missing feature columns; nothing was dropped."
    parts = "; ".join(f"{d['column']} ({d['reason']})" for d in dropped)
    return f"Dropped {plural(len(dropped), 'column')}: {parts}. {plural(len(out.columns), 'column')} remain."


def _charts(table: pd.DataFrame) -> list[Chart]:
    missing = 100.0 * table.isna().mean()
    missing = missing[missing > 0]
    if missing.empty:
        return []
    return [
        Chart(
            "bar",
            "Missing values per column (%)",
            [str(c) for c in missing.index],
            [float(v) for v in missing],
            "column",
            "% missing",
        )
    ]
