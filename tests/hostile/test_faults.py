"""Faults: a full disk while a version is written, a store locked by another writer, a sandbox child
killed from outside, the server killed again and again mid-run. Afterwards no version is lost or
corrupt and every session is consistent. (A kill at the gate and mid-step: tests/api/test_restart.py.)"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from copilot.storage.versions import VersionStore
from tests.api.conftest import Server, get_session, messy_csv, new_session, running_server, wait_for
from tests.conftest import messy_table
from tests.hostile.conftest import assert_versions_intact, files_under
from tests.hostile.hostile_tools import HOSTILE_TOOLS
from tools.sandbox import CallContext, Limits, Sandbox

REST = frozenset({"awaiting_approval", "done", "stopped", "failed"})


def _full_disk(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> None:
    """A Parquet write that gets some bytes out, then finds the disk full."""
    Path(path).write_bytes(b"PAR1 half a file")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_no_partial_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = VersionStore(tmp_path / "versions")
    kept = store.add_table(messy_table(20))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.add_table(messy_table(30), parent=kept.id, step=1, tool="impute")
    assert [p.name for p in files_under(tmp_path / "versions")] == sorted([f"{kept.blob}.parquet", f"{kept.id}.json"])
    assert store.load(kept.id).equals(messy_table(20))


def test_a_full_disk_while_recording_leaves_no_partial_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = VersionStore(tmp_path / "versions")

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("copilot.storage.versions.json.dump", no_space)
    with pytest.raises(OSError, match="No space left"):
        store.add_table(messy_table(20))
    assert files_under(store.records) == []


def test_a_store_locked_by_another_writer_delays_writes_and_loses_none(hostile: Server, api: httpx.Client) -> None:
    session_id = new_session(api, messy_csv(40), policy="always")
    wait_for(api, session_id)
    answers: list[httpx.Response] = []
    holder = sqlite3.connect(hostile.data_dir / "copilot.db", timeout=30)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        writer = threading.Thread(target=lambda: answers.append(
            api.post(f"/api/sessions/{session_id}/messages", json={"text": "written under a lock"})))  # fmt: skip
        writer.start()
        time.sleep(2.0)
        assert answers == []  # waiting for the lock, not failed
        assert api.get("/healthz").status_code == 200
        assert get_session(api, session_id)["id"] == session_id  # readers are not blocked (WAL)
    finally:
        holder.rollback()
        holder.close()
    writer.join(timeout=30)
    assert answers and answers[0].status_code == 201, answers
    texts = [m["text"] for m in api.get(f"/api/sessions/{session_id}/messages").json()["items"]]
    assert "written under a lock" in texts


def test_a_sandbox_child_killed_from_outside_fails_its_call(tmp_path: Path) -> None:
    table = tmp_path / "v0.parquet"
    messy_table(40).to_parquet(table)
    sandbox = Sandbox(Limits(memory_mb=2048, cpu_seconds=30, wall_seconds=30), tmp_path / "sandbox", HOSTILE_TOOLS)

    def kill_it(fraction: float, message: str) -> None:
        os.kill(int(message), signal.SIGKILL)

    started = time.monotonic()
    out = sandbox.run("say_pid_then_sleep", table, {}, CallContext(target="outcome"), on_progress=kill_it)
    assert (out.ok, out.error_kind) == (False, "crash"), out
    assert "killed by SIGKILL" in (out.error or "") and time.monotonic() - started < 10
    assert list(sandbox.root.iterdir()) == []
    assert sandbox.run("feature_types", table, {}, CallContext(target="outcome")).ok  # the next call is served


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("crashing")) as server:
        yield server


def _assert_consistent(api: httpx.Client, session_id: str) -> dict[str, Any]:
    session = wait_for(api, session_id, REST, timeout=120)
    listed = {v["id"]: v for v in api.get(f"/api/sessions/{session_id}/versions").json()["items"]}
    assert session["version"] in listed, (session["version"], list(listed))
    assert not [s for s in session["plan"] if s["status"] == "running"], session["plan"]
    for step in session["plan"]:
        if step["status"] == "done" and step.get("version_after"):
            assert step["version_after"] in listed, step
    return session


def test_repeated_kills_mid_run_lose_no_version(crashing: Server) -> None:
    """SIGKILL while steps run and versions are written (policy ``never``: no gate stops the run)."""
    with crashing.client() as api:
        session_id = new_session(api, messy_csv(60), policy="never")
    time.sleep(1.0)
    crashing.kill()
    crashing.restart()
    with crashing.client() as api:
        session = _assert_consistent(api, session_id)
        assert [s["id"] for s in api.get("/api/sessions").json()["items"]] == [session_id]
        assert session["state"] == "done", session["plan"]
    assert assert_versions_intact(crashing.data_dir) >= 2
