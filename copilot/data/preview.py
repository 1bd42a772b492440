"""What a step would change, told from the table before it and the table it left: the preview at the gate.

A preview is computed once, outside the engine's lock, from two Parquet files: the rows that would go (with the
step's own per-row evidence), the cells that would change (counts per column, a sample, before → after), the
columns added or removed, and for numeric columns a before/after histogram on shared bins. Pages of the rows
and cells are cut from the same two files on request, so nothing large is kept in the store.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from tools._frame import json_labels, json_value

PAGE = 20  # dropped rows in the preview itself; more through the rows endpoint
CELL_SAMPLE = 100  # changed cells in the preview itself, spread over the changed columns
HISTOGRAM_BINS = 20
HISTOGRAM_COLUMNS = 8
MAX_CLASSES = 30  # class counts are shown for a target with at most this many classes


def summarise(before: pd.DataFrame, after: pd.DataFrame, result: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The preview's content: counts, the first page of dropped rows, a sample of changed cells, histograms."""
    dropped = dropped_labels(before, after)
    changed = changed_masks(before, after)
    evidence = evidence_by_row(result.get("findings") or {})
    reported = _reported_columns(before, after, changed, dropped)
    columns = [_column_change(before, after, c, changed.get(c), i < HISTOGRAM_COLUMNS) for i, c in enumerate(reported)]
    return {
        "summary": str(result.get("summary", "")),
        "metrics": dict(result.get("metrics") or {}),
        "rows_before": len(before), "rows_after": len(after),
        "columns_before": before.shape[1], "columns_after": after.shape[1],
        "columns_added": [str(c) for c in after.columns if c not in before.columns],
        "columns_removed": [str(c) for c in before.columns if c not in after.columns],
        "dropped_rows": len(dropped),
        "added_rows": int((~after.index.isin(before.index)).sum()),
        "evidence_columns": _evidence_columns(evidence, dropped),
        "value_columns": [str(c) for c in before.columns],
        "dropped": _dropped_entries(before, dropped[:PAGE], evidence),
        "changed_cells": int(sum(int(m.sum()) for m in changed.values())),
        "columns": columns,
        "cells": _cell_sample(before, after, changed),
        "class_counts": _class_counts(before, after, target),
        "mappings": _mappings(result.get("findings") or {}),
    }  # fmt: skip


