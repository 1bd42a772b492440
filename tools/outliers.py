"""Find unit slips and impossible values, per cell (robust z, domain rules) or per row (IF, LOF).

Per-cell methods flag a value; row methods (IsolationForest, LOF) flag a whole
row from all numeric features together. ``set_missing`` on a flagged row blanks
its single most extreme cell by robust z (the one most likely to be the slip),
so a later impute can fill it; ``clip`` on a flagged row clips all its cells to
the robust bounds. Outlier handling is train-only: it is never re-applied.

Scale: a strictly positive, clearly right-skewed column (areas, concentrations,
counts, lab values) is judged on ``log(x)``: its robust z counts orders of
magnitude, so its long legitimate tail is not flagged while a unit slip (x1000)
still scores in the tens. "Clearly right-skewed" is decided from quantiles, which
the slips cannot move: ``q90 - median > 1.5 * (median - q10)`` and ``log(x)`` more
symmetric than ``x`` (see ``tools._frame.is_right_skewed``). Every other column,
including any with a zero or negative value, is judged linearly. The robust z,
the clip bounds, the cell picked in a flagged row and the standardisation for
IsolationForest/LOF all use the column's scale, which ``findings["scales"]``
reports.

Point mass: when more than half of a column holds one value (a lab value's
"negative" 0 or 1.0, a count's 0), its MAD and often its IQR are 0, so a plain
robust z is 0 everywhere and a unit slip in it would stay in. Such a column, with
at least 20 other values, is judged by those other values alone, the off-mass
bulk: their median and spread, on the log scale when they are positive and
clearly right-skewed (the rule above, applied to them). A cell's robust z is then
its distance from that bulk, and a cell holding the mass point is at z 0: robust z
never flags it, nor does ``clip`` move it. ``findings["scales"]`` reports such a
column as e.g. ``"log off the mass at 0"`` and ``findings["mass_points"]`` gives
the value and the share of cells holding it (see ``tools._frame.robust_scale``).
So a long legitimate tail (capital gains: 92 % zeros, the rest log-normal over
three orders of magnitude) stays in, while a x50 slip of a typical value, where
the other values are log-normal within one order of magnitude, is found and
changed. A limit: a bulk spread evenly in ``log(x)`` has a wide robust spread for
its range (0.85 over one decade), so there a x50 slip of a typical value scores
about 4.6 and stays in.

Act where the evidence is strong, flag where it is not: a cell above
``threshold`` is flagged, but ``set_missing``, ``clip`` and ``drop`` change only
the cells whose evidence is strong: a robust z of at least ``strong_z`` (10) on
the column's scale; on a log scale also a value more than ten times beyond the
bulk (centre ± 2 spreads, about 95 % of the values), since a different order of
magnitude is what a unit slip looks like however wide the column; and any value
outside a range the person gave in ``ranges``. A flagged cell short of that is
listed with its reason and left unchanged: unusual is not wrong, and the default
plan must not make sound data worse. IsolationForest and LOF change every row
they flag, as the ``contamination`` the person chose asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from tools._frame import (
    ROW_CAP,
    STRONG_Z,
    Scale,
    column_kinds,
    counts_text,
    is_number_dtype,
    json_value,
    numeric_features,
    plural,
    refuse_protected,
    require_columns,
    robust_scale,
)
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult

MIN_ROWS_FOR_ROW_METHODS = 10
METHOD_WORDS = {
    "robust_z": "robust z-score",
    "isolation_forest": "isolation forest",
    "lof": "local outlier factor",
    "rules": "the domain rules",
}


class OutliersParams(ToolParams):
    method: Literal["robust_z", "isolation_forest", "lof", "rules"] = Field(
        "robust_z",
        description=(
            "robust_z: a cell is an outlier when |value - median| / (1.4826 * MAD) exceeds threshold "
            "(unit slips, typos), measured on log(value) for a strictly positive, clearly right-skewed "
            "column (q90 - median > 1.5 * (median - q10)), and from the other values when more than half "
            "of a column holds one value (a point mass, at z 0); isolation_forest / lof: whole rows "
            "unusual across all numeric columns together; rules: only the ranges given."
        ),
    )
    columns: list[str] = Field(
        default_factory=list, description="Numeric columns to check; empty means every numeric feature."
    )
    threshold: float = Field(
        5.0, gt=0, le=100, description="Robust z above which a cell is an outlier (robust_z; clip bounds)."
    )
    strong_z: float = Field(
        STRONG_Z,
        gt=0,
        le=1000,
        description=(
            "Robust z from which robust_z's evidence is strong enough to change a cell (set_missing, clip, "
            "drop); on a log scale a value ten times beyond the bulk is strong too. A cell above threshold "
            "but below this is only flagged and left unchanged. Values outside ranges are always changed; "
            "set it to threshold to change every flagged cell."
        ),
    )
    contamination: float = Field(
        0.01, gt=0, le=0.5, description="Expected share of outlying rows (isolation_forest, lof)."
    )
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict,
        description=(
            "Domain rules: column -> [min, max] of valid values (null for no bound), e.g. "
            '{"age": [0, 120]}. Applied on top of the method, or alone with method rules.'
        ),
    )
    action: Literal["flag", "drop", "set_missing", "clip"] = Field(
        "set_missing",
        description=(
            "flag: only report; drop: remove flagged rows; set_missing: blank flagged cells so impute "
            "can fill them; clip: pull flagged values back to the robust bounds or the rule range."
        ),
    )


@dataclass
class Flags:
    """Cells (and rows) found, as boolean frames over the checked columns."""

    cells: pd.DataFrame
    reasons: dict[tuple[object, str], str]
    row_scores: pd.Series | None = None
    strong: pd.DataFrame | None = None  # the flagged cells with strong evidence; all of them when None

    @property
    def acted(self) -> pd.DataFrame:
        """The flagged cells that a changing action changes: those with strong evidence."""
        return self.cells if self.strong is None else self.cells & self.strong


class Outliers(Tool):
    name = "outliers"
    description = (
        "Find outliers in numeric feature columns: unit slips and typos by robust z-score, unusual "
        "rows by IsolationForest or LOF, impossible values by domain ranges (e.g. age 0..120). "
        "Flag them, drop the rows, set the cells missing for later imputation, or clip them."
    )
    category = "anomalies"
    mutates = True
    train_only = True
    sees_held_out = True  # a unit slip is a slip in any row; the labels are never read
    Params = OutliersParams

    def run(self, table: pd.DataFrame, params: OutliersParams, ctx: ToolContext) -> ToolResult:
        columns, skipped = check_columns(table, params, ctx)
        scales = {c: robust_scale(table[c], allow_log=True, allow_mass=True) for c in columns}
        if params.method == "robust_z":
            skipped += [
                {"column": c, "reason": "most of its values are equal, so robust z cannot judge it"}
                for c in columns
                if scales[c].spread == 0
            ]
        ctx.progress(0.1, "scoring")
        flags = find_outliers(table, columns, scales, params, ctx.seed)
        ctx.check_cancelled()
        out = apply_action(table, flags, scales, params)
        ctx.progress(1.0, "done")
        return _result(table, out, flags, scales, skipped, params)


def check_columns(
    table: pd.DataFrame, params: OutliersParams, ctx: ToolContext
) -> tuple[list[str], list[dict[str, str]]]:
    """The numeric columns to check (validated) and those skipped with the reason."""
    asked = list(dict.fromkeys([*params.columns, *params.ranges]))
    require_columns(table, asked, "outliers")
    refuse_protected(table, ctx, asked, "outliers")
    bad = [c for c in asked if not is_number_dtype(table[c])]
    if bad:
        raise ValueError(
            f"outliers works on numeric columns; {', '.join(map(repr, bad))} is not stored as numbers "
            "(convert it with coerce_types first)"
        )
    for col, (low, high) in params.ranges.items():
        if low is not None and high is not None and low > high:
            raise ValueError(f"outliers: the range for {col!r} has min {low} above max {high}")
    if params.method == "rules":
        if not params.ranges:
            raise ValueError('outliers: method "rules" needs ranges, e.g. {"age": [0, 120]}')
        return list(params.ranges), []
    if params.columns:
        return asked, []
    kinds = column_kinds(table, ctx)
    skipped = [
        {"column": c, "reason": "typed numeric but stored as text; convert it with coerce_types first"}
        for c in ctx.feature_columns(table)
        if kinds[c] == "numeric" and not is_number_dtype(table[c])
    ]
    return list(dict.fromkeys([*numeric_features(table, ctx), *params.ranges])), skipped


def robust_z(series: pd.Series, scale: Scale) -> pd.Series:
    """|value - median| / spread on the column's scale (log or linear); 0 where the spread is 0
    or the value is missing."""
    if scale.spread == 0:
        return pd.Series(0.0, index=series.index)
    return scale.standardise(series).abs().fillna(0.0)


def find_outliers(
    table: pd.DataFrame, columns: list[str], scales: dict[str, Scale], params: OutliersParams, seed: int
) -> Flags:
    """Flag cells by the method and by the rules (the union of both)."""
    flags = Flags(pd.DataFrame(False, index=table.index, columns=columns), {})
    if params.method == "robust_z":
        strong = flags.strong = pd.DataFrame(False, index=table.index, columns=columns)
        for col in columns:
            flags.cells[col], strong[col], reasons = flag_cells(table[col], scales[col], params)
            flags.reasons.update(reasons)
    elif params.method in ("isolation_forest", "lof"):
        flag_rows(table, columns, scales, params, seed, flags)
    for col, (low, high) in params.ranges.items():
        for bound, op, words in ((low, "lt", "below the minimum"), (high, "gt", "above the maximum")):
            if bound is None:
                continue
            hit = getattr(table[col], op)(bound).fillna(False).astype(bool)
            flags.cells[col] = flags.cells[col] | hit
            if flags.strong is not None:
                flags.strong[col] = flags.strong[col] | hit  # the person's range is strong evidence
            flags.reasons.update({(row, col): f"{words} {bound:g}" for row in table.index[hit]})
    return flags


def flag_cells(
    series: pd.Series, scale: Scale, params: OutliersParams
) -> tuple[pd.Series, pd.Series, dict[tuple[object, str], str]]:
    """The cells of one column above the threshold, those of them with strong evidence, and why."""
    col = str(series.name)
    z = robust_z(series, scale)
    hit = z > params.threshold
    bar = scale.strong_z(params.strong_z)
    strong = hit & (z >= bar)
    found = f"robust z above {params.threshold:g} on the {scale_words(scale)}"
    weak = f"{found}; below {bar:.3g}, the robust z of strong evidence, so only flagged"
    return hit, strong, {(row, col): found if strong[row] else weak for row in z.index[hit]}


def scale_words(scale: Scale) -> str:
    """How a column was judged, for a reason: ``"log scale (median 20)"``, or for a point mass
    ``"log scale of the values other than 0 (held by 93% of the cells; their median 20)"``."""
    if scale.mass is None:
        return f"{scale.name} scale (median {scale.median:g})"
    held = f"held by {100 * scale.mass_share:.0f}% of the cells"
    return f"{scale.name} scale of the values other than {scale.mass:g} ({held}; their median {scale.median:g})"


def flag_rows(
    table: pd.DataFrame,
    columns: list[str],
    scales: dict[str, Scale],
    params: OutliersParams,
    seed: int,
    flags: Flags,
) -> None:
    """Score rows with IsolationForest or LOF and flag each outlying row's most extreme cell."""
    if len(table) < MIN_ROWS_FOR_ROW_METHODS or not columns:
        raise ValueError(
            f"outliers: {params.method} needs at least {MIN_ROWS_FOR_ROW_METHODS} rows and one numeric "
            f"feature column; this table has {len(table)} rows and {len(columns)} numeric columns"
        )
    z = pd.DataFrame({c: robust_z(table[c], scales[c]) for c in columns})
    scores, outlying = row_scores(scaled_matrix(table, columns, scales), params, seed)
    flags.row_scores = pd.Series(scores, index=table.index)
    for row in table.index[outlying]:
        col = str(z.loc[row].idxmax())
        flags.cells.loc[row, col] = True
        score, cell_z = flags.row_scores[row], z.loc[row, col]
        flags.reasons[(row, col)] = (
            f"{params.method} row score {score:.2f}; most unusual cell z {cell_z:.1f} on the {scales[col].name} scale"
        )


