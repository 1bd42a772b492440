"""The "expert script" of the quality benchmark: what a careful data scientist writes by hand.

pandas, scikit-learn and cleanlab only, in the order a practitioner would use:

1. numbers stored as text → numbers (``pd.to_numeric(errors="coerce")``: codes such as ``?`` become missing);
2. exact duplicate rows dropped;
3. IsolationForest (contamination 0.03) on a median-filled copy of the numeric features; flagged rows dropped.
   It runs before the imputer is fitted so that unit slips (×1000) do not bend the imputer's regressions;
4. IterativeImputer for numeric features, the mode for categorical ones, fitted on the remaining
   training rows and applied unchanged to the test rows;
5. cleanlab ``find_label_issues`` on 5-fold out-of-fold probabilities of a scaled, one-hot
   LogisticRegression; flagged rows dropped.

Row labels (the pandas index) are those of the training table as given, so the rows dropped by
each step can be compared with where the faults were planted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers IterativeImputer)
from sklearn.impute import IterativeImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CONTAMINATION = 0.03
FOLDS = 5
#: A text column is numeric when most of its filled cells parse as numbers (the rest are codes such as "?").
NUMERIC_SHARE = 0.5


@dataclass
class ExpertResult:
    train: pd.DataFrame
    test: pd.DataFrame
    dropped: dict[str, list[int]] = field(default_factory=dict)  # step → training rows it dropped


def coerce_numeric_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Text columns whose cells are mostly numbers, as numbers; anything else in them becomes NaN."""
    frame = frame.copy()
    for col in columns:
        if pd.api.types.is_numeric_dtype(frame[col]):
            continue
        filled = frame[col].dropna()
        parsed = pd.to_numeric(filled, errors="coerce")
        if len(filled) and parsed.notna().mean() >= NUMERIC_SHARE:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def split_columns(frame: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns."""
    features = [c for c in frame.columns if c != target]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    return numeric, [c for c in features if c not in numeric]


def isolation_outliers(train: pd.DataFrame, numeric: list[str], seed: int) -> pd.Index:
    """Training rows that IsolationForest isolates fastest (median-filled numeric features)."""
    x = train[numeric].fillna(train[numeric].median())
    forest = IsolationForest(contamination=CONTAMINATION, random_state=seed, n_jobs=1)
    return train.index[forest.fit_predict(x) == -1]


def impute(
    train: pd.DataFrame, test: pd.DataFrame, numeric: list[str], categorical: list[str], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IterativeImputer (numeric) and the mode (categorical), fitted on ``train`` only."""
    train, test = train.copy(), test.copy()
    if numeric:
        imputer = IterativeImputer(max_iter=10, random_state=seed).fit(train[numeric])
        train[numeric] = imputer.transform(train[numeric])
        test[numeric] = imputer.transform(test[numeric])
    for col in categorical:
        mode = train[col].mode().iloc[0]
        train[col] = train[col].fillna(mode)
        test[col] = test[col].fillna(mode)
    return train, test


def label_issues(train: pd.DataFrame, target: str, numeric: list[str], categorical: list[str], seed: int) -> pd.Index:
    """Training rows cleanlab flags on out-of-fold LogisticRegression probabilities (no missing cells left)."""
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    encode = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", one_hot, categorical)])
    model = make_pipeline(encode, LogisticRegression(max_iter=2000))
    labels, _ = pd.factorize(train[target], sort=True)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, train[numeric + categorical], labels, cv=folds, method="predict_proba")
    flagged = find_label_issues(labels, proba, filter_by="prune_by_noise_rate", n_jobs=1)
    return train.index[np.flatnonzero(flagged)]


def expert_clean(train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int = 0) -> ExpertResult:
    """Clean ``train`` by hand and transform ``test`` with the same fitted imputer."""
    features = [c for c in train.columns if c != target]
    train, test = coerce_numeric_text(train, features), coerce_numeric_text(test, features)
    numeric, categorical = split_columns(train, target)
    test[numeric] = test[numeric].apply(pd.to_numeric, errors="coerce")
    dropped: dict[str, list[int]] = {}

    copies = train.index[train.duplicated(keep="first")]
    outliers = isolation_outliers(train.drop(index=copies), numeric, seed)
    dropped |= {"duplicates": list(copies), "outliers": list(outliers)}
    train = train.drop(index=copies.union(outliers))

    train, test = impute(train, test, numeric, categorical, seed)
    flagged = label_issues(train, target, numeric, categorical, seed)
    dropped["label_issues"] = [int(r) for r in flagged]
    return ExpertResult(train.drop(index=flagged), test, dropped)
