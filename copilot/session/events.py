"""Live delivery of session events to WebSocket clients in this process.

Events are persisted by the engine first (with their per-session sequence
number); the bus only wakes up connected clients. A client that was not
connected reads what it missed from the store (``Engine.events_after``).
An event written by another server on the same store arrives as a bare
sequence number (``copilot.session.fanout``): the client reads the event itself
from the store.
"""

from __future__ import annotations

import asyncio
import threading

from copilot.session.views import EventView

#: What a subscription yields: an event this process wrote, or the last sequence number another server wrote
#: (``UNKNOWN``: events may have been written meanwhile; read the store to find out).
Item = EventView | int
UNKNOWN = 0


class Subscription:
    """Events of one session for one client, in publication order."""

    def __init__(self, session_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.session_id = session_id
        self.loop = loop
        self.queue: asyncio.Queue[Item] = asyncio.Queue()

    async def get(self) -> Item:
        return await self.queue.get()


class EventBus:
    """Fan-out from the engine's threads to subscribers' event loops."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()

    def subscribe(self, session_id: str) -> Subscription:
        """Call from the event loop that will read the subscription."""
        sub = Subscription(session_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.setdefault(session_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.session_id, set())
            subs.discard(sub)
            if not subs:
                self._subscribers.pop(sub.session_id, None)

    def publish(self, session_id: str, event: EventView) -> None:
        """Safe from any thread; never blocks on a slow client."""
        self._put(session_id, event)

    def wake(self, session_id: str, seq: int) -> None:
        """The session's events up to ``seq`` are in the store (another server wrote them)."""
        self._put(session_id, seq)

    def wake_all(self) -> None:
        """Every subscriber reads from the store what it has not been sent (after notifications may have been
        lost)."""
        with self._lock:
            sessions = list(self._subscribers)
        for session_id in sessions:
            self._put(session_id, UNKNOWN)

    def _put(self, session_id: str, item: Item) -> None:
        with self._lock:
            subs = list(self._subscribers.get(session_id, ()))
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, item)
            except RuntimeError:  # the client's loop has closed
                self.unsubscribe(sub)
