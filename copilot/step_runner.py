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
from copilot.pipeline import row_changes
from copilot.store import SessionRow, StepRow, VersionRow, now
from copilot.versions import Version, VersionStore
from tools.feature_types import profile_table
from tools.holdout import changed_rows, scored_rows
from tools.registry import Registry
from tools.sandbox import CallContext, ProgressFn, Sandbox, SandboxOutcome

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


@dataclass(frozen=True)
class StepOutput:
    """What a successful step left behind, prepared outside the engine's lock."""

    version: Version | None
    profile: dict[str, Any] | None
    changes: dict[str, Any] | None


def holdout_scope(db: Session, session: SessionRow, key: str) -> str:
    """The rows a step may change: a ``…:held_out`` step cleans the held-out rows once the gain is measured
    (``agents.rule_based``); every other step, and one so named before the final score, the training rows."""
    if not key.endswith(HELD_OUT_SUFFIX):
        return "training"
    scored = select(StepRow.id).where(StepRow.session_id == session.id, StepRow.key == FINAL_SCORE,
                                      StepRow.status == "done")  # fmt: skip
    return "held_out" if db.scalars(scored).first() is not None else "training"


class StepRunner:
    def __init__(self, sandbox: Sandbox, versions: VersionStore, registry: Registry, seed: int) -> None:
        self.sandbox = sandbox
        self.versions = versions
        self.registry = registry
        self.seed = seed

    def prepare(self, db: Session, session: SessionRow, step: StepRow) -> StepCall:
        version = db.get_one(VersionRow, (session.id, session.version))
        types = {col: info["type"] for col, info in version.profile["columns"].items()}
        ctx = CallContext(session.target, list(session.id_columns), types, session.task, self.seed,
                          session.holdout or 0.0, holdout_scope(db, session, step.key))  # fmt: skip
        tool = self.registry.get(step.tool)
        return StepCall(step.id, step.tool, dict(step.params), version.id, self.versions.blob_path(version.blob), ctx,
                        tool.train_only, tool.mutates, Guidance.model_validate(session.guidance),
                        tool.sees_held_out)  # fmt: skip

    def run(
        self, call: StepCall, progress: ProgressFn, cancel: threading.Event | None = None
    ) -> tuple[SandboxOutcome, StepOutput]:
        """Run the call in the sandbox; a table it leaves becomes a version only if the tool is registered
        as changing data and the table honours the rules in force. Otherwise the step fails and nothing
        changes, whatever the tool's own output says."""
        outcome = self.sandbox.run(call.tool, call.input_path, call.params, call.ctx, on_progress=progress,
                                   cancel=cancel)  # fmt: skip
        if not outcome.ok or outcome.table_path is None:
            return outcome, StepOutput(None, None, None)
        if not call.mutates:
            return self._refuse(outcome, f"{call.tool} is registered as read-only (mutates=False) but returned a "
                                         "table; nothing was changed")  # fmt: skip
        table = pd.read_parquet(outcome.table_path)
        before = pd.read_parquet(call.input_path)
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
        return outcome, StepOutput(version, profile, changes)

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
        step.finished_at = now()
        if not outcome.ok:
            step.status, step.error = "failed", outcome.error
            emit(db, session, "step_failed", {"step_id": step.id, "tool": step.tool, "error": outcome.error})
            return
        step.status = "done"
        step.result = {**outcome.result, "duration_s": outcome.duration_s, "row_changes": output.changes}
        made = output.version
        if made is not None and made.blob != self._blob(db, session, step.version_before):
            if db.get(VersionRow, (session.id, made.id)) is None:
                db.add(VersionRow(session_id=session.id, id=made.id, blob=made.blob, parent=step.version_before,
                                  step_id=step.id, tool=step.tool, n_rows=made.n_rows, n_columns=made.n_columns,
                                  profile=output.profile or {}))  # fmt: skip
            step.version_after = session.version = made.id
            emit(db, session, "version_created", {"version": made.id, "rows": made.n_rows, "columns": made.n_columns})
        emit(db, session, "step_finished", {"step_id": step.id, "tool": step.tool,
                                            "summary": outcome.result.get("summary", "")})  # fmt: skip

    def _blob(self, db: Session, session: SessionRow, version_id: str | None) -> str | None:
        row = db.get(VersionRow, (session.id, version_id)) if version_id else None
        return row.blob if row else None
