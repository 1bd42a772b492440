"""The hostile suite's servers and helpers.

One ``copilot serve`` with tokens, an import folder and a 2 MiB upload cap (set in a ``.env`` file in
its working folder, which the settings read) takes every hostile request; tests that kill a server
start their own. The CLI runs in-process through its real entry point, so each bad file costs
milliseconds, not an interpreter start.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from copilot.cli import app as cli
from copilot.settings import get_settings
from copilot.storage.versions import TEMPORARY
from tests.api.conftest import Server, running_server

TOKEN, OTHER_TOKEN = "hostile-suite-token-a", "hostile-suite-token-b"
MAX_UPLOAD_MB = 2
BLOB_NAME, RECORD_NAME = re.compile(r"[0-9a-f]{64}\.parquet"), re.compile(r"[0-9a-f]{16}\.json")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("hostile")
    imports = folder / "imports"
    imports.mkdir()
    (folder / ".env").write_text(f"COPILOT_IMPORT_DIR={imports}\nCOPILOT_MAX_UPLOAD_MB={MAX_UPLOAD_MB}\n")
    with running_server(folder, tokens=f"{TOKEN},{OTHER_TOKEN}") as server:
        yield server


@pytest.fixture(scope="session")
def api(hostile: Server) -> Iterator[httpx.Client]:
    with hostile.client(TOKEN) as client:
        yield client


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Both streams with line wrapping undone, as a person reads them."""
        return " ".join((self.out + " " + self.err).split())


CliRunner = Callable[..., CliRun]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> CliRunner:
    """``copilot ARGS...`` through ``copilot.cli.app.main`` with its data directory in ``tmp_path/data``."""

    def run(*args: str) -> CliRun:
        monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setattr(sys, "argv", ["copilot", *args])
        get_settings.cache_clear()
        try:
            cli.main()
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 1
        finally:
            get_settings.cache_clear()
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_versions_intact(data_dir: Path) -> int:
    """Nothing lost, nothing half-written: every version row's blob exists and hashes to its name, every
    file in the version store is a finished blob or record, and every record names a blob that exists.
    Returns the number of version rows."""
    blobs, records = data_dir / "versions" / "blobs", data_dir / "versions" / "versions"
    with sqlite3.connect(f"file:{data_dir / 'copilot.db'}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute("SELECT session_id, id, blob FROM versions").fetchall()
    for session_id, version_id, blob in rows:
        assert (blobs / f"{blob}.parquet").is_file(), f"version {version_id} of session {session_id}: no blob {blob}"
    for path in files_under(blobs):
        if path.name.startswith(TEMPORARY):  # a write a crash cut short: never under a final name
            continue
        assert BLOB_NAME.fullmatch(path.name), f"a foreign file in the blob store: {path.name}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem, f"{path.name} does not match its hash"
    for path in files_under(records):
        if path.name.startswith(TEMPORARY):
            continue
        assert RECORD_NAME.fullmatch(path.name), f"a temporary or foreign file among the records: {path.name}"
        assert (blobs / f"{json.loads(path.read_text())['blob']}.parquet").is_file(), f"{path.name}: blob missing"
    return len(rows)
