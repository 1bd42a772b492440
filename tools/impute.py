"""Fill missing feature cells: median/mode, KNN or iterative (chained linear) imputation.

The fitted state is plain JSON so that ``reapply_impute`` can repeat the exact
transform on new data without pickles: fill values, and for the iterative
method the sequence of linear models that ``IterativeImputer.transform`` would
replay (BayesianRidge predicts ``X[:, neighbours] @ coef + intercept``).

Every imputable feature column also gets a fallback (``fitted["fallback"]``: the
training median for a numeric column, the most frequent value otherwise), even
one without gaps in the training table, so that gaps in new data are filled in
columns that had none when the pipeline was fitted.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers IterativeImputer)
from sklearn.impute import IterativeImputer
from sklearn.linear_model import BayesianRidge

from tools._frame import (
    column_kinds,
    feature_columns,
    is_number_dtype,
    json_value,
    numeric_features,
    plural,
    refuse_protected,
    require_columns,
)
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult

MIN_CORRELATION = 0.3
KNN_DONOR_CAP = 2000
SUMMARY_COLUMNS = 3  # columns named in the summary; the findings list them all
MODE_KINDS = ("categorical", "boolean", "constant")


class ImputeParams(ToolParams):
    method: Literal["auto", "simple", "knn", "iterative"] = Field(
        "auto",
        description=(
            "How to fill numeric columns. auto: iterative imputation for a column that correlates "
            "(|r| >= 0.3) with another numeric feature, else the median; simple: median; knn: average "
            "of the nearest rows; iterative: chained linear regressions. Categorical and boolean "
            "columns always get their most frequent value."
        ),
    )
    columns: list[str] = Field(
        default_factory=list,
        description="Columns to fill; empty means every feature column that has missing values.",
    )
    add_indicators: bool = Field(False, description="Add a 0/1 column '<column>__was_missing' for every filled column.")
    knn_neighbors: int = Field(5, ge=1, le=50, description="Number of neighbouring rows for method knn.")
    max_iter: int = Field(10, ge=1, le=50, description="Maximum rounds of the iterative imputer.")


@dataclass(frozen=True)
class Choice:
    """How one column will be filled, and why."""

    column: str
    method: Literal["median", "mode", "iterative", "knn"]
    reason: str


def reapply_impute(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Fill missing cells of ``table`` with the state fitted by the impute tool.

    Order: medians and modes, then one model (iterative or knn) over its numeric columns,
    then the fallbacks for cells still missing (columns that had no gaps when fitted; a column
    absent from ``table`` is passed over), then the missing indicators (recording where cells
    were missing before any fill).
    """
    import numpy as np

    def replay_iterative(x: np.ndarray, state: dict) -> np.ndarray:
        """IterativeImputer.transform: initial fill, then each fitted linear step in order."""
        mask = np.isnan(x)
        filled = np.where(mask, np.asarray(state["initial"], dtype=float), x)
        if mask.all():  # sklearn keeps the initial fill when nothing is observed
            return filled
        for step in state["sequence"]:
            j, rows = step["feat_idx"], mask[:, step["feat_idx"]]
            if rows.any():
                pred = filled[np.ix_(rows, step["neighbor_feat_idx"])] @ np.asarray(step["coef"])
                filled[rows, j] = np.clip(pred + step["intercept"], state["min"][j], state["max"][j])
        return filled

    def replay_knn(x: np.ndarray, state: dict) -> np.ndarray:
        """KNNImputer fitted on the stored donor rows, in standardised units."""
        from sklearn.impute import KNNImputer

        center, scale = np.asarray(state["center"]), np.asarray(state["scale"])
        donors = (np.array(state["donors"], dtype=float) - center) / scale
        imputer = KNNImputer(n_neighbors=state["n_neighbors"], keep_empty_features=True).fit(donors)
        done = imputer.transform((x - center) / scale) * scale + center
        return np.where(np.isnan(x), done, x)

    out = table.copy()
    models = [(fitted.get("iterative"), replay_iterative), (fitted.get("knn"), replay_knn)]
    needed = [*fitted["medians"], *fitted["modes"], *fitted["indicators"]]
    needed += [c for state, _ in models if state for c in state["columns"]]
    absent = [c for c in dict.fromkeys(needed) if c not in out.columns]
    if absent:
        raise ValueError(f"impute was fitted with column(s) {', '.join(absent)}, which this table lacks")
    was_missing = {col: out[col].isna().astype(int) for col in fitted["indicators"]}
    for col, value in fitted["medians"].items():
        out[col] = out[col].astype(float).fillna(value)
    for col, value in fitted["modes"].items():
        out[col] = out[col].fillna(value)
    for state, replay in models:
        if state:
            done = replay(out[state["columns"]].to_numpy(dtype=float, na_value=np.nan), state)
            for col in state["impute"]:
                out[col] = done[:, state["columns"].index(col)]
    for col, value in (fitted.get("fallback") or {}).items():
        if col in out.columns and out[col].isna().any():
            numbers = isinstance(value, float) and out[col].dtype.kind in "iuf"
            out[col] = (out[col].astype(float) if numbers else out[col]).fillna(value)
    for col, flags in was_missing.items():
        out[f"{col}__was_missing"] = flags
    return out


