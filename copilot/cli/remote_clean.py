"""``copilot clean --server``: the run of :func:`copilot.cli.jobs.clean_file`, against a team's ``copilot serve``.

The table is uploaded and the session's events are followed and shown as a local run shows them. At
each gate the approver (the terminal, or ``--yes``) answers, and the answer goes back as the API's gate
action naming the proposal and the preview shown, so the server commits exactly what the person saw.
When the session ends, its current version, pipeline spec, script and report are written where the
local run writes them.

What the API cannot be told is refused before anything is sent: ``--step`` (a session has no way to
take extra tools), and identifier columns whose names a comma-separated field would split. The rules of
``--rule``, ``--keep`` and ``--no-row-drops`` go as the session's goal, in words the server's rule reader
(``agents.chat``) takes; the rules the new session holds are compared with them, and any difference
stops it before it changes anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from agents.plan import Guidance, PlanStep
from copilot.cli.file_report import file_report
from copilot.cli.remote import Remote, RemoteError, detail
from copilot.data.export import CleanPaths, check_output_path, neutralise_formula, write_json, write_table
from copilot.errors import CopilotError
from copilot.session.decisions import Approver, Decision, EventSink
from copilot.session.views import PendingStep, SessionView

POLICY = "mutating"  # as the local run: read-only diagnostics run unasked, every change waits for an answer
FINAL_STATES = frozenset({"done", "stopped", "failed"})
SETTLE_S = 0.3  # once the session has ended, how long its last events may take to arrive
SKIPPED = "skipped at the terminal"
NO_STEPS = "--step cannot be sent to a server: its API cannot add a tool to a session's plan; run without --server"

Say = Callable[[str], None]


def refuse_unsendable(steps: list[str], id_columns: list[str]) -> None:
    """Raise :class:`CopilotError` for an option the API cannot carry faithfully."""
    if steps:
        raise CopilotError(NO_STEPS)
    split = [c for c in id_columns if "," in c or c != c.strip()]
    if split:
        raise CopilotError(f"--id {split[0]!r} cannot be sent to a server: it takes identifier columns "
                           "comma-separated, and trims the spaces around each name")  # fmt: skip


def goal_for(guidance: Guidance) -> str:
    """The rules of ``guidance`` in the words the server's rule reader takes, e.g.
    ``"`age` is 0..120; keep `bmi`; don't drop rows"``."""
    parts = [f"`{column}` is {_number(low)}..{_number(high)}" for column, (low, high) in guidance.ranges.items()]
    parts += [f"keep `{column}`" for column in guidance.keep_columns]
    return "; ".join(parts + ([] if guidance.allow_row_drops else ["don't drop rows"]))


def clean_remote(
    remote: Remote, source: Path, target: str, output: Path, *, id_columns: list[str], guidance: Guidance,
    approver: Approver, on_event: EventSink, report: Path | None, say: Say,
) -> tuple[dict[str, Any], CleanPaths]:  # fmt: skip
    """Clean ``source`` in a new session on the server; returns the report and the files written."""
    check_output_path(output)
    view = start_session(remote, source, target, id_columns, guidance, say)
    view = follow(remote, view.id, approver, on_event, say)
    return write_outputs(remote, view, output, report)


def first_plan(
    remote: Remote, source: Path, target: str, id_columns: list[str], guidance: Guidance, say: Say
) -> list[PlanStep]:
    """The server's first plan for ``source``; the session is stopped as soon as it is made."""
    view = start_session(remote, source, target, id_columns, guidance, say)
    with remote.events(view.id) as events:
        while True:
            event = events.next()
            if event is not None and event.type == "plan_updated":
                remote.send("POST", f"/api/sessions/{view.id}/stop")
                return [PlanStep.model_validate(step) for step in event.data["steps"]]
            if event is not None and event.type == "session_state" and event.data.get("state") in FINAL_STATES:
                ended = remote.session(view.id)
                raise RemoteError(f"session {view.id} ended ({ended.state}) before its first plan: {ended.error}")


def start_session(
    remote: Remote, source: Path, target: str, id_columns: list[str], guidance: Guidance, say: Say
) -> SessionView:
    """Upload ``source`` and check that the session holds the rules asked for."""
    if not source.is_file():
        raise CopilotError(f"{source}: no such file")
    fields = {"target": target, "policy": POLICY}
    if id_columns:
        fields["id_columns"] = ",".join(id_columns)
    if goal := goal_for(guidance):
        fields["goal"] = goal
    view = remote.create_session(source, fields)
    say(f"session {view.id} on {remote.base_url}")
    held = Guidance.model_validate(view.guidance)
    missed = [f"--rule {c}={_number(lo)}..{_number(hi)}" for c, (lo, hi) in guidance.ranges.items()
              if held.ranges.get(c) != (lo, hi)]  # fmt: skip
    missed += [f"--keep {column}" for column in guidance.keep_columns if column not in held.keep_columns]
    missed += ["--no-row-drops"] if held.allow_row_drops != guidance.allow_row_drops else []
    if missed:
        remote.send("POST", f"/api/sessions/{view.id}/stop")
        raise CopilotError(f"the server did not take {', '.join(missed)} as given (does the table have each column, "
                           f"named exactly so?); session {view.id} was stopped before any change")  # fmt: skip
    return view


