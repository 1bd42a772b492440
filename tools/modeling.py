"""Shared modelling helpers for the tools that learn from the table.

``label_issues``, ``leakage`` and ``evaluate`` all need the same three things:
the labelled rows of a mixed table as a model-ready feature matrix, a standard
model that copes with mixed types and missing cells, and cross-validated
predictions or scores. They live here as pure functions so the tools stay short
and agree with each other.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from tools._frame import infer_kind
from tools.base import Task, ToolContext, infer_task

ModelKind = Literal["hist_gradient_boosting", "linear", "ensemble"]
Progress = Callable[[float, str], None]

FEATURE_KINDS = ("numeric", "categorical", "boolean", "datetime")
_SKIPPED = {"text": "free text", "identifier": "an identifier", "personal": "personal data"}
#: HistGradientBoosting accepts at most 255 levels per categorical feature.
MAX_LEVELS = 250
OTHER_LEVEL = "(other)"


def _no_progress(fraction: float, message: str) -> None:
    """Default progress callback: report nothing."""


# --- column types ------------------------------------------------------------


def feature_kinds(table: pd.DataFrame, ctx: ToolContext) -> tuple[dict[str, str], dict[str, str]]:
    """Split the feature columns into usable ones (column → type) and skipped ones (column → why)."""
    usable: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for column in ctx.feature_columns(table):
        series = table[column]
        kind = ctx.column_types.get(column) or infer_kind(series)
        if series.isna().all():
            skipped[column] = "all missing"
        elif kind in FEATURE_KINDS:
            usable[column] = kind
        else:
            skipped[column] = _SKIPPED.get(kind, kind)
    return usable, skipped


# --- feature matrix ------------------------------------------------------------


def _as_float(series: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(series, errors="coerce")
    return pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=series.name)


def _as_days(series: pd.Series) -> pd.Series:
    """Datetimes as days since 1970 (UTC), missing or unparseable cells as NaN."""
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series, utc=True)
    else:
        stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    days = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
    return _as_float(days)


def _as_category(series: pd.Series) -> pd.Series:
    """Cells as text categories; beyond the MAX_LEVELS most frequent, one shared level."""
    text = series.map(str, na_action="ignore")
    counts = text.value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    if len(counts) > MAX_LEVELS:
        keep = counts.index[:MAX_LEVELS]
        text = text.where(text.isin(keep) | text.isna(), OTHER_LEVEL)
    levels = sorted(text.dropna().unique())
    return pd.Series(pd.Categorical(text, categories=levels), index=series.index)


def encode_column(series: pd.Series, kind: str) -> pd.Series:
    """One column as a model input: float (NaN for missing) or a pandas category."""
    if kind == "numeric":
        return _as_float(series)
    if kind == "datetime":
        return _as_days(series)
    if kind == "boolean" and pd.api.types.is_bool_dtype(series):
        return _as_float(series)
    return _as_category(series)


def feature_matrix(table: pd.DataFrame, ctx: ToolContext) -> pd.DataFrame:
    """The usable feature columns, encoded; raises ``ValueError`` when none is usable.

    Numeric, boolean and datetime columns become floats, categorical ones pandas
    categories (HistGradientBoosting reads them natively); missing cells stay NaN.
    Identifier, text and constant columns are never used.
    """
    usable, skipped = feature_kinds(table, ctx)
    return _encode_features(table, usable, skipped, ctx.target)


def _encode_features(
    table: pd.DataFrame, usable: dict[str, str], skipped: dict[str, str], target: str | None
) -> pd.DataFrame:
    encoded = {column: encode_column(table[column], kind) for column, kind in usable.items()}
    matrix = pd.DataFrame(encoded, index=table.index)
    matrix = matrix.loc[:, [c for c in matrix.columns if matrix[c].notna().any()]]
    if matrix.shape[1] == 0:
        reasons = ", ".join(f"{c} ({why})" for c, why in skipped.items()) or "none"
        raise ValueError(
            f"no usable feature column to learn {target!r} from (skipped: {reasons}); "
            "add numeric or categorical columns, or fix their types with coerce_types"
        )
    return matrix


# --- target --------------------------------------------------------------------


def encode_labels(labels: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Class codes 0..K-1 (in sorted class order) and the classes themselves."""
    codes, classes = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), classes


@dataclass(frozen=True)
class Dataset:
    """The labelled rows of a table, ready to learn from."""

    X: pd.DataFrame
    y: pd.Series
    task: Task
    n_unlabelled: int
    skipped: dict[str, str]


