"""The engine's view of planning: the agents' input built from the store."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.llm import Usage
from agents.pair import AgentPair, Proposal
from agents.plan import Guidance, Observation
from agents.rule_based import PlanningState
from agents.summary import sample_rows
from copilot.store import MessageRow, SessionRow, StepRow, VersionRow
from copilot.versions import Version, VersionStore
from tools.feature_types import profile_table
from tools.registry import Registry

#: Statuses the coordinator learns from; an interrupted step is not among them, so it may come back.
OBSERVED = ("done", "failed", "rejected", "skipped", "reverted")
RECENT_MESSAGES = 10


class Planner:
    def __init__(self, registry: Registry, versions: VersionStore, agents: AgentPair, share: str) -> None:
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
        )  # fmt: skip

    def propose(self, state: PlanningState, usage: Usage, blob: str) -> Proposal:
        """Ask the agents; slow when they use an LLM, so never called inside a transaction."""
        samples = self._samples(state, blob) if self.agents.instant is False and self.share == "samples" else []
        return self.agents.propose(state, self.registry, usage, samples)

    def _samples(self, state: PlanningState, blob: str) -> list[dict]:
        table = pd.read_parquet(self.versions.blob_path(blob))
        return sample_rows(table, state.profile, state.id_columns, "samples")


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
        findings=result.get("findings", {}),
    )  # fmt: skip
