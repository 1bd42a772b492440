"""The ``ray`` executor: each tool call one task on a Ray cluster, sandboxed inside the task.

A call is a streaming-generator task with one CPU, ``max_calls=1`` (a fresh worker process per call,
so nothing of one call outlives it) and ``max_retries=0`` (a data change never runs twice), and a
memory request equal to the tool's limit. The input version goes in, and the table comes back,
as Parquet bytes through Ray's object store: workers need no shared disk.

Ray's resources only place a task; they limit nothing. Inside the task the worker starts the same
sandbox child as the local executor, in a fresh interpreter (:class:`tools.sandbox.Sandbox` with
``start_method="spawn"``: a child forked from the worker would share its map of the node's object
store), which sets the limits, the namespaces and Landlock before tool code runs, and which dies with
the worker (its parent-death signal). Wall time is held twice: by that sandbox, and here, where a call
that overruns, or is cancelled, is ended with ``ray.cancel(force=True)``.

Workers need this package installed (``pip install 'datacopilot[ray]'``), at the server's version.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tools.executor import ExecutorUnavailable
from tools.sandbox import STARTUP_S, CallContext, Limits, ProgressFn, Sandbox, SandboxOutcome, failure

#: Time a call may wait for a free CPU and its memory on the cluster before it is withdrawn, as a share of
#: its wall-clock limit; and how long past that limit (and its sandbox's start-up) this side waits for the
#: task's own time-out.
QUEUE_SHARE, GRACE_S = 1.0, 10.0
#: How long an ended call may take to leave the cluster once cancelled.
CANCEL_WAIT_S = 10.0
#: How long the cluster's address may take to accept a connection at start-up.
CONNECT_S = 5.0
_joined: str | None = None  # the cluster this process runs tools on
MiB = 1024 * 1024


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorUnavailable(
            "COPILOT_EXECUTOR=ray needs Ray: pip install 'datacopilot[ray]' here and on every Ray node"
        ) from None
    return ray


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto`` or the head's ``HOST:PORT``) as a driver, once per process;
    :class:`ExecutorUnavailable` when there is none, or when this process joined another one already."""
    global _joined
    ray = _ray()
    if ray.is_initialized():
        if _joined != address:
            raise ExecutorUnavailable(f"this process already runs tools on the Ray cluster at {_joined!r}, "
                                      f"not {address!r}")  # fmt: skip
        return
    check_address(address)
    try:
        ray.init(address=address, namespace="datacopilot", log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ExecutorUnavailable(
            f"COPILOT_EXECUTOR=ray: no Ray cluster could be joined at {address!r} ({exc}). Start one with "
            "`ray start --head`, or set COPILOT_RAY_ADDRESS (or RAY_ADDRESS) to its address."
        ) from None
    _joined = address


def check_address(address: str) -> None:
    """Fail at once when ``address`` is no head's ``HOST:PORT``, or nothing listens there: Ray itself retries
    for minutes before it gives up. ``auto`` looks for a cluster started on this machine, which Ray finds
    (or not) at once. Ray Client (``ray://``) cannot carry a task's stream of progress, so it is refused."""
    if address == "auto":
        return
    if address.startswith("ray://"):
        raise ExecutorUnavailable(
            f"COPILOT_RAY_ADDRESS={address!r} is a Ray Client address, which cannot stream a task's progress: give "
            "the head's own address (HOST:6379) and run the server where it reaches the cluster's nodes"
        )
    parsed = urlsplit(f"//{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or not port or parsed.path:
        raise ExecutorUnavailable(f"COPILOT_RAY_ADDRESS={address!r} is not HOST:PORT (the Ray head's) or auto")
    try:
        socket.create_connection((host, port), timeout=CONNECT_S).close()
    except OSError as exc:
        raise ExecutorUnavailable(
            f"COPILOT_EXECUTOR=ray: nothing answers at {address!r} ({exc.strerror or exc}). Start a Ray head there "
            "(`ray start --head`), or set COPILOT_RAY_ADDRESS (or RAY_ADDRESS) to its address."
        ) from None


#: A call's folder on its node: the prefix, then the worker's process id.
CALL_PREFIX = "copilot-call-"


def _sweep_folders_of_dead_workers() -> None:
    """Remove the folders that calls whose worker is gone left on this node: a call cancelled with
    ``force`` dies with no chance to clean up. A live worker's folder, or one whose id is taken again, stays."""
    for folder in Path(tempfile.gettempdir()).glob(f"{CALL_PREFIX}*-*"):
        pid = folder.name.removeprefix(CALL_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed worker its raylet has not reaped yet is a zombie, and has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_call(
    tool: str, data: bytes, params: dict[str, Any], ctx: dict[str, Any], limits: dict[str, Any],
    extra_tools: tuple[str, ...], protected: tuple[str, ...],
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The task: say where it runs, then the call's progress, then its outcome and table bytes."""
    import ray

    runtime = ray.get_runtime_context()
    yield {"kind": "started", "task_id": runtime.get_task_id(), "node_id": runtime.get_node_id(),
           "worker_pid": os.getpid()}  # fmt: skip
    _sweep_folders_of_dead_workers()
    folder = Path(tempfile.mkdtemp(prefix=f"{CALL_PREFIX}{os.getpid()}-"))
    try:
        sandbox = Sandbox(Limits(**limits), folder / "calls", extra_tools, tuple(map(Path, protected)), "spawn")
        source = folder / "input.parquet"
        source.write_bytes(data)
        del data
        events: queue.Queue[dict[str, Any]] = queue.Queue()

        def work() -> None:
            outcome = sandbox.run(tool, source, params, CallContext(**ctx),
                                  on_progress=lambda f, m: events.put({"kind": "progress", "fraction": f,
                                                                       "message": m}))  # fmt: skip
            events.put({"kind": "done", "outcome": outcome})

        threading.Thread(target=work, name="sandbox-call", daemon=True).start()
        while (event := events.get())["kind"] == "progress":
            yield event
        outcome: SandboxOutcome = event["outcome"]
        table = outcome.table_path.read_bytes() if outcome.table_path is not None else None
        yield {"kind": "done", "ok": outcome.ok, "result": outcome.result, "error": outcome.error,
               "error_kind": outcome.error_kind, "table": table}  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class RayExecutor:
    """Runs tool calls as tasks on the Ray cluster at ``address``; tables come back into ``root``."""

    name = "ray"

    def __init__(
        self, limits: Limits, root: Path, extra_tools: tuple[str, ...] = (), protected: tuple[Path, ...] | None = None,
        address: str = "auto",
    ) -> None:  # fmt: skip
        """``protected`` folders, by default the folder that holds ``root`` (the data directory), are never
        opened by a tool on a node that has them."""
        connect(address)
        self.limits, self.extra_tools, self.address = limits, extra_tools, address
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.protected = tuple(str(p) for p in (protected if protected is not None else (self.root.parent,)))
        self._task = _ray().remote(num_cpus=1, max_calls=1, max_retries=0, memory=limits.memory_mb * MiB)(run_call)

    def run(
        self,
        tool: str,
        input_path: Path,
        params: dict[str, Any],
        ctx: CallContext,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> SandboxOutcome:
        started = time.monotonic()
        ray = _ray()
        data = ray.put(Path(input_path).read_bytes())
        calls = self._task.remote(tool, data, params, ctx.__dict__, self.limits.__dict__, self.extra_tools,
                                  self.protected)  # fmt: skip
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        reader = threading.Thread(target=_drain, args=(calls, events), name="ray-call", daemon=True)
        reader.start()
        try:
            outcome = self._follow(tool, events, on_progress, cancel)
        finally:
            reader.join(timeout=2)
            if reader.is_alive():  # overran, cancelled, or this side failed: end the task and its worker
                ray.cancel(calls, force=True)
                reader.join(timeout=CANCEL_WAIT_S)
        return replace(outcome, duration_s=time.monotonic() - started)

    def _follow(
        self, tool: str, events: queue.Queue[dict[str, Any]], on_progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> SandboxOutcome:  # fmt: skip
        where: dict[str, Any] = {"executor": "ray"}
        deadline, running = time.monotonic() + QUEUE_SHARE * self.limits.wall_seconds, False
        while True:
            if cancel is not None and cancel.is_set():
                return replace(failure("cancelled", "the step was cancelled before it finished"), where=where)
            if time.monotonic() > deadline:
                return replace(self._overran(running), where=where)
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event["kind"] == "started":
                where |= {k: event[k] for k in ("task_id", "node_id", "worker_pid")}
                deadline, running = time.monotonic() + self.limits.wall_seconds + STARTUP_S + GRACE_S, True
            elif event["kind"] == "progress":
                _tell(on_progress, event)
            elif event["kind"] == "done":
                return self._outcome(tool, event, where)
            else:
                return replace(failure("crash", f"the Ray task ended without a result ({event['error']})"),
                               where=where)  # fmt: skip

    def _overran(self, running: bool) -> SandboxOutcome:
        if running:
            return failure("timeout", f"the tool ran longer than the wall-clock limit of "
                                      f"{self.limits.wall_seconds:g} s and was stopped")  # fmt: skip
        return failure("timeout", f"no Ray node had a free CPU and {self.limits.memory_mb} MiB of memory for "
                                  f"{QUEUE_SHARE * self.limits.wall_seconds:g} s; the call was withdrawn")  # fmt: skip

    def _outcome(self, tool: str, event: dict[str, Any], where: dict[str, Any]) -> SandboxOutcome:
        table_path = None
        if event["table"] is not None:
            folder = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=self.root))
            table_path = folder / "output.parquet"
            table_path.write_bytes(event["table"])
        return SandboxOutcome(bool(event["ok"]), 0.0, dict(event["result"]), table_path, event["error"],
                              event["error_kind"], where)  # fmt: skip

    def discard(self, outcome: SandboxOutcome) -> None:
        if outcome.table_path is not None:
            shutil.rmtree(outcome.table_path.parent, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        """The cluster as Ray sees it now: its live nodes and CPUs."""
        ray = _ray()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"executor": self.name, "address": self.address, "nodes": len(nodes),
                "cpus": int(ray.cluster_resources().get("CPU", 0))}  # fmt: skip

    def warm(self) -> None:
        """Nothing to start: each call is a fresh worker (``max_calls=1``), started by Ray when it is scheduled."""

    def close(self) -> None:
        """Leave the process joined: other engines in it may use the same cluster."""


def _drain(calls: Any, events: queue.Queue[dict[str, Any]]) -> None:
    """Hand each item the task yields to the caller; a task that dies or is cancelled ends the stream."""
    ray = _ray()
    try:
        for ref in calls:
            events.put(ray.get(ref))
    except Exception as exc:  # the task's end as Ray tells it: cancelled, its worker crashed or out of memory
        events.put({"kind": "lost", "error": f"{type(exc).__name__}: {str(exc)[:300]}"})


def _tell(on_progress: ProgressFn | None, event: dict[str, Any]) -> None:
    if on_progress is None:
        return
    try:
        on_progress(float(event["fraction"]), str(event["message"])[:500])
    except Exception:  # the caller's display must not end the call
        return