class Impute(Tool):
    name = "impute"
    description = (
        "Fill missing values in feature columns (never the target or identifiers): the median or the "
        "most frequent value, KNN, or iterative imputation from correlated columns; optionally add "
        "0/1 missing-indicator columns. The same fill is re-applied to new data."
    )
    category = "missingness"
    mutates = True
    Params = ImputeParams
    reapply = staticmethod(reapply_impute)

    def run(self, table: pd.DataFrame, params: ImputeParams, ctx: ToolContext) -> ToolResult:
        candidates, fallbacks, skipped = select_columns(table, params, ctx)
        predictors = model_columns(table, ctx)
        choices = [choose_method(table, col, predictors, params.method, ctx) for col in candidates]
        ctx.progress(0.2, "fitting the imputation")
        ctx.check_cancelled()
        fitted = fit_state(table, choices, predictors, params, ctx.seed)
        kinds = column_kinds(table, ctx)
        fitted["fallback"] = {col: fallback_value(table[col], kinds[col]) for col in fallbacks}
        ctx.check_cancelled()
        out = reapply_impute(table, fitted)
        ctx.progress(1.0, "filled")
        return _result(table, out, choices, skipped, fitted)


def select_columns(
    table: pd.DataFrame, params: ImputeParams, ctx: ToolContext
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """The columns to fill, the columns to fit a fallback for, and those passed over with the reason.

    The scope is ``params.columns``, else every feature column. Fallbacks cover every column of
    the scope that impute supports and that has a value to learn from, gaps or not; a column
    without gaps is reported as skipped only when the user named it.
    """
    kinds = column_kinds(table, ctx)
    if params.columns:
        require_columns(table, params.columns, "impute")
        refuse_protected(table, ctx, params.columns, "impute")
        scope = list(dict.fromkeys(params.columns))
    else:
        scope = feature_columns(table, ctx)
    candidates, fallbacks, skipped = [], [], []
    for col in scope:
        series = table[col]
        unsupported = _unsupported(series, kinds[col])
        if unsupported and params.columns:
            raise ValueError(f"impute cannot fill column {col!r}: {unsupported}")
        if not unsupported and series.notna().any():
            fallbacks.append(col)
        reason = unsupported or _nothing_to_fill(series)
        if not reason:
            candidates.append(col)
        elif params.columns or series.isna().any():
            skipped.append({"column": col, "reason": reason})
    return candidates, fallbacks, skipped


def _unsupported(series: pd.Series, kind: str) -> str | None:
    """Why impute does not handle a column of this kind, or None when it does."""
    if kind in ("text", "identifier"):
        return f"{kind} columns are never imputed"
    if kind == "datetime":
        return "datetime columns are not imputed; drop the rows or derive numeric features first"
    if kind == "numeric" and not is_number_dtype(series):
        return "it is typed numeric but stored as text; convert it with coerce_types first"
    return None


def _nothing_to_fill(series: pd.Series) -> str | None:
    """Why a supported column is left alone (skipped and reported), or None."""
    if series.isna().all():
        return "every value is missing, so there is nothing to learn a fill from; consider drop_columns"
    if not series.isna().any():
        return "no missing values"
    return None


def model_columns(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """Numeric features a model-based imputer can use: some values present, not constant."""
    return [c for c in numeric_features(table, ctx) if table[c].nunique() >= 2]


def choose_method(table: pd.DataFrame, col: str, predictors: list[str], method: str, ctx: ToolContext) -> Choice:
    """Pick the fill for one column, following ``method`` (see ImputeParams)."""
    kind = column_kinds(table, ctx)[col]
    if kind in MODE_KINDS or not is_number_dtype(table[col]):
        return Choice(col, "mode", f"{kind} column: most frequent value")
    median = f"the median would be {float(table[col].median()):.4g}"
    if method == "simple":
        return Choice(col, "median", "simple method: median")
    if col not in predictors or len(predictors) < 2:
        return Choice(col, "median", "needs another numeric feature column to learn from; used the median")
    if method in ("knn", "iterative"):
        return Choice(col, method, f"{method} method requested; {median}")
    partner, r = best_correlate(table, col, predictors)
    if r >= MIN_CORRELATION:
        return Choice(col, "iterative", f"correlated with {partner} (|r|={r:.2f}); {median}")
    return Choice(col, "median", f"no numeric feature correlates with it (largest |r|={r:.2f}); median")


def best_correlate(table: pd.DataFrame, col: str, predictors: list[str]) -> tuple[str, float]:
    """The other predictor most correlated (|Pearson r|, pairwise complete rows) with ``col``."""
    corr = table[predictors].corr(min_periods=10)[col].drop(col).abs().dropna()
    if corr.empty:
        return "", 0.0
    return str(corr.idxmax()), float(corr.max())


def fit_state(
    table: pd.DataFrame, choices: list[Choice], predictors: list[str], params: ImputeParams, seed: int
) -> dict[str, Any]:
    """The JSON state for ``reapply_impute``: simple fills first, then one model over the predictors."""
    simple = {c.column: c.method for c in choices if c.method in ("median", "mode")}
    state: dict[str, Any] = {
        "medians": {c: float(table[c].median()) for c, m in simple.items() if m == "median"},
        "modes": {c: mode_of(table[c]) for c, m in simple.items() if m == "mode"},
        "iterative": None,
        "knn": None,
        "indicators": [],
    }
    work = reapply_impute(table, state)
    if params.add_indicators:
        state["indicators"] = [c.column for c in choices]
    by_model = [c.column for c in choices if c.method in ("iterative", "knn")]
    if any(c.method == "iterative" for c in choices):
        imputer = fit_iterative(work[predictors], params.max_iter, seed)
        state["iterative"] = iterative_state(imputer, predictors, by_model)
    elif by_model:
        state["knn"] = knn_state(work[predictors], by_model, params.knn_neighbors, seed)
    return state


def mode_of(series: pd.Series) -> Any:
    """The most frequent value (the first in sort order on ties), as JSON."""
    return json_value(series.mode(dropna=True).iloc[0])


def fallback_value(series: pd.Series, kind: str) -> Any:
    """The fill for gaps that new data has and the fitted method leaves: the median of a numeric
    column, the most frequent value of any other (the same rule as ``choose_method``'s simple fills)."""
    if kind in MODE_KINDS or not is_number_dtype(series):
        return mode_of(series)
    return float(series.median())


def fit_iterative(frame: pd.DataFrame, max_iter: int, seed: int) -> IterativeImputer:
    """IterativeImputer with BayesianRidge, imputations clipped to each column's observed range."""
    x = frame.to_numpy(dtype=float, na_value=np.nan)
    imputer = IterativeImputer(
        estimator=BayesianRidge(),
        max_iter=max_iter,
        initial_strategy="median",
        min_value=np.nanmin(x, axis=0),
        max_value=np.nanmax(x, axis=0),
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter is reported instead
        return imputer.fit(x)


def iterative_state(imputer: IterativeImputer, columns: list[str], impute: list[str]) -> dict[str, Any]:
    """What ``reapply_impute`` needs to replay ``imputer.transform`` with numpy alone."""
    n = len(columns)
    sequence = [
        {
            "feat_idx": int(step.feat_idx),
            "neighbor_feat_idx": [int(i) for i in step.neighbor_feat_idx],
            "coef": [float(v) for v in step.estimator.coef_],
            "intercept": float(step.estimator.intercept_),
        }
        for step in imputer.imputation_sequence_
    ]
    return {
        "columns": list(columns),
        "impute": list(impute),
        "initial": [float(v) for v in imputer.initial_imputer_.statistics_],
        "min": [float(v) for v in np.broadcast_to(imputer.min_value, n)],
        "max": [float(v) for v in np.broadcast_to(imputer.max_value, n)],
        "n_iter": int(imputer.n_iter_),
        "sequence": sequence,
    }


def knn_state(frame: pd.DataFrame, impute: list[str], neighbors: int, seed: int) -> dict[str, Any]:
    """Donor rows (at most KNN_DONOR_CAP, sampled with the seed) and the standardisation."""
    donors = frame if len(frame) <= KNN_DONOR_CAP else frame.sample(KNN_DONOR_CAP, random_state=seed)
    x = donors.to_numpy(dtype=float, na_value=np.nan)
    return {
        "columns": list(frame.columns),
        "impute": list(impute),
        "center": [float(v) for v in np.nanmean(x, axis=0)],
        "scale": [float(v) for v in np.nanstd(x, axis=0)],
        "donors": [[None if np.isnan(v) else float(v) for v in row] for row in x],
        "n_neighbors": min(neighbors, len(x)),
    }


def _result(
    table: pd.DataFrame,
    out: pd.DataFrame,
    choices: list[Choice],
    skipped: list[dict[str, str]],
    fitted: dict[str, Any],
) -> ToolResult:
    filled = {c.column: int(table[c.column].isna().sum()) for c in choices}
    per_column = [
        {
            "column": c.column,
            "method": c.method,
            "reason": c.reason,
            "filled": filled[c.column],
            "value": fitted["medians"].get(c.column, fitted["modes"].get(c.column)),
        }
        for c in choices
    ]
    findings = {
        "columns": per_column,
        "skipped": skipped,
        "indicators": fitted["indicators"],
        "fallback": fitted["fallback"],
    }
    if fitted["iterative"]:
        findings["iterative_rounds"] = fitted["iterative"]["n_iter"]
    missing = table.isna().sum()
    missing = missing[missing > 0]
    chart = Chart(
        "bar",
        "Missing cells per column (before)",
        [str(c) for c in missing.index],
        [float(v) for v in missing],
        "column",
        "missing cells",
    )
    metrics = {
        "cells_filled": float(sum(filled.values())),
        "columns_filled": float(len(choices)),
        "columns_skipped": float(len(skipped)),
        "indicators_added": float(len(fitted["indicators"])),
    }
    return ToolResult(
        summary=_summary(per_column, skipped, fitted),
        table=out,
        findings=findings,
        metrics=metrics,
        charts=[chart] if len(missing) else [],
        fitted=fitted,
    )


def _summary(per_column: list[dict[str, Any]], skipped: list[dict[str, str]], fitted: dict[str, Any]) -> str:
    if per_column:
        total = sum(c["filled"] for c in per_column)
        by_method = Counter(c["method"] for c in per_column)
        shown = sorted(per_column, key=lambda c: -c["filled"])[:SUMMARY_COLUMNS]
        text = f"Filled {plural(total, 'missing cell')} in {plural(len(per_column), 'column')} ("
        text += ", ".join(f"{n} by {method}" for method, n in by_method.most_common()) + "); most: "
        text += "; ".join(_describe(c) for c in shown)
        text += f"; and {len(per_column) - len(shown)} more (see findings)." if len(per_column) > len(shown) else "."
    else:
        text = "No feature column needed filling; the table is unchanged."
    if skipped:
        text += " Left alone: " + "; ".join(f"{s['column']} ({s['reason']})" for s in skipped[:SUMMARY_COLUMNS])
        text += f" and {len(skipped) - SUMMARY_COLUMNS} more." if len(skipped) > SUMMARY_COLUMNS else "."
    if fitted["indicators"]:
        text += f" Added {plural(len(fitted['indicators']), 'missing-indicator column')}."
    if fitted["fallback"]:
        text += (
            f" On new data, gaps left in {plural(len(fitted['fallback']), 'feature column')} get the "
            "training median (numeric) or most frequent value."
        )
    return text


def _describe(column: dict[str, Any]) -> str:
    name, method, n = column["column"], column["method"], column["filled"]
    if method == "median":
        return f"{name} ({n}) by the median {column['value']:.4g}"
    if method == "mode":
        return f"{name} ({n}) by the most frequent value {column['value']!r}"
    return f"{name} ({n}) by {method} imputation: {column['reason']}"
