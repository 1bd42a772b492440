"""The held-out slice: the same rows in every version, and out of reach of row-level tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.plan import Guidance
from copilot.session.step_runner import StepCall, StepRunner
from tests.conftest import messy_table
from tests.tools.sandbox_tools import HOSTILE
from tools.holdout import changed_rows, held_out, rejoin, scored_rows, share_for
from tools.sandbox import CallContext, Limits, Sandbox

SHARE = 0.25
CTX = CallContext(target="outcome", id_columns=["record_id"], task="classification", holdout=SHARE)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.integers(0, 10**6), min_size=1, max_size=300, unique=True),
    keep=st.lists(st.booleans(), min_size=300, max_size=300),
    seed=st.integers(0, 10**6),
)
def test_a_row_is_in_or_out_whatever_else_the_table_holds(rows: list[int], keep: list[bool], seed: int) -> None:
    index = pd.Index(rows)
    mask = held_out(index, SHARE, seed)
    subset = index[np.array(keep[: len(rows)])]
    assert held_out(subset, SHARE, seed).tolist() == mask[np.array(keep[: len(rows)])].tolist()
    assert held_out(index[::-1], SHARE, seed).tolist() == mask[::-1].tolist()  # order does not matter either


def test_the_slice_is_about_the_share_asked_and_depends_on_the_seed() -> None:
    index = pd.RangeIndex(20_000)
    first, other = held_out(index, 0.2, 0), held_out(index, 0.2, 1)
    assert 0.19 < first.mean() < 0.21
    assert (first != other).mean() > 0.1
    assert not held_out(index, 0.0, 0).any()


def test_too_few_labelled_rows_set_nothing_aside() -> None:
    assert share_for(149, 0.2) == 0.0 and share_for(150, 0.2) == 0.2 and share_for(10_000, 0.0) == 0.0


def test_rows_without_a_target_are_not_held_out() -> None:
    table = pd.DataFrame({"x": range(400), "y": ["a", None] * 200})
    rows = scored_rows(table, "y", SHARE, 0)
    assert rows.any() and table.loc[rows, "y"].notna().all()
    assert not scored_rows(table, None, SHARE, 0).any()


def test_rejoin_puts_the_rows_back_in_their_places_and_refuses_what_it_cannot() -> None:
    table = pd.DataFrame({"x": range(10), "y": list("ababababab")})
    held = table.iloc[[2, 5, 7]]
    out = table.drop(index=[2, 5, 7, 8])  # the tool dropped row 8
    assert rejoin(out, held, table.index).index.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    with pytest.raises(ValueError, match="columns"):
        rejoin(out.drop(columns=["x"]), held, table.index)
    with pytest.raises(ValueError, match="repeated"):
        rejoin(table.iloc[[0, 2]], held, table.index)


def test_changed_rows_sees_drops_and_edits_but_not_equal_values_of_another_dtype() -> None:
    before = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", "b", None, "b"]})
    mask = np.array([True, True, True, False])
    assert changed_rows(before, before.astype({"x": "float64"}), mask) == []
    assert changed_rows(before, before.drop(index=[1]), mask) == [1]
    assert changed_rows(before, before.assign(y=["a", "a", None, "a"]), mask) == [1]
    assert changed_rows(before, before.assign(y=["a", "a", None, "a"]), mask, ["x"]) == []
    assert changed_rows(before, before.drop(index=[0]), mask, []) == [0]
    twice = pd.concat([before, before.iloc[[0]]], ignore_index=True)  # row 4 repeats row 0
    both = np.array([True, True, True, False, True])
    assert changed_rows(twice, twice.drop(index=[4]), both) == []  # one copy of a repeat may go
    assert changed_rows(twice, twice.drop(index=[0, 4]), both) == [0, 4]  # not both


# --- through the sandbox -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    limits = Limits(memory_mb=2048, cpu_seconds=30, wall_seconds=60)
    return Sandbox(limits, tmp_path_factory.mktemp("sandbox"), extra_tools=tuple(HOSTILE))


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "v0.parquet"
    messy_table(200).to_parquet(path)
    return path


def test_a_row_level_tool_never_sees_the_held_out_rows(sandbox: Sandbox, table_file: Path) -> None:
    before = pd.read_parquet(table_file)
    held = scored_rows(before, "outcome", SHARE, 0)
    out = sandbox.run("flatterer", table_file, {"relabel_to": "well"}, CTX)
    assert out.ok, out.error
    after = pd.read_parquet(out.table_path)
    assert after.index.tolist() == sorted(after.index.tolist())  # the rows keep their order
    pd.testing.assert_frame_equal(after.loc[before.index[held]], before[held])  # every held-out row, unchanged
    assert len(after) == held.sum() + 5 and (after.drop(index=before.index[held])["outcome"] == "well").all()
    sandbox.discard(out)


def test_without_a_holdout_the_same_tool_reaches_every_row(sandbox: Sandbox, table_file: Path) -> None:
    out = sandbox.run("flatterer", table_file, {}, CallContext(target="outcome", id_columns=["record_id"]))
    assert out.ok and len(pd.read_parquet(out.table_path)) == 5
    sandbox.discard(out)


def test_a_tool_that_invents_rows_under_held_out_labels_fails(sandbox: Sandbox, table_file: Path) -> None:
    out = sandbox.run("impostor", table_file, {}, CTX)
    assert not out.ok and out.error_kind == "tool" and "held-out rows cannot be put back" in (out.error or "")


def test_a_cell_repairing_tool_fixes_held_out_slips_but_drops_no_held_out_row(
    sandbox: Sandbox, table_file: Path
) -> None:
    before = pd.read_parquet(table_file)
    held = scored_rows(before, "outcome", SHARE, 0)
    slipped = before.index[held][0]
    source = table_file.with_name("slipped.parquet")
    before.assign(weight=before["weight"].where(before.index != slipped, 80_000.0)).to_parquet(source)
    repaired = sandbox.run("outliers", source, {"columns": ["weight"], "action": "set_missing"}, CTX)
    assert repaired.ok, repaired.error
    assert pd.isna(pd.read_parquet(repaired.table_path).loc[slipped, "weight"])  # the slip is repaired
    sandbox.discard(repaired)
    dropping = sandbox.run("outliers", source, {"columns": ["weight"], "action": "drop"}, CTX)
    assert dropping.ok, dropping.error
    after = pd.read_parquet(dropping.table_path)
    assert set(before.index[held]) <= set(after.index)  # the held-out row with the slip is kept as it was
    assert after.loc[slipped, "weight"] == 80_000.0
    sandbox.discard(dropping)


def _call(tool: str, train_only: bool, repairs: bool = False) -> StepCall:
    return StepCall(1, tool, {}, "v0", Path("unused"), CTX, train_only, True, Guidance(), repairs)


def test_the_step_runner_refuses_any_step_that_drops_or_edits_a_held_out_row() -> None:
    """The runner's own check, outside the sandbox: it holds even if the child were subverted."""
    before = messy_table(200)
    held = before.index[scored_rows(before, "outcome", SHARE, 0)]
    dropped = before.drop(index=held[:3])
    edited = before.copy()
    edited.loc[held[0], "outcome"] = "well" if edited.loc[held[0], "outcome"] == "sick" else "sick"
    imputed = before.assign(weight=before["weight"].fillna(75.0))
    assert "dropped 3 of the rows held out" in (
        StepRunner._holdout_broken(_call("impute", False), before, dropped) or ""
    )
    assert "changed or dropped 1" in (StepRunner._holdout_broken(_call("label_issues", True), before, edited) or "")
    assert StepRunner._holdout_broken(_call("impute", False), before, imputed) is None  # column-level: may fill
    assert StepRunner._holdout_broken(_call("label_issues", True), before, before.drop(index=[i for i in before.index
                                      if i not in held][:4])) is None  # fmt: skip
