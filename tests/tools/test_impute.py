"""The impute tool: which fill it picks, what it never touches, and that reapply replays it."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import KNNImputer

from tools.base import ToolContext, ToolResult
from tools.impute import Impute, fit_iterative, iterative_state, reapply_impute

CTX = ToolContext(target="outcome", id_columns=["pid"], seed=0)


def body_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """height and weight strongly correlated; noise uncorrelated with both; a target and an id."""
    rng = np.random.default_rng(seed)
    height = rng.normal(170, 10, n)
    weight = 0.9 * (height - 170) + 72 + rng.normal(0, 3, n)
    return pd.DataFrame(
        {
            "pid": [f"P{i:04d}" for i in range(n)],
            "height": height,
            "weight": weight,
            "noise": rng.normal(0, 1, n),
            "city": rng.choice(["Leeds", "York", "Hull"], n, p=[0.6, 0.3, 0.1]),
            "outcome": rng.normal(0, 1, n),
        }
    )


def knock_out(table: pd.DataFrame, column: str, fraction: float, seed: int) -> pd.DataFrame:
    """A copy of ``table`` with ``fraction`` of ``column`` set missing at random rows."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    rows = rng.choice(len(out), int(len(out) * fraction), replace=False)
    out.loc[out.index[rows], column] = None
    return out


def run(table: pd.DataFrame, ctx: ToolContext = CTX, **params: object) -> ToolResult:
    return Impute().run(table, Impute.parse_params(params), ctx)


def by_column(result: ToolResult) -> dict[str, dict]:
    return {c["column"]: c for c in result.findings["columns"]}


def test_auto_beats_the_median_on_a_correlated_column() -> None:
    truth = body_table()
    holed = knock_out(truth, "weight", 0.2, seed=1)
    missing = holed["weight"].isna()
    auto = run(holed)
    simple = run(holed, method="simple")
    assert by_column(auto)["weight"]["method"] == "iterative"
    assert "height" in by_column(auto)["weight"]["reason"]
    error_auto = (auto.table.loc[missing, "weight"] - truth.loc[missing, "weight"]).abs().mean()
    error_median = (simple.table.loc[missing, "weight"] - truth.loc[missing, "weight"]).abs().mean()
    assert error_auto < 0.5 * error_median
    assert auto.table["weight"].notna().all()
    pd.testing.assert_series_equal(auto.table.loc[~missing, "weight"], truth.loc[~missing, "weight"])


def test_auto_uses_the_median_for_an_uncorrelated_column() -> None:
    holed = knock_out(body_table(), "noise", 0.1, seed=2)
    result = run(holed)
    choice = by_column(result)["noise"]
    assert choice["method"] == "median"
    assert choice["value"] == pytest.approx(holed["noise"].median())
    filled = result.table.loc[holed["noise"].isna(), "noise"]
    assert (filled == choice["value"]).all()


def test_categorical_gets_the_missing_level_or_the_mode_when_asked() -> None:
    holed = knock_out(body_table(), "city", 0.1, seed=3)
    result = run(holed)
    assert by_column(result)["city"] == {
        "column": "city",
        "method": "missing_level",
        "reason": "categorical column: the gap is kept as a level of its own, not guessed",
        "filled": 60,
        "value": "missing",
        "indicator": None,
        "indicator_reason": None,
    }
    assert (result.table.loc[holed["city"].isna(), "city"] == "missing").all()
    mode = run(holed, categorical="mode")
    assert by_column(mode)["city"]["method"] == "mode" and by_column(mode)["city"]["value"] == "Leeds"
    assert (mode.table.loc[holed["city"].isna(), "city"] == "Leeds").all()


def test_target_and_ids_are_never_touched() -> None:
    holed = knock_out(knock_out(body_table(), "outcome", 0.1, seed=4), "weight", 0.1, seed=5)
    holed.loc[[3, 7], "pid"] = None
    result = run(holed)
    pd.testing.assert_series_equal(result.table["outcome"], holed["outcome"])
    pd.testing.assert_series_equal(result.table["pid"], holed["pid"])
    assert set(by_column(result)) == {"weight"}
    for column in ("outcome", "pid"):
        with pytest.raises(ValueError, match=column):
            run(holed, columns=[column])


def test_text_typed_columns_are_left_alone() -> None:
    table = body_table(100)
    table["note"] = [f"visit {i}" if i % 5 else None for i in range(100)]
    ctx = ToolContext(target="outcome", id_columns=["pid"], column_types={"note": "text"})
    result = run(table, ctx)
    assert result.table["note"].isna().sum() == 20
    with pytest.raises(ValueError, match="note"):
        run(table, ctx, columns=["note"])