def scaled_matrix(table: pd.DataFrame, columns: list[str], scales: dict[str, Scale]) -> np.ndarray:
    """Robustly standardised numeric features on each column's scale, missing cells at the
    median (for scoring only)."""
    return np.column_stack([scales[c].standardise(table[c]).fillna(0.0).to_numpy() for c in columns])


def row_scores(x: np.ndarray, params: OutliersParams, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outlier score per row (higher is more unusual) and which rows are outliers."""
    if params.method == "isolation_forest":
        model = IsolationForest(contamination=params.contamination, random_state=seed, n_jobs=1)
        labels = model.fit_predict(x)
        return -model.score_samples(x), labels == -1
    lof = LocalOutlierFactor(n_neighbors=min(20, len(x) - 1), contamination=params.contamination)
    labels = lof.fit_predict(x)
    return -lof.negative_outlier_factor_, labels == -1


def apply_action(table: pd.DataFrame, flags: Flags, scales: dict[str, Scale], params: OutliersParams) -> pd.DataFrame:
    """The new table: unchanged, rows dropped, flagged cells blanked, or values clipped."""
    out = table.copy()
    acted = flags.acted
    rows = acted.any(axis=1)
    if params.action == "drop":
        return out.loc[~rows]
    for col in acted.columns:
        hit = acted[col]
        if params.action == "set_missing" and hit.any():
            out[col] = out[col].mask(hit)
        elif params.action == "clip":
            targets = rows if flags.row_scores is not None else hit
            if targets.any():
                values = out[col].astype(float)  # a clipped bound need not be a whole number
                out[col] = values.where(~targets, clip_values(values, scales[col], col, params))
    return out


def clip_values(series: pd.Series, scale: Scale, col: str, params: OutliersParams) -> pd.Series:
    """``series`` clipped to the robust bounds (median ± threshold * spread, exp() of those on the
    log scale), then to the rule range. A cell within the bounds or at a point mass keeps its value."""
    clipped = series.astype(float)
    if params.method != "rules" and scale.spread > 0:
        inside = scale.standardise(clipped).abs() <= params.threshold
        clipped = clipped.where(inside | clipped.isna(), clipped.clip(*scale.bounds(params.threshold)))
    low, high = params.ranges.get(col, (None, None))
    return clipped.clip(low, high)


def _result(
    table: pd.DataFrame,
    out: pd.DataFrame,
    flags: Flags,
    scales: dict[str, Scale],
    skipped: list[dict[str, str]],
    params: OutliersParams,
) -> ToolResult:
    cells = flags.cells
    per_column = {str(c): int(n) for c, n in cells.sum().items() if n}
    flagged_rows = int(cells.any(axis=1).sum())
    entries = flagged_entries(table, flags, scales)
    judged = {} if params.method == "rules" else scales
    strong_cells = int(flags.acted.to_numpy().sum())
    findings = {
        "method": params.method,
        "action": params.action,
        "flagged_rows": flagged_rows,
        "flagged_cells": int(cells.to_numpy().sum()),
        "strong_cells": strong_cells,
        "flagged_only_cells": int(cells.to_numpy().sum()) - strong_cells,
        "strong_z": params.strong_z,
        "per_column": per_column,
        "scales": {str(c): s.label for c, s in judged.items()},
        "mass_points": {
            str(c): {"value": s.mass, "share": round(s.mass_share, 4)} for c, s in judged.items() if s.mass is not None
        },
        "rows": entries[:ROW_CAP],
        "skipped": skipped,
    }
    metrics = {
        "flagged_rows": float(flagged_rows),
        "flagged_cells": float(findings["flagged_cells"]),
        "rows_dropped": float(len(table) - len(out)),
        "cells_changed": float(_cells_changed(table, out, list(cells.columns))),
    }
    return ToolResult(
        summary=_summary(findings, judged, params, len(table) - len(out)),
        table=out,
        findings=findings,
        metrics=metrics,
        charts=_charts(per_column, flags.row_scores),
    )


def flagged_entries(table: pd.DataFrame, flags: Flags, scales: dict[str, Scale]) -> list[dict]:
    """One entry per flagged cell, the most extreme first."""
    entries = []
    acted = flags.acted
    for col in flags.cells.columns:
        z = robust_z(table[col], scales[col])
        for row in flags.cells.index[flags.cells[col]]:
            score = flags.row_scores[row] if flags.row_scores is not None else z[row]
            entries.append(
                {
                    "row": json_value(row),
                    "column": str(col),
                    "value": float(table.at[row, col]),
                    "score": round(float(score), 4),
                    "strong": bool(acted.at[row, col]),
                    "reason": flags.reasons[(row, col)],
                }
            )
    return sorted(entries, key=lambda e: -e["score"])


def _cells_changed(table: pd.DataFrame, out: pd.DataFrame, columns: list[str]) -> int:
    """Cells of the kept rows whose value changed (missing equals missing)."""
    before = table.loc[out.index, columns].to_numpy(dtype=float, na_value=np.nan)
    after = out[columns].to_numpy(dtype=float, na_value=np.nan)
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    return int((~same).sum())


def _summary(findings: dict, scales: dict[str, Scale], params: OutliersParams, dropped: int) -> str:
    how = METHOD_WORDS[params.method]
    if params.ranges and params.method != "rules":
        how += " and the domain rules"
    on_log = _scales_text(scales)
    if not findings["flagged_cells"]:
        checked = f"the checked columns ({on_log})" if on_log else "the checked columns"
        return f"No outliers found by {how} in {checked}; the table is unchanged."
    found = f"{plural(findings['flagged_cells'], 'outlying value')} in {plural(findings['flagged_rows'], 'row')}"
    text = f"Found {found} by {how}: {counts_text(findings['per_column'])}."
    worst = findings["rows"][0]
    text += f" The most extreme is {worst['column']} = {worst['value']:g} in row {worst['row']}"
    text += f" ({worst['reason']})."
    if on_log:
        text += f" {on_log[0].upper()}{on_log[1:]}."
    return text + _action_text(findings, params, dropped)


def _scales_text(scales: dict[str, Scale]) -> str:
    """The columns not judged plainly: on the log scale, or by the values off a point mass."""
    logged = sum(1 for s in scales.values() if s.log and s.mass is None)
    massed = sum(1 for s in scales.values() if s.mass is not None)
    parts = [f"{plural(logged, 'right-skewed positive column')} judged on the log scale"] if logged else []
    if massed:
        parts.append(f"{plural(massed, 'column')} with a point mass judged by the values off it")
    return "; ".join(parts)


def _action_text(findings: dict, params: OutliersParams, dropped: int) -> str:
    """What the action did, and which flagged cells it left unchanged for want of strong evidence."""
    if params.action == "flag":
        return " Nothing was changed."
    strong, weak = findings["strong_cells"], findings["flagged_only_cells"]
    them = "it" if strong == 1 else "them"
    done = {
        "drop": f"Dropped {plural(dropped, 'row')}",
        "set_missing": f"Set {plural(strong, 'value')} to missing so that impute can fill {them}",
        "clip": f"Clipped {plural(strong, 'value')} to the robust bounds or the rule range",
    }[params.action]
    if params.method != "robust_z":
        return f" {done}."
    text = f" {done if strong else 'Nothing was changed'}. Only values with strong evidence are changed: robust z of "
    text += f"at least {params.strong_z:g} on the column's scale, more than ten times beyond the bulk of a log-scale "
    text += "column, or outside a given range"
    if weak:
        were = "was" if weak == 1 else "were"
        text += (
            f"; {plural(weak, 'value')} above robust z {params.threshold:g} but short of that {were} only flagged "
            "and left unchanged, unusual rather than clearly wrong"
        )
    return text + "."


def _charts(per_column: dict[str, int], scores: pd.Series | None) -> list[Chart]:
    charts = []
    if per_column:
        charts.append(
            Chart("bar", "Outlying values per column", list(per_column), [float(v) for v in per_column.values()])
        )
    if scores is not None:
        counts, edges = np.histogram(scores.to_numpy(), bins=20)
        labels = [f"{edges[i]:.2f}" for i in range(len(counts))]
        charts.append(Chart("histogram", "Row outlier scores", labels, [float(c) for c in counts], "score", "rows"))
    return charts
