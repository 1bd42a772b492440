"""Numbers as exports write them: decimal commas, thousands separators, percent, currencies, units, and
yes/no typed into a 0/1 column, read the same by the profile, by coerce_types and on new data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tools.base import ToolContext
from tools.coerce_types import CoerceTypes, CoerceTypesParams, reapply_coerce_types
from tools.feature_types import profile_table
from tools.typing_rules import decimal_mark, is_nines_code, parse_numbers

CTX = ToolContext(target="outcome", task="classification")

#: Column → (cells as written, the numbers they mean). Each column is written one way throughout.
WRITTEN: dict[str, tuple[list[str], list[float]]] = {
    "decimal_comma": (["3,5", "4,25", "10,0", "7,75", "0,5", "12,1"], [3.5, 4.25, 10.0, 7.75, 0.5, 12.1]),
    "point_thousands": (["1.234,56", "2.500,00", "999,99", "12.000,5", "1.000.000,00", "640,10"],
                        [1234.56, 2500.0, 999.99, 12000.5, 1_000_000.0, 640.1]),
    "comma_thousands": (["1,234.56", "2,500.00", "999.99", "12,000.5", "1,000,000", "640.1"],
                        [1234.56, 2500.0, 999.99, 12000.5, 1_000_000.0, 640.1]),
    "space_thousands": (["1 234,5", "2\u00a0500", "999,9", "12\u202f000", "3 333,25", "640"],
                        [1234.5, 2500.0, 999.9, 12000.0, 3333.25, 640.0]),
    "swiss": (["1'234.50", "2'500", "999.95", "12'000", "3'333.25", "640"],
              [1234.5, 2500.0, 999.95, 12000.0, 3333.25, 640.0]),
    "percent": (["12%", "5.5%", "100 %", "0%", "33.3%", "7%"], [12.0, 5.5, 100.0, 0.0, 33.3, 7.0]),
    "percent_comma": (["12,5 %", "5,5 %", "100 %", "0 %", "33,3 %", "7 %"], [12.5, 5.5, 100.0, 0.0, 33.3, 7.0]),
    "euro": (["€1.200,50", "€ 300,00", "€45,99", "€1.000", "€12,00", "€7,50"],
             [1200.5, 300.0, 45.99, 1000.0, 12.0, 7.5]),
    "dollar": (["$1,200.50", "$300", "$45.99", "$1,000", "$12", "$7.50"], [1200.5, 300.0, 45.99, 1000.0, 12.0, 7.5]),
    "pound": (["£1,200", "£300.10", "£45", "£2,000", "£12.99", "£7"], [1200.0, 300.1, 45.0, 2000.0, 12.99, 7.0]),
    "kilograms": (["72,5 kg", "80 kg", "64,25 kg", "90,1 kg", "55 kg", "101,0 kg"],
                  [72.5, 80.0, 64.25, 90.1, 55.0, 101.0]),
}  # fmt: skip
REPEAT = 5  # each value several times, so the column is numbers rather than free text


def written_table() -> pd.DataFrame:
    columns = {name: cells * REPEAT for name, (cells, _) in WRITTEN.items()}
    n = len(next(iter(columns.values())))
    return pd.DataFrame(columns | {"outcome": ["a", "b"] * (n // 2)})


@pytest.fixture(scope="module")
def coerced():
    table = written_table()
    return table, CoerceTypes().run(table, CoerceTypesParams(), CTX)


@pytest.mark.parametrize("name", list(WRITTEN))
def test_the_profile_reads_each_way_of_writing_as_numbers(name: str) -> None:
    info = profile_table(written_table(), target="outcome")["columns"][name]
    assert info["type"] == "numeric" and info["numeric_as_text"], info["evidence"]
    assert info["unparseable"] == 0


@pytest.mark.parametrize("name", list(WRITTEN))
def test_coerce_types_gives_the_numbers_meant(coerced, name: str) -> None:
    _, result = coerced
    expected = WRITTEN[name][1] * REPEAT
    np.testing.assert_allclose(result.table[name].to_numpy(), expected)
    assert result.table[name].dtype == "float64"


def test_the_decimal_mark_is_fitted_so_new_data_reads_the_same_way(coerced) -> None:
    _, result = coerced
    assert result.fitted["columns"]["decimal_comma"]["decimal"] == ","
    assert result.fitted["columns"]["comma_thousands"]["decimal"] == "."
    # "1,500" alone could be 1.5 or 1500: the column's fitted mark decides.
    new = pd.DataFrame({"decimal_comma": ["1,500", "2,5"], "comma_thousands": ["1,500", "2.5"]})
    fitted = {"columns": {c: result.fitted["columns"][c] for c in new.columns}}
    out = reapply_coerce_types(new, fitted)
    assert out["decimal_comma"].tolist() == [1.5, 2.5]
    assert out["comma_thousands"].tolist() == [1500.0, 2.5]


def test_a_point_in_a_column_written_with_decimal_commas_is_reported_not_guessed() -> None:
    cells = ["3,5", "4,25", "10,0", "7,75", "0,5", "12,1"] * 10 + ["3.5"]
    table = pd.DataFrame({"dose": cells, "outcome": ["a", "b"] * 30 + ["a"]})
    result = CoerceTypes().run(table, CoerceTypesParams(), CTX)
    assert np.isnan(result.table["dose"].iloc[-1])
    (report,) = [r for r in result.findings["columns"] if r["column"] == "dose"]
    assert report["unconvertible"] == 1 and report["unconvertible_examples"] == [{"row": 60, "value": "3.5"}]


def test_the_person_can_name_the_decimal_mark() -> None:
    table = pd.DataFrame({"price": ["1,234", "2,500", "3,750"] * 10, "outcome": ["a", "b", "c"] * 10})
    inferred = CoerceTypes().run(table, CoerceTypesParams(), CTX).table["price"]
    assert inferred.iloc[:3].tolist() == [1234.0, 2500.0, 3750.0]  # no sign either way: the point wins
    told = CoerceTypes().run(table, CoerceTypesParams(columns={"price": {"decimal": ","}}), CTX).table["price"]
    assert told.iloc[:3].tolist() == [1.234, 2.5, 3.75]
    with pytest.raises(ValueError, match=r"decimal.*only apply to numeric"):
        CoerceTypes().run(table, CoerceTypesParams(columns={"price": {"type": "categorical", "decimal": ","}}), CTX)


@pytest.mark.parametrize("share_typed", [0.02, 0.3])
def test_yes_and_no_typed_into_a_0_1_column_become_1_and_0(share_typed: float) -> None:
    rng = np.random.default_rng(3)
    n = 300
    cells = rng.choice(["0", "1"], n).astype(object)
    typed = rng.choice(n, int(share_typed * n), replace=False)
    truth = np.array([float(c) for c in cells])
    words = {1.0: ["yes", "Yes", " Y ", "TRUE"], 0.0: ["no", "No", "n", "false"]}
    for i in typed:
        cells[i] = rng.choice(words[truth[i]])
    table = pd.DataFrame({"smoker": cells, "outcome": rng.choice(["a", "b"], n)})
    assert profile_table(table, target="outcome")["columns"]["smoker"]["type"] == "boolean"
    result = CoerceTypes().run(table, CoerceTypesParams(), CTX)
    np.testing.assert_array_equal(result.table["smoker"].to_numpy(), truth)
    new = pd.DataFrame({"smoker": ["yes", "0", "1.0", "NO"]})
    out = reapply_coerce_types(new, {"columns": {"smoker": result.fitted["columns"]["smoker"]}})
    assert out["smoker"].tolist() == [1.0, 0.0, 1.0, 0.0]


def _write(value: float, decimal: str, group: str, unit: str) -> str:
    text = f"{value:,.2f}"  # 1,234.56
    if decimal == ",":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    text = text.replace("," if decimal == "." else ".", group) if group else text
    return f"{unit}{text}" if unit in ("$", "€", "£") else f"{text}{unit}"


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(0, 1e7, allow_nan=False).filter(lambda v: not is_nines_code(round(v, 2))),  # "-999"-like codes
        min_size=12,
        max_size=40,
        unique_by=lambda v: round(v, 2),
    ),
    decimal=st.sampled_from([".", ","]),
    group=st.sampled_from([None, " ", "\u00a0", "'"]),
    unit=st.sampled_from(["", "$", "€", "£", " kg", "%"]),
)
def test_any_column_written_one_way_reads_back_as_its_numbers(
    values: list[float], decimal: str, group: str | None, unit: str
) -> None:
    assume(not all(round(v, 2).is_integer() for v in values))  # whole numbers 0..n read as an identifier
    cells = [_write(v, decimal, group or "", unit) for v in values]
    table = pd.DataFrame({"amount": cells, "outcome": ["a", "b"] * (len(cells) // 2) + ["a"] * (len(cells) % 2)})
    info = profile_table(table, target="outcome")["columns"]["amount"]
    assert info["numeric_as_text"] and info["decimal_mark"] == decimal, (cells[:3], info["evidence"])
    result = CoerceTypes().run(table, CoerceTypesParams(), CTX)
    expected = np.round(values, 2)
    np.testing.assert_allclose(result.table["amount"].to_numpy(), expected, rtol=1e-12)
    # the profile's own parse and the exported reapply agree on every cell
    keys = table["amount"].str.strip()
    profiled = parse_numbers(keys, info["unit"], info["decimal_mark"])
    np.testing.assert_allclose(profiled.to_numpy(), expected, rtol=1e-12)


def test_only_unambiguous_cells_vote_for_the_decimal_mark() -> None:
    keys = pd.Series(["1,234", "2,500", "3,5"])
    assert decimal_mark(keys, pd.Series([10, 10, 1])) == ","  # "1,234" is either; "3,5" is not
    assert decimal_mark(pd.Series(["1,234", "2,500"]), pd.Series([1, 1])) == "."
    assert decimal_mark(pd.Series(["1.234.567", "12"]), pd.Series([1, 1])) == ","
    assert decimal_mark(pd.Series(["1,234,567", "12"]), pd.Series([1, 1])) == "."


def test_new_data_that_cannot_be_read_the_fitted_way_is_reported(coerced) -> None:
    _, result = coerced
    fitted = {"columns": {c: result.fitted["columns"][c] for c in ("decimal_comma", "euro")}}
    fitted["columns"]["euro"] = fitted["columns"]["euro"] | {"max": 1000.0}
    new = pd.DataFrame({"decimal_comma": ["3,5", "3.5", "lots", None], "euro": ["€12,00", "€1.500,00", "€7", "€8"]})
    out = reapply_coerce_types(new, fitted)
    assert out["decimal_comma"].isna().tolist() == [False, True, True, True]
    assert out.attrs["copilot_notes"] == [
        "column 'decimal_comma': 2 cell(s) could not be read as numbers and became missing, e.g. '3.5', 'lots'",
        "column 'euro': 1 cell(s) fell outside [-inf, 1000] and became missing, e.g. '€1.500,00'",
    ]
    assert "copilot_notes" not in result.table.attrs, "the training table's findings say it, with rows"
