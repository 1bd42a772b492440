"""Versions are immutable, content-addressed and keep their lineage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from copilot.storage.versions import TEMPORARY, VersionStore


def test_versions_record_lineage_and_never_overwrite(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    first = store.add_table(pd.DataFrame({"a": [1, 2, 3]}))
    blob_bytes = store.path(first.id).read_bytes()
    second = store.add_table(pd.DataFrame({"a": [1, 2]}, index=[0, 2]), parent=first.id, step="drop", tool="drop_rows",
                             params={"x": 1})  # fmt: skip
    assert second.parent == first.id and second.tool == "drop_rows" and second.n_rows == 2
    assert [v.id for v in store.lineage(second.id)] == [first.id, second.id]
    assert store.load(second.id).index.tolist() == [0, 2]  # rows keep their identity
    assert store.path(first.id).read_bytes() == blob_bytes


def test_same_content_shares_one_blob(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    a = store.add_table(pd.DataFrame({"a": [1.0, 2.0]}))
    b = store.add_table(pd.DataFrame({"a": [1.0, 2.0]}), parent=a.id, step="noop", tool="impute")
    assert a.blob == b.blob and a.id != b.id
    assert len(list((tmp_path / "blobs").glob("*.parquet"))) == 1
    again = store.add_table(pd.DataFrame({"a": [1.0, 2.0]}), parent=a.id, step="noop", tool="impute")
    assert again == b  # the same step on the same parent names the same version
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TEMPORARY)]  # temporary files do not linger


def test_unknown_and_malicious_ids_are_rejected(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    for bad in ("0123456789abcdef", "../../etc/passwd", "x" * 16):
        with pytest.raises(KeyError):
            store.get(bad)


def test_opening_a_store_sweeps_temporary_files_a_kill_left(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    kept = store.add_table(pd.DataFrame({"a": [1, 2]}))
    stale = [store.blobs / f"{TEMPORARY}cut.parquet", store.records / f"{TEMPORARY}cut.json"]
    for path in stale:
        path.write_bytes(b"half a write")
    VersionStore(tmp_path)
    assert not any(p.exists() for p in stale)
    assert store.load(kept.id).equals(pd.DataFrame({"a": [1, 2]}))


def test_opening_a_store_leaves_the_temporary_file_of_a_live_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a ``copilot clean`` beside a server) opens the same store while a version is written."""
    store = VersionStore(tmp_path)
    write = pd.DataFrame.to_parquet

    def write_then_open_another(table: pd.DataFrame, path: Path, *args: object, **kwargs: object) -> None:
        write(table, path, *args, **kwargs)
        VersionStore(tmp_path)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", write_then_open_another)
    version = store.add_table(pd.DataFrame({"a": [1, 2]}))
    assert store.load(version.id).equals(pd.DataFrame({"a": [1, 2]}))
