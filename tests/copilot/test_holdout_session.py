"""A whole session scores its baseline and its result on the same held-out rows, which no row-level step
touched, so a step cannot raise the score by removing the rows a model finds hard."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from copilot.data.demo_data import TARGET, demo_data
from copilot.session.engine import Engine
from copilot.session.step_runner import holdout_scope
from copilot.session.views import SessionView
from copilot.settings import Settings
from copilot.storage.store import SessionRow, StepRow
from tools.holdout import scored_rows

OWNER = "alice"


def _finished(engine: Engine, table: pd.DataFrame, tmp_path: Path) -> SessionView:
    upload = tmp_path / "upload.csv"
    table.to_csv(upload, index=False)
    session = engine.create_session(upload, "tumours.csv", TARGET, OWNER, policy="never")
    deadline = time.monotonic() + 300
    while session.state not in {"done", "failed"} and time.monotonic() < deadline:
        time.sleep(0.2)
        session = engine.get_session(session.id, OWNER)
    assert session.state == "done", session.error
    return session


Cleaned = tuple[pd.DataFrame, dict[str, pd.DataFrame], SessionView]


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cleaned]:
    folder = tmp_path_factory.mktemp("holdout")
    engine = Engine(Settings(data_dir=folder / "data"))
    engine.start()
    dirty = demo_data(seed=7).dirty  # flipped labels, unit slips, codes, duplicates
    session = _finished(engine, dirty, folder)
    final = next(s for s in session.plan if s.key == "evaluate:final")
    held_out_step = next(s for s in session.plan if s.key == "label_issues:held_out")
    versions = {v.id: v for v in engine.versions(session.id, OWNER)}
    scored = versions[held_out_step.version].parent  # what the final score measured
    tables = {name: pd.read_parquet(engine.version_file(session.id, vid, OWNER))
              for name, vid in (("scored", scored), ("current", held_out_step.version))}  # fmt: skip
    engine.close()
    assert final.status == held_out_step.status == "done"
    yield dirty, tables, session


def test_baseline_and_final_are_scored_on_the_same_held_out_rows(cleaned: Cleaned) -> None:
    dirty, _, session = cleaned
    scores = {s.key: s for s in session.plan if s.tool == "evaluate" and s.status == "done"}
    baseline, final = scores["evaluate:baseline"], scores["evaluate:final"]
    assert baseline.findings["scored_on"] == final.findings["scored_on"] == "held_out"
    upload = dirty.reset_index(drop=True)
    held = upload[scored_rows(upload, TARGET, 0.2, 0)]
    assert baseline.metrics["n_rows"] == len(held)
    assert final.metrics["n_rows"] == len(held) - held.duplicated().sum()  # a record written twice counts once
    assert session.score_note is not None and "set aside before any change" in session.score_note


def test_row_level_steps_left_every_held_out_row_and_label_as_uploaded(cleaned: Cleaned) -> None:
    dirty, tables, session = cleaned
    table = tables["scored"]
    upload = dirty.reset_index(drop=True)  # the rows' labels are their places in the file
    held = upload[scored_rows(upload, TARGET, 0.2, 0)]
    kept = held[~held.duplicated()].index  # of a record written twice into the slice, one copy may go
    assert len(kept) >= 30
    assert set(kept) <= set(table.index)  # none dropped
    assert table.loc[kept, TARGET].tolist() == upload.loc[kept, TARGET].tolist()  # no label changed
    labels = next(s for s in session.plan if s.key == "label_issues")
    changed = {r["row"] for r in labels.findings["rows"] if r["action"] in ("relabelled", "dropped")}
    assert changed and not changed & set(held.index)


def test_once_scored_the_held_out_rows_are_cleaned_too_and_the_score_stands(cleaned: Cleaned) -> None:
    dirty, tables, session = cleaned
    upload = dirty.reset_index(drop=True)
    held = upload.index[scored_rows(upload, TARGET, 0.2, 0)]
    scored, current = tables["scored"], tables["current"]
    others = scored.index.difference(held)
    pd.testing.assert_frame_equal(current.loc[others], scored.loc[others])  # only held-out rows change
    step = next(s for s in session.plan if s.key == "label_issues:held_out")
    changed = {r["row"] for r in step.findings["rows"] if r["action"] in ("relabelled", "dropped")}
    assert changed and changed <= set(held)
    assert session.score_after is not None and session.score_after == next(
        s.metrics["score"] for s in session.plan if s.key == "evaluate:final"
    )  # the measured gain is still the session's score


def test_a_step_named_for_the_held_out_rows_before_the_final_score_reaches_only_the_training_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """An LLM (or a person) naming a step ``…:held_out`` early cannot open the held-out rows before they are
    scored: until ``evaluate:final`` is done, such a step has the training rows' scope."""
    upload = tmp_path / "upload.csv"
    demo_data(seed=1).dirty.to_csv(upload, index=False)
    view = engine.create_session(upload, "t.csv", TARGET, OWNER, policy="always")
    with engine.store.transaction() as db:
        session = db.get_one(SessionRow, view.id)
        assert session.holdout == 0.2
        assert holdout_scope(db, session, "label_issues:held_out") == "training"
        db.add(StepRow(session_id=view.id, position=99, key="evaluate:final", tool="evaluate", params={},
                       rationale="", status="failed"))  # fmt: skip
        db.flush()
        assert holdout_scope(db, session, "label_issues:held_out") == "training"  # failed: nothing measured
        db.add(StepRow(session_id=view.id, position=100, key="evaluate:final", tool="evaluate", params={},
                       rationale="", status="done"))  # fmt: skip
        db.flush()
        assert holdout_scope(db, session, "label_issues:held_out") == "held_out"
        assert holdout_scope(db, session, "label_issues") == "training"
        db.rollback()
