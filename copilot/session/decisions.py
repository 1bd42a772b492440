"""What a person answers at a gate, whoever asks: the local run through the engine, or the remote one
through the API (``copilot clean --server``). Nothing here knows about either."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from copilot.session.views import EventView, PendingStep


@dataclass(frozen=True)
class Decision:
    action: Literal["approve", "skip", "stop"]
    params: dict[str, Any] | None = None  # edited parameters, when the human changed them


Approver = Callable[[PendingStep, list[str]], Decision]  # the step, and the table's current columns
EventSink = Callable[[EventView], None]


def approve_all(step: PendingStep, columns: list[str]) -> Decision:
    return Decision("approve")
