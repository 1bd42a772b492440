"""The drop_columns tool: what it drops by default, what it refuses, and its reapply."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tools.base import ToolContext, ToolResult
from tools.drop_columns import DropColumns, reapply_drop_columns

CTX = ToolContext(target="outcome", id_columns=["record_id"], seed=0)


def table_with_junk(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mostly_missing = rng.normal(0, 1, n)
    mostly_missing[: int(n * 0.97)] = np.nan
    half_missing = rng.normal(0, 1, n)
    half_missing[: n // 2] = np.nan
    return pd.DataFrame(
        {
            "record_id": [f"R{i}" for i in range(n)],
            "age": rng.integers(20, 80, n),
            "site": "A",
            "mostly_missing": mostly_missing,
            "half_missing": half_missing,
            "empty": np.nan,
            "outcome": "sick",  # a constant target is still never dropped
        }
    )


def run(table: pd.DataFrame, ctx: ToolContext = CTX, **params: object) -> ToolResult:
    return DropColumns().run(table, DropColumns.parse_params(params), ctx)


def test_default_drops_constant_and_mostly_missing_features() -> None:
    table = table_with_junk()
    result = run(table)
    reasons = {d["column"]: d["reason"] for d in result.findings["dropped"]}
    assert reasons == {
        "site": "constant: every value is 'A'",
        "mostly_missing": "97.0% missing (threshold 95%)",
        "empty": "100.0% missing (threshold 95%)",
    }
    assert list(result.table.columns) == ["record_id", "age", "half_missing", "outcome"]
    pd.testing.assert_frame_equal(result.table, table[["record_id", "age", "half_missing", "outcome"]])


def test_threshold_is_honoured() -> None:
    dropped = {d["column"] for d in run(table_with_junk(), max_missing_pct=50).findings["dropped"]}
    assert dropped == {"site", "mostly_missing", "empty", "half_missing"}


def test_declared_constant_type_is_dropped() -> None:
    table = table_with_junk()
    table["almost"] = ["x"] * 199 + ["y"]
    ctx = ToolContext(target="outcome", id_columns=["record_id"], column_types={"almost": "constant"})
    assert "almost" in {d["column"] for d in run(table, ctx).findings["dropped"]}
    assert "almost" not in {d["column"] for d in run(table).findings["dropped"]}


def test_named_columns_are_dropped_and_reapplied() -> None:
    table = table_with_junk()
    result = run(table, columns=["age", "half_missing"])
    assert result.findings["dropped"] == [
        {"column": "age", "reason": "requested"},
        {"column": "half_missing", "reason": "requested"},
    ]
    fitted = json.loads(json.dumps(result.fitted))
    new = table_with_junk(10).drop(columns="half_missing")  # an absent column is fine
    assert list(reapply_drop_columns(new, fitted).columns) == [
        "record_id",
        "site",
        "mostly_missing",
        "empty",
        "outcome",
    ]


@pytest.mark.parametrize("column", ["outcome", "record_id"])
def test_target_and_ids_are_refused(column: str) -> None:
    with pytest.raises(ValueError, match=column):
        run(table_with_junk(), columns=[column])


def test_unknown_column_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"'aeg'.*record_id, age, site"):
        run(table_with_junk(), columns=["aeg"])


def test_nothing_to_drop() -> None:
    table = table_with_junk()[["record_id", "age", "outcome"]]
    result = run(table)
    assert result.findings["dropped"] == []
    pd.testing.assert_frame_equal(result.table, table)
    assert result.fitted == {"columns": []}
