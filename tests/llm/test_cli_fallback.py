"""`copilot clean --yes` against an LLM endpoint that misbehaves: it finishes on the rule-based agents and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import messy_table
from tests.llm.fake_openai import FakeOpenAI


def _clean(tmp_path: Path, base_url: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "patients.csv"
    messy_table(120).to_csv(source, index=False)
    env = os.environ | {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "k", "COPILOT_LLM_MODEL": "fake-model",
                        "COPILOT_LLM_TIMEOUT_S": "1", "COPILOT_LLM_MAX_RETRIES": "0",
                        "COPILOT_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    command = [sys.executable, "-m", "copilot.cli", "clean", str(source), "-t", "outcome", "-o",
               str(tmp_path / "clean.csv"), "--yes", "--report", str(tmp_path / "report.json")]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["nonsense", "http_500", "broken_json"])
def test_a_misbehaving_endpoint_still_gets_a_clean_table(tmp_path: Path, fake: FakeOpenAI, fault: str) -> None:
    kind = "call" if fault == "broken_json" else "plan"
    fake.script.steps = [("evaluate:baseline", "evaluate"), ("impute", "impute"), ("evaluate:final", "evaluate")]
    fake.script.fault(kind, *[fault] * 200)
    done = _clean(tmp_path, os.environ["OPENAI_BASE_URL"])
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "rule-based" in out and "planned by llm:fake-model" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["agents"] == "llm:fake-model" and report["llm_usage"]["fallbacks"] >= 1
    cleaned = pd.read_csv(tmp_path / "clean.csv")
    features = cleaned.drop(columns=["outcome", "record_id", "note"], errors="ignore")
    assert features.notna().all().all()


def test_an_unreachable_endpoint_is_named_in_the_fallback_message(tmp_path: Path) -> None:
    done = _clean(tmp_path, "http://127.0.0.1:9/v1")
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "could not be reached" in out and "rule-based coordinator planned instead" in out


def test_doctor_says_which_agents_plan_and_where_the_llm_is(tmp_path: Path) -> None:
    base = os.environ | {"COPILOT_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    base = {k: v for k, v in base.items() if k not in {"COPILOT_LLM_MODEL", "OPENAI_BASE_URL"}}
    command = [sys.executable, "-m", "copilot.cli", "doctor"]
    plain = subprocess.run(command, env=base, capture_output=True, text=True, timeout=60)
    assert "agents: rule-based" in plain.stdout
    llm_env = base | {
        "COPILOT_LLM_MODEL": "m1",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "COPILOT_LLM_MAX_CALLS": "7",
    }
    llm = subprocess.run(command, env=llm_env, capture_output=True, text=True, timeout=60)
    assert "agents: LLM m1 at http://127.0.0.1:9/v1, sharing aggregates; at most 7 calls" in llm.stdout
