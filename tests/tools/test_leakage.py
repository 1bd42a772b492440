"""leakage: a feature that gives the target away is a suspect; an honest strong one is not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tools.base import ToolContext, ToolResult
from tools.leakage import Leakage


def _run(table: pd.DataFrame, ctx: ToolContext, **params: object) -> ToolResult:
    return Leakage().run(table, Leakage.parse_params(params), ctx)


def _suspects(result: ToolResult) -> dict[str, dict[str, object]]:
    return {s["column"]: s for s in result.findings["suspects"]}


@pytest.fixture
def binary() -> pd.DataFrame:
    """``honest`` predicts ``outcome`` with AUROC about 0.85; ``copy`` is the outcome with 1% flipped."""
    rng = np.random.default_rng(0)
    n = 800
    honest = rng.normal(size=n)
    outcome = (honest + rng.normal(0, 0.9, n) > 0).astype(int)
    copy = outcome.astype(float)
    flipped = rng.choice(n, n // 100, replace=False)
    copy[flipped] = 1 - copy[flipped]
    return pd.DataFrame(
        {
            "record_id": np.arange(n),
            "honest": honest,
            "copy": copy + rng.normal(0, 0.05, n),
            "noise": rng.normal(size=n),
            "city": rng.choice(["Leeds", "York", "Hull"], n),
            "outcome": outcome,
        }
    )


def test_a_noisy_copy_of_the_target_is_found_and_an_honest_predictor_is_not(binary: pd.DataFrame) -> None:
    assert 0.8 < roc_auc_score(binary["outcome"], binary["honest"]) < 0.9
    result = _run(binary, ToolContext(target="outcome", id_columns=["record_id"]))
    suspects = _suspects(result)
    assert set(suspects) == {"copy"}
    assert suspects["copy"]["recommendation"] == "drop"
    assert suspects["copy"]["metric"] == "roc_auc"
    assert suspects["copy"]["score"] >= 0.97
    scores = result.findings["scores"]
    assert 0.75 < scores["honest"] < 0.9
    assert scores["noise"] < 0.6
    assert set(scores) == {"honest", "copy", "noise", "city"}  # neither id nor target is scored
    assert "'copy'" in result.summary
    json.dumps(result.findings)


@pytest.mark.parametrize("n", [80, 500])
def test_a_leaked_transform_of_a_numeric_target_is_found(n: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    price = 50 + 10 * x + rng.normal(0, 8, n)
    table = pd.DataFrame(
        {
            "size": x,
            "price_eur": 0.92 * price + 3 + rng.normal(0, 0.2, n),  # a unit conversion
            "log_cost": np.log(np.abs(price) + 1) + rng.normal(0, 0.005, n),  # monotone, not linear
            "noise": rng.normal(size=n),
        }
    )
    table["price"] = price
    result = _run(table, ToolContext(target="price", task="regression"))
    assert set(_suspects(result)) == {"price_eur", "log_cost"}
    assert result.findings["metric"] == "r2"
    assert result.findings["scores"]["price_eur"] >= 0.97
    assert 0.2 < result.findings["scores"]["size"] < 0.8  # honest: true R² is 0.61


def test_a_category_that_maps_one_to_one_onto_the_target_is_found() -> None:
    rng = np.random.default_rng(2)
    n = 300
    label = rng.choice(["low", "mid", "high"], n)
    table = pd.DataFrame(
        {
            "code": pd.Series(label).map({"low": "L1", "mid": "M2", "high": "H3"}),
            "x": rng.normal(size=n),
            "grade": label,
        }
    )
    result = _run(table, ToolContext(target="grade"))
    suspect = _suspects(result)["code"]
    assert "one-to-one" in suspect["reason"]
    assert suspect["metric"] == "balanced_accuracy"  # several classes
    assert set(_suspects(result)) == {"code"}


def test_with_few_rows_a_name_mentioning_the_target_is_flagged_for_review() -> None:
    rng = np.random.default_rng(3)
    n = 40
    table = pd.DataFrame(
        {"outcome_score": rng.normal(size=n), "age": rng.normal(50, 10, n), "outcome": rng.integers(0, 2, n)}
    )
    suspects = _suspects(_run(table, ToolContext(target="outcome")))
    assert set(suspects) == {"outcome_score"}
    assert suspects["outcome_score"]["recommendation"] == "review"

    bigger = pd.concat([table] * 5, ignore_index=True)
    bigger["outcome_score"] = rng.normal(size=len(bigger))
    assert _suspects(_run(bigger, ToolContext(target="outcome"))) == {}


def test_max_features_limits_the_scored_columns(binary: pd.DataFrame) -> None:
    result = _run(binary, ToolContext(target="outcome", id_columns=["record_id"]), max_features=2)
    assert list(result.findings["scores"]) == ["honest", "copy"]
    assert result.findings["unscored"] == ["noise", "city"]
    assert "2 further features were not scored" in result.summary


def test_rows_without_a_target_are_left_out(binary: pd.DataFrame) -> None:
    table = binary.copy()
    table["outcome"] = table["outcome"].astype(float)
    table.loc[: len(table) // 2, "outcome"] = np.nan
    result = _run(table, ToolContext(target="outcome", id_columns=["record_id"]))
    assert set(_suspects(result)) == {"copy"}


def test_a_missing_target_column_is_a_clear_error(binary: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'label' is not in the table"):
        _run(binary, ToolContext(target="label"))
