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
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
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
MAX_RESULT_BYTES = 16 * 1024 * 1024  # the JSON result (summary, findings, fitted state), not the table


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096
    cpu_seconds: int = 600
    wall_seconds: float = 900.0
    threads: int = 1  # OpenMP/BLAS threads; on small VMs more threads are often slower, not faster
    strict: bool = False  # run no tool where the kernel's isolation (namespaces, Landlock) is missing


@dataclass(frozen=True)
class CallContext:
    """The JSON-able part of a ``ToolContext``, sent to the child."""

    target: str | None = None
    id_columns: list[str] = field(default_factory=list)
    column_types: dict[str, str] = field(default_factory=dict)
    task: str | None = None
    seed: int = 0
    holdout: float = 0.0
    holdout_scope: str = "training"


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
    """The caller's main module, so the forkserver imports it once rather than every child, and
    last :mod:`tools._forkserver_main`, which freezes what the forkserver holds.

    multiprocessing re-runs the main module in each child; preloaded, that costs
    microseconds instead of the import time of a CLI or a web app. A module run with
    ``-m`` is preloaded by name; a script (such as the ``copilot`` console script) by
    its path, which ``tools._forkserver_main`` reads from the environment."""
    main = sys.modules["__main__"]
    name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    os.environ.pop(sandbox_child.MAIN_PATH_ENV, None)  # never a path inherited from a parent process
    if name is None and path and os.path.isfile(path):
        os.environ[sandbox_child.MAIN_PATH_ENV] = os.path.abspath(path)  # the forkserver inherits it at start
    by_name = [name] if name and not name.endswith("__main__") else []
    return [*by_name, "tools._forkserver_main"]


def isolation_report(protected: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each layer a child gets on this machine (namespaces, Landlock ABI and rights, audit hooks), found by
    applying them in a throw-away fork: ``{"kernel": bool, "describe": str, ...}``."""
    return sandbox_child.probe_isolation(protected)


class Sandbox:
    """Runs tool calls in child processes under ``limits``; work folders live under ``root``."""

    def __init__(
        self, limits: Limits, root: Path, extra_tools: tuple[str, ...] = (), protected: tuple[Path, ...] | None = None
    ) -> None:
        """``extra_tools`` ("module:Class") are registered in the child besides the registry's;
        they come from trusted configuration or tests, never from a request. ``protected`` folders
        are never opened by a tool's Python code; by default the folder that holds ``root`` (the data
        directory, with the store and every version)."""
        self.limits = limits
        self.extra_tools = extra_tools
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.protected = tuple(str(p) for p in (protected if protected is not None else (self.root.parent,)))

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
        args = (str(workdir), self.limits.__dict__, writer, self.protected)
        proc = ctx.Process(target=sandbox_child.main, args=args, daemon=True)
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
        _kill(proc)  # and whatever it started, even when it has exited
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
        """The child's result, trusted no further than its shape: plain files, bounded, valid JSON."""
        result_file, table = workdir / sandbox_child.RESULT, workdir / sandbox_child.OUTPUT
        if not result_file.exists() and not result_file.is_symlink():
            return _failure(*self._explain_exit(exitcode))
        for path in (result_file, table):
            if (path.exists() or path.is_symlink()) and not _plain_file(path):
                return _failure("tool", f"the tool left {path.name} as a link or special file; only plain files count")
        size = result_file.stat().st_size
        if size > MAX_RESULT_BYTES:
            return _failure("tool", f"the tool's result is {size / 2**20:.0f} MiB, over the limit of "
                                    f"{MAX_RESULT_BYTES // 2**20} MiB; keep findings short")  # fmt: skip
        try:
            payload = json.loads(result_file.read_text(encoding="utf-8"))
            if payload.get("ok"):
                return SandboxOutcome(True, 0.0, result=dict(payload["result"]),
                                      table_path=table if table.exists() else None)  # fmt: skip
            return _failure(str(payload["kind"]), str(payload["message"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return _failure("crash", "the tool's process left a result that is not the sandbox's JSON; ignored")

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


def _plain_file(path: Path) -> bool:
    """A regular file with no other name: not a symlink or hard link into the data directory."""
    info = os.lstat(path)
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def _kill(proc: Any) -> None:
    """Stop the child and its process group (it made one with ``setsid``), so nothing it started lives on."""
    if proc.pid is not None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.is_alive():
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
