"""Checks that a loaded table can be cleaned for the given target, with plain messages."""

from __future__ import annotations

import difflib

import pandas as pd

from agents.plan import Guidance
from copilot.errors import TableError
from tools.base import Task, infer_task


def check_table(
    table: pd.DataFrame,
    name: str,
    target: str,
    id_columns: list[str],
    *,
    min_rows: int = 10,
    max_rows: int = 5_000_000,
    max_columns: int = 2_000,
) -> Task:
    """Raise :class:`TableError` when the table cannot be cleaned for ``target``; return the task."""
    if len(table) > max_rows or table.shape[1] > max_columns:
        raise TableError(
            f"{name}: {len(table):,} rows × {table.shape[1]:,} columns is over the limit of "
            f"{max_rows:,} rows × {max_columns:,} columns. Sample the table or raise COPILOT_MAX_ROWS / "
            "COPILOT_MAX_COLUMNS."
        )
    _check_columns_exist(table, name, [target, *id_columns])
    y = table[target]
    if y.isna().all():
        raise TableError(
            f"{name}: the target column {target!r} has no values (every cell is missing). "
            "Choose a column that holds the outcome to predict."
        )
    present = int(y.notna().sum())
    if present < min_rows:
        rows = "1 row has" if present == 1 else f"{present} rows have"
        raise TableError(
            f"{name}: only {rows} a value in {target!r}; at least {min_rows} are needed. "
            "Add rows, or check that this is the right target column."
        )
    task = infer_task(y)
    if task == "classification" and y.nunique(dropna=True) < 2:
        raise TableError(
            f"{name}: the target {target!r} has a single class ({y.dropna().iloc[0]!r}); "
            "a classifier needs at least two. Check that this is the right target column."
        )
    features = [c for c in table.columns if c != target and c not in id_columns]
    if not features:
        raise TableError(
            f"{name}: no feature columns are left besides the target {target!r} and identifiers "
            f"{id_columns}. A model needs at least one column to learn from."
        )
    return task


def check_guidance(guidance: Guidance, columns: list[str], name: str) -> None:
    """Raise :class:`TableError` when a rule names a column the table does not have."""
    unknown = [c for c in [*guidance.ranges, *guidance.keep_columns] if c not in set(columns)]
    if unknown:
        hints = [f"{c!r} (did you mean {h!r}?)" if (h := closest_column(c, columns)) else repr(c) for c in unknown]
        raise TableError(f"{name}: the rule(s) name column(s) {', '.join(hints)} that the table does not have.")


def _check_columns_exist(table: pd.DataFrame, name: str, wanted: list[str]) -> None:
    columns = [str(c) for c in table.columns]
    for col in wanted:
        if col in columns:
            continue
        hint = closest_column(col, columns)
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        shown = ", ".join(map(repr, columns[:30])) + (" ..." if len(columns) > 30 else "")
        raise TableError(f"{name}: there is no column {col!r}.{suggestion} The columns are: {shown}.")


def closest_column(name: str, columns: list[str]) -> str | None:
    """The column most like ``name``, ignoring case, or ``None`` when none is close."""
    lowered = {c.lower(): c for c in columns}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None
