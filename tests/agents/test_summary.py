"""What an LLM may see of a table: every shown value stands for at least k rows, at every share level."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.summary import MIN_COUNT, coarse, shape, summarize
from tests.conftest import messy_table
from tools.column_facts import column_facts
from tools.feature_types import profile_table

K = MIN_COUNT


def _summary(table: pd.DataFrame, share: str = "aggregates", target: str = "outcome", ids: tuple[str, ...] = ()):
    profile = profile_table(table, target=target, id_columns=list(ids))
    return summarize(profile, target, list(ids), share, table)  # type: ignore[arg-type]


def _stands_for_k_rows(value: float, cells: np.ndarray) -> bool:
    """At least k cells round to ``value`` at two or at one significant digit, and at least k cells lie at or
    beyond it on each side: the invariant every shown number keeps."""
    cells = np.sort(cells)
    if min(np.sum(cells <= value), np.sum(cells >= value)) < K:
        return False
    if value == 0:
        return int(np.sum(cells == 0)) >= K
    magnitude = np.floor(np.log10(abs(value)))
    return any(np.sum(np.abs(cells - value) <= 10 ** (magnitude - d + 1) / 2) >= K for d in (2, 1))


def _numbers_shown(summary: dict[str, Any], column: str) -> list[float]:
    entry = summary["columns"][column]
    if "quantiles" not in entry:  # not a number column: its samples are levels seen at least k times
        return []
    rows = [row[column] for row in summary.get("sample_rows", []) if row.get(column) is not None]
    return [*entry["quantiles"].values(), *rows]


def test_by_default_no_cell_of_any_column_is_sent_only_counts_and_coarse_numbers() -> None:
    table = messy_table(300)
    summary = _summary(table, ids=("record_id",))
    sent = json.dumps(summary)
    for column in ("record_id", "note", "city", "smoker", "outcome"):
        assert not [v for v in table[column].unique() if f'"{v}"' in sent], column
    assert "evidence" not in sent and "patient reports" not in sent and '"?"' not in sent
    city = summary["columns"]["city"]["levels"]
    assert [lv["level"] for lv in city] == ["level_1", "level_2", "level_3", "level_4"]
    assert sum(lv["count"] for lv in city) == len(table) and {lv["shape"] for lv in city} == {"Aa"}
    counts = table["outcome"].value_counts()
    assert summary["target"]["classes"] == {"class_1": counts.iloc[0], "class_2": counts.iloc[1]}
    weight = summary["columns"]["weight"]
    assert set(weight["quantiles"]) <= {"p1", "p5", "p25", "p50", "p75", "p95", "p99"}
    assert weight["far_outside_quartiles"] == 1  # the unit slip is counted, its value is not shown
    assert not {"min", "max", "mean", "std", "stats", "top_values"} & set(weight)


def test_categories_name_the_common_levels_and_classes_and_nothing_rarer() -> None:
    table = messy_table(300)
    table.loc[:1, "city"] = "Atlantis"  # two cells: below k
    summary = _summary(table, "categories", ids=("record_id",))
    levels = {lv["level"] for lv in summary["columns"]["city"]["levels"]}
    assert levels == {"Leeds", "York", "Hull", "Bath"}
    assert set(summary["target"]["classes"]) == {"sick", "well"}
    assert "Atlantis" not in json.dumps(summary) and "sample_rows" not in summary


def test_a_quantile_with_fewer_than_k_rows_beyond_it_is_left_out() -> None:
    ages = np.r_[np.arange(20, 90).repeat(2)[:119], 103]  # 120 people, one aged 103
    table = pd.DataFrame({"age": ages, "outcome": ["a", "b"] * 60})
    quantiles = _summary(table)["columns"]["age"]["quantiles"]
    assert "p1" not in quantiles and "p99" not in quantiles  # about one row lies beyond each
    assert 103 not in quantiles.values() and all(_stands_for_k_rows(v, ages) for v in quantiles.values())


def test_samples_leave_out_identifiers_text_dates_rare_levels_and_outlier_rows() -> None:
    n = 200
    rng = np.random.default_rng(3)
    table = pd.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(n)],
        "dob": [f"19{40 + i % 50}-0{1 + i % 9}-1{i % 10}" for i in range(n)],
        "note": [f"felt odd on day {i} after the long walk" for i in range(n)],
        "age": rng.integers(20, 90, n),
        "ward": rng.choice(["north", "south"], n).astype(object),
        "outcome": rng.choice(["sick", "well"], n),
    })  # fmt: skip
    table.loc[0, "age"] = 103
    table.loc[1, "ward"] = "attic"
    rows = _summary(table, "samples", ids=("patient_id",))["sample_rows"]
    assert len(rows) == 5 and all(set(row) == {"age", "ward", "outcome"} for row in rows)
    assert all(row["ward"] in {"north", "south"} and row["age"] != 103 for row in rows)
    assert _summary(table, "categories").get("sample_rows") is None


def test_personal_data_gives_its_counts_only_even_where_its_values_are_common() -> None:
    n = 100
    table = pd.DataFrame({
        "email": [f"carer{i % 5}@example.org" for i in range(n)],  # five addresses, each in 20 rows
        "age": np.arange(n) % 60 + 20,
        "outcome": ["sick", "well"] * (n // 2),
    })  # fmt: skip
    out = _summary(table, "samples")
    assert out["columns"]["email"]["type"] == "personal" and "levels" not in out["columns"]["email"]
    assert "@" not in json.dumps(out) and all("email" not in row for row in out["sample_rows"])


@st.composite
def _number_columns(draw: st.DrawFn) -> np.ndarray:
    """Whole numbers from a few or many distinct values, or decimals, with a few extremes added."""
    n = draw(st.integers(12, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["ages", "counts", "decimals", "skewed"]))
    cells = {
        "ages": lambda: rng.integers(18, 95, n).astype(float),
        "counts": lambda: rng.poisson(draw(st.floats(0.2, 30)), n).astype(float),
        "decimals": lambda: rng.normal(draw(st.floats(-1e4, 1e4)), draw(st.floats(1e-3, 1e3)), n).round(3),
        "skewed": lambda: rng.lognormal(draw(st.floats(-3, 8)), 1.5, n).round(2),
    }[kind]()
    extremes = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=3))
    cells[: len(extremes)] = extremes
    return cells


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=_number_columns(), share=st.sampled_from(["aggregates", "samples"]))
def test_every_number_shown_stands_for_at_least_k_rows(cells: np.ndarray, share: str) -> None:
    table = pd.DataFrame({"x": cells, "outcome": np.resize(["a", "b"], len(cells))})
    profile = profile_table(table, target="outcome")
    summary = summarize(profile, "outcome", [], share, table)  # type: ignore[arg-type]
    valid = column_facts(table["x"]).numbers
    assert valid is not None
    for value in _numbers_shown(summary, "x"):
        assert _stands_for_k_rows(value, valid), (value, sorted(valid)[:8], sorted(valid)[-8:])


@given(value=st.floats(-1e9, 1e9, allow_subnormal=False), spread=st.floats(0, 1e3))
def test_coarse_keeps_at_most_two_significant_digits(value: float, spread: float) -> None:
    cells = np.sort(value + np.linspace(-spread, spread, 50))
    shown = coarse(value, cells)
    assert shown is None or float(f"{shown:.2g}") == shown


def test_shape_says_character_classes_never_characters() -> None:
    assert shape("Dr. Ann Lee") == "Aa. Aa Aa"
    assert shape("02139") == "9" and shape("positive") == "a" and shape("O+") == "A."
