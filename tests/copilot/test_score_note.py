"""The report's note on scores that were taken on different rows: which drops count, and when to say nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from copilot.session_views import rows_dropped, score_note
from copilot.store import StepRow
from copilot.views import VersionView


def version(vid: str, parent: str | None, tool: str | None, rows: int, current: bool = False) -> VersionView:
    return VersionView(id=vid, parent=parent, step_id=None, tool=tool, n_rows=rows, n_columns=5,
                       created_at=datetime.now(UTC), current=current)  # fmt: skip


def evaluate(key: str, rows: int) -> StepRow:
    return StepRow(key=key, tool="evaluate", status="done", result={"metrics": {"score": 0.9, "n_rows": rows}})


def test_only_drops_on_the_way_to_the_current_version_count() -> None:
    versions = [
        version("a", None, None, 1000),
        version("b", "a", "duplicates", 980),
        version("c", "b", "outliers", 900),  # undone: the session went back to b, then on to d
        version("d", "b", "label_issues", 950),
        version("e", "d", "impute", 950, current=True),
    ]
    assert rows_dropped(versions) == {"duplicates": 20, "label_issues": 30}
    note = score_note([evaluate("evaluate:baseline", 1000), evaluate("evaluate:final", 950)], versions)
    assert note is not None and "1,000 rows and the final one on 950" in note
    assert "20 by duplicates" in note and "30 by label_issues" in note and "outliers" not in note
    assert "held out" in note


def test_duplicates_alone_are_named_without_the_warning_about_hard_rows() -> None:
    versions = [version("a", None, None, 100), version("b", "a", "duplicates", 90, current=True)]
    note = score_note([evaluate("evaluate:baseline", 100), evaluate("evaluate:final", 90)], versions)
    assert note is not None and "10 by duplicates" in note and "held out" not in note


def test_nothing_to_say_when_both_scores_saw_the_same_rows_or_one_is_missing() -> None:
    versions = [version("a", None, None, 100), version("b", "a", "impute", 100, current=True)]
    assert score_note([evaluate("evaluate:baseline", 100), evaluate("evaluate:final", 100)], versions) is None
    assert score_note([evaluate("evaluate:baseline", 100)], versions) is None
