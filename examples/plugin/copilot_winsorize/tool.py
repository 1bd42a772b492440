"""Winsorize: clip numeric feature columns at quantiles learned on the training data."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from tools.base import Tool, ToolContext, ToolParams, ToolResult


class WinsorizeParams(ToolParams):
    lower: float = Field(0.01, ge=0.0, lt=0.5, description="Lower quantile; values below it are raised to it.")
    upper: float = Field(0.99, gt=0.5, le=1.0, description="Upper quantile; values above it are lowered to it.")
    columns: list[str] = Field(
        default_factory=list, description="Numeric columns to clip (empty: all numeric features)."
    )


def reapply_winsorize(table: pd.DataFrame, fitted: dict[str, Any]) -> pd.DataFrame:
    """Clip each fitted column at its learned bounds (self-contained: copied into pipeline.py)."""
    table = table.copy()
    for column, (low, high) in fitted["bounds"].items():
        if column not in table.columns:
            raise ValueError(f"column {column!r} is missing from the data")
        table[column] = table[column].clip(lower=low, upper=high)
    return table


class Winsorize(Tool):
    name = "winsorize"
    description = (
        "Clip numeric feature columns at the given lower and upper quantiles of the training data, "
        "taming extreme values without dropping rows."
    )
    category = "anomalies"
    mutates = True
    Params = WinsorizeParams
    reapply = staticmethod(reapply_winsorize)

    def run(self, table: pd.DataFrame, params: WinsorizeParams, ctx: ToolContext) -> ToolResult:
        columns = params.columns or [
            c
            for c in ctx.feature_columns(table)
            if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
        ]
        unknown = [c for c in columns if c not in table.columns]
        if unknown:
            raise ValueError(f"no column(s) {unknown}; the table has {list(table.columns)}")
        bounds = {c: [float(table[c].quantile(params.lower)), float(table[c].quantile(params.upper))] for c in columns}
        out = reapply_winsorize(table, {"bounds": bounds})
        clipped = {c: int((out[c] != table[c]).sum() - (out[c].isna() & table[c].isna()).sum()) for c in columns}
        total = sum(clipped.values())
        return ToolResult(
            summary=f"Clipped {total} cell(s) in {sum(1 for n in clipped.values() if n)} column(s) at the "
            f"{params.lower:g}/{params.upper:g} quantiles.",
            table=out,
            findings={"clipped": clipped, "bounds": bounds},
            metrics={"cells_clipped": float(total)},
            fitted={"bounds": bounds},
        )
