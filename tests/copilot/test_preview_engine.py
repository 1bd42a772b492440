"""The preview under attack, in the engine: a tool whose every run differs, another server moving the data,
a damaged preview table, and a stop or new rules while the preview is being made.

``dice`` adds fresh random bytes, so the committed table being the previewed one (the same content hash and
the same random column) proves that approving ran nothing again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from agents.plan import Guidance, RequestedStep
from copilot.errors import Conflict, Stale
from copilot.session.engine import Engine
from copilot.session.factory import make_sandbox
from copilot.session.views import SessionView
from copilot.settings import Settings
from copilot.storage.store import EventRow, PreviewRow, SessionRow, VersionRow
from tests.copilot.preview_tools import EXTRA, TOOLS
from tools.registry import default_registry

OWNER = "me"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    registry = default_registry()
    for tool in TOOLS:
        registry.add(tool, "tests", f"tests:{tool.name}")
    settings = Settings(data_dir=tmp_path / "data")
    eng = Engine(settings, registry=registry)
    eng.runner.sandbox = make_sandbox(settings, extra_tools=EXTRA)
    eng.start()
    yield eng
    eng.close()


def start(engine: Engine, tmp_path: Path, tool: str) -> SessionView:
    """A clean table whose plan asks first about the requested ``tool``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=120), "y": np.where(x + rng.normal(size=120) > 0, "a", "b")})
    path = tmp_path / "clean.csv"
    frame.to_csv(path, index=False)
    guidance = Guidance(requested=[RequestedStep(tool=tool)])
    view = engine.create_session(path, "clean.csv", "y", OWNER, guidance=guidance)
    return view


def wait(engine: Engine, session_id: str, states: set[str], timeout: float = 60) -> SessionView:
    deadline = time.monotonic() + timeout
    view = engine.get_session(session_id, OWNER)
    while view.state not in states:
        assert time.monotonic() < deadline, (view.state, [(s.tool, s.status, s.error) for s in view.plan])
        time.sleep(0.05)
        view = engine.get_session(session_id, OWNER)
    return view


def gate(engine: Engine, session_id: str, tool: str) -> SessionView:
    """The session waiting at its ``tool`` step, the steps planned before it approved."""
    view = wait(engine, session_id, {"awaiting_approval"})
    while view.pending_step is not None and view.pending_step.tool != tool:
        engine.approve(session_id, view.pending_step.id, OWNER, view.pending_step.proposal)
        view = wait(engine, session_id, {"awaiting_approval"})
    assert view.pending_step is not None, [(s.tool, s.status) for s in view.plan]
    return view


