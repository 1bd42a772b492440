"""Privacy by construction: every request the fake LLM server receives is searched for the table's cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from copilot.engine import Engine
from tests.llm.conftest import OWNER, llm_settings, wait_for
from tests.llm.fake_openai import FakeOpenAI, Script

GATES = {"awaiting_approval", "done", "failed"}


def _private_table(n: int = 120) -> pd.DataFrame:
    """Identifiers, free text, a rare category and numbers with more digits than the summary keeps."""
    rng = np.random.default_rng(7)
    city = rng.choice(["Leeds", "York", "Hull"], n).astype(object)
    city[:2] = "Atlantis"  # seen twice: below the count at which a value may be shown
    weight = rng.uniform(50, 110, n).round(4)
    weight[3] = 81234.5678  # a unit slip, so the outlier step has findings
    weight[10:20] = np.nan
    return pd.DataFrame({
        "patient_id": [f"SECRET-{i:04d}-XQ" for i in range(n)],
        "note": [f"confided zebra{i} story about the weekend" for i in range(n)],
        "age": rng.uniform(20, 90, n).round(4),
        "weight": weight,
        "city": city,
        "outcome": rng.choice(["sick", "well"], n),
    })  # fmt: skip


def _run_session(tmp_path: Path, script: Script, share: str) -> tuple[pd.DataFrame, str]:
    script.steps = [("evaluate:baseline", "evaluate"), ("outliers", "outliers"), ("impute", "impute"),
                    ("evaluate:final", "evaluate")]  # fmt: skip
    script.arguments = {"evaluate": {"folds": 3}}
    table = _private_table()
    upload = tmp_path / "upload.csv"
    table.to_csv(upload, index=False)
    engine = Engine(llm_settings(tmp_path, llm_share=share))
    engine.start()
    try:
        session = engine.create_session(upload, "private.csv", "outcome", OWNER, policy="never")
        wait_for(engine, session.id, {"done"}, timeout=120)
        engine.post_message(session.id, OWNER, "tell me something interesting about this table")
        for _ in range(100):
            if any(not r.get("response_format") and not r.get("tools") for r in script.requests):
                break
            wait_for(engine, session.id, GATES)
    finally:
        engine.close()
    return table, _everything_sent(script.requests)


def _everything_sent(requests: list[dict]) -> str:
    """Each request as JSON, and the text of its messages unescaped (they hold JSON documents)."""
    texts = [m["content"] for r in requests for m in r["messages"] if isinstance(m.get("content"), str)]
    return "\n".join([json.dumps(requests), *texts])


def _leaks(table: pd.DataFrame, sent: str, columns: list[str]) -> list[str]:
    cells = [str(v) for c in columns for v in table[c].dropna().unique()]
    return [c for c in cells if c in sent]


@pytest.mark.slow
def test_the_llm_never_receives_a_raw_cell_by_default(tmp_path: Path, fake: FakeOpenAI) -> None:
    table, sent = _run_session(tmp_path, fake.script, "aggregates")
    requests = fake.script.requests
    kinds = {("plan" if r.get("response_format") else "call" if r.get("tools") else "chat") for r in requests}
    assert kinds == {"plan", "call", "chat"}  # every kind of request was made, and searched
    assert '"weight"' in sent and '"n_rows": 120' in sent  # the schema and counts do go
    assert _leaks(table, sent, ["patient_id", "note", "age", "weight"]) == []
    assert "Atlantis" not in sent and "zebra" not in sent
    assert '"Leeds"' in sent  # a category seen at least five times may be named


@pytest.mark.slow
def test_sharing_samples_sends_a_few_rows_but_never_identifiers_or_text(tmp_path: Path, fake: FakeOpenAI) -> None:
    table, sent = _run_session(tmp_path, fake.script, "samples")
    assert _leaks(table, sent, ["age"]) != []  # the user allowed sample rows
    assert _leaks(table, sent, ["patient_id", "note"]) == []
