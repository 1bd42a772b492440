"""The seam between the engine and where a tool call runs.

One interface, "run this call under these limits and stream its progress back", and two
implementations: ``local`` (:class:`tools.sandbox.Sandbox`, children of a forkserver on this
machine, the embedded default) and ``ray`` (:class:`tools.ray_executor.RayExecutor`, one Ray task
per call). Both run the same sandbox child (``tools.sandbox_child``), which sets the limits and the
kernel's layers before any tool code runs, so what the sandbox guarantees holds in both.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from tools.sandbox import CallContext, Limits, ProgressFn, SandboxOutcome

EXECUTORS = ("local", "ray")


class ExecutorUnavailable(RuntimeError):
    """The executor asked for cannot run calls here (Ray not installed, no cluster at the address)."""


class Executor(Protocol):
    """Runs one tool call on a copy of a table and hands back a :class:`SandboxOutcome`.

    A table the call made lies in a fresh folder under ``root`` (``outcome.table_path``) until
    :meth:`discard`; ``outcome.where`` says where the call ran."""

    name: str
    root: Path
    limits: Limits

    def run(
        self,
        tool: str,
        input_path: Path,
        params: dict[str, Any],
        ctx: CallContext,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> SandboxOutcome: ...

    def discard(self, outcome: SandboxOutcome) -> None: ...

    def warm(self) -> None:
        """Start now, and without waiting, what the first call would otherwise wait for."""

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
