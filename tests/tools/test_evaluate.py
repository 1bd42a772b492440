"""evaluate: the cross-validated downstream score tracks the quality of the data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from tests.conftest import messy_table
from tools.base import ToolContext, ToolResult
from tools.evaluate import Evaluate


def _run(table: pd.DataFrame, ctx: ToolContext, **params: object) -> ToolResult:
    return Evaluate().run(table, Evaluate.parse_params(params), ctx)


def _classes(n: int = 500, weights: list[float] | None = None, seed: int = 0) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=n,
        n_features=6,
        n_informative=4,
        class_sep=1.5,
        flip_y=0,
        weights=weights,
        random_state=seed,
    )
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    table["label"] = np.where(y == 1, "yes", "no")
    return table


def test_flipped_labels_lower_the_score() -> None:
    clean = _classes()
    noisy = clean.copy()
    rows = np.random.default_rng(0).choice(len(noisy), int(0.3 * len(noisy)), replace=False)
    noisy.loc[rows, "label"] = noisy.loc[rows, "label"].map({"yes": "no", "no": "yes"})
    ctx = ToolContext(target="label")
    good = _run(clean, ctx, folds=3)
    bad = _run(noisy, ctx, folds=3)
    assert good.findings["metric"] == "roc_auc"
    assert good.metrics["score"] > 0.9
    assert good.metrics["score"] > bad.metrics["score"] + 0.15
    assert good.findings["n_rows"] == 500 and good.findings["n_features"] == 6
    assert good.findings["class_counts"] == clean["label"].value_counts().sort_index().to_dict()
    assert len(good.findings["fold_scores"]) == 3
    assert good.findings["score"] == pytest.approx(np.mean(good.findings["fold_scores"]))
    json.dumps(good.findings)


def test_regression_reports_r2_and_mae() -> None:
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400), "c": rng.normal(size=400)})
    table["y"] = 3 * table["a"] - 2 * table["b"] + rng.normal(0, 0.5, 400)
    result = _run(table, ToolContext(target="y"), folds=3, model="linear")
    assert result.findings["metric"] == "r2"
    assert result.metrics["score"] == result.metrics["r2"] > 0.9
    assert 0.3 < result.metrics["mae"] < 0.5  # the noise has sd 0.5
    assert "class_counts" not in result.findings
    assert "R²" in result.summary


def test_a_chosen_metric_is_reported_and_a_wrong_one_refused() -> None:
    table = _classes(300)
    result = _run(table, ToolContext(target="label"), folds=3, metric="balanced_accuracy", model="linear")
    assert result.findings["metric"] == "balanced_accuracy"
    assert result.metrics["score"] == result.metrics["balanced_accuracy"]
    with pytest.raises(ValueError, match="'r2' does not fit a classification target"):
        _run(table, ToolContext(target="label"), metric="r2")


def test_a_table_without_usable_features_is_a_clear_error() -> None:
    table = messy_table(100)[["record_id", "note", "site", "outcome"]]
    with pytest.raises(ValueError, match="no usable feature column to learn 'outcome'"):
        _run(table, ToolContext(target="outcome", id_columns=["record_id"]))


def test_identifiers_are_never_features() -> None:
    table = _classes(300)
    table["row_id"] = np.where(table["label"] == "yes", 1000, 0) + np.arange(300)  # would leak the label
    with_id = _run(table, ToolContext(target="label", id_columns=["row_id"]), folds=3, model="linear")
    without = _run(table.drop(columns="row_id"), ToolContext(target="label"), folds=3, model="linear")
    assert with_id.findings == without.findings


def test_imbalance_is_called_out() -> None:
    skewed = _run(_classes(600, weights=[0.94]), ToolContext(target="label"), folds=3, model="linear")
    balanced = _run(_classes(600), ToolContext(target="label"), folds=3, model="linear")
    assert "imbalanced" in skewed.summary and "'yes'" in skewed.summary
    assert "imbalanced" not in balanced.summary


def test_rows_without_a_target_are_left_out_and_the_run_is_deterministic() -> None:
    table = _classes(300)
    table.loc[:19, "label"] = None
    ctx = ToolContext(target="label", seed=4)
    first = _run(table, ctx, folds=3)
    assert first.findings["n_rows"] == 280
    assert "20 rows with no target value" in first.summary
    assert _run(table, ctx, folds=3).findings == first.findings
