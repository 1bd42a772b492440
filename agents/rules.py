"""Rules an LLM read from the chat are suggestions: only what tightens the rules in force, shown first.

The person's rules are the person's. An LLM coordinator may read rules from a
message the rule-based reader did not understand; what it returns never
takes effect by itself. :func:`suggest` keeps only the parts that tighten the
rules in force (another column to keep, no more row drops, a narrower range,
a goal) and says which parts it refused (anything that would loosen a rule:
row drops allowed again, a kept column let go, a wider range). The person
accepts a suggestion by its id, or it is replaced by the next one.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from agents.guard import Range, describe_range
from agents.plan import Guidance


class RuleSuggestion(BaseModel):
    """Rules waiting for the person: the guidance once accepted, and what it changes."""

    id: str = Field(description="Name it to accept the suggestion; a new suggestion gets a new id.")
    guidance: Guidance = Field(description="The rules in force once the person accepts.")
    changes: list[str] = Field(description="What accepting changes, one sentence each.")


def suggest(current: Guidance, read: Guidance) -> tuple[Guidance, list[str], list[str]]:
    """The rules once the tightening parts of ``read`` are added to ``current``, a sentence per change,
    and a sentence per part refused because it would loosen a rule in force."""
    changes, refused = [], []
    keep = list(current.keep_columns)
    for column in read.keep_columns:
        if column not in keep:
            keep.append(column)
            changes.append(f"keep column {column}")
    let_go = [c for c in current.keep_columns if c not in read.keep_columns]
    if let_go:
        refused.append(f"to stop keeping column(s) {let_go}")
    drops = current.allow_row_drops
    if current.allow_row_drops and not read.allow_row_drops:
        drops = False
        changes.append("never drop rows")
    elif not current.allow_row_drops and read.allow_row_drops:
        refused.append("to allow row drops again")
    ranges = dict(current.ranges)
    for column, wanted in read.ranges.items():
        narrowed, wider = _intersect(current.ranges.get(column), wanted)
        if wider:
            refused.append(f"to widen {column} to {describe_range(wanted)}")
        if narrowed is None:
            refused.append(f"{column} in {describe_range(wanted)}, which leaves no valid value")
        elif narrowed != current.ranges.get(column):
            ranges[column] = narrowed
            changes.append(f"{column} must lie in {describe_range(narrowed)}")
    goal = current.goal
    if read.goal and read.goal != current.goal:
        goal = read.goal
        changes.append(f"the goal is: {read.goal}")
    tightened = current.model_copy(update={"keep_columns": keep, "allow_row_drops": drops, "ranges": ranges,
                                           "goal": goal})  # fmt: skip
    return tightened, changes, refused


def _intersect(current: Range | None, wanted: Range) -> tuple[Range | None, bool]:
    """Both ranges at once (None when nothing is left), and whether ``wanted`` was wider on an end."""
    if current is None:
        return (wanted if _valid(wanted) else None), False
    low = _tighter(current[0], wanted[0], max)
    high = _tighter(current[1], wanted[1], min)
    wider = (current[0] is not None and (wanted[0] is None or wanted[0] < current[0])) or (
        current[1] is not None and (wanted[1] is None or wanted[1] > current[1])
    )
    return ((low, high) if _valid((low, high)) else None), wider


def _tighter(a: float | None, b: float | None, pick: Callable[[float, float], float]) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return float(pick(a, b))


def _valid(bounds: Range) -> bool:
    return bounds[0] is None or bounds[1] is None or bounds[0] <= bounds[1]
