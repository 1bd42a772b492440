"""Hostile and broken input files, generated in memory: what a user might upload by mistake or on purpose.

``REFUSED`` files must be turned down with a message that names the file (and the column, where one is
at fault) and says what to do; ``ACCEPTED`` files are awkward but valid, and must be read correctly.
"""

from __future__ import annotations

import codecs
import gzip
import io
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

TARGET = "outcome"
ROWS = 30


def base_table(rows: int = ROWS) -> pd.DataFrame:
    """A small valid table: two features, a city, a binary target."""
    return pd.DataFrame(
        {
            "age": [20 + (i * 7) % 50 for i in range(rows)],
            "weight": [round(60 + (i * 3.7) % 30, 1) for i in range(rows)],
            "city": [["Leeds", "York", "Hull"][i % 3] for i in range(rows)],
            TARGET: ["yes" if (i * 5) % 3 else "no" for i in range(rows)],
        }
    )


def csv_text(frame: pd.DataFrame | None = None) -> str:
    return (base_table() if frame is None else frame).to_csv(index=False)


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    base_table().to_parquet(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    base_table().to_excel(buffer, index=False)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """A ZIP posing as a workbook whose one sheet inflates to 64 MiB (about 1000 times its stored size)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (64 * 2**20))
    return buffer.getvalue()


def binary_noise() -> bytes:
    rng = random.Random(7)
    return bytes(rng.randrange(256) for _ in range(4096)) + b"\x00" * 16


def with_column(name: str, values: list[object]) -> str:
    frame = base_table()
    frame[name] = values
    return csv_text(frame)


def wide_table(columns: int = 10_000, rows: int = 12) -> str:
    header = ",".join([*(f"f{j}" for j in range(columns)), TARGET])
    body = "".join(",".join(["1"] * columns + ["yes" if i % 2 else "no"]) + "\n" for i in range(rows))
    return header + "\n" + body


def mixed_newlines() -> bytes:
    lines = csv_text().splitlines()
    ends = ["\r\n", "\n", "\r"]
    return "".join(line + ends[i % 3] for i, line in enumerate(lines)).encode()


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "-2+3", "@cmd", "=1+1", "-3.5"]


@dataclass(frozen=True)
class BadFile:
    name: str
    make: Callable[[], bytes]
    words: str  # what the message must say (besides the file name)
    target: str = TARGET


def _text(text: str) -> Callable[[], bytes]:
    return lambda: text.encode()


REFUSED: tuple[BadFile, ...] = (
    BadFile("empty.csv", lambda: b"", "the file is empty"),
    BadFile("blank_lines.csv", _text("\n  \n\t\n"), "only blank lines"),
    BadFile("header_only.csv", _text("age,weight,city,outcome\n"), "no rows of data"),
    BadFile("noise.csv", binary_noise, "binary data"),
    BadFile("picture.csv", lambda: b"\x89PNG\r\n\x1a\n" + binary_noise(), "a PNG image"),
    BadFile("report.csv", lambda: b"%PDF-1.7\n" + binary_noise(), "a PDF document"),
    BadFile("packed.csv", lambda: gzip.compress(csv_text().encode()), "gzip-compressed"),
    BadFile("parquet_inside.csv", parquet_bytes, "a Parquet file, not text"),
    BadFile("workbook_inside.csv", xlsx_bytes, "a ZIP archive"),
    BadFile("text_inside.parquet", _text(csv_text()), "not a valid parquet file"),
    BadFile("text_inside.xlsx", _text(csv_text()), "not a valid excel file"),
    BadFile("text_inside.jsonl", _text(csv_text()), "not valid JSON lines"),
    BadFile("truncated.parquet", lambda: parquet_bytes()[:400], "the Parquet file cannot be read"),
    BadFile("corrupt.xlsx", lambda: b"PK\x03\x04" + binary_noise(), "the Excel workbook cannot be read"),
    BadFile("zip_bomb.xlsx", zip_bomb, "decompression bomb"),
    BadFile("table.doc", _text(csv_text()), "unknown file type '.doc'"),
    BadFile("one_enormous_line.csv", lambda: b"x," * 600_000, "no line break"),
    BadFile("ragged.csv", _text(csv_text() + "1,2,York,yes,surplus,cells\n"), "Expected 4 fields in line 32, saw 6"),
    BadFile("unclosed_quote.csv", _text(csv_text() + '1,2,"York,yes\n' + csv_text()), "EOF inside string"),
    BadFile("blank_column_name.csv", _text(csv_text().replace("weight", "", 1)), "column 2 of the header has no name"),
    BadFile("duplicate_columns.csv", _text(csv_text().replace("weight", "age", 1)), "'age' more than once"),
    BadFile("duplicate_after_trim.csv", _text(csv_text().replace("weight", " age ", 1)), "'age' more than once"),
    BadFile("utf16_without_bom.csv", lambda: csv_text().encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    BadFile("target_all_missing.csv", _text(with_column(TARGET, [None] * ROWS)), "'outcome' has no values"),
    BadFile("single_class.csv", _text(with_column(TARGET, ["yes"] * ROWS)), "'outcome' has a single class"),
    BadFile("one_row.csv", _text(csv_text(base_table(1))), "only 1 row has a value in 'outcome'"),
    BadFile("ten_thousand_columns.csv", _text(wide_table()), "10,001 columns is over the limit"),
    BadFile("no_features.csv", _text(csv_text(base_table()[[TARGET]])), "no feature columns"),
    BadFile("wrong_target.csv", _text(csv_text()), "there is no column 'Outcome'. Did you mean 'outcome'?",
            target="Outcome"),
)  # fmt: skip


@dataclass(frozen=True)
class AwkwardFile:
    """A valid file in an awkward form; ``check`` inspects the table as it was read."""

    name: str
    make: Callable[[], bytes]
    check: Callable[[pd.DataFrame], bool]


ACCEPTED: tuple[AwkwardFile, ...] = (
    AwkwardFile("utf8_bom.csv", lambda: codecs.BOM_UTF8 + csv_text().encode(), lambda t: t.columns[0] == "age"),
    AwkwardFile("cp1252.csv", lambda: with_column("city", ["Zürich €"] * ROWS).encode("cp1252"),
                lambda t: set(t["city"]) == {"Zürich €"}),
    AwkwardFile("excel_unicode_text.txt", lambda: csv_text().replace(",", "\t").encode("utf-16"),
                lambda t: list(t.columns) == ["age", "weight", "city", TARGET]),
    AwkwardFile("mixed_newlines.csv", mixed_newlines, lambda t: len(t) == ROWS and t["age"].dtype.kind == "i"),
    AwkwardFile("formulas.csv", lambda: with_column("note", (FORMULAS * ROWS)[:ROWS]).encode(),
                lambda t: t["note"].iloc[0] == FORMULAS[0]),
)  # fmt: skip
