"""Who advances what, and whether it is still alive: runner ids and heartbeats in the store.

A step marked running, and a session being planned or run, carry the id of the engine that
advances it (``runner``) and a heartbeat that this engine's :class:`Heartbeat` thread moves every
``HEARTBEAT_S`` seconds. A server takes over only rows whose heartbeat stopped (:class:`Watch`):
never those of a live ``copilot clean`` or of another server on the same database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from copilot.storage.store import SessionRow, StepRow, Store, now

log = logging.getLogger(__name__)
HEARTBEAT_S = 2.0
#: A heartbeat that has not moved for this long is a dead runner's: three missed beats, and a margin for a busy store.
STALE_S = 3 * HEARTBEAT_S + 2.0
#: A session in one of these states is being advanced by some engine.
ACTIVE_STATES = ("created", "planning", "previewing", "running")
FINAL_STATES = frozenset({"done", "stopped", "failed"})
RUNNING_STEPS = ("previewing", "running")  # a step in one of these runs in some engine's sandbox
Key = tuple[str, Any]  # ("step", id) or ("session", id)


def new_runner_id() -> str:
    """This engine, among all on the database: the machine, the process, and the instance in it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """One thread per engine: every ``HEARTBEAT_S`` one short transaction moves the heartbeat of all the
    engine's active sessions and running steps, then ``on_beat`` runs (a server's check for stopped ones)."""

    def __init__(self, store: Store, runner: str) -> None:
        self.store, self.runner = store, runner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_beat: Callable[[], None] | None = None) -> None:
        self._thread = threading.Thread(target=self._loop, args=(on_beat,), name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S)

    def beat(self) -> None:
        """Not under the engine's lock: that lock orders the events of the engine's writes, and this writes
        none. Two UPDATEs need no lock of ours: SQLite serialises writers itself (a gate write waits for this
        one, a few milliseconds, within the busy timeout); the engine's flushes write only the columns they
        changed, never ``heartbeat_at``, so neither loses the other's update; and only rows still active under
        this runner are touched, so a step that finished or was taken over meanwhile gets no heartbeat.
        Sessions come before steps, the order in which the engine's flushes write them, so that on PostgreSQL
        this transaction and a gate's never wait on each other's rows in opposite orders."""
        at = now()
        with self.store.transaction() as db:
            db.execute(update(SessionRow).where(SessionRow.runner == self.runner,
                                                SessionRow.state.in_(ACTIVE_STATES))
                       .values(heartbeat_at=at, updated_at=SessionRow.updated_at))  # fmt: skip
            db.execute(update(StepRow).where(StepRow.runner == self.runner, StepRow.status.in_(RUNNING_STEPS))
                       .values(heartbeat_at=at))  # fmt: skip

    def _loop(self, on_beat: Callable[[], None] | None) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.beat()
                if on_beat is not None:
                    on_beat()
            except Exception:  # a busy or unreachable store: the next beat tries again
                log.exception("heartbeat of runner %s failed", self.runner)


@dataclass
class Watch:
    """Other runners' heartbeats as this engine last saw them move, on its own monotonic clock.

    A heartbeat that has not moved for ``STALE_S`` seconds has stopped; one never written (a row from
    before runners were recorded) has stopped already. Comparing a heartbeat with its earlier value, never
    with this machine's clock, keeps servers whose clocks disagree from taking over each other's live work."""

    runner: str
    seen: dict[Key, tuple[datetime | None, float]] = field(default_factory=dict)  # heartbeat, and since when

    def stopped(self, beats: dict[Key, datetime | None], at: float) -> dict[Key, datetime | None]:
        """Of ``beats`` (every row another runner advances now, read at ``at``), those whose heartbeat stopped,
        in the same order."""
        seen = {}
        for key, beat in beats.items():
            last = self.seen.get(key)
            seen[key] = last if last is not None and last[0] == beat else (beat, at)
        self.seen = seen
        return {key: beat for key, (beat, since) in seen.items() if beat is None or at - since >= STALE_S}

    def beats(self, db: Session) -> dict[Key, datetime | None]:
        """The heartbeats of the active sessions and running steps that another runner, or none, advances;
        sessions first."""
        others = SessionRow.runner.is_distinct_from(self.runner)
        active = SessionRow.state.in_(ACTIVE_STATES)
        sessions = db.execute(select(SessionRow.id, SessionRow.heartbeat_at).where(active, others))
        others = StepRow.runner.is_distinct_from(self.runner)
        steps = db.execute(select(StepRow.id, StepRow.heartbeat_at).where(StepRow.status.in_(RUNNING_STEPS), others))
        return {("session", i): beat for i, beat in sessions} | {("step", i): beat for i, beat in steps}


def by_session(db: Session, stopped: dict[Key, datetime | None]) -> dict[str, dict[Key, datetime | None]]:
    """The stopped rows grouped by session, in session id order, each session's own row before its steps: a
    takeover locks one session at a time, in the order every writer locks (the session, then its steps)."""
    steps = [row_id for kind, row_id in stopped if kind == "step"]
    owners = dict(db.execute(select(StepRow.id, StepRow.session_id).where(StepRow.id.in_(steps))).all())
    grouped: dict[str, dict[Key, datetime | None]] = {}
    for key, beat in stopped.items():
        session_id = key[1] if key[0] == "session" else owners.get(key[1])
        if session_id is not None:
            grouped.setdefault(session_id, {})[key] = beat
    return dict(sorted(grouped.items()))


def abandoned(db: Session, step_ids: list[int]) -> list[int]:
    """Of these steps an engine was told to run, those that no longer run: withdrawn, finished or taken over
    meanwhile, or of a session that was stopped, whichever server did it."""
    gone = or_(StepRow.status.not_in(RUNNING_STEPS), SessionRow.state == "stopped")
    query = select(StepRow.id).join(SessionRow, SessionRow.id == StepRow.session_id)
    return list(db.scalars(query.where(StepRow.id.in_(step_ids), gone)))


def take_step(db: Session, step_id: int, beat: datetime | None, error: str) -> bool:
    """Fail a dead runner's step as interrupted, if it still runs and its heartbeat has not moved since read."""
    taken = update(StepRow).where(StepRow.id == step_id, StepRow.status.in_(RUNNING_STEPS),
                                  _unmoved(StepRow.heartbeat_at, beat))  # fmt: skip
    values = {"status": "failed", "interrupted": True, "finished_at": now(), "error": error}
    return db.scalars(taken.values(values).returning(StepRow.id)).first() is not None


def take_session(db: Session, session_id: str, beat: datetime | None, runner: str) -> bool:
    """Make ``runner`` the one advancing a dead runner's session, if it is still active and unmoved since read."""
    taken = update(SessionRow).where(SessionRow.id == session_id, SessionRow.state.in_(ACTIVE_STATES),
                                     _unmoved(SessionRow.heartbeat_at, beat))  # fmt: skip
    return db.scalars(taken.values(runner=runner, heartbeat_at=now()).returning(SessionRow.id)).first() is not None


def _unmoved(column: Any, beat: datetime | None) -> ColumnElement[bool]:
    return column.is_(None) if beat is None else column == beat
