"""The file-in, file-out jobs behind the CLI: clean a table, apply a pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agents.plan import Guidance, PlanStep
from agents.rule_based import PlanningState, RuleBasedCoordinator
from copilot.cli.file_report import file_report
from copilot.data.export import CleanPaths, check_output_path, write_json, write_table
from copilot.data.loading import load_table
from copilot.data.pipeline import PipelineSpec, apply_pipeline
from copilot.data.script import render_script
from copilot.data.validation import check_guidance, check_table
from copilot.session.cleaning import CleaningOutcome, run_cleaning
from copilot.session.decisions import Approver, EventSink, approve_all
from copilot.session.engine import Engine
from copilot.session.planning import resolve_id_columns
from copilot.settings import Settings
from tools.feature_types import profile_table
from tools.registry import Registry, default_registry


def first_plan(
    source: Path, target: str, settings: Settings, id_columns: list[str], guidance: Guidance
) -> list[PlanStep]:
    """The plan the coordinator would start with, without running anything."""
    loaded = load_table(source, settings.max_file_mb)
    task = check_table(loaded.table, source.name, target, id_columns, min_rows=settings.min_rows,
                       max_rows=settings.max_rows, max_columns=settings.max_columns)  # fmt: skip
    check_guidance(guidance, [str(c) for c in loaded.table.columns], source.name)
    profile = profile_table(loaded.table, target=target, id_columns=id_columns, task=task)
    ids = resolve_id_columns(profile, id_columns, target)
    return RuleBasedCoordinator().plan(PlanningState(profile, target, task, ids, guidance))


def clean_file(
    source: Path,
    target: str,
    output: Path,
    settings: Settings,
    *,
    id_columns: list[str] | None = None,
    guidance: Guidance | None = None,
    approver: Approver = approve_all,
    on_event: EventSink = lambda event: None,
    report: Path | None = None,
    registry: Registry | None = None,
) -> tuple[CleaningOutcome, CleanPaths]:
    """Clean ``source`` for ``target`` through the engine and write the table, its pipeline, script and report."""
    check_output_path(output)
    engine = Engine(settings, registry)
    engine.start(recover=False)
    try:
        outcome = run_cleaning(engine, source, target, id_columns=list(id_columns or []),
                               guidance=guidance or Guidance(), approver=approver, on_event=on_event,
                               policy="mutating")  # fmt: skip
    finally:
        engine.close()
    paths = CleanPaths.for_output(output, report)
    table = pd.read_parquet(outcome.final_table)
    write_table(table, output)
    outcome.spec.write(paths.pipeline)
    paths.script.write_text(render_script(outcome.spec, engine.registry), encoding="utf-8")
    missing_target = int(table[outcome.spec.target].isna().sum())
    outcome.report = file_report(outcome.report, outcome.session, outcome.agents, missing_target)
    if report is not None:
        write_json(outcome.report, report)
    return outcome, paths


@dataclass(frozen=True)
class Applied:
    rows: int
    #: What the steps noticed in the new data, e.g. categories they had not seen, for the person to read.
    notes: list[str]


def apply_file(pipeline: Path, source: Path, output: Path, settings: Settings, train: bool = False) -> Applied:
    """Apply a saved pipeline to a new file; returns the number of rows written and the steps' notes."""
    check_output_path(output)
    spec = PipelineSpec.read(pipeline)
    loaded = load_table(source, settings.max_file_mb)
    table = apply_pipeline(spec, loaded.table, default_registry(), train=train)
    notes = list(table.attrs.get("copilot_notes", []))
    write_table(table, output)
    return Applied(len(table), notes)
