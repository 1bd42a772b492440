"""Reproducible fault injection: the demo's and the benchmarks' dirty data, with the truth kept.

Faults: flipped labels, unit-slip outliers (a value multiplied by 1000), missing
cells, a numeric column stored as text with ``?`` codes, and duplicate rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class FaultLog:
    """Where each fault went, by row position in the dirty table."""

    flipped_rows: list[int] = field(default_factory=list)
    outlier_cells: list[tuple[int, str]] = field(default_factory=list)
    missing_cells: int = 0
    sentinel_column: str | None = None
    duplicate_rows: list[int] = field(default_factory=list)


def inject_faults(
    clean: pd.DataFrame,
    target: str,
    seed: int = 0,
    *,
    label_flip: float = 0.10,
    outliers: float = 0.03,
    missing: float = 0.10,
    duplicates: float = 0.03,
    sentinel_column: str | None = None,
) -> tuple[pd.DataFrame, FaultLog]:
    """Return a dirty copy of ``clean`` (numeric features, any target) and the log of what was done."""
    rng = np.random.default_rng(seed)
    dirty = clean.reset_index(drop=True).copy()
    log = FaultLog()
    features = [c for c in dirty.columns if c != target and pd.api.types.is_float_dtype(dirty[c])]
    n = len(dirty)
    log.flipped_rows = _flip_labels(dirty, target, rng, round(label_flip * n))
    for row in rng.choice(n, round(outliers * n), replace=False):
        col = str(rng.choice(features))
        dirty.loc[row, col] = dirty.loc[row, col] * 1000
        log.outlier_cells.append((int(row), col))
    mask = rng.random((n, len(features))) < missing
    for j, col in enumerate(features):
        dirty.loc[mask[:, j], col] = np.nan
    log.missing_cells = int(mask.sum())
    if sentinel_column:
        as_text = dirty[sentinel_column].map(lambda v: "?" if pd.isna(v) else f"{v:g}")
        dirty[sentinel_column] = as_text.astype("str")
        log.sentinel_column = sentinel_column
    extra = rng.choice(n, round(duplicates * n), replace=False)
    dirty = pd.concat([dirty, dirty.iloc[extra]], ignore_index=True)
    return _shuffle(dirty, log, n, rng)


def _shuffle(
    dirty: pd.DataFrame, log: FaultLog, n_original: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, FaultLog]:
    """Spread the appended duplicates through the table, and move the log along."""
    order = rng.permutation(len(dirty))
    where = np.empty_like(order)
    where[order] = np.arange(len(order))  # old position -> new position
    log.flipped_rows = sorted(int(where[r]) for r in log.flipped_rows)
    log.outlier_cells = [(int(where[r]), c) for r, c in log.outlier_cells]
    log.duplicate_rows = sorted(int(where[r]) for r in range(n_original, len(dirty)))
    return dirty.iloc[order].reset_index(drop=True), log


def _flip_labels(table: pd.DataFrame, target: str, rng: np.random.Generator, count: int) -> list[int]:
    classes = table[target].dropna().unique()
    rows = rng.choice(len(table), count, replace=False)
    for row in rows:
        others = [c for c in classes if c != table.at[row, target]]
        table.at[row, target] = others[rng.integers(len(others))]
    return sorted(int(r) for r in rows)
