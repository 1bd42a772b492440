"""Runs one tool call in a separate, limited child process.

The caller hands over a Parquet file and JSON parameters; the child runs in a
fresh working directory with limits on address space (``RLIMIT_AS``: virtual
memory, which counts mapped libraries too, so keep it at a few GiB), CPU
seconds (``RLIMIT_CPU``) and wall-clock time (enforced by the parent), with no
network, and writes its table and a JSON result back into that directory.
Whatever the child does (raise, hang, exhaust memory, exit), the caller gets a
:class:`SandboxOutcome`; the input file is a copy, so the caller's data is
never touched.

Children come from a ``forkserver`` that has pandas, scikit-learn, cleanlab and
the tools already imported: a fresh child costs milliseconds, not the seconds
of a new interpreter.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tools import sandbox_child
from tools.registry import BUILTIN_TOOLS

PRELOAD = [
    "pandas", "pyarrow.parquet", "sklearn.ensemble", "sklearn.model_selection", "cleanlab.filter",
    "tools.sandbox_child", *(spec.partition(":")[0] for spec in BUILTIN_TOOLS),
]  # fmt: skip

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096
    cpu_seconds: int = 600
    wall_seconds: float = 900.0
    threads: int = 1  # OpenMP/BLAS threads; on small VMs more threads are often slower, not faster


@dataclass(frozen=True)
class CallContext:
    """The JSON-able part of a ``ToolContext``, sent to the child."""

    target: str | None = None
    id_columns: list[str] = field(default_factory=list)
    column_types: dict[str, str] = field(default_factory=dict)
    task: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class SandboxOutcome:
    """The result of one sandboxed call: either ``result`` (and maybe a table) or ``error``."""

    ok: bool
    duration_s: float
    result: dict[str, Any] = field(default_factory=dict)
    table_path: Path | None = None
    error: str | None = None
    error_kind: str | None = None  # "params", "user", "tool", "memory", "cpu", "timeout", "crash", "cancelled"


_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload([*PRELOAD, *_main_module()])
            _context = ctx
        return _context


def _main_module() -> list[str]:
    """The caller's main module, so the forkserver imports it once rather than every child.

    multiprocessing re-runs the main module in each child; preloaded, that costs
    microseconds instead of the import time of a CLI or a web app."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = getattr(spec, "name", None)
    return [name] if name and not name.endswith("__main__") else ["__main__"]


def isolation_mode() -> str:
    """How network access is cut in the child: "netns" (kernel) or "audit-hook" (Python)."""
    return sandbox_child.probe_isolation()


class Sandbox:
    """Runs tool calls in child processes under ``limits``; work folders live under ``root``."""

    def __init__(self, limits: Limits, root: Path, extra_tools: tuple[str, ...] = ()) -> None:
        """``extra_tools`` ("module:Class") are registered in the child besides the registry's;
        they come from trusted configuration or tests, never from a request."""
        self.limits = limits
        self.extra_tools = extra_tools
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        tool: str,
        input_path: Path,
        params: dict[str, Any],
        ctx: CallContext,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> SandboxOutcome:
        """Run ``tool`` on a copy of ``input_path``; the table it writes stays in a fresh folder."""
        workdir = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=self.root))
        shutil.copyfile(input_path, workdir / sandbox_child.INPUT)
        (workdir / sandbox_child.CALL).write_text(
            json.dumps({"tool": tool, "params": params, "ctx": ctx.__dict__, "extra_tools": self.extra_tools}),
            encoding="utf-8",
        )
        started = time.monotonic()
        outcome = self._supervise(workdir, on_progress, cancel)
        if outcome.table_path is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            (workdir / sandbox_child.INPUT).unlink(missing_ok=True)
        return _with_duration(outcome, time.monotonic() - started)

    def discard(self, outcome: SandboxOutcome) -> None:
        """Remove what is left of a call that produced a table, once the caller has it."""
        if outcome.table_path is not None:
            shutil.rmtree(outcome.table_path.parent, ignore_errors=True)

    def _supervise(
        self, workdir: Path, on_progress: ProgressFn | None, cancel: threading.Event | None
    ) -> SandboxOutcome:
        ctx = _mp_context()
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=sandbox_child.main, args=(str(workdir), self.limits.__dict__, writer), daemon=True)
        proc.start()
        writer.close()
        pump = threading.Thread(target=_pump_progress, args=(reader, on_progress), daemon=True)
        pump.start()
        deadline = time.monotonic() + self.limits.wall_seconds
        while proc.is_alive() and time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                break
            proc.join(timeout=0.05)
        cancelled = proc.is_alive() and cancel is not None and cancel.is_set()
        timed_out = proc.is_alive() and not cancelled
        if proc.is_alive():
            _kill(proc)
        pump.join(timeout=2)
        reader.close()
        if cancelled:
            return _failure("cancelled", "the step was cancelled before it finished")
        if timed_out:
            return _failure(
                "timeout",
                f"the tool ran longer than the wall-clock limit of {self.limits.wall_seconds:g} s and was stopped",
            )
        return self._read_result(workdir, proc.exitcode)

    def _read_result(self, workdir: Path, exitcode: int | None) -> SandboxOutcome:
        result_file = workdir / sandbox_child.RESULT
        if result_file.exists():
            payload = json.loads(result_file.read_text(encoding="utf-8"))
            if payload.get("ok"):
                table = workdir / sandbox_child.OUTPUT
                return SandboxOutcome(True, 0.0, result=payload["result"], table_path=table if table.exists() else None)
            return _failure(payload["kind"], payload["message"])
        return _failure(*self._explain_exit(exitcode))

    def _explain_exit(self, code: int | None) -> tuple[str, str]:
        if code == -signal.SIGXCPU:
            return "cpu", f"the tool used more than its CPU-time limit of {self.limits.cpu_seconds} s"
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return (
                "crash",
                f"the tool's process was killed by {name} (out of memory, or stopped from outside)",
            )
        return "crash", f"the tool's process exited with code {code} before writing a result"


def _with_duration(outcome: SandboxOutcome, seconds: float) -> SandboxOutcome:
    return SandboxOutcome(outcome.ok, seconds, outcome.result, outcome.table_path, outcome.error, outcome.error_kind)


def _failure(kind: str, message: str) -> SandboxOutcome:
    return SandboxOutcome(False, 0.0, error=message, error_kind=kind)


def _kill(proc: Any) -> None:
    proc.kill()
    proc.join(timeout=5)


def _pump_progress(reader: Connection, on_progress: ProgressFn | None) -> None:
    """Forward progress messages from the child until it closes its end."""
    while True:
        try:
            fraction, message = reader.recv()
        except (EOFError, OSError):
            return
        except Exception:  # a malformed message from a hostile child is dropped
            continue
        if on_progress is not None:
            try:
                on_progress(float(fraction), str(message)[:500])
            except Exception:  # the caller's display must not kill the pump
                continue
