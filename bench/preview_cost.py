"""What a preview adds to approval → result: a real ``copilot serve``, the same table with and without the gate.

    .venv/bin/python bench/preview_cost.py [--rows 10000 100000] [--repeat 1]

Starts ``copilot serve`` as ``latency.py`` does (loopback, no tokens, data in a temporary folder) and, for each
size, sends ``speed.synthetic``'s table (20 columns, 5% missing cells in four of them) through the default
pipeline twice, driven only over HTTP and WebSocket:

- **A, policy ``mutating``**: every data-changing step is previewed before it is asked, and an approver
  approves each pending step, naming its proposal and preview, as soon as ``approval_requested`` arrives. Per
  previewed step: the preview (``preview_started`` → ``approval_requested``, the server's ``at`` times), the
  tool's own time in the sandbox (the preview's ``duration_s``), and approval → result (approve sent →
  ``step_finished`` received).
- **B, policy ``never``**: no gate; every step runs at once. Per step: its run (``step_started`` →
  ``step_finished``, server ``at`` times), which is what approval → result cost before previews, and its
  tool's own time in the sandbox.

Both: the session's wall time, from sending the upload to receiving ``done``. The tool's own time varies most
on a shared machine; what the framework does around it (the preview or run less the tool's time) is the
steadier comparison. Then, in this process, the
preview's own diff (``copilot.data.preview.summarise``) of each previewed step of A, on the two Parquet files of
the server's data directory (the version it was made on and the table it left; row labels kept, as the
server reads them), median of ``DIFF_REPEAT`` calls, as a share of that step's preview. Steps of A and B are
paired by their plan key. With ``--repeat`` above 1 the runs alternate A, B, A, B and the figures pool them.

Prints Markdown tables: per tool (median over its steps; read-only steps, which run without a gate in both,
as a control), and totals per session with the ratios A / B; and whether any previewed step ran twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from latency import FINAL_STATES, Received, approval_body, load, new_session, running_server, subscribed
from speed import synthetic

from copilot.data.preview import summarise

STEP_TIMEOUT = 900.0  # seconds between two events of one session; a 100k-row label_issues takes about 30
DIFF_REPEAT = 3


@dataclass
class Step:
    """One step of a session as its events told it; times are seconds (server ``at`` or this clock)."""

    id: int
    tool: str
    key: str = ""
    preview_started: float | None = None
    asked: float | None = None  # approval_requested written
    approve_sent: float | None = None
    started: float | None = None  # step_started written
    finished: float | None = None  # step_finished written
    finished_received: float | None = None
    pending: dict[str, Any] = field(default_factory=dict)  # the approval_requested data
    diff_s: float | None = None
    runs: int = 0  # tool runs in the sandbox, as the session says at the end: 1 for a previewed step
    tool_s: float = 0.0  # the tool's own time in the sandbox (the step's ``duration_s``; a preview's, if previewed)

    @property
    def previewed(self) -> bool:
        return bool(self.pending.get("preview"))

    @property
    def preview_s(self) -> float:
        assert self.asked is not None and self.preview_started is not None
        return self.asked - self.preview_started

    @property
    def approval_to_result_s(self) -> float:
        assert self.finished_received is not None and self.approve_sent is not None
        return self.finished_received - self.approve_sent

    @property
    def run_s(self) -> float:
        assert self.finished is not None and self.started is not None
        return self.finished - self.started


@dataclass
class Run:
    policy: str
    wall_s: float
    steps: list[Step]
    load: str


# --- one session --------------------------------------------------------------------------------------------------


async def run_session(base: str, csv: bytes, policy: str) -> tuple[str, Run]:
    """One session through to ``done``, approving every pending step at once; its steps with their times."""
    steps: dict[int, Step] = {}
    started_load = load()
    async with httpx.AsyncClient(base_url=base, timeout=STEP_TIMEOUT) as http:
        sent = time.time()
        session_id = await new_session(http, csv, policy)
        async with subscribed(base, session_id) as events:
            while True:
                got = await asyncio.wait_for(events.get(), STEP_TIMEOUT)
                if await on_event(http, session_id, got, steps):
                    break
        wall = time.time() - sent
        detail = (await http.get(f"/api/sessions/{session_id}")).json()
    for view in detail["plan"]:
        if view["id"] in steps:
            step = steps[view["id"]]
            step.key, step.runs, step.tool_s = view["key"], view["runs"], float(view["duration_s"] or 0.0)
    return session_id, Run(policy, wall, list(steps.values()), f"{started_load}–{load()}")


async def on_event(http: httpx.AsyncClient, session_id: str, got: Received, steps: dict[int, Step]) -> bool:
    """Note one event; approve a pending step. True once the session has ended."""
    kind, data = got.event["type"], got.event["data"]
    if kind == "session_state" and data["state"] in FINAL_STATES:
        if data["state"] != "done":
            raise RuntimeError(f"session {session_id} ended {data['state']}: {data}")
        return True
    if kind == "step_failed":
        raise RuntimeError(f"session {session_id}: step {data['step_id']} ({data['tool']}) failed: {data['error']}")
    step_id = data.get("id") if kind == "approval_requested" else data.get("step_id")
    if step_id is None or "tool" not in data:  # progress events name the step but not its tool
        return False
    step = steps.setdefault(int(step_id), Step(int(step_id), data["tool"]))
    if kind == "preview_started":
        step.preview_started = got.server_at
    elif kind == "step_started":
        step.started = got.server_at
    elif kind == "step_finished":
        step.finished, step.finished_received = got.server_at, got.at
    elif kind == "approval_requested":
        step.asked, step.pending = got.server_at, data
        step.approve_sent = time.time()
        response = await http.post(f"/api/sessions/{session_id}/steps/{step_id}/approve", json=approval_body(data))
        if response.is_error:
            raise RuntimeError(f"approving step {step_id}: {response.status_code} {response.text}")
    return False


# --- the preview's own diff, in this process ---------------------------------------------------------------------


async def measure_diffs(base: str, data_dir: Path, session_id: str, run: Run) -> None:
    """``summarise`` of each previewed step on the Parquet files the server made it from and left."""
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        versions = (await http.get(f"/api/sessions/{session_id}/versions")).json()["items"]
        detail = (await http.get(f"/api/sessions/{session_id}")).json()
    blobs = {v["id"]: v["content_hash"] for v in versions}
    views = {v["id"]: v for v in detail["plan"]}
    target = detail["target"]
    for step in run.steps:
        if not step.previewed:
            continue
        preview, view = step.pending["preview"], views[step.id]
        before_blob = blobs[preview["base_version"]]
        before = read_blob(data_dir, before_blob)
        after = read_blob(data_dir, preview["content_hash"] or before_blob)
        result = {"summary": view["summary"], "metrics": view["metrics"], "findings": view["findings"]}
        times = []
        for _ in range(DIFF_REPEAT):
            started = time.perf_counter()
            summarise(before, after, result, target)
            times.append(time.perf_counter() - started)
        step.diff_s = statistics.median(times)


def read_blob(data_dir: Path, blob: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "versions" / "blobs" / f"{blob}.parquet")


# --- reporting ----------------------------------------------------------------------------------------------------


def paired(a_runs: list[Run], b_runs: list[Run]) -> list[tuple[Step, Step]]:
    """Each step of A with the step of the same plan key (and occurrence) in the B run of the same round."""
    pairs = []
    for a, b in zip(a_runs, b_runs, strict=True):
        seen: dict[str, int] = defaultdict(int)
        keyed: dict[tuple[str, int], Step] = {}
        for step in b.steps:
            keyed[(step.key, seen[step.key])] = step
            seen[step.key] += 1
        seen.clear()
        for step in a.steps:
            match = keyed.get((step.key, seen[step.key]))
            seen[step.key] += 1
            if match is not None and match.tool == step.tool:
                pairs.append((step, match))
    return pairs


def med(values: list[float]) -> float:
    return statistics.median(values)


def report(rows: int, a_runs: list[Run], b_runs: list[Run]) -> None:
    pairs = paired(a_runs, b_runs)
    gated = [(a, b) for a, b in pairs if a.previewed]
    plain = [(a, b) for a, b in pairs if not a.previewed and a.started is not None]
    loads = ", ".join(f"A {a.load}, B {b.load}" for a, b in zip(a_runs, b_runs, strict=True))
    print(f"\n**{rows:,} rows** ({len(a_runs)} run(s) each; load {loads})\n")
    print("| step tool | n | A: preview (s) | … tool in sandbox (s) | … diff (s) | diff / preview | "
          "A: approve → result (ms) | B: run (s) | … tool in sandbox (s) | A approve → result / B run |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for tool, group in grouped(gated).items():
        preview, diff = med([a.preview_s for a, _ in group]), med([a.diff_s or 0.0 for a, _ in group])
        approval, run = med([a.approval_to_result_s for a, _ in group]), med([b.run_s for _, b in group])
        a_tool, b_tool = med([a.tool_s for a, _ in group]), med([b.tool_s for _, b in group])
        print(f"| {tool} | {len(group)} | {preview:.2f} | {a_tool:.2f} | {diff:.3f} | {diff / preview:.1%} | "
              f"{approval * 1000:.0f} | {run:.2f} | {b_tool:.2f} | {approval / run:.2g} |")  # fmt: skip
    for tool, group in grouped(plain).items():
        a_run, b_run = med([a.run_s for a, _ in group]), med([b.run_s for _, b in group])
        a_tool, b_tool = med([a.tool_s for a, _ in group]), med([b.tool_s for _, b in group])
        print(f"| {tool} (read-only, not gated in A; A's run) | {len(group)} | {a_run:.2f} | {a_tool:.2f} | – | – | "
              f"– | {b_run:.2f} | {b_tool:.2f} | – |")  # fmt: skip
    totals(a_runs, b_runs, gated)
    rerun = [f"{a.key} (step {a.id}): {a.runs} runs" for a, _ in gated if a.runs != 1]
    print("\nEvery previewed step ran its tool once." if not rerun else f"\nPreviewed steps run again: {rerun}")


def grouped(pairs: list[tuple[Step, Step]]) -> dict[str, list[tuple[Step, Step]]]:
    groups: dict[str, list[tuple[Step, Step]]] = defaultdict(list)
    for a, b in pairs:
        groups[a.tool].append((a, b))
    return dict(groups)


def totals(a_runs: list[Run], b_runs: list[Run], gated: list[tuple[Step, Step]]) -> None:
    rounds = len(a_runs)
    preview = sum(a.preview_s for a, _ in gated) / rounds
    diff = sum(a.diff_s or 0.0 for a, _ in gated) / rounds
    approval = sum(a.approval_to_result_s for a, _ in gated) / rounds
    run = sum(b.run_s for _, b in gated) / rounds
    a_around = sum(a.preview_s - a.tool_s for a, _ in gated) / rounds + approval
    b_around = sum(b.run_s - b.tool_s for _, b in gated) / rounds
    a_wall, b_wall = med([r.wall_s for r in a_runs]), med([r.wall_s for r in b_runs])
    print("\n| total per session | A (previews) | B (no gate) | A / B |\n| --- | --- | --- | --- |")
    print(f"| data-changing steps ({len(gated) // rounds}): approve → result (A) vs run (B) | {approval:.3f} s | "
          f"{run:.2f} s | {approval / run:.2g} |")  # fmt: skip
    print(f"| the same steps: preview + approve → result (A) vs run (B) | {preview + approval:.2f} s | {run:.2f} s | "
          f"{(preview + approval) / run:.2f} |")  # fmt: skip
    print(f"| the same, outside the tool's own sandbox time | {a_around:.2f} s | {b_around:.2f} s | "
          f"{a_around / b_around:.2f} |")  # fmt: skip
    print(f"| … of A's previews, the diff (`summarise`) | {diff:.3f} s ({diff / preview:.1%}) | – | – |")
    print(f"| session wall, upload sent → `done` received{' (median; each run)' if rounds > 1 else ''} | "
          f"{a_wall:.1f} s{walls(a_runs)} | {b_wall:.1f} s{walls(b_runs)} | {a_wall / b_wall:.3f} |")  # fmt: skip


def walls(runs: list[Run]) -> str:
    return f" ({', '.join(f'{r.wall_s:.1f}' for r in runs)})" if len(runs) > 1 else ""


# --- main ---------------------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace, base: str, data_dir: Path) -> None:
    await run_session(base, synthetic(200).to_csv(index=False).encode(), "never")  # warm-up: the forkserver
    for rows in args.rows:
        csv = synthetic(rows).to_csv(index=False).encode()
        a_runs, b_runs = [], []
        for _ in range(args.repeat):
            session_id, a = await run_session(base, csv, "mutating")
            await measure_diffs(base, data_dir, session_id, a)
            a_runs.append(a)
            b_runs.append((await run_session(base, csv, "never"))[1])
        report(rows, a_runs, b_runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {load()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        asyncio.run(main_async(args, server.base, Path(tmp) / "data"))


if __name__ == "__main__":
    main()
