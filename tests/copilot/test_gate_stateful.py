"""The gate as a state machine: Hypothesis drives random sequences against a real engine and checks invariants.

Actions: approve (as proposed, or edited: a data-changing step is then previewed again), approve a stale
proposal, approve or reject in the chat with the proposal on screen or an old one, reject, a rule said in the
chat, undo, stop, approve-then-stop-then-undo, edit-then-stop-then-undo while the new preview is made, and a
restart on the same store. After every action, from the store itself:

* every version a step made has an approval naming that step's proposal, its tool and its exact parameters;
* every version a data-changing step made is the table of the one preview committed for it, and a preview
  ready to commit belongs to the step waiting at the gate with that preview's proposal;
* an approval is refused exactly when its call breaks the rules in force (checked as it is made);
* at most one step of the session runs;
* the current version's lineage is consistent: each version's parent is the version its step started from,
  and the chain reaches version 0 without a cycle;
* a stopped session stays stopped.

CI runs a bounded number of sequences; ``GATE_EXAMPLES=200 GATE_STEPS=25 pytest tests/copilot/test_gate_stateful.py``
runs a longer hunt.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from agents.guard import violations
from agents.plan import Guidance
from agents.worker import ToolCall, ToolCallError, validate_call
from copilot.errors import Conflict, InvalidParams, NotFound, RuleViolation, Stale
from copilot.session.engine import Engine
from copilot.session.views import PendingStep, SessionView
from copilot.settings import Settings
from copilot.storage.store import ApprovalRow, PreviewRow, SessionRow, StepRow, VersionRow
from tests.conftest import messy_table
from tests.pg import Cluster

OWNER = "alice"
REST = {"awaiting_approval", "done", "stopped", "failed"}
RULES = [
    "never drop rows", "you may drop rows again", "keep weight", "keep city",
    "weight must be between 40 and 120", "age must be between 0 and 120",
]  # fmt: skip
EXAMPLES = int(os.environ.get("GATE_EXAMPLES", "8"))
STEPS = int(os.environ.get("GATE_STEPS", "12"))


def _table() -> pd.DataFrame:
    table = messy_table(60, seed=3)
    return pd.concat([table, table.iloc[:4].assign(record_id=[f"D{i}" for i in range(4)])], ignore_index=True)


class GateMachine(RuleBasedStateMachine):
    cluster: Cluster | None = None  # a PostgreSQL to run on (a fresh database per sequence); None: SQLite

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="gate-"))
        self.database = self.cluster.create_database() if self.cluster else None
        url = self.cluster.url(self.database) if self.cluster and self.database else None
        self.settings = Settings(data_dir=self.folder / "data", policy="mutating", database_url=url)
        self.engine = self._engine()
        upload = self.folder / "upload.csv"
        _table().to_csv(upload, index=False)
        self.session_id = self.engine.create_session(upload, "patients.csv", "outcome", OWNER).id
        self.shown: list[PendingStep] = []  # every proposal the person has seen, for stale answers
        self.stopped = False
        self._settle()

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.cluster and self.database:
            self.cluster.drop_database(self.database)

    # -- actions ----------------------------------------------------------------------------------------------

    @rule(edit=st.sampled_from([None, "drop", "flag"]))
    def approve(self, edit: str | None) -> None:
        pending = self._view().pending_step
        if pending is None:
            return
        params = {**pending.params, "action": edit} if edit and "action" in pending.params else None
        broken = self._broken(pending, params)
        try:
            if params is not None and pending.preview is not None:  # an edit: previewed, then asked again
                self.engine.preview(self.session_id, pending.id, OWNER, pending.proposal, params)
            else:
                self.engine.approve(self.session_id, pending.id, OWNER, pending.proposal, params)
        except RuleViolation:
            assert broken, "a call that honours the rules was refused"
        except InvalidParams:
            pass  # an edit the tool's schema refuses; nothing ran (checked by the invariants)
        else:
            assert not broken, f"a call that breaks the rules was approved: {broken}"
        self._settle()

    @rule(pick=st.integers(min_value=0, max_value=50))
    def approve_stale(self, pick: int) -> None:
        view = self._view()
        current = view.pending_step.proposal if view.pending_step else None
        old = [p for p in self.shown if p.proposal != current]
        if not old:
            return
        stale = old[pick % len(old)]
        before = self._approvals()
        with contextlib.suppress(Stale, NotFound):
            self.engine.approve(self.session_id, stale.id, OWNER, stale.proposal)
        assert self._approvals() == before, "a stale approval was recorded"
        self._settle()

    @rule(kind=st.sampled_from(["approve", "reject"]), which=st.sampled_from(["current", "stale", "none"]))
    def answer_in_chat(self, kind: str, which: str) -> None:
        view = self._view()
        pending = view.pending_step
        old = [p.proposal for p in self.shown if pending is None or p.proposal != pending.proposal]
        proposal = {"current": pending.proposal if pending else None, "stale": old[-1] if old else None}.get(which)
        before = self._approvals()
        self.engine.post_message(self.session_id, OWNER, kind, proposal=proposal)
        acted = pending is not None and proposal == pending.proposal
        if not acted:
            assert self._approvals() == before, f"a chat {kind} acted on a proposal the person did not see"
        self._settle()

    @rule()
    def reject(self) -> None:
        pending = self._view().pending_step
        if pending is not None:
            self.engine.reject(self.session_id, pending.id, OWNER, pending.proposal, "not now")
        self._settle()

    @rule(text=st.sampled_from(RULES))
    def say_rule(self, text: str) -> None:
        self.engine.post_message(self.session_id, OWNER, text)
        self._settle()

    @rule()
    def undo(self) -> None:
        with contextlib.suppress(Conflict):
            self.engine.undo(self.session_id, OWNER)
        self._settle()

    @rule()
    def stop(self) -> None:
        self.engine.stop(self.session_id, OWNER)
        self.stopped = True
        self._settle()

    @rule()
    def approve_then_stop_then_undo(self) -> None:
        """Stop and undo while the approved step runs: its result must not land on the undone version."""
        pending = self._view().pending_step
        if pending is None or self._broken(pending, None):
            return
        self.engine.approve(self.session_id, pending.id, OWNER, pending.proposal)
        self.engine.stop(self.session_id, OWNER)
        self.stopped = True
        with contextlib.suppress(Conflict):
            self.engine.undo(self.session_id, OWNER)
        self._settle()

    @rule()
    def edit_then_stop_then_undo(self) -> None:
        """Stop and undo while an edited step is previewed again: nothing of that preview may be kept."""
        pending = self._view().pending_step
        if pending is None or pending.preview is None or "action" not in pending.params:
            return
        flagged = {**pending.params, "action": "flag"}
        with contextlib.suppress(InvalidParams):
            self.engine.preview(self.session_id, pending.id, OWNER, pending.proposal, flagged)
        self.engine.stop(self.session_id, OWNER)
        self.stopped = True
        with contextlib.suppress(Conflict):
            self.engine.undo(self.session_id, OWNER)
        self._settle()

    @rule()
    def restart(self) -> None:
        self.engine.close()
        self.engine = self._engine()
        self._settle()

    # -- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def every_version_was_approved_as_it_ran(self) -> None:
        with self.engine.store.transaction() as db:
            session = db.get_one(SessionRow, self.session_id)
            versions = {v.id: v for v in db.scalars(select(VersionRow).where(VersionRow.session_id == session.id))}
            for version in versions.values():
                if version.step_id is None:
                    assert version.parent is None
                    continue
                step = db.get_one(StepRow, version.step_id)
                assert step.tool == version.tool and version.parent == step.version_before
                if self.engine.registry.get(step.tool).mutates:
                    query = select(ApprovalRow).where(ApprovalRow.step_id == step.id, ApprovalRow.decision == "approve")
                    approvals = list(db.scalars(query))
                    assert len(approvals) == 1, f"{step.tool} made a version with {len(approvals)} approvals"
                    assert approvals[0].proposal == step.proposal and approvals[0].params == step.params

    @invariant()
    def every_version_of_a_previewed_step_is_its_committed_preview(self) -> None:
        with self.engine.store.transaction() as db:
            previews = list(db.scalars(select(PreviewRow).where(PreviewRow.session_id == self.session_id)))
            for preview in previews:
                step = db.get_one(StepRow, preview.step_id)
                if preview.status == "ready":
                    assert step.status == "awaiting_approval" and step.proposal == preview.proposal, step.status
                if preview.status == "committed" and step.version_after is not None:
                    assert step.version_after == preview.version
                    made = db.get_one(VersionRow, (self.session_id, preview.version))
                    assert made.blob == preview.blob and made.step_id == step.id
            query = select(VersionRow).where(VersionRow.session_id == self.session_id, VersionRow.step_id.is_not(None))
            for version in db.scalars(query):
                committed = [p for p in previews if p.step_id == version.step_id and p.status == "committed"]
                assert [(p.version, p.blob) for p in committed] == [(version.id, version.blob)], version.tool

    @invariant()
    def every_approval_names_what_ran(self) -> None:
        with self.engine.store.transaction() as db:
            query = select(ApprovalRow).where(ApprovalRow.session_id == self.session_id,
                                              ApprovalRow.decision == "approve")  # fmt: skip
            for approval in db.scalars(query):
                step = db.get_one(StepRow, approval.step_id)
                assert step.proposal == approval.proposal and step.params == approval.params

    @invariant()
    def one_step_runs_at_most_and_the_lineage_holds(self) -> None:
        with self.engine.store.transaction() as db:
            session = db.get_one(SessionRow, self.session_id)
            running = db.scalars(select(StepRow).where(StepRow.session_id == session.id,
                                                       StepRow.status == "running")).all()  # fmt: skip
            assert len(running) <= 1, [s.tool for s in running]
            versions = {v.id: v for v in db.scalars(select(VersionRow).where(VersionRow.session_id == session.id))}
            seen, current = set(), session.version
            while current is not None:
                assert current in versions and current not in seen, f"broken lineage at {current}"
                seen.add(current)
                current = versions[current].parent
            if self.stopped:
                assert session.state == "stopped", session.state

    # -- helpers ----------------------------------------------------------------------------------------------

    def _engine(self) -> Engine:
        engine = Engine(self.settings)
        engine.start()
        return engine

    def _view(self) -> SessionView:
        return self.engine.get_session(self.session_id, OWNER)

    def _broken(self, pending: PendingStep, params: dict | None) -> list[str]:
        """What the call would break of the rules in force now (empty for a revert or an invalid edit)."""
        view = self._view()
        if pending.tool == "revert":
            return []
        try:
            call = validate_call(self.engine.registry, pending.tool, pending.params if params is None else params)
        except ToolCallError:
            return []
        return violations(ToolCall(call.tool, call.params), Guidance.model_validate(view.guidance))

    def _approvals(self) -> int:
        with self.engine.store.transaction() as db:
            query = select(ApprovalRow.id).where(ApprovalRow.session_id == self.session_id)
            return len(db.scalars(query).all())

    def _settle(self, timeout: float = 120.0) -> None:
        """Wait until the session rests (no step running, nothing being planned); note the proposal shown."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self._view()
            if view.state in REST and all(s.status != "running" for s in view.plan):
                if view.pending_step is not None and view.pending_step.proposal not in {p.proposal for p in self.shown}:
                    self.shown.append(view.pending_step)
                return
            time.sleep(0.02)
        raise AssertionError(f"the session never came to rest: {self._view().state}")


GateMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize="GATE_EXAMPLES" not in os.environ,  # CI: the same sequences every run
)  # fmt: skip
test_the_gate_holds_over_random_sequences = GateMachine.TestCase


def test_the_gate_holds_over_random_sequences_on_postgresql(postgresql: Cluster) -> None:
    """The same machine on PostgreSQL, with half the sequences: the store's part, not the gate's logic, differs."""
    machine = type("PostgresGateMachine", (GateMachine,), {"cluster": postgresql})
    quick = settings(GateMachine.TestCase.settings, max_examples=max(1, EXAMPLES // 2))
    run_state_machine_as_test(machine, settings=quick)
