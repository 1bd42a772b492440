"""The code that runs inside a sandbox child, before and around the tool.

Order matters: limits, a scrubbed environment, the kernel's layers and the audit
hooks are in force before any tool or plugin code is imported or run.

The kernel's layers hold against anything the tool runs, native code and new
processes included: a user and network namespace (no network at all: no TCP,
UDP or DNS, for root and non-root alike) and a Landlock ruleset
(:mod:`tools.landlock`: read only Python's files and a few system ones, write
only the call's own folder, nothing of the data directory; no TCP; no signal
or abstract socket outside the call). The audit hooks are a second layer that
sees what Python code does and refuses it with a clear message.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import resource
import sys
import tempfile
import traceback
import warnings
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from threadpoolctl import ThreadpoolController

from tools import child_process as process
from tools import landlock

INPUT, OUTPUT, CALL, RESULT = "input.parquet", "output.parquet", "call.json", "result.json"
READY = "ready"  # the first message on the progress pipe: limits and layers in force, no tool code run yet
_BLOCKED_EVENTS = frozenset(
    {"socket.__new__", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.sethostname",
     "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "pty.spawn",
     "os.killpg"}
)  # fmt: skip
#: Events whose first argument is a path the tool reads, or (the second set) changes.
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "sqlite3.connect"})
_WRITE_EVENTS = frozenset(
    {"os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree"}
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: Outside its folder, a tool may read only Python's own files and these system paths.
_SYSTEM_READABLE = ("/usr", "/lib", "/lib64", "/etc/localtime", "/proc/cpuinfo", "/proc/meminfo", "/sys",
                    "/dev/null", "/dev/urandom", "/dev/random")  # fmt: skip
_OWN_PROC_FILES = ("stat", "status", "statm", "limits", "cgroup", "mountinfo", "maps")
#: Single system files a tool may read besides (the dynamic loader's cache, the time zone).
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/timezone")
#: os functions that take a ``dir_fd`` (or ``src_dir_fd``/``dst_dir_fd``).
_DIR_FD_FUNCTIONS = ("open", "stat", "lstat", "access", "chmod", "chown", "link", "mkdir", "mkfifo", "mknod",
                     "readlink", "rename", "replace", "rmdir", "symlink", "unlink", "remove", "utime")  # fmt: skip
#: Where the sandbox tells its forkserver the caller's main script (see ``tools._forkserver_main``).
MAIN_PATH_ENV = "COPILOT_SANDBOX_MAIN_PATH"

#: The only environment variables a tool sees; tokens, API keys and database URLs stay with the server.
_SAFE_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONHASHSEED")
_SAFE_ENVIRONMENT_PREFIXES = ("LC_", "OMP_", "OPENBLAS_", "MKL_", "BLIS_", "NUMEXPR_", "VECLIB_")


@functools.cache
def warm_up() -> ThreadpoolController:
    """Work done once in the forkserver (``tools._forkserver_main``) or the spawned child's parent instead
    of in every child: finding the thread pools of the loaded libraries, and pandas' lazy Parquet set-up.
    Not at import: a process that only starts children (a Ray worker) never needs pandas."""
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"x": [1.0], "s": ["a"]}).to_parquet(buffer)
    pd.read_parquet(io.BytesIO(buffer.getvalue()))
    return ThreadpoolController()


class SandboxViolation(PermissionError):
    """A tool tried something the sandbox forbids (network, processes)."""


def main(workdir: str, limits: dict[str, Any], progress: Connection, protected: tuple[str, ...] = ()) -> None:
    """Entry point of the child: confine, run the call in ``workdir``, write the result.

    ``protected`` folders (the data directory) are off limits even where Python's own files live. With
    ``limits["strict"]`` a child whose kernel layers are missing runs no tool."""
    process.die_with_parent()
    process.close_inherited(progress.fileno())
    os.setsid()  # its own process group, so the parent can stop whatever it starts
    os.chdir(workdir)
    _scrub_environment(workdir, str(limits.get("threads", 1)))
    namespaces = process.unshare_namespaces()  # first: a user namespace needs a single thread
    if namespaces:
        process.become_init(int(limits["cpu_seconds"]))
    layers = confine(os.path.realpath(workdir), protected, namespaces)
    _apply_limits(limits)  # resizing the BLAS/OpenMP pools may start threads
    if limits.get("strict") and not layers.kernel():
        _write(RESULT, _error("isolation", f"COPILOT_SANDBOX=strict and the kernel isolation is incomplete "
                                           f"({layers.describe()}); the tool was not run"))  # fmt: skip
    else:
        progress.send(READY)  # the wall clock of the call starts now (``tools.sandbox``)
        _write(RESULT, _run_call(Path(workdir), limits, progress))
    progress.close()


def _scrub_environment(workdir: str, threads: str) -> None:
    for name in list(os.environ):
        if name not in _SAFE_ENVIRONMENT and not name.startswith(_SAFE_ENVIRONMENT_PREFIXES):
            del os.environ[name]
    os.environ.update({"TMPDIR": workdir, "HOME": workdir, "LOKY_MAX_CPU_COUNT": threads})


class _FilePolicy:
    """An audit hook: a tool writes only inside its folder, and reads only there, in Python's own
    installation and a few system files; never in a protected folder."""

    def __init__(self, workdir: str, protected: tuple[str, ...]) -> None:
        self.workdir = os.path.realpath(workdir)
        own_proc = _own_proc_files()
        python = _python_folders()
        self.readable = tuple({os.path.realpath(p) for p in [*python, *_SYSTEM_READABLE, *own_proc]})
        self.protected = tuple(os.path.realpath(p) for p in protected)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(ch in (mode or "") for ch in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
            self.check(path, writing)
        elif event in _READ_EVENTS or event in _WRITE_EVENTS:
            self.check(args[0] if args else None, event in _WRITE_EVENTS)
        elif event in {"os.rename", "os.link", "os.symlink", "shutil.copyfile"}:
            self.check(args[0], event == "os.rename")
            self.check(args[1], True)

    def check(self, path: Any, writing: bool) -> None:
        if isinstance(path, int) or path is None:  # an open file descriptor was checked when it was opened
            return
        real = os.path.realpath(os.fsdecode(path))
        if _inside(real, (self.workdir,)):
            return
        if not writing and _inside(real, self.readable) and not _inside(real, self.protected):
            return
        verb = "write" if writing else "read"
        raise SandboxViolation(f"the sandbox does not allow a tool to {verb} {real} (only its own working folder)")


def _python_folders() -> list[str]:
    """Python's installation, ``sys.path`` and the tool library's own folder, which an editable install
    reaches through an import hook rather than ``sys.path``: a tool may import a module of it lazily."""
    return [sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p), os.path.dirname(__file__)]


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _apply_limits(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The OpenMP/BLAS pools were sized when the forkserver imported them; environment
    # variables set now would be ignored, so resize the pools directly.
    warm_up().limit(limits=int(limits.get("threads", 1)))


@dataclass(frozen=True)
class Layers:
    """The isolation a child got: the kernel's layers, and the audit hooks that are always there."""

    namespaces: bool
    landlock: landlock.Applied

    def kernel(self) -> bool:
        """Both kernel layers in force: no network, and file access held by Landlock."""
        return self.namespaces and self.landlock.abi > 0

    def describe(self) -> str:
        ns = "user, network and pid namespaces: no network" if self.namespaces else "namespaces: unavailable"
        return f"{ns}; {self.landlock.describe()}; audit hooks"

    def as_dict(self) -> dict[str, Any]:
        return {"namespaces": self.namespaces, "landlock_abi": self.landlock.abi, "landlock_tcp": self.landlock.tcp,
                "landlock_scoped": self.landlock.scoped, "audit_hooks": True, "kernel": self.kernel()}  # fmt: skip


