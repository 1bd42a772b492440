"""What one pass over a column learns, which ``feature_types``' type rules then read: its distinct values
and their cells, its sentinel codes, and, for text, whether it is numbers written as text (with which unit
and decimal mark) or words (with their spellings as written).

Everything is vectorised over the column's distinct values; a sample decides whether text is numbers, so a
column of words costs one small parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from tools.typing_rules import (
    FALSE_WORDS,
    TRUE_WORDS,
    decimal_mark,
    dominant_unit,
    format_number,
    is_code_word,
    is_missing_mark,
    numeric_sentinels,
    parse_numbers,
)

SAMPLE_CELLS = 2000


@dataclass
class ColumnFacts:
    """What one pass over a column learns; the type rules read only this.

    ``counts`` maps each valid distinct value (stripped text, or a float for
    number-like columns) to its number of cells, commonest first. Valid means
    neither missing, nor a sentinel, nor an unparseable cell of a number column.
    """

    dtype: str
    n_rows: int
    n_na: int
    kind: Literal["bool", "number", "datetime", "string"]
    counts: pd.Series
    sentinels: dict[str, int] = field(default_factory=dict)
    level_codes: dict[str, int] = field(default_factory=dict)
    numbers: np.ndarray | None = None
    numeric_as_text: bool = False
    unit: str | None = None
    #: The decimal mark of numbers written as text: "," in ``3,5`` and ``1.234,56``, else ".".
    decimal: str = "."
    unparseable: int = 0
    #: Cells per distinct text value as written (untrimmed), for a text column that is not numbers.
    spellings: pd.Series | None = None

    @property
    def n_valid(self) -> int:
        return int(self.counts.sum())

    @property
    def n_unique(self) -> int:
        return len(self.counts)

    @property
    def missing(self) -> int:
        return self.n_na + sum(self.sentinels.values())


def column_facts(series: pd.Series) -> ColumnFacts:
    """Sentinels, numbers and distinct-value counts of one column."""
    base: dict[str, Any] = {
        "dtype": str(series.dtype),
        "n_rows": len(series),
        "n_na": int(series.isna().sum()),
    }
    present = series.dropna()
    if ptypes.is_bool_dtype(series):
        return ColumnFacts(**base, kind="bool", counts=present.astype(bool).value_counts())
    if ptypes.is_datetime64_any_dtype(series):
        return ColumnFacts(**base, kind="datetime", counts=present.value_counts())
    if ptypes.is_timedelta64_dtype(series):
        present = present.dt.total_seconds()
    if ptypes.is_numeric_dtype(present) and not ptypes.is_complex_dtype(present):
        return _with_numeric_sentinels(ColumnFacts(**base, kind="number", counts=pd.Series()), present)
    return _string_facts(present.astype("str"), base)


def _with_numeric_sentinels(facts: ColumnFacts, numbers: pd.Series) -> ColumnFacts:
    """Fill ``numbers``/``counts`` from parsed values, setting number codes such as 9999 aside."""
    values = numbers.to_numpy(dtype=float)
    uniq, n_cells = np.unique(values, return_counts=True)
    order = np.argsort(-n_cells, kind="stable")
    counts = pd.Series(n_cells[order], index=uniq[order])
    found = numeric_sentinels(values, len(counts))
    if found:
        values = values[~np.isin(values, list(found))]
        counts = counts.drop(list(found))
        if facts.kind == "number":
            facts.sentinels.update({format_number(v): c for v, c in found.items()})
    facts.numbers, facts.counts = values, counts
    return facts


def _string_facts(text: pd.Series, base: dict[str, Any]) -> ColumnFacts:
    raw = text.value_counts()
    keys = pd.Series(raw.index, dtype="str").str.strip()
    counts = pd.Series(raw.to_numpy(), index=keys.to_numpy())
    if not keys.equals(pd.Series(raw.index, dtype="str")):
        counts = counts.groupby(level=0).sum().sort_values(ascending=False, kind="stable")
    keys = pd.Series(counts.index, dtype="str")
    marks = is_missing_mark(keys).to_numpy()
    words = is_code_word(keys).to_numpy() & ~marks
    facts = ColumnFacts(**base, kind="string", counts=counts[~marks & ~words], sentinels=_as_dict(counts[marks]))
    parsed, facts.unit, facts.decimal = numbers_in_text(facts.counts)
    if parsed is None:  # not numbers: a word such as "unknown" is an answer, a level of its own
        facts.spellings = raw
        facts.counts, facts.level_codes = counts[~marks], _as_dict(counts[words])
        nines = _nines_codes(facts.counts)
        facts.sentinels.update(_as_dict(facts.counts[nines]))
        facts.counts = facts.counts[~nines]
        facts.unit, facts.decimal = None, "."
        return facts
    facts.sentinels.update(_as_dict(counts[words]))
    return _numeric_text_facts(facts, _yes_no_among_numbers(parsed))


def _yes_no_among_numbers(parsed: pd.Series) -> pd.Series:
    """In a column of 0s and 1s, a ``yes`` or ``no`` typed in is the same answer: 1 or 0, not a cell
    that fails to parse."""
    if not set(parsed.dropna().unique()) <= {0.0, 1.0}:
        return parsed
    folded = pd.Series(parsed.index, dtype="str").str.lower()
    words = np.where(folded.isin(TRUE_WORDS), 1.0, np.where(folded.isin(FALSE_WORDS), 0.0, np.nan))
    return parsed.fillna(pd.Series(words, index=parsed.index))


def _numeric_text_facts(facts: ColumnFacts, parsed: pd.Series) -> ColumnFacts:
    """A text column of numbers: parsed values, unparseable cells, number codes as sentinels."""
    text_counts = facts.counts
    ok = parsed.notna().to_numpy()
    facts.numeric_as_text = True
    facts.unparseable = int(text_counts[~ok].sum())
    cells = np.repeat(parsed[ok].to_numpy(), text_counts[ok].to_numpy())
    _with_numeric_sentinels(facts, pd.Series(cells))
    coded = ok & ~parsed.isin(facts.counts.index).to_numpy()
    facts.sentinels.update(_as_dict(text_counts[coded]))
    return facts


def numbers_in_text(counts: pd.Series) -> tuple[pd.Series | None, str | None, str]:
    """Each distinct text value of ``counts`` as a number, the unit stripped to get it, and the decimal
    mark the cells are written with (:func:`tools.typing_rules.decimal_mark`).

    ``(None, None, ".")`` unless at least 95 % of the cells parse. A unit counts
    only when at least 5 % of the cells carry it. A sample decides first, so a
    column of words costs one small parse.
    """
    if not len(counts):
        return None, None, "."
    sample = cell_sample(counts).value_counts()
    keys = pd.Series(sample.index, dtype="str")
    decimal = decimal_mark(keys, sample)
    plain = parse_numbers(keys, None, decimal).notna().to_numpy()
    unit = None if plain.all() else dominant_unit(keys[~plain], sample[~plain], 0.05 * sample.sum())
    if _share(parse_numbers(keys, unit, decimal).notna().to_numpy(), sample.to_numpy()) < 0.9:
        return None, None, "."
    parsed = parse_numbers(pd.Series(counts.index, dtype="str"), unit, decimal)
    if _share(parsed.notna().to_numpy(), counts.to_numpy()) < 0.95:
        return None, None, "."
    return pd.Series(parsed.to_numpy(), index=counts.index), unit, decimal


def _nines_codes(counts: pd.Series) -> np.ndarray:
    """Which text values are nines codes such as ``-9``, ``-999`` or ``9999``.

    Only for text that is not numbers; there two-digit ``99`` may be a real label.
    """
    keys = pd.Series(counts.index, dtype="str")
    return keys.str.fullmatch(r"(?:-9{1,7}|\+?9{3,7})(?:\.0*)?").to_numpy(dtype=bool)


def cell_sample(counts: pd.Series, size: int = SAMPLE_CELLS) -> pd.Series:
    """Up to ``size`` cells drawn (deterministically) from distinct values and their counts."""
    weights = counts.to_numpy()
    total = weights.sum()
    if total <= size:
        positions = np.repeat(np.arange(len(weights)), weights)
    else:
        positions = np.random.default_rng(0).choice(len(weights), size=size, p=weights / total)
    return pd.Series(counts.index[positions])


def _share(mask: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    return float(weights[mask].sum() / total) if total else 0.0


def _as_dict(counts: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in counts.items()}