def _mappings(findings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The value groups the step made, per column, for the person to edit: its ``findings.mapping_groups``
    (harmonise_categories: each category with the spellings it gathers and their cells)."""
    groups = findings.get("mapping_groups") or {}
    return {
        str(column): [{"category": str(g["canonical"]), "cells": int(g["count"]),
                       "variants": {str(v): int(n) for v, n in g["variants"].items()}} for g in found]
        for column, found in groups.items()
    }  # fmt: skip


def dropped_page(
    before: pd.DataFrame, after: pd.DataFrame, result: dict[str, Any], offset: int, limit: int
) -> dict[str, Any]:
    """One page of the rows the step would drop, in the order of the table, with their evidence."""
    dropped = dropped_labels(before, after)
    evidence = evidence_by_row(result.get("findings") or {})
    return {
        "total": len(dropped), "offset": offset, "limit": limit,
        "evidence_columns": _evidence_columns(evidence, dropped),
        "value_columns": [str(c) for c in before.columns],
        "rows": _dropped_entries(before, dropped[offset:offset + limit], evidence),
    }  # fmt: skip


def cells_page(before: pd.DataFrame, after: pd.DataFrame, column: str, offset: int, limit: int) -> dict[str, Any]:
    """One page of the cells of ``column`` that the step would change (a ``KeyError`` for a column that is in
    only one of the tables: it has no cells that change)."""
    if column not in before.columns or column not in after.columns:
        raise KeyError(column)
    old, new = _aligned(before[[column]], after[[column]])
    mask = ~_same(old[column], new[column])
    rows = new.index[mask][offset : offset + limit]
    cells = [_cell(before, after, row, column) for row in rows]
    return {"total": int(mask.sum()), "offset": offset, "limit": limit, "cells": cells}


def dropped_labels(before: pd.DataFrame, after: pd.DataFrame) -> pd.Index:
    """Labels of the rows of ``before`` that ``after`` no longer holds, in the order of ``before``."""
    return before.index[~before.index.isin(after.index)]


def changed_masks(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each column in both tables, which of the rows kept (in ``after``'s order) change value; only
    columns with a change. Missing equals missing, and a number written as text equals the number."""
    shared = [c for c in after.columns if c in before.columns]
    old, new = _aligned(before[shared], after[shared])
    masks = {}
    for column in shared:
        mask = ~_same(old[column], new[column])
        if mask.any():
            masks[str(column)] = mask
    return masks


def _aligned(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``after`` that ``before`` holds too, in ``after``'s order, from both tables."""
    new = after[after.index.isin(before.index)]
    return before.loc[new.index], new


def evidence_by_row(findings: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """The step's own evidence per row label: its ``findings.rows`` entries (several for one row are joined),
    and for duplicate groups the row each repeat duplicates."""
    gathered: dict[Any, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for entry in findings.get("rows") or []:
        if isinstance(entry, dict) and "row" in entry:
            for name, value in entry.items():
                if name != "row" and value not in gathered[entry["row"]][name]:
                    gathered[entry["row"]][name].append(value)
    for group in findings.get("examples") or []:
        if isinstance(group, dict) and "kept" in group:
            for row in group.get("rows") or []:
                if row != group["kept"]:
                    gathered[row]["duplicate_of"].append(group["kept"])
    return {row: {name: values[0] if len(values) == 1 else "; ".join(map(str, values))
                  for name, values in fields.items()} for row, fields in gathered.items()}  # fmt: skip


def _same(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Cell by cell, whether ``after`` holds the value ``before`` held (the same number in another type
    counts as the same: retyping is reported per column, not as changed cells)."""
    missing = before.isna().to_numpy() & after.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(after) and not pd.api.types.is_bool_dtype(after):
        left = pd.to_numeric(before, errors="coerce") if not pd.api.types.is_numeric_dtype(before) else before
        same = (left.astype("float64").to_numpy() == after.astype("float64").to_numpy()) & ~before.isna().to_numpy()
        return same | missing
    equal = before.astype(object).to_numpy() == after.astype(object).to_numpy()
    return np.asarray(equal, dtype=bool) | missing


def _reported_columns(
    before: pd.DataFrame, after: pd.DataFrame, changed: dict[str, np.ndarray], dropped: pd.Index
) -> list[str]:
    """Columns whose values change or whose type does, and, when rows go, the numeric columns in which the
    dropped rows stand out most from those kept (their mean in standard deviations of the column)."""
    shared = [str(c) for c in after.columns if c in before.columns]
    retyped = [c for c in shared if str(before[c].dtype) != str(after[c].dtype)]
    reported = [c for c in shared if c in changed or c in retyped]
    if len(dropped):
        reported += [c for c in _standing_out(before, after, dropped) if c not in reported]
    return reported


def _standing_out(before: pd.DataFrame, after: pd.DataFrame, dropped: pd.Index) -> list[str]:
    shifts = {}
    for column in [c for c in after.columns if c in before.columns]:
        values = before[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            spread = float(values.std())
            gone = float(values.loc[dropped].mean())
            if spread > 0 and np.isfinite(gone):
                shifts[str(column)] = abs(gone - float(after[column].mean())) / spread
    return sorted(shifts, key=lambda c: -shifts[c])[:3]


def _column_change(before: pd.DataFrame, after: pd.DataFrame, column: str, mask: np.ndarray | None,
                   drawn: bool) -> dict[str, Any]:  # fmt: skip
    return {
        "column": column, "changed": int(mask.sum()) if mask is not None else 0,
        "dtype_before": str(before[column].dtype), "dtype_after": str(after[column].dtype),
        "histogram": histogram(before[column], after[column]) if drawn else None,
    }  # fmt: skip


def histogram(before: pd.Series, after: pd.Series) -> dict[str, Any] | None:
    """Before and after on the same bins, spanning the values after the step; values before that fall
    outside (an outlier the step removed) are counted ``below`` and ``above``, as [before, after]. None for a
    column that is not numeric after the step, or has nothing to show."""
    if not pd.api.types.is_numeric_dtype(after) or pd.api.types.is_bool_dtype(after):
        return None
    old = pd.to_numeric(before, errors="coerce").astype("float64").to_numpy()
    new = after.astype("float64").to_numpy()
    old, new = old[np.isfinite(old)], new[np.isfinite(new)]
    span = new if len(new) else old
    if not len(span):
        return None
    low, high = float(span.min()), float(span.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    counts = [np.histogram(values[(values >= low) & (values <= high)], bins=edges)[0] for values in (old, new)]
    return {
        "edges": [float(e) for e in edges],
        "before": [int(n) for n in counts[0]], "after": [int(n) for n in counts[1]],
        "below": [int((old < low).sum()), int((new < low).sum())],
        "above": [int((old > high).sum()), int((new > high).sum())],
    }  # fmt: skip


def _evidence_columns(evidence: dict[Any, dict[str, Any]], dropped: pd.Index) -> list[str]:
    names: dict[str, None] = {}
    for row in json_labels(dropped):
        names.update(dict.fromkeys(evidence.get(row, {})))
    return list(names)


def _dropped_entries(before: pd.DataFrame, rows: pd.Index, evidence: dict[Any, dict[str, Any]]) -> list[dict]:
    entries = []
    for label, (_, values) in zip(json_labels(rows), before.loc[rows].iterrows(), strict=True):
        entries.append({"row": _plain(label), "evidence": {k: _plain(v) for k, v in evidence.get(label, {}).items()},
                        "values": {str(c): _plain(v) for c, v in values.items()}})  # fmt: skip
    return entries


def _cell(before: pd.DataFrame, after: pd.DataFrame, row: Any, column: str) -> dict[str, Any]:
    return {"row": _plain(row), "column": column, "before": _plain(before.at[row, column]),
            "after": _plain(after.at[row, column])}  # fmt: skip


def _plain(value: Any) -> Any:
    """A cell or label as JSON that any client parses: NaN as null, an infinity as text."""
    value = json_value(value)
    return str(value) if isinstance(value, float) and not np.isfinite(value) else value


def _cell_sample(before: pd.DataFrame, after: pd.DataFrame, changed: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Up to ``CELL_SAMPLE`` changed cells, a fair share from each changed column, in the order of the table."""
    if not changed:
        return []
    kept = after.index[after.index.isin(before.index)]
    share = max(1, CELL_SAMPLE // len(changed))
    cells = []
    for column, mask in changed.items():
        cells += [_cell(before, after, row, column) for row in kept[mask][:share]]
    return cells[:CELL_SAMPLE]


def _class_counts(before: pd.DataFrame, after: pd.DataFrame, target: str | None) -> dict[str, list[int]] | None:
    """For a class target, how many rows each class has before and after; None for any other target."""
    if target is None or target not in before.columns or target not in after.columns:
        return None
    old, new = before[target].value_counts(dropna=False), after[target].value_counts(dropna=False)
    classes = list(dict.fromkeys([*old.index, *new.index]))
    continuous = pd.api.types.is_float_dtype(before[target]) and before[target].nunique() > 2
    if len(classes) > MAX_CLASSES or continuous:
        return None
    return {str(json_value(c)): [int(old.get(c, 0)), int(new.get(c, 0))] for c in classes}
