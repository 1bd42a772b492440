"""What the sandbox costs per tool call, against calling the same tool in-process.

    .venv/bin/python bench/sandbox_overhead.py [--rows 10000 100000] [--repeat 5]

For each table size it times ``drop_columns`` (almost no work, so the time is
the overhead: process start from the forkserver, Parquet in and out, JSON) and
``impute`` (real work) both ways, and prints a Markdown table with medians and
the sandbox / in-process ratio.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from tools.base import Tool, ToolContext
from tools.registry import default_registry
from tools.sandbox import CallContext, Limits, Sandbox

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
    args = parser.parse_args()
    registry = default_registry()
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(Limits(), Path(tmp) / "sandbox")
        run_sandboxed(sandbox, "drop_columns", _write(synthetic(100), Path(tmp)), {})  # start the forkserver once
        print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}\n")
        print("| rows | tool | in-process (s) | sandbox (s) | ratio |\n| --- | --- | --- | --- | --- |")
        for rows in args.rows:
            table = synthetic(rows)
            path = _write(table, Path(tmp))
            for tool, params in CALLS.items():
                in_process = partial(run_in_process, registry.get(tool), path, params)
                sandboxed = partial(run_sandboxed, sandbox, tool, path, params)
                local, boxed = median_time(in_process, args.repeat), median_time(sandboxed, args.repeat)
                print(f"| {rows:,} | {tool} | {local:.3f} | {boxed:.3f} | {boxed / local:.2f}× |")


def run_in_process(tool_cls: type[Tool], path: Path, params: dict[str, Any]) -> object:
    with threadpool_limits(1):
        ctx = ToolContext(target="y", task="classification")
        return tool_cls().run(pd.read_parquet(path), tool_cls.parse_params(params), ctx)


def run_sandboxed(sandbox: Sandbox, tool: str, path: Path, params: dict[str, Any]) -> object:
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
