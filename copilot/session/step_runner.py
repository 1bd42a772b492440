"""Running one approved step: sandbox call, new version, and the record of what happened."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.guard import output_violations
from agents.plan import FINAL_SCORE, HELD_OUT_SUFFIX, Guidance
from copilot.data.pipeline import row_changes
from copilot.data.preview import summarise
from copilot.storage.store import SessionRow, StepRow, VersionRow, now
from copilot.storage.versions import Version, VersionStore
from tools.executor import Executor
from tools.feature_types import profile_table
from tools.holdout import changed_rows, scored_rows
from tools.registry import Registry
from tools.sandbox import CallContext, ProgressFn, SandboxOutcome

Emit = Callable[[Session, SessionRow, str, dict[str, Any]], None]


@dataclass(frozen=True)
class StepCall:
    step_id: int
    tool: str
    params: dict[str, Any]
    parent: str
    input_path: Path
    ctx: CallContext
    train_only: bool
    mutates: bool
    guidance: Guidance  # the rules in force when the step started: its output must honour them
    sees_held_out: bool = False  # the tool may repair cells of the held-out rows (``Tool.sees_held_out``)
    preview: bool = False  # a preview at the gate: also tell what the table would change (``copilot.data.preview``)


@dataclass(frozen=True)
class StepOutput:
    """What a successful step left behind, prepared outside the engine's lock."""

    version: Version | None
    profile: dict[str, Any] | None
    changes: dict[str, Any] | None
    content: dict[str, Any] | None = None  # for a preview: what the person is shown (``copilot.data.preview``)


def holdout_scope(db: Session, session: SessionRow, key: str) -> str:
    """The rows a step may change: a ``…:held_out`` step cleans the held-out rows once the gain is measured
    (``agents.rule_based``); every other step, and one so named before the final score, the training rows."""
    if not key.endswith(HELD_OUT_SUFFIX):
        return "training"
    scored = select(StepRow.id).where(StepRow.session_id == session.id, StepRow.key == FINAL_SCORE,
                                      StepRow.status == "done")  # fmt: skip
    return "held_out" if db.scalars(scored).first() is not None else "training"


