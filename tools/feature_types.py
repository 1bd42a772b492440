"""feature_types: what each column is, how much of it is missing, and the profile
the coordinator plans from.

Type rules, in order; the first that applies wins:

1. **identifier**: declared in ``ctx.id_columns``; or at least 95 % distinct
   whole-number or text values whose name reads as an id (``id``, ``*_id``,
   ``PatientID``, ``case_no``) or whose cells are shaped like ids (codes such as
   ``R00012``, UUIDs, hex digests, or a run of consecutive integers like 1..n).
   A text column of pseudonyms written by ``personal_data`` (``p_`` and 16 hex digits) is one too.
2. **personal**: people's names, e-mail addresses, phone numbers, street addresses, dates of birth, or
   free text holding e-mail addresses or phone numbers, as :mod:`tools.pii_rules` recognises them from
   the cells, the column's name and its cardinality; the profile adds the kind (``personal``), the share
   of sampled cells that agree and masked examples. Judged right after a declared identifier, so a
   column of unique e-mail addresses is personal, not an identifier. No tool but ``personal_data``
   reads or changes it, and it is never a feature.
3. **constant**: at most one distinct value once missing cells and sentinel codes
   are set aside (an all-missing column is constant too: it carries nothing).
4. **boolean**: stored as booleans; only the numbers 0 and 1; or text words all
   from a yes/no vocabulary (yes/no, y/n, true/false, t/f, 1/0, any case). Other
   two-valued text, such as ``M``/``F``, is categorical.
5. **datetime**: stored as dates; or text of which at least 95 % of a sample of
   2,000 cells contains a digit and parses as a date. Numbers are never dates.
6. **text**: strings, more than half of them distinct, averaging at least 3 words
   or 30 characters per cell (on a sample).
7. **categorical**: other strings; whole numbers with at most 20 distinct values
   that are also at most 5 % of the non-missing cells.
8. **numeric**: the remaining number-like columns, stored as numbers or as text.
   A text column is ``numeric_as_text`` when at least 95 % of its non-sentinel
   cells parse as numbers once one common unit ("kg", "$", "%") is stripped; a
   unit counts when at least 5 % of the cells carry it. Text "0"/"1" columns
   are numbers first, so rules 4 and 7 apply to them as to stored numbers.

Sentinels are cells that mean "missing": in any column an empty cell or a marker
such as ``?``, ``-``, ``NA`` or ``N/A`` (:data:`tools.typing_rules.MISSING_MARKS`);
nines codes such as ``-999`` in text columns; numbers that stand out from a
numeric column's distribution (see :func:`tools.typing_rules.numeric_sentinels`);
and, in a column of numbers stored as text only, words such as ``unknown``,
``not recorded`` or ``refused`` (:data:`tools.typing_rules.CODE_WORDS`), since a
number column cannot hold them as a level. In a text or categorical column those
words are answers: they stay levels, are counted in ``top_values`` and listed in
``level_codes`` (word and cells), and only a person's explicit ``sentinels`` in
``coerce_types`` turns them into missing cells. ``missing`` counts the empty
cells and the sentinels.

A categorical text column also counts its ``spelling_variants``: distinct
spellings (as written, untrimmed) that fold into another category by case,
spacing, punctuation or a one-letter abbreviation (:mod:`tools.spelling`), the
work of ``harmonise_categories``.

Everything is vectorised over each column's distinct values; date parsing, word
counts and id shapes are judged on a sample, so a 1M-row table takes seconds.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, get_args

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from tools.base import Chart, SemanticType, Task, Tool, ToolContext, ToolParams, ToolResult
from tools.column_facts import ColumnFacts, cell_sample, column_facts
from tools.pii_rules import SAMPLE_DISTINCT, Finding, hinted, is_pseudonym_column, recognise, sample_distinct
from tools.spelling import spelling_variants
from tools.typing_rules import (
    boolean_words,
    code_shaped_share,
    format_number,
    looks_like_id_name,
)

MAX_SPELLINGS = 5000
TYPES: tuple[str, ...] = get_args(SemanticType)
_MAX_CLASS_COUNTS = 50


def classify(name: str, facts: ColumnFacts, declared_id: bool = False) -> tuple[str, str]:
    """The semantic type of a column and one sentence of evidence for it."""
    if declared_id:
        return "identifier", "Declared as an identifier column."
    if _pseudonyms(facts):
        return "identifier", "Pseudonyms written by personal_data (keyed hashes, one per person)."
    personal = personal_finding(name, facts)
    if personal is not None:
        return "personal", personal.evidence
    if facts.n_unique <= 1:
        return "constant", _constant_evidence(facts)
    id_evidence = _identifier_evidence(name, facts)
    if id_evidence:
        return "identifier", id_evidence
    if facts.kind == "bool":
        return "boolean", f"Stored as true/false values ({_top_text(facts)})."
    if facts.kind == "datetime":
        return "datetime", f"Stored as dates, from {facts.counts.index.min()} to {facts.counts.index.max()}."
    if facts.numbers is not None:
        return _number_type(facts)
    return _string_type(facts)


def _pseudonyms(facts: ColumnFacts) -> bool:
    if facts.kind != "string" or not facts.n_unique or not str(facts.counts.index[0]).startswith("p_"):
        return False
    return is_pseudonym_column(pd.Series(facts.counts.index, dtype="str"))


def personal_finding(name: str, facts: ColumnFacts) -> Finding | None:
    """The personal data a column holds (:mod:`tools.pii_rules`), judged on up to 500 of its distinct values."""
    if facts.kind == "bool" or not facts.n_unique:
        return None
    values = pd.Series(facts.counts.index)
    if facts.kind == "datetime":
        if not hinted(name, "birth_date"):
            return None
        return recognise(name, [], facts.n_valid, facts.n_unique, dates=pd.to_datetime(values, utc=True))
    if facts.numbers is not None:
        if not hinted(name, "phone"):  # only a column named phone may hold its numbers as bare digits
            return None
        whole = values[values == values.round()]
        cells = [format_number(v) for v in whole.head(SAMPLE_DISTINCT)]
        return recognise(name, cells, facts.n_valid, facts.n_unique, bare_numbers=True)
    cells = sample_distinct(values)
    if hinted(name, "birth_date"):
        sample = pd.Series(cells, dtype="str")
        if _date_share(sample) >= 0.95:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dates = pd.to_datetime(sample, format="mixed", errors="coerce", utc=True)
            return recognise(name, cells, facts.n_valid, facts.n_unique, dates=dates)
    return recognise(name, cells, facts.n_valid, facts.n_unique)


def _constant_evidence(facts: ColumnFacts) -> str:
    if not facts.n_unique:
        return f"All {facts.n_rows} cells are missing."
    value = _label(facts.counts.index[0])
    return f"Only one distinct value ({value!r}) in {facts.n_valid} non-missing cells."


def _identifier_evidence(name: str, facts: ColumnFacts) -> str | None:
    n_valid, n_unique = facts.n_valid, facts.n_unique
    if facts.kind not in ("number", "string") or n_valid < 3 or n_unique < 0.95 * n_valid:
        return None
    unique = f"{n_unique} distinct values in {n_valid} cells ({100 * n_unique / n_valid:.0f}% unique)"
    if facts.numbers is not None:
        values = facts.numbers
        if not np.array_equal(values, np.round(values)):
            return None
        if looks_like_id_name(name):
            return f"{unique}, whole numbers, and the name {name!r} reads as an identifier."
        low, high = values.min(), values.max()
        if n_unique == n_valid and high - low + 1 == n_unique:
            return f"{unique}: the consecutive integers {format_number(low)}..{format_number(high)}."
        return None
    if looks_like_id_name(name):
        return f"{unique}, and the name {name!r} reads as an identifier."
    sample = cell_sample(facts.counts).astype("str")
    if code_shaped_share(sample) >= 0.95:
        return f"{unique}, shaped like identifier codes such as {sample.iloc[0]!r}."
    return None


def _number_type(facts: ColumnFacts) -> tuple[str, str]:
    values = facts.numbers
    assert values is not None
    how = ""
    if facts.numeric_as_text:
        how = " stored as text" + (f" with unit {facts.unit!r}" if facts.unit else "")
    if facts.n_unique == 2 and set(facts.counts.index) == {0.0, 1.0}:
        return "boolean", f"Only the numbers 0 and 1{how} ({_top_text(facts)})."
    integral = np.array_equal(values, np.round(values))
    if integral and facts.n_unique <= 20 and facts.n_unique <= 0.05 * facts.n_valid:
        return "categorical", (
            f"Whole numbers{how} with only {facts.n_unique} distinct values in "
            f"{facts.n_valid} cells ({_top_text(facts)})."
        )
    if facts.numeric_as_text:
        parsed = 100 * facts.n_valid / (facts.n_valid + facts.unparseable)
        how += f" ({parsed:.1f}% of the non-missing cells parse)"
    return "numeric", (
        f"Numbers{how}: {facts.n_unique} distinct values from "
        f"{format_number(values.min())} to {format_number(values.max())}."
    )


def _string_type(facts: ColumnFacts) -> tuple[str, str]:
    keys = pd.Series(facts.counts.index, dtype="str")
    if boolean_words(keys):
        return "boolean", f"Only yes/no words: {_top_text(facts)}."
    sample = cell_sample(facts.counts).astype("str")
    dated = _date_share(sample)
    if dated >= 0.95:
        return "datetime", f"{100 * dated:.1f}% of {len(sample)} sampled cells parse as dates."
    unique_ratio = facts.n_unique / facts.n_valid
    n_words = float(sample.str.split().str.len().mean())
    n_chars = float(sample.str.len().mean())
    if unique_ratio > 0.5 and (n_words >= 3 or n_chars >= 30):
        return "text", (
            f"Free text: {facts.n_unique} distinct values in {facts.n_valid} cells, "
            f"{n_words:.1f} words and {n_chars:.0f} characters per cell on average."
        )
    return "categorical", f"Text with {facts.n_unique} distinct values ({_top_text(facts)})."


def _date_share(sample: pd.Series) -> float:
    """Share of sampled cells that contain a digit and parse as a date."""
    if sample.str.contains(r"\d", regex=True).mean() < 0.95:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, format="mixed", errors="coerce", utc=True)
    return float(parsed.notna().mean())


def _label(value: object) -> str:
    """A distinct value as a string label: numbers without a trailing ``.0``."""
    if isinstance(value, (float, np.floating)):
        return format_number(float(value))
    return str(value)


def _top_text(facts: ColumnFacts, k: int = 3) -> str:
    """The commonest values as ``'yes' 152, 'no' 148``."""
    return ", ".join(f"{_label(v)!r} {int(c)}" for v, c in facts.counts.head(k).items())


def numeric_stats(values: np.ndarray) -> dict[str, float | str | None]:
    """Five-number summary, mean and standard deviation (``None`` where undefined), and the point mass.

    When more than half of the values hold one value (a lab's "negative" 0, a count's 0), the
    quartiles say little: ``mass`` is that value and ``mass_share`` the share holding it, and the
    rest is judged as ``outliers`` judges it, by the values off the mass: ``off_mass_scale`` (``log``
    or ``linear``), ``off_mass_z_min`` / ``off_mass_z_max`` (the robust z of the min and the max from
    that bulk; 0 at the mass) and ``off_mass_strong_z`` (the robust z from which ``outliers`` changes a
    cell there). All ``None`` without a point mass, or with too few other values to judge.
    """
    from tools._frame import STRONG_Z, robust_scale

    mass_keys = ("mass", "mass_share", "off_mass_scale", "off_mass_z_min", "off_mass_z_max", "off_mass_strong_z")
    if not len(values):
        return dict.fromkeys(("min", "q1", "median", "q3", "max", "mean", "std", *mass_keys))
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    stats = dict(zip(("min", "q1", "median", "q3", "max"), q.tolist(), strict=True))
    stats |= {"mean": float(np.mean(values)), "std": std}
    summary: dict[str, float | str | None] = {
        k: (float(v) if v is not None and np.isfinite(v) else None) for k, v in stats.items()
    }
    scale = robust_scale(pd.Series(values), allow_log=True, allow_mass=True)
    if scale.mass is None or scale.spread <= 0:
        return summary | dict.fromkeys(mass_keys)
    z_min, z_max = (float(z) if np.isfinite(z) else None for z in scale.standardise(pd.Series(q[[0, -1]])).abs())
    return summary | {
        "mass": scale.mass,
        "mass_share": round(scale.mass_share, 4),
        "off_mass_scale": scale.name,
        "off_mass_z_min": z_min,
        "off_mass_z_max": z_max,
        "off_mass_strong_z": scale.strong_z(STRONG_Z),
    }


def column_profile(name: str, series: pd.Series, declared_id: bool = False) -> tuple[dict, ColumnFacts]:
    """The findings entry of one column, and the facts it was judged from."""
    facts = column_facts(series)
    kind, evidence = classify(name, facts, declared_id)
    sentinels = sorted(facts.sentinels.items(), key=lambda kv: -kv[1])
    profile: dict[str, Any] = {
        "type": kind,
        "evidence": evidence,
        "dtype": facts.dtype,
        "missing": facts.missing,
        "missing_pct": round(100 * facts.missing / facts.n_rows, 2) if facts.n_rows else 0.0,
        "sentinels": [code for code, _ in sentinels],
        "sentinel_count": sum(count for _, count in sentinels),
        "level_codes": dict(sorted(facts.level_codes.items(), key=lambda kv: -kv[1])),
        "numeric_as_text": facts.numeric_as_text,
        "unit": facts.unit,
        "decimal_mark": facts.decimal,
        "unparseable": facts.unparseable,
        "n_unique": facts.n_unique,
    }
    if kind == "personal":
        found = personal_finding(name, facts)
        assert found is not None
        profile |= {"personal": found.kind, "personal_share": round(found.share, 4),
                    "personal_examples": list(found.examples)}  # fmt: skip
    if kind in ("categorical", "boolean", "constant"):
        profile["top_values"] = [[_label(v), int(c)] for v, c in facts.counts.head(5).items()]
    if kind == "categorical":
        profile["spelling_variants"] = _spelling_variants(facts)
    number_like = kind == "numeric" or (facts.numeric_as_text and kind not in ("identifier", "constant"))
    if facts.numbers is not None and number_like:
        profile["stats"] = numeric_stats(facts.numbers)
    return profile, facts


def _spelling_variants(facts: ColumnFacts) -> int:
    """Distinct spellings that fold into another category by case, spacing, punctuation or a one-letter
    abbreviation (:func:`tools.spelling.spelling_variants`); missing-value codes aside. 0 for numbers, and
    for a column of more than ``MAX_SPELLINGS`` distinct values (not worth the time in a profile)."""
    raw = facts.spellings
    if raw is None or len(raw) > MAX_SPELLINGS:
        return 0
    codes = set(facts.sentinels)
    counts = {str(v): int(n) for v, n in raw.items() if str(v).strip() not in codes}
    return spelling_variants(counts)


def profile_table(
    table: pd.DataFrame,
    target: str | None = None,
    id_columns: Iterable[str] = (),
    task: Task | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """The profile of ``table``: exactly the findings of :class:`FeatureTypes`.

    ``suggested_id_columns`` lists columns that look like identifiers and are not
    already declared in ``id_columns`` (nor the target). ``duplicate_rows`` counts
    rows equal to an earlier row once every identifier column is set aside.
    """
    ids = _check_columns(table, target, id_columns)
    columns: dict[str, Any] = {}
    facts: dict[str, ColumnFacts] = {}
    for i, col in enumerate(table.columns):
        if progress is not None and i % 5 == 0:
            progress(i / len(table.columns), f"profiling column {col}")
        columns[str(col)], facts[str(col)] = column_profile(str(col), table[col], col in ids)
    id_typed = [c for c in table.columns if columns[str(c)]["type"] == "identifier"]
    return {
        "n_rows": len(table),
        "n_columns": table.shape[1],
        "columns": columns,
        "target": _target_profile(target, columns, facts, task) if target is not None else None,
        "duplicate_rows": count_duplicates(table, id_typed),
        "suggested_id_columns": [str(c) for c in id_typed if c not in ids and c != target],
    }


def _check_columns(table: pd.DataFrame, target: str | None, id_columns: Iterable[str]) -> set[str]:
    if not table.columns.is_unique:
        repeated = sorted({str(c) for c in table.columns[table.columns.duplicated()]})
        raise ValueError(f"the table has repeated column names {repeated}; rename them so each is unique")
    ids = set(id_columns)
    for col in sorted(ids) + ([target] if target is not None else []):
        if col not in table.columns:
            raise ValueError(f"column {col!r} is not in the table; columns are {list(map(str, table.columns))}")
    return ids


def _target_profile(
    target: str, columns: dict[str, Any], facts: dict[str, ColumnFacts], task: str | None
) -> dict[str, Any]:
    """Task, classes and missing labels of the target (class_counts: the 50 commonest)."""
    profile, target_facts = columns[target], facts[target]
    task = task or ("regression" if profile["type"] == "numeric" else "classification")
    info: dict[str, Any] = {"column": target, "task": task, "n_classes": None, "missing": profile["missing"]}
    if task == "classification":
        info["n_classes"] = target_facts.n_unique
        counts = target_facts.counts.head(_MAX_CLASS_COUNTS)
        info["class_counts"] = {_label(v): int(c) for v, c in counts.items()}
    return info


def count_duplicates(table: pd.DataFrame, ignore: list[str]) -> int:
    """Rows equal to an earlier row, ignoring ``ignore``, compared by 64-bit row hashes.

    Columns are hashed one at a time, numbers first, and only rows that still
    have a twin are carried on, so one continuous column settles most tables.
    """
    rest = table.drop(columns=ignore)
    if rest.empty:
        return 0
    order = sorted(rest.columns, key=lambda c: not ptypes.is_numeric_dtype(rest[c]))
    rows = np.arange(len(rest))
    key = np.zeros(len(rest), dtype=np.uint64)
    for col in order:
        key = key * np.uint64(1_000_003) ^ _hash_cells(rest[col].iloc[rows])
        twins = pd.Series(key).duplicated(keep=False).to_numpy()
        rows, key = rows[twins], key[twins]
        if not len(rows):
            return 0
    return int(pd.Series(key).duplicated().sum())


def _hash_cells(column: pd.Series) -> np.ndarray:
    try:
        return pd.util.hash_pandas_object(column, index=False).to_numpy()
    except TypeError:  # unhashable cells such as lists
        return pd.util.hash_pandas_object(column.astype("str"), index=False).to_numpy()


def summarise(profile: dict[str, Any]) -> str:
    """One paragraph for a domain expert, with the numbers."""
    cols = profile["columns"]
    by_type = Counter(c["type"] for c in cols.values())
    kinds = ", ".join(f"{by_type[t]} {t}" for t in TYPES if by_type[t]) or "no columns"
    parts = [f"Profiled {profile['n_rows']} rows and {profile['n_columns']} columns: {kinds}."]
    as_text = [n for n, c in cols.items() if c["numeric_as_text"] and c["type"] != "identifier"]
    if as_text:
        parts.append(f"Numbers are stored as text in {_names(as_text)}.")
    personal = [f"{n} ({c['personal']})" for n, c in cols.items() if c["type"] == "personal"]
    if personal:
        parts.append(f"Personal data in {_names(personal)}: never a feature; personal_data drops or pseudonymises it.")
    missing = sum(c["missing"] for c in cols.values())
    coded = {n: c for n, c in cols.items() if c["sentinel_count"]}
    if missing:
        examples = "; ".join(f"{', '.join(map(repr, c['sentinels'][:3]))} in {n}" for n, c in list(coded.items())[:3])
        codes = f", {sum(c['sentinel_count'] for c in coded.values())} of them written as codes ({examples})"
        parts.append(f"{missing} cells are missing{codes if coded else ''}.")
    else:
        parts.append("No cell is missing.")
    levels = {n: c["level_codes"] for n, c in cols.items() if c.get("level_codes")}
    if levels:
        shown = "; ".join(f"{', '.join(map(repr, list(words)[:3]))} in {n}" for n, words in list(levels.items())[:3])
        parts.append(
            f"Answers such as {shown} are kept as categories, not counted as missing; give them to "
            "coerce_types as `sentinels` if they mean missing."
        )
    target = profile["target"]
    if target is not None:
        classes = f", {target['n_classes']} classes" if target["task"] == "classification" else ""
        parts.append(f"Target {target['column']}: {target['task']}{classes}, {target['missing']} missing labels.")
    if profile["duplicate_rows"]:
        parts.append(f"{profile['duplicate_rows']} rows repeat an earlier row exactly (identifiers aside).")
    if profile["suggested_id_columns"]:
        parts.append(f"{_names(profile['suggested_id_columns'])} look like identifiers.")
    return " ".join(parts)


def _names(names: list[str], k: int = 4) -> str:
    shown = ", ".join(names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def profile_metrics(profile: dict[str, Any]) -> dict[str, float]:
    cols = profile["columns"].values()
    by_type = Counter(c["type"] for c in cols)
    metrics = {f"columns_{t}": float(by_type[t]) for t in TYPES}
    return metrics | {
        "rows": float(profile["n_rows"]),
        "columns": float(profile["n_columns"]),
        "missing_cells": float(sum(c["missing"] for c in cols)),
        "sentinel_cells": float(sum(c["sentinel_count"] for c in cols)),
        "numeric_as_text_columns": float(sum(c["numeric_as_text"] for c in cols)),
        "duplicate_rows": float(profile["duplicate_rows"]),
    }


def profile_charts(profile: dict[str, Any], max_bars: int = 40) -> list[Chart]:
    cols = profile["columns"]
    shown = list(cols)
    if len(shown) > max_bars:
        shown = sorted(shown, key=lambda n: -cols[n]["missing_pct"])[:max_bars]
    by_type = Counter(c["type"] for c in cols.values())
    return [
        Chart("bar", "Missing cells per column (codes included)", shown,
              [float(cols[n]["missing_pct"]) for n in shown], "column", "% missing"),
        Chart("bar", "Columns per type", [t for t in TYPES if by_type[t]],
              [float(by_type[t]) for t in TYPES if by_type[t]], "type", "columns"),
    ]  # fmt: skip


class FeatureTypesParams(ToolParams):
    """No parameters: the target, identifiers and task come from the run's context."""


class FeatureTypes(Tool):
    name = "feature_types"
    description = (
        "Profile every column: its type (numeric, categorical, boolean, datetime, text, identifier, "
        "constant, personal: names, e-mail addresses, phone numbers, street addresses, dates of birth, "
        "free text holding them) with evidence, missing cells including codes such as '?' or -999, numbers stored "
        "as text, units inside cells, summary statistics, the target's classes, duplicate rows and "
        "columns that look like identifiers. Read-only; run it first and after schema changes."
    )
    category = "schema"
    mutates = False
    Params = FeatureTypesParams

    def run(self, table: pd.DataFrame, params: FeatureTypesParams, ctx: ToolContext) -> ToolResult:
        def progress(fraction: float, message: str) -> None:
            ctx.check_cancelled()
            ctx.progress(fraction, message)

        profile = profile_table(table, ctx.target, ctx.id_columns, ctx.task, progress=progress)
        return ToolResult(
            summary=summarise(profile),
            findings=profile,
            metrics=profile_metrics(profile),
            charts=profile_charts(profile),
        )
