"""coerce_types: casts, codes, units and ranges on tables whose faults sit at known cells."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tools.base import ToolContext, ToolResult
from tools.coerce_types import CoerceTypes, reapply_coerce_types
from tools.feature_types import profile_table

N = 400
CTX = ToolContext(target="outcome", id_columns=["record_id"], task="classification", seed=0)


def dirty_table(n: int = N, seed: int = 0, first_row: int = 0) -> pd.DataFrame:
    """Numbers as text with '?', weights in kg, -999 codes, yes/no in mixed case, date text."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n).astype(str).astype(object)
    age[rng.choice(n, 20, replace=False)] = "?"
    glucose = rng.normal(100, 15, n).round(1)
    glucose[rng.choice(n, 15, replace=False)] = -999
    days = pd.date_range("2021-01-01", periods=n, freq="D") + pd.Timedelta(days=first_row)
    rows = np.arange(first_row, first_row + n)
    return pd.DataFrame(
        {
            "record_id": [f"R{i:05d}" for i in rows],
            "age": pd.array(age, dtype="str"),
            "weight": [f"{w:.1f} kg" for w in rng.normal(75, 10, n)],
            "glucose": glucose,
            "smoker": rng.choice(["yes", "no", "Yes", "NO"], n),
            "visit": [d.strftime("%Y-%m-%d") if i % 2 else d.strftime("%d %b %Y") for i, d in enumerate(days)],
            "city": rng.choice(["Leeds", "York", "unknown"], n, p=[0.45, 0.45, 0.1]),
            "outcome": rng.choice(["sick", "well"], n),
        },
        index=pd.Index(rows * 10 + 7, name="row"),
    )


def coerce(table: pd.DataFrame, params: dict | None = None, ctx: ToolContext = CTX) -> ToolResult:
    return CoerceTypes().run(table, CoerceTypes.parse_params(params), ctx)


def report(result: ToolResult, column: str) -> dict:
    return next(r for r in result.findings["columns"] if r["column"] == column)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return dirty_table()


@pytest.fixture(scope="module")
def result(table: pd.DataFrame) -> ToolResult:
    return coerce(table)


def test_question_marks_become_missing_and_the_column_becomes_float(table, result) -> None:
    age = result.table["age"]
    assert age.dtype == "float64"
    codes = table["age"] == "?"
    assert age[codes].isna().all() and age[~codes].notna().all()
    assert (age[~codes] == table["age"][~codes].astype(int)).all()
    assert report(result, "age")["sentinels_replaced"] == 20 and report(result, "age")["sentinels"] == ["?"]


def test_units_are_stripped(table, result) -> None:
    assert result.table["weight"].dtype == "float64"
    expected = table["weight"].str.removesuffix(" kg").astype(float)
    pd.testing.assert_series_equal(result.table["weight"], expected)
    weight = report(result, "weight")
    assert (weight["unit"], weight["unit_stripped"], weight["unconvertible"]) == ("kg", N, 0)
    assert "'kg' stripped from 400 cells" in result.summary


def test_a_minus_999_code_becomes_missing(table, result) -> None:
    codes = table["glucose"] == -999
    assert result.table["glucose"][codes].isna().all()
    pd.testing.assert_series_equal(result.table["glucose"][~codes], table["glucose"][~codes])
    assert report(result, "glucose")["sentinels_replaced"] == 15


def test_yes_no_become_one_and_zero(table, result) -> None:
    words = table["smoker"].str.lower()
    assert result.table["smoker"].tolist() == [1.0 if w == "yes" else 0.0 for w in words]


def test_date_text_becomes_datetime(table, result) -> None:
    visit = result.table["visit"]
    assert visit.dtype == "datetime64[us]"
    expected = pd.date_range("2021-01-01", periods=N, freq="D")
    assert (visit.to_numpy() == expected.to_numpy()).all()


def test_unknown_in_a_categorical_column_stays_a_level_unless_named(table, result) -> None:
    pd.testing.assert_series_equal(result.table["city"], table["city"])
    assert report(result, "city")["sentinels"] == []
    named = coerce(table, {"columns": {"city": {"sentinels": ["unknown"]}}})
    city = named.table["city"]
    assert city[table["city"] == "unknown"].isna().all()
    assert set(city.dropna()) == {"Leeds", "York"}


def test_domain_range_turns_impossible_values_into_missing(table) -> None:
    t = table.copy()
    label = t.index[t["age"] != "?"][5]
    t.loc[label, "age"] = "250"
    result = coerce(t, {"columns": {"age": {"min": 0, "max": 120}}})
    assert np.isnan(result.table.loc[label, "age"])
    age = report(result, "age")
    assert (age["out_of_range"], age["unconvertible"], age["sentinels_replaced"]) == (1, 0, 20)
    assert age["out_of_range_examples"] == [{"row": int(label), "value": "250"}]
    assert result.metrics["out_of_range"] == 1.0 and f"'250' in row {label}" in result.summary


