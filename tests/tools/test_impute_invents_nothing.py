"""Imputation that invents nothing: answers stay levels, free text stays as written, categorical
gaps get an explicit level, and a numeric fill that would hide information gets an indicator.

The steps run as a session runs them: the profile of each version types the columns for the next
tool, and every table in between travels through parquet.
"""

from __future__ import annotations

import inspect
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from tools.base import Tool, ToolContext, ToolResult
from tools.coerce_types import CoerceTypes, reapply_coerce_types
from tools.feature_types import profile_table, summarise
from tools.impute import Impute, holm, permutation_chi_square, reapply_impute


def through_parquet(table: pd.DataFrame) -> pd.DataFrame:
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return pd.read_parquet(io.BytesIO(buffer.getvalue()))


def step(tool: type[Tool], table: pd.DataFrame, target: str | None = "outcome", **params: object) -> ToolResult:
    """One step as the session runs it: typed by the profile of its input, the output through parquet."""
    profile = profile_table(table, target=target)
    types = {col: info["type"] for col, info in profile["columns"].items()}
    ctx = ToolContext(target=target, column_types=types, seed=0)
    result = tool().run(table, tool.parse_params(params), ctx)
    assert result.table is not None
    return ToolResult(result.summary, through_parquet(result.table), result.findings, result.metrics, [], result.fitted)


def by_column(result: ToolResult) -> dict[str, dict]:
    return {c["column"]: c for c in result.findings["columns"]}