def training_data(table: pd.DataFrame, ctx: ToolContext) -> Dataset:
    """Check the target, infer the task and keep the rows whose target is known."""
    target = ctx.target
    if not target:
        raise ValueError("this tool needs a target column: set the target to the column to predict")
    if target not in table.columns:
        raise ValueError(f"target column {target!r} is not in the table; choose one of {list(table.columns)}")
    labelled = table[target].notna()
    if not labelled.any():
        raise ValueError(f"target column {target!r} has no values; choose a target that is filled in")
    task = ctx.task or infer_task(table[target])
    y = table.loc[labelled, target]
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y):
            raise ValueError(f"target {target!r} is not numeric, so it cannot be a regression target")
        y = _as_float(y)
    usable, skipped = feature_kinds(table, ctx)
    X = _encode_features(table.loc[labelled], usable, skipped, target)
    return Dataset(X=X, y=y, task=task, n_unlabelled=int((~labelled).sum()), skipped=skipped)


# --- models --------------------------------------------------------------------


#: Regularisation strengths the linear model chooses from by inner cross-validation.
LINEAR_CS = np.logspace(-3, 2, 11)
LINEAR_INNER_FOLDS = 5


class TunedLogistic(ClassifierMixin, BaseEstimator):
    """Logistic regression with C chosen from ``LINEAR_CS`` by inner stratified CV on log-loss.

    The inner folds shrink to the rarest class's size; with fewer than two rows in a class it
    falls back to plain ``LogisticRegression`` (C=1).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> TunedLogistic:
        _, counts = np.unique(y, return_counts=True)
        folds = min(LINEAR_INNER_FOLDS, int(counts.min()))
        if folds >= 2:
            model: BaseEstimator = LogisticRegressionCV(
                Cs=LINEAR_CS, cv=folds, scoring="neg_log_loss", max_iter=2000, random_state=self.seed
            )
        else:
            model = LogisticRegression(max_iter=2000, random_state=self.seed)
        with warnings.catch_warnings():  # scikit-learn 1.8+ announces changes to LogisticRegressionCV's defaults
            warnings.simplefilter("ignore", FutureWarning)
            self.model_ = model.fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


def _linear_model(task: Task, seed: int) -> Pipeline:
    """Median-filled, scaled numbers and one-hot categories into a linear model whose
    regularisation is chosen by inner cross-validation (log-loss; leave-one-out error for Ridge).

    A fixed C=1 overfits small, noisy tables (the wine table's 124 rows with 10% flipped labels:
    out-of-fold log-loss 0.65 against 0.56 with C chosen), and that miscalibration is what
    ``label_issues`` feeds to cleanlab. No missing-value indicators: where cells are missing at
    random they are noise features (log-loss 0.97 with them on the same table); gradient boosting
    still sees the missing cells as such.
    """
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = OneHotEncoder(handle_unknown="ignore")
    encode = ColumnTransformer(
        [
            ("numeric", numeric, make_column_selector(dtype_include="number")),
            ("categorical", categorical, make_column_selector(dtype_include="category")),
        ]
    )
    if task == "classification":
        return make_pipeline(encode, TunedLogistic(seed=seed))
    return make_pipeline(encode, RidgeCV(alphas=1.0 / LINEAR_CS))


def _boosting_model(task: Task, seed: int, fast: bool) -> BaseEstimator:
    settings = {
        "max_iter": 50 if fast else 200,
        "learning_rate": 0.2 if fast else 0.1,
        "early_stopping": False,  # a validation split would make results depend on it
        "categorical_features": "from_dtype",
        "random_state": seed,
    }
    if task == "classification":
        return HistGradientBoostingClassifier(**settings)
    return HistGradientBoostingRegressor(**settings)


def standard_model(
    task: Task, seed: int, fast: bool = False, kind: ModelKind = "hist_gradient_boosting"
) -> BaseEstimator:
    """The model the tools agree on, for a :func:`feature_matrix`.

    ``hist_gradient_boosting`` handles mixed types and NaN natively; ``linear``
    is logistic/ridge regression after imputation, one-hot encoding and scaling;
    ``ensemble`` averages the two (soft voting). ``fast`` trades accuracy for time.
    """
    if kind == "linear":
        return _linear_model(task, seed)
    boosting = _boosting_model(task, seed, fast)
    if kind == "hist_gradient_boosting":
        return boosting
    members = [("boosting", boosting), ("linear", _linear_model(task, seed))]
    if task == "classification":
        return VotingClassifier(members, voting="soft")
    return VotingRegressor(members)


# --- cross-validation ----------------------------------------------------------


def fold_count(labels: pd.Series, folds: int, task: Task) -> int:
    """The number of folds actually possible: fewer when a class or the table is small."""
    if task == "regression":
        if len(labels) < 4:
            raise ValueError(f"only {len(labels)} labelled rows: cross-validation needs at least 4")
        return max(2, min(folds, len(labels) // 2))
    counts = labels.value_counts()
    if len(counts) < 2:
        raise ValueError(f"the target has a single class ({counts.index[0]!r}); a classifier needs two")
    if counts.min() < 2:
        rare = [str(c) for c in counts.index[counts < 2]]
        shown = ", ".join(rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
        raise ValueError(
            f"class(es) {shown} have a single labelled row; cross-validation needs at least 2 per "
            "class: merge or drop those rows first (or, for a numeric target, set the task to regression)"
        )
    return min(folds, int(counts.min()))


def one_thread() -> threadpool_limits:
    """Fit single-threaded (OpenMP and BLAS).

    HistGradientBoosting's OpenMP threads synchronise many times per tree; when
    other processes share the cores (parallel tool calls, a busy host) a fit of
    breast cancer (569 rows) measured 8-12 s with 2 threads against 0.4 s with
    one. On the table sizes these tools see, one thread loses little when idle.
    """
    return threadpool_limits(limits=1)


def _splits(X: pd.DataFrame, y: pd.Series, task: Task, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n_splits = fold_count(y, folds, task)
    if task == "classification":
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(X, encode_labels(y)[0]))
    return list(KFold(n_splits, shuffle=True, random_state=seed).split(X))


def out_of_fold_proba(
    X: pd.DataFrame,
    y: pd.Series,
    model: BaseEstimator,
    folds: int,
    seed: int,
    progress: Progress = _no_progress,
) -> np.ndarray:
    """Class probabilities for every row from a model that never saw that row.

    Columns follow :func:`encode_labels` order. Folds are stratified and reduced
    when the rarest class has fewer rows than ``folds``.
    """
    codes, classes = encode_labels(y)
    proba = np.zeros((len(y), len(classes)))
    splits = _splits(X, y, "classification", folds, seed)
    for i, (train, test) in enumerate(splits):
        with one_thread():
            fitted = clone(model).fit(X.iloc[train], codes[train])
            proba[np.ix_(test, fitted.classes_)] = fitted.predict_proba(X.iloc[test])
        progress((i + 1) / len(splits), f"fold {i + 1} of {len(splits)}")
    return proba


@dataclass(frozen=True)
class FoldScores:
    """One metric over the folds of a cross-validation."""

    mean: float
    folds: list[float]


def classification_scores(codes: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """AUROC (one-vs-rest, weighted, for several classes), accuracy and balanced accuracy."""
    predicted = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        auc = roc_auc_score(codes, proba[:, 1])
    else:
        labels = np.arange(proba.shape[1])
        auc = roc_auc_score(codes, proba, multi_class="ovr", average="weighted", labels=labels)
    return {
        "roc_auc": float(auc),
        "accuracy": float(accuracy_score(codes, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(codes, predicted)),
    }


def regression_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"r2": float(r2_score(truth, predicted)), "mae": float(mean_absolute_error(truth, predicted))}


def cross_val_score(
    X: pd.DataFrame,
    y: pd.Series,
    model: BaseEstimator,
    task: Task,
    folds: int,
    seed: int,
    progress: Progress = _no_progress,
) -> dict[str, FoldScores]:
    """Every metric of the task (see ``classification_scores``/``regression_scores``) per fold."""
    splits = _splits(X, y, task, folds, seed)
    target, classes = encode_labels(y) if task == "classification" else (y.to_numpy(), None)
    per_fold: list[dict[str, float]] = []
    for i, (train, test) in enumerate(splits):
        with one_thread():
            fitted = clone(model).fit(X.iloc[train], target[train])
            if classes is None:
                per_fold.append(regression_scores(target[test], fitted.predict(X.iloc[test])))
            else:
                proba = np.zeros((len(test), len(classes)))
                proba[:, fitted.classes_] = fitted.predict_proba(X.iloc[test])
                per_fold.append(classification_scores(target[test], proba))
        progress((i + 1) / len(splits), f"fold {i + 1} of {len(splits)}")
    return {
        name: FoldScores(float(np.mean([s[name] for s in per_fold])), [s[name] for s in per_fold])
        for name in per_fold[0]
    }


def holdout_scores(
    X: pd.DataFrame, y: pd.Series, model: BaseEstimator, task: Task, held: np.ndarray
) -> dict[str, float] | None:
    """Every metric of the task for ``model`` fitted on the rows outside ``held`` and scored on those in it;
    None when either side lacks what a score needs (two classes, or two rows for a regression)."""
    train, test = np.flatnonzero(~held), np.flatnonzero(held)
    if task == "regression":
        if len(train) < 2 or len(test) < 2:
            return None
        with one_thread():
            fitted = clone(model).fit(X.iloc[train], y.iloc[train].to_numpy())
            return regression_scores(y.iloc[test].to_numpy(), fitted.predict(X.iloc[test]))
    codes, classes = encode_labels(y)
    if len(np.unique(codes[train])) < 2 or len(np.unique(codes[test])) < 2:
        return None
    with one_thread():
        fitted = clone(model).fit(X.iloc[train], codes[train])
        proba = np.zeros((len(test), len(classes)))
        proba[:, fitted.classes_] = fitted.predict_proba(X.iloc[test])
    return classification_scores(codes[test], proba)


def fold_progress(ctx: ToolContext, start: float, end: float, what: str) -> Progress:
    """A progress callback for one phase of a tool: maps 0..1 onto start..end, honours cancel."""

    def report(fraction: float, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress(start + (end - start) * fraction, f"{what}: {message}")

    return report
