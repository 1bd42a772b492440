"""Two engines on one store: a server takes over only what a dead runner left, never a live runner's work.

The heartbeat is sped up (a beat every 0.1 s, stopped after 0.5 s without one) so that each test waits
many stale periods in a few seconds: a takeover that ignored the heartbeat would show within them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.llm import Usage
from agents.pair import Proposal, RuleBasedPair
from agents.rule_based import PlanningState
from copilot.session import heartbeat
from copilot.session.engine import Engine
from copilot.session.heartbeat import Watch
from copilot.session.step_runner import StepCall
from copilot.session.views import SessionView
from copilot.settings import Settings
from copilot.storage.store import SessionRow, StepRow
from tests.conftest import messy_table
from tools.registry import Registry

OWNER = "alice"
BEAT, STALE = 0.1, 0.5
REST = {"awaiting_approval", "done", "stopped", "failed"}


@pytest.fixture(autouse=True)
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", BEAT)
    monkeypatch.setattr(heartbeat, "STALE_S", STALE)


class Engines(list[Engine]):
    """Engines on the test's store, to close at the end whatever the test left running."""

    def __init__(self, database_url: str | None) -> None:
        super().__init__()
        self.database_url = database_url


@pytest.fixture
def engines(database_url: str | None) -> Iterator[Engines]:
    started = Engines(database_url)
    yield started
    for engine in started:
        engine.close()


def start(engines: Engines, tmp_path: Path, recover: bool = True, **kwargs: Any) -> Engine:
    settings = Settings(data_dir=tmp_path / "data", policy="always", database_url=engines.database_url)
    engine = Engine(settings, **kwargs)
    engine.start(recover=recover)
    engines.append(engine)
    return engine


def create(engine: Engine, tmp_path: Path) -> SessionView:
    upload = tmp_path / "upload.csv"
    messy_table(150).to_csv(upload, index=False)
    return engine.create_session(upload, "patients.csv", "outcome", OWNER)


def wait(engine: Engine, session_id: str, done: Any, timeout: float = 60) -> SessionView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = engine.get_session(session_id, OWNER)
        if done(view):
            return view
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting: {view.state}, {[(s.id, s.tool, s.status) for s in view.plan]}")


def at_gate(engine: Engine, session_id: str) -> SessionView:
    view = wait(engine, session_id, lambda v: v.state in REST)
    assert view.state == "awaiting_approval" and view.pending_step is not None, view.state
    return view


def changing_step(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SessionView, int, threading.Event]:
    """A new session whose first data-changing step is being previewed (its tool runs, held until the event
    is set); the first step, a scoring one, is declined."""
    view = at_gate(engine, create(engine, tmp_path).id)
    assert view.pending_step is not None and view.pending_step.tool == "evaluate"
    release = hold_runs(engine, monkeypatch)
    view = engine.reject(view.id, view.pending_step.id, OWNER, view.pending_step.proposal, "not now")
    step = next(s for s in view.plan if s.status == "previewing")
    assert view.state == "previewing" and engine.registry.get(step.tool).mutates
    return view, step.id, release


