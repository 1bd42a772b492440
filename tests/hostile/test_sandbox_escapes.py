"""A hostile plugin tool tries to get out of the sandbox: every attempt is a failed call with a clear error,
the data directory is untouched and the calling process lives on.

Python-level attempts are refused by the audit hooks with a message that names the rule; native ones (libc
through ``ctypes``, pyarrow's C++ reader, ``openat``, a forked ``cat``, raw sockets) get past those hooks and
are stopped by the kernel: Landlock and a user + network namespace (``tools/sandbox_child.py``). Where the
kernel lacks a layer, the tests of that layer are skipped with the reason."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import tools.registry
from tests.conftest import messy_table
from tests.hostile.hostile_tools import HOSTILE_TOOLS
from tests.ray_cluster import wait_gone
from tools.executor import EXECUTORS, Executor
from tools.landlock import abi_version
from tools.ray_executor import CALL_PREFIX
from tools.registry import default_registry
from tools.sandbox import CallContext, Limits, Sandbox, isolation_report

CTX = CallContext(target="outcome", id_columns=["record_id"], task="classification")
RULE = "the tool broke a sandbox rule"


@dataclass(frozen=True)
class DataDir:
    """A data directory as the service lays it out: the store, a version blob, the sandbox's root."""

    root: Path
    database: Path
    blob: Path
    sandbox: Executor
    make: Callable[[Limits], Executor]

    def longer(self, wall_seconds: float) -> Executor:
        """The same kind of executor on the same folders, with a longer wall-clock limit."""
        return self.make(replace(self.sandbox.limits, wall_seconds=wall_seconds))

    def fingerprint(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in self.root.iterdir() if p.is_file()}


@pytest.fixture(scope="module", params=EXECUTORS)
def data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """A data directory, and each executor on it: the local sandbox, and a task on a real Ray cluster."""
    root = tmp_path_factory.mktemp("data")
    database = root / "copilot.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE sessions (owner TEXT, token_hash TEXT)")
    blob = root / "blob.parquet"
    messy_table(60).to_parquet(blob)
    folder = root / "sandbox"
    if request.param == "local":
        make: Callable[[Limits], Executor] = lambda limits: Sandbox(limits, folder, HOSTILE_TOOLS)  # noqa: E731
    else:
        from tools.ray_executor import RayExecutor

        address = request.getfixturevalue("ray_address")
        make = lambda limits: RayExecutor(limits, folder, HOSTILE_TOOLS, address=address)  # noqa: E731
    return DataDir(root, database, blob, make(Limits(memory_mb=2048, cpu_seconds=3, wall_seconds=3)), make)


Params = Callable[[DataDir], dict[str, object]]

CONTAINED: list[tuple[str, str, Params, str, str]] = [
    ("read the database", "read_file", lambda d: {"path": str(d.database)}, "tool", "not allow a tool to read"),
    ("query the database", "query_database", lambda d: {"path": str(d.database)}, "tool", "not allow a tool to read"),
    ("read another version", "read_file", lambda d: {"path": str(d.blob)}, "tool", "not allow a tool to read"),
    ("list the data dir", "list_folder", lambda d: {"path": str(d.root)}, "tool", "not allow a tool to read"),
    ("read /etc/passwd", "read_file", lambda d: {"path": "/etc/passwd"}, "tool", "to read /etc/passwd"),
    ("read the server env", "read_file", lambda d: {"path": "/proc/self/environ"}, "tool", "environ"),
    ("write the data dir", "write_file", lambda d: {"path": str(d.root / "x.py")}, "tool", "not allow a tool to write"),
    ("plant a .pth file", "write_file", lambda d: {"path": os.path.join(sys.prefix, "evil.pth")}, "tool",
     "not allow a tool to write"),
    ("overwrite the store", "rename_into", lambda d: {"path": str(d.database)}, "tool", "not allow a tool to write"),
    ("link output to a version", "link_output", lambda d: {"path": str(d.blob)}, "tool", "not allow a tool to read"),
    ("link output natively", "link_output", lambda d: {"path": str(d.blob), "how": "native"}, "tool",
     "output.parquet as a link"),
    ("fork bomb", "spawn", lambda d: {"how": "fork_bomb"}, "tool", "does not allow os.fork"),
    ("subprocess", "spawn", lambda d: {"how": "subprocess"}, "tool", "does not allow subprocess.Popen"),
    ("os.system", "spawn", lambda d: {"how": "system"}, "tool", "does not allow os.system"),
    ("multiprocessing", "spawn", lambda d: {"how": "spawn"}, "tool",
     "not allowed to have children|does not allow starting a process"),
    ("DNS lookup", "network", lambda d: {"how": "dns"}, "tool", "does not allow socket.getaddrinfo"),
    ("UDP packet", "network", lambda d: {"how": "udp"}, "tool", "does not allow socket.__new__"),
    ("kill the caller", "signal", lambda d: {"pid": os.getpid()}, "tool", f"signalling process {os.getpid()}"),
    ("kill the process group", "signal", lambda d: {"how": "group"}, "tool", "does not allow os.killpg"),
    ("sleep ignoring SIGTERM", "stubborn_sleeper", lambda d: {}, "timeout", "wall-clock limit of 3 s"),
    ("eat memory", "hog_memory", lambda d: {}, "memory", "ran out of memory (limit 2048 MiB of address space)"),
    ("forge a result", "forge_result", lambda d: {}, "crash", "not the sandbox's JSON"),
    ("flood the result", "huge_result", lambda d: {}, "tool", "over the limit of 16 MiB"),
    ("a dir_fd path to the store", "dir_fd", lambda d: {"path": str(d.database)}, "tool", "with a dir_fd"),
    ("a dir_fd path into the data dir", "dir_fd", lambda d: {"path": str(d.root / "planted"), "how": "write"},
     "tool", "with a dir_fd"),
    ("spawn, daemon flag flipped", "native_spawn", lambda d: {"how": "mp_spawn", "path": str(d.database)}, "tool",
     "does not allow starting a process"),
    ("posix_spawn", "native_spawn", lambda d: {"how": "posix_spawn", "path": str(d.database)}, "tool",
     "does not allow os.posix_spawn"),
]  # fmt: skip

