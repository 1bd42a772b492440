"""The approved steps as a pipeline spec (``pipeline.json``): re-applied to new data by
``copilot apply``, and rendered as a standalone ``pipeline.py``.

Column-level steps carry their ``fitted`` state and are re-applied by the tool's
``reapply`` function. Row-level, train-only steps (dropping outliers, fixing
labels, de-duplicating) carry the exact row changes they made; they reproduce
the cleaning of the training file but are never applied to new data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, ValidationError

from copilot.data.loading import SourceFormat
from copilot.errors import PipelineError
from tools.base import ReapplyFn
from tools.registry import Registry

FORMAT = "datacopilot.pipeline/1"


class RowChanges(BaseModel):
    """What a train-only step did to the training rows, by row index."""

    dropped: list[int] = Field(default_factory=list)
    cells: list[tuple[int, str, Any]] = Field(default_factory=list)


class PipelineStep(BaseModel):
    tool: str
    params: dict[str, Any]
    summary: str
    train_only: bool
    fitted: dict[str, Any] | None = None
    row_changes: RowChanges | None = None


class Source(BaseModel):
    file: str
    kind: str
    sep: str | None = None
    encoding: str | None = None


class PipelineSpec(BaseModel):
    format: Literal["datacopilot.pipeline/1"] = FORMAT
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: Source
    target: str
    id_columns: list[str]
    steps: list[PipelineStep]
    columns: list[str] = Field(description="The columns of the cleaned table, in order.")

    @classmethod
    def read(cls, path: Path) -> PipelineSpec:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except FileNotFoundError:
            raise PipelineError(f"{Path(path).name}: no such pipeline file.") from None
        except ValidationError as exc:
            raise PipelineError(
                f"{Path(path).name}: not a valid pipeline spec ({exc.errors()[0]['msg']} at "
                f"{'.'.join(map(str, exc.errors()[0]['loc']))})."
            ) from None

    def write(self, path: Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2), encoding="utf-8")


def source_of(name: str, fmt: SourceFormat) -> Source:
    return Source(file=name, kind=fmt.kind, sep=fmt.sep, encoding=fmt.encoding)


def row_changes(before: pd.DataFrame, after: pd.DataFrame) -> RowChanges:
    """The rows dropped and cells changed between two versions of the same rows."""
    dropped = [int(i) for i in before.index.difference(after.index)]
    common = [c for c in after.columns if c in before.columns]
    old = before.loc[after.index, common]
    new = after[common]
    cells: list[tuple[int, str, Any]] = []
    for col in common:
        changed = ~((old[col] == new[col]) | (old[col].isna() & new[col].isna())).to_numpy(dtype=bool)
        for row in new.index[changed]:
            cells.append((int(row), col, _json_scalar(new.at[row, col])))
    return RowChanges(dropped=dropped, cells=cells)


def _json_scalar(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def apply_pipeline(spec: PipelineSpec, table: pd.DataFrame, registry: Registry, train: bool = False) -> pd.DataFrame:
    """Re-apply the column-level steps to ``table`` (and, with ``train``, the recorded row changes)."""
    functions = reapply_functions(spec, registry)
    try:
        return run_steps(table, spec.model_dump(mode="json"), functions, train)
    except (ValueError, KeyError) as exc:
        raise PipelineError(f"the pipeline cannot be applied to this data: {exc}") from None


def reapply_functions(spec: PipelineSpec, registry: Registry) -> dict[str, ReapplyFn]:
    """The ``reapply`` function of every column-level tool the spec uses."""
    functions: dict[str, ReapplyFn] = {}
    for number, step in enumerate(spec.steps, start=1):
        if step.train_only:
            continue
        fn = registry.get(step.tool).reapply
        if fn is None or step.fitted is None:
            raise PipelineError(f"step {number} ({step.tool}) has no fitted state to re-apply.")
        functions[step.tool] = fn
    return functions


# The two functions below are copied verbatim into the standalone pipeline.py:
# they must stay self-contained (no other name from this module; annotations are not evaluated).


def replay_rows(table: pd.DataFrame, changes: dict[str, Any]) -> pd.DataFrame:
    """Drop the recorded rows and set the recorded cells (train-only steps, training file only)."""
    table = table.drop(index=[r for r in changes["dropped"] if r in table.index])
    for row, col, value in changes["cells"]:
        if row in table.index:
            table.loc[row, col] = value
    return table


def run_steps(table: pd.DataFrame, spec: dict[str, Any], functions: dict[str, Any], train: bool) -> pd.DataFrame:
    """Run the spec's steps in order and return the output columns, in order.

    What a step reports about the new data (``attrs["copilot_notes"]``, e.g. values it had not seen) is
    gathered step by step into the output's ``attrs["copilot_notes"]``."""
    notes: list[str] = []
    for number, step in enumerate(spec["steps"], start=1):
        if step["train_only"]:
            if train and step["row_changes"] is not None:
                table = replay_rows(table, step["row_changes"])
            continue
        try:
            table = functions[step["tool"]](table, step["fitted"])
        except (ValueError, KeyError) as exc:
            raise ValueError(f"step {number} ({step['tool']}): {exc}") from None
        notes += [f"step {number} ({step['tool']}): {note}" for note in table.attrs.pop("copilot_notes", [])]
    missing = [c for c in spec["columns"] if c not in table.columns and c != spec["target"]]
    if missing:
        raise ValueError(f"the data lacks column(s) {missing} that the pipeline's output needs")
    out = table[[c for c in spec["columns"] if c in table.columns]]
    out.attrs["copilot_notes"] = notes
    return out
