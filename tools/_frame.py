"""Small helpers shared by the column and row tools: column kinds, checks, JSON labels.

Nothing here is used by a ``reapply`` function (those must stay self-contained).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tools.base import ToolContext

ROW_CAP = 200
MAD_TO_SD = 1.4826
IQR_TO_SD = 1.349


def infer_kind(series: pd.Series) -> str:
    """The semantic type of a column judged from its dtype alone."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def column_kinds(table: pd.DataFrame, ctx: ToolContext) -> dict[str, str]:
    """Each column's semantic type: the one in ``ctx.column_types``, else inferred from its dtype."""
    return {col: ctx.column_types.get(col) or infer_kind(table[col]) for col in table.columns}


def is_number_dtype(series: pd.Series) -> bool:
    """True for numeric dtypes that we can do arithmetic on (booleans excluded)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def protected_columns(table: pd.DataFrame, ctx: ToolContext) -> set[str]:
    """Columns no tool may change or learn from: the target, the ids, identifier-typed columns."""
    kinds = column_kinds(table, ctx)
    protected = set(ctx.id_columns) | {c for c, k in kinds.items() if k == "identifier"}
    if ctx.target:
        protected.add(ctx.target)
    return protected & set(table.columns)


def feature_columns(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """Usable feature columns: no target, no ids, no identifier- or text-typed columns."""
    kinds = column_kinds(table, ctx)
    protected = protected_columns(table, ctx)
    return [c for c in ctx.feature_columns(table) if c not in protected and kinds[c] != "text"]


def numeric_features(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """Feature columns typed numeric that are stored as numbers."""
    kinds = column_kinds(table, ctx)
    return [c for c in feature_columns(table, ctx) if kinds[c] == "numeric" and is_number_dtype(table[c])]


def require_columns(table: pd.DataFrame, columns: Iterable[str], tool: str) -> None:
    """Raise a ValueError naming every column that the table does not have."""
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise ValueError(
            f"{tool}: no column named {', '.join(map(repr, unknown))}; "
            f"the table has: {', '.join(map(str, table.columns))}"
        )


def refuse_protected(table: pd.DataFrame, ctx: ToolContext, columns: Iterable[str], tool: str) -> None:
    """Raise a ValueError when the user asks a tool to change the target or an identifier."""
    protected = protected_columns(table, ctx)
    asked = [c for c in columns if c in protected]
    if asked:
        raise ValueError(
            f"{tool} never changes the target or identifier columns; "
            f"remove {', '.join(map(repr, asked))} from its columns"
        )


def json_value(value: Any) -> Any:
    """A cell value or index label as plain JSON (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def json_labels(index: Iterable[Any]) -> list[Any]:
    """Index labels as a JSON list."""
    return [json_value(label) for label in index]


def counts_text(counts: dict[str, int]) -> str:
    """``{"a": 3, "b": 1}`` as ``"a (3), b (1)"`` for summaries."""
    return ", ".join(f"{k} ({v})" for k, v in counts.items())


def plural(n: int, word: str) -> str:
    """``plural(1, "column")`` is "1 column", ``plural(3, "column")`` is "3 columns"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class Scale:
    """A column's robust centre and spread (spread 0 when it cannot be judged)."""

    center: float
    spread: float


def robust_scale(series: pd.Series) -> Scale:
    """Median and a robust standard deviation: 1.4826 * MAD, or IQR / 1.349 when MAD is 0."""
    values = series.dropna().to_numpy(dtype=float)
    if len(values) == 0:
        return Scale(0.0, 0.0)
    center = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - center)))
    if spread == 0:
        q1, q3 = np.percentile(values, [25, 75])
        spread = float(q3 - q1) / IQR_TO_SD
    return Scale(center, spread)
