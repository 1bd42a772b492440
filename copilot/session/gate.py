"""The approval gate's checks, on the store: what waits, whether an answer names it, and what a call may do.

The engine calls these inside its write transaction, so a check and the commit that follows it are one
unit. An answer names the proposal it answers; a proposal no longer pending is :class:`Stale`, which
carries what waits now; the same answer sent again is found by :func:`answered` and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.guard import violations
from agents.plan import REVERT, Guidance
from agents.worker import ToolCall, ToolCallError, validate_call
from copilot.errors import InvalidParams, NotFound, RuleViolation, Stale
from copilot.session import row_views as views
from copilot.storage.store import ApprovalRow, SessionRow, StepRow, VersionRow
from tools.registry import Registry


def step_of(db: Session, session: SessionRow, step_id: int) -> StepRow:
    step = db.get(StepRow, step_id)
    if step is None or step.session_id != session.id:
        raise NotFound(f"session {session.id} has no step {step_id}")
    return step


def pending(db: Session, session: SessionRow, step_id: int, proposal: str, registry: Registry) -> StepRow:
    """The step waiting at the gate, if it is ``step_id`` with ``proposal``; else :class:`Stale`, which
    says what waits now (a step this session never had is :class:`NotFound`)."""
    step_of(db, session, step_id)
    query = select(StepRow).where(StepRow.session_id == session.id, StepRow.status == "awaiting_approval")
    waiting = db.scalars(query).first() if session.state == "awaiting_approval" else None
    if waiting is not None and waiting.id == step_id and waiting.proposal == proposal:
        return waiting
    now_waiting = (
        f"the plan changed: now waiting is step {waiting.id}, {waiting.tool} "
        f"{json.dumps(waiting.params, sort_keys=True)} (proposal {waiting.proposal})"
        if waiting is not None
        else f"the session is {session.state} and nothing waits for approval"
    )
    raise Stale(f"proposal {proposal!r} of step {step_id} is not waiting for approval, so nothing ran; "
                f"{now_waiting}", views.pending_data(db, waiting, registry) if waiting else None)  # fmt: skip


def answered(db: Session, session: SessionRow, step_id: int, proposal: str, decision: str) -> ApprovalRow | None:
    """The decision already given to this very proposal, if any: the request is a retry."""
    query = select(ApprovalRow).where(
        ApprovalRow.session_id == session.id, ApprovalRow.step_id == step_id, ApprovalRow.proposal == proposal,
        ApprovalRow.decision == decision,
    )  # fmt: skip
    return db.scalars(query).first()


def same_params(db: Session, registry: Registry, approval: ApprovalRow, params: dict[str, Any]) -> bool:
    """Whether ``params`` mean the call that ``approval`` approved (a retried edit sends the same)."""
    tool = db.get_one(StepRow, approval.step_id).tool
    try:
        return tool != REVERT and validate_call(registry, tool, params).params == approval.params
    except ToolCallError:
        return False


def record(
    db: Session, session: SessionRow, step: StepRow, decision: str, owner: str,
    params: dict[str, Any] | None = None, reason: str | None = None,
) -> None:  # fmt: skip
    """The person's answer to the step's proposal, kept with the proposal it names."""
    db.add(ApprovalRow(session_id=session.id, step_id=step.id, proposal=step.proposal, decision=decision,
                       params=params, reason=reason, owner=owner))  # fmt: skip


def previews(registry: Registry, tool: str) -> bool:
    """Whether a step of ``tool`` is previewed before the person is asked: every data-changing tool is (a
    backtracking step is no tool run; it goes back to a version the person has seen)."""
    return tool != REVERT and registry.get(tool).mutates


def running_step(db: Session, session: SessionRow) -> StepRow | None:
    query = select(StepRow).where(StepRow.session_id == session.id, StepRow.status == "running")
    return db.scalars(query).first()


def needs_approval(registry: Registry, policy: str, tool: str) -> bool:
    """Whether the policy asks the person first; the registry's ``mutates`` decides what is read-only."""
    mutates = tool == REVERT or registry.get(tool).mutates
    match policy:
        case "always":
            return True
        case "mutating":
            return mutates
        case "never":
            return False
    raise ValueError(f"unknown approval policy {policy!r}")  # the settings and the API refuse it first


def checked_call(db: Session, session: SessionRow, registry: Registry, tool: str, params: dict[str, Any]) -> ToolCall:
    """The call validated against the tool's schema and the current version's columns (``ToolCallError``
    otherwise), its parameters in full."""
    columns = list(db.get_one(VersionRow, (session.id, session.version)).profile["columns"])
    return validate_call(registry, tool, params, columns)


def broken_rules(session: SessionRow, call: ToolCall) -> list[str]:
    """Each rule in force that the call breaks, quoted."""
    return violations(call, Guidance.model_validate(session.guidance))


def allowed_params(db: Session, session: SessionRow, registry: Registry, tool: str, params: dict[str, Any]) -> dict:
    """The call's parameters in full, once the tool's schema and the rules in force have passed it; else
    :class:`InvalidParams` naming the field, or :class:`RuleViolation` quoting the rule."""
    try:
        call = checked_call(db, session, registry, tool, params)
    except ToolCallError as exc:
        raise InvalidParams(str(exc), exc.errors) from None
    broken = broken_rules(session, call)
    if broken:
        raise RuleViolation(f"not run: {'; '.join(broken)}. Change the parameters, or change the rule first "
                            "(say it in the chat).", [{"loc": ["params"], "msg": b} for b in broken])  # fmt: skip
    return call.params
