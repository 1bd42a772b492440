"""Privacy by construction: every request the fake LLM server receives is searched for the table's cells.

The table plants what must never leave by default: ten physicians' names, zip codes, a diagnosis, one
103-year-old patient, dates of birth, identifiers, free text, patients' names and e-mail addresses, spellings
of a category, and numbers with more digits than any summary keeps. The steps that handle personal data and
spellings run too, so their findings are searched as well. Each request is searched as JSON and as the text
of its messages, and the requests the session kept (``llm_requests``) must be exactly those the server
received.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from copilot.session.engine import Engine
from copilot.session.planning import sent_requests
from tests.api.conftest import Server, csv_bytes, upload
from tests.llm.conftest import OWNER, llm_settings, wait_for
from tests.llm.fake_openai import FakeOpenAI, Script

K = 5
PHYSICIANS = ["Dr Imogen Fairweather", "Dr Tobias Quillfeather", "Dr Ngozi Abernathy", "Dr Lars Pemberton-Oyelaran",
              "Dr Saoirse Valdivieso", "Dr Kenji Marchbanks", "Dr Farida Holloway-Nunes", "Dr Piotr Esterhazy",
              "Dr Maren Castellanos", "Dr Rafferty Okonkwo"]  # fmt: skip
ZIPS = [60614, 94110, 73301, 33139, 85004, 98101, 46204, 55401]


def _private_table(n: int = 240) -> pd.DataFrame:
    from faker import Faker

    Faker.seed(7)
    fake = Faker("en_GB")
    rng = np.random.default_rng(7)
    age = rng.integers(20, 91, n)
    age[17] = 103  # the one very old patient
    weight = rng.uniform(50, 110, n).round(4)
    weight[3] = 81234.5678  # a unit slip, so the outlier step has findings
    weight[10:20] = np.nan
    cholesterol = rng.uniform(150, 300, n).round(1)
    cholesterol[cholesterol % 10 == 0] += 0.3  # three significant digits at least, like any real reading
    city = rng.choice(["Leeds", "York", "Hull"], n).astype(object)
    city[:2] = "Atlantis"  # seen twice: below the count at which a level's text may be shown
    return pd.DataFrame({
        "patient_id": [f"SECRET-{i:04d}-XQ" for i in range(n)],
        "note": [f"confided zebra{i} story about the weekend" for i in range(n)],
        "physician": np.resize(PHYSICIANS, n),
        "zip": rng.choice(ZIPS, n),
        "hiv_status": rng.choice(["positive", "negative"], n, p=[0.15, 0.85]),
        "dob": [f"{1930 + i % 70}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "age": age,
        "weight": weight,
        "cholesterol": cholesterol,
        "city": city,
        "patient_name": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)],
        "sex": rng.choice(["Female", "female", "F", "Male", "male", "M"], n),
        "outcome": rng.choice(["sick", "well"], n),
    })  # fmt: skip


def _run_session(
    tmp_path: Path, script: Script, server_share: str = "aggregates", session_share: str = "aggregates",
    short: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
    """One session planned and answered by the fake LLM; the table and the requests the session kept."""
    full = [
        ("personal_data", "personal_data"),
        ("harmonise_categories", "harmonise_categories"),
        ("outliers", "outliers"),
        ("impute", "impute"),
        ("evaluate:final", "evaluate"),
    ]
    script.steps = [("evaluate:baseline", "evaluate"), *([] if short else full)]
    script.arguments = {"evaluate": {"folds": 3}}
    table = _private_table()
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "upload.csv"
    table.to_csv(path, index=False)
    engine = Engine(llm_settings(tmp_path, llm_share=server_share))
    engine.start()
    try:
        session = engine.create_session(path, "private.csv", "outcome", OWNER, policy="never",
                                        llm_share=session_share)  # type: ignore[arg-type]  # fmt: skip
        assert session.llm_share == session_share
        wait_for(engine, session.id, {"done"}, timeout=120)
        engine.post_message(session.id, OWNER, "tell me something interesting about this table")
        deadline = time.monotonic() + 60
        kept = _kept(engine, session.id)
        while not any(r.get("stream") for r in kept):  # until the chat answer's request is kept too
            assert time.monotonic() < deadline, "the chat answer's request was not kept"
            time.sleep(0.05)
            kept = _kept(engine, session.id)
    finally:
        engine.close()
    return table, kept


def _kept(engine: Engine, session_id: str) -> list[dict[str, Any]]:
    with engine.store.transaction() as db:
        return [row.request for row in sent_requests(db, session_id, OWNER)]


def _everything_sent(requests: list[dict[str, Any]]) -> str:
    """Each request as JSON, and the text of its messages unescaped (they hold JSON documents)."""
    texts = [m["content"] for r in requests for m in r["messages"] if isinstance(m.get("content"), str)]
    return "\n".join([json.dumps(requests), *texts])


def _data_documents(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``data`` document of each request: what it says about the table."""
    documents = [json.loads(r["messages"][1]["content"]) for r in requests]
    return [d["data"] for d in documents]


