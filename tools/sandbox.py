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
of a new interpreter. Inside a Ray task (``tools.ray_executor``), whose worker
process serves one call and then exits, the child is a fresh interpreter
(``start_method="spawn"``) that imports the same modules first: the same child
code, the same limits.

:class:`Sandbox` is the ``local`` executor of ``tools.executor``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from tools import sandbox_child
from tools.builtin import BUILTIN_TOOLS

PRELOAD = [
    "pandas", "pyarrow.parquet", "sklearn.ensemble", "sklearn.model_selection", "cleanlab.filter",
    "tools.sandbox_child", "tools.registry", "tools.holdout", *(spec.partition(":")[0] for spec in BUILTIN_TOOLS),
]  # fmt: skip

ProgressFn = Callable[[float, str], None]
#: How the thread pools of a fresh interpreter are sized before their libraries load.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAX_RESULT_BYTES = 16 * 1024 * 1024  # the JSON result (summary, findings, fitted state), not the table
#: The most a child may take to be ready (its limits and layers in force) before its wall clock starts.
STARTUP_S = 60.0


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
    #: Where it ran: ``{"executor": "local"}``, or ``{"executor": "ray", "task_id", "node_id", ...}``.
    where: dict[str, Any] = field(default_factory=lambda: {"executor": "local"})


