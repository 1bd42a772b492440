"""harmonise_categories: one spelling per category, so ``Male``, ``male``, ``M`` and `` m `` count as one.

Which spellings are one category is decided by :mod:`tools.spelling` (key collision, abbreviations and,
optionally, near-miss spellings of a far more frequent value), failing closed: two real categories are
never merged on a guess. The person's ``mapping`` is applied on top and wins: an entry decides its
spelling, a spelling mapped to itself stays apart, and renaming a found group's canonical spelling renames
the whole group.

With no ``columns`` every categorical text column is harmonised; identifiers, free text, numbers, yes/no
columns (``coerce_types`` reads those) and the target are left alone. The target is harmonised only when
named in ``columns`` or ``mapping``.

``fitted`` holds, per column, every spelling seen with the category it became, the canonical values and
the keys that name exactly one of them. ``reapply`` maps the spellings seen; a new spelling whose key is a
canonical value's key (``MALE``) is mapped too; any other new value is left as it is and reported in
``table.attrs["copilot_notes"]``, which ``copilot apply`` prints as a warning.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.feature_types import profile_table
from tools.spelling import fingerprint, group_spellings

_SHOWN = 5


class HarmoniseParams(ToolParams):
    columns: list[str] = Field(
        default_factory=list,
        description="Columns whose categories to harmonise. Empty: every categorical text column, never "
        "identifiers, free text or the target.",
    )
    mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Your corrections, per column: {column: {spelling: category}}, e.g. "
        "{'sex': {'M': 'Male', 'unk': 'Unknown'}}. They win over what is found; a spelling mapped to "
        "itself is kept as a category of its own.",
    )
    near_miss: bool = Field(
        True,
        description="Also merge a rare misspelling (e.g. 'femal') into a value at least ten times as "
        "frequent that is one or two letters away; two common values are never merged.",
    )
    similarity: float = Field(
        0.75,
        ge=0.5,
        le=1.0,
        description="How alike a misspelling must be to the value it joins (1 = identical; 0.75 lets one "
        "letter differ in a four-letter word).",
    )


def reapply_harmonise(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Map the spellings in ``fitted["columns"]`` to their categories (a copy is returned).

    Each entry: ``mapping`` (every spelling seen -> its category), ``keys`` (a fingerprint -> the one
    category it names) and ``role``. A new spelling with a known key is mapped by it; any other new
    value is kept and reported in ``table.attrs["copilot_notes"]``.
    Self-contained: its source is copied into the exported pipeline.
    """
    import re
    import unicodedata

    import pandas as pd

    def fingerprint(value: str) -> str:  # the same key as tools.spelling.fingerprint
        text = value.strip().lower()
        for sign, word in ((r"\+", " plus "), (r"<", " lt "), (r">", " gt "), (r"-(?=\s|$)", " minus ")):
            text = re.sub(sign, word, text)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
        text = re.sub(r"[^\w\s]|_", "", text)
        return " ".join(sorted(set(text.split())))

    out = table.copy()
    notes = list(out.attrs.get("copilot_notes", []))
    for name, spec in fitted["columns"].items():
        if name not in out.columns:
            if spec.get("role") == "target":
                continue
            raise ValueError(f"column {name!r} is missing from the data; the pipeline expects it")
        col = out[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(object)
        mapping = dict(spec["mapping"])
        text = col[col.map(lambda v: isinstance(v, str))]
        unseen = sorted(set(text.unique()) - set(mapping))
        left = []
        for value in unseen:
            known = spec["keys"].get(fingerprint(value) or None)
            if known is None:
                left.append(value)
            else:
                mapping[value] = known
        changes = {k: v for k, v in mapping.items() if k != v}
        if text.isin(list(changes)).any():
            mapped = col.map(lambda v, changes=changes: changes.get(v, v) if isinstance(v, str) else v)
            col = mapped.astype(col.dtype) if isinstance(col.dtype, pd.StringDtype) else mapped
        out[name] = col
        if left:
            shown = ", ".join(repr(v) for v in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            noun = "value" if len(left) == 1 else "values"
            kept = "left as it is" if len(left) == 1 else "left as they are"
            notes.append(f"column {name!r}: {len(left)} {noun} not seen when fitted, {kept}: {shown}")
    out.attrs["copilot_notes"] = notes
    return out


def default_columns(profile: dict[str, Any], ctx: ToolContext) -> list[str]:
    """Categorical text columns that are neither identifiers nor the target."""
    return [
        name
        for name, info in profile["columns"].items()
        if info["type"] == "categorical"
        and not info["numeric_as_text"]
        and info["dtype"] in ("object", "str", "string", "category")
        and name not in ctx.id_columns
        and name != ctx.target
    ]


def pick_columns(table: pd.DataFrame, params: HarmoniseParams, ctx: ToolContext) -> list[str]:
    names = set(map(str, table.columns))
    unknown = sorted({*params.columns, *params.mapping} - names)
    if unknown:
        raise ValueError(f"column(s) {unknown} are not in the table; pick from: {', '.join(map(str, table.columns))}")
    refused = sorted(c for c in {*params.columns, *params.mapping} if c in ctx.id_columns)
    if refused:
        raise ValueError(f"column(s) {refused} are identifiers, which harmonise_categories leaves alone")
    if params.columns:
        chosen = list(params.columns)
    else:
        profile = profile_table(table, ctx.target, ctx.id_columns, ctx.task)
        chosen = default_columns(profile, ctx)
    return chosen + [c for c in params.mapping if c not in chosen]


def spelling_counts(col: pd.Series) -> dict[str, int]:
    """Cells per text value, as written (numbers and missing cells aside)."""
    text = col[col.map(lambda v: isinstance(v, str))]
    return {str(k): int(v) for k, v in text.value_counts(sort=False).sort_index().items()}


def fit_column(counts: dict[str, int], edits: dict[str, str], params: HarmoniseParams, role: str) -> dict[str, Any]:
    """The fitted state of one column: the groups found, with the person's edits on top.

    ``keys`` maps the fingerprint of every spelling to its category, where that is one category only."""
    groups = group_spellings(counts, params.near_miss, params.similarity)
    found = {variant: g.canonical for g in groups for variant in g.variants}
    renamed = {c: edits[c] for c in set(found.values()) if c in edits}
    mapping = {v: edits.get(v, renamed.get(c, c)) for v, c in found.items()}
    mapping |= edits  # spellings the person names that are not in this table: for new data
    canonical = sorted(set(mapping.values()))
    by_key: dict[str, set[str]] = {}
    for variant, category in mapping.items():
        by_key.setdefault(fingerprint(variant), set()).add(category)
    keys = {k: next(iter(c)) for k, c in sorted(by_key.items()) if k and len(c) == 1}
    return {"mapping": dict(sorted(mapping.items())), "canonical": canonical, "keys": keys, "role": role}


def column_report(name: str, before: pd.Series, after: pd.Series, spec: dict[str, Any]) -> dict[str, Any]:
    changed = before.ne(after) & before.notna()
    counts = spelling_counts(before)
    groups: dict[str, dict[str, int]] = {}
    for variant, category in spec["mapping"].items():
        if variant in counts:
            groups.setdefault(category, {})[variant] = counts[variant]
    shown = [
        {"canonical": c, "count": sum(v.values()), "variants": dict(sorted(v.items(), key=lambda kv: -kv[1]))}
        for c, v in sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    return {
        "column": name,
        "spellings_before": len(counts),
        "categories_after": len(groups),
        "cells_changed": int(changed.sum()),
        "groups": [g for g in shown if len(g["variants"]) > 1 or g["canonical"] not in g["variants"]],
    }


def summarise(reports: list[dict[str, Any]]) -> str:
    if not reports:
        return "No categorical text column to harmonise; nothing changed."
    changed = [r for r in reports if r["cells_changed"]]
    if not changed:
        return f"Every category in {len(reports)} column(s) already had one spelling; nothing changed."
    parts = []
    for r in changed[:_SHOWN]:
        merged = "; ".join(
            f"{', '.join(repr(v) for v in g['variants'] if v != g['canonical'])} → {g['canonical']!r}"
            for g in r["groups"][:3]
        )
        parts.append(
            f"{r['column']}: {r['spellings_before']} spellings became {r['categories_after']} categories "
            f"({r['cells_changed']} cells; {merged})"
        )
    more = f" and {len(changed) - _SHOWN} more column(s)" if len(changed) > _SHOWN else ""
    return "Harmonised the spellings of " + " | ".join(parts) + more + ". Edit `mapping` to change any of them."


class HarmoniseCategories(Tool):
    name = "harmonise_categories"
    description = (
        "Give each category one spelling: values that differ only in case, spaces, accents or punctuation "
        "('Male', 'male', ' male '), one-letter abbreviations ('M' for 'male', 'Y' for 'yes') and rare "
        "misspellings of a much more common value ('femal') become its most frequent spelling. Two common "
        "values are never merged. The mapping is shown and can be edited; identifiers, free text and the "
        "target are untouched. Re-applies to new data and reports values it has not seen."
    )
    category = "schema"
    mutates = True
    Params = HarmoniseParams
    reapply = staticmethod(reapply_harmonise)

    def run(self, table: pd.DataFrame, params: HarmoniseParams, ctx: ToolContext) -> ToolResult:
        ctx.progress(0.0, "choosing the columns")
        columns = pick_columns(table, params, ctx)
        fitted: dict[str, Any] = {"columns": {}}
        for i, name in enumerate(columns):
            ctx.check_cancelled()
            ctx.progress(i / max(len(columns), 1), f"grouping the spellings of {name}")
            role = "target" if name == ctx.target else "feature"
            edits = params.mapping.get(name, {})
            fitted["columns"][name] = fit_column(spelling_counts(table[name]), edits, params, role)
        out = reapply_harmonise(table, fitted)
        out.attrs.pop("copilot_notes", None)
        reports = [column_report(c, table[c], out[c], fitted["columns"][c]) for c in columns]
        changed = [r for r in reports if r["cells_changed"]]
        chart = Chart(
            "bar", "Cells given another spelling", [r["column"] for r in changed],
            [float(r["cells_changed"]) for r in changed], "column", "cells",
        )  # fmt: skip
        metrics = {
            "columns_changed": float(len(changed)),
            "cells_changed": float(sum(r["cells_changed"] for r in reports)),
            "spellings_merged": float(sum(r["spellings_before"] - r["categories_after"] for r in reports)),
        }
        return ToolResult(
            summary=summarise(reports),
            table=out,
            findings={
                "columns": reports,
                "changed_columns": [r["column"] for r in changed],
                "mapping_groups": {r["column"]: r["groups"] for r in changed},
            },
            metrics=metrics,
            charts=[chart] if changed else [],
            fitted=fitted,
        )
