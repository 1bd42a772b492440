"""Read models built from store rows: sessions, steps, versions, events, exports, report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.plan import HELD_OUT_SUFFIX, REVERT
from agents.rules import RuleSuggestion
from copilot.data.pipeline import PipelineSpec, PipelineStep, RowChanges, Source
from copilot.session.views import (
    EventView,
    MessageView,
    PendingStep,
    PreviewView,
    ReportView,
    SessionView,
    StepView,
    VersionView,
)
from copilot.storage.store import EventRow, MessageRow, PreviewRow, SessionRow, StepRow, VersionRow
from tools.registry import Registry

#: The form of a backtracking step: which step to undo; it is fixed by the plan, not edited.
REVERT_SCHEMA = {"type": "object", "title": "revert", "properties": {"step": {"type": "string", "readOnly": True}}}


def steps_of(db: Session, session: SessionRow) -> list[StepRow]:
    """The plan as the person sees it: every step but those withdrawn from the gate by a re-plan."""
    query = select(StepRow).where(StepRow.session_id == session.id, StepRow.status != "superseded")
    query = query.order_by(StepRow.position)
    return list(db.scalars(query))


def step_view(step: StepRow) -> StepView:
    result = step.result or {}
    return StepView(
        id=step.id, key=step.key, tool=step.tool, params=step.params, rationale=step.rationale,
        status=step.status, summary=result.get("summary", ""), error=step.error,  # type: ignore[arg-type]
        metrics=result.get("metrics", {}), findings=result.get("findings", {}), charts=result.get("charts", []),
        version=step.version_after, duration_s=result.get("duration_s"), runs=step.runs, started_at=step.started_at,
        finished_at=step.finished_at, executor=result.get("executor"),
    )  # fmt: skip


def pending_data(db: Session, step: StepRow, registry: Registry) -> dict[str, Any]:
    schema = REVERT_SCHEMA if step.tool == REVERT else registry.get(step.tool).schema()
    shown = shown_preview(db, step)
    return PendingStep(id=step.id, proposal=step.proposal or "", tool=step.tool, params=step.params,
                       rationale=step.rationale, params_schema=schema,
                       preview=preview_view(shown) if shown else None).model_dump()  # fmt: skip


def shown_preview(db: Session, step: StepRow) -> PreviewRow | None:
    """The preview the step waits at the gate with: made for its proposal, not yet committed or discarded."""
    if step.proposal is None:
        return None
    query = select(PreviewRow).where(PreviewRow.step_id == step.id, PreviewRow.proposal == step.proposal,
                                     PreviewRow.status == "ready")  # fmt: skip
    return db.scalars(query).first()


def preview_view(preview: PreviewRow) -> PreviewView:
    shown = {"id": preview.id, "status": preview.status, "base_version": preview.base_version,
             "version": preview.version, "content_hash": preview.blob, "params": preview.params,
             "duration_s": (preview.result or {}).get("duration_s")}  # fmt: skip
    return PreviewView.model_validate({**(preview.content or {}), **shown})


#: The key of the score of the data as uploaded; every other ``evaluate:*`` step scores cleaned data.
BASELINE = "evaluate:baseline"


@dataclass(frozen=True)
class Scores:
    """The evaluate steps behind a session's scores. A score counts only for the version it was computed
    on: after an undo or a revert, the final score of the undone data is ``outdated``, not ``after``."""

    before: StepRow | None
    after: StepRow | None
    outdated: StepRow | None = None


def step_metric(step: StepRow | None, name: str) -> Any:
    """A metric (``score``, ``n_rows``) of a finished step, or None."""
    return step.result["metrics"].get(name) if step is not None and step.result else None


def is_final_score(step: StepRow) -> bool:
    """An ``evaluate:*`` step that scores cleaned data the way the baseline was scored (a ``:retry`` uses a
    cheaper model, so its score does not compare with the baseline's)."""
    key = step.key
    return step.tool == "evaluate" and key.startswith("evaluate:") and key != BASELINE and not key.endswith(":retry")


def last_score(steps: list[StepRow], wanted: Callable[[StepRow], bool], version: str | None) -> StepRow | None:
    """The last finished step that ``wanted`` picks and that scored ``version`` (any version: None)."""
    done = [s for s in steps if wanted(s) and s.status == "done" and s.result]
    done = [s for s in done if version is None or s.version_before == version]
    return done[-1] if done else None


def scores(steps: list[StepRow], versions: list[VersionView]) -> Scores:
    """The baseline score of the upload and the final score of the current version, each if there is one."""
    upload = next((v.id for v in versions if v.parent is None), None)
    current = measured_version(steps, versions)
    before = last_score(steps, lambda s: s.key == BASELINE, upload)
    after = last_score(steps, is_final_score, current)
    latest = last_score(steps, is_final_score, None)
    return Scores(before, after, latest if after is None else None)


def measured_version(steps: list[StepRow], versions: list[VersionView]) -> str | None:
    """The version the final score speaks for: the current one, or the one before the steps that cleaned the
    held-out rows after it was scored (they change only rows that can no longer judge the cleaning)."""
    keys = {s.id: s.key for s in steps}
    by_id = {v.id: v for v in versions}
    version = next((v for v in versions if v.current), None)
    while version is not None and version.parent and keys.get(version.step_id or -1, "").endswith(HELD_OUT_SUFFIX):
        version = by_id.get(version.parent)
    return version.id if version is not None else None


def session_view(db: Session, session: SessionRow, registry: Registry) -> SessionView:
    steps = steps_of(db, session)
    pending = next((s for s in steps if s.status == "awaiting_approval"), None)
    versions = version_views(db, session)
    scored = scores(steps, versions)
    return SessionView(
        id=session.id, state=session.state, target=session.target, task=session.task,  # type: ignore[arg-type]
        goal=session.goal, policy=session.policy, source=session.source,  # type: ignore[arg-type]
        version=session.version, plan=[step_view(s) for s in steps],
        pending_step=PendingStep.model_validate(pending_data(db, pending, registry)) if pending else None,
        score_before=step_metric(scored.before, "score"), score_after=step_metric(scored.after, "score"),
        score_note=score_note(scored, versions),
        error=session.error, guidance=session.guidance, rule_suggestion=suggested_rules(session),
        agents=session.agents, llm_usage=session.llm_usage or {},
        llm_share=session.llm_share or "aggregates",  # type: ignore[arg-type]
        created_at=session.created_at, updated_at=session.updated_at,
    )  # fmt: skip


def suggested_rules(session: SessionRow) -> RuleSuggestion | None:
    """The rules an LLM suggested that wait for the person's acceptance, if any."""
    pending = (session.rule_suggestion or {}).get("suggestion")
    return RuleSuggestion.model_validate(pending) if pending else None


def message_view(message: MessageRow) -> MessageView:
    return MessageView(id=message.id, role=message.role, text=message.text, at=message.at)  # type: ignore[arg-type]


def event_view(event: EventRow) -> EventView:
    return EventView(seq=event.seq, type=event.type, at=event.at, data=event.data)  # type: ignore[arg-type]


def version_views(db: Session, session: SessionRow, offset: int = 0, limit: int | None = None) -> list[VersionView]:
    query = select(VersionRow).where(VersionRow.session_id == session.id).order_by(VersionRow.created_at, VersionRow.id)
    return [
        VersionView(id=v.id, parent=v.parent, step_id=v.step_id, tool=v.tool, n_rows=v.n_rows,
                    n_columns=v.n_columns, content_hash=v.blob, created_at=v.created_at,
                    current=v.id == session.version)
        for v in db.scalars(query.offset(offset).limit(limit))
    ]  # fmt: skip


def lineage_steps(db: Session, session: SessionRow) -> set[int]:
    """The steps that made the current version, following parents back to the upload."""
    ids: set[int] = set()
    version: VersionRow | None = db.get_one(VersionRow, (session.id, session.version))
    while version is not None:
        if version.step_id is not None:
            ids.add(version.step_id)
        version = db.get(VersionRow, (session.id, version.parent)) if version.parent else None
    return ids


def pipeline_spec(db: Session, session: SessionRow, registry: Registry) -> PipelineSpec:
    lineage = lineage_steps(db, session)
    steps = [
        PipelineStep(tool=s.tool, params=s.params, summary=(s.result or {}).get("summary", ""),
                     train_only=registry.get(s.tool).train_only, fitted=(s.result or {}).get("fitted"),
                     row_changes=RowChanges.model_validate(s.result["row_changes"])
                     if s.result and s.result.get("row_changes") else None)
        for s in steps_of(db, session) if s.id in lineage
    ]  # fmt: skip
    profile = db.get_one(VersionRow, (session.id, session.version)).profile
    fmt = session.source_format
    return PipelineSpec(source=Source(file=session.source, kind=fmt["kind"], sep=fmt.get("sep"),
                                      encoding=fmt.get("encoding")),
                        target=session.target, id_columns=list(session.id_columns), steps=steps,
                        columns=list(profile["columns"]))  # fmt: skip


def report(db: Session, session: SessionRow, registry: Registry) -> ReportView:
    view = session_view(db, session, registry)
    versions = version_views(db, session)
    return ReportView(
        session=session.id, input=session.source, target=session.target, task=session.task, state=view.state,
        id_columns=list(session.id_columns), score_before=view.score_before, score_after=view.score_after,
        score_note=view.score_note, rows_before=versions[0].n_rows,
        rows_after=next(v.n_rows for v in versions if v.current),
        steps=[s for s in view.plan if s.status != "proposed"], versions=versions,
    )  # fmt: skip


#: Steps whose dropped rows are the ones a model found hard: leaving them out raises a score by itself.
HARD_ROW_TOOLS = frozenset({"label_issues", "outliers"})


def score_note(scored: Scores, versions: list[VersionView]) -> str | None:
    """Why there is no final score for the current data, or why the baseline and final scores do not compare
    like for like (steps dropped rows between them)."""
    if scored.outdated is not None:
        version = scored.outdated.version_before
        return (f"The final score is out of date: it scored version {version}, and the data changed since "
                "(a step was undone or ran after it): score the current data to compare.")  # fmt: skip
    before, after = step_metric(scored.before, "n_rows"), step_metric(scored.after, "n_rows")
    if held_out_scores(scored):
        return (f"Both scores are on the {int(after or 0):,} rows set aside before any change (a repeated row "
                "counts once), which no row-level step touched before the final score; the model learns from the "
                "other rows.")  # fmt: skip
    if before is None or after is None or after >= before:
        return None
    before, after = int(before), int(after)
    drops = rows_dropped(versions)
    dropped = "the rows dropped (" + ", ".join(f"{n:,} by {tool}" for tool, n in drops.items()) + ") are not scored"
    note = f"The baseline score is on {before:,} rows and the final one on {after:,}: {dropped}."
    if HARD_ROW_TOOLS & set(drops):
        note += (" Rows that a model disagrees with score low, so leaving them out raises the score by itself;"
                 " judge the gain on data held out before cleaning.")  # fmt: skip
    return note


def held_out_scores(scored: Scores) -> bool:
    """Whether the baseline and the final score were both computed on the held-out rows."""
    found = [(s.result or {}).get("findings") or {} for s in (scored.before, scored.after) if s is not None]
    return len(found) == 2 and all(f.get("scored_on") == "held_out" for f in found)


def rows_dropped(versions: list[VersionView]) -> Counter[str]:
    """Rows each tool dropped on the way from the upload to the current version (undone branches left out)."""
    by_id = {v.id: v for v in versions}
    drops: Counter[str] = Counter()
    version = next((v for v in versions if v.current), None)
    while version is not None and version.parent is not None:
        parent = by_id[version.parent]
        if parent.n_rows > version.n_rows:
            drops[version.tool or "?"] += parent.n_rows - version.n_rows
        version = parent
    return drops
