"""A hostile plugin tool tries to get out of the sandbox: every attempt is a failed call with a clear error,
the data directory is untouched and the calling process lives on. What the sandbox does not contain
(native code) is asserted as SECURITY.md documents it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import tools.registry
from tests.conftest import messy_table
from tests.hostile.hostile_tools import HOSTILE_TOOLS
from tools.registry import default_registry
from tools.sandbox import CallContext, Limits, Sandbox

CTX = CallContext(target="outcome", id_columns=["record_id"], task="classification")
RULE = "the tool broke a sandbox rule"


@dataclass(frozen=True)
class DataDir:
    """A data directory as the service lays it out: the store, a version blob, the sandbox's root."""

    root: Path
    database: Path
    blob: Path
    sandbox: Sandbox

    def fingerprint(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in self.root.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    root = tmp_path_factory.mktemp("data")
    database = root / "copilot.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE sessions (owner TEXT, token_hash TEXT)")
    blob = root / "blob.parquet"
    messy_table(60).to_parquet(blob)
    sandbox = Sandbox(Limits(memory_mb=2048, cpu_seconds=3, wall_seconds=3), root / "sandbox", HOSTILE_TOOLS)
    return DataDir(root, database, blob, sandbox)


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
    ("multiprocessing", "spawn", lambda d: {"how": "spawn"}, "tool", "not allowed to have children"),
    ("DNS lookup", "network", lambda d: {"how": "dns"}, "tool", "does not allow socket.getaddrinfo"),
    ("UDP packet", "network", lambda d: {"how": "udp"}, "tool", "does not allow socket.__new__"),
    ("kill the caller", "signal", lambda d: {"pid": os.getpid()}, "tool", f"signalling process {os.getpid()}"),
    ("kill the process group", "signal", lambda d: {"how": "group"}, "tool", "does not allow os.killpg"),
    ("sleep ignoring SIGTERM", "stubborn_sleeper", lambda d: {}, "timeout", "wall-clock limit of 3 s"),
    ("eat memory", "hog_memory", lambda d: {}, "memory", "ran out of memory (limit 2048 MiB of address space)"),
    ("forge a result", "forge_result", lambda d: {}, "crash", "not the sandbox's JSON"),
    ("flood the result", "huge_result", lambda d: {}, "tool", "over the limit of 16 MiB"),
]  # fmt: skip


@pytest.mark.parametrize(("tool", "params", "kind", "words"), [c[1:] for c in CONTAINED], ids=[c[0] for c in CONTAINED])
def test_an_escape_is_a_failed_call(data: DataDir, tool: str, params: Params, kind: str, words: str) -> None:
    before = data.fingerprint()
    out = data.sandbox.run(tool, data.blob, params(data), CTX)
    assert not out.ok, out.result
    assert (out.error_kind, words in (out.error or "")) == (kind, True), out.error
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
    assert seen - allowed <= {n for n in seen if n.startswith(("LC_", "OMP_", "OPENBLAS_", "MKL_"))}, seen


def test_patching_the_registry_dies_with_the_call(data: DataDir) -> None:
    before = tools.registry.BUILTIN_TOOLS
    out = data.sandbox.run("patch_registry", data.blob, {}, CTX)
    assert out.ok, out.error  # it may change its own process; that process is gone now
    assert before == tools.registry.BUILTIN_TOOLS and "impute" in default_registry().tools
    after = data.sandbox.run("impute", data.blob, {}, CTX)
    assert after.ok, after.error
    assert "hijacked" not in (after.error or "") and after.table_path is not None
    data.sandbox.discard(after)


@pytest.mark.parametrize("how", ["libc", "pyarrow"])
def test_native_code_is_not_contained_by_the_audit_hook(data: DataDir, how: str) -> None:
    """Documented in SECURITY.md: the audit hook sees Python, not C. A tool reading files through libc
    or pyarrow's C++ reader gets them; only OS-level isolation (a separate user, a container) stops it."""
    path = data.database if how == "libc" else data.blob
    out = data.sandbox.run("native_read", data.blob, {"path": str(path), "how": how}, CTX)
    assert out.ok, out.error
    assert out.result["findings"]["got"] == ("SQLite format 3\x00" if how == "libc" else 60)
