"""What an LLM may see of the data, by construction: nothing that stands for fewer than k rows.

Every value the summary shows stands for at least :data:`MIN_COUNT` (k) rows:

- **counts**: rows, columns, duplicates, missing cells, distinct values, sentinel codes, each class and level;
- **quantiles** of number columns (p1 … p99), rounded to two significant digits, or one where fewer than k
  cells round to the two-digit value. A quantile is shown only when at least k cells round to it and at
  least k lie at or beyond it on each side, so it is never a lone person's value, nor near an extreme:
  with 120 rows p99 has about one row above it, and is left out. Never the minimum or the maximum, and
  never the mean or the standard deviation: one extreme value moves them by value/n and about value/√n,
  so with the median they give that value back (a lone unit slip of 81234 kg in 120 rows is ≈ 120 ×
  (mean − median)). How far the tails reach is said as a count instead: the cells more than 3 IQR outside
  the quartiles;
- **levels** of categorical and yes/no columns, and the target's classes, each seen at least k times: under
  ``aggregates`` as ``level_1`` … / ``class_1`` … (commonest first) with their count and a shape (character
  classes, e.g. ``Aa Aa`` or ``9``), never their text; under ``categories`` with their text.

Identifiers, free text and dates (stored as dates or as text that parses as dates, as the profile types
them) contribute their name, type and counts only. Column names are schema and are shown. The profile's
``evidence`` sentences, which quote cells, are never copied, nor its sentinel codes.

``samples`` adds a few rows (:func:`sample_rows`): only number, categorical and yes/no columns; a row is
shown only when each of its numbers rounds as a quantile would (k cells round to it, k on each side: never
an outlier row) and each category is a level seen at least k times. Each cell then stands for k rows,
though the combination of a row's cells may not, which is why rows go only when the server and the session
both allow it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from agents.llm import Share, allows
from agents.rule_based import PlanningState
from tools.column_facts import column_facts
from tools.typing_rules import parse_numbers

MIN_COUNT = 5  # k: the fewest rows any shown value stands for
MAX_CATEGORIES = 20
SAMPLE_ROWS = 5
SAMPLE_SCAN = 500  # rows looked at to find the samples
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
FAR_IQR = 3.0
_LEVEL_TYPES = {"categorical", "boolean", "constant"}
_HIDDEN_TYPES = {"identifier", "text", "datetime", "personal"}
_COUNTS = ("missing", "missing_pct", "n_unique", "sentinel_count", "unparseable", "spelling_variants")
LEGEND = {
    "aggregates": "Counts and coarse statistics only. level_i / class_i: the i-th commonest value, its text "
    "withheld, with its count and character shape (A upper, a lower, 9 digits, . other). Quantiles are rounded "
    f"so that each stands for at least {MIN_COUNT} rows; one too near an extreme to do so is left out.",
    "categories": f"Counts, coarse statistics and the text of values seen at least {MIN_COUNT} times. Quantiles "
    f"are rounded so that each stands for at least {MIN_COUNT} rows; one too near an extreme is left out.",
    "samples": "As categories, and sample_rows: a few typical rows of the number and category columns, numbers "
    "rounded as the quantiles are.",
}


def summarize(
    profile: dict[str, Any], target: str, id_columns: list[str], share: Share = "aggregates",
    table: pd.DataFrame | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What an LLM receives about a table at ``share``. Without ``table`` no quantile and no row is shown."""
    numbers = _numbers(profile, id_columns, table) if table is not None else {}
    columns = {
        name: _column(info, name in id_columns, name == target, share, numbers.get(name))
        for name, info in profile["columns"].items()
    }
    out: dict[str, Any] = {
        "shared": share, "legend": LEGEND[share],
        "n_rows": profile["n_rows"], "n_columns": profile["n_columns"],
        "duplicate_rows": profile.get("duplicate_rows", 0),
        "target": _target(profile.get("target") or {}, target, share),
        "id_columns": list(id_columns), "columns": columns,
    }  # fmt: skip
    if allows(share, "samples") and table is not None:
        out["sample_rows"] = sample_rows(table, profile, id_columns, numbers)
    return out


def coarse(value: float, cells: np.ndarray) -> float | None:
    """``value`` rounded to two significant digits, else one, so that at least :data:`MIN_COUNT` of the
    sorted ``cells`` round to it and at least as many lie at or beyond it on each side; None if neither.

    Zero stands for the cells that are exactly zero."""
    if not math.isfinite(value):
        return None
    for digits in (2, 1):
        shown, step = _round(value, digits)
        half = step / 2 * (1 - 1e-9)  # a cell on the edge between two rounded values counts for neither
        lo = np.searchsorted(cells, shown - half, side="left")
        hi = np.searchsorted(cells, shown + half, side="right")
        below = np.searchsorted(cells, shown, side="right")
        above = len(cells) - np.searchsorted(cells, shown, side="left")
        if min(hi - lo, below, above) >= MIN_COUNT:
            return int(shown) if shown.is_integer() and abs(shown) < 1e15 else shown
    return None


def shape(text: str) -> str:
    """The character classes of ``text`` with runs collapsed: ``Dr. Ann Lee`` → ``Aa. Aa Aa``, ``02139`` → ``9``."""
    classes = ["A" if c.isupper() else "a" if c.isalpha() else "9" if c.isdigit() else " " if c.isspace() else "."
               for c in text]  # fmt: skip
    return "".join(c for i, c in enumerate(classes) if i == 0 or c != classes[i - 1])[:20]


