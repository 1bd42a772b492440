"""Reading a user's table, and telling them plainly why it cannot be read.

Every error names the file, says what is wrong and what to do about it.
Rows keep their position in the file as their index (0, 1, 2, ...): that is
the row identity that every later step, version and pipeline refers to.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from copilot.errors import InputFileError

Format = Literal["csv", "parquet", "excel", "jsonl"]
SNIFF_BYTES = 1 << 20
#: A workbook member this much larger than its compressed size is a decompression bomb, not a sheet.
MAX_ZIP_RATIO = 200
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".tab": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xlsm": "excel",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}  # fmt: skip
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx file is one)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xd0\xcf\x11\xe0", "an old binary Excel (.xls) or Office file"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


@dataclass(frozen=True)
class SourceFormat:
    """How a file was read, so the same file can be read again the same way."""

    kind: Format
    sep: str | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class LoadedTable:
    table: pd.DataFrame
    source: SourceFormat
    path: Path


def load_table(path: str | Path, max_file_mb: float = 500.0) -> LoadedTable:
    """Read a CSV/TSV, Parquet, Excel or JSON-lines file into a DataFrame."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputFileError(f"{name}: no such file ({path}). Check the path and try again.")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{name}: the file is empty (0 bytes). Export the table again.")
    if size > max_file_mb * 1024 * 1024:
        raise InputFileError(
            f"{name}: the file is {size / 2**20:.0f} MiB, over the limit of {max_file_mb:.0f} MiB. "
            "Sample or split it, or raise COPILOT_MAX_FILE_MB."
        )
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputFileError(
            f"{name}: unknown file type {path.suffix or '(no extension)'!r}. Use .csv, .tsv, .parquet, .xlsx or .jsonl."
        )
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    _check_magic(name, kind, head)
    if kind == "excel":
        _check_workbook_size(path, max_file_mb)
    reader = {"csv": _read_csv, "parquet": _read_parquet, "excel": _read_excel, "jsonl": _read_jsonl}[kind]
    table, source = reader(path, head)
    return LoadedTable(_normalise(name, table), source, path)


def _check_magic(name: str, kind: Format, head: bytes) -> None:
    expected = {"parquet": b"PAR1", "excel": b"PK\x03\x04"}.get(kind)
    if expected is not None:
        if not head.startswith(expected):
            raise InputFileError(f"{name}: this is not a valid {kind} file ({_describe(head)}).")
        return
    found = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    if found is not None:
        raise InputFileError(
            f"{name}: the file is {found}, not text. Save it with the right extension "
            "(.parquet, .xlsx) or export it as CSV."
        )
    if b"\x00" in head[:8192] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputFileError(
            f"{name}: the file contains binary data, not text (or UTF-16 text without a byte-order mark). "
            "Export the table as CSV in UTF-8."
        )


