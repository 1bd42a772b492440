"""The person's rules: an LLM's reading can only tighten them, and the guard checks calls and outputs alike."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from agents.guard import comply, output_violations, violations
from agents.plan import Guidance
from agents.rules import suggest
from agents.worker import ToolCall

COLUMNS = ["age", "bmi", "weight"]
bound = st.one_of(st.none(), st.integers(-50, 300).map(float))
ranges = st.dictionaries(st.sampled_from(COLUMNS), st.tuples(bound, bound).filter(
    lambda r: r[0] is None or r[1] is None or r[0] <= r[1]), max_size=3)  # fmt: skip
guidance = st.builds(Guidance, ranges=ranges, keep_columns=st.lists(st.sampled_from(COLUMNS), unique=True),
                     allow_row_drops=st.booleans(), goal=st.sampled_from(["", "predict outcome"]))  # fmt: skip


def _low(rule: tuple[float | None, float | None]) -> float:
    return -math.inf if rule[0] is None else rule[0]


def _high(rule: tuple[float | None, float | None]) -> float:
    return math.inf if rule[1] is None else rule[1]


@given(current=guidance, read=guidance)
def test_a_suggestion_never_loosens_a_rule_in_force(current: Guidance, read: Guidance) -> None:
    tightened, changes, refused = suggest(current, read)
    assert set(current.keep_columns) <= set(tightened.keep_columns)
    assert tightened.allow_row_drops <= current.allow_row_drops
    for column, rule in current.ranges.items():
        new = tightened.ranges[column]
        assert _low(new) >= _low(rule) and _high(new) <= _high(rule), (rule, new)
    assert (tightened == current) == (changes == [])
    if not current.allow_row_drops and read.allow_row_drops:
        assert "to allow row drops again" in refused


@given(current=guidance, read=guidance)
def test_accepting_a_suggestion_twice_changes_nothing_more(current: Guidance, read: Guidance) -> None:
    once, _, _ = suggest(current, read)
    twice, changes, _ = suggest(once, read)
    assert twice == once and changes == []


def test_the_guard_quotes_the_rule_each_call_breaks() -> None:
    rules = Guidance(allow_row_drops=False, keep_columns=["bmi"], ranges={"age": (0, 120)})
    assert violations(ToolCall("duplicates", {"action": "drop"}), rules) == [
        "your rule says never drop rows, and duplicates with these parameters drops rows"
    ]
    assert "keep column(s) ['bmi']" in violations(ToolCall("drop_columns", {"columns": ["bmi", "x"]}), rules)[0]
    wider = violations(ToolCall("outliers", {"action": "set_missing", "ranges": {"age": [0, 200]}}), rules)
    assert wider == ["your rule says age must lie in 0..120, and this call allows 0..200"]
    assert violations(ToolCall("outliers", {"action": "set_missing", "ranges": {"age": [18, 100]}}), rules) == []
    fixed = comply("outliers", {"action": "drop", "ranges": {"age": [None, 200]}}, rules)
    assert fixed == {"action": "flag", "ranges": {"age": [0, 120]}}
    assert violations(ToolCall("outliers", fixed), rules) == []


def test_a_kept_date_column_is_not_replaced_by_its_features() -> None:
    rules = Guidance(keep_columns=["visit"])
    call = ToolCall("date_features", {"columns": {"visit": "features", "seen": "drop"}})
    assert violations(call, rules) == [
        "your rule says keep column(s) ['visit'], and this date_features call replaces them by date features"
    ]
    fixed = comply("date_features", call.params, rules)
    assert fixed == {"columns": {"visit": "keep", "seen": "drop"}}
    assert violations(ToolCall("date_features", fixed), rules) == []


def test_the_output_guard_sees_what_a_step_did_whatever_its_parameters_said() -> None:
    before = pd.DataFrame({"age": [30.0, 40.0, 50.0, 60.0], "bmi": [20.0, 22.0, np.nan, 30.0],
                           "outcome": ["a", "b", None, "a"]})  # fmt: skip
    rules = Guidance(allow_row_drops=False, keep_columns=["bmi"], ranges={"bmi": (10, 60)})
    assert output_violations(before, before.drop(index=[2]), rules, "outcome") == []  # a missing target may go
    dropped = output_violations(before, before.drop(index=[0, 2]), rules, "outcome")
    assert dropped == ["your rule says never drop rows, and the step dropped 1 row(s)"]
    assert "removed them" in output_violations(before, before.drop(columns=["bmi"]), rules, "outcome")[0]
    filled = before.fillna({"bmi": 99.0})
    assert output_violations(before, filled, rules, "outcome") == [
        "your rule says bmi must lie in 10..60, and the step put 1 more value(s) outside it"
    ]
    assert output_violations(before, before.fillna({"bmi": 25.0}), rules, "outcome") == []
