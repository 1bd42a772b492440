"""The preview's account of a change is exact: every dropped row, every changed cell, and nothing else.

Hypothesis makes a table, drops rows, changes cells, adds and removes columns, and checks that the
preview counts exactly what was done, that paging hands every dropped row and changed cell out once,
and that retyping alone (numbers stored as text becoming numbers) is no changed cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.data.preview import cells_page, dropped_page, evidence_by_row, histogram, summarise


@st.composite
def changes(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, set[int], set[tuple[int, str]]]:
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    before = pd.DataFrame({
        "x": rng.normal(size=n).round(2), "k": rng.choice(["a", "b", "c"], n).astype(object),
        "y": rng.choice(["yes", "no"], n).astype(object), "gone": np.arange(n),
    }, index=pd.RangeIndex(n) * 3)  # fmt: skip
    before.loc[before.index[rng.random(n) < 0.2], "x"] = np.nan
    dropped = {int(r) for r in before.index if draw(st.booleans()) and rng.random() < 0.3}
    after = before.drop(index=sorted(dropped)).drop(columns=["gone"]).assign(new=1.0)
    changed = set()
    for row in after.index:
        for column in ("x", "k"):
            if rng.random() < 0.2:
                old = before.at[row, column]
                new = (0.0 if pd.isna(old) else old + 1.0) if column == "x" else old + "!"
                after.at[row, column] = new
                changed.add((int(row), column))
    return before, after, dropped, changed


@settings(max_examples=120, deadline=None)
@given(changes())
def test_the_preview_counts_exactly_what_changed(case: tuple) -> None:
    before, after, dropped, changed = case
    shown = summarise(before, after, {"summary": "s", "metrics": {"m": 1.0}}, target="k")
    assert shown["dropped_rows"] == len(dropped) and shown["rows_after"] == len(before) - len(dropped)
    assert shown["changed_cells"] == len(changed)
    assert sum(c["changed"] for c in shown["columns"]) == len(changed)
    assert shown["columns_added"] == ["new"] and shown["columns_removed"] == ["gone"]
    assert {(c["row"], c["column"]) for c in shown["cells"]} <= changed
    assert [r["row"] for r in shown["dropped"]] == sorted(dropped)[:20]
    rows = [r["row"] for offset in range(0, len(before), 3)
            for r in dropped_page(before, after, {}, offset, 3)["rows"]]  # fmt: skip
    assert rows == sorted(dropped)
    for column in ("x", "k", "y"):
        page = cells_page(before, after, column, 0, 1000)
        assert {(c["row"], column) for c in page["cells"]} == {rc for rc in changed if rc[1] == column}
        assert page["total"] == len(page["cells"])


def test_numbers_stored_as_text_becoming_numbers_are_retyped_not_changed() -> None:
    before = pd.DataFrame({"age": pd.Series(["41", "7", "?", "3.5"], dtype="str")})
    after = pd.DataFrame({"age": [41.0, 7.0, np.nan, 3.5]})
    shown = summarise(before, after, {}, target=None)
    (column,) = shown["columns"]
    assert (column["changed"], column["dtype_before"], column["dtype_after"]) == (1, "str", "float64")
    assert shown["cells"] == [{"row": 2, "column": "age", "before": "?", "after": None}]


def test_the_histogram_shares_bins_and_counts_what_falls_outside() -> None:
    before = pd.Series([1.0, 2.0, 3.0, 4.0, 5000.0, -900.0, np.nan])
    after = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan, np.nan, np.nan])
    drawn = histogram(before, after)
    assert drawn is not None and drawn["edges"][0] == 1.0 and drawn["edges"][-1] == 4.0
    assert sum(drawn["before"]) == sum(drawn["after"]) == 4
    assert drawn["below"] == [1, 0] and drawn["above"] == [1, 0]
    assert histogram(pd.Series(["a", "b"]), pd.Series(["a", "b"])) is None


def test_evidence_joins_the_entries_of_one_row_and_names_the_kept_duplicate() -> None:
    findings = {
        "rows": [{"row": 4, "column": "x", "score": 9.0}, {"row": 4, "column": "y", "score": 7.5}, {"row": 8}],
        "examples": [{"rows": [1, 2, 3], "kept": 1, "size": 3}],
    }
    evidence = evidence_by_row(findings)
    assert evidence[4] == {"column": "x; y", "score": "9.0; 7.5"}
    assert evidence[2] == evidence[3] == {"duplicate_of": 1} and 1 not in evidence


def test_class_counts_say_what_each_class_loses() -> None:
    before = pd.DataFrame({"y": ["a", "a", "b", "b", "b"]})
    after = before.drop(index=[0, 2]).assign(y=["a", "a", "b"])
    assert summarise(before, after, {}, target="y")["class_counts"] == {"a": [2, 2], "b": [3, 1]}
    regression = pd.DataFrame({"y": np.linspace(0, 1, 50)})
    assert summarise(regression, regression, {}, target="y")["class_counts"] is None


def test_values_no_json_client_reads_are_shown_as_text() -> None:
    before = pd.DataFrame({"x": [1.0, np.inf, -np.inf]})
    after = before.assign(x=[1.0, np.nan, np.nan])
    shown = summarise(before, after, {}, target=None)
    assert [c["before"] for c in shown["cells"]] == ["inf", "-inf"]
    gone = dropped_page(before, before.head(1), {}, 0, 10)["rows"]
    assert [r["values"]["x"] for r in gone] == ["inf", "-inf"]


def test_a_harmonise_preview_carries_its_mapping_for_the_person_to_edit() -> None:
    from copilot.cli.preview_text import preview_lines
    from copilot.session.views import PreviewView
    from tools.base import ToolContext
    from tools.harmonise import HarmoniseCategories

    before = pd.DataFrame({"sex": ["Male"] * 6 + ["male"] * 3 + ["M", "Female", "female", "F"] * 2, "n": range(17)})
    result = HarmoniseCategories().run(before, HarmoniseCategories.parse_params({}), ToolContext())
    shown = summarise(before, result.table, {"findings": result.findings}, target=None)
    assert shown["mappings"] == {"sex": [
        {"category": "Male", "cells": 11, "variants": {"Male": 6, "male": 3, "M": 2}},
        {"category": "Female", "cells": 6, "variants": {"Female": 2, "female": 2, "F": 2}},
    ]}  # fmt: skip
    view = PreviewView.model_validate(shown | {"id": "p", "status": "ready", "base_version": "v", "version": None,
                                               "content_hash": None, "params": {}, "duration_s": None})  # fmt: skip
    assert "would map sex: 'male', 'M' → 'Male'; 'F', 'female' → 'Female'" in preview_lines(view)
    unchanged = summarise(before, before, {"findings": {}}, target=None)
    assert unchanged["mappings"] == {}
