"""Pure rules shared by ``feature_types``, ``column_facts`` and ``coerce_types``: what a missing code,
a number written as text, a unit, a yes/no value and an identifier look like.

The self-contained ``reapply_coerce_types`` repeats the few of these it needs
(parsing numbers after a unit) inside its own body; the tests check that both
agree on the same cells.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Cell contents (stripped, case-folded) that mark an empty cell in any column: punctuation
#: placeholders and the spellings of "not available" that spreadsheets and software write
#: (``?``, ``-``, ``NA``, ``N/A``, ``null``, ``#N/A``). Nobody answers a question with them.
MISSING_MARKS: frozenset[str] = frozenset(
    {
        "", "?", "??", "???", "-", "--", ".", "..", "na", "n/a", "n.a.", "n.a", "nan", "null",
        "#n/a", "#na", "undefined",
    }
)  # fmt: skip

#: Words that may mean "missing" but are also answers (``unknown``, ``not recorded``,
#: ``refused``, ``none``): a missing-value code in a column of numbers, which cannot hold
#: them as a level, and a category of its own in a text column unless the person says
#: otherwise (coerce_types' ``sentinels``).
CODE_WORDS: frozenset[str] = frozenset(
    {
        "none", "nil", "missing", "unknown", "unk", "not known", "not available", "not applicable",
        "not recorded", "not stated", "not given", "not done", "refused", "declined", "don't know",
        "dont know", "do not know",
    }
)  # fmt: skip

#: Case-folded spellings of true and false; a column whose values all come from
#: these, with at least one of each, is boolean.
TRUE_WORDS: frozenset[str] = frozenset({"yes", "y", "true", "t", "1", "1.0"})
FALSE_WORDS: frozenset[str] = frozenset({"no", "n", "false", "f", "0", "0.0"})

#: A cell holding one number with an optional unit: a symbol before ("$30", "£1,200") or
#: a word or symbol after ("72 kg", "5.1cm", "12%").
_UNIT_CELL = re.compile(
    r"^(?P<pre>[^\w\s+\-.,]{0,3}?)\s*(?P<num>[-+]?(?:\d(?:[\d,.'\u00a0\u202f]|\s(?=\d{3}))*|[.,]\d+)"
    r"(?:[eE][-+]?\d+)?)\s*(?P<suf>[^\d\s][^\d]{0,11}?)?$"
)
#: What may separate groups of three digits besides the mark that is not the decimal one: a space, a
#: no-break or narrow no-break space (``1 234``), or an apostrophe (Swiss ``1'234``).
_GROUP_MARKS = " \u00a0\u202f'"
#: Cells that can only be read one way: both marks (the last one is the decimal mark), a comma or point
#: followed by other than three digits (``3,5``, ``2.25``), or a mark repeated between groups of three.
_COMMA_DECIMAL = re.compile(r"^\D*\d{1,3}(?:[.\u00a0\u202f' ]\d{3})+,\d*\D*$|^\D*\d*,(?:\d{1,2}|\d{4,})\D*$"
                            r"|^\D*\d{1,3}(?:\.\d{3}){2,}\D*$")  # fmt: skip
_POINT_DECIMAL = re.compile(r"^\D*\d{1,3}(?:[,\u00a0\u202f' ]\d{3})+\.\d*\D*$|^\D*\d*\.(?:\d{1,2}|\d{4,})\D*$"
                            r"|^\D*\d{1,3}(?:,\d{3}){2,}\D*$")  # fmt: skip

#: Column names that read as identifiers: ``id``, ``patient_id``, ``PatientID``, ``case_no``.
_ID_NAME = re.compile(r"^(?:id|uuid|guid|idx|index|key)$|[_\s\-.](?:id|no|nr|num|number|uuid|key|code)$")
_ID_CAMEL = re.compile(r"[a-z0-9](?:Id|ID|No|Nr)$")
#: Cell shapes of identifiers: ``R00012``, ``P-1043``, ``AB12345X``, UUIDs, long hex digests.
_ID_CODE = re.compile(
    r"^[A-Za-z]{0,6}[-_/#]?\d{2,}[A-Za-z]{0,2}$"
    r"|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    r"|^[0-9a-fA-F]{16,}$"
)


def is_missing_mark(keys: pd.Series) -> pd.Series:
    """Which stripped cells are an empty-cell marker such as ``?``, ``-`` or ``NA`` (any column)."""
    return keys.str.lower().isin(MISSING_MARKS)


def is_code_word(keys: pd.Series) -> pd.Series:
    """Which stripped cells are a word such as ``unknown`` that is a code only among numbers."""
    return keys.str.lower().isin(CODE_WORDS)


def looks_like_id_name(name: str) -> bool:
    return bool(_ID_NAME.search(name.strip().lower()) or _ID_CAMEL.search(name.strip()))


def code_shaped_share(keys: pd.Series) -> float:
    """Share of ``keys`` shaped like an identifier code (``R00012``, a UUID)."""
    return float(keys.str.fullmatch(_ID_CODE).mean()) if len(keys) else 0.0


def boolean_words(keys: pd.Series) -> bool:
    """True when the values are all yes/no-like words, with at least one of each side."""
    if len(keys) > len(TRUE_WORDS | FALSE_WORDS):
        return False
    folded = set(keys.str.lower())
    return folded <= (TRUE_WORDS | FALSE_WORDS) and bool(folded & TRUE_WORDS) and bool(folded & FALSE_WORDS)


def format_number(value: float) -> str:
    """A number as a person writes it: ``-999`` rather than ``-999.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def dominant_unit(keys: pd.Series, counts: pd.Series, min_cells: float = 1) -> str | None:
    """The commonest unit written around numbers in ``keys`` (weighted by ``counts``).

    ``None`` when no unit is written in at least ``min_cells`` cells: a stray
    "4O" is a typo to report, not a unit to strip.
    """
    parts = keys.str.extract(_UNIT_CELL)
    unit = parts["pre"].fillna("").str.cat(parts["suf"].fillna("")).str.strip()
    found = (unit.ne("") & parts["num"].notna()).to_numpy()
    if not found.any():
        return None
    weights = pd.Series(counts.to_numpy()[found], index=unit[found].to_numpy())
    by_fold = weights.groupby(weights.index.str.lower()).sum()
    if by_fold.max() < min_cells:
        return None
    spellings = weights[weights.index.str.lower() == by_fold.idxmax()]
    return str(spellings.groupby(level=0).sum().idxmax())


