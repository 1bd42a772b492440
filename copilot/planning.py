"""The engine's view of planning: the coordinator's input built from the store."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.plan import Guidance, Observation, PlanStep
from agents.rule_based import PlanningState, RuleBasedCoordinator
from copilot.cleaning import resolve_id_columns
from copilot.store import SessionRow, StepRow, VersionRow
from copilot.versions import Version, VersionStore
from tools.feature_types import profile_table
from tools.registry import Registry

#: Statuses the coordinator learns from; an interrupted step is not among them, so it may come back.
OBSERVED = ("done", "failed", "rejected", "skipped", "reverted")


class Planner:
    def __init__(self, registry: Registry, versions: VersionStore) -> None:
        self.registry = registry
        self.versions = versions
        self.coordinator = RuleBasedCoordinator()

    def first_version(
        self, table: pd.DataFrame, target: str, id_columns: list[str], task: str
    ) -> tuple[Version, dict[str, Any], list[str]]:
        """Store the uploaded table as version 0; return it with its profile and identifiers."""
        profile = profile_table(table, target=target, id_columns=id_columns, task=task)
        ids = resolve_id_columns(profile, id_columns, target)
        return self.versions.add_table(table), profile, ids

    def plan(self, db: Session, session: SessionRow) -> list[PlanStep]:
        profile = db.get_one(VersionRow, (session.id, session.version)).profile
        state = PlanningState(profile, session.target, session.task, list(session.id_columns),
                              Guidance.model_validate(session.guidance), history(db, session))  # fmt: skip
        return self.coordinator.plan(state)


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
