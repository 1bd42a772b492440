"""The shared modelling helpers: feature matrix, task, folds, out-of-fold probabilities, scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from tests.conftest import messy_table
from tools._frame import infer_kind
from tools.base import ToolContext, infer_task
from tools.modeling import (
    MAX_LEVELS,
    cross_val_score,
    encode_labels,
    feature_matrix,
    fold_count,
    out_of_fold_proba,
    standard_model,
    training_data,
)


def _separable(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = pd.Series(np.where(X["a"] + 0.5 * X["b"] > 0, "yes", "no"), name="y")
    return X, y


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.5, 2.0, np.nan, 4.0], "numeric"),
        ([True, False, True, True], "boolean"),
        (pd.to_datetime(["2024-01-01", "2024-02-01", None, "2024-03-01"]), "datetime"),
        (["a", "b", "a", None], "categorical"),
        (["x", "x", None, "x"], "constant"),
        ([f"free text number {i}" for i in range(60)], "text"),
    ],
)
def test_infer_kind(values: object, expected: str) -> None:
    assert infer_kind(pd.Series(values)) == expected


def test_feature_matrix_encodes_each_type_and_skips_ids_target_text() -> None:
    table = messy_table(120, seed=0)
    table["visit"] = pd.date_range("2024-01-01", periods=120, freq="D")
    table["flag"] = np.arange(120) % 3 == 0
    ctx = ToolContext(target="outcome", id_columns=["record_id"], column_types={"age": "numeric"})
    X = feature_matrix(table, ctx)

    assert list(X.columns) == ["age", "weight", "smoker", "city", "visit", "flag"]
    assert X.index.equals(table.index)
    assert X["age"].dtype == "float64"
    assert X["age"].isna().sum() == (table["age"] == "?").sum()  # "?" is missing, not a category
    assert X["weight"].isna().sum() == table["weight"].isna().sum()  # NaN kept for the model
    assert isinstance(X["city"].dtype, pd.CategoricalDtype)
    assert set(X["city"].cat.categories) == {"Leeds", "York", "Hull", "Bath"}
    assert X["visit"].diff().dropna().eq(1.0).all()  # days
    assert X["flag"].tolist() == table["flag"].astype(float).tolist()


def test_feature_matrix_caps_the_number_of_levels() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"code": [f"c{i}" for i in rng.integers(0, 400, 2000)], "y": rng.integers(0, 2, 2000)})
    X = feature_matrix(table, ToolContext(target="y", column_types={"code": "categorical"}))
    assert len(X["code"].cat.categories) == MAX_LEVELS + 1
    assert "(other)" in X["code"].cat.categories


def test_feature_matrix_without_usable_columns_says_why() -> None:
    table = messy_table(80)[["record_id", "note", "site", "outcome"]]
    with pytest.raises(ValueError, match=r"no usable feature.*note \(free text\).*site \(constant\)"):
        feature_matrix(table, ToolContext(target="outcome", id_columns=["record_id"]))


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([0, 1, 2, 1, 0], "classification"),
        ([True, False, True], "classification"),
        (np.linspace(0, 1, 50), "regression"),
        (list(range(40)), "regression"),
    ],
)
def test_infer_task(values: object, task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_training_data_leaves_out_rows_without_a_target() -> None:
    table = messy_table(100)
    table.loc[[3, 7, 11], "outcome"] = None
    data = training_data(table, ToolContext(target="outcome", id_columns=["record_id"]))
    assert data.n_unlabelled == 3
    assert data.task == "classification"
    assert not data.X.index.isin([3, 7, 11]).any()
    assert data.X.index.equals(data.y.index)
    assert data.skipped == {"note": "free text", "site": "constant"}


def test_training_data_for_regression_keeps_the_target_name() -> None:
    table = pd.DataFrame({"x": np.arange(60.0), "price": np.linspace(1, 90, 60)})
    table.loc[4, "price"] = np.nan
    data = training_data(table, ToolContext(target="price"))
    assert data.task == "regression"
    assert data.y.name == "price" and data.y.dtype == "float64" and len(data.y) == 59
    with pytest.raises(ValueError, match="'city' is not numeric"):
        training_data(messy_table(50), ToolContext(target="city", task="regression"))


@pytest.mark.parametrize(("target", "message"), [(None, "needs a target"), ("nope", "'nope' is not in the table")])
def test_training_data_rejects_a_bad_target(target: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        training_data(messy_table(50), ToolContext(target=target))


def test_fold_count_follows_the_rarest_class() -> None:
    labels = pd.Series(["a"] * 50 + ["b"] * 3)
    assert fold_count(labels, 5, "classification") == 3
    assert fold_count(pd.Series(["a"] * 50 + ["b"] * 30), 5, "classification") == 5
    with pytest.raises(ValueError, match=r"class\(es\) rare have a single labelled row"):
        fold_count(pd.Series(["a"] * 50 + ["rare"]), 5, "classification")
    with pytest.raises(ValueError, match="single class"):
        fold_count(pd.Series(["a"] * 10), 5, "classification")


def test_out_of_fold_proba_never_predicts_a_row_it_was_trained_on() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400)})
    y = pd.Series(rng.choice(["p", "q"], 400))  # labels are noise
    proba = out_of_fold_proba(X, y, KNeighborsClassifier(n_neighbors=1), folds=5, seed=0)
    codes, _ = encode_labels(y)
    assert proba.shape == (400, 2)
    # A 1-NN model is always right on its own training rows; out of fold it is a coin toss.
    assert 0.4 < np.mean(proba.argmax(axis=1) == codes) < 0.6


def test_out_of_fold_proba_reports_progress_and_learns() -> None:
    X, y = _separable()
    seen: list[float] = []
    model = standard_model("classification", seed=0, fast=True)
    proba = out_of_fold_proba(X, y, model, folds=4, seed=0, progress=lambda f, m: seen.append(f))
    assert seen == [0.25, 0.5, 0.75, 1.0]
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(encode_labels(y)[0], proba[:, 1]) > 0.95


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "linear", "ensemble"])
def test_standard_models_learn_from_a_mixed_table_with_missing_cells(kind: str) -> None:
    table = messy_table(300, seed=0)
    ctx = ToolContext(target="outcome", id_columns=["record_id"], column_types={"age": "numeric"})
    data = training_data(table, ctx)
    model = standard_model("classification", seed=0, fast=True, kind=kind)
    scores = cross_val_score(data.X, data.y, model, "classification", folds=3, seed=0)
    assert scores["roc_auc"].mean > 0.75
    assert len(scores["roc_auc"].folds) == 3


def test_standard_model_kinds() -> None:
    hgb = standard_model("classification", seed=3)
    assert isinstance(hgb, HistGradientBoostingClassifier)
    assert hgb.random_state == 3 and hgb.early_stopping is False
    assert hgb.categorical_features == "from_dtype"
    assert standard_model("classification", seed=0, fast=True).max_iter < hgb.max_iter
    assert isinstance(standard_model("classification", seed=0, kind="ensemble"), VotingClassifier)


def test_cross_val_score_classification_metrics_are_deterministic() -> None:
    X, y = _separable()
    model = standard_model("classification", seed=0, kind="linear")
    first = cross_val_score(X, y, model, "classification", folds=5, seed=1)
    again = cross_val_score(X, y, model, "classification", folds=5, seed=1)
    assert set(first) == {"roc_auc", "accuracy", "balanced_accuracy"}
    assert first == again
    assert first["accuracy"].mean > 0.9
    assert first["accuracy"].mean == pytest.approx(np.mean(first["accuracy"].folds))


def test_cross_val_score_multiclass_and_regression() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    three = pd.Series(np.digitize(X["a"], [-0.5, 0.5]))
    multi = cross_val_score(X, three, standard_model("classification", 0, kind="linear"), "classification", 3, 0)
    assert multi["roc_auc"].mean > 0.9

    y = pd.Series(2 * X["a"] - X["b"] + rng.normal(0, 0.1, 300))
    reg = cross_val_score(X, y, standard_model("regression", 0, kind="linear"), "regression", 3, 0)
    assert set(reg) == {"r2", "mae"}
    assert reg["r2"].mean > 0.95
    assert reg["mae"].mean < 0.2


def test_linear_model_chooses_its_regularisation_and_copes_with_a_tiny_class() -> None:
    X, y = _separable(120)
    fitted = standard_model("classification", seed=0, kind="linear").fit(X, y)
    logistic = fitted[-1].model_
    assert logistic.C_[0] in fitted[-1].model_.Cs_  # chosen by inner cross-validation
    tiny = y.copy()
    tiny.iloc[0] = "rare"  # a single row of a class: no inner folds, plain logistic regression
    proba = standard_model("classification", seed=0, kind="linear").fit(X, tiny).predict_proba(X)
    assert proba.shape == (120, 3)
