"""``copilot serve`` with ``COPILOT_EXECUTOR=ray`` on a real local Ray cluster: a whole session gives the
table the local executor gives, each step says which task and node ran it, ``copilot doctor`` reports the
cluster, and a server whose cluster does not answer does not start."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.testing import assert_frame_equal

from tests.api.conftest import Server, free_port, messy_csv, new_session, wait_for

ROWS = 120


def clean_on(server: Server, upload: bytes) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """A session of the default plan that asks nothing (policy ``never``): its end, table and report."""
    server.folder.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        with server.client() as client:
            session_id = new_session(client, upload, policy="never")
            session = wait_for(client, session_id, timeout=400)
            assert session["state"] == "done", (session["error"], server.log_tail())
            data = client.get(f"/api/sessions/{session_id}/versions/{session['version']}/data?format=parquet")
            report = client.get(f"/api/sessions/{session_id}/report").json()
    finally:
        server.terminate()
    return session, pd.read_parquet(io.BytesIO(data.content)), report


def ran(session: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in session["plan"] if s["runs"] > 0]


def test_a_whole_session_on_ray_gives_the_table_of_the_local_executor(tmp_path: Path, ray_address: str) -> None:
    upload = messy_csv(ROWS, seed=3)
    local, local_table, _ = clean_on(Server(tmp_path / "local"), upload)
    on_ray = Server(tmp_path / "ray", env={"COPILOT_EXECUTOR": "ray", "COPILOT_RAY_ADDRESS": ray_address})
    remote, remote_table, report = clean_on(on_ray, upload)
    assert_frame_equal(remote_table, local_table)
    assert [(s["tool"], s["status"]) for s in remote["plan"]] == [(s["tool"], s["status"]) for s in local["plan"]]
    assert ran(local) and all(s["executor"]["executor"] == "local" for s in ran(local))
    nodes = {s["executor"]["node_id"] for s in ran(remote)}
    tasks = [s["executor"]["task_id"] for s in ran(remote)]
    assert all(s["executor"]["executor"] == "ray" for s in ran(remote)) and len(nodes) == 1 and None not in nodes
    assert len(set(tasks)) == len(tasks) and None not in tasks  # one task per step
    reported = {s["id"]: s["executor"] for s in report["steps"] if s["runs"]}
    assert reported == {s["id"]: s["executor"] for s in ran(remote)}


def test_doctor_reports_the_cluster_and_the_store(tmp_path: Path, ray_address: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    env |= {"COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_EXECUTOR": "ray", "COPILOT_RAY_ADDRESS": ray_address,
            "COLUMNS": "300"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "copilot.cli", "doctor"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"executor: ray at {ray_address}: 1 node(s), 2 CPUs" in done.stdout, done.stdout
    assert "one server at a time: use PostgreSQL for several" in done.stdout


def test_a_server_whose_cluster_does_not_answer_does_not_start(tmp_path: Path) -> None:
    """Tools never run elsewhere than asked: no cluster, no server (and at once, not after Ray's retries)."""
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    env |= {"COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_EXECUTOR": "ray", "COPILOT_RAY_ADDRESS": address}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "copilot.cli", "serve", "--port", str(free_port())], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"nothing answers at '{address}'" in " ".join(done.stderr.split()), done.stderr
    assert time.monotonic() - started < 30
