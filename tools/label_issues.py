"""Find, and optionally fix, mislabelled rows with cleanlab's confident learning.

A model that never saw a row (K-fold cross-validation) predicts its class
probabilities; cleanlab compares them with the given labels, per class, and
flags the rows whose label the data does not support. Fixing is train-only:
labels of new data are never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from pydantic import Field
from sklearn.metrics import log_loss

from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.modeling import (
    Dataset,
    ModelKind,
    encode_labels,
    fold_progress,
    out_of_fold_proba,
    standard_model,
    training_data,
)

MAX_LISTED = 200
#: What happened to a flagged row; "over_limit" is a change held back by ``max_fraction``.
Action = Literal["relabelled", "dropped", "kept", "over_limit"]


class LabelIssuesParams(ToolParams):
    action: Literal["flag", "drop", "relabel"] = Field(
        "relabel",
        description="flag: only report suspicious labels; drop: remove those rows; "
        "relabel: replace the label by the model's suggestion when it is confident enough.",
    )
    min_confidence: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Relabel a row only when the model gives the suggested class at least this probability.",
    )
    drop_uncertain: bool = Field(
        False,
        description="When relabelling, drop the flagged rows whose suggestion is below min_confidence "
        "(otherwise they are kept as they are and only reported).",
    )
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"] = (
        Field("prune_by_noise_rate", description="cleanlab's rule for deciding which labels are issues.")
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds for the out-of-fold probabilities.")
    model: Literal["hist_gradient_boosting", "linear", "ensemble", "auto"] = Field(
        "ensemble",
        description="Model giving the probabilities: gradient boosting, logistic regression, "
        "the average of both, or auto: whichever of the three has the lowest out-of-fold log-loss "
        "on the given labels (the best calibrated on this table; costs no more than ensemble).",
    )
    max_fraction: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Never change (relabel or drop) more than this share of the labelled rows; "
        "the most confident changes are kept.",
    )


@dataclass(frozen=True)
class Suspects:
    """Flagged rows (positions among the labelled rows, most suspicious first) and their evidence."""

    positions: np.ndarray
    quality: np.ndarray  # cleanlab label quality score of every labelled row
    suggested: np.ndarray  # best class other than the given one, for every labelled row
    confidence: np.ndarray  # predicted probability of ``suggested``


def find_suspects(codes: np.ndarray, proba: np.ndarray, filter_by: str) -> Suspects:
    """Run cleanlab and, for every row, the most likely class other than its label."""
    positions = find_label_issues(
        codes, proba, filter_by=filter_by, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    others = proba.copy()
    others[np.arange(len(codes)), codes] = -1.0
    suggested = others.argmax(axis=1)
    return Suspects(
        positions=np.asarray(positions, dtype=np.int64),
        quality=get_label_quality_scores(codes, proba),
        suggested=suggested,
        confidence=proba[np.arange(len(codes)), suggested],
    )


def plan_actions(suspects: Suspects, params: LabelIssuesParams, n_rows: int) -> dict[int, Action]:
    """What happens to each flagged row (by position), within the ``max_fraction`` budget."""
    if params.action == "flag":
        return {int(p): "kept" for p in suspects.positions}
    wanted: dict[int, Action] = {}
    for p in suspects.positions:
        if params.action == "drop":
            wanted[int(p)] = "dropped"
        elif suspects.confidence[p] >= params.min_confidence:
            wanted[int(p)] = "relabelled"
        else:
            wanted[int(p)] = "dropped" if params.drop_uncertain else "kept"
    changes = [p for p, a in wanted.items() if a != "kept"]
    budget = int(np.floor(params.max_fraction * n_rows))
    if params.action == "relabel":  # keep the most confident suggestions
        changes.sort(key=lambda p: -suspects.confidence[p])
    for p in changes[budget:]:
        wanted[p] = "over_limit"
    return wanted


def apply_actions(
    table: pd.DataFrame, target: str, labelled: np.ndarray, actions: dict[int, Action], new_labels: pd.Index
) -> pd.DataFrame:
    """A copy of ``table`` with rows relabelled and dropped; ``labelled`` maps positions to table rows."""
    relabel = [p for p, a in actions.items() if a == "relabelled"]
    drop = [p for p, a in actions.items() if a == "dropped"]
    new = table.copy()
    if relabel:
        column = new[target].copy()
        column.iloc[labelled[relabel]] = new_labels.take(relabel).to_numpy()
        new[target] = column
    keep = np.setdiff1d(np.arange(len(new)), labelled[drop])
    return new.iloc[keep]


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a label or index value."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def class_counts(labels: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in labels.value_counts(sort=False).sort_index().items()}


def listed_rows(
    suspects: Suspects, actions: dict[int, Action], given: pd.Series, classes: pd.Index
) -> list[dict[str, Any]]:
    """The first flagged rows, most suspicious first, with their evidence."""
    rows = []
    for p in suspects.positions[:MAX_LISTED]:
        rows.append(
            {
                "row": _plain(given.index[p]),
                "given": _plain(given.iloc[p]),
                "suggested": _plain(classes[suspects.suggested[p]]),
                "quality": float(suspects.quality[p]),
                "confidence": float(suspects.confidence[p]),
                "action": actions[int(p)],
            }
        )
    return rows


def quality_chart(quality: np.ndarray) -> Chart:
    counts, edges = np.histogram(quality, bins=10, range=(0.0, 1.0))
    return Chart(
        kind="histogram",
        title="Label quality scores (low = suspicious)",
        labels=[f"{a:.1f}-{b:.1f}" for a, b in pairwise(edges)],
        values=[float(c) for c in counts],
        x_label="label quality score",
        y_label="rows",
    )


CANDIDATES: tuple[ModelKind, ...] = ("linear", "hist_gradient_boosting")


def model_probabilities(
    data: Dataset, params: LabelIssuesParams, ctx: ToolContext
) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold probabilities of the chosen model, and which model gave them (and why).

    ``auto`` fits the linear model and gradient boosting on the same folds, scores them and their
    average (what ``ensemble`` computes) by log-loss against the given labels, and keeps the lowest.
    Noisy labels add the same loss to every candidate, so the comparison still ranks how well each
    model's probabilities fit the data; confident learning relies on exactly that calibration.
    """
    if params.model != "auto":
        model = standard_model("classification", ctx.seed, kind=params.model)
        report = fold_progress(ctx, 0.0, 0.9, "out-of-fold probabilities")
        proba = out_of_fold_proba(data.X, data.y, model, params.folds, ctx.seed, report)
        return proba, {"model": params.model}
    found: dict[str, np.ndarray] = {}
    step = 0.9 / len(CANDIDATES)
    for i, kind in enumerate(CANDIDATES):
        report = fold_progress(ctx, i * step, (i + 1) * step, f"out-of-fold probabilities ({kind})")
        model = standard_model("classification", ctx.seed, kind=kind)
        found[kind] = out_of_fold_proba(data.X, data.y, model, params.folds, ctx.seed, report)
    found["ensemble"] = np.mean([found[k] for k in CANDIDATES], axis=0)
    codes, _ = encode_labels(data.y)
    losses = {k: float(log_loss(codes, p, labels=np.arange(p.shape[1]))) for k, p in found.items()}
    best = min(losses, key=lambda k: losses[k])
    return found[best], {"model": best, "log_loss": losses}