def _check_workbook_size(path: Path, max_file_mb: float) -> None:
    """Refuse a workbook that would expand past the file-size limit, or that is a decompression bomb.

    Python's ``zipfile`` never inflates a member past the size its header declares, so checking the
    declared sizes is enough."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(
            f"{path.name}: the Excel workbook cannot be read ({exc}). "
            "Save it again as .xlsx or export the sheet as CSV."
        ) from None
    expanded = sum(m.file_size for m in members)
    bomb = any(m.file_size > SNIFF_BYTES and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1) for m in members)
    if bomb or expanded > max_file_mb * 1024 * 1024:
        why = "a decompression bomb" if bomb else f"over the limit of {max_file_mb:g} MiB"
        raise InputFileError(
            f"{path.name}: the workbook would expand to {expanded / 2**20:,.0f} MiB ({why}), so it was not opened. "
            "Export the sheet as CSV or Parquet."
        )


def _describe(head: bytes) -> str:
    found = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    return f"it looks like {found}" if found else "its content does not match the extension"


def sniff_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode, UTF-16 with a BOM, else cp1252, else latin-1."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(sample: str, suffix: str) -> str:
    if suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        counts = Counter({d: lines[0].count(d) for d in ",;\t|"}) if lines else Counter()
        best, n = counts.most_common(1)[0] if counts else (",", 0)
        return best if n else ","


def _read_csv(path: Path, head: bytes) -> tuple[pd.DataFrame, SourceFormat]:
    name = path.name
    encoding = sniff_encoding(head)
    text = head.decode(encoding, errors="ignore")
    if not text.strip():
        raise InputFileError(f"{name}: the file has only blank lines. Export the table again.")
    if len(head) == SNIFF_BYTES and not any(mark in text for mark in "\r\n"):
        raise InputFileError(
            f"{name}: the first line is longer than {SNIFF_BYTES // 2**20} MiB with no line break, so this is not "
            "a table of one row per line. Check that the file was exported with line breaks."
        )
    sep = sniff_delimiter(text, path.suffix)
    _check_header(name, text, sep)
    try:
        table = pd.read_csv(path, sep=sep, encoding=encoding, engine="c", low_memory=False)
    except pd.errors.ParserError as exc:
        raise InputFileError(
            f"{name}: rows do not line up with the header ({_parser_detail(exc)}). "
            "Fix or remove the broken lines, or quote cells that contain the delimiter."
        ) from None
    except UnicodeDecodeError:
        table = pd.read_csv(path, sep=sep, encoding="latin-1", engine="c", low_memory=False)
        encoding = "latin-1"
    except pd.errors.EmptyDataError:
        raise InputFileError(f"{name}: no columns found. Is this a table with a header row?") from None
    return table, SourceFormat("csv", sep=sep, encoding=encoding)


def _check_header(name: str, text: str, sep: str) -> None:
    header = next(csv.reader(io.StringIO(text.splitlines()[0]), delimiter=sep))
    blank = [i + 1 for i, col in enumerate(header) if not col.strip()]
    if blank and len(header) > 1:
        raise InputFileError(f"{name}: column {blank[0]} of the header has no name. Give every column a name.")
    seen = [col for col, n in Counter(c.strip() for c in header).items() if n > 1]
    if seen:
        raise InputFileError(
            f"{name}: the header names {', '.join(map(repr, seen))} more than once. Give each column a unique name."
        )


def _parser_detail(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()[-1]
    return msg.replace("Error tokenizing data. C error: ", "").rstrip(".")


def _read_parquet(path: Path, head: bytes) -> tuple[pd.DataFrame, SourceFormat]:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise InputFileError(
            f"{path.name}: the Parquet file cannot be read ({exc}). Write it again or export it as CSV."
        ) from None
    return table.reset_index(drop=True), SourceFormat("parquet")


def _read_excel(path: Path, head: bytes) -> tuple[pd.DataFrame, SourceFormat]:
    try:
        table = pd.read_excel(path, sheet_name=0, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types for a corrupt workbook
        raise InputFileError(
            f"{path.name}: the Excel workbook cannot be read ({exc}). "
            "Save it again as .xlsx or export the sheet as CSV."
        ) from None
    return table, SourceFormat("excel")


def _read_jsonl(path: Path, head: bytes) -> tuple[pd.DataFrame, SourceFormat]:
    try:
        table = pd.read_json(path, lines=True, encoding=sniff_encoding(head))
    except ValueError as exc:
        raise InputFileError(
            f"{path.name}: not valid JSON lines ({exc}). Each line must be one JSON object with the same keys."
        ) from None
    return table, SourceFormat("jsonl", encoding="utf-8")


def _normalise(name: str, table: pd.DataFrame) -> pd.DataFrame:
    if table.shape[1] == 0:
        raise InputFileError(f"{name}: no columns found. Is this a table with a header row?")
    if len(table) == 0:
        raise InputFileError(
            f"{name}: the file has a header ({', '.join(map(str, table.columns[:8]))}) but no rows of data. "
            "Export the table again with its rows."
        )
    table.columns = [str(c).strip() for c in table.columns]
    dupes = sorted(name for name, n in Counter(table.columns).items() if n > 1)
    if dupes:
        raise InputFileError(
            f"{name}: the column names {', '.join(map(repr, dupes))} appear more than once. "
            "Give each column a unique name."
        )
    return table.reset_index(drop=True)
