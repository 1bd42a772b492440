"""Find exact and near-duplicate rows, and rows whose features agree but whose labels do not.

Identifier columns are never compared, but they say which rows are the same
record: rows that agree on every compared value and on their identifiers are one
record written twice (dropped with ``action: drop``); rows that agree on every
compared value but carry different identifiers are different records that
happen to look alike (different patients with the same scores, say), and are
only reported. Without an identifier column a group counts as a repeat when
chance cannot explain it: where every column holds a few coded answers, different
people give identical rows (a survey of 6,366 people has 1,178 such rows). The
tool estimates how many identical pairs independent columns would produce by
chance (``n(n-1)/2`` times the product over columns of the chance that two rows
agree there); when that reaches ``CHANCE_SHARE`` of the repeats found, identical
rows are expected and are only reported (``require_evidence``).

Near mode compares a normalised copy: numbers standardised and rounded to ``tolerance`` standard
deviations, text stripped, case-folded and with runs of spaces collapsed.
Rounding puts values into bins, so two values a hair apart can fall on either
side of a bin edge and be missed; a smaller tolerance makes that rarer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tools._frame import column_kinds, is_number_dtype, json_labels, json_value, plural, robust_scale
from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.holdout import scored_rows

EXAMPLE_CAP = 50
ROWS_PER_EXAMPLE = 20
#: Identical rows are expected, not evidence of repeats, when chance explains this share of them.
CHANCE_SHARE = 0.05


class DuplicatesParams(ToolParams):
    mode: Literal["exact", "near"] = Field(
        "exact",
        description=(
            "exact: rows with identical values; near: numbers equal within tolerance standard "
            "deviations and text equal ignoring case and surrounding spaces."
        ),
    )
    action: Literal["flag", "drop"] = Field("drop", description="flag: only report; drop: remove the copies.")
    keep: Literal["first", "last"] = Field("first", description="Which row of each duplicate group to keep.")
    include_target: bool = Field(
        True,
        description=(
            "Compare the target too, so rows that differ only in their label are not merged "
            "(they are reported as conflicts instead). Identifier columns are never compared."
        ),
    )
    tolerance: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Near mode: numbers within this many standard deviations count as equal.",
    )
    require_evidence: bool = Field(
        True,
        description="Without identifiers, drop look-alike rows only when chance cannot explain them (columns of "
        "a few coded answers make identical rows common); otherwise report them. False: drop them anyway.",
    )


@dataclass(frozen=True)
class Group:
    """Rows (index labels, in table order) holding the same values, and the one kept."""

    rows: list[Any]
    kept: Any


class Duplicates(Tool):
    name = "duplicates"
    description = (
        "Find rows entered more than once (exact, or near: tiny numeric differences, case and spaces "
        "in text) and drop the copies. Identifiers are not compared, but rows with different identifiers "
        "are different records and are only reported; rows with the same features but different labels "
        "are reported as conflicts."
    )
    category = "anomalies"
    mutates = True
    train_only = True
    sees_held_out = True  # a copy of a held-out row among the training rows is a leak: drop the copy
    Params = DuplicatesParams

    def run(self, table: pd.DataFrame, params: DuplicatesParams, ctx: ToolContext) -> ToolResult:
        features, target = compared_columns(table, ctx)
        key = features + ([target] if target and params.include_target else [])
        normalised = normalise(table[features + ([target] if target else [])], params)
        alike = duplicate_groups(normalised[key], params.keep) if key else []
        groups, distinct = by_record(alike, table[identifier_columns(table, ctx)], params.keep)
        groups = keep_held_out(groups, table.index[scored_rows(table, ctx.target, ctx.holdout, ctx.seed)])
        ctx.check_cancelled()
        conflicts = conflict_groups(normalised, features, target) if features and target else []
        ids = identifier_columns(table, ctx)
        chance = chance_pairs(normalised[key]) if key and not ids else 0.0
        expected = params.require_evidence and chance >= CHANCE_SHARE * sum(len(g.rows) - 1 for g in groups)
        dropped = [row for g in groups for row in g.rows if row != g.kept]
        out = table.drop(index=dropped) if params.action == "drop" and not expected else table.copy()
        return _result(table, out, groups, conflicts, key, params, target, distinct, (chance, bool(expected)))


def chance_pairs(frame: pd.DataFrame) -> float:
    """How many pairs of rows would agree on every column by chance, were the columns independent: the pairs
    of the table times, per column, the share of pairs of rows that agree there (``sum c(c-1) / n(n-1)`` over
    the counts ``c`` of its values: 0 for a column of distinct numbers, a third for three equal codes)."""
    n = len(frame)
    if n < 2:
        return 0.0
    agree = 1.0
    for column in frame.columns:
        counts = frame[column].value_counts(dropna=False).to_numpy(dtype=float)
        agree *= float((counts * (counts - 1)).sum()) / (n * (n - 1))
    return n * (n - 1) / 2 * agree


def keep_held_out(groups: list[Group], held: pd.Index) -> list[Group]:
    """Each group keeps a row held out for scoring when it has one, so the copy dropped is a training row."""
    if held.empty:
        return groups
    return [Group(g.rows, next((r for r in g.rows if r in held), g.kept)) for g in groups]


def compared_columns(table: pd.DataFrame, ctx: ToolContext) -> tuple[list[str], str | None]:
    """Feature columns to compare (never identifiers) and the target, if the table has it."""
    kinds = column_kinds(table, ctx)
    features = [c for c in ctx.feature_columns(table) if kinds[c] != "identifier"]
    target = ctx.target if ctx.target in table.columns else None
    return features, target


def identifier_columns(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """The columns that name a record: those the person named, and those typed as identifiers."""
    kinds = column_kinds(table, ctx)
    return [c for c in table.columns if c != ctx.target and (c in ctx.id_columns or kinds.get(c) == "identifier")]


def by_record(groups: list[Group], ids: pd.DataFrame, keep: str) -> tuple[list[Group], list[Group]]:
    """Split look-alike groups by identifier: rows with the same identifiers are one record repeated (the
    first list); a group whose rows carry more than one identifier holds distinct records (the second)."""
    if ids.columns.empty:
        return groups, []
    repeats, distinct = [], []
    for group in groups:
        repeats += duplicate_groups(ids.loc[group.rows], keep)
        if ids.loc[group.rows].drop_duplicates().shape[0] > 1:
            distinct.append(Group(group.rows, group.rows[0]))
    return repeats, distinct


def normalise(frame: pd.DataFrame, params: DuplicatesParams) -> pd.DataFrame:
    """The columns as compared: unchanged in exact mode, binned numbers and folded text in near mode."""
    if params.mode == "exact":
        return frame
    return pd.DataFrame({c: _near_key(frame[c], params.tolerance) for c in frame.columns}, index=frame.index)


def _near_key(series: pd.Series, tolerance: float) -> pd.Series:
    """Numbers: robust z rounded to ``tolerance`` units (robust, so one unit slip does not widen
    the bins); datetimes as they are; anything else as folded text."""
    if is_number_dtype(series):
        values = series.astype(float)
        scale = robust_scale(values)
        spread = scale.spread or values.std()
        spread = spread if spread and np.isfinite(spread) else 1.0
        return np.round((values - scale.center) / (spread * tolerance))
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return series.astype("str").str.strip().str.casefold().str.replace(r"\s+", " ", regex=True)


def duplicate_groups(frame: pd.DataFrame, keep: str) -> list[Group]:
    """Groups of rows with equal values (missing equals missing), in order of first appearance."""
    hashes = pd.util.hash_pandas_object(frame, index=False)
    repeated = hashes[hashes.duplicated(keep=False)]
    groups = []
    for _, rows in repeated.groupby(repeated, sort=False):
        labels = list(rows.index)
        groups.append(Group(labels, labels[0] if keep == "first" else labels[-1]))
    return groups


def conflict_groups(normalised: pd.DataFrame, features: list[str], target: str) -> list[Group]:
    """Groups of rows with equal features but more than one distinct (non-missing) target value."""
    groups = duplicate_groups(normalised[features], "first")
    return [g for g in groups if normalised.loc[g.rows, target].nunique(dropna=True) > 1]


def _result(
    table: pd.DataFrame,
    out: pd.DataFrame,
    groups: list[Group],
    conflicts: list[Group],
    key: list[str],
    params: DuplicatesParams,
    target: str | None,
    distinct: list[Group],
    chance: tuple[float, bool],
) -> ToolResult:
    redundant = sum(len(g.rows) - 1 for g in groups)
    examples = [
        {"rows": json_labels(g.rows[:ROWS_PER_EXAMPLE]), "kept": json_value(g.kept), "size": len(g.rows)}
        for g in groups[:EXAMPLE_CAP]
    ]
    conflict_examples = [
        {
            "rows": json_labels(g.rows[:ROWS_PER_EXAMPLE]),
            "labels": [json_value(v) for v in table.loc[g.rows[:ROWS_PER_EXAMPLE], target]],
        }
        for g in conflicts[:EXAMPLE_CAP]
    ]
    findings = {
        "mode": params.mode,
        "action": params.action,
        "columns_compared": key,
        "groups": len(groups),
        "duplicate_rows": redundant,
        "chance_pairs": round(chance[0], 2),
        "expected_by_chance": chance[1],
        "examples": examples,
        "distinct_records": {
            "groups": len(distinct),
            "rows": sum(len(g.rows) for g in distinct),
            "examples": [{"rows": json_labels(g.rows[:ROWS_PER_EXAMPLE])} for g in distinct[:EXAMPLE_CAP]],
        },
        "conflicts": {
            "groups": len(conflicts),
            "rows": sum(len(g.rows) for g in conflicts),
            "examples": conflict_examples,
        },
    }
    metrics = {
        "groups": float(len(groups)),
        "duplicate_rows": float(redundant),
        "rows_dropped": float(len(table) - len(out)),
        "conflict_groups": float(len(conflicts)),
        "distinct_record_groups": float(len(distinct)),
    }
    return ToolResult(
        summary=_summary(findings, table, params, target),
        table=out,
        findings=findings,
        metrics=metrics,
        charts=_charts(groups),
    )


def _summary(findings: dict[str, Any], table: pd.DataFrame, params: DuplicatesParams, target: str | None) -> str:
    ignored = [c for c in table.columns if c not in findings["columns_compared"]]
    compared = f"comparing {plural(len(findings['columns_compared']), 'column')}"
    if ignored:
        compared += f" (ignoring {', '.join(map(str, ignored))})"
    if findings["groups"]:
        text = (
            f"Found {plural(findings['groups'], 'group')} of {params.mode} duplicates holding "
            f"{plural(findings['duplicate_rows'], 'redundant row')}, {compared}."
        )
        if findings["expected_by_chance"]:
            text += (
                f" Independent columns would give about {findings['chance_pairs']:.0f} identical pairs by chance "
                "alone, so these are likely different records that answer alike: nothing was dropped "
                "(require_evidence: set it to false to drop them anyway)."
            )
        elif params.action == "drop":
            text += f" Dropped them, keeping the {params.keep} row of each group."
        else:
            text += " Nothing was dropped."
    else:
        text = f"No {params.mode} duplicate rows found, {compared}; the table is unchanged."
    alike = findings["distinct_records"]
    if alike["groups"]:
        text += (
            f" {plural(alike['groups'], 'group')} of {plural(alike['rows'], 'row')} agree on every compared value "
            "but carry different identifiers: different records that look alike, kept."
        )
    n_conflicts = findings["conflicts"]["groups"]
    if n_conflicts:
        text += (
            f" {plural(n_conflicts, 'group')} of rows share all features but disagree on {target}"
            " (conflicting labels); review them, e.g. with label_issues."
        )
    return text


def _charts(groups: list[Group]) -> list[Chart]:
    if not groups:
        return []
    sizes = pd.Series([len(g.rows) for g in groups]).value_counts().sort_index()
    return [
        Chart(
            "bar",
            "Duplicate groups by size",
            [f"{size} rows" for size in sizes.index],
            [float(v) for v in sizes],
            "rows in the group",
            "groups",
        )
    ]
