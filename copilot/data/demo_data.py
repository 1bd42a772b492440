"""The demo's data: scikit-learn's breast-cancer table split into a training and a test part, with
reproducible faults (flipped labels, unit slips, missing cells, a column stored as text with ``?`` codes,
duplicate rows) planted in the training part, and the held-out AUROC a standard model gets from a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from copilot.data.faults import FaultLog, inject_faults

TARGET = "diagnosis"
POSITIVE = "malignant"
ID = "record_id"


@dataclass(frozen=True)
class DemoData:
    dirty: pd.DataFrame  # the training part, with faults
    original: pd.DataFrame  # the same training rows before the faults
    test: pd.DataFrame  # held out, never corrupted
    log: FaultLog


def demo_data(seed: int = 0, test_size: float = 0.3) -> DemoData:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"]).copy()
    frame[TARGET] = data.target.map({0: POSITIVE, 1: "benign"}).astype("str")
    frame.insert(0, ID, [f"BC-{i:04d}" for i in range(len(frame))])
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[TARGET])
    # A duplicate is the same record written twice: it keeps its record id.
    dirty, log = inject_faults(train, TARGET, seed, label_flip=0.08, outliers=0.03, missing=0.05,
                               duplicates=0.03, sentinel_column="mean radius")  # fmt: skip
    return DemoData(dirty, train.reset_index(drop=True), test.reset_index(drop=True), log)


def holdout_auc(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> float:
    """AUROC on ``test`` of a gradient-boosting model fitted on ``train`` (text cells read as missing)."""
    features = [c for c in train.columns if c not in {ID, TARGET}]
    x_train = train[features].apply(pd.to_numeric, errors="coerce")
    x_test = test[features].apply(pd.to_numeric, errors="coerce")
    with threadpool_limits(1):
        model = HistGradientBoostingClassifier(random_state=seed).fit(x_train, train[TARGET])
        proba = model.predict_proba(x_test)[:, list(model.classes_).index(POSITIVE)]
    return float(roc_auc_score(test[TARGET] == POSITIVE, proba))
