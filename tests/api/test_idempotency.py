"""``Idempotency-Key`` over real HTTP: a retried create, approval or undo gets the first answer back and
runs nothing twice, on the same server, concurrently, and after a restart; a key reused for another request
is a 409; keys belong to their token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    Server,
    get_session,
    messy_csv,
    new_session,
    running_server,
    versions,
    wait_for,
    wait_for_gate,
)

KEYED = "Idempotency-Key"


def create(client: httpx.Client, key: str, content: bytes | None = None, **fields: str) -> httpx.Response:
    files = {"file": ("messy.csv", messy_csv() if content is None else content, "text/csv")}
    data = {"target": "outcome", "policy": "mutating", **fields}
    return client.post("/api/sessions", files=files, data=data, headers={KEYED: key})


def approve_keyed(client: httpx.Client, session_id: str, pending: dict[str, Any], key: str) -> httpx.Response:
    body = {"proposal": pending["proposal"], "preview": (pending.get("preview") or {}).get("id")}
    return client.post(f"/api/sessions/{session_id}/steps/{pending['id']}/approve", json=body, headers={KEYED: key})


def session_ids(client: httpx.Client) -> list[str]:
    return [s["id"] for s in client.get("/api/sessions", params={"limit": 500}).json()["items"]]


def test_a_retried_create_gives_the_same_session_and_makes_one(api: httpx.Client) -> None:
    key, before = str(uuid.uuid4()), session_ids(api)
    first, again = create(api, key), create(api, key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert session_ids(api) == [*before, first.json()["id"]]


@pytest.mark.parametrize("change", [{"content": messy_csv(seed=9)}, {"target": "age"}, {"goal": "no row drops"}])
def test_a_key_reused_for_another_request_is_a_409(api: httpx.Client, change: dict[str, Any]) -> None:
    key = str(uuid.uuid4())
    assert create(api, key).status_code == 201
    before = session_ids(api)
    reused = create(api, key, **change)
    assert reused.status_code == 409, reused.text
    assert f"this {KEYED} was already used for another request" in reused.json()["detail"]
    assert session_ids(api) == before


def test_a_retried_approval_commits_once(api: httpx.Client) -> None:
    session_id = new_session(api, policy="mutating")
    pending = wait_for_gate(api, session_id)["pending_step"]
    key = str(uuid.uuid4())
    first = approve_keyed(api, session_id, pending, key)
    assert first.status_code == 200, first.text
    wait_for(api, session_id)
    made = versions(api, session_id)
    again = approve_keyed(api, session_id, pending, key)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert versions(api, session_id) == made
    assert [s["runs"] for s in get_session(api, session_id)["plan"] if s["id"] == pending["id"]] == [1]


def test_concurrent_retries_of_one_approval_run_it_once(api: httpx.Client) -> None:
    session_id = new_session(api, policy="mutating")
    pending = wait_for_gate(api, session_id)["pending_step"]
    before, key = len(versions(api, session_id)), str(uuid.uuid4())
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: approve_keyed(api, session_id, pending, key), range(6)))
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.json() == ok[0].json() for a in ok)
    assert sum("idempotent-replayed" not in a.headers for a in ok) == 1
    wait_for(api, session_id)
    assert len(versions(api, session_id)) == before + 1


def test_a_retried_undo_undoes_one_step(api: httpx.Client) -> None:
    session_id = new_session(api, policy="mutating")
    for _ in range(2):
        pending = wait_for_gate(api, session_id)["pending_step"]
        assert approve_keyed(api, session_id, pending, str(uuid.uuid4())).status_code == 200
    wait_for(api, session_id)
    listed = {v["id"]: v for v in versions(api, session_id)}
    current = get_session(api, session_id)["version"]
    key = {KEYED: str(uuid.uuid4())}
    undone = [api.post(f"/api/sessions/{session_id}/undo", headers=key) for _ in range(2)]
    assert [u.status_code for u in undone] == [200, 200], undone[-1].text
    assert get_session(api, session_id)["version"] == listed[current]["parent"]


def test_a_refused_request_is_forgotten_so_its_retry_runs(api: httpx.Client) -> None:
    session_id = new_session(api, policy="mutating")
    wait_for_gate(api, session_id)
    key = {KEYED: str(uuid.uuid4())}
    refused = api.post(f"/api/sessions/{session_id}/undo", headers=key)
    assert refused.status_code == 409 and "nothing to undo" in refused.json()["detail"]
    pending = get_session(api, session_id)["pending_step"]
    assert approve_keyed(api, session_id, pending, str(uuid.uuid4())).status_code == 200
    wait_for(api, session_id)
    assert api.post(f"/api/sessions/{session_id}/undo", headers=key).status_code == 200


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "nön-ascii"])
def test_a_malformed_key_is_a_422(api: httpx.Client, key: str) -> None:
    response = api.post("/api/sessions/0123456789abcdef/undo", headers={KEYED: key.encode()})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["header", KEYED]


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("idempotent"), tokens="alpha-token,beta-token") as server:
        yield server


def test_keys_belong_to_their_token_and_outlive_a_restart(tokened: Server, tmp_path: Path) -> None:
    key = str(uuid.uuid4())
    with tokened.client("alpha-token") as alpha, tokened.client("beta-token") as beta:
        mine, theirs = create(alpha, key), create(beta, key)
        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]
    tokened.kill()
    tokened.restart()
    with tokened.client("alpha-token") as alpha:
        again = create(alpha, key)
        assert again.status_code == 201 and again.json()["id"] == mine.json()["id"]
        assert session_ids(alpha) == [mine.json()["id"]]
