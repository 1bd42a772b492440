"""Fill missing feature cells without inventing answers.

- **Numeric** columns: the median, KNN or iterative (chained linear) imputation.
  A ``<column>__was_missing`` 0/1 indicator is added where the fill would hide
  something: the column has a point mass (one value held by at least half of the
  present rows, so the fill disappears into it), or its missingness is associated
  with the target (a chi-square test, by permutation where counts are small, for a
  class target; Mann-Whitney for a numeric one; p < 0.01 after Holm's correction
  for the columns tested). ``add_indicators`` adds one for every filled column.
- **Categorical, boolean and constant** columns: an explicit missing level
  (``"missing"``, or ``"(missing)"``, ``"missing_2"``... when that value exists),
  so the gap stays a gap a model can see; ``categorical="mode"`` fills the most
  frequent value instead. A column that is not text (booleans, category codes
  stored as numbers, mixed cells) becomes text when it gets the level (``True`` as
  ``"True"``, ``2.0`` as ``"2"``) so that it stays one type through parquet; a
  pandas categorical column of strings gains the level as a category.
- **Free text, identifiers, the target, dates**: never filled.

The fitted state is plain JSON so that ``reapply_impute`` can repeat the exact
transform on new data without pickles: fill values and levels, the indicator
columns, and for the iterative method the sequence of linear models that
``IterativeImputer.transform`` would replay (BayesianRidge predicts
``X[:, neighbours] @ coef + intercept``).

Every imputable feature column also gets a fallback, even one without gaps in
the training table, so that gaps in new data are filled in columns that had none
when the pipeline was fitted: ``fitted["fallback"]`` (the training median of a
numeric column, the most frequent value under ``categorical="mode"``) and
``fitted["fallback_levels"]`` (the missing level of a categorical column).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats
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
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult, infer_task
from tools.typing_rules import format_number

MIN_CORRELATION = 0.3
KNN_DONOR_CAP = 2000
SUMMARY_COLUMNS = 3  # columns named in the summary; the findings list them all
LEVEL_KINDS = ("categorical", "boolean", "constant")
POINT_MASS = 0.5  # share of the present rows one value must hold to swallow the fill
SIGNAL_P = 0.01  # p-value below which missingness is associated with the target
#: Rows with and without a value the association test needs. Fewer missing rows carry no signal a
#: model can learn (a HistGradientBoosting leaf holds at least 20 rows), and their p-value is fragile:
#: the steps before impute (dropped duplicates, outliers, suspicious labels) choose rows by the model's
#: view of them, gaps included, enough to make a handful of gaps look tied to the target.
MIN_SIDE = 20
PERMUTATIONS = 20_000  # seeded draws for the association test where the chi-square approximation fails
LEVEL_NAMES = ("missing", "(missing)")  # then missing_2, missing_3, ...


class ImputeParams(ToolParams):
    method: Literal["auto", "simple", "knn", "iterative"] = Field(
        "auto",
        description=(
            "How to fill numeric columns. auto: iterative imputation for a column that correlates "
            "(|r| >= 0.3) with another numeric feature, else the median; simple: median; knn: average "
            "of the nearest rows; iterative: chained linear regressions. Categorical and boolean "
            "columns follow `categorical`."
        ),
    )
    categorical: Literal["missing_level", "mode"] = Field(
        "missing_level",
        description=(
            "How to fill categorical and boolean columns. missing_level: an explicit level 'missing' "
            "(another name if that value exists), so the gap stays visible; mode: the most frequent value."
        ),
    )
    columns: list[str] = Field(
        default_factory=list,
        description="Columns to fill; empty means every feature column that has missing values.",
    )
    add_indicators: bool = Field(
        False,
        description=(
            "Add a 0/1 column '<column>__was_missing' for every filled column. Without it one is still "
            "added where the fill would hide something: one value is held by at least half of the present "
            "rows (a point mass), or the missingness is associated with the target (p < 0.01)."
        ),
    )
    knn_neighbors: int = Field(5, ge=1, le=50, description="Number of neighbouring rows for method knn.")
    max_iter: int = Field(10, ge=1, le=50, description="Maximum rounds of the iterative imputer.")


@dataclass(frozen=True)
class Choice:
    """How one column will be filled, and why."""

    column: str
    method: Literal["median", "mode", "missing_level", "iterative", "knn"]
    reason: str


def reapply_impute(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Fill missing cells of ``table`` with the state fitted by the impute tool.

    Order: medians, modes and missing levels, then one model (iterative or knn) over its
    numeric columns, then the fallbacks and fallback levels for cells still missing (columns
    that had no gaps when fitted; a column absent from ``table`` is passed over), then the
    missing indicators (recording where cells were missing before any fill). A column that
    gets a level and does not hold text becomes text, so that it keeps one type.
    """
    import numpy as np
    import pandas as pd

    def as_text(value: object) -> str:
        """A cell as a level: ``True`` as "True", ``2.0`` as "2", anything else by ``str``."""
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value.item() if isinstance(value, np.generic) else value)

    def with_level(col: pd.Series, level: str) -> pd.Series:
        """``col`` with its gaps set to ``level``, in a dtype that can hold it."""
        if not col.isna().any():
            return col
        if isinstance(col.dtype, pd.CategoricalDtype):
            if pd.api.types.infer_dtype(col.cat.categories, skipna=True) == "string":
                grown = col if level in col.cat.categories else col.cat.add_categories([level])
                return grown.fillna(level)
        elif pd.api.types.infer_dtype(col, skipna=True) == "string":
            return col.fillna(level)
        text = col.astype(object).map(as_text, na_action="ignore")
        return text.where(col.notna(), level).astype("str")

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
    levels = fitted.get("levels") or {}
    needed = [*fitted["medians"], *fitted["modes"], *levels, *fitted["indicators"]]
    needed += [c for state, _ in models if state for c in state["columns"]]
    absent = [c for c in dict.fromkeys(needed) if c not in out.columns]
    if absent:
        raise ValueError(f"impute was fitted with column(s) {', '.join(absent)}, which this table lacks")
    was_missing = {col: out[col].isna().astype(int) for col in fitted["indicators"]}
    for col, value in fitted["medians"].items():
        out[col] = out[col].astype(float).fillna(value)
    for col, value in fitted["modes"].items():
        out[col] = out[col].fillna(value)
    for col, level in levels.items():
        out[col] = with_level(out[col], level)
    for state, replay in models:
        if state:
            done = replay(out[state["columns"]].to_numpy(dtype=float, na_value=np.nan), state)
            for col in state["impute"]:
                out[col] = done[:, state["columns"].index(col)]
    for col, value in (fitted.get("fallback") or {}).items():
        if col in out.columns and out[col].isna().any():
            numbers = isinstance(value, float) and out[col].dtype.kind in "iuf"
            out[col] = (out[col].astype(float) if numbers else out[col]).fillna(value)
    for col, level in (fitted.get("fallback_levels") or {}).items():
        if col in out.columns:
            out[col] = with_level(out[col], level)
    for col, flags in was_missing.items():
        out[f"{col}__was_missing"] = flags
    return out


