"""How fast the co-pilot loads, profiles and cleans a table, against plain pandas.

    .venv/bin/python bench/speed.py [--rows 10000 100000 1000000] [--pipeline-rows 10000 100000] [--repeat 3]

The synthetic table has 20 columns: 12 floats, 5 categorical strings, 2 ints
and a binary target ``y``; 5% of the cells of four columns are missing, and
the seed is fixed. Two measurements, each printed as a Markdown table:

1. Load + profile: ``load_table`` then ``profile_table`` against
   ``pd.read_csv(engine="pyarrow")`` alone. Every timed run happens in a fresh
   subprocess, so its peak RSS (``ru_maxrss``, interpreter and imports
   included) is its own; the time excludes the imports.
2. The full default pipeline, ``copilot clean INPUT --target y --output OUT
   --yes --report R`` as a subprocess (one run per size, data directory in a
   temporary folder): wall time, the time inside tool runs (the sum of the
   steps' ``duration_s`` in the report) and the rest, the framework overhead.
   Tool runs are pinned to one thread by the sandbox (``COPILOT_TOOL_THREADS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
MISSING = ("x0", "x1", "c1", "i0")


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f"x{i}": rng.normal(size=rows) for i in range(12)}
    levels = [["a", "b", "c"], ["red", "green", "blue", "grey"], ["north", "south", "east", "west", "centre"]]
    data |= {f"c{i}": rng.choice(levels[i % 3], rows) for i in range(5)}
    data |= {"i0": rng.integers(0, 100, rows), "i1": rng.poisson(3.0, rows)}
    table = pd.DataFrame(data)
    logit = table["x2"] - 0.5 * table["x3"] + (table["c0"] == "a") - 0.3 + rng.normal(scale=1.0, size=rows)
    table["y"] = np.where(logit > 0, "yes", "no")
    for col in MISSING:
        table[col] = table[col].mask(rng.random(rows) < 0.05)  # i0 becomes float with NaN, as a CSV would read it
    return table


def measure(kind: str, csv: Path) -> None:
    """Child process: time one load (+ profile) and print seconds and peak RSS as JSON."""
    import resource

    if kind == "baseline":
        started = time.perf_counter()
        pd.read_csv(csv, engine="pyarrow")
        seconds = time.perf_counter() - started
    else:
        from threadpoolctl import threadpool_limits

        from copilot.data.loading import load_table
        from tools.feature_types import profile_table

        with threadpool_limits(1):
            started = time.perf_counter()
            loaded = load_table(csv, max_file_mb=10_000)
            loaded_at = time.perf_counter()
            profile_table(loaded.table, target="y")
            seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    extra = {"load_s": loaded_at - started} if kind == "copilot" else {}
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb} | extra))


def run_child(kind: str, csv: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--measure", kind, str(csv)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_profile(rows: list[int], repeat: int, folder: Path) -> None:
    print("| rows | pd.read_csv pyarrow (s) | load_table (s) | load + profile (s) | ratio | "
          "peak RSS pandas (MiB) | peak RSS copilot (MiB) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in rows:
        csv = write_csv(n, folder)
        base = [run_child("baseline", csv) for _ in range(repeat)]
        ours = [run_child("copilot", csv) for _ in range(repeat)]
        b = statistics.median(r["seconds"] for r in base)
        o = statistics.median(r["seconds"] for r in ours)
        load = statistics.median(r["load_s"] for r in ours)
        b_rss, o_rss = max(r["rss_mb"] for r in base), max(r["rss_mb"] for r in ours)
        print(f"| {n:,} | {b:.3f} | {load:.3f} | {o:.3f} | {o / b:.1f}× | {b_rss:.0f} | {o_rss:.0f} |", flush=True)


def pipeline(rows: list[int], folder: Path) -> None:
    print("| rows | wall (s) | inside tool runs (s) | framework overhead (s) | overhead / wall | "
          "slowest steps (s) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    copilot = Path(sys.executable).parent / "copilot"
    for n in rows:
        csv = write_csv(n, folder)
        work = folder / f"clean-{n}"
        work.mkdir()
        report = work / "report.json"
        env = os.environ | {"COPILOT_DATA_DIR": str(work / "data"), "COPILOT_MAX_FILE_MB": "10000"}
        cmd = [str(copilot), "clean", str(csv), "--target", "y", "--output", str(work / "out.csv"), "--yes",
               "--report", str(report)]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=work)
        wall = time.perf_counter() - started
        steps = json.loads(report.read_text())["steps"]
        tools = sum(s["duration_s"] for s in steps)
        slowest = sorted(steps, key=lambda s: -s["duration_s"])[:3]
        top = ", ".join(f"{s['key']} {s['duration_s']:.1f}" for s in slowest)
        overhead = wall - tools
        print(f"| {n:,} | {wall:.1f} | {tools:.1f} | {overhead:.1f} | {overhead / wall:.0%} | {top} |", flush=True)


def write_csv(rows: int, folder: Path) -> Path:
    path = folder / f"synthetic-{rows}.csv"
    if not path.exists():
        synthetic(rows).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--pipeline-rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], Path(args.measure[1]))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if args.rows:
            load_profile(args.rows, args.repeat, Path(tmp))
            print()
        if args.pipeline_rows:
            pipeline(args.pipeline_rows, Path(tmp))


if __name__ == "__main__":
    main()