def confine(workdir: str, protected: tuple[str, ...], namespaces: bool) -> Layers:
    """The layers after the namespaces: Landlock, then the audit hooks (Python's own checks, with clear
    messages, and the holes they cannot see closed)."""
    applied = landlock.restrict(kernel_policy(workdir, protected))
    sys.addaudithook(_refuse)
    _close_unaudited_calls()
    sys.addaudithook(_FilePolicy(workdir, protected))
    return Layers(namespaces, applied)


def kernel_policy(workdir: str, protected: tuple[str, ...]) -> landlock.Policy:
    """Read Python's installation and a few system files, write the working folder: nothing else, and
    nothing of a ``protected`` folder even where it lies inside a readable one."""
    python = _python_folders()
    roots = {os.path.realpath(p) for p in [*python, *_SYSTEM_READABLE] if os.path.isdir(p)}
    files = {os.path.realpath(p) for p in [*_SYSTEM_READABLE, *_SYSTEM_FILES, *_own_proc_files()] if os.path.isfile(p)}
    guarded = tuple(os.path.realpath(p) for p in protected)
    readable = tuple(sorted({path for root in roots for path in _outside_of(root, guarded)}))
    return landlock.Policy(read=readable, read_files=tuple(sorted(files)), read_write_files=("/dev/null",),
                           write=(workdir,))  # fmt: skip