def sample_rows(
    table: pd.DataFrame, profile: dict[str, Any], id_columns: list[str], numbers: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Up to :data:`SAMPLE_ROWS` rows whose every shown cell stands for k rows (see the module's docstring)."""
    head = table.head(SAMPLE_SCAN)
    shown: dict[str, pd.Series] = {}
    for name, info in profile["columns"].items():
        if name in id_columns or info["type"] in _HIDDEN_TYPES or name not in table.columns:
            continue
        if name in numbers:
            shown[name] = _coarse_cells(head[name], info, numbers[name])
        elif info["type"] in _LEVEL_TYPES:
            shown[name] = _common_cells(table[name], head[name])
    if not shown:
        return []
    cells = pd.DataFrame(shown)
    missing = head[list(shown)].isna()
    kept = cells[(cells.notna() | missing).all(axis=1)].head(SAMPLE_ROWS).astype(object)
    return kept.where(kept.notna(), None).to_dict(orient="records")


def _numbers(profile: dict[str, Any], id_columns: list[str], table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The sorted valid numbers (no missing cells, no sentinel codes) of each number column, as profiled."""
    return {
        name: np.sort(numbers[np.isfinite(numbers)])
        for name, info in profile["columns"].items()
        if "stats" in info and name not in id_columns and name in table.columns
        and (numbers := column_facts(table[name]).numbers) is not None
    }  # fmt: skip


def _column(
    info: dict[str, Any], is_id: bool, is_target: bool, share: Share, cells: np.ndarray | None
) -> dict[str, Any]:
    kind = "identifier" if is_id else info["type"]
    out: dict[str, Any] = {"type": kind, "dtype": str(info.get("dtype", ""))}
    out |= {k: info[k] for k in _COUNTS if k in info}
    if kind in _HIDDEN_TYPES:
        return out
    if info.get("numeric_as_text"):
        out |= {"numeric_as_text": True, **({"unit": info["unit"]} if info.get("unit") else {})}
    if cells is not None and len(cells):
        out |= _number_summary(cells)
    if kind in _LEVEL_TYPES and not is_target and int(info.get("n_unique", 0)) <= MAX_CATEGORIES:
        out["levels"] = _levels(info.get("top_values", []), share)
    return out


def _number_summary(cells: np.ndarray) -> dict[str, Any]:
    quantiles = {name: coarse(float(np.quantile(cells, p)), cells) for name, p in QUANTILES.items()}
    q1, q3 = np.quantile(cells, [0.25, 0.75])
    far = FAR_IQR * (q3 - q1)
    return {
        "whole_numbers": bool(np.all(cells == np.round(cells))),
        "quantiles": {name: v for name, v in quantiles.items() if v is not None},
        "far_outside_quartiles": int(np.sum(cells < q1 - far) + np.sum(cells > q3 + far)),
    }


def _levels(top_values: list[list[Any]], share: Share) -> list[dict[str, Any]]:
    common = [(str(label), int(n)) for label, n in top_values if int(n) >= MIN_COUNT]
    if allows(share, "categories"):
        return [{"level": label, "count": n} for label, n in common]
    return [{"level": f"level_{i}", "count": n, "shape": shape(label)} for i, (label, n) in enumerate(common, 1)]


def _target(info: dict[str, Any], target: str, share: Share) -> dict[str, Any]:
    out = {"column": target, "task": info.get("task"), "missing": info.get("missing", 0)}
    counts = info.get("class_counts") or {}
    if counts:
        out["n_classes"] = info.get("n_classes") or len(counts)
        common = [(str(label), int(n)) for label, n in counts.items() if int(n) >= MIN_COUNT]
        named = allows(share, "categories")
        out["classes"] = {(label if named else f"class_{i}"): n for i, (label, n) in enumerate(common, 1)}
        rare = sum(int(n) for n in counts.values() if int(n) < MIN_COUNT)
        if rare:
            out["rows_in_rare_classes"] = rare
    return out


def _coarse_cells(column: pd.Series, info: dict[str, Any], cells: np.ndarray) -> pd.Series:
    """Each cell as a number rounded by :func:`coarse`; NaN where missing or where it stands for too few rows."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(float)
    else:
        values = parse_numbers(column.astype("str").str.strip(), info.get("unit"), info.get("decimal_mark", "."))
    return values.map(lambda v: np.nan if pd.isna(v) else coarse(float(v), cells)).astype(object)


def _common_cells(column: pd.Series, head: pd.Series) -> pd.Series:
    """Each cell's text where at least k cells of the whole column hold it; NaN elsewhere."""
    counts = column.dropna().astype("str").str.strip().value_counts()
    text = head.astype("str").str.strip()
    return text.where(head.notna() & text.map(counts).fillna(0).ge(MIN_COUNT))


def _round(value: float, digits: int) -> tuple[float, float]:
    """``value`` to ``digits`` significant digits, and the step between such values (0 for zero)."""
    if value == 0:
        return 0.0, 0.0
    written = f"{value:.{digits - 1}e}"  # Python rounds to significant digits exactly when it writes them
    return float(written), 10.0 ** (int(written.split("e")[1]) - digits + 1)


def shown_data(state: PlanningState) -> dict[str, Any]:
    """The data document an LLM receives about ``state``: what the engine built at the session's share level,
    else (no table at hand) the profile's counts at ``aggregates``."""
    if state.llm_data is not None:
        return state.llm_data
    return summarize(state.profile, state.target, state.id_columns)
