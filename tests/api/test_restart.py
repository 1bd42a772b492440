"""SIGKILL the server at a gate and in the middle of a run; after a restart nothing is lost or done twice."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from tests.api.conftest import (
    Server,
    approve,
    csv_bytes,
    for_step,
    new_session,
    persisted_events,
    read_until,
    running_server,
    step_by_id,
    steps_of,
    versions,
    wait_for,
    wait_for_gate,
)

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("restart"), database_url=module_database_url) as srv:
        yield srv


@pytest.fixture
def server(restartable: Server) -> Server:
    """This module's own server, since its tests kill it; running again if a test left it dead."""
    if restartable.process is None or restartable.process.poll() is not None:
        restartable.restart()
    return restartable


def clean_table(n: int = 2000) -> bytes:
    """A fault-free table: its only gate is ``label_issues``, which takes a few seconds on this many rows."""
    x, y = make_classification(n_samples=n, n_features=12, n_informative=6, flip_y=0.05, random_state=0)
    frame = pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = np.where(y == 1, "yes", "no")
    return csv_bytes(frame)


def assert_versions_intact(api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """No version listed twice, none written twice for a step, and every one readable as Parquet."""
    listed = versions(api, session_id)
    assert len({v["id"] for v in listed}) == len(listed), listed
    step_ids = [v["step_id"] for v in listed if v["step_id"] is not None]
    assert len(set(step_ids)) == len(step_ids), listed
    for version in listed:
        response = api.get(f"/api/sessions/{session_id}/versions/{version['id']}/data?format=parquet")
        assert response.status_code == 200, response.text
        assert pd.read_parquet(io.BytesIO(response.content)).shape == (version["n_rows"], version["n_columns"])
    return listed


def test_a_kill_at_the_gate_resumes_at_the_same_gate(server: Server) -> None:
    with server.client() as api:
        session_id = new_session(api)
        before = wait_for_gate(api, session_id)
        listed = versions(api, session_id)
    server.kill()
    server.restart()
    with server.client() as api:
        after = wait_for(api, session_id, timeout=30)
        assert after["state"] == "awaiting_approval", steps_of(after)
        assert after["pending_step"] == before["pending_step"]
        assert after["version"] == before["version"] and versions(api, session_id) == listed
        step_id = before["pending_step"]["id"]
        assert approve(api, session_id, before["pending_step"]).status_code == 200
        session = wait_for_gate(api, session_id)
        assert step_by_id(session, step_id)["status"] == "done" and step_by_id(session, step_id)["runs"] == 1
        assert [v["step_id"] for v in assert_versions_intact(api, session_id)] == [None, step_id]
    events = persisted_events(server, session_id)  # previewed once before the kill; committed after, not run again
    assert len(for_step(events, "preview_started", step_id)) == 1 and for_step(events, "step_started", step_id) == []


def test_a_kill_during_a_run_fails_that_step_and_the_session_goes_on(server: Server) -> None:
    """The tool runs while its preview is made: a kill then leaves no preview, no version, and no gate."""
    with server.client() as api:
        session_id = new_session(api, clean_table(), target="label")
        with server.connect(session_id, after=0) as ws:
            started = read_until(ws, lambda e: e["type"] == "preview_started", timeout=120)[-1]
            assert started["data"]["tool"] == "label_issues", started
            pending = {"id": started["data"]["step_id"]}
            read_until(ws, lambda e: e["type"] == "progress")  # the tool's child is running
            server.kill()
    server.restart()
    with server.client() as api:
        session = wait_for(api, session_id, timeout=120)
        assert session["state"] in {"awaiting_approval", "done"}, (session["error"], steps_of(session))
        interrupted = step_by_id(session, pending["id"])
        assert interrupted["status"] == "failed", steps_of(session)
        assert "interrupt" in (interrupted["error"] or "").lower(), interrupted
        if session["pending_step"] is not None:
            assert session["pending_step"]["id"] != pending["id"]
        later = session["plan"][session["plan"].index(interrupted) + 1 :]
        assert {"done", "awaiting_approval"} & {s["status"] for s in later}, steps_of(session)
        assert [v["step_id"] for v in assert_versions_intact(api, session_id)] == [None]
