"""Service latency of a real ``copilot serve``: approval to the step's first event, and event to WebSocket client.

    .venv/bin/python bench/latency.py [--approvals 100] [--busy-approvals 30] [--clients 1 10 100] [--rows 200]

Starts ``copilot serve`` (the console script) on a free loopback port, with no
tokens and ``COPILOT_DATA_DIR`` in a temporary folder, and drives it over
HTTP and WebSocket as another service would. Every session is created from a
small synthetic table (``speed.synthetic``) with policy ``always``, so every
step, read-only ones included, waits at the approval gate.

1. **approval → the step's first event**: for each gate, the time from
   sending ``POST …/steps/{id}/approve`` (naming the proposal and, for a
   previewed step, the preview shown) to the first event of that step after
   it arriving on a WebSocket of the session; also the HTTP response time,
   and the event's server timestamp ``at`` minus the send time. The two
   kinds of gate are reported apart: a read-only step's first event is
   ``step_started`` (its tool runs after the approval); a data-changing step
   was previewed before it was asked, so approving commits that table and its
   first event is ``step_finished`` (no ``step_started``, no second run).
   Both are written in the approval's own transaction; a read-only step's
   child starts once one of the server's step runners is free, which is not
   seen from outside. Sessions follow each other until ``--approvals`` gates
   have been passed, after one warm-up session that is not counted.
2. The same with two other sessions (policy ``never``) running their steps
   meanwhile, so the step runners, the engine's lock and both CPUs are busy
   (``--busy-approvals`` gates).
3. **event → client**: ``N`` WebSocket clients on one session (1, 10, 100),
   all in this process (asyncio); a separate client approves every step.
   For every live event and every client: receive time minus the event's
   ``at`` (set by the server when the event is written, before its commit;
   the same machine clock). Approval → first event is measured again here,
   with the ``N`` clients connected.

Prints Markdown tables with p50 / p99 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from speed import synthetic

ROOT = Path(__file__).resolve().parent.parent
FINAL_STATES = {"done", "stopped", "failed"}
START_TIMEOUT = 60.0
EVENT_TIMEOUT = 120.0
BUSY_LANES = 2  # the server's default COPILOT_MAX_RUNNING_STEPS


@dataclass(frozen=True)
class Received:
    """One event as a client got it: the frame and this machine's clock at receipt."""

    event: dict[str, Any]
    at: float  # time.time() when the frame arrived

    @property
    def server_at(self) -> float:
        return datetime.fromisoformat(self.event["at"]).timestamp()


#: The events that can be a step's first after its approval: a read-only step starts; a previewed one (or a
#: backtracking step, which runs no tool) is committed at once; a step refused at approval fails.
FIRST_EVENTS = {"step_started", "step_finished", "step_failed"}


@dataclass
class Gate:
    """One approval: when it was sent and answered, and when the step's first event after it was written and
    received; ``kind`` is "read-only" (the step then runs), "previewed" (approving commits the preview) or
    "backtrack" (approving goes back a version)."""

    sent: float
    answered: float
    written: float
    received: float
    kind: str
    first: str  # the type of that first event


@dataclass
class Listener:
    """A WebSocket client that records every event of a session with its receive time."""

    events: list[Received] = field(default_factory=list)


