"""Find, and optionally fix, mislabelled rows with cleanlab's confident learning.

A model that never saw a row (K-fold cross-validation) predicts its class
probabilities; cleanlab compares them with the given labels, per class, and
flags the rows whose label the data does not support. Fixing is train-only:
labels of new data are never rewritten.

Confident learning alone cannot tell a flipped label from a hard one: on a
target that a model gets right 60% of the time it flags a third of the rows,
and dropping them only removes what the model finds hard. So the tool first
asks whether the table shows the mark that flips leave: a flipped row looks
like a confident member of another class, so the given labels surprise the
out-of-fold model in its confident regions more than its own probabilities
predict. The surprise counted is how far ``-log p(given label)`` goes beyond
``-log 0.1``, summed over rows; were the labels drawn from the model's
probabilities (hard cases, no flips), its mean and variance follow from them,
and the excess is a z-score (``Evidence``). Hard rows sit near the boundary and
leave no excess. Below ``MIN_Z`` flagged rows are only reported; above it the
tool changes at most cleanlab's own estimate of the number of wrong labels,
most suspicious first. The probabilities weighed are the average of the linear
model and gradient boosting when both were fitted (``auto``, ``ensemble``):
gradient boosting alone is overconfident on any hard table, the linear model
alone too smooth to be surprised; the average separated flipped from sound
tables in every case measured (z 2.9–8.3 with 10% flips, at most 1.6 without).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd
from cleanlab.count import num_label_issues
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from pydantic import Field
from sklearn.metrics import log_loss

from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.holdout import changeable
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
#: What happened to a flagged row; "over_limit" is a change held back by ``max_fraction`` or by the estimate
#: of wrong labels; "hard" is a row left alone because the table shows no sign of flipped labels.
Action = Literal["relabelled", "dropped", "kept", "over_limit", "hard"]
#: A given label the out-of-fold model gives less than this probability surprises it (module docstring).
CONTRADICTION = 0.1
#: Flips are evident when the surprise exceeds what the model's probabilities predict by this many deviations.
MIN_Z = 2.0


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
    require_evidence: bool = Field(
        True,
        description="Change rows only when the table shows signs of flipped labels (more rows whose label the "
        "model finds under 5% likely than its own probabilities predict), and never more rows than cleanlab's "
        "estimate of wrong labels; without such signs flagged rows are hard cases and are only reported. "
        "False: act on every flagged row, as the other settings say.",
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


@dataclass(frozen=True)
class Evidence:
    """Whether the table shows the mark of flipped labels (see the module docstring)."""

    contradicted: int  # labelled rows whose given label has out-of-fold probability < CONTRADICTION
    expected: float  # how many the model's own probabilities predict
    z: float  # the excess surprise in standard deviations
    estimate: int  # cleanlab's estimate of the number of wrong labels

    @property
    def flips(self) -> bool:
        return self.z >= MIN_Z

    def as_dict(self) -> dict[str, Any]:
        return {"contradicted": self.contradicted, "expected": round(self.expected, 2), "z": round(self.z, 2),
                "estimated_wrong": self.estimate, "flips_evident": self.flips}  # fmt: skip


def weigh_evidence(codes: np.ndarray, proba: np.ndarray) -> Evidence:
    """The surprise of the given labels in the model's confident regions against what its probabilities
    predict, were every label drawn from them."""
    p = np.clip(proba, 1e-6, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    beyond = np.maximum(-np.log(p) + np.log(CONTRADICTION), 0.0)  # surprise past -log(CONTRADICTION)
    rows = np.arange(len(codes))
    mean = (p * beyond).sum(axis=1)
    variance = float(((p * beyond**2).sum(axis=1) - mean**2).sum())
    excess = float(beyond[rows, codes].sum() - mean.sum())
    z = excess / np.sqrt(variance) if variance > 1e-12 else 0.0
    contradicted = int((p[rows, codes] < CONTRADICTION).sum())
    expected = float(p[p < CONTRADICTION].sum())
    return Evidence(contradicted, expected, float(z), int(num_label_issues(codes, proba)))


def change_budget(params: LabelIssuesParams, n_rows: int, evidence: Evidence, reach: float = 1.0) -> tuple[int, str]:
    """The most rows the step may change among the ``reach`` share of the ``n_rows`` it may change, and what
    sets that limit."""
    share = int(np.floor(params.max_fraction * n_rows * reach))
    estimate = round(evidence.estimate * reach)
    if params.require_evidence and estimate < share:
        return estimate, f"{estimate} rows, cleanlab's estimate of the wrong labels among the rows it may change"
    return share, f"{params.max_fraction:.0%} of the rows (max_fraction)"


def plan_actions(
    suspects: Suspects, params: LabelIssuesParams, n_rows: int, evidence: Evidence, reach: float = 1.0
) -> dict[int, Action]:
    """What happens to each flagged row (by position), within the ``max_fraction`` budget and, when
    evidence is required, within cleanlab's estimate of wrong labels."""
    if params.action == "flag":
        return {int(p): "kept" for p in suspects.positions}
    if params.require_evidence and not evidence.flips:
        return {int(p): "hard" for p in suspects.positions}
    wanted: dict[int, Action] = {}
    for p in suspects.positions:
        if params.action == "drop":
            wanted[int(p)] = "dropped"
        elif suspects.confidence[p] >= params.min_confidence:
            wanted[int(p)] = "relabelled"
        else:
            wanted[int(p)] = "dropped" if params.drop_uncertain else "kept"
    changes = [p for p, a in wanted.items() if a != "kept"]
    budget, _ = change_budget(params, n_rows, evidence, reach)
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
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Out-of-fold probabilities of the chosen model, those the evidence is weighed on (the two models'
    average when both were fitted), and which model gave them (and why).

    ``auto`` fits the linear model and gradient boosting on the same folds, scores them and their
    average (what ``ensemble`` computes) by log-loss against the given labels, and keeps the lowest.
    Noisy labels add the same loss to every candidate, so the comparison still ranks how well each
    model's probabilities fit the data; confident learning relies on exactly that calibration.
    """
    if params.model != "auto":
        model = standard_model("classification", ctx.seed, kind=params.model)
        report = fold_progress(ctx, 0.0, 0.9, "out-of-fold probabilities")
        proba = out_of_fold_proba(data.X, data.y, model, params.folds, ctx.seed, report)
        return proba, proba, {"model": params.model}
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
    return found[best], found["ensemble"], {"model": best, "log_loss": losses}


def evidence_sentence(evidence: Evidence) -> str:
    """Which case applies, with the numbers."""
    counts = (
        f"{evidence.contradicted} rows carry a label the model gives under {CONTRADICTION:.0%}, where its own "
        f"probabilities expect {evidence.expected:.1f}"
    )
    if evidence.flips:
        return (
            f" Signs of flipped labels: {counts} (a surprise {evidence.z:.1f} standard deviations above it); "
            f"cleanlab estimates {evidence.estimate} wrong labels, so at most that many rows change."
        )
    return (
        f" No sign of flipped labels: {counts} (a surprise {evidence.z:.1f} standard deviations from it, under "
        f"{MIN_Z:g}), so the flagged rows are hard cases near the class boundary, "
        "not evident mistakes, and none was changed (require_evidence: set it to false to act anyway)."
    )


def describe(
    data: Dataset, accuracy: float, findings: dict[str, Any], params: LabelIssuesParams, evidence: Evidence
) -> str:
    """The one-paragraph summary for a domain expert."""
    summary = (
        f"A cross-validated model agreed with {accuracy:.0%} of the {len(data.y)} labels in "
        f"{data.y.name!r} ({findings['model']} model); cleanlab flagged {findings['flagged']} rows "
        "as likely mislabelled."
    )
    if params.action == "flag":
        return summary + " Nothing was changed (flag only)." + _unlabelled(data, findings["out_of_reach"])
    if params.require_evidence:
        summary += evidence_sentence(evidence)
    summary += f" Relabelled {findings['relabelled']} and dropped {findings['dropped']}."
    kept = sum(1 for r in findings["rows"] if r["action"] == "kept")
    if kept and params.action == "relabel":
        summary += f" {kept} were kept: the model was less than {params.min_confidence:.0%} sure of another label."
    if findings["over_limit"]:
        summary += f" {findings['over_limit']} more changes were held back by the limit of {findings['limit']}."
    return summary + _unlabelled(data, findings["out_of_reach"])


def _unlabelled(data: Dataset, out_of_reach: int = 0) -> str:
    """What the step left alone: rows without a label, and rows outside its scope (``tools.holdout``)."""
    said = f" {data.n_unlabelled} rows with no label were left untouched." if data.n_unlabelled else ""
    if out_of_reach:
        said += f" The model learnt from every label, but {out_of_reach} rows were out of this step's reach."
    return said


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
    sees_held_out = True  # learns from every label, changes only the rows in its scope (ToolContext.holdout_scope)
    Params = LabelIssuesParams

    def run(self, table: pd.DataFrame, params: LabelIssuesParams, ctx: ToolContext) -> ToolResult:
        data = training_data(table, ctx)
        if data.task != "classification":
            raise ValueError(
                f"label_issues works on classification targets; {ctx.target!r} is a regression target "
                "(use outliers to look for suspicious target values instead)"
            )
        codes, classes = encode_labels(data.y)
        proba, weighed, model_choice = model_probabilities(data, params, ctx)
        suspects = find_suspects(codes, proba, params.filter_by)
        evidence = weigh_evidence(codes, weighed)
        labelled = np.flatnonzero(table[data.y.name].notna().to_numpy())
        reach = changeable(table, ctx.target, ctx.holdout, ctx.seed, ctx.holdout_scope)[labelled]
        suspects = replace(suspects, positions=suspects.positions[reach[suspects.positions]])
        share = float(reach.mean()) if ctx.holdout_scope == "training" else 1.0  # held-out rows: the flips left
        actions = plan_actions(suspects, params, len(codes), evidence, share)
        new = apply_actions(table, data.y.name, labelled, actions, classes.take(suspects.suggested))
        findings = {
            "flagged": len(suspects.positions),
            "relabelled": sum(1 for a in actions.values() if a == "relabelled"),
            "dropped": sum(1 for a in actions.values() if a == "dropped"),
            "over_limit": sum(1 for a in actions.values() if a == "over_limit"),
            "hard": sum(1 for a in actions.values() if a == "hard"),
            "limit": change_budget(params, len(codes), evidence, share)[1],
            "out_of_reach": int((~reach).sum()),
            "evidence": evidence.as_dict(),
            "rows": listed_rows(suspects, actions, data.y, classes),
            "class_counts_before": class_counts(table[data.y.name]),
            "class_counts_after": class_counts(new[data.y.name]),
            **model_choice,
        }
        accuracy = float(np.mean(proba.argmax(axis=1) == codes))
        metrics = {k: float(findings[k]) for k in ("flagged", "relabelled", "dropped", "hard")}
        metrics |= {"oof_accuracy": accuracy, "unlabelled_rows": float(data.n_unlabelled)}
        ctx.progress(1.0, "done")
        return ToolResult(
            summary=describe(data, accuracy, findings, params, evidence),
            table=new,
            findings=findings,
            metrics=metrics,
            charts=[quality_chart(suspects.quality)],
        )
