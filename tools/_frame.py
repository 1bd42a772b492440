"""Small helpers shared by the column and row tools: column kinds, checks, JSON labels.

Nothing here is used by a ``reapply`` function (those must stay self-contained).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tools.base import ToolContext

ROW_CAP = 200
MAD_TO_SD = 1.4826
IQR_TO_SD = 1.349


def infer_kind(series: pd.Series) -> str:
    """The semantic type of a column judged from its values alone, when ``feature_types`` has not run."""
    values = series.dropna()
    if values.nunique() <= 1:
        return "constant"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if len(values) > 50 and values.nunique() > 0.5 * len(values):
        return "text"
    return "categorical"


def column_kinds(table: pd.DataFrame, ctx: ToolContext) -> dict[str, str]:
    """Each column's semantic type: the one in ``ctx.column_types``, else inferred from its dtype."""
    return {col: ctx.column_types.get(col) or infer_kind(table[col]) for col in table.columns}


def is_number_dtype(series: pd.Series) -> bool:
    """True for numeric dtypes that we can do arithmetic on (booleans excluded)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def protected_columns(table: pd.DataFrame, ctx: ToolContext) -> set[str]:
    """Columns no tool may change or learn from: the target, the ids, identifier- and personal-typed columns
    (only ``personal_data`` changes those)."""
    kinds = column_kinds(table, ctx)
    protected = set(ctx.id_columns) | {c for c, k in kinds.items() if k in ("identifier", "personal")}
    if ctx.target:
        protected.add(ctx.target)
    return protected & set(table.columns)


def feature_columns(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """Usable feature columns: no target, no ids, no identifier-, personal- or text-typed columns."""
    kinds = column_kinds(table, ctx)
    protected = protected_columns(table, ctx)
    return [c for c in ctx.feature_columns(table) if c not in protected and kinds[c] != "text"]


def numeric_features(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """Feature columns typed numeric that are stored as numbers."""
    kinds = column_kinds(table, ctx)
    return [c for c in feature_columns(table, ctx) if kinds[c] == "numeric" and is_number_dtype(table[c])]


def require_columns(table: pd.DataFrame, columns: Iterable[str], tool: str) -> None:
    """Raise a ValueError naming every column that the table does not have."""
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise ValueError(
            f"{tool}: no column named {', '.join(map(repr, unknown))}; "
            f"the table has: {', '.join(map(str, table.columns))}"
        )


def refuse_protected(table: pd.DataFrame, ctx: ToolContext, columns: Iterable[str], tool: str) -> None:
    """Raise a ValueError when the user asks a tool to change the target or an identifier."""
    protected = protected_columns(table, ctx)
    asked = [c for c in columns if c in protected]
    personal = [c for c in asked if ctx.column_types.get(c) == "personal" and c not in ctx.id_columns]
    if personal:
        raise ValueError(
            f"{tool} leaves personal data alone; drop or pseudonymise {', '.join(map(repr, personal))} "
            "with personal_data instead"
        )
    if asked:
        raise ValueError(
            f"{tool} never changes the target or identifier columns; "
            f"remove {', '.join(map(repr, asked))} from its columns"
        )


def json_value(value: Any) -> Any:
    """A cell value or index label as plain JSON (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def json_labels(index: Iterable[Any]) -> list[Any]:
    """Index labels as a JSON list."""
    return [json_value(label) for label in index]


def counts_text(counts: dict[str, int]) -> str:
    """``{"a": 3, "b": 1}`` as ``"a (3), b (1)"`` for summaries."""
    return ", ".join(f"{k} ({v})" for k, v in counts.items())


def plural(n: int, word: str) -> str:
    """``plural(1, "column")`` is "1 column", ``plural(3, "column")`` is "3 columns"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class Scale:
    """A column's robust centre and spread (spread 0 when it cannot be judged).

    With ``log`` true both are of ``log(x)``: the column is strictly positive and
    clearly right-skewed (see :func:`is_right_skewed`), so its robust z is measured
    in orders of magnitude rather than in units.

    With ``mass`` set, more than half of the column holds that one value (its MAD is
    0): centre and spread are those of the other values, the off-mass bulk (on its
    log scale when that bulk is positive and right-skewed), and a cell holding the
    mass point itself is at z 0 (see :func:`robust_scale`).
    """

    center: float
    spread: float
    log: bool = False
    mass: float | None = None
    mass_share: float = 0.0

    @property
    def name(self) -> str:
        """``"log"`` or ``"linear"``: how the bulk is measured."""
        return "log" if self.log else "linear"

    @property
    def label(self) -> str:
        """The scale as reported in findings: ``"log"``, ``"linear"``, or e.g. ``"log off the mass at 0"``."""
        return self.name if self.mass is None else f"{self.name} off the mass at {self.mass:g}"

    @property
    def median(self) -> float:
        """The centre in the column's own units (of the off-mass values when there is a mass point)."""
        return float(np.exp(self.center)) if self.log else self.center

    def standardise(self, series: pd.Series) -> pd.Series:
        """Signed ``(value - centre) / spread`` on this scale (divided by 1 when the spread is 0).

        Missing cells stay missing; on the log scale a value <= 0 is infinitely low; a cell
        holding the mass point is at 0.
        """
        raw = series.to_numpy(dtype=float, na_value=np.nan)
        values = raw
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(raw > 0, np.log(raw), np.where(np.isnan(raw), np.nan, -np.inf))
        z = (values - self.center) / (self.spread or 1.0)
        if self.mass is not None:
            z = np.where(raw == self.mass, 0.0, z)
        return pd.Series(z, index=series.index)

    def bounds(self, threshold: float) -> tuple[float, float]:
        """The values whose robust z is ``threshold``: centre ± threshold * spread, back in units."""
        low, high = self.center - threshold * self.spread, self.center + threshold * self.spread
        return (float(np.exp(low)), float(np.exp(high))) if self.log else (low, high)

    def strong_z(self, bar: float) -> float:
        """The robust z from which a value is strong evidence of a fault on this scale.

        ``bar`` on a linear scale. On a log scale, where z counts spreads of ``log(x)``, the
        lower of ``bar`` and the z of a value ten times beyond the bulk (``BULK_Z`` spreads
        from the centre, where about 95 % of the values lie): a different order of magnitude
        is strong evidence however wide the column's spread.
        """
        if not self.log or self.spread <= 0:
            return bar
        return min(bar, BULK_Z + float(np.log(10.0)) / self.spread)


#: Robust z from which a value is strong evidence of a fault on a linear scale: it would take ten
#: standard deviations to get there, while a unit slip lands in the tens or hundreds.
STRONG_Z = 10.0
#: Spreads from the centre that hold the bulk of a column (about 95 % of a normal one).
BULK_Z = 2.0
#: The fewest values off a point mass from which their spread is judged.
MIN_OFF_MASS = 20
#: A non-negative column with this share of its values at its minimum is judged off that floor (``point_mass``).
FLOOR_SHARE = 0.2


SKEW_RATIO = 1.5
MIN_VALUES_FOR_LOG = 20


def quantile_skew(values: np.ndarray) -> float:
    """Kelly's quantile skewness ``(q90 + q10 - 2 * median) / (q90 - q10)``, in -1..1 (0 if flat).

    Only the 10th, 50th and 90th percentiles count, so the few extreme values we look for
    cannot move it.
    """
    q10, median, q90 = np.percentile(values, [10, 50, 90])
    return float((q90 + q10 - 2 * median) / (q90 - q10)) if q90 > q10 else 0.0


def is_right_skewed(values: np.ndarray) -> bool:
    """Whether a column is strictly positive and clearly right-skewed, so that robust z should be
    measured on ``log(x)``.

    True when all of: every value is > 0; there are at least ``MIN_VALUES_FOR_LOG`` values; the
    upper tail of the bulk is more than 1.5 times as long as the lower one,
    ``q90 - median > 1.5 * (median - q10)`` (Kelly skewness above 0.2); and ``log(x)`` is more
    symmetric than ``x`` (smaller absolute Kelly skewness). A lognormal with sigma above about
    0.32 passes; a symmetric column fails (but for chance at a few dozen values, where the log
    scale costs little).
    """
    if len(values) < MIN_VALUES_FOR_LOG or not (values > 0).all():
        return False
    skew = quantile_skew(values)
    if skew <= (SKEW_RATIO - 1) / (SKEW_RATIO + 1):
        return False
    return abs(quantile_skew(np.log(values))) < skew


def robust_scale(series: pd.Series, allow_log: bool = False, allow_mass: bool = False) -> Scale:
    """Median and a robust standard deviation: 1.4826 * MAD, or IQR / 1.349 when MAD is 0.

    With ``allow_log``, a strictly positive, clearly right-skewed column (:func:`is_right_skewed`)
    is measured on ``log(x)`` instead: the median and spread of its log values.

    With ``allow_mass``, a column with a point mass (more than half of it holds one value, so its
    MAD is 0, or a fifth of a non-negative column sits at its floor, zero mostly: :func:`point_mass`)
    and at least ``MIN_OFF_MASS`` other values is measured by those other
    values alone, as above (on ``log(x)`` when they are positive and right-skewed); the mass
    point and its share are recorded on the scale, and a cell holding it is at z 0.
    """
    values = series.dropna().to_numpy(dtype=float)
    if len(values) == 0:
        return Scale(0.0, 0.0)
    if allow_mass:
        mass = point_mass(values)
        off = values[values != mass] if mass is not None else values
        if mass is not None and len(off) >= MIN_OFF_MASS:
            bulk = robust_scale(pd.Series(off), allow_log=allow_log)
            return Scale(bulk.center, bulk.spread, bulk.log, mass, 1.0 - len(off) / len(values))
    log = allow_log and is_right_skewed(values)
    if log:
        values = np.log(values)
    center = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - center)))
    if spread == 0:
        q1, q3 = np.percentile(values, [25, 75])
        spread = float(q3 - q1) / IQR_TO_SD
    return Scale(center, spread, log)


def point_mass(values: np.ndarray) -> float | None:
    """The value that over half of ``values`` (no NaN) hold (then it is the median, and the MAD is 0), or
    the floor of a column that does not go below zero when ``FLOOR_SHARE`` of it sits there (zero
    population, no income: a zero-inflated column, whose positive values are a scale of their own);
    else None."""
    if not len(values):
        return None
    center = float(np.median(values))
    if np.mean(values == center) > 0.5:
        return center
    floor = float(values.min())
    return floor if floor >= 0 and np.mean(values == floor) >= FLOOR_SHARE else None