def test_indicators_record_where_cells_were_missing() -> None:
    holed = knock_out(knock_out(body_table(), "weight", 0.1, seed=6), "city", 0.05, seed=7)
    result = run(holed, add_indicators=True)
    assert result.findings["indicators"] == ["weight", "city"]
    for column in ("weight", "city"):
        flags = result.table[f"{column}__was_missing"]
        assert flags.tolist() == holed[column].isna().astype(int).tolist()
    assert "noise__was_missing" not in result.table.columns
    assert "weight__was_missing" not in run(holed).table.columns


def test_iterative_replay_matches_sklearn_transform() -> None:
    columns = ["height", "weight", "noise"]
    train = knock_out(knock_out(body_table(400, seed=8), "weight", 0.2, seed=9), "height", 0.1, seed=10)
    held = knock_out(knock_out(body_table(150, seed=11), "weight", 0.3, seed=12), "noise", 0.2, seed=13)
    held.loc[:4, ["height", "weight"]] = [400.0, np.nan]  # predicted weights beyond the observed range
    imputer = fit_iterative(train[columns], max_iter=10, seed=0)
    state = json.loads(json.dumps(iterative_state(imputer, columns, columns)))
    fitted = {"medians": {}, "modes": {}, "iterative": state, "knn": None, "indicators": []}
    replayed = reapply_impute(held, fitted)[columns].to_numpy()
    np.testing.assert_allclose(replayed, imputer.transform(held[columns].to_numpy()), rtol=0, atol=1e-8)
    assert (replayed[:5, 1] == train["weight"].max()).all()  # clipped like sklearn


def test_run_output_is_its_own_fitted_state_reapplied() -> None:
    holed = knock_out(knock_out(body_table(), "weight", 0.2, seed=14), "height", 0.1, seed=15)
    result = run(holed, add_indicators=True)
    assert result.fitted["iterative"]["impute"] == ["height", "weight"]
    fitted = json.loads(json.dumps(result.fitted, allow_nan=False))
    pd.testing.assert_frame_equal(reapply_impute(holed, fitted), result.table)


def test_knn_replay_matches_sklearn_on_held_out_rows() -> None:
    columns = ["height", "weight", "noise"]
    train = knock_out(body_table(300, seed=16), "weight", 0.2, seed=17)
    held = knock_out(body_table(100, seed=18), "weight", 0.3, seed=19)
    result = run(train, method="knn", knn_neighbors=4)
    assert {c["method"] for c in result.findings["columns"]} == {"knn"}
    x = train[columns].to_numpy()
    center, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    expected = KNNImputer(n_neighbors=4).fit((x - center) / scale)
    expected = expected.transform((held[columns].to_numpy() - center) / scale) * scale + center
    out = reapply_impute(held, json.loads(json.dumps(result.fitted)))
    np.testing.assert_allclose(out["weight"].to_numpy(), expected[:, 1], atol=1e-8)
    pd.testing.assert_series_equal(out["height"], held["height"])


def test_columns_without_missing_values_or_with_only_missing_are_skipped() -> None:
    table = knock_out(body_table(200), "weight", 0.1, seed=20)
    table["empty"] = np.nan
    result = run(table, columns=["height", "weight", "empty"])
    skipped = {s["column"]: s["reason"] for s in result.findings["skipped"]}
    assert skipped["height"] == "no missing values"
    assert "every value is missing" in skipped["empty"]
    assert result.table["empty"].isna().all()
    pd.testing.assert_series_equal(result.table["height"], table["height"])
    assert "empty" in result.summary and "weight" in result.summary
    assert result.metrics["cells_filled"] == 20.0


def test_reapply_names_a_column_missing_from_new_data() -> None:
    result = run(knock_out(body_table(200), "noise", 0.1, seed=21))
    with pytest.raises(ValueError, match="noise"):
        reapply_impute(body_table(20).drop(columns="noise"), result.fitted)


def test_numbers_stored_as_text_are_skipped_with_advice() -> None:
    table = body_table(100)
    table["age"] = pd.Series([None if i % 10 == 0 else str(20 + i % 50) for i in range(100)], dtype="str")
    ctx = ToolContext(target="outcome", id_columns=["pid"], column_types={"age": "numeric"})
    result = run(table, ctx)
    assert "coerce_types" in result.findings["skipped"][0]["reason"]
    assert result.table["age"].isna().sum() == 10
    with pytest.raises(ValueError, match="age"):
        run(table, ctx, columns=["age"])


