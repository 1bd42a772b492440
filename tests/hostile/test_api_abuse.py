"""Abuse of the HTTP and WebSocket API of a served instance (with tokens): path traversal everywhere a
name goes, oversized uploads, malformed bodies and frames, replayed approvals, a flooding client,
missing and wrong tokens, foreign origins. Each is refused plainly and the server stays up."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import (
    Server,
    approve,
    bearer,
    close_code,
    for_step,
    messy_csv,
    new_session,
    persisted_events,
    receive,
    step_by_id,
    upload,
    wait_for,
    wait_for_gate,
)
from tests.api.test_restart import clean_table
from tests.hostile.bad_files import FORMULAS, with_column
from tests.hostile.conftest import MAX_UPLOAD_MB, OTHER_TOKEN, TOKEN, files_under

SMALL_CSV = messy_csv(40)
QUIET = 10**9  # connect "after" this event: no replay, so the next frame answers what the test sent


def _resting_session(api: httpx.Client, content: bytes = SMALL_CSV, **fields: str) -> str:
    session_id = new_session(api, content, policy="always", **fields)
    wait_for_gate(api, session_id)
    return session_id


@pytest.fixture(scope="module")
def resting(api: httpx.Client) -> str:
    """A session at its first gate, for the read-only abuse below."""
    return _resting_session(api)


# --- path traversal -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    ["../../escape.csv", "/etc/cron.d/escape.csv", "..\\..\\escape.csv", "....//....//escape.csv", "./../escape.csv"],
)
def test_an_upload_name_cannot_leave_the_uploads_folder(hostile: Server, api: httpx.Client, filename: str) -> None:
    response = upload(api, SMALL_CSV, filename=filename, policy="always")
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "escape.csv"
    assert not [p for p in hostile.folder.parent.rglob("escape.csv")]
    assert files_under(hostile.data_dir / "uploads") == []
    api.post(f"/api/sessions/{response.json()['id']}/stop")


@pytest.fixture(scope="module")
def import_folder(hostile: Server) -> Iterator[Path]:
    imports = hostile.folder / "imports"
    (imports / "ok.csv").write_bytes(SMALL_CSV)
    (hostile.folder / "secret.csv").write_bytes(SMALL_CSV)
    (imports / "link.csv").symlink_to(hostile.folder / "secret.csv")
    (imports / "folder_link").symlink_to(hostile.folder)
    yield imports


@pytest.mark.parametrize(
    ("path", "status"),
    [("../secret.csv", 400), ("../.env", 400), ("sub/../../secret.csv", 400), ("link.csv", 400),
     ("folder_link/secret.csv", 400), ("/etc/passwd", 400), ("ok.csv\0.png", 400), ("missing.csv", 404)],
)  # fmt: skip
def test_an_import_path_cannot_leave_the_import_folder(
    api: httpx.Client, import_folder: Path, path: str, status: int
) -> None:
    response = api.post("/api/sessions/from-path", json={"path": path, "target": "outcome"})
    assert response.status_code == status, response.text
    assert "secret" not in response.text.replace(path, "") and "root:" not in response.text
    ok = api.post("/api/sessions/from-path", json={"path": "ok.csv", "target": "outcome", "policy": "always"})
    assert ok.status_code == 201, ok.text
    api.post(f"/api/sessions/{ok.json()['id']}/stop")


@pytest.mark.parametrize(
    "path",
    ["versions/..%2F..%2Fcopilot.db/data", "versions/%2e%2e%2f%2e%2e%2fcopilot.db/data", "versions/..%5c..%5c/data",
     "versions/%2Fetc%2Fpasswd/data"],
)  # fmt: skip
def test_a_version_id_cannot_reach_a_file(api: httpx.Client, resting: str, path: str) -> None:
    response = api.get(f"/api/sessions/{resting}/{path}")
    assert response.status_code == 404, response.text
    assert b"SQLite" not in response.content and b"root:" not in response.content


@pytest.mark.parametrize("session_id", ["..%2F..%2Fcopilot.db", "%2e%2e", "." * 40, "x" * 5000])
def test_a_session_id_cannot_reach_a_file(api: httpx.Client, session_id: str) -> None:
    response = api.get(f"/api/sessions/{session_id}/versions")
    assert response.status_code == 404, response.text
    assert b"SQLite" not in response.content


def test_a_download_name_cannot_inject_headers(api: httpx.Client) -> None:
    response = upload(api, SMALL_CSV, filename='../a";\r\nSet-Cookie: stolen=1;x=".csv', policy="always")
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]
    version = wait_for_gate(api, session_id)["version"]
    data = api.get(f"/api/sessions/{session_id}/versions/{version}/data")
    assert data.status_code == 200, data.text
    disposition = data.headers["content-disposition"]
    assert "set-cookie" not in data.headers and "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith("attachment; filename*=utf-8''") and '"' not in disposition, disposition


# --- oversized and malformed bodies -------------------------------------------------------------------------------


def _multipart_stream(size: int) -> Iterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="target"\r\n\r\noutcome\r\n'
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    chunk = b"1,2,3\n" * 10_000
    for _ in range(size // len(chunk) + 1):
        yield chunk
    yield b"\r\n--b--\r\n"


@pytest.mark.parametrize("declared", [False, True])
def test_an_upload_past_the_limit_is_cut_off(hostile: Server, api: httpx.Client, declared: bool) -> None:
    size = 3 * MAX_UPLOAD_MB * 2**20
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    body: bytes | Iterator[bytes] = _multipart_stream(size)
    if declared:
        body = b"".join(body)
    try:
        response = api.post("/api/sessions", content=body, headers=headers)
        assert response.status_code == 413, response.text
        assert "COPILOT_MAX_UPLOAD_MB" in response.json()["detail"]
    except (httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server closed the connection while the client was still sending: cut off, as promised
    assert files_under(hostile.data_dir / "uploads") == []
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2, 3]", "application/json"), (b"[" * 100_000, "application/json"),
     (b'{"params": "' + b"x" * 100_000, "application/json"), (b"\xff\xfe\x00", "application/json"),
     (b"params=1", "application/x-www-form-urlencoded")],
)  # fmt: skip
def test_a_malformed_json_body_is_a_4xx(api: httpx.Client, resting: str, body: bytes, content_type: str) -> None:
    step_id = wait_for_gate(api, resting)["pending_step"]["id"]
    response = api.post(f"/api/sessions/{resting}/steps/{step_id}/approve", content=body,
                        headers={"Content-Type": content_type})  # fmt: skip
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
    assert wait_for_gate(api, resting)["pending_step"]["id"] == step_id  # nothing was approved


def test_malformed_upload_fields_are_named(api: httpx.Client) -> None:
    response = upload(api, SMALL_CSV, policy="sometimes")
    assert response.status_code == 422 and "policy" in response.json()["detail"]
    response = api.post("/api/sessions", content=b"--x\r\nnonsense", headers={"Content-Type": "multipart/form-data"})
    assert response.status_code == 415, response.text


# --- WebSocket ----------------------------------------------------------------------------------------------------


def test_malformed_frames_get_error_frames_and_the_socket_stays(
    hostile: Server, api: httpx.Client, resting: str
) -> None:
    frames: list[str | bytes] = [
        b"\x00\xff\xfe binary", "{not json", "[" * 50_000, json.dumps({"type": "rm -rf"}),
        json.dumps({"type": "approve", "step_id": "../1"}), json.dumps([{"type": "stop"}]),
    ]  # fmt: skip
    with hostile.connect(resting, after=QUIET, token=TOKEN) as ws:
        for frame in frames:
            ws.send(frame)
            reply = receive(ws, 10)
            assert reply is not None and reply["type"] == "error", (frame[:20], reply)
            assert reply["data"]["status"] in {400, 422} and reply["data"]["detail"]
    assert wait_for(api, resting)["state"] == "awaiting_approval"


def test_an_oversized_frame_closes_the_socket(hostile: Server, api: httpx.Client, resting: str) -> None:
    with hostile.connect(resting, after=QUIET, token=TOKEN) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.send("x" * (17 * 2**20))
        while True:
            ws.recv(timeout=20)
    # The server closes with 1009 as soon as it reads the frame's length. When that is while
    # the client is still sending, the unread rest makes the close a TCP reset, which can
    # overtake the close frame: then no code reaches the client.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    assert closed.value.sent is None or closed.value.sent.code == 1009
    with hostile.connect(resting, after=0, token=TOKEN) as fresh:
        assert receive(fresh, 10) is not None
    assert wait_for(api, resting)["state"] == "awaiting_approval"


def test_a_flooding_client_is_disconnected_and_others_are_served(hostile: Server, resting: str) -> None:
    answered = 0
    with hostile.connect(resting, after=QUIET, token=TOKEN) as ws, pytest.raises(ConnectionClosed) as closed:
        with suppress(ConnectionClosed):  # a busy client may still be sending when the server closes
            for _ in range(2000):
                ws.send("{")  # each costs the server a parse and an error frame
        while True:  # the frames that arrived before the close are still read
            answered += json.loads(ws.recv(timeout=20))["type"] == "error"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "too many messages" in closed.value.rcvd.reason
    assert 0 < answered <= 40, answered  # the burst was answered, the flood was not
    with hostile.connect(resting, after=0, token=TOKEN) as fresh:
        assert receive(fresh, 10) is not None


# --- approvals ----------------------------------------------------------------------------------------------------


def test_replayed_and_foreign_approvals_run_nothing_twice(hostile: Server, api: httpx.Client) -> None:
    session_id = new_session(api, SMALL_CSV)
    pending = wait_for_gate(api, session_id)["pending_step"]
    with hostile.client(OTHER_TOKEN) as other:
        assert approve(other, session_id, pending).status_code == 404
    first = approve(api, session_id, pending)
    assert first.status_code == 200, first.text
    with hostile.connect(session_id, after=QUIET, token=TOKEN) as ws:
        ws.send(json.dumps({"type": "approve", "step_id": pending["id"], "params": {"columns": ["outcome"]}}))
        assert approve(api, session_id, pending, {"columns": ["outcome"]}).status_code in {200, 409}
    session = wait_for(api, session_id)
    step = step_by_id(session, pending["id"])
    assert step["status"] == "done" and step["params"].get("columns") != ["outcome"], step
    events = persisted_events(hostile, session_id, TOKEN)  # previewed once, committed once, never run again
    assert len(for_step(events, "preview_started", pending["id"])) == 1 and step["runs"] == 1
    assert len(for_step(events, "step_finished", pending["id"])) == 1
    assert for_step(events, "step_started", pending["id"]) == []
    with hostile.client(OTHER_TOKEN) as other:  # another token cannot read the preview's rows either
        assert other.get(f"/api/sessions/{session_id}/previews/{pending['preview']['id']}/rows").status_code == 404


# --- tokens and origins -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN.upper(), f"{TOKEN},{OTHER_TOKEN}"])
@pytest.mark.parametrize(
    "route", ["/api/sessions", "/api/tools", "/api/sessions/{id}/versions", "/api/sessions/{id}/report"]
)
def test_a_missing_or_wrong_token_is_401(hostile: Server, resting: str, token: str | None, route: str) -> None:
    response = httpx.get(hostile.base_url + route.format(id=resting), headers=bearer(token) if token else {})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer" and resting not in response.text


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_websocket_without_the_token_is_closed_4401(hostile: Server, resting: str, token: str | None) -> None:
    assert close_code(hostile.ws_url(resting, token=token)) == 4401


def test_a_foreign_origin_gets_no_cors_grant(api: httpx.Client) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = api.options("/api/sessions", headers={**origin, "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "authorization"})  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers
    listed = api.get("/api/sessions", headers=origin)
    assert listed.status_code == 200 and "access-control-allow-origin" not in listed.headers
    assert "access-control-allow-credentials" not in listed.headers


# --- availability and exports -------------------------------------------------------------------------------------


def test_healthz_stays_answered_while_a_step_runs(hostile: Server, api: httpx.Client) -> None:
    session_id = new_session(api, clean_table(600), target="label")
    pending = wait_for_gate(api, session_id, timeout=120)["pending_step"]
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert httpx.get(f"{hostile.base_url}/healthz", timeout=5).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    assert approve(api, session_id, pending).status_code == 200
    prober = threading.Thread(target=probe)
    prober.start()
    try:
        session = wait_for(api, session_id, timeout=120)
    finally:
        stop.set()
        prober.join()
    assert step_by_id(session, pending["id"])["status"] == "done", session["plan"]
    assert len(latencies) >= 3 and max(latencies) < 5.0, latencies  # generous: the test machine is shared


def test_a_csv_download_cannot_run_formulas(api: httpx.Client) -> None:
    session_id = _resting_session(api, with_column("note", (FORMULAS * 10)[:30]).encode())
    version = wait_for(api, session_id)["version"]
    data = api.get(f"/api/sessions/{session_id}/versions/{version}/data")
    notes = set(pd.read_csv(io.BytesIO(data.content), keep_default_na=False)["note"])
    assert notes == {"'" + f for f in FORMULAS if f != "-3.5"} | {"-3.5"}, notes