#: Attempts that only the kernel stops (the audit hooks never see them): a failed call all the same.
KERNEL_CONTAINED: list[tuple[str, str, Params, str]] = [
    ("libc read of the store", "native_read", lambda d: {"path": str(d.database)}, "denied"),
    ("pyarrow read of a version", "native_read", lambda d: {"path": str(d.blob), "how": "pyarrow"}, "denied"),
    ("libc write into the data dir", "native_write", lambda d: {"path": str(d.root / "x.py")}, "denied"),
    ("libc write into Python's folder", "native_write", lambda d: {"path": os.path.join(sys.prefix, "evil.pth")},
     "denied"),
    ("openat from / to the store", "dir_fd", lambda d: {"path": str(d.database), "how": "native"}, "denied"),
    ("a symlink to the store, read natively", "symlink_read", lambda d: {"path": str(d.database)}, "denied"),
    ("/proc/<pid>/root to the store", "proc_path", lambda d: {"pid": os.getpid(), "path": str(d.database),
                                                             "how": "root"}, "denied"),
    ("/proc/self/fd to the store", "proc_path", lambda d: {"path": str(d.database), "how": "fd"}, "denied"),
    ("the caller's environment", "proc_path", lambda d: {"pid": os.getpid()}, "denied"),
    ("libc fork and exec of cat", "native_spawn", lambda d: {"how": "fork_exec", "path": str(d.database)},
     "read nothing"),
    ("libc kill of the caller", "native_signal", lambda d: {"pid": os.getpid()}, "refused"),
]  # fmt: skip
needs_landlock = pytest.mark.skipif(not abi_version(), reason="the kernel has no Landlock")


@pytest.mark.parametrize(("tool", "params", "kind", "words"), [c[1:] for c in CONTAINED], ids=[c[0] for c in CONTAINED])
def test_an_escape_is_a_failed_call(data: DataDir, tool: str, params: Params, kind: str, words: str) -> None:
    before = data.fingerprint()
    out = data.sandbox.run(tool, data.blob, params(data), CTX)
    assert not out.ok, out.result
    said = any(alternative in (out.error or "") for alternative in words.split("|"))
    assert (out.error_kind, said) == (kind, True), out.error
    assert out.table_path is None
    assert data.fingerprint() == before and sorted(data.root.iterdir()) == sorted(
        [data.database, data.blob, data.sandbox.root]
    )
    assert list(data.sandbox.root.iterdir()) == []


