"""Every way a tool can misbehave ends as a failed call; the caller and its data survive."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import messy_table
from tests.tools.sandbox_tools import HOSTILE
from tools.executor import EXECUTORS, Executor
from tools.landlock import abi_version
from tools.sandbox import CallContext, Limits, Sandbox, isolation_report

CTX = CallContext(target="outcome", id_columns=["record_id"], task="classification")


@pytest.fixture(scope="module", params=EXECUTORS)
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Executor:
    """Each executor, under the same limits: what the sandbox guarantees holds in both."""
    limits = Limits(memory_mb=2048, cpu_seconds=3, wall_seconds=6)
    root = tmp_path_factory.mktemp("sandbox")
    if request.param == "local":
        return Sandbox(limits, root, extra_tools=tuple(HOSTILE))
    from tools.ray_executor import RayExecutor

    return RayExecutor(limits, root, extra_tools=tuple(HOSTILE), address=request.getfixturevalue("ray_address"))


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "v0.parquet"
    messy_table(120).to_parquet(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_well_behaved_tool_streams_progress_and_runs_in_fresh_folder(sandbox: Executor, table_file: Path) -> None:
    seen: list[tuple[float, str]] = []
    out = sandbox.run("count_rows", table_file, {"steps": 4}, CTX, on_progress=lambda f, m: seen.append((f, m)))
    assert out.ok, out.error
    assert out.result["metrics"]["rows"] == 120
    assert out.result["findings"]["target"] == "outcome"
    cwd = Path(out.result["findings"]["cwd"])
    assert not cwd.exists()  # a private folder, removed afterwards: under root here, on the node for Ray
    assert (cwd.parent == sandbox.root) == (sandbox.name == "local")
    assert out.where["executor"] == sandbox.name
    assert seen == [(0.25, "step 1"), (0.5, "step 2"), (0.75, "step 3"), (1.0, "step 4")]


@pytest.mark.parametrize(
    ("tool", "kind", "words"),
    [
        ("eat_memory", "memory", "ran out of memory"),
        ("spin_forever", "cpu", "CPU-time limit"),
        ("sleep_forever", "timeout", "wall-clock limit"),
        ("hard_exit", "crash", "exited with code 3"),
        ("open_socket", "tool", "socket"),
        ("raise_error", "tool", "something broke inside the tool"),
        ("vandal", "tool", "removed protected column"),
    ],
)
def test_misbehaving_tool_fails_its_call_only(
    sandbox: Executor, table_file: Path, tool: str, kind: str, words: str
) -> None:
    before = _digest(table_file)
    out = sandbox.run(tool, table_file, {}, CTX)
    assert not out.ok
    assert out.error_kind == kind
    assert words in out.error
    assert _digest(table_file) == before  # the caller's data is untouched
    assert list(sandbox.root.iterdir()) == []  # nothing left behind


def test_invalid_params_name_the_field(sandbox: Executor, table_file: Path) -> None:
    out = sandbox.run("count_rows", table_file, {"steps": 0}, CTX)
    assert out.error_kind == "params" and "steps" in out.error
    out = sandbox.run("count_rows", table_file, {"stepz": 2}, CTX)
    assert out.error_kind == "params" and "stepz" in out.error


def test_unknown_tool_is_a_params_error(sandbox: Executor, table_file: Path) -> None:
    out = sandbox.run("no_such_tool", table_file, {}, CTX)
    assert out.error_kind == "params" and "no tool named 'no_such_tool'" in out.error


def test_cancel_stops_a_running_call(sandbox: Executor, table_file: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    out = sandbox.run("sleep_forever", table_file, {}, CTX, cancel=cancel)
    assert out.error_kind == "cancelled"
    assert time.monotonic() - started < (3 if sandbox.name == "local" else 20)


def test_every_layer_is_reported_as_the_kernel_grants_it() -> None:
    report = isolation_report()
    assert report["audit_hooks"] is True and report["landlock_abi"] == abi_version()
    assert report["kernel"] == (report["namespaces"] and report["landlock_abi"] > 0)
    assert report["landlock_tcp"] == (report["landlock_abi"] >= 4)
    assert f"landlock ABI {report['landlock_abi']}" in report["describe"] or report["landlock_abi"] == 0


def test_mutating_tool_output_is_read_back(sandbox: Executor, table_file: Path) -> None:
    out = sandbox.run("drop_rows", table_file, {"conditions": [{"column": "weight", "op": "isna"}]}, CTX)
    assert out.ok, out.error
    assert out.table_path is not None
    result = pd.read_parquet(out.table_path)
    assert result["weight"].notna().all() and len(result) < 120
    sandbox.discard(out)
    assert not out.table_path.exists()
