"""A real local Ray cluster for the tests: ``ray start --head`` on loopback, once per test run.

Ray replaces ``127.0.0.1`` with the machine's own address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``;
with it and ``--node-ip-address=127.0.0.1`` every port of the node listens on loopback only. The
cluster's files live in a temporary folder of the run, and ``ray stop`` ends it when the run ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
CPUS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_command() -> None:
    if not Path(sys.executable).with_name("ray").exists():
        message = "Ray is not installed: pip install -e '.[dev]' (it brings datacopilot[ray])"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def start_head(folder: str, port: int, cpus: int = CPUS) -> str:
    """Start a Ray head on loopback with its files in ``folder``; its address. The ``ray`` command beside
    this interpreter starts it (``pip install 'datacopilot[ray]'``)."""
    os.environ.update(LOOPBACK_ONLY)  # for this process too, should it join the cluster
    ray = str(Path(sys.executable).with_name("ray"))
    command = [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cpus}",
               "--include-dashboard=false", f"--temp-dir={folder}", "--disable-usage-stats"]  # fmt: skip
    started = subprocess.run(command, env=os.environ, capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        raise RuntimeError(f"ray start failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    return f"127.0.0.1:{port}"


def stop_head(folder: str) -> None:
    """Leave the cluster if this process joined it, stop the processes of the cluster in ``folder`` (never
    another Ray cluster of this machine, as ``ray stop`` would), remove ``folder``. It returns once every one
    of them has ended: a killed process runs on until the kernel has torn it down."""
    _leave()
    pids = cluster_processes(folder)
    _signal(pids, signal.SIGTERM)
    _wait_ended(pids, seconds=10)
    pids = sorted(set(pids) | set(cluster_processes(folder)))  # and any started while the others stopped
    _signal(pids, signal.SIGKILL)
    if not _wait_ended(pids, seconds=30):
        raise RuntimeError(f"Ray processes {[pid for pid in pids if running(pid)]} outlived SIGKILL")
    shutil.rmtree(folder, ignore_errors=True)


def _signal(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_ended(pids: list[int], seconds: float) -> bool:
    """Whether every process of ``pids`` has ended within ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def cluster_processes(folder: str) -> list[int]:
    """The processes of the cluster whose files are in ``folder``: those that name it on their command line
    (the head's servers) and every process they started (the workers, whose titles do not name it)."""
    parents: dict[int, int] = {}
    named: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat, cmdline = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if folder.encode() in cmdline:
            named.add(int(entry.name))
    found, grown = set(named), True
    while grown:
        started = {pid for pid, parent in parents.items() if parent in found} - found
        found, grown = found | started, bool(started)
    return sorted(found - {os.getpid()})


def running(pid: int) -> bool:
    """Whether ``pid`` runs: neither gone nor ended and waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address (``127.0.0.1:PORT``) of a Ray head started for this run; this process is not joined to it."""
    _ray_command()
    folder = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 bytes
    try:
        address = start_head(folder, free_port())
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield address
    finally:
        stop_head(folder)


def _leave() -> None:
    """Disconnect this process if a test joined it, before the cluster goes."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def ray_workerrunning(pid: int) -> bool:
    """Whether the process ``pid`` lives and is a Ray worker (its title starts with ``ray::``)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return title.startswith(b"ray::") or b"default_worker.py" in title


def wait_gone(pid: int, seconds: float = 15.0) -> bool:
    """Whether the Ray worker ``pid`` has gone within ``seconds``."""
    deadline = time.monotonic() + seconds
    while ray_workerrunning(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not ray_workerrunning(pid)
