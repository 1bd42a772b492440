"""harmonise_categories: spellings of one category become one, real categories stay apart, new data is mapped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.base import ToolContext, ToolResult
from tools.harmonise import HarmoniseCategories, reapply_harmonise
from tools.spelling import MAX_EDITS, edit_distance, fingerprint, group_spellings, spelling_variants

CTX = ToolContext(target="outcome", id_columns=["record_id"], task="classification", seed=0)
#: The seven spellings of the issue, with how many cells each has.
SEVEN = {"Male": 40, "male": 25, "M": 6, "Female": 35, "female": 20, "F": 8, " f ": 3}


def cells(counts: dict[str, int], seed: int = 0) -> list[str]:
    values = [v for v, n in counts.items() for _ in range(n)]
    return list(np.random.default_rng(seed).permutation(np.array(values, dtype=object)))


def sex_table(counts: dict[str, int] = SEVEN, seed: int = 0) -> pd.DataFrame:
    sex = cells(counts, seed)
    n = len(sex)
    rng = np.random.default_rng(seed + 1)
    words = ["fine", "tired", "short of breath", "no complaints", "dizzy"]
    return pd.DataFrame(
        {
            "record_id": [f"R{i:05d}" for i in range(n)],
            "sex": sex,
            "note": [f"patient reports {rng.choice(words)} on visit {i}" for i in range(n)],
            "outcome": rng.choice(["sick", "well", "Well"], n),
        }
    )


def harmonise(table: pd.DataFrame, params: dict | None = None, ctx: ToolContext = CTX) -> ToolResult:
    return HarmoniseCategories().run(table, HarmoniseCategories.parse_params(params), ctx)


def report(result: ToolResult, column: str) -> dict:
    return next(r for r in result.findings["columns"] if r["column"] == column)


def test_seven_spellings_become_the_two_most_frequent() -> None:
    table = sex_table()
    result = harmonise(table)
    assert table["sex"].nunique() == 7
    assert result.table["sex"].value_counts().to_dict() == {"Male": 71, "Female": 66}
    r = report(result, "sex")
    assert (r["spellings_before"], r["categories_after"], r["cells_changed"]) == (7, 2, 62)
    assert r["groups"][0] == {"canonical": "Male", "count": 71, "variants": {"Male": 40, "male": 25, "M": 6}}
    assert r["groups"][1]["variants"] == {"Female": 35, "female": 20, "F": 8, " f ": 3}
    assert result.fitted["columns"]["sex"]["canonical"] == ["Female", "Male"]
    assert result.metrics["cells_changed"] == 62 and result.metrics["spellings_merged"] == 5
    assert "7 spellings became 2 categories" in result.summary
    json.dumps(result.fitted)


def test_the_canonical_spelling_is_the_most_frequent_one_as_written() -> None:
    result = harmonise(sex_table({"male": 50, "Male": 10, "MALE": 10, "female": 30, "Female": 30}))
    assert set(result.table["sex"]) == {"male", "Female"}  # female and Female tie: the first in sort order


def test_an_abbreviation_or_a_misspelling_never_names_the_category() -> None:
    groups = group_spellings({"F": 50, "Female": 5, "female": 5, "M": 40, "male": 10, "femal": 1})
    assert [(g.canonical, g.count) for g in groups] == [("Female", 61), ("male", 50)]
    tie = group_spellings({"F": 2, "Female": 2, "female": 2})
    assert [g.canonical for g in tie] == ["Female"]


def test_two_frequent_near_spellings_stay_apart() -> None:
    table = sex_table({"Leeds": 50, "Lees": 45, "York": 40})
    result = harmonise(table)
    assert set(result.table["sex"]) == {"Leeds", "Lees", "York"}
    assert result.metrics["cells_changed"] == 0


def test_a_rare_misspelling_joins_its_frequent_neighbour() -> None:
    table = sex_table({"Female": 60, "femal": 2, "Male": 50, "mael": 1, "Leeds": 30})
    result = harmonise(table)
    assert result.table["sex"].value_counts().to_dict() == {"Female": 62, "Male": 51, "Leeds": 30}
    off = harmonise(table, {"near_miss": False})
    assert set(off.table["sex"]) == {"Female", "femal", "Male", "mael", "Leeds"}


@pytest.mark.parametrize(
    "counts",
    [
        {"O+": 40, "O-": 30, "A+": 30, "A-": 10, "AB+": 5, "B+": 12},  # the sign is the category
        {"A": 40, "B": 30, "AB": 10, "O": 45},  # A is not short for AB
        {"A": 40, "B": 30, "C": 20, "F": 5, "Fail": 10},  # a grade F is not short for Fail
        {"type 1": 60, "type 2": 5, "G1": 40, "G2": 3},  # digits differ
    ],
)
def test_real_categories_are_never_merged(counts: dict[str, int]) -> None:
    result = harmonise(sex_table(counts))
    assert set(result.table["sex"]) == set(counts)


def test_the_persons_mapping_wins() -> None:
    mapping = {"sex": {"M": "M", "Male": "man", "F": "Female", "unk": "Unknown"}}
    result = harmonise(sex_table(), {"mapping": mapping})
    counts = result.table["sex"].value_counts().to_dict()
    assert counts == {"man": 65, "Female": 66, "M": 6}  # M kept apart; the Male group renamed as a whole
    assert result.fitted["columns"]["sex"]["mapping"]["unk"] == "Unknown"  # kept for new data


def test_identifiers_free_text_and_the_target_are_left_alone() -> None:
    table = sex_table()
    table["code"] = [f"c{i % 3}" if i % 2 else f"C{i % 3}" for i in range(len(table))]
    result = harmonise(table)
    assert set(result.fitted["columns"]) == {"sex", "code"}
    for col in ("record_id", "note", "outcome"):
        pd.testing.assert_series_equal(result.table[col], table[col])
    with pytest.raises(ValueError, match="identifiers"):
        harmonise(table, {"columns": ["record_id"]})
    named = harmonise(table, {"columns": ["outcome"]})
    assert table["outcome"].nunique() == 3 and named.table["outcome"].nunique() == 2  # the target only when named


def test_reapply_maps_known_variants_and_reports_unseen_ones() -> None:
    fitted = json.loads(json.dumps(harmonise(sex_table()).fitted))
    new = pd.DataFrame({"sex": ["male", " f ", "MALE", "m.", "X", "unk", "X", None], "age": range(8)})
    out = reapply_harmonise(new, fitted)
    assert out["sex"].tolist()[:4] == ["Male", "Female", "Male", "Male"]  # seen; unseen, by key
    assert out["sex"].tolist()[4:7] == ["X", "unk", "X"] and pd.isna(out["sex"].iloc[7])
    assert out.attrs["copilot_notes"] == ["column 'sex': 2 values not seen when fitted, left as they are: 'X', 'unk'"]
    assert "copilot_notes" not in new.attrs
    with pytest.raises(ValueError, match="missing from the data"):
        reapply_harmonise(new.drop(columns="sex"), fitted)


def test_the_profile_counts_spelling_variants() -> None:
    from tools.feature_types import profile_table

    profile = profile_table(sex_table(), "outcome", ["record_id"])
    assert profile["columns"]["sex"]["spelling_variants"] == 5
    clean = profile_table(sex_table({"Male": 40, "Female": 40}), "outcome", ["record_id"])
    assert clean["columns"]["sex"]["spelling_variants"] == 0


spellings = st.text(alphabet="abcdeflmMF +.-é", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(spellings, st.integers(1, 60), min_size=1, max_size=12))
def test_merges_stay_within_the_allowed_edits_and_a_second_run_changes_nothing(counts: dict[str, int]) -> None:
    table = pd.DataFrame({"v": cells(counts), "outcome": "x"})
    ctx = ToolContext(target="outcome")
    first = harmonise(table, {"columns": ["v"]}, ctx)
    mapping = first.fitted["columns"]["v"]["mapping"]
    for variant, category in mapping.items():
        a, b = fingerprint(variant), fingerprint(category)
        abbreviation = (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))
        assert a == b or abbreviation or edit_distance(a, b) <= MAX_EDITS, (variant, category)
    second = harmonise(first.table, {"columns": ["v"]}, ctx)
    assert second.metrics["cells_changed"] == 0
    pd.testing.assert_frame_equal(second.table, first.table)


@given(st.text(max_size=12))
def test_reapply_keys_values_as_the_tool_does(value: str) -> None:
    fitted = {"columns": {"v": {"mapping": {}, "keys": {fingerprint(value): "hit"}, "role": "feature"}}}
    out = reapply_harmonise(pd.DataFrame({"v": [value]}), fitted)
    assert out["v"].iloc[0] == ("hit" if fingerprint(value) else value)


def test_spelling_helpers() -> None:
    assert fingerprint("  Café, au lait. ") == fingerprint("lait AU  cafe") == "au cafe lait"
    assert fingerprint("O+") != fingerprint("O-") != fingerprint("O")
    assert edit_distance("mael", "male") == 1 and edit_distance("leeds", "lees") == 1
    assert edit_distance("abcdef", "uvwxyz") == MAX_EDITS + 1
    assert spelling_variants(SEVEN) == 5
    assert [g.canonical for g in group_spellings({"Y": 3, "yes": 10, "No": 8, "n": 2, "not known": 4})] == [
        "yes",
        "No",
        "not known",
    ]


@pytest.mark.parametrize("dtype", [object, "str", "string", "category"])
def test_reapply_works_by_value_whatever_the_index_and_dtype(dtype: object) -> None:
    fitted = {"columns": {"v": {"mapping": {"a": "A", "A": "A"}, "keys": {"a": "A"}, "role": "feature"}}}
    table = pd.DataFrame({"v": pd.Series(["a", "A", None, "b"], dtype=dtype, index=[1, 1, 2, 2])})
    out = reapply_harmonise(table, fitted)
    assert out["v"].tolist()[:2] == ["A", "A"] and pd.isna(out["v"].iloc[2]) and out["v"].iloc[3] == "b"
    assert out.attrs["copilot_notes"] == ["column 'v': 1 value not seen when fitted, left as it is: 'b'"]
