"""The report's note on scores that were taken on different rows: which drops count, and when to say nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from copilot.session.row_views import rows_dropped, score_note, scores
from copilot.session.views import VersionView
from copilot.storage.store import StepRow


def version(vid: str, parent: str | None, tool: str | None, rows: int, current: bool = False) -> VersionView:
    return VersionView(id=vid, parent=parent, step_id=None, tool=tool, n_rows=rows, n_columns=5, content_hash=vid,
                       created_at=datetime.now(UTC), current=current)  # fmt: skip


def evaluate(key: str, rows: int, scored: str, on: str = "cross_validation") -> StepRow:
    return StepRow(key=key, tool="evaluate", status="done", version_before=scored,
                   result={"metrics": {"score": 0.9, "n_rows": rows}, "findings": {"scored_on": on}})  # fmt: skip


def note(steps: list[StepRow], versions: list[VersionView]) -> str | None:
    return score_note(scores(steps, versions), versions)


def test_only_drops_on_the_way_to_the_current_version_count() -> None:
    versions = [
        version("a", None, None, 1000),
        version("b", "a", "duplicates", 980),
        version("c", "b", "outliers", 900),  # undone: the session went back to b, then on to d
        version("d", "b", "label_issues", 950),
        version("e", "d", "impute", 950, current=True),
    ]
    assert rows_dropped(versions) == {"duplicates": 20, "label_issues": 30}
    said = note([evaluate("evaluate:baseline", 1000, "a"), evaluate("evaluate:final", 950, "e")], versions)
    assert said is not None and "1,000 rows and the final one on 950" in said
    assert "20 by duplicates" in said and "30 by label_issues" in said and "outliers" not in said
    assert "held out" in said


def test_duplicates_alone_are_named_without_the_warning_about_hard_rows() -> None:
    versions = [version("a", None, None, 100), version("b", "a", "duplicates", 90, current=True)]
    said = note([evaluate("evaluate:baseline", 100, "a"), evaluate("evaluate:final", 90, "b")], versions)
    assert said is not None and "10 by duplicates" in said and "held out" not in said


def test_nothing_to_say_when_both_scores_saw_the_same_rows_or_one_is_missing() -> None:
    versions = [version("a", None, None, 100), version("b", "a", "impute", 100, current=True)]
    assert note([evaluate("evaluate:baseline", 100, "a"), evaluate("evaluate:final", 100, "b")], versions) is None
    assert note([evaluate("evaluate:baseline", 100, "a")], versions) is None


def test_scores_on_the_held_out_rows_say_so_whatever_was_dropped() -> None:
    versions = [version("a", None, None, 1000), version("b", "a", "label_issues", 900, current=True)]
    steps = [evaluate("evaluate:baseline", 200, "a", "held_out"), evaluate("evaluate:final", 200, "b", "held_out")]
    said = note(steps, versions)
    assert said is not None and "the 200 rows set aside" in said and "no row-level step touched" in said
    mixed = [evaluate("evaluate:baseline", 1000, "a"), evaluate("evaluate:final", 200, "b", "held_out")]
    assert "set aside" not in (note(mixed, versions) or "")
