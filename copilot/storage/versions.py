"""Immutable dataset versions: content-addressed Parquet blobs plus a record per version.

A blob is stored once under the SHA-256 of its bytes. A version record says
which blob, which parent version, and which step and tool call made it; its id
is derived from those, so the same step on the same parent always names the
same version.

Durability: each file is written under a temporary name, fsynced, renamed into
place, and its folder fsynced, all before ``add_table``/``add_file`` return. So
once a caller commits a row naming the version, neither a kill nor a power cut
can leave that row naming a missing or short blob. A blob or record already
there under its final name is checked and, if a power cut before this code left
it short, written again. A temporary file is never read; a failed write (a full
disk) removes its own, and the ones a kill left behind are swept when a store
opens, except those a live writer (another process) still holds locked.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from copilot.errors import StorageError

TEMPORARY = ".tmp-"  # the prefix of a file being written; a crash may leave one, never under a final name
PARQUET_MAGIC = b"PAR1"  # a whole Parquet file starts and ends with it


class DamagedBlob(StorageError):
    """A version's blob is missing or not a whole Parquet file (cut short on disk); its version cannot be read."""


@dataclass(frozen=True)
class Version:
    id: str
    blob: str
    parent: str | None
    step: int | None
    tool: str | None
    params: dict[str, Any] | None
    n_rows: int
    n_columns: int
    created_at: str


class VersionStore:
    """Versions under ``root``: ``blobs/<sha256>.parquet`` and ``versions/<id>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.records = self.root / "versions"
        for folder in (self.blobs, self.records):
            folder.mkdir(parents=True, exist_ok=True)
            _sweep(folder)

    def add_table(self, table: pd.DataFrame, **origin: Any) -> Version:
        """Store a DataFrame as a new version (see :meth:`add_file` for ``origin``)."""
        with _temporary(self.blobs, ".parquet") as tmp:
            table.to_parquet(tmp)
            return self.add_file(tmp, **origin)

    def add_file(
        self,
        parquet: Path,
        parent: str | None = None,
        step: int | None = None,
        tool: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Version:
        """Move ``parquet`` into the store (it is consumed) and record a version for it. On return the blob and
        the record are on disk, so the caller may commit a row that names the version."""
        blob = _sha256(parquet)
        target = self.blobs / f"{blob}.parquet"
        if _holds(target, blob, parquet.stat().st_size):
            parquet.unlink()
            _settle(target)
        else:
            _publish(parquet, target)
        meta = pq.read_metadata(target)
        call = json.dumps(
            {"parent": parent, "blob": blob, "step": step, "tool": tool, "params": params},
            sort_keys=True,
            default=str,
        )
        version = Version(
            id=hashlib.sha256(call.encode()).hexdigest()[:16], blob=blob, parent=parent, step=step, tool=tool,
            params=params, n_rows=meta.num_rows, n_columns=_n_columns(meta), created_at=_now(),
        )  # fmt: skip
        self._record(version)
        return self.get(version.id)

    def get(self, version_id: str) -> Version:
        path = self.records / f"{version_id}.json"
        if not _is_hex(version_id) or not path.exists():
            raise KeyError(f"no version {version_id!r}")
        return Version(**json.loads(path.read_text(encoding="utf-8")))

    def load(self, version_id: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(version_id))

    def path(self, version_id: str) -> Path:
        return self.blob_path(self.get(version_id).blob)

    def blob_path(self, blob: str) -> Path:
        """The blob's file, for reading. A missing one, or one without a whole Parquet frame (its magic at both
        ends, a footer that fits), raises :class:`DamagedBlob` here instead of a Parquet error deep in a reader.
        Two small reads: cheap beside reading the table, and no size needs storing."""
        path = self.blobs / f"{blob}.parquet"
        problem = _parquet_frame_problem(path)
        if problem:
            raise DamagedBlob(f"the blob {blob} of a stored version is {problem}; the versions that use it cannot be "
                              "read (restore it from a backup, or add the same table again to repair it)")  # fmt: skip
        return path

    def lineage(self, version_id: str) -> list[Version]:
        """The chain from the first version to ``version_id``, oldest first."""
        chain = [self.get(version_id)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain[::-1]

    def _record(self, version: Version) -> None:
        """Write the version's record; one already there is kept (the same step on the same parent) unless a
        power cut left it unreadable, and is then written again."""
        path = self.records / f"{version.id}.json"
        if _record_names(path, version.blob):
            _settle(path)
            return
        with _temporary(self.records, ".json") as tmp:
            with tmp.open("w", encoding="utf-8") as fh:
                json.dump(asdict(version), fh, default=str)
            _publish(tmp, path)


@contextmanager
def _temporary(folder: Path, suffix: str) -> Iterator[Path]:
    """A new, empty temporary file in ``folder``, locked (``flock``) until the block ends so that a sweep by
    another process leaves it alone; removed if the block raises."""
    while True:
        fd, name = tempfile.mkstemp(suffix=suffix, dir=folder, prefix=TEMPORARY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)  # a sweep removed it between its creation and the lock: take another name
    try:
        yield Path(name)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _sweep(folder: Path) -> None:
    """Remove the temporary files in ``folder`` that no live writer holds: what a kill left mid-write."""
    for path in folder.iterdir():
        if not path.name.startswith(TEMPORARY):
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # renamed into place or removed meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still the file we locked, not published meanwhile
                path.unlink()
        except (BlockingIOError, FileNotFoundError):
            pass  # a writer holds it, or it was published meanwhile
        finally:
            os.close(fd)


def _publish(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` durably: its bytes reach the disk, then the rename, then the folder's entry."""
    _fsync(source)
    os.replace(source, target)
    _fsync(target.parent)


def _settle(path: Path) -> None:
    """Make a file found in place durable, file and name: a writer in another process may have renamed it
    without its folder's fsync yet, or an older write never fsynced it. Cheap when it is already on disk."""
    _fsync(path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """fsync a file or a folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _holds(target: Path, blob: str, size: int) -> bool:
    """Whether ``target`` is already the whole blob: its size first, then its hash, since a file that a power
    cut left short or zero-filled must be written again."""
    try:
        return target.stat().st_size == size and _sha256(target) == blob
    except FileNotFoundError:
        return False


def _record_names(path: Path, blob: str) -> bool:
    """Whether the record file at ``path`` is whole and names ``blob``."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("blob") == blob
    except (FileNotFoundError, ValueError, AttributeError):
        return False


def _parquet_frame_problem(path: Path) -> str | None:
    """What is wrong with the file as a Parquet frame, or None: ``PAR1`` at both ends and a footer length that
    fits. A file cut short or zero-filled at its end fails this; damage inside it is for the reader to find."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "missing"
    try:
        size = os.fstat(fd).st_size
        head, tail = os.pread(fd, 4, 0), os.pread(fd, 8, max(size - 8, 0))
    finally:
        os.close(fd)
    footer = int.from_bytes(tail[:4], "little")
    if size < 12 or head != PARQUET_MAGIC or tail[4:] != PARQUET_MAGIC or footer + 12 > size:
        return f"not a whole Parquet file ({size:,} bytes; cut short or overwritten)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _n_columns(meta: pq.FileMetaData) -> int:
    pandas_meta = json.loads((meta.metadata or {}).get(b"pandas", b"{}"))
    index_names = {i for i in pandas_meta.get("index_columns", []) if isinstance(i, str)}
    return sum(1 for name in meta.schema.names if name not in index_names)


def _is_hex(value: str) -> bool:
    return len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