class Impute(Tool):
    name = "impute"
    description = (
        "Fill missing values in feature columns (never the target, identifiers or free text): numbers "
        "by the median, KNN, or iterative imputation from correlated columns, with a 0/1 "
        "missing-indicator column where the fill would hide a point mass or missingness that predicts "
        "the target; categories and booleans by an explicit 'missing' level (or the most frequent "
        "value if asked). The same fill is re-applied to new data."
    )
    category = "missingness"
    mutates = True
    Params = ImputeParams
    reapply = staticmethod(reapply_impute)

    def run(self, table: pd.DataFrame, params: ImputeParams, ctx: ToolContext) -> ToolResult:
        candidates, fallbacks, skipped = select_columns(table, params, ctx)
        predictors = model_columns(table, ctx)
        choices = [choose_method(table, col, predictors, params, ctx) for col in candidates]
        ctx.progress(0.2, "fitting the imputation")
        ctx.check_cancelled()
        fitted = fit_state(table, choices, predictors, params, ctx.seed)
        indicators = indicator_reasons(table, choices, params, ctx)
        fitted["indicators"] = list(indicators)
        kinds = column_kinds(table, ctx)
        by_level = [c for c in fallbacks if params.categorical == "missing_level" and takes_level(table[c], kinds[c])]
        fitted["fallback"] = {c: fallback_value(table[c], kinds[c]) for c in fallbacks if c not in by_level}
        fitted["fallback_levels"] = {c: missing_level(table[c]) for c in by_level}
        ctx.check_cancelled()
        out = reapply_impute(table, fitted)
        ctx.progress(1.0, "filled")
        return _result(table, out, choices, skipped, fitted, indicators)


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
    if not params.columns:  # free text is outside the feature scope; say so where it has gaps
        text = [c for c in ctx.feature_columns(table) if kinds[c] == "text" and table[c].isna().any()]
        skipped += [{"column": c, "reason": "text columns are never imputed"} for c in text]
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


