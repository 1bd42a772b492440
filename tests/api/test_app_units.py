"""The API's pure pieces, without an engine: tokens → owners, the upload cap, the streamed multipart
reader, file names, the import folder, downloads, error mapping, log redaction, `copilot serve`'s guard."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from copilot.api.deps import LOCAL_OWNER, bearer_token, owner_for
from copilot.api.errors import status_for, validation_data
from copilot.api.limits import UploadSizeLimit
from copilot.api.logs import RedactTokens
from copilot.api.tables import csv_chunks, parquet_without_index
from copilot.api.uploads import receive_upload, resolve_import, safe_filename
from copilot.errors import Conflict, CopilotError, InputFileError, InvalidParams, NotFound, TableError

MiB = 1024 * 1024


# -- tokens and owners ----------------------------------------------------------------------------


def test_no_tokens_means_one_local_owner() -> None:
    assert owner_for(None, []) == LOCAL_OWNER
    assert owner_for("anything", []) == LOCAL_OWNER


def test_a_token_acts_for_its_hash_and_others_are_refused() -> None:
    tokens = ["alpha", "beta"]
    assert owner_for("alpha", tokens) == hashlib.sha256(b"alpha").hexdigest()[:16]
    assert owner_for("beta", tokens) != owner_for("alpha", tokens)
    assert owner_for("gamma", tokens) is None
    assert owner_for("alph", tokens) is None
    assert owner_for(None, tokens) is None
    assert owner_for("", tokens) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None)],
)
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# -- the upload cap -------------------------------------------------------------------------------


def run_asgi(app: Any, chunks: Iterable[bytes], headers: dict[str, str], path: str = "/up") -> tuple[int, bytes, int]:
    """Send ``chunks`` as a request body; return the status, the response body and the chunks the app pulled."""
    pending = list(chunks)
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    anyio.run(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), pulled


async def read_all(scope: Scope, receive: Receive, send: Send) -> None:
    """A tiny app that reads the whole body and answers with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size, more = size + len(message.get("body", b"")), message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    app = UploadSizeLimit(read_all, path="/up", max_mb=1)
    status, body, pulled = run_asgi(app, [b"x" * 10], {"content-length": str(MiB + 1)})
    assert status == 413 and b"1 MiB" in body and b"COPILOT_MAX_UPLOAD_MB" in body
    assert pulled == 0


