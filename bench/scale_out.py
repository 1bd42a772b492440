"""Several servers and the Ray executor: throughput of concurrent sessions, and approval → step start across servers.

    .venv/bin/python bench/scale_out.py [--sessions 20] [--rows 200] [--approvals 60] [--configs ...]

Needs the dev extras (PostgreSQL's server binaries, Ray): it starts a private PostgreSQL
(``tests/pg.py``) and a Ray head of two CPUs on loopback (``tests/ray_cluster.py``), then,
for each configuration, one or two ``copilot serve`` processes on one fresh database and
one data directory, with the local or the ray executor (``COPILOT_MAX_RUNNING_STEPS`` 2 a server).

1. **Throughput**: ``--sessions`` sessions of the default plan on a ``--rows`` synthetic table
   (``speed.synthetic``), policy ``never`` (every step runs without a gate), created at once,
   round robin over the servers; the time until every one is done, and sessions and tool
   runs a minute.
2. **Approval → step start across servers** (two servers, local executor): sessions with
   policy ``always`` are created on the first server and watched on a WebSocket there; every
   approval is sent to the second. The time from sending it to the step's first event on the
   first server's WebSocket (``step_started`` for a read-only step, ``step_finished`` for a
   previewed one), which travels through PostgreSQL's ``NOTIFY``.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import latency
from speed import synthetic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.conftest import Server  # noqa: E402  (the repository's own test helpers)
from tests.pg import Cluster, binaries  # noqa: E402
from tests.ray_cluster import free_port, start_head, stop_head  # noqa: E402

CONFIGS = ("1-local", "2-local", "1-ray", "2-ray")


@dataclass(frozen=True)
class Throughput:
    config: str
    sessions: int
    seconds: float
    runs: int  # tool runs in the sandbox, previews included

    def row(self, baseline: float) -> str:
        per_minute = 60 * self.sessions / self.seconds
        return (f"| {self.config} | {self.sessions} | {self.seconds:.1f} | {per_minute:.1f} | "
                f"{60 * self.runs / self.seconds:.0f} | {baseline / self.seconds:.2f}× |")  # fmt: skip


@contextmanager
def servers(count: int, executor: str, url: str, ray_address: str, folder: Path) -> Iterator[list[Server]]:
    """``count`` servers on one database and one data directory, started together."""
    env = {"COPILOT_DATABASE_URL": url, "COPILOT_EXECUTOR": executor, "COPILOT_RAY_ADDRESS": ray_address}
    started = []
    for index in range(count):
        server = Server(folder / f"server-{index}", env=env | {"COPILOT_DATA_DIR": str(folder / "data")})
        server.folder.mkdir(parents=True)
        started.append(server)
    try:
        for server in started:
            server.spawn()
        for server in started:
            server.wait_healthy()
        yield started
    finally:
        for server in started:
            server.terminate()


async def throughput(group: list[Server], csv: bytes, sessions: int, label: str) -> Throughput:
    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=120.0) for s in group]
    try:
        started = time.monotonic()
        ids = await asyncio.gather(*(latency.new_session(clients[i % len(clients)], csv, "never")
                                     for i in range(sessions)))  # fmt: skip
        runs = 0
        for session_id in ids:
            runs += await finished(clients[0], session_id)
        return Throughput(label, sessions, time.monotonic() - started, runs)
    finally:
        for client in clients:
            await client.aclose()


async def finished(client: httpx.AsyncClient, session_id: str) -> int:
    """Wait for the session to be done; the tool runs its steps took."""
    while True:
        session = (await client.get(f"/api/sessions/{session_id}")).json()
        if session["state"] in latency.FINAL_STATES:
            if session["state"] != "done":
                raise RuntimeError(f"session {session_id} ended {session['state']}: {session.get('error')}")
            return sum(step["runs"] for step in session["plan"])
        await asyncio.sleep(0.25)


async def across(group: list[Server], csv: bytes, approvals: int) -> list[latency.Gate]:
    """Sessions created and watched on the first server, approved on the second."""
    watched, approver = group[0].base_url, group[1].base_url
    gates: list[latency.Gate] = []
    async with httpx.AsyncClient(base_url=watched, timeout=60.0) as home, \
            httpx.AsyncClient(base_url=approver, timeout=60.0) as other:  # fmt: skip
        while len(gates) < approvals:
            session_id = await latency.new_session(home, csv)
            with latency.no_collector_pauses():
                async with latency.subscribed(watched, session_id) as events:
                    gates += await latency.drive(other, session_id, events)
    return gates[:approvals]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--approvals", type=int, default=60)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    args = parser.parse_args()
    if binaries() is None:
        raise SystemExit("PostgreSQL's server binaries are needed (apt-get install postgresql)")
    csv = synthetic(args.rows).to_csv(index=False).encode()
    with ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="scale-"))
        stack.callback(shutil.rmtree, folder, True)
        pg_folder = Path(tempfile.mkdtemp(prefix="copilot-pg-"))  # its own: the server's user must reach it
        stack.callback(shutil.rmtree, pg_folder, True)
        cluster = Cluster(binaries(), pg_folder, port=free_port())  # type: ignore[arg-type]
        cluster.start()
        stack.callback(cluster.stop)
        ray_folder = tempfile.mkdtemp(prefix="ray-")
        ray_address = start_head(ray_folder, free_port())
        stack.callback(stop_head, ray_folder)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; a Ray head of 2 CPUs on loopback; PostgreSQL on a Unix socket\n"
        )
        results = []
        for config in args.configs:
            count, executor = int(config[0]), config.split("-")[1]
            with servers(count, executor, cluster.url(cluster.create_database()), ray_address,
                         folder / config) as group:  # fmt: skip
                asyncio.run(throughput(group, csv, 1, config))  # warm-up: forkservers, the cluster's first workers
                results.append(asyncio.run(throughput(group, csv, args.sessions, config)))
        baseline = next((r.seconds for r in results if r.config == "1-local"), results[0].seconds)
        print("| servers-executor | sessions | wall (s) | sessions / min | tool runs / min | vs 1-local |")
        print("| --- | --- | --- | --- | --- | --- |")
        for result in results:
            print(result.row(baseline))
        if args.approvals:
            with servers(2, "local", cluster.url(cluster.create_database()), ray_address, folder / "across") as group:
                asyncio.run(across(group, csv, 1))
                gates = asyncio.run(across(group, csv, args.approvals))
            print("\n| setting | measured | n | p50 (ms) | p99 (ms) | max (ms) |")
            print("| --- | --- | --- | --- | --- | --- |")
            latency.print_gates(gates, "approved on server 2, watched on server 1")


if __name__ == "__main__":
    main()
