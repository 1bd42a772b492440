"""What the sandbox costs per tool call, against calling the same tool in-process.

    .venv/bin/python bench/sandbox_overhead.py [--rows 10000 100000] [--repeat 5] [--ray]

For each table size it times ``drop_columns`` (almost no work, so the time is
the overhead: process start from the forkserver, Parquet in and out, JSON) and
``impute`` (real work) both ways, and prints a Markdown table with medians and
the sandbox / in-process ratio. With ``--ray`` (the dev extras) it starts a Ray
head on loopback (``tests/ray_cluster.py``, two CPUs) and times the ``ray``
executor too: a task per call on a fresh worker, the table through the object
store, the sandbox child in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from tools.base import Tool, ToolContext
from tools.executor import Executor
from tools.registry import default_registry
from tools.sandbox import CallContext, Limits, Sandbox

ROOT = Path(__file__).resolve().parent.parent

CALLS = {"drop_columns": {"columns": ["c0"]}, "impute": {"method": "simple"}}


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(size=rows) for i in range(12)}
    data |= {f"c{i}": rng.choice(["a", "b", "c", "d"], rows) for i in range(6)}
    table = pd.DataFrame(data)
    for col in ("x0", "x1", "c1"):
        table.loc[rng.random(rows) < 0.1, col] = None
    table["y"] = (table["x2"] > 0).map({True: "yes", False: "no"})
    return table


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ray", action="store_true", help="time the ray executor too, on a local Ray head")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ray_head(args.ray) as address:
        executors: dict[str, Executor] = {"sandbox": Sandbox(Limits(), Path(tmp) / "sandbox")}
        if address:
            from tools.ray_executor import RayExecutor

            executors["ray"] = RayExecutor(Limits(), Path(tmp) / "ray", address=address)
        warm = _write(synthetic(100), Path(tmp))
        for executor in executors.values():
            run_sandboxed(executor, "drop_columns", warm, {})  # start the forkserver, join the cluster
        print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}\n")
        print(table_head(list(executors)))
        for rows in args.rows:
            path = _write(synthetic(rows), Path(tmp))
            for tool, params in CALLS.items():
                print(timed_row(rows, tool, path, params, executors, args.repeat))


def table_head(executors: list[str]) -> str:
    cells = ["rows", "tool", "in-process (s)", *(f"{e} (s)" for e in executors), *(f"{e} / in-process" for e in
             executors)]  # fmt: skip
    if "ray" in executors:
        cells += ["ray − sandbox (s)"]
    return "| " + " | ".join(cells) + " |\n" + "| --- " * len(cells) + "|"


def timed_row(rows: int, tool: str, path: Path, params: dict[str, Any], executors: dict[str, Executor],
              repeat: int) -> str:  # fmt: skip
    local = median_time(partial(run_in_process, default_registry().get(tool), path, params), repeat)
    times = {name: median_time(partial(run_sandboxed, e, tool, path, params), repeat) for name, e in executors.items()}
    cells = [f"{rows:,}", tool, f"{local:.3f}", *(f"{t:.3f}" for t in times.values()),
             *(f"{t / local:.1f}×" for t in times.values())]  # fmt: skip
    if "ray" in times:
        cells += [f"{times['ray'] - times['sandbox']:+.2f}"]
    return "| " + " | ".join(cells) + " |"


@contextmanager
def ray_head(wanted: bool) -> Iterator[str | None]:
    """A Ray head of two CPUs on loopback while the block runs (its address), or None."""
    if not wanted:
        yield None
        return
    sys.path.insert(0, str(ROOT))
    from tests.ray_cluster import free_port, start_head, stop_head

    folder = tempfile.mkdtemp(prefix="ray-")
    try:
        yield start_head(folder, free_port())
    finally:
        stop_head(folder)


def run_in_process(tool_cls: type[Tool], path: Path, params: dict[str, Any]) -> object:
    with threadpool_limits(1):
        ctx = ToolContext(target="y", task="classification")
        return tool_cls().run(pd.read_parquet(path), tool_cls.parse_params(params), ctx)


def run_sandboxed(sandbox: Executor, tool: str, path: Path, params: dict[str, Any]) -> object:
    outcome = sandbox.run(tool, path, params, CallContext(target="y", task="classification"))
    assert outcome.ok, outcome.error
    result = pd.read_parquet(outcome.table_path)
    sandbox.discard(outcome)
    return result


def _write(table: pd.DataFrame, folder: Path) -> Path:
    path = folder / f"in-{len(table)}.parquet"
    table.to_parquet(path)
    return path


if __name__ == "__main__":
    main()
