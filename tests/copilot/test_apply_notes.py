"""`copilot apply` and the exported script warn about categories the pipeline had not seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from copilot.data.pipeline import PipelineSpec, PipelineStep, Source
from copilot.data.script import render_script
from tests.copilot.test_clean_e2e import copilot
from tools.base import ToolContext
from tools.harmonise import HarmoniseCategories
from tools.registry import default_registry

NOTE = "column 'sex': 2 values not seen when fitted, left as they are: 'X', 'unk'"


def write_pipeline(folder: Path) -> Path:
    spellings = {"Male": 9, "male": 5, "M": 2, "Female": 8, "female": 4, "F": 2, " f ": 1}
    train = pd.DataFrame({"sex": [v for v, n in spellings.items() for _ in range(n)], "outcome": "a"})
    result = HarmoniseCategories().run(train, HarmoniseCategories.parse_params({}), ToolContext(target="outcome"))
    step = PipelineStep(tool="harmonise_categories", params={}, summary=result.summary, train_only=False,
                        fitted=result.fitted)  # fmt: skip
    spec = PipelineSpec(source=Source(file="train.csv", kind="csv"), target="outcome", id_columns=[], steps=[step],
                        columns=["sex", "outcome"])  # fmt: skip
    spec.write(folder / "clean.pipeline.json")
    (folder / "clean.pipeline.py").write_text(render_script(spec, default_registry()), encoding="utf-8")
    pd.DataFrame({"sex": ["male", "MALE", "X", " f ", "unk"], "outcome": ["a"] * 5}).to_csv(
        folder / "new.csv", index=False
    )
    return folder / "clean.pipeline.json"


def test_apply_maps_known_spellings_and_warns_about_unseen_ones(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path)
    out = tmp_path / "out.csv"
    done = copilot("apply", str(pipeline), str(tmp_path / "new.csv"), "--output", str(out), data_dir=tmp_path / "d")
    assert f"warning: step 1 (harmonise_categories): {NOTE}" in " ".join(done.stdout.split())
    assert pd.read_csv(out)["sex"].tolist() == ["Male", "Male", "X", "Female", "unk"]


def test_the_exported_script_warns_too(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(tmp_path / "clean.pipeline.py"), str(tmp_path / "new.csv"), str(out)],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert NOTE in done.stderr
    assert pd.read_csv(out)["sex"].tolist() == ["Male", "Male", "X", "Female", "unk"]