def describe(data: Dataset, accuracy: float, findings: dict[str, Any], params: LabelIssuesParams) -> str:
    """The one-paragraph summary for a domain expert."""
    summary = (
        f"A cross-validated model agreed with {accuracy:.0%} of the {len(data.y)} labels in "
        f"{data.y.name!r} ({findings['model']} model); cleanlab flagged {findings['flagged']} rows "
        "as likely mislabelled."
    )
    if params.action == "flag":
        summary += " Nothing was changed (flag only)."
    else:
        summary += f" Relabelled {findings['relabelled']} and dropped {findings['dropped']}."
    kept = sum(1 for r in findings["rows"] if r["action"] == "kept")
    if kept and params.action == "relabel":
        summary += f" {kept} were kept: the model was less than {params.min_confidence:.0%} sure of another label."
    if findings["over_limit"]:
        summary += (
            f" {findings['over_limit']} more changes were held back by the limit of "
            f"{params.max_fraction:.0%} of the rows (max_fraction)."
        )
    if data.n_unlabelled:
        summary += f" {data.n_unlabelled} rows with no label were left untouched."
    return summary


class LabelIssues(Tool):
    name = "label_issues"
    description = (
        "Find rows whose class label looks wrong (cleanlab confident learning on cross-validated "
        "model probabilities) and flag, drop or relabel them. Classification targets only; "
        "applies to the training data only."
    )
    category = "label_quality"
    mutates = True
    train_only = True
    Params = LabelIssuesParams

    def run(self, table: pd.DataFrame, params: LabelIssuesParams, ctx: ToolContext) -> ToolResult:
        data = training_data(table, ctx)
        if data.task != "classification":
            raise ValueError(
                f"label_issues works on classification targets; {ctx.target!r} is a regression target "
                "(use outliers to look for suspicious target values instead)"
            )
        codes, classes = encode_labels(data.y)
        proba, model_choice = model_probabilities(data, params, ctx)
        suspects = find_suspects(codes, proba, params.filter_by)
        actions = plan_actions(suspects, params, len(codes))
        labelled = np.flatnonzero(table[data.y.name].notna().to_numpy())
        new = apply_actions(table, data.y.name, labelled, actions, classes.take(suspects.suggested))
        findings = {
            "flagged": len(suspects.positions),
            "relabelled": sum(1 for a in actions.values() if a == "relabelled"),
            "dropped": sum(1 for a in actions.values() if a == "dropped"),
            "over_limit": sum(1 for a in actions.values() if a == "over_limit"),
            "rows": listed_rows(suspects, actions, data.y, classes),
            "class_counts_before": class_counts(table[data.y.name]),
            "class_counts_after": class_counts(new[data.y.name]),
            **model_choice,
        }
        accuracy = float(np.mean(proba.argmax(axis=1) == codes))
        metrics = {k: float(findings[k]) for k in ("flagged", "relabelled", "dropped")}
        metrics |= {"oof_accuracy": accuracy, "unlabelled_rows": float(data.n_unlabelled)}
        ctx.progress(1.0, "done")
        return ToolResult(
            summary=describe(data, accuracy, findings, params),
            table=new,
            findings=findings,
            metrics=metrics,
            charts=[quality_chart(suspects.quality)],
        )
