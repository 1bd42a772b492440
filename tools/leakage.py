"""Find features that give the target away (target leakage).

A feature recorded after the outcome, or derived from it, predicts the target
almost perfectly on its own. For each feature alone a small model is
cross-validated; a score near perfect, a value-for-value mapping onto the
target, or (with too few rows to score) a name that contains the target's name
makes it a suspect. Nothing is changed: dropping a suspect is the human's call.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
from pydantic import Field
from sklearn.base import BaseEstimator, clone
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tools.base import Chart, Task, Tool, ToolContext, ToolParams, ToolResult
from tools.modeling import Dataset, cross_val_score, fold_count, training_data

FOLDS = 3
#: Below this many labelled rows a cross-validated score says little.
FEW_ROWS = 100
CHART_COLUMNS = 20
PROGRESS_EVERY = 10


class LeakageParams(ToolParams):
    threshold: float = Field(
        0.97,
        ge=0.5,
        le=1.0,
        description="A feature whose score on its own (AUROC, balanced accuracy for several classes, "
        "or R² for a numeric target) is at or above this is a suspected leak.",
    )
    max_features: int = Field(
        200, ge=1, le=10_000, description="Score at most this many feature columns (in table order)."
    )


def score_metric(task: Task, n_classes: int) -> str:
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "balanced_accuracy"


def single_feature_models(task: Task, n_classes: int, categorical: bool, seed: int) -> list[BaseEstimator]:
    """Small models for one column; its score is the best of them.

    A shallow tree catches any shape; for a numeric target an isotonic fit also
    catches monotone transforms (unit conversions, logs) that a tree can only
    approximate in steps. A categorical column is first target-encoded
    (cross-fitted) so that it can be split or ordered.
    """
    if task == "classification":
        models: list[BaseEstimator] = [DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=seed)]
    else:
        isotonic = IsotonicRegression(increasing="auto", out_of_bounds="clip")
        models = [
            DecisionTreeRegressor(max_depth=6, min_samples_leaf=10, random_state=seed),
            make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), isotonic),
        ]
    if not categorical:
        return models
    target_type = "continuous" if task == "regression" else "binary" if n_classes == 2 else "multiclass"
    encoder = TargetEncoder(target_type=target_type, cv=KFold(5, shuffle=True, random_state=seed))
    return [make_pipeline(clone(encoder), model) for model in models]


def maps_one_to_one(feature: pd.Series, target: pd.Series) -> bool:
    """Each feature value goes with one target value and back, and values repeat (so it means something)."""
    pairs = pd.DataFrame({"f": feature.to_numpy(), "t": target.to_numpy()}).dropna()
    if len(pairs) < 10 or pairs["f"].nunique() > 0.5 * len(pairs):
        return False
    forward = pairs.groupby("f", sort=False)["t"].nunique().max()
    backward = pairs.groupby("t", sort=False)["f"].nunique().max()
    return bool(forward == 1 and backward == 1)


def name_mentions(column: str, target: str) -> bool:
    return len(target) >= 3 and target.lower() in str(column).lower()


def single_feature_scores(data: Dataset, columns: list[str], ctx: ToolContext) -> dict[str, float]:
    """The cross-validated score of each column on its own."""
    n_classes = data.y.nunique() if data.task == "classification" else 0
    metric = score_metric(data.task, n_classes)
    scores: dict[str, float] = {}
    for i, column in enumerate(columns):
        ctx.check_cancelled()
        categorical = isinstance(data.X[column].dtype, pd.CategoricalDtype)
        models = single_feature_models(data.task, n_classes, categorical, ctx.seed)
        X = data.X[[column]]
        with warnings.catch_warnings():  # isotonic's note that a weak feature has no clear direction
            warnings.filterwarnings("ignore", message="Confidence interval of the Spearman")
            best = max(cross_val_score(X, data.y, m, data.task, FOLDS, ctx.seed)[metric].mean for m in models)
        scores[column] = round(best, 4)
        if (i + 1) % PROGRESS_EVERY == 0 or i + 1 == len(columns):
            ctx.progress((i + 1) / len(columns), f"scored {i + 1} of {len(columns)} features")
    return scores


def can_cross_validate(data: Dataset) -> bool:
    try:
        fold_count(data.y, FOLDS, data.task)
    except ValueError:
        return False
    return len(data.y) >= 2 * FOLDS


def find_suspects(
    table: pd.DataFrame, data: Dataset, scores: dict[str, float], threshold: float
) -> list[dict[str, Any]]:
    """One entry per suspected column, the strongest first."""
    metric = score_metric(data.task, data.y.nunique())
    target = str(data.y.name)
    labelled = table.loc[table[target].notna()]
    suspects = []
    for column in data.X.columns:
        score = scores.get(column)
        reasons = []
        if score is not None and score >= threshold:
            reasons.append(f"on its own it predicts {target!r} with {metric} {score:.3f}")
        if maps_one_to_one(labelled[column], data.y):
            reasons.append(f"its values map one-to-one onto the values of {target!r}")
        action = "drop"
        if not reasons and len(data.y) < FEW_ROWS and name_mentions(column, target):
            reasons.append(f"its name contains {target!r} and there are too few rows to test it")
            action = "review"
        if reasons:
            entry = {"column": column, "score": score, "metric": metric, "reason": "; ".join(reasons)}
            suspects.append(entry | {"recommendation": action})
    return sorted(suspects, key=lambda s: -(s["score"] if s["score"] is not None else 1.0))


def score_chart(scores: dict[str, float], metric: str) -> Chart:
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:CHART_COLUMNS]
    return Chart(
        kind="bar",
        title="How well each feature alone predicts the target",
        labels=[str(c) for c, _ in top],
        values=[float(s) for _, s in top],
        x_label="feature",
        y_label=metric,
    )


def describe(suspects: list[dict[str, Any]], data: Dataset, n_scored: int, n_unscored: int) -> str:
    """The one-paragraph summary for a domain expert."""
    drop = ", ".join(repr(s["column"]) for s in suspects if s["recommendation"] == "drop")
    review = ", ".join(repr(s["column"]) for s in suspects if s["recommendation"] == "review")
    text = f"These features look like they leak the target: {drop}; drop them unless they are truly known "
    text = text + "before the outcome." if drop else "No feature gives the target away on its own."
    if review:
        text += f" Please check {review}: the name mentions {data.y.name!r}, and rows are too few to test it."
    if n_scored:
        text += f" Scored {n_scored} features one at a time with {FOLDS}-fold cross-validation."
    else:
        text += " Too few labelled rows per class to cross-validate: only exact mappings and names were checked."
    if n_unscored:
        text += f" {n_unscored} further features were not scored (raise max_features to include them)."
    if data.n_unlabelled:
        text += f" {data.n_unlabelled} rows with no target value were left out."
    return text


class Leakage(Tool):
    name = "leakage"
    description = (
        "Look for target leakage: features that on their own predict the target almost perfectly "
        "(cross-validated), that map one-to-one onto it, or whose name contains the target's. "
        "Read-only; recommends columns to drop."
    )
    category = "leakage"
    mutates = False
    Params = LeakageParams

    def run(self, table: pd.DataFrame, params: LeakageParams, ctx: ToolContext) -> ToolResult:
        data = training_data(table, ctx)
        columns = list(data.X.columns)
        scorable = can_cross_validate(data)
        to_score = columns[: params.max_features] if scorable else []
        scores = single_feature_scores(data, to_score, ctx)
        suspects = find_suspects(table, data, scores, params.threshold)
        metric = score_metric(data.task, data.y.nunique())
        unscored = columns[len(to_score) :]
        findings = {
            "suspects": suspects,
            "scores": scores,
            "metric": metric,
            "unscored": unscored,
            "skipped": data.skipped,
        }
        metrics = {
            "suspects": float(len(suspects)),
            "scored_columns": float(len(scores)),
            "max_score": float(max(scores.values(), default=0.0)),
        }
        return ToolResult(
            summary=describe(suspects, data, len(scores), len(unscored) if scores else 0),
            findings=findings,
            metrics=metrics,
            charts=[score_chart(scores, metric)] if scores else [],
        )