def test_a_tool_sees_no_secrets_in_its_environment(data: DataDir) -> None:
    out = data.sandbox.run("environment", data.blob, {}, CTX)
    assert out.ok, out.error
    seen = set(out.result["findings"]["got"])
    allowed = {"HOME", "TMPDIR", "LOKY_MAX_CPU_COUNT", "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "PYTHONHASHSEED"}
    set_by_libraries = ("KMP_",)  # scikit-learn sets these when a tool imports it inside the sandbox
    assert seen - allowed <= {
        n for n in seen if n.startswith(("LC_", "OMP_", "OPENBLAS_", "MKL_", *set_by_libraries))
    }, seen


def test_patching_the_registry_dies_with_the_call(data: DataDir) -> None:
    before = tools.registry.BUILTIN_TOOLS
    out = data.sandbox.run("patch_registry", data.blob, {}, CTX)
    assert out.ok, out.error  # it may change its own process; that process is gone now
    assert before == tools.registry.BUILTIN_TOOLS and "impute" in default_registry().tools
    after = data.sandbox.run("impute", data.blob, {}, CTX)
    assert after.ok, after.error
    assert "hijacked" not in (after.error or "") and after.table_path is not None
    data.sandbox.discard(after)


@needs_landlock
@pytest.mark.parametrize(("tool", "params", "words"), [c[1:] for c in KERNEL_CONTAINED],
                         ids=[c[0] for c in KERNEL_CONTAINED])  # fmt: skip
def test_native_code_is_held_by_the_kernel(data: DataDir, tool: str, params: Params, words: str) -> None:
    test_an_escape_is_a_failed_call(data, tool, params, "tool", words)


@needs_landlock
def test_a_neighbour_call_cannot_read_a_running_call_folder(data: DataDir) -> None:
    where: list[str] = []
    patient = data.longer(20.0)  # the victim lives while the attacker's call starts (seconds, on Ray)
    victim = threading.Thread(target=patient.run, args=("plant_and_sleep", data.blob, {}, CTX),
                              kwargs={"on_progress": lambda f, m: where.append(m)})  # fmt: skip
    victim.start()
    deadline = time.monotonic() + 10
    while not where and time.monotonic() < deadline:
        time.sleep(0.05)
    assert where, "the victim never said where its secret is"
    out = data.sandbox.run("native_read", data.blob, {"path": where[0]}, CTX)
    victim.join(timeout=20)
    assert not out.ok and "denied" in (out.error or ""), out.error
    assert "neighbour-secret" not in json.dumps(out.result) + (out.error or "")


@pytest.mark.parametrize("how", ["tcp", "udp"])
def test_no_byte_reaches_a_listener_on_loopback(data: DataDir, how: str) -> None:
    kind = socket.SOCK_STREAM if how == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as listener:
        listener.bind(("127.0.0.1", 0))
        if how == "tcp":
            listener.listen(1)
        listener.settimeout(1.0)
        port = listener.getsockname()[1]
        native = data.sandbox.run("native_connect", data.blob, {"how": how, "pid": port}, CTX)
        python = data.sandbox.run("network", data.blob, {"how": "udp"}, CTX)
        with pytest.raises(TimeoutError):
            listener.accept() if how == "tcp" else listener.recvfrom(64)
    assert not native.ok and not python.ok, (native.result, python.result)
    assert any(w in (native.error or "") for w in ("unreachable", "denied", "refused")), native.error


@pytest.mark.skipif(not isolation_report()["namespaces"], reason="the kernel refuses user namespaces here")
def test_every_process_a_tool_starts_dies_with_the_call(data: DataDir) -> None:
    said: list[str] = []
    out = data.sandbox.run("leave_behind", data.blob, {}, CTX, on_progress=lambda f, m: said.append(m))
    assert out.ok, out.error
    assert said and said[0].isdigit(), said
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{said[0]}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{said[0]}"), "a process the tool started outlived the call"


def processes_in(folder: str) -> list[int]:
    """The processes whose working folder is ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_ray_call_cancelled_while_it_runs_leaves_no_task(data: DataDir) -> None:
    """Cancelled once it runs: ``ray.cancel(force=True)`` ends its worker, and with it the tool's processes."""
    if data.sandbox.name != "ray":
        pytest.skip("a Ray task only")
    said: list[str] = []
    cancel = threading.Event()
    out = data.sandbox.run("plant_and_sleep", data.blob, {}, CTX, cancel=cancel,
                           on_progress=lambda f, m: (said.append(m), cancel.set()))  # fmt: skip
    assert out.error_kind == "cancelled", out.error
    assert wait_gone(out.where["worker_pid"]), "the Ray worker of a cancelled call lives on"
    assert said, "the call never started"
    folder = os.path.dirname(said[0])
    deadline = time.monotonic() + 10
    while processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in(folder) == [], "the tool's process outlived its cancelled task"
    call_folder = next(p for p in Path(folder).parents if p.name.startswith(CALL_PREFIX))
    assert data.sandbox.run("environment", data.blob, {}, CTX).ok
    assert not call_folder.exists(), "a cancelled call's folder outlived the next call on its node"


def test_a_ray_call_removes_what_dead_workers_left_and_only_that(data: DataDir) -> None:
    """A worker killed by ``ray.cancel(force=True)`` cannot clean up; the next call on its node does, and
    leaves the folders of workers that still run."""
    if data.sandbox.name != "ray":
        pytest.skip("a Ray task only")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    root = Path(tempfile.gettempdir())
    dead, live = root / f"{CALL_PREFIX}{ended.pid}-left", root / f"{CALL_PREFIX}{os.getpid()}-running"
    for folder in (dead, live):
        (folder / "calls").mkdir(parents=True)
        (folder / "input.parquet").write_bytes(b"a table")
    try:
        assert data.sandbox.run("environment", data.blob, {}, CTX).ok
        assert not dead.exists(), "the folder of a dead worker outlived the next call"
        assert (live / "input.parquet").read_bytes() == b"a table", "the folder of a running worker was touched"
    finally:
        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def test_a_ray_call_that_overruns_leaves_no_task(data: DataDir) -> None:
    if data.sandbox.name != "ray":
        pytest.skip("a Ray task only")
    out = data.sandbox.run("stubborn_sleeper", data.blob, {}, CTX)
    assert out.error_kind == "timeout" and out.where["task_id"], out.error
    assert wait_gone(out.where["worker_pid"]), "the Ray worker of a timed-out call lives on"
