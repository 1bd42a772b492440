"""An LLM may propose how spellings group into categories; its mapping is previewed and shown like the rule-based
one, and nothing changes until the person approves it (or an edit of it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from copilot.session.engine import Engine
from tests.llm.conftest import OWNER, wait_for
from tests.llm.fake_openai import Script

GATES = {"awaiting_approval", "done", "failed", "stopped"}
SPELLINGS = {"Male": 30, "male": 10, "man": 5, "Female": 30, "female": 10, "woman": 5}


def _create(engine: Engine, tmp_path: Path) -> str:
    sex = np.random.default_rng(0).permutation([v for v, n in SPELLINGS.items() for _ in range(n)])
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"sex": sex, "x": rng.normal(size=len(sex)).round(3)})
    table["outcome"] = np.where(table["x"] > 0, "sick", "well")
    upload = tmp_path / "upload.csv"
    table.to_csv(upload, index=False)
    return engine.create_session(upload, "patients.csv", "outcome", OWNER, policy="mutating").id  # type: ignore[arg-type]


def test_an_llm_mapping_waits_as_a_preview_and_only_the_approved_one_is_applied(
    llm_engine: Engine, script: Script, tmp_path: Path
) -> None:
    # 'man' and 'woman' share no key with 'Male' and 'Female': only a reader of the words groups them.
    script.steps = [("harmonise_categories", "harmonise_categories")]
    mapping = {"sex": {"man": "Male", "woman": "Female"}}
    script.arguments = {"harmonise_categories": {"columns": ["sex"], "mapping": mapping}}
    session_id = _create(llm_engine, tmp_path)
    view = wait_for(llm_engine, session_id, GATES)
    step = view.pending_step
    assert view.state == "awaiting_approval" and step is not None and step.tool == "harmonise_categories"
    assert step.params["mapping"] == {"sex": {"man": "Male", "woman": "Female"}}
    assert step.preview is not None
    groups = {g.category: g.variants for g in step.preview.mappings["sex"]}
    assert groups == {"Male": {"Male": 30, "male": 10, "man": 5}, "Female": {"Female": 30, "female": 10, "woman": 5}}
    before = pd.read_parquet(llm_engine.version_file(session_id, view.version, OWNER))
    assert before["sex"].nunique() == 6, "nothing changes before the person approves"

    # The person keeps 'woman' apart: the edit is previewed, and only then approved.
    llm_engine.preview(session_id, step.id, OWNER, step.proposal, {**step.params, "mapping": {"sex": {"man": "Male"}}})
    pending = wait_for(llm_engine, session_id, GATES).pending_step
    assert pending is not None and pending.preview is not None and pending.proposal != step.proposal
    llm_engine.approve(session_id, pending.id, OWNER, pending.proposal)
    done = wait_for(llm_engine, session_id, {"done", "failed", "stopped"})
    assert done.state == "done", done.state
    after = pd.read_parquet(llm_engine.version_file(session_id, done.version, OWNER))
    assert after["sex"].value_counts().to_dict() == {"Male": 45, "Female": 40, "woman": 5}
