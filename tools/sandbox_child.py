"""The code that runs inside a sandbox child, before and around the tool.

Order matters: limits, a scrubbed environment, network isolation and the audit
hook are in force before any tool or plugin code is imported or run.

The audit hook sees what Python code does, not what native code does: a tool
that calls C directly (``ctypes``, a C extension, pyarrow's own file reader)
passes under it. SECURITY.md says what that leaves open.
"""

from __future__ import annotations

import ctypes
import io
import json
import math
import os
import resource
import sys
import traceback
import warnings
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from threadpoolctl import ThreadpoolController

INPUT, OUTPUT, CALL, RESULT = "input.parquet", "output.parquet", "call.json", "result.json"
_CLONE_NEWNET = 0x40000000
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
#: Where the sandbox tells its forkserver the caller's main script (see ``tools._forkserver_main``).
MAIN_PATH_ENV = "COPILOT_SANDBOX_MAIN_PATH"

#: The only environment variables a tool sees; tokens, API keys and database URLs stay with the server.
_SAFE_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONHASHSEED")
_SAFE_ENVIRONMENT_PREFIXES = ("LC_", "OMP_", "OPENBLAS_", "MKL_", "BLIS_", "NUMEXPR_", "VECLIB_")


def _warm_up() -> ThreadpoolController:
    """Work done once in the forkserver instead of in every child: finding the thread pools
    of the loaded libraries, and pandas' lazy Parquet set-up."""
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"x": [1.0], "s": ["a"]}).to_parquet(buffer)
    pd.read_parquet(io.BytesIO(buffer.getvalue()))
    return ThreadpoolController()


_THREADPOOLS = _warm_up()


class SandboxViolation(PermissionError):
    """A tool tried something the sandbox forbids (network, processes)."""


def main(workdir: str, limits: dict[str, Any], progress: Connection, protected: tuple[str, ...] = ()) -> None:
    """Entry point of the child: confine, run the call in ``workdir``, write the result.

    ``protected`` folders (the data directory) are off limits even where Python's own files live."""
    os.setsid()  # its own process group, so the parent can stop whatever it starts
    os.chdir(workdir)
    _scrub_environment(workdir, str(limits.get("threads", 1)))
    _apply_limits(limits)
    _cut_network()
    sys.addaudithook(_FilePolicy(workdir, protected))
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
        own_proc = [f"/proc/{os.getpid()}/{name}" for name in _OWN_PROC_FILES]
        python = [sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p)]
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


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _apply_limits(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The OpenMP/BLAS pools were sized when the forkserver imported them; environment
    # variables set now would be ignored, so resize the pools directly.
    _THREADPOOLS.limit(limits=int(limits.get("threads", 1)))


def _unshare_network() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(_CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def _cut_network() -> str:
    """Kernel isolation where allowed, and a Python audit hook in every case."""
    mode = "netns" if _unshare_network() else "audit-hook"
    sys.addaudithook(_refuse)
    return mode


def _refuse(event: str, args: tuple[Any, ...]) -> None:
    if event in _BLOCKED_EVENTS:
        raise SandboxViolation(f"the sandbox does not allow {event} (no network, no new processes, no signals)")
    if event == "os.kill" and args[0] != os.getpid():
        raise SandboxViolation(f"the sandbox does not allow signalling process {args[0]} (only the tool's own)")


def probe_isolation() -> str:
    """Report the isolation a child would get, by trying it in a throw-away fork."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _unshare_network() else 1)
    _, status = os.waitpid(pid, 0)
    return "netns" if os.waitstatus_to_exitcode(status) == 0 else "audit-hook"


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tool_cls().run(table, params, ctx)
    if not isinstance(result, ToolResult):
        raise _CallError("tool", f"{tool_cls.name} returned {type(result).__name__}, not a ToolResult")
    _check_table(tool_cls.name, tool_cls.mutates, result, ctx)
    if result.table is not None:
        result.table.to_parquet(OUTPUT)
    notes = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))[:10]
    return {"ok": True, "result": {**_result_json(result), "warnings": notes}}


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
