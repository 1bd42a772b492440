"""The session engine: the state machine behind the API, with an approval gate it enforces.

::

    created ─► planning ─► awaiting_approval(step) ─► running(step) ─► planning ─► … ─► done
                               │ reject / edit                                        stopped | failed

A step at the gate carries a proposal id that is never reused; approve and reject must name it, and
every call passes the guard of the person's rules before it runs (``copilot.session.gate``).

Every transition is committed to the store before its side effect starts: a
step is marked ``running`` (with its approval on record) before the sandbox
is asked to run it, so a restarted server never runs a step twice. A running
step and a session being advanced carry their engine's id and heartbeat
(``copilot.session.heartbeat``): a server takes over only those whose heartbeat
stopped (a crash), marking such steps failed and interrupted, and the
coordinator may propose them again; sessions waiting at a gate stay there.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.chat import interpret
from agents.llm import Share, Usage
from agents.pair import AgentPair, Proposal
from agents.plan import REVERT, Guidance
from agents.worker import ToolCallError
from copilot.data.loading import load_table
from copilot.data.validation import check_guidance, check_table
from copilot.errors import Conflict, StorageError
from copilot.session import gate
from copilot.session import row_views as views
from copilot.session.conversation import Conversation, usage_after
from copilot.session.events import EventBus
from copilot.session.factory import isolation_warning, make_agents, make_sandbox, probed_isolation
from copilot.session.fanout import Listener, notify
from copilot.session.heartbeat import ACTIVE_STATES, FINAL_STATES, RUNNING_STEPS, Heartbeat, Watch, new_runner_id
from copilot.session.planning import Planner, check_share, keep_requests
from copilot.session.preview_gate import PreviewGate
from copilot.session.reads import SessionReads
from copilot.session.recovery import Recovery
from copilot.session.step_runner import StepRunner
from copilot.session.views import Policy, SessionView
from copilot.settings import Settings
from copilot.storage.store import EventRow, SessionRow, StepRow, Store, VersionRow, now
from copilot.storage.versions import VersionStore
from copilot.webhooks.outbox import Outbox
from tools.holdout import share_for
from tools.registry import Registry, default_registry

log = logging.getLogger(__name__)
MAX_REPLANS = 5  # proposals discarded in a row because the session moved on meanwhile


class Engine(Conversation, SessionReads, PreviewGate, Recovery):
    def __init__(self, settings: Settings, registry: Registry | None = None, agents: AgentPair | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.store_url())
        self.version_store = VersionStore(settings.data_dir / "versions")
        self.bus = EventBus()
        self.isolation: dict[str, Any] = {"kernel": False, "describe": "not probed yet"}
        # SQLite: one writer at a time in this process (SQLite serialises processes). PostgreSQL: each write holds
        # its session's row lock instead (Store.lock_session), which holds across servers too.
        self._lock: AbstractContextManager[Any] = nullcontext() if self.store.shared else threading.RLock()
        self._local = threading.local()  # events of the transaction in progress, per thread
        self._cancels: dict[int, threading.Event] = {}  # steps marked running, until their run ends
        self._executor = ThreadPoolExecutor(max_workers=settings.max_running_steps, thread_name_prefix="step")
        self._planning = ThreadPoolExecutor(max_workers=4, thread_name_prefix="plan")  # LLM calls, off the gate
        self.agents = agents or make_agents(settings)
        self.planner = Planner(self.registry, self.version_store, self.agents, settings.llm_share)
        self.runner = StepRunner(make_sandbox(settings), self.version_store, self.registry, settings.seed)
        self.runner_id = new_runner_id()  # on the steps it runs and the sessions it advances
        self._heartbeat = Heartbeat(self.store, self.runner_id)
        self._watch = Watch(self.runner_id)  # others' heartbeats; after start(), the heartbeat thread's alone
        self.webhooks = Outbox(self.store, settings, self.runner_id)  # deliveries written with their events
        self.listener = Listener(self.store, self.bus) if self.store.shared else None  # other servers' events

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, recover: bool = True) -> None:
        """Migrate the store and start the heartbeat; with ``recover``, take over what a dead runner left
        mid-way, now and at every heartbeat (a runner that dies later, or whose last beat is recent). A
        ``copilot clean`` beside a server starts without: it has nothing of its own to recover."""
        self.runner.sandbox.warm()  # its imports overlap with the migration, the probe and the first table
        self.store.migrate()
        self.isolation = probed_isolation(self.settings)
        if recover:
            self._take_over()
        self._heartbeat.start(self._take_over if recover else self._cancel_abandoned)
        self.webhooks.start()
        if self.listener is not None:
            self.listener.start()

    def close(self) -> None:
        self._heartbeat.stop()
        self.webhooks.stop()
        if self.listener is not None:
            self.listener.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._planning.shutdown(wait=False, cancel_futures=True)

    # -- sessions -----------------------------------------------------------------------------

    def create_session(
        self, file: Path, filename: str, target: str, owner: str, goal: str = "",
        policy: Policy | None = None, id_columns: list[str] | None = None, guidance: Guidance | None = None,
        llm_share: Share = "aggregates",
    ) -> SessionView:  # fmt: skip
        """Read the upload, check it, store version 0 and start planning. Nothing is kept on error."""
        check_share(llm_share, self.settings.llm_share)
        guidance = (guidance or Guidance()).model_copy(update={"goal": goal} if goal else {})
        session_id = uuid.uuid4().hex
        folder = self.settings.data_dir / "uploads" / session_id
        folder.mkdir(parents=True)
        try:
            source = folder / (Path(filename).name or "upload.csv")
            shutil.move(file, source)
            loaded = load_table(source, self.settings.max_file_mb)
            ids = list(id_columns or [])
            task = check_table(loaded.table, source.name, target, ids, min_rows=self.settings.min_rows,
                               max_rows=self.settings.max_rows, max_columns=self.settings.max_columns)  # fmt: skip
            check_guidance(guidance, [str(c) for c in loaded.table.columns], source.name)
            first, profile, ids = self.planner.first_version(loaded.table, target, ids, task)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rules = interpret(guidance.goal, guidance, profile, target) if guidance.goal else None
        if rules is not None:  # "predict outcome; age must be 0..120": the rules in a goal bind the plan too
            guidance = rules.guidance.model_copy(update={"goal": guidance.goal})
        with self._write() as db:
            session = SessionRow(
                id=session_id, owner=owner, state="created", target=target, task=task, goal=guidance.goal,
                policy=policy or self.settings.policy, source=source.name, source_format=loaded.source.__dict__,
                id_columns=ids, guidance=guidance.model_dump(), version=first.id, last_seq=0,
                agents=self.agents.name, llm_share=llm_share,
                holdout=share_for(int(loaded.table[target].notna().sum()), self.settings.holdout),
            )  # fmt: skip
            db.add(session)
            db.flush()  # the rows below refer to it
            db.add(VersionRow(session_id=session_id, id=first.id, blob=first.blob, n_rows=first.n_rows,
                              n_columns=first.n_columns, profile=profile))  # fmt: skip
            if not self.isolation["kernel"]:
                self._say(db, session, isolation_warning(self.isolation))
            if rules is not None and rules.changes:
                self._set_rules(db, session, guidance, rules.changes, by="you, in the goal")
                self._say(db, session, "From your goal: " + " ".join(rules.changes))
            self._set_state(db, session, "planning")
        self._schedule(session_id)
        return self.get_session(session_id, owner)

    # -- the gate -----------------------------------------------------------------------------

    def approve(
        self, session_id: str, step_id: int, owner: str, proposal: str, params: dict[str, Any] | None = None,
        preview: str | None = None,
    ) -> SessionView:  # fmt: skip
        """Approve the pending step, named by its ``proposal`` id (and, if given, its ``preview``'s id or
        content hash). A data-changing step commits its preview, with no second run (``copilot.session.preview_gate``):
        parameters, if sent, must be those previewed. A read-only step runs, with its parameters or edited ones.

        The call must pass the tool's schema and the guard of the rules in force. A proposal that is no
        longer pending is :class:`Stale` and nothing runs; approving the same proposal again (a retried
        request) changes nothing."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            answered = gate.answered(db, session, step_id, proposal, "approve")
            if answered is not None:
                if params is not None and not gate.same_params(db, self.registry, answered, params):
                    raise Conflict(f"proposal {proposal!r} was already approved with other parameters "
                                   f"({json.dumps(answered.params, sort_keys=True)}); nothing more runs")  # fmt: skip
                return views.session_view(db, session, self.registry)
            step = gate.pending(db, session, step_id, proposal, self.registry)
            if step.tool == REVERT:
                gate.record(db, session, step, "approve", owner, params=step.params)
                self._revert(db, session, step)
                committed = True
            elif gate.previews(self.registry, step.tool):
                committed = self._commit_preview(db, session, step, preview, params, owner)
            else:
                self._approve_call(db, session, step, params, owner)
                committed = False
        if committed:
            self._schedule(session_id)
        else:  # a read-only step runs now; a step whose preview could not be committed is previewed anew
            self._submit_run(session_id, step_id)
        return self.get_session(session_id, owner)

    def _approve_call(
        self, db: Session, session: SessionRow, step: StepRow, params: dict[str, Any] | None, owner: str
    ) -> None:
        step.params = gate.allowed_params(db, session, self.registry, step.tool,
                                          step.params if params is None else params)  # fmt: skip
        gate.record(db, session, step, "approve", owner, params=step.params)
        self._start_step(db, session, step)

    def _revert(self, db: Session, session: SessionRow, step: StepRow) -> None:
        """Carry out a backtracking step: back to the version before the step that made the current one."""
        current = db.get_one(VersionRow, (session.id, session.version))
        maker = db.get(StepRow, current.step_id) if current.step_id is not None else None
        step.started_at = step.finished_at = now()
        step.version_before = session.version
        if maker is None or current.parent is None or maker.key != step.params.get("step"):
            step.status, step.error = "failed", f"{step.params.get('step')} no longer made the current version"
            self._emit(db, session, "step_failed", {"step_id": step.id, "tool": step.tool, "error": step.error})
        else:
            maker.status, session.version = "reverted", current.parent
            step.status, step.version_after = "done", current.parent
            summary = f"Undid {maker.key}: the data is back to version {current.parent}."
            step.result = {"summary": summary, "metrics": {},
                           "findings": {"reverted_step": maker.id, "version": current.parent}}  # fmt: skip
            self._emit(db, session, "version_created", {"version": current.parent, "undo_of": current.id})
            self._emit(db, session, "step_finished", {"step_id": step.id, "tool": step.tool,
                                                      "summary": step.result["summary"]})  # fmt: skip
        self._set_state(db, session, "planning")

    def reject(self, session_id: str, step_id: int, owner: str, proposal: str, reason: str) -> SessionView:
        """Refuse the pending step, named by its ``proposal`` id; the coordinator re-plans with the reason."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            if gate.answered(db, session, step_id, proposal, "reject") is not None:
                return views.session_view(db, session, self.registry)
            step = gate.pending(db, session, step_id, proposal, self.registry)
            gate.record(db, session, step, "reject", owner, reason=reason)
            self._discard_previews(db, step)
            step.status, step.error, step.finished_at = "rejected", reason, now()
            self._emit(db, session, "message", {"role": "user", "text": f"Rejected {step.tool}: {reason}"})
            self._set_state(db, session, "planning")
        self._schedule(session_id)
        return self.get_session(session_id, owner)

    def undo(self, session_id: str, owner: str) -> SessionView:
        """Go back to the parent of the current version; the step that made it becomes ``reverted``.

        Refused while a step runs (its result would land on the undone version). A stopped or failed
        session stays so; any other goes back to planning."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            running = gate.running_step(db, session)
            if running is not None:
                raise Conflict(f"step {running.id} ({running.tool}) is running; wait for it to finish before undoing")
            current = db.get_one(VersionRow, (session.id, session.version))
            if current.parent is None:
                raise Conflict("this is the first version; there is nothing to undo")
            if current.step_id is not None:
                db.get_one(StepRow, current.step_id).status = "reverted"
            session.version = current.parent
            self._emit(db, session, "version_created", {"version": current.parent, "undo_of": current.id})
            replan = session.state not in {"stopped", "failed"}
            if replan:
                self._drop_proposed(db, session)
                self._set_state(db, session, "planning")
        if replan:
            self._schedule(session_id)
        return self.get_session(session_id, owner)

    def stop(self, session_id: str, owner: str) -> SessionView:
        """Stop for good: nothing more is proposed or run, and a running step is cancelled (its result,
        should it still arrive, is discarded)."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            if session.state not in FINAL_STATES:
                waiting = select(StepRow).where(StepRow.session_id == session.id,
                                                StepRow.status.in_(["awaiting_approval", "previewing"]))  # fmt: skip
                for step in db.scalars(waiting):  # kept in the history, and no longer approvable
                    self._withdraw(db, step, "skipped")
                self._drop_proposed(db, session)
                self._set_state(db, session, "stopped")
            running = gate.running_step(db, session)
        if running is not None and running.id in self._cancels:
            self._cancels[running.id].set()
        return self.get_session(session_id, owner)

    # -- the loop -----------------------------------------------------------------------------

    def _schedule(self, session_id: str) -> None:
        """Re-plan now when the agents are instant; in the background when they ask an LLM."""
        if self.agents.instant:
            self._advance(session_id)
        else:
            self._planning.submit(self._advance, session_id)

    def _advance(self, session_id: str) -> None:
        """Re-plan and take the next step to its gate, or run it when the policy allows.

        The agents are asked outside any transaction, since an LLM takes seconds. Their
        proposal is applied only if nothing happened to the session meanwhile (a message,
        an undo, a stop); otherwise they are asked again with what changed."""
        for _ in range(MAX_REPLANS):
            with self.store.transaction() as db:
                session = db.get_one(SessionRow, session_id)
                if session.state != "planning":
                    return
                state, mark = self.planner.state(db, session), session.last_seq
                usage = Usage.model_validate(session.llm_usage or {})
            proposal = self.planner.propose(state, usage)
            outcome = self._apply(session_id, mark, proposal)
            if outcome == "run":
                continue
            if isinstance(outcome, int):
                self._submit_run(session_id, outcome)
            if outcome != "stale":
                return
        log.warning("session %s kept changing while it was planned; left in planning", session_id)

    def _apply(self, session_id: str, mark: int, proposal: Proposal) -> int | str | None:
        """Write the proposal; return the step to run now, "stale" to plan again, "run" after a
        revert done without approval (plan again at once), or None."""
        with self._write(session_id) as db:
            session = db.get_one(SessionRow, session_id)
            session.llm_usage = usage_after(session, proposal.usage)
            keep_requests(db, session.id, proposal.usage)
            if session.state != "planning":
                return None
            if session.last_seq != mark:
                return "stale"
            session.agents = proposal.by
            for note in proposal.notes:
                self._say(db, session, note)
            if proposal.read_rules is not None:
                self._suggest_rules(db, session, proposal.read_rules)
            self._drop_proposed(db, session)
            first = self._add_plan(db, session, proposal.steps)
            self._emit(db, session, "plan_updated", {"steps": [s.model_dump() for s in proposal.steps]})
            if first is None:
                self._set_state(db, session, "done")
            elif first.tool != REVERT and self._refused(db, session, first):
                return "run"
            elif gate.needs_approval(self.registry, session.policy, first.tool):
                if gate.previews(self.registry, first.tool):
                    self._start_preview(db, session, first)
                    return first.id
                first.status, first.proposal = "awaiting_approval", uuid.uuid4().hex
                self._set_state(db, session, "awaiting_approval")
                self._emit(db, session, "approval_requested", views.pending_data(db, first, self.registry))
            elif first.tool == REVERT:
                self._revert(db, session, first)
                return "run"
            else:
                self._start_step(db, session, first)
                return first.id
        return None

    def _refused(self, db: Session, session: SessionRow, step: StepRow) -> bool:
        """Check the agents' call before anyone sees or runs it. A valid one gets its parameters in full
        (defaults filled), so the person sees exactly what would run. One that fails its schema or breaks a
        rule in force (the agents' bug, not the person's) fails, with the reason; the coordinator plans
        around it."""
        try:
            call = gate.checked_call(db, session, self.registry, step.tool, step.params)
        except ToolCallError as exc:
            broken = [str(exc)]
        else:
            broken = gate.broken_rules(session, call)
            step.params = call.params
        if not broken:
            return False
        step.status, step.finished_at, step.error = "failed", now(), "not run: " + "; ".join(broken)
        self._emit(db, session, "step_failed", {"step_id": step.id, "tool": step.tool, "error": step.error})
        self._set_state(db, session, "planning")
        return True

    def _submit_run(self, session_id: str, step_id: int) -> None:
        """Queue a step marked running; :meth:`stop` cancels it through its event, queued or running."""
        self._cancels[step_id] = threading.Event()
        self._executor.submit(self._run, session_id, step_id)

    def _run(self, session_id: str, step_id: int) -> None:
        """Executor thread: run one step in the sandbox, record the outcome, move on."""
        cancel = self._cancels.get(step_id) or threading.Event()
        try:
            with self.store.transaction() as db:
                session, step = db.get_one(SessionRow, session_id), db.get_one(StepRow, step_id)
                call = self.runner.prepare(db, session, step)

            def progress(fraction: float, message: str) -> None:
                self._publish_now(
                    session_id, "progress", {"step_id": step_id, "fraction": fraction, "message": message}
                )

            outcome, output = self.runner.run(call, progress, cancel)
            with self._write(session_id) as db:
                session, step = db.get_one(SessionRow, session_id), db.get_one(StepRow, step_id)
                ours = step.status in RUNNING_STEPS and step.runner == self.runner_id
                withdrawn = step.status in {"superseded", "skipped"}  # its preview is no longer wanted
                if ours:
                    if session.state == "stopped" or cancel.is_set():
                        outcome, output = self.runner.discarded(outcome, output)
                    if step.status == "previewing":
                        self._finish_preview(db, session, step, outcome, output)
                    else:
                        self.runner.record(db, session, step, outcome, output, self._emit)
                    if session.state == "running":
                        self._set_state(db, session, "planning")
            if ours:
                self._schedule(session_id)
            elif not withdrawn:  # this engine missed its heartbeats for so long that another one took the step over
                log.warning("step %s of session %s was taken over while it ran; its result is dropped",
                            step_id, session_id)  # fmt: skip
        except StorageError as exc:  # the input version cannot be read: no step can run on it
            log.error("step %s of session %s: %s", step_id, session_id, exc)
            self._fail_session(session_id, step_id, str(exc))
        except Exception:  # a bug of ours must not kill the executor thread silently
            log.exception("step %s of session %s crashed the engine", step_id, session_id)
            self._fail_session(session_id, step_id)
        finally:
            if self._cancels.get(step_id) is cancel:  # an edit may have queued the step's next preview meanwhile
                del self._cancels[step_id]

    def _fail_session(
        self, session_id: str, step_id: int, reason: str = "internal error while running the step; see the server log"
    ) -> None:
        with self._write(session_id) as db:
            session, step = db.get_one(SessionRow, session_id), db.get_one(StepRow, step_id)
            step.status, step.error = "failed", reason
            session.error = step.error
            self._set_state(db, session, "failed")

    # -- helpers ------------------------------------------------------------------------------

    def _start_step(self, db: Session, session: SessionRow, step: StepRow) -> None:
        running = gate.running_step(db, session)
        if running is not None:  # the state machine never gets here; refuse rather than run two at once
            raise Conflict(f"step {running.id} ({running.tool}) is still running")
        step.status, step.started_at, step.version_before = "running", now(), session.version
        step.runner, step.heartbeat_at = self.runner_id, now()
        self._set_state(db, session, "running")
        self._emit(db, session, "step_started", {"step_id": step.id, "tool": step.tool, "params": step.params})

    def _add_plan(self, db: Session, session: SessionRow, plan: list[Any]) -> StepRow | None:
        last = db.scalars(select(StepRow.position).where(StepRow.session_id == session.id)
                          .order_by(StepRow.position.desc())).first() or 0  # fmt: skip
        rows = [StepRow(session_id=session.id, position=last + i + 1, key=s.key, tool=s.tool, params=s.params,
                        rationale=s.rationale, status="proposed") for i, s in enumerate(plan)]  # fmt: skip
        db.add_all(rows)
        db.flush()
        return rows[0] if rows else None

    def _drop_proposed(self, db: Session, session: SessionRow) -> None:
        """Steps that never ran are re-planned from scratch; nothing that ran is touched. A step shown at
        the gate is kept as ``superseded``, so its id is never given to another step."""
        query = select(StepRow).where(StepRow.session_id == session.id,
                                      StepRow.status.in_(["proposed", "previewing", "awaiting_approval"]))  # fmt: skip
        for step in db.scalars(query):
            if step.status == "proposed":
                db.delete(step)
            else:
                self._withdraw(db, step, "superseded")

    def _withdraw(self, db: Session, step: StepRow, status: str) -> None:
        """Take a step off the gate: its preview is discarded, or cancelled while it is made."""
        if step.status == "previewing" and step.id in self._cancels:
            self._cancels[step.id].set()
        self._discard_previews(db, step)
        step.status, step.finished_at = status, now()

    def _set_state(self, db: Session, session: SessionRow, state: str) -> None:
        session.state = state
        if state in ACTIVE_STATES:  # this engine plans or runs it now, and its heartbeat says it is alive
            session.runner, session.heartbeat_at = self.runner_id, now()
        self._emit(db, session, "session_state", {"state": state})

    def _emit(self, db: Session, session: SessionRow, kind: str, data: dict[str, Any]) -> None:
        """Persist an event in the caller's transaction, with its webhook deliveries; it is published once that
        commits."""
        session.last_seq += 1
        row = EventRow(session_id=session.id, seq=session.last_seq, type=kind, at=now(), data=data)
        db.add(row)
        self.webhooks.enqueue(db, session, row)
        self._local.events.append((session.id, views.event_view(row)))

    @contextmanager
    def _write(self, session_id: str | None = None) -> Iterator[Session]:
        """A write transaction, on ``session_id``'s row lock (taken first, before anything it checks is read).
        Its events are published once it commits: to this process's subscribers, and on a shared store to every
        server's (``copilot.session.fanout``); a subscriber sends each session's events in ``seq`` order whatever order
        they arrive in."""
        with self._lock:
            self._local.events = []
            try:
                with self.store.transaction() as db:
                    if session_id is not None:
                        self.store.lock_session(db, session_id)
                    yield db
                    if self.store.shared and self._local.events:
                        notify(db, self._local.events)
                for published, event in self._local.events:
                    self.bus.publish(published, event)
            finally:
                self._local.events = []

    def _publish_now(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        with self._write(session_id) as db:
            self._emit(db, db.get_one(SessionRow, session_id), kind, data)
