"""Immutable dataset versions: content-addressed Parquet blobs plus a record per version.

A blob is stored once under the SHA-256 of its bytes and never rewritten. A
version record says which blob, which parent version, and which step and tool
call made it; its id is derived from those, so the same step on the same parent
always names the same version. Files are written to a temporary name and moved
into place, so a crash never leaves a half-written version behind; a failed write (a full disk)
removes its temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

TEMPORARY = ".tmp-"  # the prefix of a file being written; a crash may leave one, never under a final name


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

    def add_table(self, table: pd.DataFrame, **origin: Any) -> Version:
        """Store a DataFrame as a new version (see :meth:`add_file` for ``origin``)."""
        fd, tmp = tempfile.mkstemp(suffix=".parquet", dir=self.blobs, prefix=TEMPORARY)
        os.close(fd)
        try:
            table.to_parquet(tmp)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.add_file(Path(tmp), **origin)

    def add_file(
        self,
        parquet: Path,
        parent: str | None = None,
        step: int | None = None,
        tool: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Version:
        """Move ``parquet`` into the store (it is consumed) and record a version for it."""
        blob = _sha256(parquet)
        target = self.blob_path(blob)
        if target.exists():
            parquet.unlink()
        else:
            os.replace(parquet, target)
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
        return self.blobs / f"{blob}.parquet"

    def lineage(self, version_id: str) -> list[Version]:
        """The chain from the first version to ``version_id``, oldest first."""
        chain = [self.get(version_id)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain[::-1]

    def _record(self, version: Version) -> None:
        path = self.records / f"{version.id}.json"
        if path.exists():
            return  # the same step on the same parent: the record is already there, never rewritten
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=self.records, prefix=TEMPORARY)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(version), fh, default=str)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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