# --- the server -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_server(folder: Path) -> Iterator[Server]:
    """``copilot serve`` on loopback, no tokens, data in ``folder``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    env |= {"COPILOT_DATA_DIR": str(folder / "data"), "COPILOT_TOKENS": "", "PYTHONUNBUFFERED": "1"}
    copilot = Path(sys.executable).parent / "copilot"
    command = [str(copilot), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"copilot serve exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"copilot serve did not answer /healthz within {START_TIMEOUT:.0f} s")


# --- one session, driven over HTTP and WebSocket ------------------------------------------------------------------


async def new_session(http: httpx.AsyncClient, csv: bytes, policy: str = "always") -> str:
    files = {"file": ("synthetic.csv", csv, "text/csv")}
    response = await http.post("/api/sessions", files=files, data={"target": "y", "policy": policy})
    response.raise_for_status()
    return str(response.json()["id"])


def ws_url(base: str, session_id: str) -> str:
    return base.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws?after=0"


@asynccontextmanager
async def subscribed(base: str, session_id: str) -> AsyncIterator[asyncio.Queue[Received]]:
    """A WebSocket on the session whose events land, with their receive times, in a queue."""
    queue: asyncio.Queue[Received] = asyncio.Queue()
    async with websockets.connect(ws_url(base, session_id), max_size=None, open_timeout=30) as ws:
        reader = asyncio.create_task(read_into(ws, queue))
        try:
            yield queue
        finally:
            reader.cancel()


async def read_into(ws: Any, queue: asyncio.Queue[Received]) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for frame in ws:
            queue.put_nowait(Received(json.loads(frame), time.time()))


async def drive(http: httpx.AsyncClient, session_id: str, events: asyncio.Queue[Received]) -> list[Gate]:
    """Approve every gate of the session as soon as it is announced, until the session ends."""
    gates = []
    while True:
        got = await asyncio.wait_for(events.get(), EVENT_TIMEOUT)
        kind, data = got.event["type"], got.event["data"]
        if kind == "session_state" and data["state"] in FINAL_STATES:
            if data["state"] != "done":
                raise RuntimeError(f"session {session_id} ended {data['state']}")
            return gates
        if kind == "approval_requested":
            gates.append(await approve(http, session_id, data, events))


def approval_body(pending: dict[str, Any]) -> dict[str, Any]:
    """The approval of a pending step as an ``approval_requested`` event gave it: its proposal, and the
    preview shown if it has one (so the server commits exactly that table)."""
    preview = pending.get("preview")
    return {"proposal": pending["proposal"]} | ({"preview": preview["id"]} if preview else {})


def gate_kind(pending: dict[str, Any]) -> str:
    if pending.get("preview"):
        return "previewed"
    return "backtrack" if pending["tool"] == "revert" else "read-only"


async def approve(
    http: httpx.AsyncClient, session_id: str, pending: dict[str, Any], events: asyncio.Queue[Received]
) -> Gate:
    """Send the approval and wait for the step's first event after it; other events before it are dropped."""
    step_id = int(pending["id"])
    sent = time.time()
    response = await http.post(f"/api/sessions/{session_id}/steps/{step_id}/approve", json=approval_body(pending))
    answered = time.time()
    if response.is_error:
        raise RuntimeError(f"approving step {step_id}: {response.status_code} {response.text}")
    while True:
        got = await asyncio.wait_for(events.get(), EVENT_TIMEOUT)
        if got.event["type"] in FIRST_EVENTS and got.event["data"].get("step_id") == step_id:
            return Gate(sent, answered, got.server_at, got.at, gate_kind(pending), got.event["type"])


async def listen(base: str, session_id: str, listener: Listener, ready: asyncio.Event, stop: asyncio.Event) -> None:
    async with websockets.connect(ws_url(base, session_id), max_size=None, open_timeout=60) as ws:
        ready.set()
        reader = asyncio.create_task(record(ws, listener))
        await stop.wait()
        reader.cancel()


async def record(ws: Any, listener: Listener) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for frame in ws:
            listener.events.append(Received(json.loads(frame), time.time()))


@contextmanager
def no_collector_pauses() -> Iterator[None]:
    """Keep this process's garbage collector from stalling the clients while they measure.

    A full collection here takes 70–90 ms (numpy, httpx, websockets and thousands of
    received frames on the heap); every frame in flight meanwhile would be charged to the
    server. The heap built so far is frozen out of the collector's reach and collection
    is off until the measurement ends; the frames received meanwhile are kept anyway."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


# --- the two measurements -----------------------------------------------------------------------------------------


async def approval_latency(base: str, csv: bytes, approvals: int) -> list[Gate]:
    gates: list[Gate] = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        while len(gates) < approvals:
            session_id = await new_session(http, csv)
            with no_collector_pauses():
                async with subscribed(base, session_id) as events:
                    gates += await drive(http, session_id, events)
    return gates[:approvals]


async def busy_lane(http: httpx.AsyncClient, csv: bytes, stop: asyncio.Event) -> None:
    """Sessions that run every step without asking (policy ``never``), one after another, until ``stop``."""
    while not stop.is_set():
        session_id = await new_session(http, csv, policy="never")
        while not stop.is_set():
            state = (await http.get(f"/api/sessions/{session_id}")).json()["state"]
            if state in FINAL_STATES:
                break
            await asyncio.sleep(0.5)


async def busy_approval_latency(base: str, csv: bytes, approvals: int, lanes: int) -> list[Gate]:
    """Approval latency while ``lanes`` other sessions keep the server's step runners and CPUs busy."""
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, timeout=120.0) as http:
        busy = [asyncio.create_task(busy_lane(http, csv, stop)) for _ in range(lanes)]
        try:
            return await approval_latency(base, csv, approvals)
        finally:
            stop.set()
            await asyncio.gather(*busy)


@dataclass(frozen=True)
class FanOut:
    """What the clients of one session saw: per live event and client, receive time minus ``at``."""

    delays: dict[int, list[float]]  # by event seq, one per client
    gates: list[Gate]
    client_cpu_per_frame: float  # seconds of this process's CPU per frame its clients received
    server_cpu: float  # seconds of the server's CPU while the session ran

    def every(self) -> list[float]:
        return [d for per_event in self.delays.values() for d in per_event]

    def first(self) -> list[float]:
        return [min(per_event) for per_event in self.delays.values()]

    def last(self) -> list[float]:
        return [max(per_event) for per_event in self.delays.values()]


