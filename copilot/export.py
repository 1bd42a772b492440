"""Writing the cleaned table and the run report."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from copilot.errors import CopilotError

OUTPUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".xlsx", ".jsonl")


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
            table.to_excel(tmp, index=False)
        elif suffix == ".jsonl":
            table.to_json(tmp, orient="records", lines=True, date_format="iso")
        else:
            table.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
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
