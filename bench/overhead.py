"""Framework overhead of the whole default pipeline, against the same tool calls made in-process.

    .venv/bin/python bench/overhead.py [--rows 10000 100000] [--repeat 3]

Per table size (``speed.synthetic``: 20 columns, binary target ``y``, seed 0)
and repeat, one ``copilot.session.cleaning.run_cleaning`` on an engine with a fresh
data directory, every gate approved: what ``copilot clean --yes`` does (a
session in the SQLite store, profile, plan, a sandboxed child per step,
Parquet in and out, a content-addressed version per changed table, a fresh
profile after each), under ``threadpool_limits(1)`` as the sandbox pins its
children to one thread.
Right after each sandboxed call, the same tool's ``run`` is called in this
process with the same parameters and context on the same input, and its table
is compared with the sandbox's: the **in-process** time is the sum of those
calls, the **framework** time is the run's wall time less the replays. Pairing
step by step, seconds apart, keeps the ratio meaningful on a shared machine.

Loading the input (timed, and taken off) and writing the outputs are the same
either way and left out. The forkserver is started before the first timed run (its one-off start
is printed). Prints Markdown tables: the medians and their ratio, where the
framework's extra seconds go, and each call's two times.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
from speed import synthetic
from threadpoolctl import threadpool_limits

import copilot.session.engine
import copilot.session.planning
import copilot.session.step_runner
from agents.plan import Guidance
from copilot.session.cleaning import run_cleaning
from copilot.session.decisions import approve_all
from copilot.session.engine import Engine
from copilot.settings import Settings
from tools.base import ToolContext
from tools.registry import Registry, default_registry
from tools.sandbox import CallContext, Limits, ProgressFn, Sandbox, SandboxOutcome

ROOT = Path(__file__).resolve().parent.parent
TARGET = "y"
LOAD = "loading the upload"  # the same either way: left out of the framework's time
Buckets = defaultdict[str, float]


@dataclass(frozen=True)
class Call:
    """One sandboxed call as the framework made it, and the same call made in this process right after."""

    tool: str
    input_path: Path
    seconds: float  # sandboxed, as the framework saw it
    local_seconds: float  # the tool's ``run`` on the same input in this process
    same_output: bool  # both returned the same table (or both none)


class PairedSandbox(Sandbox):
    """A sandbox that, after each call, makes the same call in-process on the same input.

    Pairing each step with its in-process twin seconds apart keeps the ratio honest on a
    shared machine, where the load changes from one minute to the next. The replay's time
    (reading the input, running the tool, comparing tables) is kept in ``replay_seconds``
    so it can be taken off the framework's wall time."""

    def __init__(self, limits: Limits, root: Path, registry: Registry) -> None:
        super().__init__(limits, root)
        self.registry = registry
        self.calls: list[Call] = []
        self.replay_seconds = 0.0

    def run(
        self,
        tool: str,
        input_path: Path,
        params: dict[str, Any],
        ctx: CallContext,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> SandboxOutcome:
        started = time.perf_counter()
        outcome = super().run(tool, input_path, params, ctx, on_progress, cancel)
        seconds = time.perf_counter() - started
        assert outcome.ok, outcome.error
        local_seconds, table = self._replay(tool, input_path, params, ctx)
        same = table is None if outcome.table_path is None else same_table(pd.read_parquet(outcome.table_path), table)
        self.calls.append(Call(tool, input_path, seconds, local_seconds, same))
        self.replay_seconds += time.perf_counter() - started - seconds
        return outcome

    def _replay(
        self, tool: str, input_path: Path, params: dict[str, Any], ctx: CallContext
    ) -> tuple[float, pd.DataFrame | None]:
        tool_cls, table = self.registry.get(tool), pd.read_parquet(input_path)
        started = time.perf_counter()
        result = tool_cls().run(table, tool_cls.parse_params(params), ToolContext(**ctx.__dict__))
        return time.perf_counter() - started, result.table


@dataclass
class FrameworkRun:
    seconds: float  # wall time of the run, less the in-process replays
    calls: list[Call]
    buckets: Buckets

    @property
    def in_process(self) -> float:
        return sum(c.local_seconds for c in self.calls)

    @property
    def sandboxed(self) -> float:
        return sum(c.seconds for c in self.calls)


@dataclass
class Measurement:
    runs: list[FrameworkRun] = field(default_factory=list)
    io: dict[str, float] = field(default_factory=dict)  # the sandbox's file work, measured once


@contextmanager
def timed(buckets: Buckets, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        buckets[name] += time.perf_counter() - started


def timing(fn: Callable[..., Any], buckets: Buckets, name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with timed(buckets, name):
            return fn(*args, **kwargs)

    return wrapper


def run_framework(csv: Path, registry: Registry, folder: Path) -> FrameworkRun:
    """What ``copilot clean --yes`` does with ``csv`` (an engine session, every gate approved), with the
    engine's profile, planning, version and row-change work timed by wrapping the functions it calls."""
    buckets: Buckets = defaultdict(float)
    engine = Engine(Settings(data_dir=folder, max_file_mb=10_000), registry)
    engine.start(recover=False)
    sandbox = PairedSandbox(engine.runner.sandbox.limits, folder / "sandbox", registry)
    engine.runner.sandbox = sandbox
    wrapped = [
        (copilot.session.engine, "load_table", LOAD),
        (copilot.session.planning, "profile_table", "first profile"),
        (copilot.session.step_runner, "profile_table", "profile after each change"),
        (copilot.session.step_runner, "row_changes", "row changes of train-only steps (with the input's read)"),
        (engine.planner, "propose", "planning"),
        (engine.version_store, "add_file", "version write (hash, move, record)"),
        (engine.version_store, "add_table", "first version write"),
    ]
    with ExitStack() as stack:
        for owner, name, bucket in wrapped:
            stack.enter_context(mock.patch.object(owner, name, timing(getattr(owner, name), buckets, bucket)))
        stack.enter_context(threadpool_limits(1))
        started = time.perf_counter()
        run_cleaning(engine, csv, TARGET, id_columns=[], guidance=Guidance(), approver=approve_all,
                     on_event=lambda event: None, policy="mutating")  # fmt: skip
        wall = time.perf_counter() - started
    engine.close()
    load = buckets.pop(LOAD)
    return FrameworkRun(wall - sandbox.replay_seconds - load, sandbox.calls, buckets)


def sandbox_floor(sandbox: Sandbox, folder: Path, repeat: int = 7) -> float:
    """Median time of a sandboxed call with (almost) nothing to do: child start, limits, tiny I/O."""
    tiny = folder / "tiny.parquet"
    synthetic(100).to_parquet(tiny)
    ctx = CallContext(target=TARGET, task="classification")
    times = []
    for _ in range(repeat):
        outcome = sandbox.run("drop_columns", tiny, {"columns": []}, ctx)
        assert outcome.ok, outcome.error
        times.append(outcome.duration_s)
        sandbox.discard(outcome)
    return statistics.median(times)


FLOOR_SCRIPT = """{preamble}
if __name__ == "__main__":
    import statistics
    import sys
    import tempfile
    from pathlib import Path

    import pandas as pd

    from tools.sandbox import CallContext, Limits, Sandbox

    folder = Path(tempfile.mkdtemp())
    pd.DataFrame({{"x": range(100), "y": ["a", "b"] * 50}}).to_parquet(folder / "tiny.parquet")
    sandbox, ctx, times = Sandbox(Limits(), folder / "sandbox"), CallContext(target="y"), []
    for _ in range(8):
        outcome = sandbox.run("drop_columns", folder / "tiny.parquet", {{"columns": []}}, ctx)
        times.append(outcome.duration_s)
        sandbox.discard(outcome)
    print(statistics.median(times[1:]))
"""
MAIN_MODULES = {
    "a script that imports nothing else": "",
    "a script that imports `copilot.cli`, as the `copilot` console script does": "import copilot.cli  # noqa: F401",
}


def floor_by_main_module(folder: Path) -> dict[str, float]:
    """A trivial sandboxed call's median time when the caller's main module is each of ``MAIN_MODULES``:
    every child re-runs the caller's main script (Python 3.11's forkserver never gets its path)."""
    floors = {}
    for i, (name, preamble) in enumerate(MAIN_MODULES.items()):
        script = folder / f"floor_{i}.py"
        script.write_text(FLOOR_SCRIPT.format(preamble=preamble), encoding="utf-8")
        out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True, cwd=ROOT)
        floors[name] = float(out.stdout.strip().splitlines()[-1])
    return floors


def io_costs(calls: list[Call], registry: Registry, folder: Path) -> dict[str, float]:
    """What copying each call's input, reading it and (for a tool that changes data) writing a
    table of its size cost in this warm process: the sandbox's file work, without its child."""
    costs: dict[str, float] = defaultdict(float)
    scratch = folder / "scratch.parquet"
    for call in calls:
        started = time.perf_counter()
        shutil.copyfile(call.input_path, scratch)
        copied = time.perf_counter()
        table = pd.read_parquet(scratch)
        read = time.perf_counter()
        if registry.get(call.tool).mutates:
            table.to_parquet(scratch)
        written = time.perf_counter()
        costs["input copy"] += copied - started
        costs["Parquet read in the child"] += read - copied
        costs["Parquet write in the child"] += written - read
    scratch.unlink(missing_ok=True)
    return dict(costs)


def measure(rows: int, repeat: int, registry: Registry, folder: Path) -> Measurement:
    csv = folder / f"synthetic-{rows}.csv"
    synthetic(rows).to_csv(csv, index=False)
    result = Measurement()
    for i in range(repeat):
        work = folder / f"run-{rows}-{i}"
        run = run_framework(csv, registry, work)
        result.runs.append(run)
        result.io = result.io or io_costs(run.calls, registry, folder)
        shutil.rmtree(work, ignore_errors=True)
        print(f"  {rows:,} rows, run {i + 1}: framework {run.seconds:.2f} s, in-process {run.in_process:.2f} s, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    return result


def same_table(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    except AssertionError:
        return False
    return True


def print_ratios(results: dict[int, Measurement]) -> None:
    print("| rows | steps | in-process (s) | framework (s) | ratio, median (range) | same tables |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows, m in results.items():
        ratios = [r.seconds / r.in_process for r in m.runs]
        base, frame = statistics.median(r.in_process for r in m.runs), statistics.median(r.seconds for r in m.runs)
        same = all(c.same_output for r in m.runs for c in r.calls)
        print(f"| {rows:,} | {len(m.runs[0].calls)} | {base:.2f} | {frame:.2f} | {statistics.median(ratios):.3f}× "
              f"({min(ratios):.3f}–{max(ratios):.3f}) | {'yes' if same else 'no'} |")  # fmt: skip


def breakdown(m: Measurement) -> dict[str, float]:
    """Median seconds per share of the framework's extra time over the in-process run."""
    shares: dict[str, list[float]] = defaultdict(list)
    for run in m.runs:
        base, sandboxed = run.in_process, run.sandboxed
        shares["sandbox calls: sandboxed − in-process, summed over the steps"].append(sandboxed - base)
        for name, seconds in m.io.items():
            shares[f"… of which {name} (the same work in a warm process)"].append(seconds)
        for name, seconds in run.buckets.items():
            shares[name].append(seconds)
        shares["engine: rest (store commits, events, polling, reports)"].append(
            run.seconds - sandboxed - sum(run.buckets.values())
        )
        shares["total extra"].append(run.seconds - base)
    return {name: statistics.median(values) for name, values in shares.items()}


def print_breakdown(results: dict[int, Measurement]) -> None:
    tables = {rows: breakdown(m) for rows, m in results.items()}
    sizes = list(tables)
    print("| share of the framework's extra time | " + " | ".join(f"{n:,} rows (s)" for n in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    for name in next(iter(tables.values())):
        print(f"| {name} | " + " | ".join(f"{tables[n].get(name, 0.0):.2f}" for n in sizes) + " |")


def print_calls(rows: int, m: Measurement) -> None:
    """Per call, median over the repeats: sandboxed and in-process seconds."""
    print(f"| {rows:,} rows: call | tool | in-process (s) | sandboxed (s) | extra (s) |")
    print("| --- | --- | --- | --- | --- |")
    for i, call in enumerate(m.runs[0].calls):
        local = statistics.median(r.calls[i].local_seconds for r in m.runs)
        boxed = statistics.median(r.calls[i].seconds for r in m.runs)
        print(f"| {i + 1} | {call.tool} | {local:.3f} | {boxed:.3f} | {boxed - local:+.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    registry = default_registry()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox = Sandbox(Limits(), folder / "warm")
        started = time.perf_counter()
        sandbox_floor(sandbox, folder, repeat=1)
        print(f"forkserver start and first call (once per process, not in the figures): "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip
        floor = sandbox_floor(sandbox, folder)
        print(f"sandboxed call on a 100-row table (median of 7), from this script: {floor * 1000:.0f} ms")
        for name, seconds in floor_by_main_module(folder).items():
            print(f"the same, from {name}: {seconds * 1000:.0f} ms")
        print()
        results = {rows: measure(rows, args.repeat, registry, folder) for rows in args.rows}
        print()
        print_ratios(results)
        print()
        print_breakdown(results)
        for rows, m in results.items():
            print()
            print_calls(rows, m)
        print(f"\nload at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