async def fan_out(server: Server, csv: bytes, clients: int) -> FanOut:
    """``clients`` WebSockets on one session while another client approves each of its steps."""
    base = server.base
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        session_id = await new_session(http, csv)
        listeners = [Listener() for _ in range(clients)]
        readies = [asyncio.Event() for _ in range(clients)]
        stop = asyncio.Event()
        pairs = zip(listeners, readies, strict=True)
        tasks = [asyncio.create_task(listen(base, session_id, li, ready, stop)) for li, ready in pairs]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), EVENT_TIMEOUT)
        await asyncio.sleep(1.0)  # let every client take in the stored events it replays first
        with no_collector_pauses():
            live_from, cpu_from, server_from = time.time(), time.process_time(), server.cpu_seconds()
            async with subscribed(base, session_id) as events:
                gates = await drive(http, session_id, events)
            await asyncio.sleep(0.5)  # the last events reach every client
            cpu, server_cpu = time.process_time() - cpu_from, server.cpu_seconds() - server_from
        stop.set()
        await asyncio.gather(*tasks)
    delays: dict[int, list[float]] = {}
    live = [r for li in listeners for r in li.events if "seq" in r.event and r.server_at > live_from]
    for r in live:
        delays.setdefault(int(r.event["seq"]), []).append(r.at - r.server_at)
    return FanOut(delays, gates, cpu / max(len(live), 1), server_cpu)


# --- reporting ----------------------------------------------------------------------------------------------------


def ms(values: list[float], q: float) -> str:
    return f"{np.percentile(np.asarray(values) * 1000, q):.1f}"


def summary(values: list[float]) -> str:
    return f"{len(values)} | {ms(values, 50)} | {ms(values, 99)} | {ms(values, 100)}"


GATE_KINDS = {  # kind: how its rows are named, and the first event expected after its approval
    "read-only": ("read-only step", "step_started"),
    "previewed": ("previewed step", "step_finished"),
    "backtrack": ("backtracking step", "step_finished"),
}


def print_gates(gates: list[Gate], label: str) -> None:
    """Rows for each kind of gate met, apart: their first events are not the same moment of the step."""
    for kind, (name, expected) in GATE_KINDS.items():
        ours = [g for g in gates if g.kind == kind]
        if not ours:
            continue
        others = sorted({g.first for g in ours} - {expected})
        if others:  # e.g. a step refused at approval; counted, and said
            name += f" (first event {', '.join(f'`{o}`' for o in others)} for {sum(g.first != expected for g in ours)})"
        rows = {
            f"{name}: POST approve sent → `{expected}` received on the WebSocket": [g.received - g.sent for g in ours],
            f"{name}: POST approve sent → HTTP response received": [g.answered - g.sent for g in ours],
            f"{name}: POST approve sent → `{expected}` written (its `at`)": [g.written - g.sent for g in ours],
            f"{name}: `{expected}` written → received": [g.received - g.written for g in ours],
        }
        for what, values in rows.items():
            print(f"| {label} | {what} | {summary(values)} |")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


async def main_async(args: argparse.Namespace, server: Server) -> None:
    base = server.base
    csv = synthetic(args.rows).to_csv(index=False).encode()
    await approval_latency(base, csv, 1)  # warm-up: the server's first requests and the forkserver start
    print("| setting | measured | n | p50 (ms) | p99 (ms) | max (ms) |\n| --- | --- | --- | --- | --- | --- |")
    if args.approvals:
        started_load = load()
        gates = await approval_latency(base, csv, args.approvals)
        print_gates(gates, f"no other clients (load {started_load}–{load()})")
    if args.busy_approvals:
        started_load = load()
        gates = await busy_approval_latency(base, csv, args.busy_approvals, BUSY_LANES)
        print_gates(gates, f"{BUSY_LANES} other sessions running steps (load {started_load}–{load()})")
    cpu_notes = []
    for clients in args.clients:
        started_load = load()
        seen = await fan_out(server, csv, clients)
        label = f"{clients} client(s) on the session (load {started_load}–{load()})"
        print(f"| {label} | event written (`at`) → received, every client | {summary(seen.every())} |")
        print(f"| {label} | event written → received by the first client of {clients} | {summary(seen.first())} |")
        print(f"| {label} | event written → received by the last client of {clients} | {summary(seen.last())} |")
        print_gates(seen.gates, label)
        frames = len(seen.every())
        client_us = seen.client_cpu_per_frame * 1e6
        cpu_notes.append(f"{clients} client(s): {frames} frames, server CPU {seen.server_cpu:.2f} s over the session "
                         f"(profiles and plans included), client CPU {client_us:.0f} µs a frame")  # fmt: skip
    print("\n" + "\n".join(cpu_notes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--approvals", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--busy-approvals", type=int, default=30)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {load()}\n")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        asyncio.run(main_async(args, server))


if __name__ == "__main__":
    main()
