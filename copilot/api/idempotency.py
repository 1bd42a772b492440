"""``Idempotency-Key``: a request retried with the same key gets the first answer back, and runs nothing twice.

A service whose connection drops after it sent "create this session" or "approve this step" cannot know
whether the server acted. It retries with the same key; the server answers from the database with what it
answered the first time (``Idempotent-Replayed: true``) instead of creating a second session or acting
again. The record is in the store, so a retry reaching another server, or this one after a restart, is
answered the same. Keys belong to their owner (two tokens may use the same key) and are kept for
:data:`KEEP`.

- The same key with another request (another operation, session, body or file) is a 409 that says so: the
  client has a bug, and guessing which request it meant could act on the wrong one.
- While the first request is still being answered, a retry is a 409: "try again in a moment". A claim left
  by a server that died is taken over after :data:`RUNNING_FOR`.
- A request that fails is forgotten: it changed nothing (every refusal fails closed), so its retry runs
  again and may succeed, e.g. once the step it approves is previewed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from copilot.api.deps import EngineDep, OwnerDep
from copilot.errors import Conflict
from copilot.storage.store import IdempotencyRow, Store, now

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEEP = timedelta(hours=24)
RUNNING_FOR = timedelta(minutes=15)
M = TypeVar("M", bound=BaseModel)

KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER, min_length=1, max_length=255, pattern=r"^[!-~]+$",
        description="Any unique string (a UUID): a retry with the same key is answered with the first answer "
        "and runs nothing twice. Kept 24 hours; reused for another request, it is a 409.",
    ),
]  # fmt: skip


class Once:
    """Runs a route's action at most once per ``(owner, key)``; without a key, every time."""

    def __init__(self, store: Store, owner: str, key: str | None) -> None:
        self.store, self.owner, self.key = store, owner, key

    def __call__(self, request: object, run: Callable[[], M], status: int = 200) -> M | JSONResponse:
        """The answer of ``run()`` for ``request`` (what identifies it: operation, ids, body), or the answer
        stored for this key."""
        if self.key is None:
            return run()
        replay = self._claim(fingerprint(request))
        if replay is not None:
            return replay
        try:
            result = run()
        except BaseException:
            self._forget()
            raise
        self._record(status, result)
        return result

    def _claim(self, digest: str) -> JSONResponse | None:
        try:
            with self.store.transaction() as db:
                db.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now() - KEEP))
                row = db.get(IdempotencyRow, (self.owner, self.key), with_for_update=True)
                if row is None:
                    db.add(IdempotencyRow(owner=self.owner, key=self.key, fingerprint=digest))
                    return None
                if row.fingerprint != digest:
                    raise Conflict(_REUSED)
                if row.status is not None:
                    return JSONResponse(row.body, status_code=row.status, headers={REPLAYED: "true"})
                if row.created_at > now() - RUNNING_FOR:
                    raise Conflict(f"a request with this {HEADER} is still being answered: retry it in a moment")
                row.created_at = now()  # its server died while answering: this request takes the key over
                return None
        except IntegrityError:  # another server claimed the key between the read and the insert
            raise Conflict(f"a request with this {HEADER} is still being answered: retry it in a moment") from None

    def _record(self, status: int, result: BaseModel) -> None:
        with self.store.transaction() as db:
            row = db.get_one(IdempotencyRow, (self.owner, self.key))
            row.status, row.body = status, result.model_dump(mode="json")

    def _forget(self) -> None:
        with self.store.transaction() as db:
            db.execute(delete(IdempotencyRow).where(IdempotencyRow.owner == self.owner, IdempotencyRow.key == self.key))


_REUSED = (
    f"this {HEADER} was already used for another request: send a new key for each new request, and the same "
    "key only to retry the very same request"
)


def fingerprint(request: object) -> str:
    """A digest of what identifies a request; models count by their JSON."""
    plain = json.dumps(request, sort_keys=True, default=lambda o: o.model_dump(mode="json"))
    return hashlib.sha256(plain.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """The SHA-256 of a received file, so the same key with another file is a different request."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _once(engine: EngineDep, owner: OwnerDep, key: KeyHeader = None) -> Once:
    return Once(engine.store, owner, key)


OnceDep = Annotated[Once, Depends(_once)]