def test_a_streamed_body_is_cut_off_once_it_passes_the_cap() -> None:
    app = UploadSizeLimit(read_all, path="/up", max_mb=1)
    chunks = [b"x" * (MiB // 4)] * 20  # 5 MiB, no Content-Length (chunked)
    status, body, pulled = run_asgi(app, chunks, {})
    assert status == 413 and b"larger than" in body
    assert pulled == 5  # the fifth quarter passes the cap; the other fifteen are never read


def test_bodies_under_the_cap_and_other_routes_pass() -> None:
    app = UploadSizeLimit(read_all, path="/up", max_mb=1)
    assert run_asgi(app, [b"x" * 1000] * 3, {"content-length": "3000"})[:2] == (200, b"3000")
    assert run_asgi(app, [b"x" * MiB] * 3, {}, path="/other")[:2] == (200, str(3 * MiB).encode())


# -- the multipart reader -------------------------------------------------------------------------

BOUNDARY = "testboundary"


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """``(field, filename or None, content)`` parts as a multipart/form-data body."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def receive_in_chunks(body: bytes, folder: Path, size: int = 7, content_type: str | None = None) -> Any:
    """Run ``receive_upload`` on ``body`` delivered ``size`` bytes at a time."""
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    kind = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", kind.encode())]},
                      receive)  # fmt: skip
    return anyio.run(receive_upload, request, folder)


def test_an_upload_streams_to_a_file_and_its_fields_are_checked(tmp_path: Path) -> None:
    table = b"a,b,outcome\n" + b"1,2,yes\n" * 1000
    body = multipart(("target", None, b"outcome"), ("id_columns", None, b"a, b"), ("policy", None, b""),
                     ("file", "../../etc/data.csv", table))  # fmt: skip
    upload = receive_in_chunks(body, tmp_path)
    assert upload.filename == "data.csv"
    assert upload.path.parent == tmp_path and upload.path.read_bytes() == table
    assert (upload.options.target, upload.options.id_columns, upload.options.policy) == ("outcome", ["a", "b"], None)


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        ([("target", None, b"y")], "file"),
        ([("file", "t.csv", b"a,y\n")], "target"),
        ([("file", "t.csv", b"a,y\n"), ("target", None, b"y"), ("policy", None, b"sometimes")], "policy"),
        ([("file", "t.csv", b"a,y\n"), ("target", None, b"y"), ("colour", None, b"red")], "colour"),
    ],
)
def test_a_missing_or_bad_field_is_named_and_nothing_is_left(
    tmp_path: Path, parts: list[tuple[str, str | None, bytes]], field: str
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        receive_in_chunks(multipart(*parts), tmp_path)
    assert validation_data(caught.value.errors())["detail"].startswith(f"body.{field}:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b'{"target": "y"}', "application/json", 415, "multipart/form-data"),
        (multipart(("file", "a.csv", b"1"), ("file", "b.csv", b"2"), ("target", None, b"y")), None, 400, "one file"),
        (multipart(("file", None, b"a,y\n1,2\n"), ("target", None, b"y")), None, 400, "no filename"),
        (multipart(("file", "a.csv", b"1"), ("target", None, b"y"))[:-20], None, 400, "ended before"),
        (multipart(("target", None, b"y" * 70_000), ("file", "a.csv", b"1")), None, 400, "longer than 64 KiB"),
    ],
)
def test_a_malformed_body_is_refused_and_nothing_is_left(
    tmp_path: Path, body: bytes, content_type: str | None, status: int, words: str
) -> None:
    with pytest.raises(HTTPException) as caught:
        receive_in_chunks(body, tmp_path, size=1000, content_type=content_type)
    assert caught.value.status_code == status and words in caught.value.detail
    assert list(tmp_path.iterdir()) == []


# -- file names and the import folder -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("data.csv", "data.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\table.xlsx", "table.xlsx"),
        ("/abs/path/t.parquet", "t.parquet"),
        ("evil\x00name\r\n.csv", "evilname.csv"),
        ("  spaced.tsv  ", "spaced.tsv"),
        ("", "upload"),
        ("..", "upload"),
        ("dir/", "upload"),
        ("a" * 300 + ".jsonl", "a" * 249 + ".jsonl"),
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    root = tmp_path / "imports"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "t.csv").write_text("a,y\n1,2\n")
    (tmp_path / "secret.csv").write_text("password,y\n")
    (root / "inside-link.csv").symlink_to(root / "sub" / "t.csv")
    (root / "outside-link.csv").symlink_to(tmp_path / "secret.csv")
    (root / "escape").symlink_to(tmp_path)
    return root


@pytest.mark.parametrize("name", ["sub/t.csv", "sub/../sub/t.csv", "./sub/t.csv", "inside-link.csv"])
def test_files_inside_the_import_folder_resolve(import_dir: Path, name: str) -> None:
    assert resolve_import(import_dir, name) == (import_dir / "sub" / "t.csv").resolve()


def test_an_absolute_path_inside_the_import_folder_resolves(import_dir: Path) -> None:
    assert resolve_import(import_dir, str(import_dir / "sub" / "t.csv")) == (import_dir / "sub" / "t.csv").resolve()


@pytest.mark.parametrize(
    "name", ["../secret.csv", "sub/../../secret.csv", "outside-link.csv", "escape/secret.csv", "/etc/passwd", "a\0b"]
)
def test_nothing_outside_the_import_folder_is_reached(import_dir: Path, name: str) -> None:
    with pytest.raises(InputFileError):
        resolve_import(import_dir, name)


@pytest.mark.parametrize("name", ["missing.csv", "sub", "."])
def test_what_is_not_a_file_there_is_not_found(import_dir: Path, name: str) -> None:
    with pytest.raises(NotFound):
        resolve_import(import_dir, name)


def test_importing_is_off_without_an_import_folder() -> None:
    with pytest.raises(NotFound, match="COPILOT_IMPORT_DIR"):
        resolve_import(None, "t.csv")


# -- downloads ------------------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A version as the engine stores it after dropping rows: pandas' index becomes a column."""
    table = pd.DataFrame({"age": [31.0, None, 45.5, 60.0, 22.0], "city": ["York", "Hull", None, "Bath", "Leeds"],
                          "outcome": ["yes", "no", "yes", "no", "yes"]}).drop(index=[1, 2])  # fmt: skip
    table.to_parquet(tmp_path / "stored.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "stored.parquet").names
    return tmp_path / "stored.parquet", table.reset_index(drop=True)


def test_csv_streams_in_batches_without_the_index(stored: tuple[Path, pd.DataFrame]) -> None:
    path, table = stored
    chunks = list(csv_chunks(path, batch_rows=2))
    assert len(chunks) == 3  # the header, then two batches
    assert b"".join(chunks).decode() == table.to_csv(index=False)


def test_parquet_downloads_hold_only_the_tables_columns(stored: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    path, table = stored
    copy = parquet_without_index(path, tmp_path / "downloads", batch_rows=2)
    assert copy is not None and copy.parent == tmp_path / "downloads"
    assert pq.read_schema(copy).names == ["age", "city", "outcome"]
    pd.testing.assert_frame_equal(pd.read_parquet(copy), table)


def test_a_version_without_a_stored_index_is_served_as_it_is(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2], "y": [0, 1]}).to_parquet(tmp_path / "plain.parquet")
    assert parquet_without_index(tmp_path / "plain.parquet", tmp_path / "downloads") is None
    assert not (tmp_path / "downloads").exists()


def test_a_stepped_range_index_is_renumbered(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2, 3, 4], "y": [0, 1, 0, 1]}).drop(index=[1, 3]).to_parquet(tmp_path / "odd.parquet")
    copy = parquet_without_index(tmp_path / "odd.parquet", tmp_path / "downloads")
    assert copy is not None
    pd.testing.assert_frame_equal(pd.read_parquet(copy), pd.DataFrame({"a": [1, 3], "y": [0, 0]}))