def takes_level(series: pd.Series, kind: str) -> bool:
    """True for the columns filled by a value rather than a number: categories, booleans, constants."""
    return kind in LEVEL_KINDS or not is_number_dtype(series)


def choose_method(
    table: pd.DataFrame, col: str, predictors: list[str], params: ImputeParams, ctx: ToolContext
) -> Choice:
    """Pick the fill for one column, following ``params.method`` and ``params.categorical``."""
    kind, method = column_kinds(table, ctx)[col], params.method
    if takes_level(table[col], kind):
        if params.categorical == "mode":
            return Choice(col, "mode", f"{kind} column: most frequent value, as asked")
        return Choice(col, "missing_level", f"{kind} column: the gap is kept as a level of its own, not guessed")
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
    simple = {c.column: c.method for c in choices if c.method in ("median", "mode", "missing_level")}
    state: dict[str, Any] = {
        "medians": {c: float(table[c].median()) for c, m in simple.items() if m == "median"},
        "modes": {c: mode_of(table[c]) for c, m in simple.items() if m == "mode"},
        "levels": {c: missing_level(table[c]) for c, m in simple.items() if m == "missing_level"},
        "iterative": None,
        "knn": None,
        "indicators": [],
    }
    work = reapply_impute(table, state)
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


def missing_level(series: pd.Series) -> str:
    """The level for the gaps of ``series``: the first of missing, (missing), missing_2, ... that is
    not already a value (compared as text, trimmed, in any case)."""
    taken = {str(v).strip().lower() for v in series.dropna().unique()}
    taken |= {t.removesuffix(".0") for t in taken}  # 2.0 is written "2" once the column is text
    names = [*LEVEL_NAMES, *(f"missing_{i}" for i in range(2, len(taken) + 3))]
    return next(name for name in names if name not in taken)


def fallback_value(series: pd.Series, kind: str) -> Any:
    """The fill for gaps that new data has and the fitted method leaves: the median of a numeric
    column, the most frequent value of any other (``categorical="mode"``; a level otherwise)."""
    if takes_level(series, kind):
        return mode_of(series)
    return float(series.median())


def indicator_reasons(
    table: pd.DataFrame, choices: list[Choice], params: ImputeParams, ctx: ToolContext
) -> dict[str, str]:
    """The columns that get a ``__was_missing`` indicator, each with the reason.

    Every filled column when ``params.add_indicators``; otherwise those whose fill hides the gap
    (not a missing level) and that have a point mass, or whose missingness predicts the target
    (p < SIGNAL_P after Holm's correction for the number of columns tested).
    """
    if params.add_indicators:
        return {c.column: "add_indicators was asked for" for c in choices}
    hidden = [c.column for c in choices if c.method != "missing_level"]
    found = {col: [r] for col in hidden if (r := point_mass(table[col]))}
    target = table[ctx.target] if ctx.target in table.columns else None
    if target is not None:
        task = ctx.task or infer_task(target)
        tested = {col: missingness_test(table[col].isna(), target, task, ctx.seed) for col in hidden}
        tested = {col: result for col, result in tested.items() if result is not None}
        adjusted = holm({col: p for col, (p, _) in tested.items()})
        for col, (p, why) in tested.items():
            if adjusted[col] < SIGNAL_P:
                found.setdefault(col, []).append(f"missingness predicts the target: {why}, p={p:.2g}")
    return {col: "; ".join(found[col]) for col in hidden if col in found}


def point_mass(series: pd.Series) -> str | None:
    """Why a fill would vanish into one value held by at least POINT_MASS of the present rows, or None."""
    shares = series.value_counts(normalize=True)
    if shares.empty or shares.iloc[0] < POINT_MASS:
        return None
    value = json_value(shares.index[0])
    shown = format_number(value) if isinstance(value, float) else repr(value)
    return f"{100 * shares.iloc[0]:.0f}% of the present rows hold {shown}, so filled cells would vanish into it"


