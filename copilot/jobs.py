"""The file-in, file-out jobs behind the CLI: clean a table, apply a pipeline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.llm import LLMClient, LLMConfig
from agents.llm_pair import LLMPair
from agents.pair import AgentPair, RuleBasedPair
from agents.plan import Guidance, PlanStep
from agents.rule_based import PlanningState, RuleBasedCoordinator
from copilot.cleaning import (
    Approver,
    CleaningOutcome,
    CleaningRun,
    EventSink,
    approve_all,
    resolve_id_columns,
)
from copilot.errors import CopilotError
from copilot.export import check_output_path, pipeline_path_for, write_json, write_table
from copilot.loading import load_table
from copilot.pipeline import PipelineSpec, apply_pipeline
from copilot.script import render_script
from copilot.settings import Settings
from copilot.validation import check_table
from copilot.versions import VersionStore
from tools.feature_types import profile_table
from tools.registry import Registry, default_registry
from tools.sandbox import Limits, Sandbox


@dataclass(frozen=True)
class CleanPaths:
    output: Path
    pipeline: Path
    script: Path
    report: Path | None


def make_sandbox(settings: Settings, extra_tools: tuple[str, ...] = ()) -> Sandbox:
    limits = Limits(
        settings.tool_memory_mb, settings.tool_cpu_seconds, settings.tool_wall_seconds, settings.tool_threads
    )
    return Sandbox(limits, settings.data_dir / "sandbox", extra_tools=extra_tools)


def make_agents(settings: Settings) -> AgentPair:
    """The LLM pair when ``COPILOT_LLM_MODEL`` names a model, else the rule-based pair. The endpoint and
    key are the openai SDK's own ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``."""
    if not settings.llm_model:
        return RuleBasedPair()
    config = LLMConfig(
        model=settings.llm_model, base_url=os.environ.get("OPENAI_BASE_URL") or None,
        api_key=os.environ.get("OPENAI_API_KEY") or None, timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries, max_calls=settings.llm_max_calls, max_tokens=settings.llm_max_tokens,
        share=settings.llm_share,
    )  # fmt: skip
    return LLMPair(LLMClient(config))


def first_plan(
    source: Path, target: str, settings: Settings, id_columns: list[str], guidance: Guidance
) -> list[PlanStep]:
    """The plan the coordinator would start with, without running anything."""
    loaded = load_table(source, settings.max_file_mb)
    task = check_table(loaded.table, source.name, target, id_columns, min_rows=settings.min_rows,
                       max_rows=settings.max_rows, max_columns=settings.max_columns)  # fmt: skip
    _check_guidance(guidance, loaded.table.columns, source.name)
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
    on_event: EventSink = lambda kind, data: None,
    report: Path | None = None,
    registry: Registry | None = None,
) -> tuple[CleaningOutcome, CleanPaths]:
    """Clean ``source`` for ``target`` and write the table, its pipeline, script and report."""
    check_output_path(output)
    loaded = load_table(source, settings.max_file_mb)
    ids = list(id_columns or [])
    task = check_table(loaded.table, source.name, target, ids, min_rows=settings.min_rows,
                       max_rows=settings.max_rows, max_columns=settings.max_columns)  # fmt: skip
    registry = registry or default_registry()
    _check_guidance(guidance, loaded.table.columns, source.name)
    versions = VersionStore(settings.data_dir / "versions")
    run = CleaningRun(loaded, target, task, make_sandbox(settings), versions, registry, ids,
                      guidance or Guidance(), approver, on_event, settings.seed, make_agents(settings))  # fmt: skip
    outcome = run.run()
    paths = CleanPaths(output, pipeline_path_for(output), output.with_suffix(".pipeline.py"), report)
    write_table(versions.load(outcome.final_version.id), output)
    outcome.spec.write(paths.pipeline)
    paths.script.write_text(render_script(outcome.spec, registry), encoding="utf-8")
    if report is not None:
        write_json(build_report(outcome, source), report)
    return outcome, paths


def _check_guidance(guidance: Guidance | None, columns: Any, name: str) -> None:
    if guidance is None:
        return
    unknown = [c for c in [*guidance.ranges, *guidance.keep_columns] if c not in set(columns)]
    if unknown:
        raise CopilotError(f"{name}: the rule(s) name column(s) {unknown} that the table does not have.")


def apply_file(pipeline: Path, source: Path, output: Path, settings: Settings, train: bool = False) -> int:
    """Apply a saved pipeline to a new file; returns the number of rows written."""
    check_output_path(output)
    spec = PipelineSpec.read(pipeline)
    loaded = load_table(source, settings.max_file_mb)
    table = apply_pipeline(spec, loaded.table, default_registry(), train=train)
    write_table(table, output)
    return len(table)


def build_report(outcome: CleaningOutcome, source: Path) -> dict[str, Any]:
    return {
        "input": source.name,
        "target": outcome.spec.target,
        "task": outcome.task,
        "id_columns": outcome.id_columns,
        "rows_before": outcome.first_version.n_rows,
        "rows_after": outcome.final_version.n_rows,
        "columns_before": outcome.first_version.n_columns,
        "columns_after": outcome.final_version.n_columns,
        "score_before": outcome.score("evaluate:baseline"),
        "score_after": outcome.score("evaluate:final"),
        "warnings": outcome.warnings,
        "agents": outcome.agents,
        "llm_usage": outcome.usage.model_dump(),
        "steps": [r.report() for r in outcome.records],
        "versions": {"first": outcome.first_version.id, "final": outcome.final_version.id},
    }
