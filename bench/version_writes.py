"""What making a version durable costs: adding a version with its fsyncs and without them.

    .venv/bin/python bench/version_writes.py [--rows 10000 1000000] [--repeat 5] [--dir .]

For each size of ``speed.py``'s synthetic 20-column table it times, in a fresh
store under ``--dir`` (put it on the disk the data directory lives on; fsync on
a tmpfs costs nothing), the two ways a version is added:

- ``add_table``: a session's first version (write the Parquet, hash it, move it
  into place, write the record);
- ``add_file``: a step's output, whose Parquet the sandbox already wrote (hash,
  move, record);

each with the fsyncs of the file and its folder (as shipped) and with
``os.fsync`` made a no-op (the write order of before they were added). Runs
alternate between the two, each after ``os.sync()`` so that neither pays for
the other's dirty pages (for ``add_file`` the sync comes before the sandbox's
Parquet is written, so that file is still in the page cache, as it is after a
step); medians are printed as a Markdown table. It also times
``blob_path``'s check that a blob is a whole Parquet file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pandas as pd
from speed import synthetic

from copilot.storage.versions import VersionStore

HEADER = "| rows | Parquet (MiB) | entry | no fsync (s) | fsync (s) | ratio | cost (ms) | range no fsync / fsync (s) |"


def time_add(table: pd.DataFrame, folder: Path, entry: str, fsync: bool) -> float:
    """Seconds to add ``table`` as a version to a new store in ``folder``, by ``entry``, with or without fsyncs."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        store = VersionStore(Path(tmp) / "versions")
        os.sync()
        add: Callable[[], object]
        if entry == "add_table":
            add = lambda: store.add_table(table)  # noqa: E731
        else:  # written just before, as the sandbox does: its pages are still dirty when the version is added
            out = Path(tmp) / "out.parquet"
            table.to_parquet(out)
            add = lambda: store.add_file(out, step=1, tool="impute", params={})  # noqa: E731
        with mock.patch("os.fsync", os.fsync if fsync else lambda fd: None):
            started = time.perf_counter()
            add()
            return time.perf_counter() - started


def time_check(table: pd.DataFrame, folder: Path, calls: int = 10_000) -> float:
    """Microseconds per ``blob_path`` call (its whole-Parquet check), on a blob in the page cache."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        store = VersionStore(Path(tmp))
        blob = store.add_table(table).blob
        started = time.perf_counter()
        for _ in range(calls):
            store.blob_path(blob)
        return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("."))
    args = parser.parse_args()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"machine: {machine}, load {os.getloadavg()[0]:.1f}, folder {args.dir.resolve()}\n")
    print(HEADER + "\n" + "| --- " * HEADER.count(" | ") + "| --- |")
    for rows in args.rows:
        table = synthetic(rows)
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            table.to_parquet(Path(tmp) / "size.parquet")
            mib = (Path(tmp) / "size.parquet").stat().st_size / 2**20
        for entry in ("add_table", "add_file"):
            times: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.repeat):
                for fsync in (bool(i % 2), not i % 2):  # alternate which goes first
                    times[fsync].append(time_add(table, args.dir, entry, fsync))
            off, on = statistics.median(times[False]), statistics.median(times[True])
            spread = " / ".join(f"{min(t):.3f}–{max(t):.3f}" for t in times.values())
            figures = f"{off:.3f} | {on:.3f} | {on / off:.2f}× | {(on - off) * 1e3:.0f} | {spread}"
            print(f"| {rows:,} | {mib:.1f} | {entry} | {figures} |")
    print(f"\nblob_path check: {time_check(synthetic(10_000), args.dir):.1f} µs a call")


if __name__ == "__main__":
    main()
