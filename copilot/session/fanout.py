"""Events across servers on one PostgreSQL: a ``NOTIFY`` in each transaction that writes events, and one
listening thread per server that wakes that server's WebSocket subscribers.

A notification carries only the session and its last new sequence number; the subscriber reads the events
themselves from the store (``copilot.api.routes.ws``), so a notification lost or merged costs nothing but
latency. PostgreSQL delivers a transaction's notifications once it commits, in commit order, and never for
one rolled back. After a lost connection every subscriber is woken, so it reads what it missed.
A SQLite store is one process's: there the in-process bus (``copilot.session.events``) is all there is.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copilot.session.events import EventBus
from copilot.session.views import EventView
from copilot.storage.store import Store

log = logging.getLogger(__name__)
CHANNEL = "copilot_events"
WAIT_S = 0.5  # how often the listener looks up from the socket to see whether it should stop
RETRY_S = 1.0  # the pause before listening again after the connection failed


def notify(db: Session, events: list[tuple[str, EventView]]) -> None:
    """In the transaction that wrote ``events``: tell every server's listener, once it commits."""
    last: dict[str, int] = {}
    for session_id, event in events:
        last[session_id] = max(event.seq, last.get(session_id, 0))
    for session_id, seq in last.items():
        db.execute(select(func.pg_notify(CHANNEL, f"{session_id}:{seq}")))


class Listener:
    """One thread on a connection of its own: ``LISTEN``, and wake the bus for each notification."""

    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store, self.bus = store, bus
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while LISTEN is in force

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="event-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=WAIT_S + RETRY_S)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.bus.wake_all()  # what was committed while no one listened is read from the store
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=WAIT_S):
                            self._wake(note.payload)
            except Exception:  # a restarted or unreachable database: listen again shortly
                log.exception("listening for events on the store failed; retrying")
            self.listening.clear()
            self._stop.wait(RETRY_S)

    def _connect(self) -> Any:
        """A psycopg connection made as the store's engine makes them, taken out of its pool for good."""
        pooled = self.store.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()
        if connection is None:
            raise RuntimeError("the store's pool gave no connection")
        connection.rollback()
        connection.autocommit = True
        return connection

    def _wake(self, payload: str) -> None:
        session_id, _, seq = payload.partition(":")
        if seq.isdigit():
            self.bus.wake(session_id, int(seq))
        else:
            log.warning("ignored a notification on %s: %r", CHANNEL, payload)
