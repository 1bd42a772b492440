"""A ``copilot serve`` started beside a running ``copilot clean`` on the same data directory takes over none of
the CLI's live work: the run finishes with its output and every step done, all run by the CLI."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, suppress
from pathlib import Path

import pandas as pd
import pytest

from copilot.session.heartbeat import HEARTBEAT_S, STALE_S
from tests.api.conftest import Server
from tests.api.test_restart import clean_table

ROWS = 1500


def running_steps(store: Path) -> int:
    """How many steps the store says are running now, previews included (0 while it does not exist yet)."""
    if not store.exists():
        return 0
    with closing(sqlite3.connect(store, timeout=30)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM steps WHERE status IN ('running', 'previewing')").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def tool_processes(data_dir: Path) -> list[int]:
    """The processes of a tool call running now: those whose working folder is a call's, under the sandbox."""
    folder, found = str(data_dir / "sandbox") + "/", []
    for entry in Path("/proc").iterdir():
        with suppress(OSError):
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(folder):
                found.append(int(entry.name))
    return found


def test_a_server_started_beside_a_running_copilot_clean_takes_over_none_of_its_steps(tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_bytes(clean_table(ROWS))
    server = Server(tmp_path)
    store = server.data_dir / "copilot.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")} | {
        "COPILOT_DATA_DIR": str(server.data_dir), "COLUMNS": "200",
    }  # fmt: skip
    command = [sys.executable, "-m", "copilot.cli", "clean", "table.csv", "--target", "label", "--output",
               "clean.csv", "--yes"]  # fmt: skip
    with (tmp_path / "cli.log").open("wb") as log:
        cli = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (held := tool_processes(server.data_dir)) and cli.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cli.poll() is None and held and running_steps(store) == 1, "the CLI never got to run a step"
        for pid in held:  # the step lasts as long as the test wants, however fast this machine is
            os.kill(pid, signal.SIGSTOP)
        server.start()
        watched = time.monotonic()
        time.sleep(STALE_S + 2 * HEARTBEAT_S)  # the CLI's heartbeat goes on; its step does not move
        assert running_steps(store) == 1, "the held step was taken from the live CLI"
        for pid in held:
            os.kill(pid, signal.SIGCONT)
        cli.wait(timeout=120)
        watched = time.monotonic() - watched
    finally:
        server.terminate()
        if cli.poll() is None:
            cli.kill()
    output = (tmp_path / "cli.log").read_text(errors="replace")
    assert cli.returncode == 0, output[-4000:]
    assert len(pd.read_csv(tmp_path / "clean.csv")) > 0
    with closing(sqlite3.connect(store)) as db:
        sessions = db.execute("SELECT state, runner FROM sessions").fetchall()
        steps = db.execute("SELECT tool, status, interrupted, runner FROM steps ORDER BY position").fetchall()
    assert len(sessions) == 1 and sessions[0][0] == "done", sessions
    assert steps and all(status == "done" and not interrupted for _, status, interrupted, _ in steps), steps
    runners = {runner for *_, runner in steps} | {sessions[0][1]}
    assert {runner.split(":")[-2] for runner in runners} == {str(cli.pid)}, runners  # host:pid:instance
    if watched < STALE_S + HEARTBEAT_S:
        pytest.fail(f"the CLI finished {watched:.1f} s after the server started: too soon to show anything")
