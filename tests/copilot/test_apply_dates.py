"""A pipeline that parses date text and turns it into features re-applies to new data, in-process and as a script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from copilot.data.pipeline import PipelineSpec, PipelineStep, Source, apply_pipeline
from copilot.data.script import render_script
from tools.base import Tool, ToolContext
from tools.coerce_types import CoerceTypes
from tools.date_features import DateFeatures
from tools.registry import default_registry

CTX = ToolContext(target="outcome")
FEATURES = ["visit_year", "visit_month", "visit_day_of_week", "visit_days_since"]


def fit(folder: Path) -> tuple[PipelineSpec, pd.DataFrame]:
    """coerce_types then date_features fitted on a training file of mixed date text; the spec written out."""
    train = pd.DataFrame({
        "visit": ["2019-01-02", "5 March 2019", "Jul 4, 2019", "?", "2020/02/29", "2019-12-31"],
        "weight": [70.0, 71.5, 68.0, 80.2, 75.0, 66.1],
        "outcome": list("ababab"),
    })  # fmt: skip
    steps, table = [], train
    tool: Tool
    for tool in (CoerceTypes(), DateFeatures()):
        result = tool.run(table, tool.parse_params({}), CTX)
        assert result.table is not None
        steps.append(PipelineStep(tool=tool.name, params={}, summary=result.summary, train_only=False,
                                  fitted=result.fitted))  # fmt: skip
        table = result.table
    assert list(table.columns) == [*FEATURES, "weight", "outcome"]
    spec = PipelineSpec(source=Source(file="train.csv", kind="csv"), target="outcome", id_columns=[], steps=steps,
                        columns=list(table.columns))  # fmt: skip
    spec.write(folder / "clean.pipeline.json")
    return PipelineSpec.read(folder / "clean.pipeline.json"), table


NEW = pd.DataFrame({
    "visit": ["2019-03-05", "2018-12-25", "someday", "Feb 1, 2021", None],
    "weight": [70.0, 72.0, 74.0, 76.0, 78.0],
})  # fmt: skip


def test_pipeline_applies_the_date_features_to_new_data_from_the_fitted_origin(tmp_path: Path) -> None:
    spec, cleaned = fit(tmp_path)
    out = apply_pipeline(spec, NEW.copy(), default_registry())
    assert list(out.columns) == [*FEATURES, "weight"]
    origin = pd.Timestamp("2019-01-02")
    days = pd.Series(pd.to_datetime(["2019-03-05", "2018-12-25", None, "2021-02-01", None]))
    np.testing.assert_array_equal(out["visit_days_since"].to_numpy(), ((days - origin).dt.days).to_numpy(float))
    np.testing.assert_array_equal(out["visit_day_of_week"].to_numpy(), days.dt.day_of_week.to_numpy(float))
    assert out["visit_days_since"].iloc[0] == cleaned["visit_days_since"].iloc[1]  # the same date, the same number
    assert out.attrs["copilot_notes"] == [  # "someday" is set missing by coerce_types, the step that reads the text
        "step 1 (coerce_types): column 'visit': 1 cell(s) could not be read as datetime and became missing, "
        "e.g. 'someday'",
        "step 2 (date_features): column 'visit': 1 date before the earliest seen when fitted (2019-01-02)",
        "step 2 (date_features): column 'visit': 1 date after the latest seen when fitted (2020-02-29)",
    ]


def test_the_exported_script_gives_the_same_table(tmp_path: Path) -> None:
    spec, _ = fit(tmp_path)
    script = tmp_path / "clean.pipeline.py"
    script.write_text(render_script(spec, default_registry()), encoding="utf-8")
    NEW.to_csv(tmp_path / "new.csv", index=False)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "new.csv"), str(tmp_path / "out.csv")],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert "1 date before the earliest seen when fitted (2019-01-02)" in done.stderr
    in_process = apply_pipeline(spec, pd.read_csv(tmp_path / "new.csv"), default_registry())
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), in_process, check_dtype=False)
