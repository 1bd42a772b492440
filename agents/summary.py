"""What the LLM may see of the data: aggregates only, by construction.

The summary is built from the profile, never from the table, and copies only
named fields: the schema, counts, missingness, quantiles rounded to three
significant digits (so no exact cell value leaves), issue counts, and the top
values of low-cardinality categorical and yes/no columns, each seen at least
:data:`MIN_COUNT` times. Identifier and free-text columns contribute their
name, type and counts, never a value. The profile's ``evidence`` sentences,
which quote example cells, are never copied. ``share="samples"`` adds a few
rows without the identifier and free-text columns, for users who allow it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from agents.llm import Share

MIN_COUNT = 5
MAX_CATEGORIES = 20
SAMPLE_ROWS = 5
_VALUE_TYPES = {"categorical", "boolean"}
_COUNTS = ("missing", "missing_pct", "n_unique", "sentinel_count", "unparseable")
_FLAGS = ("numeric_as_text", "unit")


def summarize(profile: dict[str, Any], target: str, id_columns: list[str]) -> dict[str, Any]:
    """The aggregates the LLM receives about a table."""
    columns = {name: _column(info, name in id_columns) for name, info in profile["columns"].items()}
    return {
        "n_rows": profile["n_rows"], "n_columns": profile["n_columns"],
        "duplicate_rows": profile.get("duplicate_rows", 0), "target": _target(profile.get("target") or {}, target),
        "id_columns": list(id_columns), "columns": columns,
    }  # fmt: skip


def sample_rows(table: pd.DataFrame, profile: dict[str, Any], id_columns: list[str], share: Share) -> list[dict]:
    """A few rows for ``share="samples"``; none otherwise. Identifier and free-text columns are left out."""
    if share != "samples":
        return []
    hidden = {c for c, info in profile["columns"].items() if info["type"] in {"identifier", "text"}} | set(id_columns)
    shown = [c for c in table.columns if c not in hidden]
    head = table[shown].head(SAMPLE_ROWS).astype(object)
    return head.where(head.notna(), None).to_dict(orient="records")


def _column(info: dict[str, Any], is_id: bool) -> dict[str, Any]:
    kind = "identifier" if is_id else info["type"]
    out: dict[str, Any] = {"type": kind, "dtype": str(info.get("dtype", ""))}
    out |= {k: info[k] for k in _COUNTS if k in info}
    out |= {k: info[k] for k in _FLAGS if info.get(k)}
    stats = info.get("stats")
    if kind == "numeric" and stats:
        out["stats"] = {k: _round(v) for k, v in stats.items() if v is not None}
    if kind in _VALUE_TYPES and int(info.get("n_unique", 0)) <= MAX_CATEGORIES:
        out["top_values"] = [[str(v), int(n)] for v, n in info.get("top_values", []) if int(n) >= MIN_COUNT]
    return out


def _target(info: dict[str, Any], target: str) -> dict[str, Any]:
    out = {"column": target, "task": info.get("task"), "missing": info.get("missing", 0)}
    counts = info.get("class_counts") or {}
    if counts:
        out["n_classes"] = len(counts)
        out["class_counts"] = {str(k): int(n) for k, n in counts.items() if int(n) >= MIN_COUNT}
        rare = sum(int(n) for n in counts.values() if int(n) < MIN_COUNT)
        if rare:
            out["rows_in_rare_classes"] = rare
    return out


def _round(value: float) -> float:
    """Three significant digits: enough to reason about scale and skew, not to recover a cell."""
    if not isinstance(value, int | float) or not math.isfinite(value) or value == 0:
        return value
    return round(float(value), 2 - math.floor(math.log10(abs(value))))
