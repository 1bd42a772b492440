"""Without an LLM, every benchmark dataset, with the benchmark's faults injected, comes out ML-ready
under the default plan: the same cases as bench/quality.py, on a sample so the suite stays quick."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from copilot.cli.jobs import clean_file
from copilot.data.faults import inject_faults
from copilot.settings import Settings


def _case(name: str) -> tuple[pd.DataFrame, str, str]:
    if name == "penguins":
        from palmerpenguins import load_penguins

        return load_penguins(), "species", "bill_length_mm"
    loader, sentinel = {"breast_cancer": (load_breast_cancer, "mean radius"), "wine": (load_wine, "alcohol"),
                        "iris": (load_iris, "sepal length (cm)")}[name]  # fmt: skip
    data = loader(as_frame=True)
    frame = data.frame.drop(columns=["target"]).astype("float64")
    frame["class"] = pd.Series(data.target_names[data.target], index=frame.index).astype("str")
    return frame, "class", sentinel


@pytest.mark.slow
@pytest.mark.parametrize("name", ["breast_cancer", "wine", "iris", "penguins"])
def test_the_default_plan_makes_each_benchmark_case_ml_ready(tmp_path: Path, name: str) -> None:
    frame, target, sentinel = _case(name)
    sample = frame.sample(n=min(len(frame), 180), random_state=0).reset_index(drop=True)
    sample = sample.astype({c: "float64" for c in sample.columns if pd.api.types.is_integer_dtype(sample[c])})
    dirty, _ = inject_faults(sample, target, seed=0, sentinel_column=sentinel)
    source = tmp_path / f"{name}.csv"
    dirty.to_csv(source, index=False)
    outcome, paths = clean_file(source, target, tmp_path / "clean.csv", Settings(data_dir=tmp_path / "data"))
    done = [s.key for s in outcome.session.plan if s.status == "done"]
    assert {"evaluate:baseline", "coerce_types", "duplicates", "label_issues", "impute", "evaluate:final"} <= set(done)
    assert not [s.key for s in outcome.session.plan if s.status == "failed"]
    clean = pd.read_csv(paths.output)
    features = clean.drop(columns=[target])
    assert clean[target].notna().all() and features.notna().all().all()
    assert pd.api.types.is_numeric_dtype(clean[sentinel])  # the text codes are gone, the column is numbers again
    assert len(clean) >= 0.75 * len(dirty) and list(features.columns) == [c for c in sample.columns if c != target]
    assert outcome.report["warnings"] == [] and outcome.score("evaluate:final") is not None
