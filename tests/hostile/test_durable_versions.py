"""A kill at each point of a version's write, then the worst power cut at that moment: no version row names a
missing or short blob, no record is half-written under its final name, and leftover temporary files are swept.

A forked child writes one version through the real ``VersionStore`` and commits its row in the real store
(SQLite, migrated), as the engine does: ``add_table`` for a session's first version, ``add_file`` for a step's
output. Every call that makes a write durable (``os.fsync``, ``os.replace``, the commit) is a point; the child
logs each one it finishes and SIGKILLs itself just before the chosen one. The parent checks the folder as the
kill left it, then cuts the power on it as the log allows: bytes never fsynced are cut short, and a rename whose
folder was not fsynced after it is lost. The database keeps what it committed (``synchronous=FULL``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from copilot.storage.store import SessionRow, Store, VersionRow
from copilot.storage.versions import TEMPORARY, DamagedBlob, VersionStore
from tests.hostile.conftest import assert_versions_intact, files_under

SESSION = "s" * 32
POINTS = {  # the point a kill lands just before -> its 1-based place among the durable calls
    "blob written, not fsynced": 1,
    "blob fsynced, not renamed": 2,
    "blob renamed, folder not fsynced": 3,
    "record written, not fsynced": 4,
    "record fsynced, not renamed": 5,
    "record renamed, folder not fsynced": 6,
    "all fsynced, row not committed": 7,
    "row committed": 8,
}
CALLS = ["fsync", "replace", "fsync", "fsync", "replace", "fsync", "commit", "done"]  # a whole write, in order
NEVER = 0


def _table() -> pd.DataFrame:
    return pd.DataFrame({"a": range(500), "b": [f"row {i}" for i in range(500)]})


def _data_dir(tmp_path: Path) -> Path:
    """A migrated store with one session, as ``create_session`` leaves it just before its first version."""
    data = tmp_path / "data"
    data.mkdir()
    store = Store(f"sqlite:///{data / 'copilot.db'}")
    store.migrate()
    with store.transaction() as db:
        db.add(SessionRow(id=SESSION, owner="o", state="created", target="a", task="regression", policy="always",
                          source="t.csv", source_format={}, id_columns=[], guidance={}, version=""))  # fmt: skip
    store.engine.dispose()
    return data


def _nothing(call: str) -> None:
    pass


def _write(data: Path, entry: str, reach: Callable[[str], None] = _nothing) -> None:
    """Write the version and commit its row; ``reach`` is told of the commit just before it and just after."""
    versions = VersionStore(data / "versions")
    if entry == "add_table":
        made = versions.add_table(_table())
    else:  # a step: the sandbox left its table in its own folder
        out = data / "sandbox" / "out.parquet"
        out.parent.mkdir(exist_ok=True)
        _table().to_parquet(out)
        made = versions.add_file(out, parent=None, step=1, tool="impute", params={})
    store = Store(f"sqlite:///{data / 'copilot.db'}")
    with store.transaction() as db:
        if db.get(VersionRow, (SESSION, made.id)) is None:
            db.add(VersionRow(session_id=SESSION, id=made.id, blob=made.blob, n_rows=made.n_rows,
                              n_columns=made.n_columns, profile={}))  # fmt: skip
        reach("commit")
    reach("done")


def _child(data: Path, entry: str, kill_at: int, log: Path, durable: bool) -> None:
    """Forked: write one version, logging each durable call it finishes; SIGKILLed just before call ``kill_at``.
    With ``durable`` false its fsyncs do nothing, as a write without them would."""
    journal = log.open("a", buffering=1)
    real_fsync, real_replace = os.fsync, os.replace
    calls = 0

    def before() -> None:
        nonlocal calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def done(call: str, **what: Any) -> None:
        journal.write(json.dumps({"call": call, **what}) + "\n")

    def fsync(fd: Any) -> None:
        before()
        if durable:
            real_fsync(fd)
            done("fsync", inode=os.fstat(fd).st_ino)

    def replace(src: Any, dst: Any) -> None:
        before()
        inode = os.stat(src).st_ino
        real_replace(src, dst)
        done("replace", inode=inode, dst=str(dst))

    def reach(call: str) -> None:
        before()
        done(call)

    os.fsync, os.replace = fsync, replace
    _write(data, entry, reach)


def _run_child(data: Path, entry: str, kill_at: int, durable: bool = True) -> list[dict[str, Any]]:
    """The durable calls the child finished before its kill (all of them with ``kill_at`` NEVER)."""
    log = data.parent / "calls.jsonl"
    child = multiprocessing.get_context("fork").Process(target=_child, args=(data, entry, kill_at, log, durable))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == (-signal.SIGKILL if kill_at != NEVER else 0), child.exitcode
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _power_cut(versions: Path, calls: list[dict[str, Any]]) -> None:
    """Leave ``versions`` as the worst power cut after ``calls`` could: a name not made durable by a folder fsync
    after its rename is lost, and bytes never fsynced are cut to half."""
    synced = {c["inode"] for c in calls if c["call"] == "fsync"}
    for folder in (versions / "blobs", versions / "versions"):
        folder_synced = _last(calls, "fsync", "inode", folder.stat().st_ino)
        for path in files_under(folder):
            renamed = _last(calls, "replace", "dst", str(path))
            if renamed < 0 or folder_synced < renamed:
                path.unlink()
            elif path.stat().st_ino not in synced:
                os.truncate(path, path.stat().st_size // 2)


def _last(calls: list[dict[str, Any]], call: str, key: str, value: object) -> int:
    """The place of the last ``call`` whose ``key`` is ``value``; -1 if none."""
    return max((i for i, c in enumerate(calls) if c["call"] == call and c[key] == value), default=-1)


def _rows(data: Path) -> int:
    with Store(f"sqlite:///{data / 'copilot.db'}").transaction() as db:
        return len(db.query(VersionRow).all())


def _temporaries(versions: Path) -> list[Path]:
    return [p for p in files_under(versions) if p.name.startswith(TEMPORARY)]


@pytest.mark.parametrize("entry", ["add_table", "add_file"])
def test_a_whole_write_makes_each_file_durable_before_the_row_commits(tmp_path: Path, entry: str) -> None:
    calls = _run_child(_data_dir(tmp_path), entry, NEVER)
    assert [c["call"] for c in calls] == CALLS
    versions = tmp_path / "data" / "versions"
    blob, record = (next((versions / sub).iterdir()) for sub in ("blobs", "versions"))
    fsynced = [c["inode"] for c in calls if c["call"] == "fsync"]
    assert fsynced == [blob.stat().st_ino, blob.parent.stat().st_ino, record.stat().st_ino,
                       record.parent.stat().st_ino]  # fmt: skip
    assert [c["dst"] for c in calls if c["call"] == "replace"] == [str(blob), str(record)]


@pytest.mark.parametrize("entry", ["add_table", "add_file"])
@pytest.mark.parametrize("point", POINTS)
def test_a_kill_then_a_power_cut_at_each_point_leave_no_row_naming_a_missing_or_short_blob(
    tmp_path: Path, point: str, entry: str
) -> None:
    data = _data_dir(tmp_path)
    versions = data / "versions"
    calls = _run_child(data, entry, POINTS[point])
    committed = POINTS[point] > CALLS.index("commit") + 1
    assert _rows(data) == int(committed)
    assert assert_versions_intact(data) == int(committed)  # as the kill left it
    _power_cut(versions, calls)
    assert assert_versions_intact(data) == int(committed)  # after the worst power cut at that moment
    store = VersionStore(versions)  # a restart: stale temporary files are swept, none is ever read
    assert _temporaries(versions) == []
    with Store(f"sqlite:///{data / 'copilot.db'}").transaction() as db:
        for row in db.query(VersionRow):
            assert hashlib.sha256(store.blob_path(row.blob).read_bytes()).hexdigest() == row.blob
    _write(data, entry)  # the step runs again after the restart, and its version is whole
    assert assert_versions_intact(data) == 1 and _temporaries(versions) == []


def test_the_power_cut_finds_a_write_that_skips_its_fsyncs(tmp_path: Path) -> None:
    """Without the fsyncs, a committed row names a blob that a power cut loses: the check above has teeth."""
    data = _data_dir(tmp_path)
    calls = _run_child(data, "add_table", NEVER, durable=False)
    assert assert_versions_intact(data) == 1
    _power_cut(data / "versions", calls)
    with pytest.raises(AssertionError, match="no blob"):
        assert_versions_intact(data)


def _short(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _zero_tail(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.seek(-100, os.SEEK_END)
        fh.write(bytes(100))


@pytest.mark.parametrize("damage", [_short, _zero_tail], ids=["cut short", "zero-filled tail"])
def test_a_damaged_blob_is_refused_for_reading_and_repaired_by_adding_it_again(tmp_path: Path, damage: Any) -> None:
    """What a power cut before an fsync could leave (these writes fsync, older ones did not)."""
    store = VersionStore(tmp_path)
    version = store.add_table(_table())
    damage(store.blob_path(version.blob))
    with pytest.raises(DamagedBlob, match=f"blob {version.blob} .* not a whole Parquet file"):
        store.blob_path(version.blob)
    with pytest.raises(DamagedBlob):
        store.load(version.id)
    assert store.add_table(_table()) == version
    assert hashlib.sha256(store.blob_path(version.blob).read_bytes()).hexdigest() == version.blob
    assert store.load(version.id).equals(_table())


def test_a_missing_blob_is_refused_for_reading(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    version = store.add_table(_table())
    store.blob_path(version.blob).unlink()
    with pytest.raises(DamagedBlob, match="missing"):
        store.path(version.id)


def test_a_short_record_is_written_again(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    version = store.add_table(_table(), parent=None, step=2, tool="impute")
    _short(store.records / f"{version.id}.json")
    assert store.add_table(_table(), parent=None, step=2, tool="impute").id == version.id
    assert store.get(version.id).blob == version.blob
