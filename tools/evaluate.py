"""How well a standard model learns the target from the current table.

Run before and after cleaning steps, the score tells the domain expert whether
a step helped the downstream task. When the session holds rows out
(:mod:`tools.holdout`), the model trains on the other rows and is scored on
those: the same rows before and after, which no row-level step touched, so a
step cannot raise the score by removing the rows a model finds hard. Without
them (or when they lack a second class), the score is cross-validated on the
current rows.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tools.base import Chart, Task, Tool, ToolContext, ToolParams, ToolResult
from tools.holdout import held_out
from tools.modeling import (
    Dataset,
    FoldScores,
    cross_val_score,
    fold_progress,
    holdout_scores,
    standard_model,
    training_data,
)

Metric = Literal["auto", "roc_auc", "accuracy", "balanced_accuracy", "r2"]
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "balanced_accuracy")
METRIC_NAMES = {
    "roc_auc": "AUROC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "r2": "R²",
    "mae": "mean absolute error",
}
MODEL_NAMES = {"hist_gradient_boosting": "gradient boosting", "linear": "a linear model"}
#: A class below this share of the rows is called out as a minority.
MINORITY_SHARE = 0.10


class EvaluateParams(ToolParams):
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    model: Literal["hist_gradient_boosting", "linear"] = Field(
        "hist_gradient_boosting",
        description="Gradient boosting (handles mixed types and missing cells) or a linear model "
        "(logistic/ridge regression after imputation and one-hot encoding).",
    )
    metric: Metric = Field(
        "auto",
        description="Score to report; auto is AUROC for classification and R² for regression.",
    )


def chosen_metric(metric: Metric, task: Task) -> str:
    """The metric to report; raises ``ValueError`` when it does not fit the task."""
    if metric == "auto":
        return "roc_auc" if task == "classification" else "r2"
    if (task == "classification") != (metric in CLASSIFICATION_METRICS):
        raise ValueError(
            f"metric {metric!r} does not fit a {task} target; use 'auto' or one of "
            f"{CLASSIFICATION_METRICS if task == 'classification' else ('r2',)}"
        )
    return metric


def imbalance_note(counts: pd.Series) -> str:
    """A sentence about the smallest class when it is under MINORITY_SHARE of the rows."""
    share = counts / counts.sum()
    if share.min() >= MINORITY_SHARE:
        return ""
    rare = share.idxmin()
    return (
        f" The classes are imbalanced: {str(rare)!r} is only {share.min():.0%} of the rows, so accuracy "
        "flatters the model; balanced accuracy or AUROC is fairer, and class_balance can help."
    )


def describe(result: dict[str, FoldScores], metric: str, model: str, n_rows: int, n_features: int) -> str:
    fold = result[metric].folds
    return (
        f"{len(fold)}-fold cross-validated {METRIC_NAMES[metric]} of {MODEL_NAMES[model]} on {n_rows} "
        f"rows and {n_features} features: {result[metric].mean:.3f} "
        f"(folds from {min(fold):.3f} to {max(fold):.3f})."
    )


def fold_chart(scores: FoldScores, metric: str) -> Chart:
    return Chart(
        kind="bar",
        title=f"{METRIC_NAMES[metric]} per cross-validation fold",
        labels=[f"fold {i + 1}" for i in range(len(scores.folds))],
        values=[float(s) for s in scores.folds],
        x_label="fold",
        y_label=METRIC_NAMES[metric],
    )


class Evaluate(Tool):
    name = "evaluate"
    description = (
        "Measure how well a standard model predicts the target from the current table "
        "(cross-validated AUROC, accuracy, balanced accuracy, or R² and MAE). Read-only; "
        "run it before and after cleaning to see whether a step helped."
    )
    category = "readiness"
    mutates = False
    Params = EvaluateParams

    def run(self, table: pd.DataFrame, params: EvaluateParams, ctx: ToolContext) -> ToolResult:
        data = training_data(table, ctx)
        metric = chosen_metric(params.metric, data.task)
        model = standard_model(data.task, ctx.seed, kind=params.model)
        held = held_out(data.X.index, ctx.holdout, ctx.seed)
        scores = holdout_scores(data.X, data.y, model, data.task, held) if held.any() else None
        if scores is not None:
            return held_out_result(data, scores, metric, params.model, held)
        report = fold_progress(ctx, 0.0, 1.0, "cross-validation")
        result = cross_val_score(data.X, data.y, model, data.task, params.folds, ctx.seed, report)
        n_rows, n_features = data.X.shape
        findings = {
            "metric": metric,
            "score": result[metric].mean,
            "fold_scores": result[metric].folds,
            "n_rows": n_rows,
            "n_features": n_features,
            "scored_on": "cross_validation",
        }
        summary = describe(result, metric, params.model, n_rows, n_features) + about_rows(data, findings)
        metrics = {"score": result[metric].mean} | {name: s.mean for name, s in result.items()}
        metrics |= {"n_rows": float(n_rows), "n_features": float(n_features)}
        return ToolResult(
            summary=summary, findings=findings, metrics=metrics, charts=[fold_chart(result[metric], metric)]
        )


def about_rows(data: Dataset, findings: dict[str, Any]) -> str:
    """Sentences on the classes (counted into ``findings``) and on the rows left out for want of a target."""
    said = ""
    if data.task == "classification":
        counts = data.y.value_counts().sort_index()
        findings["class_counts"] = {str(k): int(v) for k, v in counts.items()}
        said += imbalance_note(counts)
    if data.n_unlabelled:
        said += f" {data.n_unlabelled} rows with no target value were left out."
    return said


def held_out_result(data: Dataset, scores: dict[str, float], metric: str, model: str, held: np.ndarray) -> ToolResult:
    """The score on the held-out rows of a model trained on the others."""
    n_scored, n_train, n_features = int(held.sum()), int((~held).sum()), data.X.shape[1]
    summary = (
        f"{METRIC_NAMES[metric]} of {MODEL_NAMES[model]} trained on {n_train} rows and scored on the "
        f"{n_scored} rows held out before any change ({n_features} features): {scores[metric]:.3f}."
    )
    findings: dict[str, Any] = {"metric": metric, "score": scores[metric], "n_rows": n_scored,
                                "n_train": n_train, "n_features": n_features, "scored_on": "held_out"}  # fmt: skip
    summary += about_rows(data, findings)
    metrics = {"score": scores[metric], **scores, "n_rows": float(n_scored), "n_train": float(n_train),
               "n_features": float(n_features)}  # fmt: skip
    chart = Chart(kind="bar", title=f"{METRIC_NAMES[metric]} on the held-out rows", labels=["held-out rows"],
                  values=[float(scores[metric])], x_label="rows", y_label=METRIC_NAMES[metric])  # fmt: skip
    return ToolResult(summary=summary, findings=findings, metrics=metrics, charts=[chart])
