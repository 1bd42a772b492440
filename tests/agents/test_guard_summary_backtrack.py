"""The pieces the LLM path rests on: the guard and the rule-based backtracking (the summary: test_summary.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from agents.guard import comply, violations
from agents.plan import REVERT, Guidance, Observation
from agents.rule_based import PlanningState, RuleBasedCoordinator
from agents.worker import ToolCall
from tools.feature_types import profile_table

NO_DROPS = Guidance(allow_row_drops=False, keep_columns=["age"])


@pytest.mark.parametrize(
    ("tool", "params", "broken"),
    [
        ("drop_columns", {"columns": ["age", "city"]}, True),
        ("drop_columns", {"columns": ["city"]}, False),
        ("duplicates", {"action": "drop"}, True),
        ("duplicates", {"action": "flag"}, False),
        ("label_issues", {"action": "relabel"}, False),
        ("outliers", {"action": "drop"}, True),
        ("drop_rows", {"missing_target": True, "conditions": [], "max_missing_pct": 100.0}, False),
        ("drop_rows", {"conditions": [{"column": "age", "op": ">", "value": 120}]}, True),
    ],
)
def test_the_guard_refuses_exactly_the_calls_that_break_the_rules(tool: str, params: dict, broken: bool) -> None:
    assert bool(violations(ToolCall(tool, params), NO_DROPS)) is broken
    assert violations(ToolCall(tool, comply(tool, params, NO_DROPS)), NO_DROPS) == []


def _state(history: list[Observation], current: str | None) -> PlanningState:
    table = pd.DataFrame({"x": [0.5 * i * i for i in range(40)], "z": [i % 7 for i in range(40)], "y": [0, 1] * 20})
    profile = profile_table(table, target="y", id_columns=[], task="classification")
    return PlanningState(profile, "y", "classification", [], Guidance(), history, current_step=current)


def _done(key: str, tool: str, score: float | None = None) -> Observation:
    metrics = {"score": score} if score is not None else {}
    return Observation(key=key, tool=tool, status="done", metrics=metrics)


RAN = [_done("evaluate:baseline", "evaluate", 0.90), _done("leakage", "leakage"), _done("outliers", "outliers"),
       _done("label_issues", "label_issues")]  # fmt: skip


def test_a_score_below_the_baseline_proposes_undoing_the_last_judgement_step() -> None:
    plan = RuleBasedCoordinator().plan(_state([*RAN, _done("evaluate:final", "evaluate", 0.85)], "label_issues"))
    assert [(s.key, s.tool, s.params) for s in plan] == [("revert:label_issues", REVERT, {"step": "label_issues"})]
    assert "0.850" in plan[0].rationale and "0.900" in plan[0].rationale


def test_after_a_revert_the_data_is_scored_again_and_a_recovered_score_ends_the_plan() -> None:
    reverted = [*RAN, _done("evaluate:final", "evaluate", 0.85), _done("revert:label_issues", REVERT)]
    plan = RuleBasedCoordinator().plan(_state(reverted, "outliers"))
    assert [s.key for s in plan] == ["evaluate:after_revert:label_issues"]
    recovered = [*reverted, _done("evaluate:after_revert:label_issues", "evaluate", 0.91)]
    assert RuleBasedCoordinator().plan(_state(recovered, "outliers")) == []


@pytest.mark.parametrize(("score", "current"), [(0.895, "label_issues"), (0.80, "impute"), (0.80, None)])
def test_no_revert_within_noise_or_of_a_step_the_table_needs(score: float, current: str | None) -> None:
    plan = RuleBasedCoordinator().plan(_state([*RAN, _done("evaluate:final", "evaluate", score)], current))
    assert plan == []


def test_a_failed_step_is_retried_once_with_cheaper_settings_and_the_reason() -> None:
    failed = Observation(key="label_issues", tool="label_issues", status="failed",
                         summary="the tool ran out of memory (limit 4096 MiB).")  # fmt: skip
    plan = RuleBasedCoordinator().plan(_state([*RAN[:3], failed], "outliers"))
    retry = plan[0]
    assert retry.key == "label_issues:retry" and retry.params["model"] == "linear"
    assert "ran out of memory" in retry.rationale
    again = Observation(key="label_issues:retry", tool="label_issues", status="failed", summary="out of memory")
    later = RuleBasedCoordinator().plan(_state([*RAN[:3], failed, again], "outliers"))
    assert not any(s.tool == "label_issues" for s in later) and later[-1].key == "evaluate:final"
    leakage_failed = Observation(key="leakage", tool="leakage", status="failed", summary="boom")
    assert not any(s.tool == "leakage" for s in RuleBasedCoordinator().plan(_state([RAN[0], leakage_failed], None)))
