"""The live channel of a session: its events as they happen, and the same actions as HTTP.

Server → client: every event ``{seq, type, at, data}`` once, in ``seq`` order: first those persisted
after ``?after=``, then live ones. The bus is subscribed to *before* the store is read, so nothing
published in between is lost. Only the next ``seq`` is ever sent: an event that arrives after a gap, or
word that another server on the same store wrote events (``copilot.session.fanout``), makes the channel read
what is missing from the store. Streamed ``token`` frames are live only, and only this server's.
Client → server: JSON actions
(``approve``, ``preview``, ``reject``, ``message``, ``accept_rules``, ``undo``, ``stop``; approve and reject
name the ``proposal`` they answer, and a stale one is refused with status 409); a refused one comes back as a frame
``{"type": "error", "data": {"detail": ..., "status": 4xx}}`` and the socket stays open.
Close codes: 4401 (missing or wrong token), 4404 (no such session for this caller), 1008 (more than
``MESSAGES_PER_SECOND`` messages a second on average, after a burst of ``MESSAGE_BURST``), 1009 (a
frame over uvicorn's 16 MiB limit; sent as soon as its length is read, so a client still sending
it may see a connection reset instead). Frames go uncompressed (see ``copilot serve``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from copilot.api import schemas
from copilot.api.deps import EngineDep, websocket_owner
from copilot.api.errors import INTERNAL_ERROR, error_data, status_for, validation_data
from copilot.api.limits import MessageRate
from copilot.errors import CopilotError, NotFound
from copilot.session.engine import Engine
from copilot.session.events import UNKNOWN, Subscription
from copilot.session.views import EventView

router = APIRouter(tags=["websocket"])
log = logging.getLogger(__name__)
_ACTION: TypeAdapter[schemas.Action] = TypeAdapter(schemas.ClientAction)
MESSAGES_PER_SECOND, MESSAGE_BURST = 10.0, 30  # a person clicks a few times a second; a script floods
FLOODED = 1008  # policy violation


@router.websocket("/api/sessions/{session_id}/ws")
async def session_socket(
    websocket: WebSocket, session_id: str, engine: EngineDep, after: Annotated[int, Query(ge=0)] = 0
) -> None:
    await websocket.accept()  # before refusing, so the client sees the close code
    owner = websocket_owner(websocket)
    if owner is None:
        await websocket.close(4401, "missing or invalid token")
        return
    try:
        await run_in_threadpool(engine.get_session, session_id, owner)
    except NotFound:
        await websocket.close(4404, "no such session")
        return
    subscription = engine.bus.subscribe(session_id)
    try:
        await _Channel(websocket, engine, session_id, owner).serve(subscription, after)
    finally:
        engine.bus.unsubscribe(subscription)


class _Channel:
    def __init__(self, websocket: WebSocket, engine: Engine, session_id: str, owner: str) -> None:
        self.websocket, self.engine, self.session_id, self.owner = websocket, engine, session_id, owner
        self.sent = 0  # the last seq sent
        self.send_lock = asyncio.Lock()  # unlike anyio.Lock, taking it when free does not yield to the loop
        self.closed = False
        self.rate = MessageRate(MESSAGES_PER_SECOND, MESSAGE_BURST)

    async def serve(self, subscription: Subscription, after: int) -> None:
        """Send events and answer actions until the client goes away."""
        self.sent = after
        async with anyio.create_task_group() as tasks:

            async def events() -> None:
                try:
                    await self._events(subscription)
                except WebSocketDisconnect:
                    tasks.cancel_scope.cancel()

            tasks.start_soon(events)
            with suppress(WebSocketDisconnect):
                await self._actions()
            tasks.cancel_scope.cancel()

    async def _events(self, subscription: Subscription) -> None:
        await self._send_stored()
        while True:
            item = await subscription.get()
            if isinstance(item, EventView) and item.type == "token":  # a piece of a streamed answer: live only
                await self._send_text(item.frame())
            elif isinstance(item, EventView) and item.seq == self.sent + 1:
                await self._send_event(item)
            elif isinstance(item, EventView) or item == UNKNOWN or item > self.sent:
                await self._send_stored()  # a gap, or another server's events: read what is missing

    async def _send_stored(self) -> None:
        stored = await run_in_threadpool(self.engine.events_after, self.session_id, self.owner, self.sent)
        for event in stored:
            await self._send_event(event)

    async def _send_event(self, event: EventView) -> None:
        """Only ever the next one: ``seq`` is the last sent plus one, so no client sees a gap or a repeat."""
        if event.seq != self.sent + 1:
            return
        await self._send_text(event.frame())
        self.sent = event.seq

    async def _actions(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not self.rate.allow():
                await self._close(FLOODED, f"too many messages: at most {MESSAGES_PER_SECOND:g} a second; reconnect")
                return
            try:
                action = _ACTION.validate_json(message.get("text") or message.get("bytes") or b"")
                await run_in_threadpool(self._perform, action)
            except ValidationError as exc:
                malformed = any(error["type"] == "json_invalid" for error in exc.errors())
                await self._send_error(validation_data(exc.errors()), 400 if malformed else 422)
            except CopilotError as exc:
                await self._send_error(error_data(exc), status_for(exc))
            except Exception:
                log.exception("websocket action on session %s failed", self.session_id)
                await self._send_error({"detail": INTERNAL_ERROR}, 500)

    def _perform(self, action: schemas.Action) -> None:
        """Run one client action with the engine (in a worker thread: the engine blocks)."""
        engine, session_id, owner = self.engine, self.session_id, self.owner
        match action:
            case schemas.ApproveAction(step_id=step_id, proposal=proposal, params=params, preview=preview):
                engine.approve(session_id, step_id, owner, proposal, params, preview)
            case schemas.PreviewAction(step_id=step_id, proposal=proposal, params=params):
                engine.preview(session_id, step_id, owner, proposal, params)
            case schemas.RejectAction(step_id=step_id, proposal=proposal, reason=reason):
                engine.reject(session_id, step_id, owner, proposal, reason)
            case schemas.MessageAction(text=text, proposal=proposal, suggestion=suggestion):
                engine.post_message(session_id, owner, text, proposal, suggestion)
            case schemas.AcceptRulesAction(suggestion=suggestion):
                engine.accept_rules(session_id, owner, suggestion)
            case schemas.UndoAction():
                engine.undo(session_id, owner)
            case schemas.StopAction():
                engine.stop(session_id, owner)

    async def _send_error(self, data: dict[str, Any], status: int) -> None:
        await self._send({"type": "error", "data": {**data, "status": status}})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    async def _send_text(self, text: str) -> None:
        async with self.send_lock:
            if not self.closed:
                await self.websocket.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        async with self.send_lock:
            self.closed = True
            await self.websocket.close(code, reason)