def survey(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """smoker with 123 'unknown' answers and 40 blanks, free-text notes with gaps, a city, a target."""
    rng = np.random.default_rng(seed)
    smoker = rng.choice(["yes", "no"], n, p=[0.2, 0.8]).astype(object)
    smoker[:123] = "unknown"
    smoker[123:163] = None
    notes = np.array([f"patient {i} reports {rng.choice(['mild', 'no', 'sharp'])} pain after meals" for i in range(n)])
    notes = notes.astype(object)
    notes[rng.choice(n, 80, replace=False)] = None
    return pd.DataFrame(
        {
            "smoker": pd.Series(smoker, dtype="str"),
            "notes": pd.Series(notes, dtype="str"),
            "city": rng.choice(["Leeds", "York", "Hull"], n),
            "age": rng.normal(50, 10, n).round(),
            "outcome": rng.choice(["sick", "well"], n),
        }
    )


@pytest.fixture(scope="module")
def cleaned() -> tuple[pd.DataFrame, dict, ToolResult, ToolResult]:
    table = survey()
    profile = profile_table(table, target="outcome")
    coerced = step(CoerceTypes, table)
    return table, profile, coerced, step(Impute, coerced.table)


def test_unknown_answers_stay_a_level_through_profile_coerce_and_impute(cleaned) -> None:
    table, profile, coerced, imputed = cleaned
    smoker = profile["columns"]["smoker"]
    assert smoker["type"] == "categorical" and smoker["level_codes"] == {"unknown": 123}
    assert (smoker["sentinels"], smoker["missing"]) == ([], 40)
    assert "'unknown' in smoker are kept as categories" in summarise(profile)
    assert coerced.fitted["columns"]["smoker"]["sentinels"] == []
    out = imputed.table["smoker"]
    assert (out == "unknown").sum() == 123 and (out == "yes").sum() == (table["smoker"] == "yes").sum()
    assert (out[table["smoker"].isna()] == "missing").all() and out.notna().all()
    assert by_column(imputed)["smoker"]["method"] == "missing_level"


def test_unknown_becomes_missing_only_when_the_person_says_so() -> None:
    table = survey()
    said = step(CoerceTypes, table, columns={"smoker": {"sentinels": ["unknown"]}})
    assert said.table["smoker"].isna().sum() == 123 + 40


def test_words_are_still_missing_codes_in_a_column_of_numbers() -> None:
    codes = ["?", "NA", "unknown", "not recorded", "-999"]
    cells = [str(v) for v in np.random.default_rng(1).integers(20, 90, 400)]
    cells[: len(codes) * 4] = codes * 4
    table = pd.DataFrame({"age": pd.Series(cells, dtype="str"), "outcome": ["sick", "well"] * 200})
    age = profile_table(table, target="outcome")["columns"]["age"]
    assert age["numeric_as_text"] and sorted(age["sentinels"]) == sorted(codes) and age["level_codes"] == {}
    coerced = step(CoerceTypes, table)
    assert coerced.table["age"].dtype == "float64" and coerced.table["age"].isna().sum() == 20


def test_a_categorical_column_cast_to_numbers_drops_its_words() -> None:
    cells = [str(v) for v in range(300)]
    cells[:60] = ["unknown"] * 30 + ["low"] * 30  # too few numbers to be read as numbers unasked
    table = pd.DataFrame({"dose": cells, "outcome": ["x", "y"] * 150})
    assert profile_table(table)["columns"]["dose"]["level_codes"] == {"unknown": 30}
    params = CoerceTypes.parse_params({"columns": {"dose": {"type": "numeric"}}})
    result = CoerceTypes().run(table, params, ToolContext(target="outcome"))
    dose = next(r for r in result.findings["columns"] if r["column"] == "dose")
    assert dose["sentinels"] == ["unknown"] and dose["sentinels_replaced"] == 30 and dose["unconvertible"] == 30


def test_free_text_is_never_imputed(cleaned) -> None:
    table, profile, _, imputed = cleaned
    assert profile["columns"]["notes"]["type"] == "text"
    pd.testing.assert_series_equal(imputed.table["notes"], table["notes"], check_dtype=False)
    assert {"column": "notes", "reason": "text columns are never imputed"} in imputed.findings["skipped"]
    assert "notes (text columns are never imputed)" in imputed.summary
    with pytest.raises(ValueError, match="notes"):
        Impute().run(table, Impute.parse_params({"columns": ["notes"]}), ToolContext(column_types={"notes": "text"}))


def test_a_categorical_gap_gets_the_level_and_new_data_gets_it_where_training_had_none(cleaned) -> None:
    _, _, coerced, imputed = cleaned
    assert imputed.fitted["levels"] == {"smoker": "missing"}
    assert imputed.fitted["fallback_levels"] == {"smoker": "missing", "city": "missing"}
    fresh = survey(seed=5).drop(columns="outcome")  # new data comes without its target
    fresh.loc[[2, 9], "city"] = None  # city had no gap in training
    coerced_fresh = reapply_coerce_types(fresh, json.loads(json.dumps(coerced.fitted)))
    done = reapply_impute(coerced_fresh, json.loads(json.dumps(imputed.fitted)))
    assert done.loc[[2, 9], "city"].tolist() == ["missing", "missing"]
    assert done["city"].notna().all() and done["smoker"].notna().all()


def test_the_level_never_collides_with_a_value() -> None:
    table = pd.DataFrame({"answer": ["yes", "Missing", "no", None] * 25, "outcome": [0.0, 1.0] * 50})
    result = step(Impute, table)
    assert by_column(result)["answer"]["value"] == "(missing)"
    assert (result.table["answer"] == "Missing").sum() == 25 and (result.table["answer"] == "(missing)").sum() == 25


def test_booleans_and_pandas_categories_keep_one_type_through_parquet() -> None:
    rng = np.random.default_rng(2)
    flag = pd.Series(rng.choice([True, False], 200), dtype=object)
    flag[::10] = None
    grade = pd.Series(pd.Categorical(rng.choice(["low", "high"], 200)))
    grade[5::20] = None
    table = through_parquet(pd.DataFrame({"flag": flag, "grade": grade, "outcome": rng.normal(size=200)}))
    assert table["flag"].dtype == object and isinstance(table["grade"].dtype, pd.CategoricalDtype)
    result = step(Impute, table)
    assert set(result.table["flag"]) == {"True", "False", "missing"}
    assert isinstance(result.table["grade"].dtype, pd.CategoricalDtype)
    assert set(result.table["grade"]) == {"low", "high", "missing"}
    pd.testing.assert_frame_equal(through_parquet(reapply_impute(table, result.fitted)), result.table)


def lab_table(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """lab: 93% hold the "negative" value 0; it is missing mostly in sick rows (1 row in 10)."""
    rng = np.random.default_rng(seed)
    sick = rng.random(n) < 0.3
    lab = np.where(rng.random(n) < 0.93, 0.0, rng.gamma(2.0, 5.0, n).round(1))
    lab[rng.random(n) < np.where(sick, 0.25, 0.04)] = np.nan
    return pd.DataFrame(
        {
            "lab": lab,
            "pressure": rng.normal(120, 15, n),
            "outcome": np.where(sick, "sick", "well"),
        }
    )


def test_a_point_mass_column_with_signal_gets_an_indicator_that_carries_it() -> None:
    table = lab_table()
    result = step(Impute, table)
    lab = by_column(result)["lab"]
    assert lab["method"] == "median" and lab["value"] == 0.0
    assert lab["indicator"] == "lab__was_missing"
    reason = lab["indicator_reason"]
    assert "93% of the present rows hold 0," in reason and "predicts the target" in reason
    assert result.findings["indicators"] == ["lab"] and "lab__was_missing" in result.summary
    flags = result.table["lab__was_missing"]
    assert flags.tolist() == table["lab"].isna().astype(int).tolist()
    sick = result.table["outcome"] == "sick"
    assert sick[flags == 1].mean() > 2 * sick[flags == 0].mean()  # the signal survives in the indicator
    assert stats.chi2_contingency(pd.crosstab(flags, sick)).pvalue < 1e-6


def test_a_point_mass_alone_is_reason_enough() -> None:
    table = lab_table()
    table["outcome"] = np.random.default_rng(4).choice(["sick", "well"], len(table))
    lab = by_column(step(Impute, table))["lab"]
    assert lab["indicator"] == "lab__was_missing" and "predicts" not in lab["indicator_reason"]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_missingness_that_predicts_the_target_gets_an_indicator(task: str) -> None:
    rng = np.random.default_rng(6)
    n = 2000
    y = rng.normal(size=n)
    x = rng.normal(size=n)
    x[rng.random(n) < np.where(y > 0.5, 0.3, 0.05)] = np.nan
    target = y if task == "regression" else np.where(y > 0.5, "yes", "no")
    result = step(Impute, pd.DataFrame({"x": x, "z": rng.normal(size=n), "outcome": target}))
    assert by_column(result)["x"]["indicator"] == "x__was_missing"
    assert ("Mann-Whitney" if task == "regression" else "chi-square") in by_column(result)["x"]["indicator_reason"]


def test_a_column_missing_at_random_gets_no_indicator() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    table = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "outcome": rng.choice(["a", "b"], n)})
    table.loc[rng.random(n) < 0.15, "x"] = np.nan
    result = step(Impute, table)
    assert result.findings["indicators"] == [] and by_column(result)["x"]["indicator"] is None
    assert "x__was_missing" not in result.table.columns


