"""The held-out slice: labelled rows set aside before any change, on which a session's gain is scored.

Scoring the cleaned table against itself flatters row-level steps: the rows a model disagreed with are
no longer there to be scored. So a session sets aside a share of its rows when it starts, and
``evaluate`` trains on the other rows and scores these. Row-level (``train_only``) tools never see them:
the sandbox's child hands such a tool only the other rows and puts the held-out ones back unchanged, and
the step runner refuses an output in which one of them differs. A tool that judges rows without learning
from the labels (``Tool.sees_held_out``: a unit slip is a slip in any row, a copy of a held-out row in the
training rows is a leak) sees them and may repair their cells, but never drops one or changes its target.

Which rows are held out follows from the row labels alone (a seeded hash of each label, the row's
position in the uploaded file), so every version, process and server agrees without storing a list,
and a row keeps its place in or out of the slice whatever steps drop around it. Only rows with a
target value count: a row without one cannot be scored, and an ML-ready table drops it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The share of the rows a session sets aside unless configured otherwise.
DEFAULT_SHARE = 0.2
#: Fewer labelled rows than this in the slice score too noisily; the session then sets none aside.
MIN_ROWS = 30
_UNIT = float(2**64)


def share_for(labelled_rows: int, share: float) -> float:
    """The share a new session sets aside: ``share``, or 0 when the slice would be too small to score."""
    return share if share > 0 and labelled_rows * share >= MIN_ROWS else 0.0


def held_out(index: pd.Index, share: float, seed: int) -> np.ndarray:
    """Which row labels fall in the slice (a boolean mask over ``index``)."""
    if share <= 0 or len(index) == 0:
        return np.zeros(len(index), dtype=bool)
    key = f"holdout{seed % 10**9:09d}"  # pandas wants a 16-character key
    hashes = pd.util.hash_pandas_object(pd.Series(index, dtype="object"), index=False, hash_key=key)
    return hashes.to_numpy(dtype=np.uint64) / _UNIT < share


def scored_rows(table: pd.DataFrame, target: str | None, share: float, seed: int) -> np.ndarray:
    """The held-out rows of ``table`` that carry a target value: the rows no row-level step may touch."""
    if not target or target not in table.columns or share <= 0:
        return np.zeros(len(table), dtype=bool)
    return held_out(table.index, share, seed) & table[target].notna().to_numpy()


def rejoin(out: pd.DataFrame, held: pd.DataFrame, order: pd.Index) -> pd.DataFrame:
    """The output of a row-level tool with the held-out rows put back, in the rows' original order.

    Raises ``ValueError`` when the tool changed the columns (the held-out rows would get cells nobody
    computed) or gave two rows one label.
    """
    if list(out.columns) != list(held.columns):
        raise ValueError("a row-level tool changed the columns, so the held-out rows cannot be put back")
    if not out.index.is_unique or out.index.isin(held.index).any():
        raise ValueError("a row-level tool returned repeated row labels, so the held-out rows cannot be put back")
    combined = pd.concat([out, held])
    first = order[order.isin(combined.index)]
    return combined.loc[first.append(combined.index.difference(order, sort=False))]


def repeats(before: pd.DataFrame, rows: pd.Index, kept: pd.Index) -> pd.Index:
    """Those of ``rows`` that are the same row written again: equal in every cell to a row in ``kept``.
    Dropping such a copy loses nothing; scoring it twice weighs one record double."""
    if rows.empty or kept.empty:
        return rows[:0]
    hashes = pd.util.hash_pandas_object(before.loc[rows.union(kept)], index=False)
    return rows[hashes.loc[rows].isin(set(hashes.loc[kept])).to_numpy()]


def restore(out: pd.DataFrame, before: pd.DataFrame, held: np.ndarray, target: str) -> pd.DataFrame:
    """The output of a tool that sees the held-out rows, with each held-out row it dropped put back as it
    was (unless the same row is kept) and the target of every held-out row as it was: such a tool may repair
    their cells, nothing more."""
    rows = before.index[held]
    lost = rows.difference(out.index)
    lost = lost.difference(repeats(before, lost, rows.intersection(out.index)))
    if len(lost):
        out = rejoin(out, before.loc[lost], before.index) if list(out.columns) == list(before.columns) else out
    kept = rows.intersection(out.index)
    if target in out.columns and len(kept):
        out = out.copy()
        out.loc[kept, target] = before.loc[kept, target]
    return out


def changed_rows(
    before: pd.DataFrame, after: pd.DataFrame, mask: np.ndarray, columns: list[str] | None = None
) -> list[object]:
    """Held-out rows (``mask`` over ``before``) that ``after`` lacks (but for repeats of a row it keeps) or
    holds otherwise in ``columns`` (default: every column of ``before``)."""
    rows = before.index[mask]
    common = rows.intersection(after.index)
    missing = rows.difference(after.index)
    missing = missing.difference(repeats(before, missing, common))
    columns = list(before.columns) if columns is None else columns
    if not columns:
        return list(missing)
    if any(c not in after.columns for c in columns):
        return list(rows)
    old, new = before.loc[common, columns].astype(object), after.loc[common, columns].astype(object)
    same = (old == new) | (old.isna() & new.isna())
    differ = common[~same.to_numpy().all(axis=1)]
    return [*missing, *differ]


def changeable(table: pd.DataFrame, target: str | None, share: float, seed: int, scope: str) -> np.ndarray:
    """The rows of ``table`` a row-level tool may change in ``scope`` (``ToolContext.holdout_scope``)."""
    held = scored_rows(table, target, share, seed)
    return held if scope == "held_out" else ~held


def keep_scope(out: pd.DataFrame, before: pd.DataFrame, held: np.ndarray) -> pd.DataFrame:
    """The output of a tool run on every row once the gain is measured: its held-out rows as it left them
    (changed or dropped), every other row as it was before."""
    others = before[~held]
    return rejoin(out.loc[out.index.isin(before.index[held])], others, before.index)