def previewing(engine: Engine, session_id: str, tool: str, timeout: float = 60) -> tuple[SessionView, int]:
    """The session while its ``tool`` step is being previewed, and that step's id; earlier steps approved."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = engine.get_session(session_id, OWNER)
        made = [s for s in view.plan if s.status == "previewing" and s.tool == tool]
        if made:
            return view, made[0].id
        if view.pending_step is not None and view.pending_step.tool != tool:
            engine.approve(session_id, view.pending_step.id, OWNER, view.pending_step.proposal)
        time.sleep(0.02)
    raise AssertionError(f"{tool} was never previewed")


def test_approval_commits_the_very_table_previewed(engine: Engine, tmp_path: Path) -> None:
    view = gate(engine, start(engine, tmp_path, "dice").id, "dice")
    pending = view.pending_step
    assert pending is not None and pending.preview is not None
    shown = pending.preview
    assert shown.columns_added == ["dice"] and len(engine.versions(view.id, OWNER)) == 1
    engine.approve(view.id, pending.id, OWNER, pending.proposal, preview=shown.id)
    after = wait(engine, view.id, {"awaiting_approval", "done"})
    current = next(v for v in engine.versions(view.id, OWNER) if v.current)
    assert (current.id, current.content_hash) == (shown.version, shown.content_hash)
    step = next(s for s in after.plan if s.id == pending.id)
    assert step.status == "done" and step.runs == 1
    rolled = pd.read_parquet(engine.version_file(view.id, current.id, OWNER))["dice"]
    with engine.store.transaction() as db:
        preview = db.get_one(PreviewRow, shown.id)
        assert preview.status == "committed"
        previewed = pd.read_parquet(engine.version_store.blob_path(preview.blob))["dice"]
    assert rolled.tolist() == previewed.tolist()


def test_a_preview_made_before_another_server_moved_the_data_is_refused(engine: Engine, tmp_path: Path) -> None:
    view = gate(engine, start(engine, tmp_path, "dice").id, "dice")
    pending = view.pending_step
    assert pending is not None and pending.preview is not None
    with engine.store.transaction() as db:  # as another server committing a change meanwhile
        session = db.get_one(SessionRow, view.id)
        current = db.get_one(VersionRow, (view.id, session.version))
        db.add(VersionRow(session_id=view.id, id="f" * 16, blob=current.blob, parent=current.id, n_rows=current.n_rows,
                          n_columns=current.n_columns, profile=current.profile))  # fmt: skip
        session.version = "f" * 16
    with pytest.raises(Conflict, match="was made on version"):
        engine.approve(view.id, pending.id, OWNER, pending.proposal, preview=pending.preview.id)
    assert all(v.id != pending.preview.version for v in engine.versions(view.id, OWNER))
    assert engine.get_session(view.id, OWNER).version == "f" * 16


def test_a_preview_whose_table_is_gone_is_made_again_not_committed(engine: Engine, tmp_path: Path) -> None:
    view = gate(engine, start(engine, tmp_path, "dice").id, "dice")
    pending = view.pending_step
    assert pending is not None and pending.preview is not None and pending.preview.content_hash
    (engine.version_store.blobs / f"{pending.preview.content_hash}.parquet").unlink()
    engine.approve(view.id, pending.id, OWNER, pending.proposal)
    again = gate(engine, view.id, "dice").pending_step
    assert again is not None and again.preview is not None
    assert again.proposal != pending.proposal and again.preview.content_hash != pending.preview.content_hash
    assert len(engine.versions(view.id, OWNER)) == 1
    with pytest.raises(Stale):
        engine.approve(view.id, pending.id, OWNER, pending.proposal)


def test_stopping_while_the_preview_is_made_keeps_nothing(engine: Engine, tmp_path: Path) -> None:
    view, step_id = previewing(engine, start(engine, tmp_path, "slow").id, "slow")
    engine.stop(view.id, OWNER)
    time.sleep(1.0)
    after = engine.get_session(view.id, OWNER)
    assert after.state == "stopped" and after.pending_step is None
    assert next(s for s in after.plan if s.id == step_id).status == "skipped"
    assert len(engine.versions(view.id, OWNER)) == 1
    with engine.store.transaction() as db:
        asked = [e.data.get("id") for e in db.scalars(select(EventRow).where(EventRow.session_id == view.id))
                 if e.type == "approval_requested"]  # fmt: skip
        assert step_id not in asked
        assert db.scalars(select(PreviewRow).where(PreviewRow.step_id == step_id)).first() is None


def test_new_rules_while_the_preview_is_made_withdraw_it(engine: Engine, tmp_path: Path) -> None:
    view, first = previewing(engine, start(engine, tmp_path, "slow").id, "slow")
    engine.post_message(view.id, OWNER, "x must be between -10 and 10")
    after = wait(engine, view.id, {"previewing", "awaiting_approval"})
    assert after.guidance["ranges"] == {"x": [-10.0, 10.0]}
    with engine.store.transaction() as db:
        kinds = [(e.type, e.data.get("id")) for e in db.scalars(select(EventRow).where(EventRow.session_id == view.id))]
    assert ("approval_requested", first) not in kinds  # the first preview never reached the gate
    assert all(s.id != first for s in after.plan)  # superseded: out of the plan the person sees


def test_a_table_with_repeated_row_labels_fails_its_preview(engine: Engine, tmp_path: Path) -> None:
    view, step_id = previewing(engine, start(engine, tmp_path, "twins").id, "twins")
    after = wait(engine, view.id, {"awaiting_approval", "done"})
    step = next(s for s in after.plan if s.id == step_id)
    assert step.status == "failed" and "repeated labels" in (step.error or "")
    assert after.pending_step is None or after.pending_step.id != step_id
    assert all(v.step_id != step_id for v in engine.versions(view.id, OWNER))