class StepRunner:
    def __init__(self, sandbox: Executor, versions: VersionStore, registry: Registry, seed: int) -> None:
        self.sandbox = sandbox
        self.versions = versions
        self.registry = registry
        self.seed = seed

    def prepare(self, db: Session, session: SessionRow, step: StepRow) -> StepCall:
        """The call of a step marked running or previewing, on the current version; counted as a run."""
        step.runs += 1
        version = db.get_one(VersionRow, (session.id, session.version))
        types = {col: info["type"] for col, info in version.profile["columns"].items()}
        ctx = CallContext(session.target, list(session.id_columns), types, session.task, self.seed,
                          session.holdout or 0.0, holdout_scope(db, session, step.key))  # fmt: skip
        tool = self.registry.get(step.tool)
        return StepCall(step.id, step.tool, dict(step.params), version.id, self.versions.blob_path(version.blob), ctx,
                        tool.train_only, tool.mutates, Guidance.model_validate(session.guidance),
                        tool.sees_held_out, step.status == "previewing")  # fmt: skip

    def run(
        self, call: StepCall, progress: ProgressFn, cancel: threading.Event | None = None
    ) -> tuple[SandboxOutcome, StepOutput]:
        """Run the call in the sandbox; a table it leaves becomes a version only if the tool is registered
        as changing data and the table honours the rules in force. Otherwise the step fails and nothing
        changes, whatever the tool's own output says."""
        outcome = self.sandbox.run(call.tool, call.input_path, call.params, call.ctx, on_progress=progress,
                                   cancel=cancel)  # fmt: skip
        outcome = replace(outcome, result={**outcome.result, "executor": outcome.where})  # kept with the step
        if not outcome.ok:
            return outcome, StepOutput(None, None, None)
        if outcome.table_path is None:
            content = None
            if call.preview:  # the tool changed nothing: the preview says so
                unchanged = pd.read_parquet(call.input_path)
                content = summarise(unchanged, unchanged, outcome.result, call.ctx.target)
            return outcome, StepOutput(None, None, None, content)
        if not call.mutates:
            return self._refuse(outcome, f"{call.tool} is registered as read-only (mutates=False) but returned a "
                                         "table; nothing was changed")  # fmt: skip
        table = pd.read_parquet(outcome.table_path)
        before = pd.read_parquet(call.input_path)
        if not table.index.is_unique:  # rows are known by their labels: the held-out rows, the preview, undo
            repeated = table.index[table.index.duplicated()][:5].tolist()
            return self._refuse(outcome, f"{call.tool} returned rows with repeated labels ({repeated}); every row "
                                         "keeps its label from the uploaded file. Nothing was changed")  # fmt: skip
        touched = self._holdout_broken(call, before, table)
        if touched:
            return self._refuse(outcome, f"{call.tool}'s result is refused: {touched}; nothing was changed")
        broken = output_violations(before, table, call.guidance, call.ctx.target)
        if broken:
            return self._refuse(outcome, f"{call.tool}'s result breaks your rules ({'; '.join(broken)}); "
                                         "nothing was changed")  # fmt: skip
        changes = row_changes(before, table).model_dump() if call.train_only else None
        version = self.versions.add_file(outcome.table_path, parent=call.parent, step=call.step_id, tool=call.tool,
                                         params=call.params)  # fmt: skip
        self.sandbox.discard(outcome)
        profile = profile_table(table, target=call.ctx.target, id_columns=call.ctx.id_columns, task=call.ctx.task)
        content = summarise(before, table, outcome.result, call.ctx.target) if call.preview else None
        return outcome, StepOutput(version, profile, changes, content)

    @staticmethod
    def _holdout_broken(call: StepCall, before: pd.DataFrame, table: pd.DataFrame) -> str | None:
        """No step drops a row held out for scoring; no row-level step changes one, except that a tool that
        repairs cells may repair theirs (never their target)."""
        ctx = call.ctx
        held = scored_rows(before, ctx.target, ctx.holdout, ctx.seed)
        if not held.any():
            return None
        if ctx.holdout_scope == "held_out":  # cleaning the held-out rows: every other row stays as it was
            others = changed_rows(before, table, ~held)
            return f"it changed {len(others)} rows that are not held out (row {others[0]})" if others else None
        if not call.train_only:
            checked: list[str] = []  # a column-level step transforms every row, and may add or drop columns
        elif call.sees_held_out:
            checked = [ctx.target] if ctx.target else []
        else:
            checked = list(before.columns)
        touched = changed_rows(before, table, held, checked)
        if not touched:
            return None
        shown = ", ".join(map(str, touched[:5])) + (" …" if len(touched) > 5 else "")
        what = "changed or dropped" if checked else "dropped"
        return f"it {what} {len(touched)} of the rows held out to score the cleaning on (row {shown})"

    def discarded(self, outcome: SandboxOutcome, output: StepOutput) -> tuple[SandboxOutcome, StepOutput]:
        """The outcome of a step whose session was stopped while it ran: nothing it made is kept."""
        if outcome.ok or outcome.error_kind == "cancelled":
            outcome = replace(outcome, ok=False, result={}, table_path=None, error_kind="cancelled",
                              error="the session was stopped while the step ran; nothing it made was kept")  # fmt: skip
        return outcome, StepOutput(None, None, None)

    def _refuse(self, outcome: SandboxOutcome, error: str) -> tuple[SandboxOutcome, StepOutput]:
        self.sandbox.discard(outcome)
        return replace(outcome, ok=False, table_path=None, error=error, error_kind="tool"), StepOutput(None, None, None)

    def record(
        self, db: Session, session: SessionRow, step: StepRow, outcome: SandboxOutcome, output: StepOutput, emit: Emit
    ) -> None:
        """Write the step's fate and, for a changed table, its version; all in the caller's transaction."""
        if not outcome.ok:
            step.result = {"executor": outcome.where}
            fail(db, session, step, outcome.error or "the step failed", emit)
            return
        result = {**outcome.result, "duration_s": outcome.duration_s, "row_changes": output.changes}
        commit(db, session, step, result, made(output), emit)


@dataclass(frozen=True)
class Made:
    """The table a step made, as stored: the version it becomes and what is known of it."""

    id: str
    blob: str
    n_rows: int
    n_columns: int
    profile: dict[str, Any]


def made(output: StepOutput) -> Made | None:
    version = output.version
    if version is None:
        return None
    return Made(version.id, version.blob, version.n_rows, version.n_columns, output.profile or {})


def fail(db: Session, session: SessionRow, step: StepRow, error: str, emit: Emit) -> None:
    step.finished_at = now()
    step.status, step.error = "failed", error
    emit(db, session, "step_failed", {"step_id": step.id, "tool": step.tool, "error": error})


def commit(db: Session, session: SessionRow, step: StepRow, result: dict[str, Any], table: Made | None,
           emit: Emit) -> None:  # fmt: skip
    """The step is done with ``result``; a table unlike its input becomes the session's version."""
    step.finished_at = now()
    step.status, step.result = "done", result
    before = db.get(VersionRow, (session.id, step.version_before)) if step.version_before else None
    if table is not None and (before is None or table.blob != before.blob):
        if db.get(VersionRow, (session.id, table.id)) is None:
            db.add(VersionRow(session_id=session.id, id=table.id, blob=table.blob, parent=step.version_before,
                              step_id=step.id, tool=step.tool, n_rows=table.n_rows, n_columns=table.n_columns,
                              profile=table.profile))  # fmt: skip
        step.version_after = session.version = table.id
        emit(db, session, "version_created", {"version": table.id, "rows": table.n_rows, "columns": table.n_columns})
    emit(db, session, "step_finished", {"step_id": step.id, "tool": step.tool, "summary": result.get("summary", "")})