def _outside_of(root: str, guarded: tuple[str, ...]) -> list[str]:
    """``root``, or, when a guarded folder lies inside it, the entries of ``root`` around that folder."""
    if _inside(root, guarded):
        return []
    if not any(_inside(g, (root,)) for g in guarded):
        return [root]
    try:
        entries = [os.path.join(root, name) for name in os.listdir(root)]
    except OSError:
        return []
    return [path for entry in entries for path in _outside_of(entry, guarded)]


def _own_proc_files() -> list[str]:
    pid = os.readlink("/proc/self")  # as /proc numbers it: inside a new pid namespace os.getpid() is 1
    return [f"/proc/{pid}/{name}" for name in _OWN_PROC_FILES]


def _close_unaudited_calls() -> None:
    """Python calls that its audit events do not describe well enough: ``dir_fd`` arguments (the ``open``
    event carries the path but not the folder it is relative to) and ``_posixsubprocess.fork_exec`` (how
    ``subprocess`` and the ``spawn`` start method make processes; it raises no event). Both are refused."""
    import _posixsubprocess
    import posix

    for name in _DIR_FD_FUNCTIONS:
        original = getattr(posix, name, None)
        if original is not None:
            wrapped = _without_dir_fd(name, original)
            setattr(posix, name, wrapped)
            setattr(os, name, wrapped)
    _posixsubprocess.fork_exec = _refused_fork_exec