def test_small_tables_are_tested_by_permutation_and_many_columns_by_holm() -> None:
    test, p = permutation_chi_square(np.array([3, 0]), np.array([13, 100]), seed=0)
    assert test == "permutation chi-square"
    assert p == pytest.approx(stats.fisher_exact([[3, 0], [10, 100]]).pvalue, rel=0.2)
    assert permutation_chi_square(np.array([90, 10]), np.array([500, 500]), seed=0)[0] == "chi-square"
    assert holm({"a": 0.001, "b": 0.02, "c": 0.004}) == pytest.approx({"a": 0.003, "c": 0.008, "b": 0.02})


def test_reapply_adds_the_same_indicators_on_new_data_standalone() -> None:
    namespace: dict[str, object] = {}
    exec(compile(inspect.getsource(reapply_impute), "<pipeline>", "exec"), namespace)
    result = step(Impute, lab_table())
    fresh = lab_table(200, seed=8).drop(columns="outcome")
    fitted = json.loads(json.dumps(result.fitted, allow_nan=False))
    out = namespace["reapply_impute"](fresh, fitted)
    assert out["lab__was_missing"].tolist() == fresh["lab"].isna().astype(int).tolist()
    pd.testing.assert_frame_equal(out, reapply_impute(fresh, fitted))


@st.composite
def holed_tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(12, 40))
    cells = st.lists(st.none() | st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1)), min_size=n, max_size=n)
    words = st.lists(st.none() | st.sampled_from(["a", "b", "missing", "unknown"]), min_size=n, max_size=n)
    flags = st.lists(st.none() | st.booleans(), min_size=n, max_size=n)
    table = pd.DataFrame(
        {
            "x": pd.Series(draw(cells), dtype="float64"),
            "w": pd.Series(draw(cells), dtype="float64"),
            "word": pd.Series(draw(words), dtype="str"),
            "flag": pd.Series(draw(flags), dtype=object),
            "outcome": draw(st.lists(st.sampled_from(["p", "q"]), min_size=n, max_size=n)),
        }
    )
    return table[[c for c in table if c == "outcome" or table[c].notna().any()]]


def as_written(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(holed_tables(), st.sampled_from(["missing_level", "mode"]), st.sampled_from(["auto", "knn"]))
def test_impute_never_changes_a_present_cell_and_reapply_reproduces_it(
    table: pd.DataFrame, categorical: str, method: str
) -> None:
    result = Impute().run(table, Impute.parse_params({"categorical": categorical, "method": method}),
                          ToolContext(target="outcome"))  # fmt: skip
    out = result.table
    for col in table.columns:
        present = table[col].notna()
        before, after = table.loc[present, col], out.loc[present, col]
        if before.dtype == "float64" and after.dtype == "float64":
            assert (before == after).all(), col
        else:
            assert before.map(as_written).tolist() == after.map(as_written).tolist(), col
    fitted = json.loads(json.dumps(result.fitted, allow_nan=False))
    pd.testing.assert_frame_equal(reapply_impute(table, fitted), out)
    pd.testing.assert_frame_equal(through_parquet(reapply_impute(through_parquet(table), fitted)), through_parquet(out))
