"""Writing the cleaned table and the run report.

Text written for spreadsheets (CSV, TSV, Excel) is guarded against formula injection, as OWASP
advises: a text cell (or column name) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading single quote, so Excel, LibreOffice and Google Sheets show it as text instead of
running it. Numbers (``-3.5``, also when stored as text) are left alone; Parquet and JSON lines are
written unchanged, since no spreadsheet evaluates them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from copilot.errors import CopilotError

OUTPUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".xlsx", ".jsonl")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_formula(value: object) -> object:
    """``=HYPERLINK(...)`` → ``'=HYPERLINK(...)``; anything that is not such text comes back unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def guard_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells and column names cannot run as spreadsheet formulas."""
    guarded = table.copy()
    for position, dtype in enumerate(guarded.dtypes):
        column = guarded.iloc[:, position]
        if isinstance(dtype, pd.CategoricalDtype):
            column = column.astype(object)
        if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
            guarded.isetitem(position, column.map(neutralise_formula, na_action="ignore"))
    guarded.columns = [neutralise_formula(c) for c in guarded.columns]
    return guarded


def check_output_path(path: Path) -> None:
    """Fail before any work when the output cannot be written."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CopilotError(
            f"{path.name}: cannot write {path.suffix or 'a file without extension'}; "
            f"use one of {', '.join(OUTPUT_SUFFIXES)}."
        )
    if not path.parent.is_dir():
        raise CopilotError(f"{path}: the folder {path.parent} does not exist.")


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write by suffix, through a temporary file, so a failure leaves no half-written output."""
    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=path.parent, prefix=f".{path.stem}-")
    os.close(fd)
    try:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        elif suffix == ".xlsx":
            guard_formulas(table).to_excel(tmp, index=False)
        elif suffix == ".jsonl":
            table.to_json(tmp, orient="records", lines=True, date_format="iso")
        else:
            guard_formulas(table).to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(payload: dict[str, Any], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent, prefix=f".{path.stem}-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, default=str)
    os.replace(tmp, path)


def pipeline_path_for(output: Path) -> Path:
    """``clean.csv`` → ``clean.pipeline.json``."""
    return output.with_suffix(".pipeline.json")


@dataclass(frozen=True)
class CleanPaths:
    """The files a ``copilot clean`` run writes, local or remote."""

    output: Path
    pipeline: Path
    script: Path
    report: Path | None

    @classmethod
    def for_output(cls, output: Path, report: Path | None) -> CleanPaths:
        return cls(output, pipeline_path_for(output), output.with_suffix(".pipeline.py"), report)
