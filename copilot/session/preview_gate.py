"""The gate's preview: a data-changing step runs once, before the person is asked, and approving commits it.

::

    proposed ─► previewing ─► awaiting_approval(proposal, preview) ─► done      (approve: no second run)
                    │  ▲                 │ edit params ─► previewing (a new proposal and preview)
                    │  └─────────────────┘ reject, undo, new rules, stop: the preview is discarded
                    └─► failed (the tool's own error, shown before anything is asked)

The preview's table is stored like any version's (``copilot.storage.versions``), but is no version of the session:
the lineage moves only when the person approves the proposal it was shown with, and then to exactly that
table, named by the preview's id or content hash. A preview made on a version that is no longer current,
or whose table can no longer be read, is refused and never committed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
from sqlalchemy import update
from sqlalchemy.orm import Session

from copilot.data import preview as changes
from copilot.errors import Conflict, NotFound, StorageError
from copilot.session import gate
from copilot.session import row_views as views
from copilot.session.step_runner import Made, StepOutput, commit, fail
from copilot.session.views import CellsPage, DroppedPage, SessionView
from copilot.storage.store import PreviewRow, SessionRow, StepRow, Store, VersionRow, now
from copilot.storage.versions import VersionStore
from tools.registry import Registry
from tools.sandbox import SandboxOutcome


class PreviewGate:
    """The preview side of :class:`copilot.session.engine.Engine`, which supplies the attributes and helpers
    named here."""

    store: Store
    registry: Registry
    version_store: VersionStore
    runner_id: str

    # -- at the gate ----------------------------------------------------------------------------

    def _start_preview(self, db: Session, session: SessionRow, step: StepRow) -> None:
        """Mark the step previewing on the current version; the caller submits its run once this commits."""
        step.status, step.started_at, step.version_before = "previewing", now(), session.version
        step.runner, step.heartbeat_at = self.runner_id, now()
        self._set_state(db, session, "previewing")  # type: ignore[attr-defined]
        self._emit(db, session, "preview_started", {"step_id": step.id, "tool": step.tool,  # type: ignore[attr-defined]
                                                    "params": step.params})  # fmt: skip

    def _finish_preview(self, db: Session, session: SessionRow, step: StepRow, outcome: SandboxOutcome,
                        output: StepOutput) -> None:  # fmt: skip
        """The previewed step reaches the gate with its preview and a new proposal id; a step that failed
        fails here, before anything is asked, and the coordinator plans around it."""
        if not outcome.ok:
            fail(db, session, step, outcome.error or "the preview failed", self._emit)  # type: ignore[attr-defined]
            self._set_state(db, session, "planning")  # type: ignore[attr-defined]
            return
        table = output.version
        preview = PreviewRow(
            id=uuid.uuid4().hex, session_id=session.id, step_id=step.id, proposal=uuid.uuid4().hex, status="ready",
            base_version=step.version_before, params=dict(step.params),
            version=table.id if table else None, blob=table.blob if table else None,
            n_rows=table.n_rows if table else None, n_columns=table.n_columns if table else None,
            profile=output.profile, content=output.content,
            result={**outcome.result, "duration_s": outcome.duration_s, "row_changes": output.changes},
        )  # fmt: skip
        db.add(preview)
        step.status, step.proposal = "awaiting_approval", preview.proposal
        self._set_state(db, session, "awaiting_approval")  # type: ignore[attr-defined]
        db.flush()
        self._emit(db, session, "approval_requested", views.pending_data(db, step, self.registry))  # type: ignore[attr-defined]

    def _commit_preview(
        self, db: Session, session: SessionRow, step: StepRow, named: str | None, params: dict[str, Any] | None,
        owner: str,
    ) -> bool:  # fmt: skip
        """Commit the preview the step waits with; False when there is none to commit and a new one was
        started instead (the caller submits its run). Refused, with nothing committed, when the approval names
        another preview or other parameters, when the data moved on, or when the rules forbid the call."""
        preview = views.shown_preview(db, step)
        if preview is None or not self._readable(preview):
            if preview is not None:
                preview.status = "discarded"
            self._start_preview(db, session, step)
            return False
        if named is not None and named not in (preview.id, preview.blob):
            raise Conflict(f"the approval names preview {named!r}, but proposal {step.proposal} was shown with preview "
                           f"{preview.id} (content {preview.blob}); nothing was committed")  # fmt: skip
        if params is not None and gate.allowed_params(db, session, self.registry, step.tool, params) != preview.params:
            raise Conflict("approving commits the previewed change, and these parameters are not the ones previewed "
                           f"({_json(preview.params)}); nothing was committed. Ask for a preview with them (POST "
                           f"/api/sessions/{session.id}/steps/{step.id}/preview) and approve that one.")  # fmt: skip
        if session.version != preview.base_version:
            raise Conflict(f"preview {preview.id} was made on version {preview.base_version}, but the data is now at "
                           f"version {session.version}; nothing was committed")  # fmt: skip
        gate.allowed_params(db, session, self.registry, step.tool, preview.params)  # the rules in force still allow it
        gate.record(db, session, step, "approve", owner, params=preview.params)
        made = Made(preview.version, preview.blob, preview.n_rows or 0, preview.n_columns or 0, preview.profile or {}) \
            if preview.version and preview.blob else None  # fmt: skip
        commit(db, session, step, dict(preview.result or {}), made, self._emit)  # type: ignore[attr-defined]
        preview.status = "committed"
        self._set_state(db, session, "planning")  # type: ignore[attr-defined]
        return True

    def preview(self, session_id: str, step_id: int, owner: str, proposal: str, params: dict[str, Any]) -> SessionView:
        """Edit the pending step's parameters: its preview is discarded and a new one made with them, shown with
        a new proposal id. Parameters that fail the tool's schema or break a rule are refused, and the step
        keeps waiting with its preview; the same edit sent again (a retried request) changes nothing."""
        with self._write(session_id) as db:  # type: ignore[attr-defined]
            session = self._owned(db, session_id, owner)  # type: ignore[attr-defined]
            edited = gate.answered(db, session, step_id, proposal, "edit")
            if edited is not None:
                if not gate.same_params(db, self.registry, edited, params):
                    raise Conflict(f"proposal {proposal!r} was already edited with other parameters "
                                   f"({_json(edited.params)}); its new preview is the one to answer")  # fmt: skip
                return views.session_view(db, session, self.registry)
            step = gate.pending(db, session, step_id, proposal, self.registry)
            if not gate.previews(self.registry, step.tool):
                raise Conflict(f"step {step.id} ({step.tool}) changes no data, so it has no preview; approve it with "
                               "the parameters you want")  # fmt: skip
            call_params = gate.allowed_params(db, session, self.registry, step.tool, params)
            shown = views.shown_preview(db, step)
            if shown is not None and shown.params == call_params:
                return views.session_view(db, session, self.registry)  # the preview shown is of these already
            gate.record(db, session, step, "edit", owner, params=call_params)
            self._discard_previews(db, step)
            step.params = call_params
            self._start_preview(db, session, step)
        self._submit_run(session_id, step_id)  # type: ignore[attr-defined]
        return self.get_session(session_id, owner)  # type: ignore[attr-defined]

    def _readable(self, preview: PreviewRow) -> bool:
        try:
            if preview.blob is not None:
                self.version_store.blob_path(preview.blob)
        except StorageError:
            return False
        return True

    @staticmethod
    def _discard_previews(db: Session, step: StepRow) -> None:
        db.execute(update(PreviewRow).where(PreviewRow.step_id == step.id, PreviewRow.status == "ready")
                   .values(status="discarded"))  # fmt: skip

    # -- reading a preview ----------------------------------------------------------------------

    def preview_rows(self, session_id: str, preview_id: str, owner: str, offset: int, limit: int) -> DroppedPage:
        """A page of the rows the preview would drop, with the step's evidence for each."""
        before, after, result = self._preview_tables(session_id, preview_id, owner)
        return DroppedPage.model_validate(changes.dropped_page(before, after, result, offset, limit))

    def preview_cells(
        self, session_id: str, preview_id: str, owner: str, column: str, offset: int, limit: int
    ) -> CellsPage:
        """A page of the cells of ``column`` the preview would change, before → after."""
        before, after, _ = self._preview_tables(session_id, preview_id, owner)
        try:
            return CellsPage.model_validate(changes.cells_page(before, after, column, offset, limit))
        except KeyError:
            said = f"column {column!r} is not in both the table before and after preview {preview_id}, so none of " \
                "its cells changes; the preview's `columns` lists those that do"  # fmt: skip
            raise NotFound(said) from None

    def _preview_tables(self, session_id: str, preview_id: str, owner: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        with self.store.transaction() as db:
            session = self._owned(db, session_id, owner)  # type: ignore[attr-defined]
            preview = db.get(PreviewRow, preview_id) if _is_hex(preview_id) else None
            if preview is None or preview.session_id != session.id:
                raise NotFound(f"session {session_id} has no preview {preview_id!r}")
            base = db.get_one(VersionRow, (session.id, preview.base_version))
            blobs, result = (base.blob, preview.blob or base.blob), dict(preview.result or {})
        before, after = (pd.read_parquet(self.version_store.blob_path(b)) for b in blobs)
        return before, after, result


def _is_hex(value: str) -> bool:
    return 0 < len(value) <= 32 and all(c in "0123456789abcdef" for c in value)


def _json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
