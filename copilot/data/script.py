"""Renders a pipeline spec as a standalone ``pipeline.py`` (pandas, numpy, scikit-learn only).

The script holds the spec as a Python literal and the verbatim source of each
tool's ``reapply`` function and of :func:`copilot.data.pipeline.run_steps`, so it
behaves exactly like ``copilot apply`` without importing this project.
"""

from __future__ import annotations

import inspect
import pprint

from copilot.data.pipeline import PipelineSpec, reapply_functions, replay_rows, run_steps
from tools.registry import Registry

_HEADER = '''#!/usr/bin/env python3
"""Data-cleaning pipeline exported by datacopilot on {created}.

Source table: {source}; target: {target}; {n} step(s).

    python THIS_FILE INPUT OUTPUT            # new data: the column-level steps only
    python THIS_FILE INPUT OUTPUT --train    # the training file: also its recorded row changes

Needs only pandas, numpy and scikit-learn.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd
'''

_FOOTER = """

def read_table(path: str) -> pd.DataFrame:
    source = SPEC["source"]
    if path.endswith((".parquet", ".pq")):
        return pd.read_parquet(path).reset_index(drop=True)
    if path.endswith((".xlsx", ".xlsm")):
        return pd.read_excel(path)
    if path.endswith((".jsonl", ".ndjson", ".json")):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path, sep=source.get("sep") or ",", encoding=source.get("encoding") or "utf-8",
                       low_memory=False)


FORMULA_STARTS = ("=", "+", "-", "@", "\\t", "\\r")


def guard(value: object) -> object:
    # Text a spreadsheet would run as a formula gets a leading quote; numbers stay as they are.
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_table(table: pd.DataFrame, path: str) -> None:
    if path.endswith((".parquet", ".pq")):
        table.to_parquet(path, index=False)
        return
    safe = table.copy()
    for column in safe.select_dtypes(include=["object", "string", "category"]).columns:
        safe[column] = safe[column].astype(object).map(guard, na_action="ignore")
    safe.columns = [guard(c) for c in safe.columns]
    safe.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply the exported cleaning pipeline.")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--train", action="store_true", help="also replay the recorded row-level changes")
    args = parser.parse_args()
    table = read_table(args.input)
    table.columns = [str(c).strip() for c in table.columns]
    table = run_steps(table, SPEC, REAPPLY, args.train)
    for note in table.attrs.get("copilot_notes", []):
        print(f"warning: {note}", file=sys.stderr)
    write_table(table, args.output)


if __name__ == "__main__":
    main()
"""


def _literal(value: object) -> str:
    return pprint.pformat(value, width=110, sort_dicts=False, compact=True)


def render_script(spec: PipelineSpec, registry: Registry) -> str:
    functions = reapply_functions(spec, registry)
    parts = [
        _HEADER.format(created=spec.created_at, source=spec.source.file, target=spec.target, n=len(spec.steps)),
        "SPEC: dict[str, Any] = " + _literal(spec.model_dump(mode="json")),
    ]
    parts += ["\n\n" + inspect.getsource(fn).strip() for fn in functions.values()]
    parts += ["\n\n" + inspect.getsource(fn).strip() for fn in (replay_rows, run_steps)]
    mapping = ", ".join(f"{tool!r}: {fn.__name__}" for tool, fn in functions.items())
    parts.append(f"\n\nREAPPLY = {{{mapping}}}")
    return "\n".join(parts) + _FOOTER
