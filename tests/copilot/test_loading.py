"""Reading tables: formats, encodings, delimiters, and a clear message for each bad file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from copilot.data.loading import load_table
from copilot.data.validation import check_table
from copilot.errors import InputFileError, TableError

ROWS = "id,age,city,outcome\n" + "".join(f"{i},{20 + i},Köln,{'yes' if i % 2 else 'no'}\n" for i in range(30))


def _write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("name", "data", "encoding", "sep"),
    [
        ("plain.csv", ROWS, "utf-8", ","),
        ("bom.csv", "\ufeff" + ROWS, "utf-8-sig", ","),
        ("latin.csv", ROWS, "cp1252", ","),
        ("semi.csv", ROWS.replace(",", ";"), "utf-8", ";"),
        ("tabs.tsv", ROWS.replace(",", "\t"), "utf-8", "\t"),
        ("tabs.txt", ROWS.replace(",", "\t"), "utf-8", "\t"),
    ],
)
def test_csv_dialects_and_encodings(tmp_path: Path, name: str, data: str, encoding: str, sep: str) -> None:
    path = _write(tmp_path, name, data.encode("cp1252" if encoding == "cp1252" else "utf-8"))
    loaded = load_table(path)
    assert list(loaded.table.columns) == ["id", "age", "city", "outcome"]  # BOM not glued to the first name
    assert loaded.table["city"].iloc[0] == "Köln"
    assert len(loaded.table) == 30
    assert (loaded.source.sep, loaded.source.encoding) == (sep, encoding)
    assert list(loaded.table.index) == list(range(30))


def test_other_formats_round_trip(tmp_path: Path) -> None:
    frame = pd.read_csv(_write(tmp_path, "a.csv", ROWS))
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_excel(tmp_path / "a.xlsx", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    for name in ("a.parquet", "a.xlsx", "a.jsonl"):
        loaded = load_table(tmp_path / name)
        pd.testing.assert_frame_equal(loaded.table, frame, check_dtype=False)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", b"a,b,outcome\n", "has a header (a, b, outcome) but no rows"),
        ("blank.csv", b"\n\n  \n", "only blank lines"),
        ("binary.csv", bytes(range(256)) * 10, "binary data"),
        ("parquet_inside.csv", b"PAR1" + b"\x00" * 100, "is a Parquet file, not text"),
        ("zip.csv", b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
        ("fake.parquet", b"a,b\n1,2\n", "not a valid parquet file"),
        ("fake.xlsx", b"a,b\n1,2\n", "not a valid excel file"),
        ("ragged.csv", b"a,b,c\n1,2,3\n4,5,6,7,8\n", "rows do not line up with the header"),
        ("dupes.csv", b"a,b,a\n1,2,3\n", "'a' more than once"),
        ("noname.csv", b"a,,c\n1,2,3\n", "column 2 of the header has no name"),
        ("table.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 50, "unknown file type '.xls'"),
        ("bad.jsonl", b'{"a": 1}\nnot json\n', "not valid JSON lines"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    with pytest.raises(InputFileError) as info:
        load_table(_write(tmp_path, name, data))
    assert name in str(info.value)
    assert words in str(info.value)


def test_missing_file_and_size_limit(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_table(tmp_path / "nope.csv")
    big = _write(tmp_path, "big.csv", ROWS * 50)
    with pytest.raises(InputFileError, match="over the limit of 0 MiB"):
        load_table(big, max_file_mb=0.001)


def _table() -> pd.DataFrame:
    return pd.DataFrame({"id": range(30), "age": range(30), "outcome": ["a", "b"] * 15})


def test_target_checks_name_the_problem() -> None:
    with pytest.raises(TableError, match=r"no column 'Outcome'\. Did you mean 'outcome'\?.*'id', 'age'"):
        check_table(_table(), "t.csv", "Outcome", [])
    with pytest.raises(TableError, match="Did you mean 'outcome'"):
        check_table(_table(), "t.csv", "outcme", [])
    all_missing = _table().assign(outcome=None)
    with pytest.raises(TableError, match="every cell is missing"):
        check_table(all_missing, "t.csv", "outcome", [])
    with pytest.raises(TableError, match="single class"):
        check_table(_table().assign(outcome="a"), "t.csv", "outcome", [])
    with pytest.raises(TableError, match="only 5 rows"):
        check_table(_table().head(5), "t.csv", "outcome", [])
    with pytest.raises(TableError, match="no feature columns"):
        check_table(_table()[["id", "outcome"]], "t.csv", "outcome", ["id"])
    with pytest.raises(TableError, match="over the limit"):
        check_table(_table(), "t.csv", "outcome", [], max_rows=10)


def test_task_is_inferred() -> None:
    assert check_table(_table(), "t.csv", "outcome", []) == "classification"
    regression = _table().assign(outcome=[i * 1.37 for i in range(30)])
    assert check_table(regression, "t.csv", "outcome", []) == "regression"