def follow(remote: Remote, session_id: str, approver: Approver, on_event: EventSink, say: Say) -> SessionView:
    """Show the session's events until it ends, answering every gate on the way."""
    answered: set[str] = set()  # proposals asked about: each is asked once, however many events name it
    ended = False
    with remote.events(session_id) as events:
        while True:
            event = events.next(SETTLE_S if ended else None)
            if event is None:
                view = remote.session(session_id)
                if view.state in FINAL_STATES:
                    return view
                ended = False
                continue
            on_event(event)
            if event.type == "approval_requested":
                _answer(remote, session_id, approver, answered, say)
            elif event.type == "session_state":
                ended = event.data.get("state") in FINAL_STATES


def _answer(remote: Remote, session_id: str, approver: Approver, answered: set[str], say: Say) -> None:
    """Ask about the step waiting now, if it was not asked about yet; again if the session moved on meanwhile."""
    while True:
        view = remote.session(session_id)
        step = view.pending_step
        if view.state != "awaiting_approval" or step is None or step.proposal in answered:
            return
        answered.add(step.proposal)
        response = _send(remote, session_id, step, approver(step, remote.columns(session_id)), say)
        if response is None or response.status_code != 409:
            return
        say(f"the session moved on ({detail(response)}); here is what waits now")


def _send(remote: Remote, session_id: str, step: PendingStep, decision: Decision, say: Say) -> httpx.Response | None:
    """The decision as the API's gate action; its response, for a 409 (the session moved on) to be seen."""
    base = f"/api/sessions/{session_id}"
    shown = step.preview
    if decision.action == "stop":
        remote.send("POST", f"{base}/stop")
        return None
    if decision.action == "skip":
        return _reject(remote, base, step, SKIPPED)
    if shown is not None and decision.params is not None and decision.params != shown.params:
        response = remote.send("POST", f"{base}/steps/{step.id}/preview", allow=(409, 422),
                               json={"proposal": step.proposal, "params": decision.params})  # fmt: skip
    else:
        body = {"proposal": step.proposal, "preview": shown.id if shown else None, "params": decision.params}
        response = remote.send("POST", f"{base}/steps/{step.id}/approve", keyed=True, allow=(409, 422), json=body)
    if response.status_code == 422:  # a rule in force refuses it: recorded as the reason, and the plan moves on
        say(f"{step.tool} not run: {detail(response)}")
        return _reject(remote, base, step, f"not run: {detail(response)}")
    return response


def _reject(remote: Remote, base: str, step: PendingStep, reason: str) -> httpx.Response:
    return remote.send("POST", f"{base}/steps/{step.id}/reject", allow=(409,),
                       json={"proposal": step.proposal, "reason": reason})  # fmt: skip


def write_outputs(
    remote: Remote, view: SessionView, output: Path, report: Path | None
) -> tuple[dict[str, Any], CleanPaths]:
    """The current version to ``output``, and the pipeline, script and report beside it, as a local run writes them."""
    paths = CleanPaths.for_output(output, report)
    base = f"/api/sessions/{view.id}"
    version = remote.current_version(view.id)
    missing_target = _write_table(remote, f"{base}/versions/{version.id}/data", output, view.target)
    spec = remote.send("GET", f"{base}/pipeline.json").json()
    _write_text(paths.pipeline, json.dumps(spec, indent=2, ensure_ascii=False))
    _write_text(paths.script, remote.send("GET", f"{base}/pipeline.py").text)
    full = file_report(remote.send("GET", f"{base}/report").json(), view, view.agents, missing_target)
    if report is not None:
        write_json(full, report)
    return full, paths


def _write_table(remote: Remote, path: str, output: Path, target: str) -> int:
    """Download the table as ``output`` wants it; returns how many rows have no target."""
    suffix = output.suffix.lower()
    if suffix == ".parquet":
        remote.download(path, output, {"format": "parquet"})
        return int(pd.read_parquet(output, columns=[target])[target].isna().sum())
    if suffix == ".csv":  # the server writes CSV as a local run does: empty cells are the missing ones
        remote.download(path, output, {"format": "csv"})
        header = str(neutralise_formula(target))
        column = pd.read_csv(output, usecols=[header], dtype=str, keep_default_na=False, na_values=[""])[header]
        return int(column.isna().sum())
    with tempfile.TemporaryDirectory() as folder:  # .tsv, .xlsx, .jsonl: written here, from the Parquet
        part = Path(folder) / "table.parquet"
        remote.download(path, part, {"format": "parquet"})
        table = pd.read_parquet(part)
    write_table(table, output)
    return int(table[target].isna().sum())


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _number(value: float | None) -> str:
    """A bound as the rule reader reads it: digits and a point, never an exponent (``1e-05`` → ``0.00001``)."""
    return "" if value is None else format(Decimal(repr(value)).normalize(), "f")
