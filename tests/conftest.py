"""Shared fixtures: small tables whose faults are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.pg import database_url, module_database_url, parametrise_stores, postgresql
from tests.ray_cluster import ray_address
from tools.base import ToolContext

__all__ = ["database_url", "module_database_url", "postgresql", "ray_address"]  # fixtures for every test


def messy_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small mixed table with the usual faults, for contract tests.

    Columns: ``record_id`` (identifier), ``age`` (numbers stored as text with
    ``?`` codes), ``weight`` (float with missing cells and one unit slip),
    ``smoker`` (yes/no), ``city`` (categorical), ``note`` (free text),
    ``site`` (constant) and ``outcome`` (binary target driven by the others).
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    weight = rng.normal(75, 12, n).round(1)
    smoker = rng.choice(["yes", "no"], n)
    city = rng.choice(["Leeds", "York", "Hull", "Bath"], n)
    logit = 0.06 * (age - 50) + 0.05 * (weight - 75) + np.where(smoker == "yes", 1.0, -1.0)
    outcome = np.where(logit + rng.normal(0, 0.5, n) > 0, "sick", "well")
    age_text = age.astype(str).astype(object)
    age_text[rng.choice(n, n // 20, replace=False)] = "?"
    weight[rng.choice(n, n // 10, replace=False)] = np.nan
    weight[5] = weight[5] * 1000 if not np.isnan(weight[5]) else 75000.0
    words = ["fine", "tired", "short of breath", "no complaints", "dizzy", "back pain"]
    notes = [f"patient reports {rng.choice(words)} after visit {i}" for i in range(n)]
    return pd.DataFrame(
        {
            "record_id": [f"R{i:05d}" for i in range(n)],
            "age": pd.Series(age_text, dtype="str"),
            "weight": weight,
            "smoker": smoker,
            "city": city,
            "note": notes,
            "site": "A",
            "outcome": outcome,
        }
    )


@pytest.fixture
def messy() -> pd.DataFrame:
    return messy_table()


@pytest.fixture
def messy_ctx() -> ToolContext:
    return ToolContext(target="outcome", id_columns=["record_id"], task="classification", seed=0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_stores: runs once on SQLite and once on PostgreSQL (tests/pg.py)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrise_stores(metafunc)
