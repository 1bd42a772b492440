"""`copilot clean --yes` on a table with planted faults finds them, and the model gets better.

The breast-cancer table (bundled with scikit-learn) is split; the training part
gets numbers stored as text with `?` codes, flipped labels, unit slips,
missing cells and duplicate rows. The held-out part stays clean and is scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from copilot.data.demo_data import TARGET, demo_data, holdout_auc
from copilot.data.faults import FaultLog

COPILOT = [sys.executable, "-m", "copilot.cli"]


@dataclass
class Run:
    folder: Path
    dirty: pd.DataFrame
    log: FaultLog
    test: pd.DataFrame
    cleaned: pd.DataFrame
    report: dict
    stdout: str


def copilot(
    *args: str, data_dir: Path, check: bool = True, input_text: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter, as a user would."""
    env = {**os.environ, "COPILOT_DATA_DIR": str(data_dir), "COLUMNS": "200", **(env or {})}
    done = subprocess.run([*COPILOT, *args], capture_output=True, text=True, env=env, timeout=600,
                          input=input_text if input_text is not None else "")  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"copilot {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("e2e")
    data = demo_data(seed=7)
    dirty, log, test = data.dirty, data.log, data.test
    dirty.to_csv(folder / "train.csv", index=False)
    done = copilot("clean", str(folder / "train.csv"), "--target", TARGET, "--output", str(folder / "clean.csv"),
                   "--yes", "--report", str(folder / "report.json"), data_dir=folder / "data")  # fmt: skip
    report = json.loads((folder / "report.json").read_text())
    return Run(folder, dirty, log, test, pd.read_csv(folder / "clean.csv"), report, done.stdout)


def test_numbers_stored_as_text_become_numbers(run: Run) -> None:
    assert run.dirty["mean radius"].eq("?").any()
    assert pd.api.types.is_float_dtype(run.cleaned["mean radius"])


def test_no_missing_cells_and_no_unit_slips_remain(run: Run) -> None:
    features = run.cleaned.drop(columns=["record_id", TARGET])
    assert not features.isna().any().any()
    slipped = set(run.log.outlier_cells)
    kept = run.cleaned.set_index("record_id")
    for row, col in slipped:
        rid = run.dirty.iloc[row]["record_id"]
        if rid in kept.index:
            assert kept.at[rid, col] < pd.to_numeric(run.dirty[col], errors="coerce").median() * 100, (
                rid,
                col,
            )


def test_duplicates_are_removed_and_ids_kept(run: Run) -> None:
    features = [c for c in run.cleaned.columns if c not in {"record_id", TARGET}]
    planted = run.dirty.duplicated().sum()  # the same record written twice, its id included
    assert planted == len(run.log.duplicate_rows) > 5
    dropped = sum(s["metrics"]["dropped"] for s in run.report["steps"] if s["tool"] == "label_issues")
    assert len(run.cleaned) == len(run.dirty) - planted - dropped
    assert run.cleaned["record_id"].is_unique  # each record once
    assert set(run.cleaned["record_id"]) <= set(run.dirty["record_id"])
    assert not run.cleaned.duplicated(subset=features).any()


def test_most_label_fixes_hit_planted_flips(run: Run) -> None:
    """The rows whose label was changed, or that were dropped as mislabelled, were mostly flipped."""
    steps = [s for s in run.report["steps"] if s["tool"] == "label_issues"]
    assert [s["key"] for s in steps] == ["label_issues", "label_issues:held_out"]  # the rows scored on, then
    assert all(s["status"] == "done" for s in steps)
    merged = run.dirty.merge(run.cleaned[["record_id", TARGET]], on="record_id", suffixes=("_dirty", "_clean"))
    relabelled = set(merged.loc[merged[f"{TARGET}_dirty"] != merged[f"{TARGET}_clean"], "record_id"])
    dropped = set(run.dirty["record_id"]) - set(run.cleaned["record_id"])  # a repeat keeps its first copy
    assert len(dropped) == sum(s["metrics"]["dropped"] for s in steps)
    changed = relabelled | dropped
    flipped = set(run.dirty.iloc[run.log.flipped_rows]["record_id"])
    assert len(changed) >= 5
    precision = len(set(changed) & flipped) / len(changed)
    recall = len(set(changed) & flipped) / len(flipped)
    assert precision >= 0.7, (precision, recall)
    assert recall >= 0.3, (precision, recall)


def test_downstream_score_goes_up_on_held_out_data(run: Run) -> None:
    applied = run.folder / "test_clean.csv"
    run.test.to_csv(run.folder / "test.csv", index=False)
    copilot("apply", str(run.folder / "clean.pipeline.json"), str(run.folder / "test.csv"), "--output", str(applied),
            data_dir=run.folder / "data")  # fmt: skip
    test_clean = pd.read_csv(applied)
    assert list(test_clean.columns) == list(run.cleaned.columns)
    before = holdout_auc(run.dirty, run.test)
    after = holdout_auc(run.cleaned, test_clean)
    assert after > before, (before, after)
    assert run.report["score_after"] > run.report["score_before"]


def test_report_and_console_tell_what_happened(run: Run) -> None:
    tools = [s["tool"] for s in run.report["steps"]]
    keys = [s["key"] for s in run.report["steps"]]
    assert tools[0] == "evaluate" and keys[-2:] == ["evaluate:final", "label_issues:held_out"]
    for tool in ("coerce_types", "duplicates", "outliers", "impute", "label_issues"):
        assert tool in tools
    assert all(s["status"] == "done" for s in run.report["steps"]), [
        (s["tool"], s["error"]) for s in run.report["steps"]
    ]
    assert "record_id" in run.report["id_columns"]
    assert "downstream score" in run.stdout


def test_the_report_says_both_scores_are_on_the_rows_held_out(run: Run) -> None:
    """Rows were dropped between the two scores, but both score the same held-out rows, and the report says so."""
    note = run.report["score_note"]
    final = next(s for s in run.report["steps"] if s["key"] == "evaluate:final")
    assert note.startswith(f"Both scores are on the {int(final['metrics']['n_rows']):,} rows set aside")
    assert run.report["score_after"] == final["metrics"]["score"]  # the held-out rows cleaned after it change nothing
    assert "note:" in run.stdout


def test_standalone_script_reproduces_the_cleaning(run: Run) -> None:
    script = run.folder / "clean.pipeline.py"
    assert "import copilot" not in script.read_text() and "from tools" not in script.read_text()
    out = run.folder / "replayed.csv"
    subprocess.run([sys.executable, str(script), str(run.folder / "train.csv"), str(out), "--train"], check=True,
                   cwd=run.folder, env={"PATH": os.environ["PATH"]}, timeout=120)  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(out), run.cleaned, check_exact=False, rtol=1e-9)


def test_apply_reproduces_column_transforms_like_the_script(run: Run) -> None:
    run.test.to_csv(run.folder / "test.csv", index=False)
    via_cli = run.folder / "test_cli.csv"
    via_script = run.folder / "test_script.csv"
    copilot("apply", str(run.folder / "clean.pipeline.json"), str(run.folder / "test.csv"), "--output",
            str(via_cli), data_dir=run.folder / "data")  # fmt: skip
    subprocess.run([sys.executable, str(run.folder / "clean.pipeline.py"), str(run.folder / "test.csv"),
                    str(via_script)], check=True, timeout=120)  # fmt: skip
    a, b = pd.read_csv(via_cli), pd.read_csv(via_script)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(run.test)  # row-level steps are not applied to new data
    assert not a.drop(columns=["record_id", TARGET]).isna().any().any()
    assert np.issubdtype(a["mean radius"].dtype, np.floating)