def _without_dir_fd(name: str, function: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        if any(kwargs.get(k) is not None for k in ("dir_fd", "src_dir_fd", "dst_dir_fd")):
            raise SandboxViolation(f"the sandbox does not allow os.{name} with a dir_fd (paths are checked whole)")
        return function(*args, **kwargs)

    return call


def _refused_fork_exec(*args: Any, **kwargs: Any) -> Any:
    raise SandboxViolation("the sandbox does not allow starting a process")


def _refuse(event: str, args: tuple[Any, ...]) -> None:
    if event in _BLOCKED_EVENTS:
        raise SandboxViolation(f"the sandbox does not allow {event} (no network, no new processes, no signals)")
    if event == "os.kill" and args[0] != os.getpid():
        raise SandboxViolation(f"the sandbox does not allow signalling process {args[0]} (only the tool's own)")


def probe_isolation(protected: tuple[str, ...] = ()) -> dict[str, Any]:
    """The isolation a child would get, tried in a throw-away fork that applies every layer."""
    read, write = os.pipe()
    with tempfile.TemporaryDirectory(prefix="copilot-probe-") as folder:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read)
                layers = confine(os.path.realpath(folder), protected, process.unshare_namespaces())
                os.write(write, json.dumps({**layers.as_dict(), "describe": layers.describe()}).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            report = reader.read()
        os.waitpid(pid, 0)
    return json.loads(report) if report else {"kernel": False, "describe": "the isolation probe failed"}


def _run_call(workdir: Path, limits: dict[str, Any], progress: Connection) -> dict[str, Any]:
    try:
        return _execute(workdir, progress)
    except MemoryError:
        return _error("memory", f"the tool ran out of memory (limit {limits['memory_mb']} MiB of address space)")
    except SandboxViolation as exc:
        return _error("tool", f"the tool broke a sandbox rule: {exc}")
    except _CallError as exc:
        return _error(exc.kind, str(exc))
    except ValueError as exc:
        return _error("user", str(exc))
    except Exception as exc:
        detail = traceback.format_exc(limit=-3)
        return _error("tool", f"the tool failed with {type(exc).__name__}: {exc}", detail)


class _CallError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _execute(workdir: Path, progress: Connection) -> dict[str, Any]:
    import pandas as pd
    from pydantic import ValidationError

    from tools.base import ToolContext, ToolResult
    from tools.holdout import scored_rows
    from tools.registry import UnknownToolError, find_tool

    call = json.loads((workdir / CALL).read_text(encoding="utf-8"))
    try:
        tool_cls = find_tool(call["tool"], tuple(call.get("extra_tools", ())))
    except UnknownToolError as exc:
        raise _CallError("params", str(exc)) from None
    try:
        params = tool_cls.parse_params(call["params"])
    except ValidationError as exc:
        raise _CallError("params", f"invalid parameters for {tool_cls.name}: {_explain(exc)}") from None
    table = pd.read_parquet(workdir / INPUT)
    ctx = ToolContext(**call["ctx"], progress=lambda f, m="": progress.send((f, m)))
    held = scored_rows(table, ctx.target, ctx.holdout, ctx.seed) if tool_cls.train_only else None
    before = table
    measured = ctx.holdout_scope == "held_out"  # the gain is measured: the held-out rows are cleaned too
    hidden = held is not None and held.any() and not tool_cls.sees_held_out and not measured
    if hidden:  # a row-level tool never sees the held-out rows
        table = table[~held]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tool_cls().run(table, params, ctx)
    if not isinstance(result, ToolResult):
        raise _CallError("tool", f"{tool_cls.name} returned {type(result).__name__}, not a ToolResult")
    _check_table(tool_cls.name, tool_cls.mutates, result, ctx)
    if result.table is not None and held is not None and held.any():
        result = replace(result, table=_within_scope(tool_cls.name, result.table, before, held, hidden, measured, ctx))
    if result.table is not None:
        result.table.to_parquet(OUTPUT)
    notes = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))[:10]
    return {"ok": True, "result": {**_result_json(result), "warnings": notes}}


def _within_scope(name: str, out: Any, before: Any, held: Any, hidden: bool, measured: bool, ctx: Any) -> Any:
    """The tool's table with only the changes its holdout scope allows (``tools.holdout``)."""
    from tools.holdout import keep_scope, rejoin, restore

    try:
        if measured:
            return keep_scope(out, before, held)
        return rejoin(out, before[held], before.index) if hidden else restore(out, before, held, ctx.target)
    except ValueError as exc:
        raise _CallError("tool", f"{name}: {exc}") from None


def _check_table(name: str, mutates: bool, result: Any, ctx: Any) -> None:
    if mutates and result.table is None:
        raise _CallError("tool", f"{name} changes data but returned no table")
    if not mutates and result.table is not None:
        raise _CallError("tool", f"{name} is read-only but returned a table")
    if result.table is not None:
        lost = [c for c in [ctx.target, *ctx.id_columns] if c and c not in result.table.columns]
        if lost:
            raise _CallError("tool", f"{name} removed protected column(s) {lost} (target and identifiers stay)")


def _explain(exc: Any) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "summary": result.summary,
        "findings": _clean(result.findings),
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "charts": [asdict(c) for c in result.charts],
        "fitted": _clean(result.fitted),
    }


def _clean(value: Any) -> Any:
    """Make tool output strict JSON: numpy scalars to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _error(kind: str, message: str, detail: str = "") -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message, "detail": detail}


def _write(name: str, payload: dict[str, Any]) -> None:
    Path(name).write_text(json.dumps(payload, default=str), encoding="utf-8")
