"""One cleaning run, start to finish, in this process: the loop behind ``copilot clean``.

profile → plan → (approval for a mutating step) → sandboxed run → new version →
observation → re-plan, until the coordinator has nothing left to propose.
The approval is a callback, so the terminal, a test or ``--yes`` can answer it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from agents.llm import Usage
from agents.pair import AgentPair, RuleBasedPair
from agents.plan import REVERT, Guidance, Observation, PlanStep
from agents.rule_based import PlanningState
from agents.worker import RuleBasedWorker, ToolCall, ToolCallError
from copilot.loading import LoadedTable
from copilot.pipeline import PipelineSpec, PipelineStep, RowChanges, row_changes, source_of
from copilot.versions import Version, VersionStore
from tools.base import Task
from tools.feature_types import profile_table
from tools.registry import Registry
from tools.sandbox import CallContext, Sandbox, SandboxOutcome

MAX_STEPS = 40
EventSink = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Decision:
    action: Literal["approve", "skip", "stop"]
    params: dict[str, Any] | None = None  # edited parameters, when the human changed them


Approver = Callable[[PlanStep, list[str]], Decision]  # the step, and the table's current columns


def _observation(record: StepRecord) -> Observation:
    result = record.result
    return Observation(key=record.step.key, tool=record.step.tool, status=record.step.status,
                       summary=result.get("summary", record.error or ""), metrics=result.get("metrics", {}),
                       findings=result.get("findings", {}))  # fmt: skip


def _maker(records: list[StepRecord], version: Version) -> str | None:
    """The key of the step that made ``version``; None for the upload."""
    made = [r for r in records if r.version == version.id and r.step.status == "done" and r.step.tool != REVERT]
    return made[-1].step.key if made else None


def approve_all(step: PlanStep, columns: list[str]) -> Decision:
    return Decision("approve")


def resolve_id_columns(profile: dict[str, Any], given: list[str], target: str) -> list[str]:
    """The identifiers the user named plus those the profile recognised."""
    return sorted({*given, *profile.get("suggested_id_columns", [])} - {target})


@dataclass
class StepRecord:
    step: PlanStep
    call: ToolCall | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: str | None = None  # the version this step produced, if any
    duration_s: float = 0.0
    row_changes: RowChanges | None = None
    stop: bool = False  # the human asked to stop the run here

    def report(self) -> dict[str, Any]:
        return {
            "key": self.step.key, "tool": self.step.tool, "status": self.step.status,
            "rationale": self.step.rationale, "params": self.call.params if self.call else self.step.params,
            "summary": self.result.get("summary", ""), "metrics": self.result.get("metrics", {}),
            "findings": self.result.get("findings", {}), "charts": self.result.get("charts", []),
            "error": self.error, "version": self.version, "duration_s": round(self.duration_s, 3),
        }  # fmt: skip


@dataclass
class CleaningOutcome:
    task: Task
    id_columns: list[str]
    records: list[StepRecord]
    first_version: Version
    final_version: Version
    spec: PipelineSpec
    warnings: list[str]
    agents: str = "rule-based"
    usage: Usage = field(default_factory=Usage)

    def score(self, key: str) -> float | None:
        done = [r for r in self.records if r.step.key == key and r.step.status == "done"]
        return done[-1].result["metrics"].get("score") if done else None


@dataclass
class CleaningRun:
    loaded: LoadedTable
    target: str
    task: Task
    sandbox: Sandbox
    versions: VersionStore
    registry: Registry
    id_columns: list[str] = field(default_factory=list)
    guidance: Guidance = field(default_factory=Guidance)
    approver: Approver = approve_all
    on_event: EventSink = lambda kind, data: None
    seed: int = 0
    agents: AgentPair = field(default_factory=RuleBasedPair)

    def run(self) -> CleaningOutcome:
        """Clean the table step by step; every step's fate is in the outcome's records."""
        version = self.versions.add_table(self.loaded.table)
        first = version
        table = self.loaded.table
        profile = profile_table(table, target=self.target, id_columns=self.id_columns, task=self.task)
        ids = resolve_id_columns(profile, self.id_columns, self.target)
        records: list[StepRecord] = []
        usage, worker = Usage(), RuleBasedWorker()
        for _ in range(MAX_STEPS):
            history = [_observation(r) for r in records]
            state = PlanningState(profile, self.target, self.task, ids, self.guidance, history,
                                  current_step=_maker(records, version))  # fmt: skip
            proposal = self.agents.propose(state, self.registry, usage)
            usage, plan = usage.plus(proposal.usage), proposal.steps
            self.guidance = proposal.guidance or self.guidance
            for note in proposal.notes:
                self.on_event("message", {"role": "assistant", "text": note})
            self.on_event("plan", {"steps": [s.model_dump() for s in plan]})
            if not plan:
                break
            if plan[0].tool == REVERT:
                record = self._revert(plan[0], version, records, profile)
            else:
                record = self._step(plan[0], version, profile, ids, worker)
            records.append(record)
            if record.stop:
                break
            if record.version is not None and record.version != version.id:
                version = self.versions.get(record.version)
                table = self.versions.load(version.id)
                profile = profile_table(table, target=self.target, id_columns=ids, task=self.task)
        outcome = self._outcome(first, version, table, ids, records)
        outcome.agents, outcome.usage = self.agents.name, usage
        return outcome

    def _revert(
        self, step: PlanStep, version: Version, records: list[StepRecord], profile: dict[str, Any]
    ) -> StepRecord:
        """A backtracking step: once approved, the current version's parent becomes current again."""
        record = StepRecord(step)
        self.on_event("awaiting_approval", {"step": step.model_dump()})
        decision = self.approver(step, list(profile["columns"]))
        key = _maker(records, version)
        maker = next((r for r in reversed(records) if r.step.key == key), None)
        if decision.action != "approve" or maker is None or version.parent is None:
            step.status = "skipped" if decision.action != "stop" else "rejected"
            record.stop = decision.action == "stop"
            return record
        maker.step.status, step.status = "reverted", "done"
        record.version = version.parent
        record.result = {"summary": f"Undid {maker.step.key}: back to version {version.parent}.", "metrics": {}}
        self.on_event("step_finished", {"step": step.model_dump(), "result": record.result})
        return record

    def _step(
        self,
        step: PlanStep,
        version: Version,
        profile: dict[str, Any],
        ids: list[str],
        worker: RuleBasedWorker,
    ) -> StepRecord:
        record = StepRecord(step)
        if self.registry.get(step.tool).mutates:
            step.status = "awaiting_approval"
            self.on_event("awaiting_approval", {"step": step.model_dump()})
            decision = self.approver(step, list(profile["columns"]))
            if decision.action != "approve":
                step.status = "skipped" if decision.action == "skip" else "rejected"
                record.stop = decision.action == "stop"
                self.on_event("step_skipped", {"step": step.model_dump()})
                return record
            if decision.params is not None:
                step.params = decision.params
        try:
            record.call = worker.prepare(step, self.registry, list(profile["columns"]))
        except ToolCallError as exc:
            return self._failed(record, str(exc))
        step.status = "running"
        self.on_event("step_started", {"step": step.model_dump()})
        ctx = CallContext(self.target, ids, {c: i["type"] for c, i in profile["columns"].items()}, self.task, self.seed)
        outcome = self.sandbox.run(
            step.tool,
            self.versions.path(version.id),
            record.call.params,
            ctx,
            on_progress=lambda f, m: self.on_event("progress", {"fraction": f, "message": m}),
        )
        record.duration_s = outcome.duration_s
        if not outcome.ok:
            return self._failed(record, outcome.error or "the step failed")
        return self._finished(record, outcome, version)

    def _finished(self, record: StepRecord, outcome: SandboxOutcome, parent: Version) -> StepRecord:
        record.result = outcome.result
        record.step.status = "done"
        if outcome.table_path is not None:
            if self.registry.get(record.step.tool).train_only:
                before = self.versions.load(parent.id)
                record.row_changes = row_changes(before, pd.read_parquet(outcome.table_path))
            made = self.versions.add_file(
                outcome.table_path,
                parent=parent.id,
                step=record.step.key,
                tool=record.step.tool,
                params=record.call.params if record.call else None,
            )
            self.sandbox.discard(outcome)
            record.version = None if made.blob == parent.blob else made.id
            if record.version is not None:
                self.on_event("version_created", {"version": made.id, "rows": made.n_rows, "columns": made.n_columns})
        self.on_event("step_finished", {"step": record.step.model_dump(), "result": record.result})
        return record

    def _failed(self, record: StepRecord, message: str) -> StepRecord:
        record.step.status = "failed"
        record.error = message
        self.on_event("step_failed", {"step": record.step.model_dump(), "error": message})
        return record

    def _outcome(
        self, first: Version, final: Version, table: pd.DataFrame, ids: list[str], records: list[StepRecord]
    ) -> CleaningOutcome:
        warnings = []
        missing_target = int(table[self.target].isna().sum())
        if missing_target:
            warnings.append(
                f"{missing_target} row(s) still have no value for `{self.target}`: the output is not "
                "ML-ready until they are dropped."
            )
        steps = [
            PipelineStep(tool=r.step.tool, params=r.call.params if r.call else r.step.params,
                         summary=r.result.get("summary", ""), train_only=self.registry.get(r.step.tool).train_only,
                         fitted=r.result.get("fitted"), row_changes=r.row_changes)
            for r in records
            if r.step.status == "done" and r.step.tool != REVERT and self.registry.get(r.step.tool).mutates
        ]  # fmt: skip
        spec = PipelineSpec(
            source=source_of(Path(self.loaded.path).name, self.loaded.source),
            target=self.target,
            id_columns=ids,
            steps=steps,
            columns=[str(c) for c in table.columns],
        )
        return CleaningOutcome(self.task, ids, records, first, final, spec, warnings)