def missingness_test(missing: pd.Series, target: pd.Series, task: str, seed: int) -> tuple[float, str] | None:
    """The p-value that the rows without a value differ in the target from the others, and how.

    A numeric target: Mann-Whitney U. A class target: the chi-square test of independence of
    missingness and class; where an expected count is under 5, its p-value comes from
    PERMUTATIONS seeded draws of the missing rows' classes (multivariate hypergeometric), since
    the chi-square approximation is then too optimistic. Rows without a target are left out;
    None when either side has fewer than MIN_SIDE rows or the target has one class.
    """
    known = target.notna()
    gap, y = missing[known].to_numpy(dtype=bool), target[known]
    if gap.sum() < MIN_SIDE or (~gap).sum() < MIN_SIDE:
        return None
    if task == "regression":
        numbers = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        p = float(stats.mannwhitneyu(numbers[gap], numbers[~gap], nan_policy="omit").pvalue)
        inside, outside = np.nanmedian(numbers[gap]), np.nanmedian(numbers[~gap])
        return p, f"the target's median is {inside:.4g} where it is missing and {outside:.4g} elsewhere (Mann-Whitney)"
    counts = pd.crosstab(gap, y.astype("str").to_numpy())
    if counts.shape[1] < 2:
        return None
    test, p = permutation_chi_square(counts.loc[True].to_numpy(), counts.sum().to_numpy(), seed)
    rates = counts.div(counts.sum(axis=1), axis=0)
    label = str((rates.loc[True] - rates.loc[False]).abs().idxmax())
    inside, outside = 100 * rates.at[True, label], 100 * rates.at[False, label]
    return p, f"{label!r} is {inside:.0f}% of the rows where it is missing and {outside:.0f}% elsewhere ({test})"


def permutation_chi_square(missing_counts: np.ndarray, class_counts: np.ndarray, seed: int) -> tuple[str, float]:
    """The chi-square test of a 2 x classes table given by its missing row and its column totals."""
    n, k = int(class_counts.sum()), int(missing_counts.sum())
    expected = np.outer([k, n - k], class_counts) / n

    def statistic(inside: np.ndarray) -> np.ndarray:
        cells = np.stack([inside, class_counts - inside], axis=-2)
        return (((cells - expected) ** 2) / expected).sum(axis=(-2, -1))

    if expected.min() >= 5:
        return "chi-square", float(stats.chi2.sf(statistic(missing_counts), len(class_counts) - 1))
    draws = np.random.default_rng(seed).multivariate_hypergeometric(class_counts, k, size=PERMUTATIONS)
    beyond = int((statistic(draws) >= statistic(missing_counts) - 1e-9).sum())
    return "permutation chi-square", (beyond + 1) / (PERMUTATIONS + 1)


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of ``p_values``: reject where the adjusted value is below alpha."""
    adjusted, running = {}, 0.0
    for rank, (key, p) in enumerate(sorted(p_values.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (len(p_values) - rank) * p))
        adjusted[key] = running
    return adjusted


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
    indicators: dict[str, str],
) -> ToolResult:
    filled = {c.column: int(table[c.column].isna().sum()) for c in choices}
    values = fitted["medians"] | fitted["modes"] | fitted["levels"]
    per_column = [
        {
            "column": c.column,
            "method": c.method,
            "reason": c.reason,
            "filled": filled[c.column],
            "value": values.get(c.column),
            "indicator": f"{c.column}__was_missing" if c.column in indicators else None,
            "indicator_reason": indicators.get(c.column),
        }
        for c in choices
    ]
    findings = {
        "columns": per_column,
        "skipped": skipped,
        "indicators": fitted["indicators"],
        "fallback": fitted["fallback"],
        "fallback_levels": fitted["fallback_levels"],
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
        "levels_added": float(len(fitted["levels"])),
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
        by_method = Counter(c["method"].replace("_", " ") for c in per_column)
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
    flagged = [c for c in per_column if c["indicator"]]
    if flagged:
        text += f" Added {plural(len(flagged), 'missing-indicator column')}: "
        text += "; ".join(f"{c['indicator']} ({c['indicator_reason']})" for c in flagged[:SUMMARY_COLUMNS])
        text += f" and {len(flagged) - SUMMARY_COLUMNS} more." if len(flagged) > SUMMARY_COLUMNS else "."
    n_fallback = len(fitted["fallback"]) + len(fitted["fallback_levels"])
    if n_fallback:
        text += (
            f" On new data, gaps left in {plural(n_fallback, 'feature column')} get the training median "
            "(numbers) or the missing level (categories; the most frequent value if asked)."
        )
    return text


def _describe(column: dict[str, Any]) -> str:
    name, method, n = column["column"], column["method"], column["filled"]
    if method == "median":
        return f"{name} ({n}) by the median {column['value']:.4g}"
    if method == "mode":
        return f"{name} ({n}) by the most frequent value {column['value']!r}"
    if method == "missing_level":
        return f"{name} ({n}) with the level {column['value']!r}"
    return f"{name} ({n}) by {method} imputation: {column['reason']}"
