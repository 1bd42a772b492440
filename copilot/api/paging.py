"""Paging for every list the API answers: ``limit`` and an opaque ``cursor`` in, ``{items, next_cursor}`` out.

Every list is in the order things happened (sessions, versions, messages, events, LLM requests, webhooks)
and only grows at its end, so a cursor is the position after the last item seen: a page never repeats or
skips an item that existed when the first page was read. Clients send the cursor back as they got it; its
form (``p1.<position>``) is versioned so it can change later, and the document gives its pattern, so any
cursor of that form is one the server can read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

T = TypeVar("T")
P = TypeVar("P", bound="Page")  # type: ignore[type-arg]
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_PREFIX = "p1."
CURSOR_PATTERN = r"^p1\.[0-9]{1,15}$"
MAX_POSITION = 10**15 - 1  # what 15 digits hold: well inside the database's 64-bit integers


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Send as `cursor` to read the next page; null when this page is the last one."
    )


def encode_cursor(position: int) -> str:
    return f"{_PREFIX}{position}"


def decode_cursor(cursor: str) -> int:
    """The position of a cursor that matches :data:`CURSOR_PATTERN` (the query's validation checked it)."""
    return int(cursor.removeprefix(_PREFIX))


@dataclass(frozen=True)
class Window:
    """Which items a request asks for: ``limit`` of them from ``offset``."""

    offset: int
    limit: int

    def page(self, model: type[P], read: Callable[[int, int], Sequence[object]]) -> P:
        """The ``model`` page of what ``read(offset, count)`` returns; one item more is read to know whether
        more follow."""
        items = list(read(self.offset, self.limit + 1))
        more = len(items) > self.limit
        return model(items=items[: self.limit], next_cursor=encode_cursor(self.offset + self.limit) if more else None)


def _window(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many items.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="The `next_cursor` of the previous page, as it came.")
    ] = None,
) -> Window:
    return Window(decode_cursor(cursor) if cursor else 0, limit)


WindowDep = Annotated[Window, Depends(_window)]
