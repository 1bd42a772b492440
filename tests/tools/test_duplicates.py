"""The duplicates tool on planted exact copies, near copies and conflicting labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.base import ToolContext, ToolResult
from tools.duplicates import Duplicates

CTX = ToolContext(target="outcome", id_columns=["record_id"], seed=0)


def records(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Distinct rows (continuous weight makes accidental equality practically impossible)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "record_id": [f"R{i:04d}" for i in range(n)],
            "weight": rng.normal(75, 12, n),
            "age": rng.integers(20, 80, n),
            "city": rng.choice(["Leeds", "York", "Hull"], n),
            "outcome": rng.choice(["sick", "well"], n),
        }
    )


def copy_rows(table: pd.DataFrame, pairs: list[tuple[int, int]], same_record: bool = True) -> pd.DataFrame:
    """Overwrite row ``dst`` with the values of row ``src``: the same record written twice, or, with
    ``same_record=False``, another record (its own id) whose values all match."""
    out = table.copy()
    columns = [c for c in out.columns if same_record or c != "record_id"]
    for src, dst in pairs:
        out.loc[dst, columns] = out.loc[src, columns].to_numpy()
    return out.astype(table.dtypes.to_dict())


def run(table: pd.DataFrame, **params: object) -> ToolResult:
    return Duplicates().run(table, Duplicates.parse_params(params), CTX)


def test_exact_copies_of_a_record_are_dropped_keeping_the_first() -> None:
    table = copy_rows(records(), [(3, 50), (3, 90), (10, 200)])
    result = run(table)
    assert result.findings["groups"] == 2
    assert result.findings["duplicate_rows"] == 3
    assert result.findings["examples"] == [
        {"rows": [3, 50, 90], "kept": 3, "size": 3},
        {"rows": [10, 200], "kept": 10, "size": 2},
    ]
    assert "record_id" not in result.findings["columns_compared"]
    pd.testing.assert_frame_equal(result.table, table.drop(index=[50, 90, 200]))


def test_keep_last_and_flag() -> None:
    table = copy_rows(records(), [(3, 50)])
    last = run(table, keep="last")
    assert 3 not in last.table.index and 50 in last.table.index
    assert last.findings["examples"][0]["kept"] == 50
    flagged = run(table, action="flag")
    pd.testing.assert_frame_equal(flagged.table, table)
    assert flagged.findings["duplicate_rows"] == 1


def test_near_copies_are_found_in_near_mode_only() -> None:
    table = copy_rows(records(), [(4, 60), (8, 120)])
    table.loc[60, "weight"] += 0.001
    table.loc[4, "city"] = " Leeds"
    table.loc[60, "city"] = "leeds"
    table.loc[120, "city"] = table.loc[8, "city"].upper() + "  "
    assert run(table, mode="exact").findings["groups"] == 0
    near = run(table, mode="near")
    assert [e["rows"] for e in near.findings["examples"]] == [[4, 60], [8, 120]]
    assert sorted(set(table.index) - set(near.table.index)) == [60, 120]


def test_near_mode_does_not_merge_rows_that_differ_in_substance() -> None:
    table = records()
    table.loc[1, ["age", "city", "outcome"]] = [
        table.loc[0, "age"],
        table.loc[0, "city"],
        table.loc[0, "outcome"],
    ]
    table.loc[1, "weight"] = table.loc[0, "weight"] + 2.0  # about 0.17 standard deviations apart
    table.loc[2, "weight"] = 75000.0  # a unit slip must not widen the bins
    assert run(table, mode="near").findings["groups"] == 0


def test_conflicting_labels_are_reported_not_merged() -> None:
    table = copy_rows(records(), [(5, 70), (6, 80)])
    table.loc[70, "outcome"] = "well" if table.loc[5, "outcome"] == "sick" else "sick"
    result = run(table)
    assert result.findings["groups"] == 1  # only 6/80; 5/70 disagree on the label
    conflicts = result.findings["conflicts"]
    assert conflicts["groups"] == 1 and conflicts["rows"] == 2
    assert conflicts["examples"][0]["rows"] == [5, 70]
    assert set(conflicts["examples"][0]["labels"]) == {"sick", "well"}
    assert 70 in result.table.index
    assert "conflicting labels" in result.summary


def test_without_the_target_conflicting_rows_count_as_duplicates() -> None:
    table = copy_rows(records(), [(5, 70)])
    table.loc[70, "outcome"] = "well" if table.loc[5, "outcome"] == "sick" else "sick"
    result = run(table, include_target=False)
    assert result.findings["groups"] == 1
    assert 70 not in result.table.index
    pd.testing.assert_series_equal(result.table["outcome"], table.drop(index=70)["outcome"])


def test_identifier_typed_columns_are_not_compared_but_tell_records_apart() -> None:
    table = copy_rows(records(), [(3, 50)])
    table["visit_code"] = [f"V{i}" for i in range(len(table))]
    ctx = ToolContext(target="outcome", id_columns=["record_id"], column_types={"visit_code": "identifier"})
    result = Duplicates().run(table, Duplicates.parse_params({}), ctx)
    assert "visit_code" not in result.findings["columns_compared"]
    assert result.findings["groups"] == 0 and result.findings["distinct_records"]["groups"] == 1
    table["visit_code"] = "V"  # the same visit
    assert Duplicates().run(table, Duplicates.parse_params({}), ctx).findings["groups"] == 1


def test_distinct_records_with_equal_values_are_kept_and_reported() -> None:
    """Different patients (different ids) who share every score are not duplicates: nothing of them is
    dropped; the same record written twice still is."""
    table = copy_rows(records(), [(3, 50), (3, 90)], same_record=False)
    table = copy_rows(table, [(10, 200)])
    result = run(table)
    assert result.findings["groups"] == 1 and result.findings["duplicate_rows"] == 1
    assert result.findings["distinct_records"] == {"groups": 1, "rows": 3, "examples": [{"rows": [3, 50, 90]}]}
    pd.testing.assert_frame_equal(result.table, table.drop(index=[200]))
    assert "different records that look alike, kept" in result.summary


def test_without_an_identifier_every_look_alike_counts_as_a_repeat() -> None:
    table = copy_rows(records(), [(3, 50)], same_record=False).drop(columns="record_id")
    result = Duplicates().run(table, Duplicates.parse_params({}), ToolContext(target="outcome"))
    assert result.findings["groups"] == 1 and 50 not in result.table.index


def test_no_duplicates_leaves_the_table_unchanged() -> None:
    table = records()
    result = run(table)
    assert result.findings["groups"] == 0
    pd.testing.assert_frame_equal(result.table, table)
    assert "No exact duplicate" in result.summary


@pytest.mark.parametrize("mode", ["exact", "near"])
def test_missing_values_match_each_other(mode: str) -> None:
    table = copy_rows(records(), [(7, 77)])
    table.loc[[7, 77], "weight"] = np.nan
    assert run(table, mode=mode).findings["examples"][0]["rows"] == [7, 77]


def _survey(n: int, seed: int) -> pd.DataFrame:
    """Coded answers only: different people often give the same answers to every question."""
    rng = np.random.default_rng(seed)
    answers = {f"q{i}": rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1]) for i in range(5)}
    return pd.DataFrame({**answers, "outcome": rng.choice(["yes", "no"], n)})


def test_identical_coded_answers_expected_by_chance_are_reported_not_dropped() -> None:
    table = _survey(2000, seed=1)
    result = Duplicates().run(table, Duplicates.parse_params({}), ToolContext(target="outcome"))
    assert result.findings["duplicate_rows"] > 500  # many look-alikes
    assert result.findings["expected_by_chance"] and result.findings["chance_pairs"] > 100
    pd.testing.assert_frame_equal(result.table, table)
    assert "by chance" in result.summary and "nothing was dropped" in result.summary
    forced = Duplicates().run(
        table, Duplicates.parse_params({"require_evidence": False}), ToolContext(target="outcome")
    )
    assert len(forced.table) == len(table) - result.findings["duplicate_rows"]


def test_copies_among_distinct_measurements_are_not_chance_and_are_dropped() -> None:
    table = copy_rows(records(), [(3, 50), (7, 90)], same_record=False).drop(columns="record_id")
    result = Duplicates().run(table, Duplicates.parse_params({}), ToolContext(target="outcome"))
    assert not result.findings["expected_by_chance"] and result.findings["chance_pairs"] <= 0.01
    assert {50, 90}.isdisjoint(result.table.index)
