"""``copilot demo``: a full cleaning run on data that ships with scikit-learn.

scikit-learn's breast-cancer table is split into a training and a test part.
The training part gets reproducible faults (flipped labels, unit slips, missing
cells, a column stored as text with ``?`` codes, duplicate rows); the co-pilot
cleans it with every step approved, its pipeline is applied to the untouched
test part, and the demo reports how many planted faults it found and the
held-out AUROC of a standard model trained on the dirty, the cleaned and the
original training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from copilot.cleaning import CleaningOutcome, EventSink
from copilot.faults import FaultLog, inject_faults
from copilot.jobs import apply_file, clean_file
from copilot.settings import Settings

TARGET = "diagnosis"
POSITIVE = "malignant"
ID = "record_id"


@dataclass(frozen=True)
class DemoData:
    dirty: pd.DataFrame  # the training part, with faults
    original: pd.DataFrame  # the same training rows before the faults
    test: pd.DataFrame  # held out, never corrupted
    log: FaultLog


def demo_data(seed: int = 0, test_size: float = 0.3) -> DemoData:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"]).copy()
    frame[TARGET] = data.target.map({0: POSITIVE, 1: "benign"}).astype("str")
    frame.insert(0, ID, [f"BC-{i:04d}" for i in range(len(frame))])
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[TARGET])
    # A duplicate is the same record written twice: it keeps its record id.
    dirty, log = inject_faults(train, TARGET, seed, label_flip=0.08, outliers=0.03, missing=0.05,
                               duplicates=0.03, sentinel_column="mean radius")  # fmt: skip
    return DemoData(dirty, train.reset_index(drop=True), test.reset_index(drop=True), log)


def holdout_auc(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> float:
    """AUROC on ``test`` of a gradient-boosting model fitted on ``train`` (text cells read as missing)."""
    features = [c for c in train.columns if c not in {ID, TARGET}]
    x_train = train[features].apply(pd.to_numeric, errors="coerce")
    x_test = test[features].apply(pd.to_numeric, errors="coerce")
    with threadpool_limits(1):
        model = HistGradientBoostingClassifier(random_state=seed).fit(x_train, train[TARGET])
        proba = model.predict_proba(x_test)[:, list(model.classes_).index(POSITIVE)]
    return float(roc_auc_score(test[TARGET] == POSITIVE, proba))


def run_demo(folder: Path | None, settings: Settings, console: Console, on_event: EventSink) -> CleaningOutcome:
    folder = folder or settings.data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    data = demo_data(settings.seed)
    source, test_file = folder / "breast_cancer_train.csv", folder / "breast_cancer_test.csv"
    data.dirty.to_csv(source, index=False)
    data.test.to_csv(test_file, index=False)
    log = data.log
    console.print(f"[bold]Demo[/bold]: {source} ({len(data.dirty)} rows) with {len(log.flipped_rows)} flipped "
                  f"labels, {len(log.outlier_cells)} unit slips (×1000), {log.missing_cells} missing cells, "
                  f"`{log.sentinel_column}` stored as text with '?' codes, {len(log.duplicate_rows)} duplicate "
                  f"rows; {test_file.name} ({len(data.test)} rows) is held out.\n")  # fmt: skip
    outcome, paths = clean_file(source, TARGET, folder / "breast_cancer_clean.csv", settings, on_event=on_event,
                                report=folder / "breast_cancer_report.json")  # fmt: skip
    apply_file(paths.pipeline, test_file, folder / "breast_cancer_test_clean.csv", settings)
    _print_labels(outcome, log, console)
    scores = {
        "dirty training data": holdout_auc(data.dirty, data.test, settings.seed),
        "cleaned by the co-pilot": holdout_auc(pd.read_csv(paths.output),
                                               pd.read_csv(folder / "breast_cancer_test_clean.csv"), settings.seed),
        "original training data (no faults)": holdout_auc(data.original, data.test, settings.seed),
    }  # fmt: skip
    console.print("\nheld-out AUROC of gradient boosting trained on the")
    for name, score in scores.items():
        console.print(f"  {name:<36} {score:.4f}")
    console.print(f"\nwrote {paths.output}\n      {paths.pipeline}\n      {paths.script}\n      {paths.report}")
    return outcome


def _print_labels(outcome: CleaningOutcome, log: FaultLog, console: Console) -> None:
    """How many of the rows the label step dropped or relabelled were planted flips."""
    touched: set[int] = set()
    for step in outcome.spec.steps:
        if step.tool == "label_issues" and step.row_changes is not None:
            changes = step.row_changes
            touched = set(changes.dropped) | {row for row, col, _ in changes.cells if col == TARGET}
    flipped = set(log.flipped_rows)
    hits = len(touched & flipped)
    precision, recall = hits / max(len(touched), 1), hits / max(len(flipped), 1)
    console.print(f"\nrows whose label was fixed or dropped: {len(touched)}, of which planted flips: {hits} "
                  f"(precision {precision:.0%}, recall {recall:.0%})")  # fmt: skip
