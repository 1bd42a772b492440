"""feature_types: the profile on tables where every column's type and faults are planted."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from tools.base import ToolCancelled, ToolContext
from tools.feature_types import FeatureTypes, profile_table
from tools.typing_rules import numeric_sentinels

N = 500


def planted_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """One column per type and per fault, with the faults at known cells."""
    rng = np.random.default_rng(seed)
    age_text = rng.integers(18, 90, n).astype(str).astype(object)
    age_text[rng.choice(n, 25, replace=False)] = "?"
    glucose = rng.normal(100, 15, n).round(1)
    glucose[rng.choice(n, 20, replace=False)] = -999
    city = rng.choice(["Leeds", "York", "Hull", "Bath"], n).astype(object)
    city[rng.choice(n, 30, replace=False)] = "unknown"
    weight = np.array([f"{w:.1f} kg" for w in rng.normal(75, 10, n)], dtype=object)
    weight[:3], weight[3:5] = "?", "abc"
    score = rng.integers(0, 101, n)
    score[rng.choice(n, 40, replace=False)] = 9999
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    visit = [d.strftime("%Y-%m-%d") if i % 3 else d.strftime("%d %b %Y") for i, d in enumerate(days)]
    phrases = ["chest pain", "no complaints today", "follow up in two weeks", "dizzy after lunch"]
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:05d}" for i in range(n)],
            "row_no": rng.permutation(np.arange(1, n + 1)),
            "age": rng.integers(18, 90, n),
            "age_text": pd.Series(age_text, dtype="str"),
            "glucose": glucose,
            "income": rng.lognormal(10, 0.8, n).round(2),
            "visits": rng.poisson(1.5, n),
            "city": pd.Series(city, dtype="str"),
            "weight": pd.Series(weight, dtype="str"),
            "score": score,
            "visit_date": pd.Series(visit, dtype="str"),
            "note": [f"patient says {rng.choice(phrases)} on visit {i}" for i in range(n)],
            "site": "A",
            "smoker": rng.choice(["yes", "no"], n),
            "flag": rng.integers(0, 2, n),
            "grade": rng.integers(1, 6, n),
            "sex": rng.choice(["M", "F"], n),
            "empty": np.full(n, np.nan),
            "outcome": rng.choice(["sick", "well"], n),
        }
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return planted_table()


@pytest.fixture(scope="module")
def profile(table: pd.DataFrame) -> dict:
    return profile_table(table, target="outcome")


EXPECTED_TYPES = {
    "patient_id": "identifier",
    "row_no": "identifier",
    "age": "numeric",
    "age_text": "numeric",
    "glucose": "numeric",
    "income": "numeric",
    "visits": "categorical",
    "city": "categorical",
    "weight": "numeric",
    "score": "numeric",
    "visit_date": "datetime",
    "note": "text",
    "site": "constant",
    "smoker": "boolean",
    "flag": "boolean",
    "grade": "categorical",
    "sex": "categorical",
    "empty": "constant",
    "outcome": "categorical",
}


@pytest.mark.parametrize(("column", "expected"), EXPECTED_TYPES.items())
def test_each_planted_type_is_found(profile: dict, column: str, expected: str) -> None:
    col = profile["columns"][column]
    assert col["type"] == expected, col["evidence"]
    assert col["evidence"].endswith(".")


def test_numbers_as_text_with_question_marks(profile: dict, table: pd.DataFrame) -> None:
    col = profile["columns"]["age_text"]
    assert col["numeric_as_text"] and col["dtype"] == "str"
    assert (col["sentinels"], col["sentinel_count"], col["missing"]) == (["?"], 25, 25)
    assert col["missing_pct"] == pytest.approx(5.0)
    assert col["unparseable"] == 0 and col["unit"] is None
    ages = pd.to_numeric(table["age_text"], errors="coerce")
    assert col["stats"]["median"] == pytest.approx(ages.median())
    assert col["stats"]["min"] == ages.min() and col["stats"]["max"] == ages.max()


def test_minus_999_in_a_numeric_column_is_a_sentinel(profile: dict, table: pd.DataFrame) -> None:
    col = profile["columns"]["glucose"]
    assert (col["sentinels"], col["sentinel_count"], col["missing"]) == (["-999"], 20, 20)
    real = table["glucose"][table["glucose"] != -999]
    assert col["stats"]["min"] == real.min() and col["stats"]["mean"] == pytest.approx(real.mean())


def test_unknown_in_a_categorical_column_is_a_level(profile: dict) -> None:
    col = profile["columns"]["city"]
    assert (col["sentinels"], col["sentinel_count"], col["missing"]) == ([], 0, 0)
    assert col["level_codes"] == {"unknown": 30} and col["n_unique"] == 5
    assert {v for v, _ in col["top_values"]} == {"Leeds", "York", "Hull", "Bath", "unknown"}
    assert sum(c for _, c in col["top_values"]) == N


def test_unit_in_cells(profile: dict, table: pd.DataFrame) -> None:
    col = profile["columns"]["weight"]
    assert col["numeric_as_text"] and col["unit"] == "kg"
    assert (col["sentinels"], col["sentinel_count"], col["unparseable"]) == (["?"], 3, 2)
    kilos = table["weight"].str.removesuffix(" kg").iloc[5:].astype(float)
    assert col["stats"]["median"] == pytest.approx(kilos.median())


def test_frequency_outlier_sentinel(profile: dict) -> None:
    col = profile["columns"]["score"]
    assert (col["sentinels"], col["sentinel_count"]) == (["9999"], 40)
    assert col["stats"]["max"] == 100


CLEAN = ["age", "income", "visits", "flag", "grade", "smoker", "note", "visit_date"]


@pytest.mark.parametrize("column", CLEAN)
def test_clean_columns_have_no_sentinels(profile: dict, column: str) -> None:
    col = profile["columns"][column]
    assert (col["sentinels"], col["missing"], col["unparseable"]) == ([], 0, 0)


def _values(seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return {
        "normal": rng.normal(50, 10, 1000),
        "lognormal": rng.lognormal(3, 1, 1000),
        "poisson": rng.poisson(2, 1000).astype(float),
        "skewed_ints": np.floor(rng.exponential(20, 1000)),
    }[kind]


@pytest.mark.parametrize("kind", ["normal", "lognormal", "poisson", "skewed_ints"])
def test_no_numeric_sentinels_in_clean_distributions(kind: str) -> None:
    values = _values(1, kind)
    assert numeric_sentinels(values, len(np.unique(values))) == {}


@pytest.mark.parametrize(
    ("code", "count", "bulk"),
    [(-1.0, 12, "ages"), (0.0, 15, "bmi"), (9999.0, 1, "ages"), (-9.0, 5, "ages"), (500.0, 40, "ages")],
)
def test_numeric_sentinel_rules(code: float, count: int, bulk: str) -> None:
    """A lone negative code, a zero under a positive bulk, a nines code, a repeated far value."""
    rng = np.random.default_rng(2)
    values = rng.integers(20, 80, 1000).astype(float) if bulk == "ages" else rng.normal(32, 6, 1000)
    values[:count] = code
    assert numeric_sentinels(values, len(np.unique(values))) == {code: count}


def test_a_far_value_seen_twice_is_not_a_sentinel() -> None:
    values = np.random.default_rng(3).normal(50, 10, 1000)
    values[:2] = 500.0  # an outlier (unit slip), not a code
    assert numeric_sentinels(values, len(np.unique(values))) == {}


def test_declared_identifiers_are_not_suggested(table: pd.DataFrame, profile: dict) -> None:
    assert profile["suggested_id_columns"] == ["patient_id", "row_no"]
    declared = profile_table(table, target="outcome", id_columns=["patient_id", "grade"])
    assert declared["suggested_id_columns"] == ["row_no"]
    assert declared["columns"]["grade"]["type"] == "identifier"
    assert declared["columns"]["grade"]["evidence"] == "Declared as an identifier column."


def test_unique_numbers_without_an_id_name_or_shape_are_not_identifiers() -> None:
    rng = np.random.default_rng(4)
    table = pd.DataFrame(
        {
            "salary": rng.choice(np.arange(20_000, 90_000), 300, replace=False),
            "ratio": rng.random(300),
            "visit_id": rng.random(300),  # floats with fractions are no identifiers
            "code": [f"AB{i:04d}" for i in rng.permutation(300)],
            "name": [f"{a}{b}" for a in "abcdefghijklmnopqrst" for b in "abcdefghijklmno"],
        }
    )
    types = {c: v["type"] for c, v in profile_table(table)["columns"].items()}
    assert types == {
        "salary": "numeric",
        "ratio": "numeric",
        "visit_id": "numeric",
        "code": "identifier",
        "name": "categorical",
    }


def test_target_profile_counts_classes_and_missing_labels(table: pd.DataFrame) -> None:
    t = table.copy()
    t.loc[[0, 1, 2], "outcome"] = "?"
    target = profile_table(t, target="outcome")["target"]
    counts = t["outcome"][t["outcome"] != "?"].value_counts()
    assert target == {
        "column": "outcome",
        "task": "classification",
        "n_classes": 2,
        "missing": 3,
        "class_counts": {k: int(v) for k, v in counts.items()},
    }


def test_target_task_is_regression_for_a_numeric_target(table: pd.DataFrame) -> None:
    target = profile_table(table, target="income")["target"]
    assert target == {"column": "income", "task": "regression", "n_classes": None, "missing": 0}
    as_classes = profile_table(table, target="income", task="classification")["target"]
    assert as_classes["n_classes"] == table["income"].nunique() and len(as_classes["class_counts"]) == 50
    assert profile_table(table)["target"] is None


def test_duplicate_rows_ignore_identifier_columns(table: pd.DataFrame) -> None:
    copies = table.iloc[:7].copy()
    copies.index = range(N, N + 7)
    copies["patient_id"] = [f"Q{i}" for i in range(7)]
    copies["row_no"] = range(N + 1, N + 8)
    doubled = pd.concat([table, copies])
    assert profile_table(table)["duplicate_rows"] == 0
    assert profile_table(doubled)["duplicate_rows"] == 7
    nearly = doubled.copy()
    nearly.loc[N, "income"] += 1.0
    assert profile_table(nearly)["duplicate_rows"] == 6


def test_all_missing_and_constant_columns() -> None:
    table = pd.DataFrame({"q": ["?", "n/a", None, " "], "k": [3, 3, None, 3], "x": [1.5, 2.5, 3.5, 4.5]})
    cols = profile_table(table)["columns"]
    assert cols["q"]["type"] == "constant" and cols["q"]["missing"] == 4 and cols["q"]["sentinel_count"] == 3
    assert sorted(cols["q"]["sentinels"]) == ["", "?", "n/a"]
    assert cols["k"]["type"] == "constant" and cols["k"]["top_values"] == [["3", 3]]
    assert "top_values" not in cols["x"] and cols["x"]["stats"]["q1"] == pytest.approx(2.25)


def test_unknown_column_raises_a_value_error(table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'label'"):
        profile_table(table, target="label")
    with pytest.raises(ValueError, match="'mrn'"):
        profile_table(table, id_columns=["mrn"])


def test_tool_returns_the_profile_with_metrics_and_charts(table: pd.DataFrame, profile: dict) -> None:
    ctx = ToolContext(target="outcome", seed=0)
    result = FeatureTypes().run(table, FeatureTypes.parse_params({}), ctx)
    assert result.table is None and result.findings == profile
    json.dumps(result.findings, allow_nan=False)
    assert result.metrics["columns_identifier"] == 2 and result.metrics["columns_constant"] == 2
    assert result.metrics["sentinel_cells"] == 25 + 20 + 3 + 40  # city's 'unknown' is a level
    assert result.metrics["missing_cells"] == 25 + 20 + 3 + 40 + N
    missing_chart = result.charts[0]
    assert dict(zip(missing_chart.labels, missing_chart.values, strict=True))["empty"] == 100.0
    assert "Profiled 500 rows and 19 columns" in result.summary and "age_text" in result.summary


def test_tool_reports_progress_and_can_be_cancelled(table: pd.DataFrame) -> None:
    seen: list[float] = []
    ctx = ToolContext(progress=lambda fraction, message: seen.append(fraction))
    FeatureTypes().run(table, FeatureTypes.parse_params({}), ctx)
    assert len(seen) >= 3 and seen == sorted(seen)
    with pytest.raises(ToolCancelled):
        FeatureTypes().run(table, FeatureTypes.parse_params({}), ToolContext(cancelled=lambda: True))


def test_profiles_a_large_table_quickly() -> None:
    big = pd.concat([planted_table(2_000)] * 50, ignore_index=True)  # 100k rows
    started = time.perf_counter()
    cols = profile_table(big, target="outcome")["columns"]
    assert time.perf_counter() - started < 5.0
    assert cols["score"]["sentinel_count"] == 50 * 40 and cols["glucose"]["sentinels"] == ["-999"]
    assert cols["visit_date"]["type"] == "datetime" and cols["weight"]["unit"] == "kg"


def test_a_repeated_fraction_is_a_shared_value_not_a_code() -> None:
    """A log of population is log(0.1) = -2.3026 for every place of no population: a floor 24% of rows share,
    alone below a non-negative bulk, yet not a code; the same rows written -1 are one."""
    population = np.random.default_rng(4).lognormal(3, 2, 1000)
    values = np.log(population + 1.0)
    values[:240] = np.log(0.1)
    assert numeric_sentinels(values, len(np.unique(values))) == {}
    values[:240] = -1.0
    assert numeric_sentinels(values, len(np.unique(values))) == {-1.0: 240}
