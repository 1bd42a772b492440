"""How much of the damage done by planted faults each cleaning method undoes, scored on held-out data.

    .venv/bin/python bench/quality.py [--seeds 0 1 2] [--cases breast_cancer wine iris penguins] [--jobs 1]
    .venv/bin/python bench/quality.py --cases rare        # the rare-class case, not in the default run

The default cases are tables that an installed package ships (scikit-learn's breast cancer, wine
and iris; palmerpenguins' ``load_penguins``, which has real missing cells and text categories).
``rare`` is a made one, for what random flips do to a rare class: 8,000 rows from
``make_classification`` with a 4% positive class (``rare_case`` says how). Per case and seed: a
stratified 70/30 split; faults from ``copilot.data.faults.inject_faults`` in the TRAINING part only (10%
label flips, 3% unit slips ×1000, 10% missing cells, one numeric column stored as text with ``?``
codes, 3% duplicate rows). Four methods each give a training table and a test table:

- ``no cleaning``: the dirty training rows as they are;
- ``expert script``: ``bench/expert_baseline.py``, hand-written pandas + scikit-learn + cleanlab;
- ``copilot``: ``copilot clean --yes`` on the training CSV, then ``copilot apply`` on the test CSV;
- ``uncorrupted``: the training rows before the faults (the ceiling).

A fixed evaluator fits HistGradientBoosting and LogisticRegression (median/mode imputation, one-hot,
scaling) on each training table and scores the untouched test labels: AUROC, one-vs-rest weighted
for more than two classes, averaged over the two models. The printed Markdown table gives, per
case and method, the AUROC (mean over seeds), the share of the dirty → uncorrupted gap recovered,
how precisely the rows whose labels a method changed or dropped match the flipped ones, and the
wall time of the cleaning itself (not of the evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from expert_baseline import coerce_numeric_text, expert_clean
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from copilot.data.faults import inject_faults

COPILOT = Path(sys.executable).with_name("copilot")
CASES = ("breast_cancer", "wine", "iris", "penguins", "rare")
DEFAULT_CASES = CASES[:4]
METHODS = ("no cleaning", "expert script", "copilot", "uncorrupted")
FAULTS = {"label_flip": 0.10, "outliers": 0.03, "missing": 0.10, "duplicates": 0.03}
ROW = "_source_row"  # carried through the fault injection to know where each dirty row came from
MIN_GAP = 0.002  # below this dirty → uncorrupted gap, the share recovered is noise


@dataclass(frozen=True)
class Case:
    name: str
    frame: pd.DataFrame
    target: str
    sentinel: str  # the numeric feature stored as text with "?" codes


@dataclass(frozen=True)
class Split:
    original: pd.DataFrame  # training rows before the faults
    dirty: pd.DataFrame  # the same rows with faults; row labels 0..n-1 are the rows of train.csv
    test: pd.DataFrame  # never touched
    flipped: frozenset[int]  # dirty rows whose label differs from their source row's


@dataclass(frozen=True)
class Cleaned:
    train: pd.DataFrame
    test: pd.DataFrame
    label_rows: frozenset[int] | None  # rows whose label the method changed or dropped as mislabelled
    seconds: float


@dataclass(frozen=True)
class Score:
    case: str
    seed: int
    method: str
    auroc: float
    label_rows: frozenset[int] | None
    flipped: frozenset[int]
    seconds: float


# --- cases ------------------------------------------------------------------------


def _sklearn_case(name: str, loader: Callable[..., object], target: str, sentinel: str) -> Case:
    data = loader(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame[target] = pd.Series(data.target_names[data.target], index=frame.index).astype("str")
    return Case(name, frame, target, sentinel)


def _penguins() -> Case:
    from palmerpenguins import load_penguins  # the optional `bench` extra

    return Case("penguins", load_penguins(), "species", "bill_length_mm")


def rare_case() -> Case:
    """A large table with a hard target and a rare positive class, the same every time.

    8,000 rows from ``make_classification`` (``random_state=0``, not shuffled): 12 features, of which
    6 informative and 2 linear combinations of them, 4% positives (``weights=[0.96]``), no label noise
    of its own (``flip_y=0``), and ``class_sep=1.4``. Two informative features become categories and
    leave the table: ``band``, the quartile of the first (``q1``..``q4``), and ``group``, the tercile
    of the second (``a``, ``b``, ``c``); faults touch the ten numeric features only. On this table a
    class-balanced logistic regression (the evaluator's encoding) agrees with 87% of the clean labels
    out of fold (AUROC 0.95; gradient boosting 0.98): a hard target, where ``class_sep`` 0.9 gives 78%
    and 1.5 gives 88%. Of the 5,600 training rows 224 are positive; 10% random flips turn about 22 of
    them negative and about 540 negatives positive, so about 72% of the "positive" labels of the dirty
    table are wrong (555 of 769 for seed 0, duplicates included).
    """
    x, y = make_classification(n_samples=8000, n_features=12, n_informative=6, n_redundant=2, n_repeated=0,
                               weights=[0.96], flip_y=0.0, class_sep=1.4, shuffle=False, random_state=0)  # fmt: skip
    frame = pd.DataFrame(x[:, 2:], columns=[f"f{i}" for i in range(2, 12)])
    frame.insert(0, "band", pd.qcut(x[:, 0], 4, labels=["q1", "q2", "q3", "q4"]).astype("str"))
    frame.insert(1, "group", pd.qcut(x[:, 1], 3, labels=["a", "b", "c"]).astype("str"))
    frame["class"] = np.where(y == 1, "positive", "negative")
    return Case("rare", frame, "class", "f2")


def load_case(name: str) -> Case:
    if name == "penguins":
        case = _penguins()
    elif name == "rare":
        case = rare_case()
    else:
        loader, sentinel = {
            "breast_cancer": (load_breast_cancer, "mean radius"),
            "wine": (load_wine, "alcohol"),
            "iris": (load_iris, "sepal length (cm)"),
        }[name]
        case = _sklearn_case(name, loader, "class", sentinel)
    frame = case.frame.copy()
    for col in frame.columns:  # inject_faults touches float features only
        if col != case.target and pd.api.types.is_integer_dtype(frame[col]):
            frame[col] = frame[col].astype("float64")
    return Case(case.name, frame, case.target, case.sentinel)


def make_split(case: Case, seed: int) -> Split:
    """Stratified 70/30 split; faults in the training part only, and which dirty labels are wrong.

    The truth is wider than ``FaultLog.flipped_rows``: a duplicate of a flipped row is flipped too,
    and a de-duplicating method may keep the copy rather than the logged row.
    """
    train, test = train_test_split(case.frame, test_size=0.3, random_state=seed, stratify=case.frame[case.target])
    original = train.reset_index(drop=True)
    tagged = original.assign(**{ROW: np.arange(len(original))})  # an int column: inject_faults leaves it alone
    dirty, log = inject_faults(tagged, case.target, seed, **FAULTS, sentinel_column=case.sentinel)
    source_labels = original[case.target].to_numpy()[dirty[ROW].to_numpy()]
    flipped = frozenset(int(r) for r in np.flatnonzero(dirty[case.target].to_numpy() != source_labels))
    assert set(log.flipped_rows) <= flipped, "the fault log and the labels disagree"
    return Split(original, dirty.drop(columns=[ROW]), test.reset_index(drop=True), flipped)


# --- methods ----------------------------------------------------------------------


def no_cleaning(split: Split, target: str, seed: int, folder: Path) -> Cleaned:
    return Cleaned(split.dirty, split.test, None, 0.0)


def uncorrupted(split: Split, target: str, seed: int, folder: Path) -> Cleaned:
    return Cleaned(split.original, split.test, None, 0.0)


def expert(split: Split, target: str, seed: int, folder: Path) -> Cleaned:
    started = time.perf_counter()
    with threadpool_limits(1):  # as the copilot's sandbox does; more threads are slower on small machines
        result = expert_clean(split.dirty, split.test, target, seed)
    seconds = time.perf_counter() - started
    return Cleaned(result.train, result.test, frozenset(result.dropped["label_issues"]), seconds)


@dataclass(frozen=True)
class CopilotRun:
    train: pd.DataFrame  # the cleaned training table, as `copilot clean` wrote it
    test: pd.DataFrame  # the test table after `copilot apply`
    spec: dict  # the pipeline (.pipeline.json)
    report: dict  # the JSON report (--report)
    seconds: float  # clean + apply


def run_copilot(train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int, folder: Path) -> CopilotRun:
    """``copilot clean --yes`` then ``copilot apply``, as a user would run them, in a fresh data folder.

    The files stay in ``folder``: ``train.csv``, ``test.csv``, ``clean.csv`` with its
    ``clean.pipeline.json``, ``test_clean.csv`` and ``report.json``.
    """
    train_csv, test_csv = folder / "train.csv", folder / "test.csv"
    clean_csv, test_clean_csv, report = folder / "clean.csv", folder / "test_clean.csv", folder / "report.json"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    env = os.environ | {"COPILOT_DATA_DIR": str(folder / "data"), "COPILOT_SEED": str(seed)}
    started = time.perf_counter()
    _run([str(COPILOT), "clean", str(train_csv), "--target", target, "--output", str(clean_csv), "--yes",
          "--report", str(report)], env)  # fmt: skip
    pipeline = clean_csv.with_suffix(".pipeline.json")
    _run([str(COPILOT), "apply", str(pipeline), str(test_csv), "--output", str(test_clean_csv)], env)
    seconds = time.perf_counter() - started
    spec, summary = json.loads(pipeline.read_text()), json.loads(report.read_text())
    return CopilotRun(pd.read_csv(clean_csv), pd.read_csv(test_clean_csv), spec, summary, seconds)


def copilot(split: Split, target: str, seed: int, folder: Path) -> Cleaned:
    run = run_copilot(split.dirty, split.test, target, seed, folder)
    return Cleaned(run.train, run.test, relabelled_or_dropped(run.spec, target), run.seconds)


def relabelled_or_dropped(spec: dict, target: str) -> frozenset[int]:
    """Training rows (rows of train.csv) whose label ``label_issues`` changed, or that it dropped."""
    rows: set[int] = set()
    for step in spec["steps"]:
        changes = step.get("row_changes")
        if step["tool"] == "label_issues" and changes:
            rows |= set(changes["dropped"]) | {row for row, col, _ in changes["cells"] if col == target}
    return frozenset(rows)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


METHOD_FUNCTIONS: dict[str, Callable[[Split, str, int, Path], Cleaned]] = {
    "no cleaning": no_cleaning,
    "expert script": expert,
    "copilot": copilot,
    "uncorrupted": uncorrupted,
}


# --- the fixed evaluator ------------------------------------------------------------


def _encoder(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), one_hot), categorical),
        ]
    )


def holdout_auroc(train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int) -> float:
    """Mean test AUROC of gradient boosting and logistic regression fitted on ``train``.

    Text cells of numeric-looking columns are read as missing, so every method is scored on the
    same footing; only the columns of the training table are used.
    """
    features = [c for c in train.columns if c != target]
    x_train, x_test = coerce_numeric_text(train[features], features), coerce_numeric_text(test[features], features)
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(x_train[c])]
    categorical = [c for c in features if c not in numeric]
    x_test[numeric] = x_test[numeric].apply(pd.to_numeric, errors="coerce")
    models = [HistGradientBoostingClassifier(random_state=seed), LogisticRegression(max_iter=5000)]
    scores = []
    with threadpool_limits(1):
        for model in models:
            fitted = make_pipeline(_encoder(numeric, categorical), model).fit(x_train, train[target])
            scores.append(_auroc(test[target], fitted.predict_proba(x_test), list(fitted.classes_)))
    return float(np.mean(scores))


def _auroc(truth: pd.Series, proba: np.ndarray, classes: list[str]) -> float:
    if len(classes) == 2:
        return float(roc_auc_score(truth == classes[1], proba[:, 1]))
    return float(roc_auc_score(truth, proba, multi_class="ovr", average="weighted", labels=classes))


# --- running and reporting ----------------------------------------------------------


def run_one(case_name: str, seed: int) -> list[Score]:
    """Every method on one case and seed."""
    case = load_case(case_name)
    split = make_split(case, seed)
    scores = []
    with tempfile.TemporaryDirectory(prefix=f"quality-{case_name}-{seed}-") as tmp:
        for method in METHODS:
            out = METHOD_FUNCTIONS[method](split, case.target, seed, Path(tmp))
            auroc = holdout_auroc(out.train, out.test, case.target, seed)
            scores.append(Score(case_name, seed, method, auroc, out.label_rows, split.flipped, out.seconds))
    return scores


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def _gap_share(value: float, dirty: float, ceiling: float) -> str:
    gap = ceiling - dirty
    return "—" if abs(gap) < MIN_GAP else f"{(value - dirty) / gap:+.0%}"


def _label_pr(scores: list[Score]) -> tuple[str, str]:
    """Precision and recall of the changed/dropped rows against the flipped ones, pooled over seeds."""
    if any(s.label_rows is None for s in scores):
        return "", ""
    hits = sum(len(s.label_rows & s.flipped) for s in scores if s.label_rows is not None)
    found = sum(len(s.label_rows) for s in scores if s.label_rows is not None)
    flipped = sum(len(s.flipped) for s in scores)
    precision = f"{hits / found:.0%} ({hits}/{found})" if found else "— (0)"
    return precision, f"{hits / flipped:.0%}"


def markdown(scores: list[Score], cases: list[str]) -> str:
    lines = [
        "| case | method | AUROC (mean ± sd over seeds) | gap recovered | label-flip precision | label-flip recall "
        "| wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    means: dict[str, list[float]] = {m: [] for m in METHODS}
    for case in cases:
        by_method = {m: [s for s in scores if s.case == case and s.method == m] for m in METHODS}
        auroc = {m: [s.auroc for s in rows] for m, rows in by_method.items()}
        dirty, ceiling = _mean(auroc["no cleaning"]), _mean(auroc["uncorrupted"])
        for method, rows in by_method.items():
            values = auroc[method]
            means[method].append(_mean(values))
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            precision, recall = _label_pr(rows)
            wall = _mean([s.seconds for s in rows])
            gap = _gap_share(_mean(values), dirty, ceiling)
            lines.append(f"| {case} | {method} | {_mean(values):.4f} ± {spread:.4f} | {gap} | {precision} | {recall} "
                         f"| {wall:.1f} |")  # fmt: skip
    dirty, ceiling = _mean(means["no cleaning"]), _mean(means["uncorrupted"])
    for method in METHODS:
        value = _mean(means[method])
        lines.append(f"| **mean of cases** | {method} | {value:.4f} | {_gap_share(value, dirty, ceiling)} | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(DEFAULT_CASES))
    parser.add_argument("--jobs", type=int, default=1, help="case × seed runs in parallel (timings get noisier)")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [(case, seed) for case in args.cases for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = [s for batch in pool.map(run_one, *zip(*runs, strict=True)) for s in batch]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; seeds {args.seeds}\n")  # fmt: skip
    print(markdown(scores, args.cases))
    print(f"\ntotal wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
