"""One cleaning run through the engine: the loop behind ``copilot clean`` and ``copilot demo``.

The command line is one more client of the engine, like the HTTP API: it
creates a session and, whenever the session waits at the gate, asks its
approver (the terminal, a test, or ``--yes``) and answers approve, reject or
stop. The terminal and the service share one state machine, one approval gate
and one record of every step; a session cleaned at the terminal stays in the
store of the data directory, under the owner ``cli``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.plan import Guidance
from copilot.data.pipeline import PipelineSpec
from copilot.errors import InvalidParams
from copilot.session.decisions import Approver, EventSink
from copilot.session.engine import FINAL_STATES, Engine
from copilot.session.views import PendingStep, Policy, SessionView

OWNER = "cli"
POLL_S = 0.05


@dataclass
class CleaningOutcome:
    session: SessionView
    report: dict[str, Any]
    spec: PipelineSpec
    final_table: Path  # the current version's Parquet file
    agents: str  # the agents the run was set up with (the session's ``agents`` is the last proposal's)

    def score(self, key: str) -> float | None:
        done = [s for s in self.session.plan if s.key == key and s.status == "done"]
        return done[-1].metrics.get("score") if done else None


def run_cleaning(
    engine: Engine, source: Path, target: str, *, id_columns: list[str], guidance: Guidance,
    approver: Approver, on_event: EventSink, policy: Policy,
) -> CleaningOutcome:  # fmt: skip
    """Clean ``source`` in a new session of ``engine``, answering each gate with ``approver``."""
    with tempfile.TemporaryDirectory(dir=engine.settings.data_dir) as folder:
        upload = Path(folder) / "upload"
        shutil.copyfile(source, upload)  # the engine takes the upload over; the user's file stays as it is
        view = engine.create_session(upload, source.name, target, OWNER, goal=guidance.goal, policy=policy,
                                     id_columns=id_columns, guidance=guidance)  # fmt: skip
    view = drive(engine, view.id, approver, on_event)
    spec = engine.pipeline(view.id, OWNER)
    report = engine.report(view.id, OWNER).model_dump(mode="json")
    return CleaningOutcome(view, report, spec, engine.version_file(view.id, view.version, OWNER), engine.agents.name)


def drive(engine: Engine, session_id: str, approver: Approver, on_event: EventSink) -> SessionView:
    """Follow the session's events until it ends; answer every gate on the way."""
    seen = 0
    while True:
        for event in engine.events_after(session_id, OWNER, seen):
            seen = event.seq
            on_event(event)
        view = engine.get_session(session_id, OWNER)
        if view.state in FINAL_STATES and view.pending_step is None:
            if not engine.events_after(session_id, OWNER, seen):
                return view
        elif view.state == "awaiting_approval" and view.pending_step is not None:
            if not engine.events_after(session_id, OWNER, seen):  # show everything before asking
                _answer(engine, session_id, view.pending_step, approver)
        else:
            time.sleep(POLL_S)


def _answer(engine: Engine, session_id: str, step: PendingStep, approver: Approver) -> None:
    columns = list(engine.profile(session_id, OWNER).columns)
    decision = approver(step, columns)
    shown = step.preview
    if decision.action == "approve":
        try:
            if shown is not None and decision.params is not None and decision.params != shown.params:
                engine.preview(session_id, step.id, OWNER, step.proposal, decision.params)  # asked again, with it
            else:
                engine.approve(session_id, step.id, OWNER, step.proposal, decision.params, shown.id if shown else None)
        except InvalidParams as exc:  # recorded as the reason, and the plan moves on
            engine.reject(session_id, step.id, OWNER, step.proposal, f"not run: {exc}")
    elif decision.action == "skip":
        engine.reject(session_id, step.id, OWNER, step.proposal, "skipped at the terminal")
    else:
        engine.stop(session_id, OWNER)