def hold_runs(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """From now on, ``engine``'s steps are marked running but wait before their sandbox call until released."""
    release, run = threading.Event(), engine.runner.run

    def held(call: StepCall, *args: Any, **kwargs: Any) -> Any:
        assert release.wait(timeout=60), "never released"
        return run(call, *args, **kwargs)

    monkeypatch.setattr(engine.runner, "run", held)
    return release


def step_row(engine: Engine, step_id: int) -> StepRow:
    with engine.store.transaction() as db:
        return db.get_one(StepRow, step_id)


def event_types(engine: Engine, session_id: str) -> list[str]:
    return [e.type for e in engine.events_after(session_id, OWNER, 0)]


@pytest.mark.both_stores
def test_a_live_runners_step_is_left_alone_and_finishes_with_its_version(
    engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start(engines, tmp_path)
    gate, step_id, release = changing_step(first, tmp_path, monkeypatch)
    session_id = gate.id
    second = start(engines, tmp_path)  # a second server on the same store, while the step runs (its preview)
    beat = step_row(second, step_id).heartbeat_at
    time.sleep(6 * STALE)
    row = step_row(second, step_id)
    assert (row.status, row.runner, row.interrupted) == ("previewing", first.runner_id, False)
    assert beat is not None and row.heartbeat_at is not None and row.heartbeat_at > beat  # it beats
    release.set()
    pending = at_gate(first, session_id).pending_step
    assert pending is not None and pending.id == step_id and pending.preview is not None
    first.approve(session_id, pending.id, OWNER, pending.proposal)
    view = wait(first, session_id, lambda v: v.state in REST and v.version != gate.version)
    ran = step_row(first, step_id)
    assert (ran.status, ran.runner, ran.version_after) == ("done", first.runner_id, view.version)
    assert view.version in {v.id for v in first.versions(session_id, OWNER)}
    assert "step_failed" not in event_types(first, session_id)


@pytest.mark.both_stores
def test_a_runner_whose_heartbeat_stopped_loses_its_step_and_its_late_result_is_dropped(
    engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start(engines, tmp_path)
    monkeypatch.setattr(first._heartbeat, "beat", lambda: None)  # alive, but its store writes stop
    gate, step_id, release = changing_step(first, tmp_path, monkeypatch)
    session_id = gate.id
    tool = step_row(first, step_id).tool
    time.sleep(6 * STALE)
    assert step_row(first, step_id).status == "previewing"  # its own recovery never takes its own work
    second = start(engines, tmp_path)
    assert step_row(second, step_id).status == "previewing"  # not at once: it has not yet seen the beat stop
    view = wait(second, session_id, lambda v: v.state == "awaiting_approval")
    taken = next(s for s in view.plan if s.id == step_id)
    assert taken.status == "failed" and "interrupted" in (taken.error or ""), taken
    assert view.pending_step is not None and view.pending_step.tool == tool  # proposed and previewed again
    assert view.pending_step.preview is not None and view.pending_step.id != step_id
    with second.store.transaction() as db:
        assert db.get_one(SessionRow, session_id).runner == second.runner_id
    versions = second.versions(session_id, OWNER)
    release.set()  # the first engine's run ends late: what it made is not recorded
    deadline = time.monotonic() + 30
    while first._cancels and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not first._cancels
    assert second.versions(session_id, OWNER) == versions
    row = step_row(second, step_id)
    assert (row.status, row.version_after) == ("failed", None)
    again = second.get_session(session_id, OWNER).pending_step  # the late preview took nobody's place at the gate
    assert again is not None and again.id == view.pending_step.id and again.proposal == view.pending_step.proposal


@pytest.mark.both_stores
def test_a_stop_sent_through_another_engine_cancels_the_run_where_it_runs(
    engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start(engines, tmp_path)
    gate, step_id, release = changing_step(first, tmp_path, monkeypatch)
    cancel = first._cancels[step_id]
    second = start(engines, tmp_path)
    assert not cancel.wait(timeout=3 * BEAT)  # a live run, wanted: left alone
    assert second.stop(gate.id, OWNER).state == "stopped"
    assert cancel.wait(timeout=10 * BEAT), "the engine running the step never heard of the stop"
    release.set()
    deadline = time.monotonic() + 30
    while first._cancels and time.monotonic() < deadline:
        time.sleep(0.05)
    row = step_row(second, step_id)
    assert (row.status, row.version_after) == ("skipped", None)
    assert [v.id for v in second.versions(gate.id, OWNER)] == [gate.version]
    assert first.get_session(gate.id, OWNER).state == "stopped"


class SlowPlanner(RuleBasedPair):
    """The rule-based plan, given only once released: an LLM that thinks for as long as a test wants."""

    instant = False

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def propose(self, state: PlanningState, registry: Registry, usage: Usage) -> Proposal:
        assert self.release.wait(timeout=60), "never released"
        return super().propose(state, registry, usage)


@pytest.mark.both_stores
def test_a_session_planned_by_a_live_engine_is_not_planned_again_by_another(engines: Engines, tmp_path: Path) -> None:
    release = threading.Event()
    first = start(engines, tmp_path, agents=SlowPlanner(release))
    session_id = create(first, tmp_path).id
    second = start(engines, tmp_path)
    time.sleep(6 * STALE)
    with second.store.transaction() as db:
        session = db.get_one(SessionRow, session_id)
        assert (session.state, session.runner) == ("planning", first.runner_id)
    release.set()
    at_gate(first, session_id)
    states = [e.data["state"] for e in first.events_after(session_id, OWNER, 0) if e.type == "session_state"]
    assert states[:2] == ["planning", "awaiting_approval"], states  # a takeover would have said "planning" once more


def test_a_heartbeat_stops_when_it_stops_moving_whatever_the_clocks_say() -> None:
    watch, key = Watch("me"), ("step", 1)
    skewed = datetime.now(UTC) + timedelta(hours=1)  # another machine's clock, an hour ahead
    assert watch.stopped({key: skewed}, at=100.0) == {}
    moved = skewed + timedelta(seconds=2)
    assert watch.stopped({key: moved}, at=100.0 + 0.9 * STALE) == {}  # it moved
    assert watch.stopped({key: moved}, at=100.0 + 1.8 * STALE) == {}
    assert watch.stopped({key: moved}, at=100.0 + 2.0 * STALE) == {key: moved}
    old = datetime(2000, 1, 1, tzinfo=UTC)  # a dead runner's, long ago: stopped only once seen not to move
    assert watch.stopped({("session", "s"): old}, at=200.0) == {}
    assert watch.stopped({("session", "s"): old}, at=200.0 + STALE) == {("session", "s"): old}
    assert watch.stopped({("session", "t"): None}, at=300.0) == {("session", "t"): None}  # from before heartbeats
    assert list(watch.seen) == [("session", "t")]  # rows no longer active are forgotten