_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    """The forkserver, preloaded once per process."""
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

    name = "local"

    def __init__(
        self, limits: Limits, root: Path, extra_tools: tuple[str, ...] = (), protected: tuple[Path, ...] | None = None,
        start_method: Literal["forkserver", "spawn"] = "forkserver",
    ) -> None:  # fmt: skip
        """``extra_tools`` ("module:Class") are registered in the child besides the registry's;
        they come from trusted configuration or tests, never from a request. ``protected`` folders
        are never opened by a tool, not even where Python's own files are readable; by default the folder
        that holds ``root`` (the data directory, with the store and every version)."""
        self.limits = limits
        self.extra_tools = extra_tools
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.protected = tuple(str(p) for p in (protected if protected is not None else (self.root.parent,)))
        self.start_method = start_method

    def describe(self) -> dict[str, Any]:
        """What ``copilot doctor`` and ``/readyz`` say of this executor."""
        return {"executor": self.name, "cpus": os.cpu_count() or 1}

    def warm(self) -> None:
        """Start the forkserver: its imports (pandas, scikit-learn, cleanlab and the tools, seconds of CPU)
        then overlap with what the caller does next, loading and profiling a table, instead of delaying the
        first call. Returns at once; the first call waits only for what is left of them."""
        if self.start_method == "forkserver":
            _mp_context()
            forkserver.ensure_running()

    def close(self) -> None:
        """Nothing to release: the forkserver ends with this process."""

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
        started = time.monotonic()
        proc, reader = self._start(workdir)
        pump = _Progress(reader, on_progress)
        pump.start()
        while proc.is_alive() and time.monotonic() < pump.deadline(started, self.limits.wall_seconds):
            if cancel is not None and cancel.is_set():
                break
            proc.join(timeout=0.05)
        cancelled = proc.is_alive() and cancel is not None and cancel.is_set()
        timed_out = proc.is_alive() and not cancelled
        _kill(proc)  # and whatever it started, even when it has exited
        pump.join(timeout=2)
        reader.close()
        if cancelled:
            return failure("cancelled", "the step was cancelled before it finished")
        if timed_out:
            return failure(
                "timeout",
                f"the tool ran longer than the wall-clock limit of {self.limits.wall_seconds:g} s and was stopped",
            )
        return self._read_result(workdir, proc.exitcode)

    def _start(self, workdir: Path) -> tuple[Any, Connection]:
        """The child, started, and the end of its progress pipe."""
        if self.start_method == "spawn":
            reader, writer = mp.Pipe(duplex=False)
            proc: Any = _Spawned((str(workdir), self.limits.__dict__, writer.fileno(), self.protected))
        else:
            ctx = _mp_context()
            reader, writer = ctx.Pipe(duplex=False)
            args = (str(workdir), self.limits.__dict__, writer, self.protected)
            proc = ctx.Process(target=sandbox_child.main, args=args, daemon=True)
            proc.start()
        writer.close()
        return proc, reader

    def _read_result(self, workdir: Path, exitcode: int | None) -> SandboxOutcome:
        """The child's result, trusted no further than its shape: plain files, bounded, valid JSON."""
        result_file, table = workdir / sandbox_child.RESULT, workdir / sandbox_child.OUTPUT
        if not result_file.exists() and not result_file.is_symlink():
            return failure(*self._explain_exit(exitcode))
        for path in (result_file, table):
            if (path.exists() or path.is_symlink()) and not _plain_file(path):
                return failure("tool", f"the tool left {path.name} as a link or special file; only plain files count")
        size = result_file.stat().st_size
        if size > MAX_RESULT_BYTES:
            return failure("tool", f"the tool's result is {size / 2**20:.0f} MiB, over the limit of "
                                    f"{MAX_RESULT_BYTES // 2**20} MiB; keep findings short")  # fmt: skip
        try:
            payload = json.loads(result_file.read_text(encoding="utf-8"))
            if payload.get("ok"):
                return SandboxOutcome(True, 0.0, result=dict(payload["result"]),
                                      table_path=table if table.exists() else None)  # fmt: skip
            return failure(str(payload["kind"]), str(payload["message"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return failure("crash", "the tool's process left a result that is not the sandbox's JSON; ignored")

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


class _Spawned:
    """A sandbox child in a fresh interpreter (``start_method="spawn"``), with the calls of a
    ``multiprocessing.Process`` that the sandbox uses. Nothing of the caller's memory or descriptors
    reaches it but the progress pipe: a Ray worker's memory maps its node's object store, which holds
    other calls' tables, so a child forked from one would see them."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))  # the modules the caller sees
        threads = str(args[1].get("threads", 1))
        environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": path,
                       **{name: threads for name in _THREAD_VARIABLES}}  # fmt: skip
        command = [sys.executable, "-m", "tools._spawned_child", json.dumps(args)]
        self._popen = subprocess.Popen(command, pass_fds=(args[2],), env=environment, stdin=subprocess.DEVNULL)
        self.pid = self._popen.pid

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def kill(self) -> None:
        self._popen.kill()

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()


def _with_duration(outcome: SandboxOutcome, seconds: float) -> SandboxOutcome:
    return replace(outcome, duration_s=seconds)


def failure(kind: str, message: str) -> SandboxOutcome:
    """A failed call of ``kind`` (see :class:`SandboxOutcome`), explained to the person."""
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


class _Progress(threading.Thread):
    """Forwards the child's progress messages until it closes its end, and notes when it became ready: its
    first message, sent by the sandbox's own code once the limits and layers are in force, before any tool
    code. The wall-clock limit counts from then, so a child that starts an interpreter (``spawn``) gets
    the same time for its tool as one from the forkserver; a later "ready" from a tool changes nothing."""

    def __init__(self, reader: Connection, on_progress: ProgressFn | None) -> None:
        super().__init__(name="sandbox-progress", daemon=True)
        self.reader, self.on_progress = reader, on_progress
        self.ready_at: float | None = None

    def deadline(self, started: float, wall_seconds: float) -> float:
        if self.ready_at is None:
            return started + wall_seconds + STARTUP_S
        return self.ready_at + wall_seconds

    def run(self) -> None:
        while True:
            try:
                message = self.reader.recv()
                if self.ready_at is None and message == sandbox_child.READY:
                    self.ready_at = time.monotonic()
                    continue
                fraction, text = message
            except (EOFError, OSError):
                return
            except Exception:  # a malformed message from a hostile child is dropped
                continue
            if self.on_progress is not None:
                try:
                    self.on_progress(float(fraction), str(text)[:500])
                except Exception:  # the caller's display must not kill the pump
                    continue