def test_unknown_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"'wieght'.*weight"):
        run(body_table(50), columns=["wieght"])


@pytest.mark.parametrize("method", ["iterative", "knn"])
def test_reapply_runs_standalone_for_model_based_fills(method: str) -> None:
    """The source of reapply_impute is copied into pipeline.py: every branch must run on its own."""
    namespace: dict[str, object] = {}
    exec(compile(inspect.getsource(reapply_impute), "<pipeline>", "exec"), namespace)
    holed = knock_out(knock_out(body_table(300), "weight", 0.2, seed=22), "city", 0.1, seed=23)
    result = run(holed, method=method, add_indicators=True)
    assert result.fitted[method] is not None
    fitted = json.loads(json.dumps(result.fitted))
    held = knock_out(body_table(60, seed=24), "weight", 0.3, seed=25)
    pd.testing.assert_frame_equal(namespace["reapply_impute"](held, fitted), reapply_impute(held, fitted))


def test_new_data_gaps_in_columns_complete_at_fit_time_get_the_fallback() -> None:
    """weight had no gaps in training: new data's gaps in it get its training median, city's its
    mode (categorical="mode"; the missing level by default, tested in test_impute_invents_nothing)."""
    train = knock_out(body_table(300, seed=26), "noise", 0.1, seed=27)  # only noise has gaps
    train["flag"] = np.random.default_rng(28).choice([True, False], len(train), p=[0.7, 0.3])
    result = run(train, categorical="mode")
    assert set(by_column(result)) == {"noise"}
    fallback = result.fitted["fallback"]
    assert set(fallback) == {"height", "weight", "noise", "city", "flag"}  # never pid or outcome
    assert fallback["weight"] == pytest.approx(train["weight"].median())
    assert fallback["city"] == "Leeds" and fallback["flag"] is True

    held = body_table(80, seed=29)
    held["flag"] = pd.array([True, False] * 40, dtype="boolean")
    for column, seed in (("weight", 30), ("city", 31), ("flag", 32), ("outcome", 33)):
        held = knock_out(held, column, 0.25, seed=seed)
    held.loc[[1, 2], "pid"] = None
    gaps = held.isna()
    fitted = json.loads(json.dumps(result.fitted, allow_nan=False))
    out = reapply_impute(held, fitted)
    assert (out.loc[gaps["weight"], "weight"] == train["weight"].median()).all()
    assert (out.loc[gaps["city"], "city"] == "Leeds").all()
    assert out.loc[gaps["flag"], "flag"].all()
    pd.testing.assert_series_equal(out.loc[~gaps["weight"], "weight"], held.loc[~gaps["weight"], "weight"])
    pd.testing.assert_series_equal(out["outcome"], held["outcome"])  # the target keeps its gaps
    pd.testing.assert_series_equal(out["pid"], held["pid"])
    assert out.drop(columns=["outcome", "pid"]).notna().all().all()


def test_model_columns_keep_their_method_and_the_fallback_fills_the_rest() -> None:
    train = knock_out(body_table(400, seed=34), "weight", 0.2, seed=35)  # iterative, from height
    result = run(train)
    assert by_column(result)["weight"]["method"] == "iterative"
    held = knock_out(knock_out(body_table(100, seed=36), "weight", 0.3, seed=37), "height", 0.2, seed=38)
    fitted = json.loads(json.dumps(result.fitted))
    out = reapply_impute(held, fitted)
    no_fallback = reapply_impute(held, {**fitted, "fallback": {}})
    pd.testing.assert_series_equal(out["weight"], no_fallback["weight"])  # still the iterative fill
    height_gaps = held["height"].isna()
    assert no_fallback.loc[height_gaps, "height"].isna().all()  # what happened before the fallback
    assert (out.loc[height_gaps, "height"] == train["height"].median()).all()
    assert out[["height", "weight", "noise", "city"]].notna().all().all()


def test_the_fallback_does_not_change_the_output_on_the_training_table() -> None:
    holed = knock_out(knock_out(body_table(), "weight", 0.2, seed=39), "city", 0.1, seed=40)
    holed["empty"] = np.nan
    for method in ("auto", "knn"):
        result = run(holed, method=method, add_indicators=True)
        assert "empty" not in result.fitted["fallback"]  # nothing to learn a fill from
        without = reapply_impute(holed, {**result.fitted, "fallback": {}})
        pd.testing.assert_frame_equal(result.table, without)
    named = run(holed, columns=["weight", "height"])
    assert set(named.fitted["fallback"]) == {"weight", "height"}  # only the columns asked for
