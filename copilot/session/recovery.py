"""Taking over a dead runner's work, and cancelling runs that another server stopped: a part of
:class:`copilot.session.engine.Engine`, run at start and at every heartbeat (``copilot.session.heartbeat``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from copilot.session.heartbeat import FINAL_STATES, Watch, abandoned, by_session, take_session, take_step
from copilot.storage.store import SessionRow, StepRow, Store


class Recovery:
    """The engine supplies the store, the watch, the cancel events, and the write and event helpers."""

    store: Store
    runner_id: str
    _watch: Watch
    _cancels: dict[int, threading.Event]
    _planning: ThreadPoolExecutor

    def _take_over(self) -> None:
        self._cancel_abandoned()
        for session_id in self._recover():  # re-planned in the background: the server answers at once
            self._planning.submit(self._advance, session_id)  # type: ignore[attr-defined]

    def _recover(self) -> list[str]:
        """Take over what dead runners left: their running steps fail as interrupted, their sessions are
        re-planned here; return those sessions. Each row is taken only if its heartbeat has not moved since
        it was read, so a runner that beats meanwhile keeps its work; one session at a time, under its row
        lock, and only when there is something to take."""
        with self.store.transaction() as db:
            stopped = self._watch.stopped(self._watch.beats(db), time.monotonic())
            grouped = by_session(db, stopped) if stopped else {}
        error = "interrupted: the process that ran it stopped before it finished; it may be proposed again"
        taken: list[str] = []
        for session_id, rows in grouped.items():
            with self._write(session_id) as db:  # type: ignore[attr-defined]
                session, took = db.get_one(SessionRow, session_id), False
                for (kind, row_id), beat in rows.items():
                    if kind == "session":
                        took = take_session(db, row_id, beat, self.runner_id) or took
                    elif take_step(db, row_id, beat, error):
                        step, took = db.get_one(StepRow, row_id), True
                        self._emit(db, session, "step_failed", {"step_id": step.id, "tool": step.tool,  # type: ignore[attr-defined]
                                                                "error": step.error})  # fmt: skip
                if took and session.state not in FINAL_STATES:
                    self._set_state(db, session, "planning")  # type: ignore[attr-defined]
            if took:
                taken.append(session_id)
        return taken

    def _cancel_abandoned(self) -> None:
        """Cancel this engine's runs that are no longer wanted: a stop or a withdrawal may come through another
        server, which cannot set this one's cancel events."""
        cancels = dict(self._cancels)  # before the read: an event made after it is of a step marked running later
        if cancels:
            with self.store.transaction() as db:
                for step_id in abandoned(db, list(cancels)):
                    cancels[step_id].set()
