"""``copilot demo``: a full cleaning run on data that ships with scikit-learn.

The training part of the demo data (``copilot.data.demo_data``) carries planted faults; the co-pilot
cleans it with every step approved, its pipeline is applied to the untouched test part, and the demo
reports how many planted faults it found and the held-out AUROC of a standard model trained on the
dirty, the cleaned and the original training data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from copilot.cli.jobs import apply_file, clean_file
from copilot.data.demo_data import TARGET, demo_data, holdout_auc
from copilot.data.faults import FaultLog
from copilot.session.cleaning import CleaningOutcome, EventSink
from copilot.settings import Settings


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