def test_unconvertible_cells_are_reported_with_their_rows(table) -> None:
    t = table.copy()
    labels = t.index[t["age"] != "?"][[3, 8]]
    t.loc[labels, "age"] = ["abc", "12 years"]
    result = coerce(t)
    assert result.table.loc[labels, "age"].isna().all()
    age = report(result, "age")
    assert age["unconvertible"] == 2
    assert age["unconvertible_examples"] == [
        {"row": int(labels[0]), "value": "abc"},
        {"row": int(labels[1]), "value": "12 years"},
    ]
    assert profile_table(t)["columns"]["age"]["unparseable"] == 2  # the profile and the cast agree


def test_reapply_on_held_out_data_repeats_the_same_schema(result) -> None:
    held_out = dirty_table(100, seed=1, first_row=N)
    held_out.loc[held_out.index[0], "weight"] = "n/a"
    fitted = json.loads(json.dumps(result.fitted))
    again = reapply_coerce_types(held_out, fitted)
    pd.testing.assert_series_equal(again.dtypes, result.table.dtypes)
    assert again["age"].equals(pd.to_numeric(held_out["age"].replace("?", None)).astype(float))
    assert np.isnan(again["weight"].iloc[0])  # not a number: missing, without re-inferring anything
    pd.testing.assert_series_equal(again["weight"].iloc[1:], held_out["weight"].iloc[1:].str[:-3].astype(float))
    assert again["visit"].iloc[0] == pd.Timestamp("2022-02-05")
    assert again["smoker"].isin([0.0, 1.0]).all()


def test_run_output_equals_reapply_of_its_fitted_state(table, result) -> None:
    pd.testing.assert_frame_equal(reapply_coerce_types(table, result.fitted), result.table)


def test_target_codes_become_missing_and_other_labels_stay(table) -> None:
    t = table.copy()
    t.loc[t.index[:3], "outcome"] = "?"
    result = coerce(t)
    outcome = result.table["outcome"]
    assert outcome.iloc[:3].isna().all() and outcome.dtype == t["outcome"].dtype
    pd.testing.assert_series_equal(outcome.iloc[3:], t["outcome"].iloc[3:])
    assert result.fitted["columns"]["outcome"] == {
        "type": None,
        "sentinels": ["?"],
        "unit": None,
        "decimal": None,
        "min": None,
        "max": None,
        "role": "target",
    }
    unlabelled = reapply_coerce_types(t.drop(columns="outcome"), result.fitted)  # new data, no labels
    assert "outcome" not in unlabelled.columns


def test_identifiers_are_never_touched(table, result) -> None:
    pd.testing.assert_series_equal(result.table["record_id"], table["record_id"])
    assert "record_id" not in result.fitted["columns"]
    with pytest.raises(ValueError, match="'record_id' is an identifier"):
        coerce(table, {"columns": {"record_id": {"sentinels": ["R00001"]}}})


def test_an_override_keeps_the_detected_fields_it_does_not_set(table) -> None:
    result = coerce(table, {"columns": {"age": {"max": 60}, "city": {"sentinels": []}}})
    assert result.fitted["columns"]["age"] == {
        "type": "numeric",
        "sentinels": ["?"],
        "unit": None,
        "decimal": ".",
        "min": None,
        "max": 60.0,
        "role": "feature",
    }
    assert result.table["age"].max() <= 60
    assert (result.table["city"] == "unknown").sum() == (table["city"] == "unknown").sum()


def test_infer_false_changes_only_the_listed_columns(table) -> None:
    result = coerce(table, {"columns": {"glucose": {"type": "numeric"}}, "infer": False})
    assert list(result.fitted["columns"]) == ["glucose"]
    assert result.findings["changed_columns"] == ["glucose"]
    pd.testing.assert_frame_equal(result.table.drop(columns="glucose"), table.drop(columns="glucose"))


def test_running_twice_changes_nothing_the_second_time(result) -> None:
    second = coerce(result.table)
    pd.testing.assert_frame_equal(second.table, result.table)
    assert second.findings["changed_columns"] == [] and "nothing changed" in second.summary


def test_the_input_is_left_alone_and_rows_keep_their_labels(table, result) -> None:
    assert table["age"].dtype == "str" and (table["glucose"] == -999).sum() == 15
    pd.testing.assert_index_equal(result.table.index, table.index)
    json.dumps({"f": result.findings, "m": result.metrics, "x": result.fitted}, allow_nan=False)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"columns": {"height": {"type": "numeric"}}}, "'height'"),
        ({"columns": {"age": {"min": 10, "max": 5}}}, "min 10.0 is above max 5.0"),
        ({"columns": {"city": {"unit": "kg"}}}, "only apply to numeric"),
        ({"columns": {"city": {"type": "numeric"}}}, r"'city': (\d+) of \1 values cannot be read as numeric"),
        ({"columns": {"outcome": {"type": "boolean"}}}, "'outcome' is the target"),
    ],
)
def test_parameters_that_make_no_sense_raise_value_errors(table, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coerce(table, params)


def test_reapply_names_a_column_missing_from_new_data(result, table) -> None:
    with pytest.raises(ValueError, match="'weight' is missing"):
        reapply_coerce_types(table.drop(columns="weight"), result.fitted)
