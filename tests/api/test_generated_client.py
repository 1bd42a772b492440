"""A client generated from the served ``/openapi.json`` with openapi-python-client drives a whole session:
upload, plan, edit a step and approve the new preview, reject one, approve with an idempotent retry, undo,
page through versions and events, and download the table. Nothing but the generated package talks to the
server, so a document that disagreed with the server would break it."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.api.conftest import Server, messy_csv

PACKAGE = "datacopilot_client"
EDITED = {"columns": {"age": {"type": "numeric", "min": 0, "max": 60}}, "infer": False}


@pytest.fixture(scope="module")
def generated(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package generated from what the server serves, imported from a temporary folder."""
    folder = tmp_path_factory.mktemp("generated")
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{server.base_url}/openapi.json").content)
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff formats the code
    command = [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document), "--meta", "none",
               "--output-path", str(folder / PACKAGE)]  # fmt: skip
    made = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0 and "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def part(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def at_gate(client: Any, session_id: str, timeout: float = 60.0) -> Any:
    """The session, once it rests; it must rest at a gate."""
    get_session = part("api.sessions.get_session")
    deadline = time.monotonic() + timeout
    while (session := get_session.sync(session_id, client=client)).state.value not in {
        "awaiting_approval", "done", "stopped", "failed",
    }:  # fmt: skip
        assert time.monotonic() < deadline, session.state
        time.sleep(0.1)
    assert session.state.value == "awaiting_approval", (session.state, session.error)
    return session


def everything(list_call: Any, *args: Any, client: Any) -> list[Any]:
    """Every item of a paged list, two at a time, following ``next_cursor``."""
    items, cursor = [], part("types").UNSET
    while True:
        page = list_call.sync(*args, client=client, limit=2, cursor=cursor)
        items += page.items
        if not page.next_cursor:
            return items
        cursor = page.next_cursor


def test_a_generated_client_runs_a_whole_session(generated: ModuleType, server: Server) -> None:
    models, types = part("models"), part("types")
    client = generated.Client(base_url=server.base_url, raise_on_unexpected_status=True)
    body = models.CreateSessionBody(
        file=types.File(payload=io.BytesIO(messy_csv()), file_name="messy.csv", mime_type="text/csv"),
        target="outcome", policy=models.CreateSessionBodyPolicy.MUTATING,
    )  # fmt: skip
    created = part("api.sessions.create_session").sync_detailed(client=client, body=body)
    assert created.status_code == 201 and isinstance(created.parsed, models.SessionView)
    session_id = created.parsed.id

    pending = at_gate(client, session_id).pending_step
    edit = models.PreviewRequest(proposal=pending.proposal, params=models.PreviewRequestParams.from_dict(EDITED))
    assert part("api.steps.preview_step").sync(session_id, pending.id, client=client, body=edit).id == session_id
    edited = at_gate(client, session_id).pending_step
    assert edited.id == pending.id and edited.proposal != pending.proposal
    assert edited.preview.params.to_dict()["infer"] is False

    approve = part("api.steps.approve_step")
    request = models.ApproveRequest(proposal=edited.proposal, preview=edited.preview.id)
    key = str(uuid.uuid4())
    first = approve.sync_detailed(session_id, edited.id, client=client, body=request, idempotency_key=key)
    again = approve.sync_detailed(session_id, edited.id, client=client, body=request, idempotency_key=key)
    assert first.status_code == again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert first.parsed.to_dict() == again.parsed.to_dict()

    rejected = at_gate(client, session_id).pending_step
    reason = models.RejectRequest(proposal=rejected.proposal, reason="not on this table")
    part("api.steps.reject_step").sync(session_id, rejected.id, client=client, body=reason)
    plan = at_gate(client, session_id).plan
    assert next(s for s in plan if s.id == rejected.id).status.value == "rejected"

    versions = everything(part("api.downloads.list_versions"), session_id, client=client)
    assert len(versions) == 2 and versions[-1].current and versions[-1].tool == "coerce_types"
    table = part("api.downloads.download_version").sync_detailed(session_id, versions[-1].id, client=client)
    assert len(pd.read_csv(io.BytesIO(table.content))) == versions[-1].n_rows

    undone = part("api.sessions.undo_step").sync(session_id, client=client)
    assert undone.version == versions[0].id
    events = everything(part("api.sessions.list_events"), session_id, client=client)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {"approval_requested", "step_finished", "version_created"} <= {e.type_.value for e in events}
    assert part("api.sessions.stop_session").sync(session_id, client=client).state.value == "stopped"

    missing = part("api.sessions.get_session").sync_detailed("0123456789abcdef", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorBody)
    assert "0123456789abcdef" in missing.parsed.detail
