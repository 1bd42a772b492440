"""The engine's gate and recovery, driven directly (the API tests drive it over HTTP)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from copilot.errors import Conflict, InvalidParams, NotFound, Stale, StorageError, TableError
from copilot.session.engine import Engine
from copilot.session.views import SessionView
from copilot.settings import Settings
from copilot.storage.store import ApprovalRow, SessionRow, StepRow
from tests.conftest import messy_table

pytestmark = pytest.mark.both_stores


def _create(engine: Engine, tmp_path: Path, policy: str = "always") -> SessionView:
    upload = tmp_path / "upload.tmp"
    messy_table(150).to_csv(upload, index=False)
    return engine.create_session(upload, "../../patients.csv", "outcome", "alice", policy=policy)  # type: ignore[arg-type]


def _wait(engine: Engine, session: SessionView, states: set[str], timeout: float = 60) -> SessionView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = engine.get_session(session.id, "alice")
        if session.state in states:
            return session
        time.sleep(0.1)
    raise AssertionError(f"session stayed {session.state}")


def test_policy_always_waits_before_anything_runs(engine: Engine, tmp_path: Path) -> None:
    session = _create(engine, tmp_path)
    assert session.state == "awaiting_approval" and session.source == "patients.csv"
    assert session.pending_step is not None and session.pending_step.tool == "evaluate"
    assert session.pending_step.params_schema["properties"]["folds"]["default"] == 5
    assert [s.status for s in session.plan][:2] == ["awaiting_approval", "proposed"]
    assert len(engine.versions(session.id, "alice")) == 1


def test_approval_is_checked_recorded_once_and_not_repeated(engine: Engine, tmp_path: Path) -> None:
    session = _create(engine, tmp_path)
    step = session.pending_step
    assert step is not None
    with pytest.raises(InvalidParams, match="folds"):
        engine.approve(session.id, step.id, "alice", step.proposal, {"folds": 1})
    with pytest.raises(NotFound):
        engine.approve(session.id, step.id, "mallory", step.proposal)
    engine.approve(session.id, step.id, "alice", step.proposal, {"folds": 3})
    engine.approve(session.id, step.id, "alice", step.proposal)  # a double click changes nothing
    done = _wait(engine, session, {"awaiting_approval"})
    ran = next(s for s in done.plan if s.id == step.id)
    assert ran.status == "done" and ran.params["folds"] == 3
    with engine.store.transaction() as db:
        approvals = db.scalars(select(ApprovalRow).where(ApprovalRow.step_id == step.id)).all()
    assert [(a.decision, a.owner) for a in approvals] == [("approve", "alice")]
    started = [e for e in engine.events_after(session.id, "alice", 0) if e.type == "step_started"]
    assert [e.data["step_id"] for e in started] == [step.id]


def test_reject_replans_and_a_rejected_step_cannot_be_approved(engine: Engine, tmp_path: Path) -> None:
    session = _create(engine, tmp_path)
    first = session.pending_step
    assert first is not None
    engine.reject(session.id, first.id, "alice", first.proposal, "no baseline needed")
    after = _wait(engine, session, {"awaiting_approval"})  # the next step is previewed before it is asked
    assert after.pending_step is not None and after.pending_step.tool != "evaluate"
    with pytest.raises(Stale, match="not waiting for approval") as refused:
        engine.approve(session.id, first.id, "alice", first.proposal)
    assert refused.value.pending is not None and refused.value.pending["proposal"] == after.pending_step.proposal
    assert any(e.type == "message" and "no baseline needed" in e.data["text"]
               for e in engine.events_after(session.id, "alice", 0))  # fmt: skip


def test_restart_keeps_the_gate_and_fails_interrupted_steps(tmp_path: Path, database_url: str | None) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    first = Engine(settings)
    first.start()
    session = _create(first, tmp_path)
    pending = session.pending_step
    assert pending is not None
    with first.store.transaction() as db:  # as if the server died while this step ran
        step = db.get_one(StepRow, pending.id)
        step.status = "running"
        db.get_one(SessionRow, session.id).state = "running"
    first.close()
    again = Engine(settings)
    again.start()
    time.sleep(0.2)  # recovered sessions are re-planned in the background
    view = _wait(again, again.get_session(session.id, "alice"), {"awaiting_approval"})
    interrupted = next(s for s in view.plan if s.id == pending.id)
    assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
    assert view.state == "awaiting_approval" and view.pending_step is not None
    assert view.pending_step.id != pending.id and view.pending_step.tool == pending.tool  # proposed again
    again.close()


def test_undo_returns_to_the_parent_version(engine: Engine, tmp_path: Path) -> None:
    session = _create(engine, tmp_path, policy="mutating")
    session = _wait(engine, session, {"awaiting_approval"})
    assert session.pending_step is not None and session.pending_step.tool == "coerce_types"
    with pytest.raises(Conflict, match="first version"):
        engine.undo(session.id, "alice")
    first_version = session.version
    engine.approve(session.id, session.pending_step.id, "alice", session.pending_step.proposal)
    session = _wait(engine, session, {"awaiting_approval", "done"})
    assert session.version != first_version
    undone = engine.undo(session.id, "alice")
    assert undone.version == first_version
    assert next(s for s in undone.plan if s.tool == "coerce_types").status == "reverted"
    assert engine.pipeline(session.id, "alice").steps == []


def test_bad_upload_leaves_nothing_behind(engine: Engine, tmp_path: Path) -> None:
    upload = tmp_path / "upload.tmp"
    messy_table(50).to_csv(upload, index=False)
    with pytest.raises(TableError, match="Did you mean 'outcome'"):
        engine.create_session(upload, "p.csv", "Outcome", "alice")
    assert engine.list_sessions("alice") == []
    assert not any((engine.settings.data_dir / "uploads").iterdir())


def test_a_version_cut_short_on_disk_fails_the_step_saying_so(engine: Engine, tmp_path: Path) -> None:
    session = _create(engine, tmp_path)
    pending = session.pending_step
    assert pending is not None
    blob = engine.version_file(session.id, session.version, "alice")
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])  # a power cut's half-written file
    with pytest.raises(StorageError, match="not a whole Parquet file"):
        engine.version_file(session.id, session.version, "alice")
    engine.approve(session.id, pending.id, "alice", pending.proposal)
    failed = _wait(engine, session, {"failed"})
    step = next(s for s in failed.plan if s.id == pending.id)
    assert step.status == "failed" and "not a whole Parquet file" in (step.error or "")
    assert failed.error == step.error and "internal error" not in failed.error