def _token(value: object) -> re.Pattern[str]:
    """``value`` as a whole number in text, not as part of a longer one (``103`` is not in ``1030``)."""
    return re.compile(rf"(?<![\d.]){re.escape(str(value))}(?![\d])")


def _rare_cells(table: pd.DataFrame, column: str) -> list[str]:
    counts = table[column].dropna().value_counts()
    return [str(value) for value, n in counts.items() if n <= K]


@pytest.mark.slow
def test_by_default_no_planted_value_reaches_the_llm(tmp_path: Path, fake: FakeOpenAI) -> None:
    table, kept = _run_session(tmp_path, fake.script)
    received = fake.script.requests
    assert kept == received  # the session kept exactly the requests that left
    kinds = {("plan" if r.get("response_format") else "call" if r.get("tools") else "chat") for r in received}
    assert kinds == {"plan", "call", "chat"}  # every kind of request was made, and searched
    sent = _everything_sent(received)
    assert '"cholesterol"' in sent and '"n_rows": 240' in sent  # the schema and counts do go
    for step in ("personal_data", "harmonise_categories", "outliers"):  # their findings were there to leak
        assert f'"key": "{step}", "tool": "{step}", "status": "done"' in sent, step
    texts = [
        *PHYSICIANS,
        *table["dob"],
        *table["patient_id"],
        *table["patient_name"],
        *table["email"],
        "zebra",
        "Atlantis",
        "Leeds",
        '"sick"',
        '"well"',
        '"Female"',
        '"male"',
    ]
    assert [t for t in texts if t in sent] == []
    assert [z for z in ZIPS if _token(z).search(sent)] == []
    assert '"positive"' not in sent and '"negative"' not in sent
    assert not re.search(r"positive|negative", json.dumps(_data_documents(received)), re.IGNORECASE)
    assert not _token(103).search(sent)
    leaked = [c for column in ("weight", "cholesterol") for c in _rare_cells(table, column) if _token(c).search(sent)]
    assert leaked == []
    for data in _data_documents(received):
        age = data["columns"]["age"]
        assert age["quantiles"] and not {"min", "max", "mean", "std"} & set(age)
        assert max(age["quantiles"].values()) <= 90 and data["target"]["classes"].keys() == {"class_1", "class_2"}


@pytest.mark.slow
def test_categories_go_only_when_the_server_and_the_session_opt_in(tmp_path: Path, fake: FakeOpenAI) -> None:
    _, kept = _run_session(tmp_path / "both", fake.script, "categories", "categories", short=True)
    sent = _everything_sent(kept)
    assert '"Leeds"' in sent and '"positive"' in sent and '"sick"' in sent and any(p in sent for p in PHYSICIANS)
    assert "Atlantis" not in sent and "zebra" not in sent and not _token(103).search(sent)
    assert all("sample_rows" not in data for data in _data_documents(kept))
    fake.script.requests.clear()
    _, kept = _run_session(tmp_path / "server-only", fake.script, "categories", "aggregates", short=True)
    assert "Leeds" not in _everything_sent(kept)


@pytest.mark.slow
def test_samples_send_a_few_rows_but_never_identifiers_text_dates_or_the_extreme(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    table, kept = _run_session(tmp_path, fake.script, "samples", "samples", short=True)
    rows = [row for data in _data_documents(kept) for row in data["sample_rows"]]
    assert rows and all(not {"patient_id", "note", "dob"} & set(row) for row in rows)
    assert all(row["age"] != 103 and row["city"] != "Atlantis" for row in rows)
    sent = _everything_sent(kept)
    assert [t for t in [*table["dob"], *table["patient_id"], "zebra"] if t in sent] == []


def test_a_session_asking_for_more_than_the_server_allows_is_refused(tmp_path: Path) -> None:
    server = Server(tmp_path)  # COPILOT_LLM_SHARE unset: aggregates
    server.start()
    try:
        with server.client() as api:
            answer = upload(api, csv_bytes(_private_table(60)), llm_share="samples")
            assert answer.status_code == 422, answer.text
            assert "COPILOT_LLM_SHARE" in answer.json()["detail"] and "'aggregates'" in answer.json()["detail"]
            assert api.get("/api/sessions").json()["items"] == []
            created = upload(api, csv_bytes(_private_table(60)))
            assert created.status_code == 201 and created.json()["llm_share"] == "aggregates"
    finally:
        server.terminate()
