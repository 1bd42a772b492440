"""The drop_rows tool: every operator, the missing-target and missing-share rules, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.base import ToolContext, ToolResult
from tools.drop_rows import DropRows

CTX = ToolContext(target="outcome", id_columns=["pid"], seed=0)


def small() -> pd.DataFrame:
    """Eight rows with an index that is not 0..n-1, so labels (not positions) must be reported."""
    return pd.DataFrame(
        {
            "pid": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "age": [25.0, 130.0, 40.0, np.nan, -2.0, 60.0, 120.0, 33.0],
            "city": ["Leeds", "York", None, "Hull", "Leeds", "York", "Bath", "Hull"],
            "bmi": [22.0, np.nan, 30.0, np.nan, 25.0, 27.0, np.nan, 21.0],
            "outcome": ["sick", "well", "well", None, "sick", "well", "sick", None],
        },
        index=range(100, 108),
    )


def run(table: pd.DataFrame, **params: object) -> ToolResult:
    return DropRows().run(table, DropRows.parse_params({"missing_target": False, **params}), CTX)


def dropped(table: pd.DataFrame, *conditions: dict, **params: object) -> list[int]:
    result = run(table, conditions=list(conditions), **params)
    assert result.findings["rows"] == sorted(set(table.index) - set(result.table.index))
    return result.findings["rows"]


@pytest.mark.parametrize(
    ("op", "value", "rows"),
    [
        ("<", 0, [104]),
        ("<=", 25, [100, 104]),
        (">", 120, [101]),
        (">=", 120, [101, 106]),
        ("==", 40, [102]),
        ("!=", 40, [100, 101, 104, 105, 106, 107]),  # the missing age (103) is not "!= 40"
        ("isna", None, [103]),
        ("in", [25, 60], [100, 105]),
        ("not_in", [25, 60], [101, 102, 104, 106, 107]),
    ],
)
def test_numeric_operators(op: str, value: object, rows: list[int]) -> None:
    assert dropped(small(), {"column": "age", "op": op, "value": value}) == rows


@pytest.mark.parametrize(
    ("op", "value", "rows"),
    [
        ("==", "Leeds", [100, 104]),
        ("!=", "Leeds", [101, 103, 105, 106, 107]),
        ("in", ["York", "Bath"], [101, 105, 106]),
        ("in", "York", [101, 105]),
        ("not_in", ["Leeds", "Hull"], [101, 105, 106]),
        ("isna", None, [102]),
        ("notna", None, [100, 101, 103, 104, 105, 106, 107]),
    ],
)
def test_text_operators(op: str, value: object, rows: list[int]) -> None:
    assert dropped(small(), {"column": "city", "op": op, "value": value}) == rows


def test_impossible_ages_with_any_and_all() -> None:
    too_old = {"column": "age", "op": ">", "value": 120}
    negative = {"column": "age", "op": "<", "value": 0}
    assert dropped(small(), too_old, negative) == [101, 104]
    assert dropped(small(), too_old, negative, how="all") == []
    in_york = {"column": "city", "op": "==", "value": "York"}
    assert dropped(small(), too_old, in_york, how="all") == [101]


def test_missing_target_rows_are_dropped_by_default() -> None:
    table = small()
    result = DropRows().run(table, DropRows.parse_params({}), CTX)
    assert result.findings["rows"] == [103, 107]
    assert result.findings["by_reason"]["missing_target"] == 2
    assert result.table["outcome"].notna().all()
    pd.testing.assert_frame_equal(result.table, table.drop(index=[103, 107]))
    assert dropped(table) == []  # missing_target off


def test_rows_with_too_many_missing_features() -> None:
    # features are age, city, bmi: row 103 misses 2 of 3 (67%), rows 101/102/106 miss 1 (33%)
    assert dropped(small(), max_missing_pct=50) == [103]
    assert dropped(small(), max_missing_pct=30) == [101, 102, 103, 106]
    assert dropped(small(), max_missing_pct=100) == []


def test_findings_count_each_reason_and_condition() -> None:
    table = small()
    params = {"conditions": [{"column": "age", "op": ">", "value": 120}], "max_missing_pct": 50}
    result = DropRows().run(table, DropRows.parse_params(params), CTX)
    assert result.findings == {
        "dropped": 3,
        "by_reason": {"conditions": 1, "missing_target": 2, "too_many_missing": 1},
        "per_condition": {"age > 120.0": 1},
        "rows": [101, 103, 107],
    }
    assert "age > 120" in result.summary and "missing target" in result.summary


def test_unknown_column_is_named_with_the_columns() -> None:
    with pytest.raises(ValueError, match=r"'agee'.*pid, age, city"):
        dropped(small(), {"column": "agee", "op": ">", "value": 1})


def test_order_operator_on_a_text_column_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'>'.*'city'"):
        dropped(small(), {"column": "city", "op": ">", "value": 3})


def test_value_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'age' holds numbers"):
        dropped(small(), {"column": "age", "op": "==", "value": "old"})
    with pytest.raises(ValueError, match=r"'city' holds text"):
        dropped(small(), {"column": "city", "op": "in", "value": ["Leeds", 3]})
    with pytest.raises(ValueError, match="needs a value"):
        dropped(small(), {"column": "age", "op": ">"})
    with pytest.raises(ValueError, match="one value"):
        dropped(small(), {"column": "age", "op": "==", "value": [1, 2]})


def test_dropping_every_row_is_refused() -> None:
    with pytest.raises(ValueError, match="all 8 rows"):
        dropped(small(), {"column": "pid", "op": "notna"})


def test_unknown_operator_fails_validation() -> None:
    with pytest.raises(ValueError, match="op"):
        DropRows.parse_params({"conditions": [{"column": "age", "op": "~", "value": 1}]})