# -- errors and logs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (InvalidParams("x", []), 422),
        (TableError("x"), 422),
        (InputFileError("x"), 400),
        (CopilotError("x"), 400),
    ],
)
def test_domain_errors_map_to_statuses(error: CopilotError, status: int) -> None:
    assert status_for(error) == status


def test_validation_errors_name_the_field() -> None:
    data = validation_data([{"loc": ("body", "reason"), "msg": "too short"}, {"loc": ("query", "n"), "msg": "bad"}])
    assert data["detail"] == "body.reason: too short (and 1 more)"
    assert data["errors"] == [{"loc": ["body", "reason"], "msg": "too short"}, {"loc": ["query", "n"], "msg": "bad"}]


def test_query_tokens_never_reach_the_log() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/api/sessions/x/ws?token=s3cret&after=4"), None)  # fmt: skip
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /api/sessions/x/ws?token=<redacted>&after=4" [accepted]'


# -- copilot serve --------------------------------------------------------------------------------


def test_serve_refuses_other_interfaces_without_tokens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")} | {"COPILOT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "copilot.cli", "serve", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert "set COPILOT_TOKENS to listen on other interfaces" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def _host_status(app: Any, host: str) -> int:
    import httpx

    async def probe() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as client:
            return (await client.get("/healthz")).status_code

    return anyio.run(probe)


def test_without_tokens_only_loopback_host_names_are_answered(tmp_path: Path) -> None:
    """A page on another site cannot reach the local server by rebinding its DNS name to 127.0.0.1."""
    from copilot.api.app import create_app
    from copilot.settings import Settings

    local = create_app(Settings(data_dir=tmp_path / "a"))
    assert _host_status(local, "127.0.0.1:8000") == 200
    assert _host_status(local, "localhost:8000") == 200
    assert _host_status(local, "evil.example:8000") == 400
    shared = create_app(Settings(data_dir=tmp_path / "b", tokens="tok"))
    assert _host_status(shared, "copilot.internal.example") == 200
