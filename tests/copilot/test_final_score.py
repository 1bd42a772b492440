"""A score counts only for the version it scored: after an undo or a revert, the final score of the undone
data is out of date, and a ``--yes`` run that backtracks ends with a score of the data it keeps."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from copilot.session.engine import Engine
from copilot.session.row_views import score_note, scores
from copilot.session.views import SessionView, VersionView
from copilot.storage.store import StepRow
from tests.conftest import messy_table
from tests.copilot.test_clean_e2e import copilot

OWNER = "alice"


def version(vid: str, parent: str | None, tool: str | None, current: bool = False) -> VersionView:
    return VersionView(id=vid, parent=parent, step_id=None, tool=tool, n_rows=100, n_columns=5, content_hash=vid,
                       created_at=datetime.now(UTC), current=current)  # fmt: skip


def evaluate(key: str, scored: str, score: float) -> StepRow:
    return StepRow(key=key, tool="evaluate", status="done", version_before=scored,
                   result={"metrics": {"score": score, "n_rows": 100}})  # fmt: skip


def test_the_final_score_of_undone_data_is_out_of_date_until_the_current_data_is_scored() -> None:
    steps = [evaluate("evaluate:baseline", "a", 0.80), evaluate("evaluate:final", "b", 0.70)]
    after_outliers = [version("a", None, None), version("b", "a", "outliers", current=True)]
    assert scores(steps, after_outliers).after is steps[1]

    reverted = [version("a", None, None, current=True), version("b", "a", "outliers")]
    stale = scores(steps, reverted)
    assert stale.before is steps[0] and stale.after is None and stale.outdated is steps[1]
    note = score_note(stale, reverted)
    assert note is not None and "out of date" in note and "version b" in note

    steps.append(evaluate("evaluate:after_revert:outliers", "a", 0.81))
    current = scores(steps, reverted)
    assert current.after is steps[2] and current.outdated is None
    assert score_note(current, reverted) is None


def test_only_standard_scores_count_and_the_baseline_only_for_the_upload() -> None:
    versions = [version("a", None, None), version("b", "a", "impute", current=True)]
    steps = [
        evaluate("evaluate:baseline", "b", 0.80),  # not the upload: not a baseline of it
        evaluate("evaluate:final:retry", "b", 0.70),  # a cheaper model: not comparable with the baseline
        evaluate("requested:0:evaluate", "b", 0.90),  # the person's own evaluate, with their parameters
    ]
    found = scores(steps, versions)
    assert found.before is None and found.after is None and found.outdated is None


def test_a_yes_run_that_backtracks_ends_with_the_score_of_the_data_it_keeps(tmp_path: Path) -> None:
    """Duplicated rows leak between cross-validation folds, so removing them lowers the score: the plan
    reverts the de-duplication and must score the restored data again."""
    rng = np.random.default_rng(0)
    unique = pd.DataFrame({f"x{i}": rng.normal(size=80).round(3) for i in range(3)} | {"y": rng.normal(size=80)})
    pd.concat([unique] * 3, ignore_index=True).sample(frac=1, random_state=0).to_csv(tmp_path / "in.csv", index=False)
    done = copilot("clean", str(tmp_path / "in.csv"), "-t", "y", "-o", str(tmp_path / "out.csv"), "--yes",
                   "--report", str(tmp_path / "r.json"), data_dir=tmp_path / "data")  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text())
    steps = {s["key"]: s for s in report["steps"]}
    assert steps["duplicates"]["status"] == "reverted" and steps["revert:duplicates"]["status"] == "done"
    final, rescored = steps["evaluate:final"]["metrics"]["score"], steps["evaluate:after_revert:duplicates"]
    assert rescored["status"] == "done" and rescored["metrics"]["score"] != final
    assert report["score_after"] == rescored["metrics"]["score"]
    assert report["score_note"].startswith("Both scores are on the")  # the held-out rows, before and after
    assert f"→ {rescored['metrics']['score']:.4f}" in done.stdout


def _settled(engine: Engine, session_id: str, timeout: float = 120) -> SessionView:
    deadline = time.monotonic() + timeout
    while (view := engine.get_session(session_id, OWNER)).state not in {"done", "stopped", "failed"}:
        assert time.monotonic() < deadline, f"session stayed {view.state}"
        time.sleep(0.1)
    return view


def test_after_an_undo_the_score_shown_is_of_the_data_kept_or_said_to_be_out_of_date(
    engine: Engine, tmp_path: Path
) -> None:
    """After an undo the session may plan on (a revert, a new score); whatever it did, the score it shows is
    of the current data, or none with a note that the last one is out of date."""
    upload = tmp_path / "upload.csv"
    messy_table(150).to_csv(upload, index=False)
    session = _settled(engine, engine.create_session(upload, "p.csv", "outcome", OWNER, policy="never").id)
    assert session.state == "done" and session.score_after is not None
    engine.undo(session.id, OWNER)
    undone = _settled(engine, session.id)
    assert undone.score_before == session.score_before
    current = next(v.id for v in engine.versions(session.id, OWNER) if v.current)
    scored_now = [s for s in undone.plan if s.tool == "evaluate" and s.status == "done" and s.key != "evaluate:baseline"
                  and _scored(engine, session.id, s.id) == current]  # fmt: skip
    if scored_now:
        assert undone.score_after == scored_now[-1].metrics["score"]
    else:
        assert undone.score_after is None and undone.score_note is not None and "out of date" in undone.score_note
    assert engine.report(session.id, OWNER).score_note == undone.score_note


def _scored(engine: Engine, session_id: str, step_id: int) -> str | None:
    with engine.store.transaction() as db:
        return db.get_one(StepRow, step_id).version_before
