"""``copilot demo``: a full cleaning run on data that ships with scikit-learn.

scikit-learn's breast-cancer table gets reproducible faults (flipped labels,
unit slips, missing cells, a column stored as text with ``?`` codes, duplicate
rows); the co-pilot cleans it with every step approved, and the demo shows how
many of the planted faults it found and the downstream score before and after.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from sklearn.datasets import load_breast_cancer

from copilot.cleaning import CleaningOutcome, EventSink
from copilot.faults import FaultLog, inject_faults
from copilot.jobs import clean_file
from copilot.settings import Settings

TARGET = "diagnosis"


def demo_table(seed: int = 0) -> tuple[pd.DataFrame, FaultLog]:
    """The breast-cancer table with faults injected, and where they went."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"]).copy()
    frame[TARGET] = data.target.map({0: "malignant", 1: "benign"}).astype("str")
    dirty, log = inject_faults(frame, TARGET, seed, label_flip=0.08, outliers=0.03, missing=0.05,
                               duplicates=0.03, sentinel_column="mean radius")  # fmt: skip
    dirty.insert(0, "record_id", [f"BC-{i:04d}" for i in range(len(dirty))])
    return dirty, log


def run_demo(
    folder: Path | None, settings: Settings, console: Console, on_event: EventSink
) -> CleaningOutcome:
    folder = folder or settings.data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    dirty, log = demo_table(settings.seed)
    source = folder / "breast_cancer_dirty.csv"
    dirty.to_csv(source, index=False)
    console.print(
        f"[bold]Demo[/bold]: {source} ({len(dirty)} rows): {len(log.flipped_rows)} flipped labels, "
        f"{len(log.outlier_cells)} unit slips (×1000), {log.missing_cells} missing cells, "
        f"`{log.sentinel_column}` stored as text with '?' codes, {len(log.duplicate_rows)} duplicate rows.\n"
    )
    outcome, paths = clean_file(source, TARGET, folder / "breast_cancer_clean.csv", settings, on_event=on_event,
                                report=folder / "breast_cancer_report.json")  # fmt: skip
    _print_findings(outcome, log, console)
    console.print(
        f"\nwrote {paths.output}\n      {paths.pipeline}\n      {paths.script}\n      {paths.report}"
    )
    return outcome


def _print_findings(outcome: CleaningOutcome, log: FaultLog, console: Console) -> None:
    changed = set()
    for record in outcome.records:
        if record.step.tool == "label_issues" and record.row_changes is not None:
            changed = {row for row, col, _ in record.row_changes.cells if col == TARGET}
    flipped = set(log.flipped_rows)
    hits = len(changed & flipped)
    console.print(
        f"\nlabels changed: {len(changed)}, of which planted flips: {hits} "
        f"(precision {hits / max(len(changed), 1):.0%}, recall {hits / max(len(flipped), 1):.0%})"
    )
    before, after = outcome.score("evaluate:baseline"), outcome.score("evaluate:final")
    if before is not None and after is not None:
        console.print(f"downstream AUROC (5-fold CV): {before:.4f} → {after:.4f}")
