"""The engine's view of planning: the agents' input built from the store, and the LLM requests it kept.

What an LLM may see is a share level (:data:`agents.llm.SHARE_LEVELS`): a session chooses one when it is
created (``aggregates`` unless it asks for more), never more than the server's ``COPILOT_LLM_SHARE``, and
the server's setting caps it again whenever the data is summarised (a server set lower later wins).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.llm import SHARE_LEVELS, Share, Usage, allows
from agents.pair import AgentPair, Proposal
from agents.plan import Guidance, Observation
from agents.rule_based import PlanningState
from agents.summary import summarize
from copilot.errors import InvalidParams, NotFound
from copilot.storage.store import LLMRequestRow, MessageRow, SessionRow, StepRow, VersionRow
from copilot.storage.versions import Version, VersionStore
from tools.feature_types import profile_table
from tools.registry import Registry

#: Statuses the coordinator learns from; an interrupted step is not among them, so it may come back.
OBSERVED = ("done", "failed", "rejected", "skipped", "reverted")
RECENT_MESSAGES = 10


class Planner:
    def __init__(self, registry: Registry, versions: VersionStore, agents: AgentPair, share: Share) -> None:
        """``share``: the most the server lets any session show an LLM."""
        self.registry = registry
        self.versions = versions
        self.agents = agents
        self.share = share

    def first_version(
        self, table: pd.DataFrame, target: str, id_columns: list[str], task: str
    ) -> tuple[Version, dict[str, Any], list[str]]:
        """Store the uploaded table as version 0; return it with its profile and identifiers."""
        profile = profile_table(table, target=target, id_columns=id_columns, task=task)
        ids = resolve_id_columns(profile, id_columns, target)
        return self.versions.add_table(table), profile, ids

    def state(self, db: Session, session: SessionRow) -> PlanningState:
        """Everything the agents read, copied out of the transaction so planning can run without it."""
        version = db.get_one(VersionRow, (session.id, session.version))
        maker = db.get(StepRow, version.step_id) if version.step_id is not None else None
        query = select(MessageRow.text).where(MessageRow.session_id == session.id, MessageRow.role == "user")
        messages = list(db.scalars(query.order_by(MessageRow.id.desc()).limit(RECENT_MESSAGES)))[::-1]
        return PlanningState(
            version.profile, session.target, session.task, list(session.id_columns),
            Guidance.model_validate(session.guidance), history(db, session),
            current_step=maker.key if maker is not None else None, messages=messages,
            llm_data=None if self.agents.instant else self._llm_data(session, version),
            holdout=session.holdout or 0.0,
        )  # fmt: skip

    def propose(self, state: PlanningState, usage: Usage) -> Proposal:
        """Ask the agents; slow when they use an LLM, so never called inside a transaction. What an LLM
        may see of the version is already in ``state.llm_data``."""
        return self.agents.propose(state, self.registry, usage)

    def _llm_data(self, session: SessionRow, version: VersionRow) -> dict[str, Any]:
        """The data document for an LLM at the session's share level; only the columns it summarises are read."""
        share = session_share(session.llm_share, self.share)
        profile = version.profile
        wanted = None if allows(share, "samples") else [c for c, info in profile["columns"].items() if "stats" in info]
        table = pd.read_parquet(self.versions.blob_path(version.blob), columns=wanted)
        return summarize(profile, session.target, list(session.id_columns), share, table)


def check_share(wanted: Share, server: Share) -> None:
    """Refuse a session that asks an LLM to see more than the server allows."""
    if not allows(server, wanted):
        levels = " < ".join(SHARE_LEVELS)
        message = (f"llm_share {wanted!r} is more than this server allows: its COPILOT_LLM_SHARE is {server!r} "
                   f"({levels})")  # fmt: skip
        raise InvalidParams(message, [{"loc": ["llm_share"], "msg": message}])


def session_share(chosen: str | None, server: Share) -> Share:
    """What a session's LLM sees: its choice (``aggregates`` when it made none), capped by the server's."""
    level = next((known for known in SHARE_LEVELS if known == chosen), "aggregates")
    return level if allows(server, level) else server


def keep_requests(db: Session, session_id: str, usage: Usage) -> None:
    """Store the requests counted in ``usage`` with their session, for its owner to read."""
    db.add_all(LLMRequestRow(session_id=session_id, purpose=sent.purpose, request=sent.request, at=sent.at)
               for sent in usage.requests)  # fmt: skip


def sent_requests(
    db: Session, session_id: str, owner: str, offset: int = 0, limit: int | None = None
) -> list[LLMRequestRow]:
    """Every request the session sent to an LLM, oldest first; another owner's session is :class:`NotFound`."""
    session = db.get(SessionRow, session_id) if len(session_id) <= 32 else None
    if session is None or session.owner != owner:
        raise NotFound(f"no session {session_id!r}")
    query = select(LLMRequestRow).where(LLMRequestRow.session_id == session_id).order_by(LLMRequestRow.id)
    return list(db.scalars(query.offset(offset).limit(limit)))


def resolve_id_columns(profile: dict[str, Any], given: list[str], target: str) -> list[str]:
    """The identifiers the user named plus those the profile recognised."""
    return sorted({*given, *profile.get("suggested_id_columns", [])} - {target})


def history(db: Session, session: SessionRow) -> list[Observation]:
    query = select(StepRow).where(StepRow.session_id == session.id, StepRow.status.in_(OBSERVED))
    return [_observation(step) for step in db.scalars(query.order_by(StepRow.position)) if not step.interrupted]


def _observation(step: StepRow) -> Observation:
    result = step.result or {}
    return Observation(
        key=step.key, tool=step.tool, status=step.status,  # type: ignore[arg-type]
        summary=result.get("summary", step.error or ""), metrics=result.get("metrics", {}),
        findings=result.get("findings", {}), params=dict(step.params or {}),
    )  # fmt: skip