def decimal_mark(keys: pd.Series, counts: pd.Series) -> str:
    """The decimal mark the cells are written with: ``","`` (``3,5``, ``1.234,56``) or ``"."``.

    Only cells that can be read one way vote (weighted by ``counts``); ``1,234`` is either. The comma
    wins only with more votes than the point, so a column that gives no sign keeps the point.
    """
    weights = counts.to_numpy()
    comma = float(weights[keys.str.contains(_COMMA_DECIMAL).to_numpy()].sum())
    point = float(weights[keys.str.contains(_POINT_DECIMAL).to_numpy()].sum())
    return "," if comma > point else "."


def parse_numbers(keys: pd.Series, unit: str | None, decimal: str = ".") -> pd.Series:
    """Stripped cells as floats after removing ``unit`` and the thousands separators; NaN where not a
    number. ``decimal`` is the decimal mark; the other mark (and a space or apostrophe) may separate
    groups of three digits."""
    text = keys
    if unit:
        escaped = re.escape(unit)
        text = text.str.replace(rf"(?i)^{escaped}\s*|\s*{escaped}$", "", regex=True)
    group = re.escape(("," if decimal == "." else ".") + _GROUP_MARKS)
    if text.str.contains(rf"\d[{group}]\d", regex=True).any():
        text = text.str.replace(rf"(?<=\d)[{group}](?=\d{{3}}(?!\d))", "", regex=True).str.strip()
    if decimal == ",":  # a point left over in a column written with decimal commas reads as no number
        text = text.str.replace(",", ".", regex=False).mask(text.str.contains(".", regex=False))
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    return numbers.where(np.isfinite(numbers))


def is_nines_code(value: float) -> bool:
    """Codes such as -9, ±99, ±999, ±9999 that surveys and registries use for "missing"."""
    if not float(value).is_integer() or value == 0:
        return False
    digits = str(abs(int(value)))
    return set(digits) == {"9"} and (len(digits) >= 2 or value < 0)


def numeric_sentinels(values: np.ndarray, n_unique: int) -> dict[float, int]:
    """Numbers in ``values`` (no NaN) that stand out as missing codes, with their counts.

    A value is a code when it lies outside the bulk of the distribution and is
    either a nines code (``-999``, ``9999``) or repeated far more often than a
    typical value (at least 3 times and twice the mean count per distinct value).
    "Outside the bulk" is beyond 3 IQR of the quartiles, the only negative value
    of an otherwise non-negative column (repeated at least 3 times counts without
    the frequency test), or a repeated zero far below the lower quartile of an
    otherwise positive column (the ``0`` for "not measured" in clinical tables).
    A code is a whole number: a repeated fraction such as ``-2.3026`` (``log(0.1)``,
    a transform's floor) is a real value that many rows share, not a code.
    """
    n = len(values)
    if n < 10 or n_unique < 3:
        return {}
    q1, q3 = np.quantile(values, [0.25, 0.75])
    scale = (q3 - q1) or float(np.subtract(*np.quantile(values, [0.95, 0.05]))) or 1.0
    low, high = q1 - 3 * scale, q3 + 3 * scale
    negative = values[values < 0]
    lone_negative = float(negative[0]) if len(negative) and negative.min() == negative.max() else None
    uniq, counts = np.unique(values[(values < low) | (values > high) | (values == 0)], return_counts=True)
    candidates = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    if lone_negative is not None:
        candidates[lone_negative] = len(negative)
    frequent_at = max(3.0, 2.0 * n / n_unique)
    found: dict[float, int] = {}
    for value, count in candidates.items():
        if not float(value).is_integer():
            continue
        outside = value < low or value > high
        alone = value == lone_negative
        zero_gap = value == 0 and not len(negative) and count >= 3 and q1 - 1.5 * (q3 - q1) > 0
        if (
            (is_nines_code(value) and (outside or alone))
            or (outside and count >= frequent_at)
            or (alone and count >= 3)
            or zero_gap
        ):
            found[float(value)] = int(count)
    return found
