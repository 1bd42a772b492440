"""Without --yes, every change waits for the person at the terminal: approve, skip, edit, quit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import messy_table
from tests.copilot.test_clean_e2e import copilot


def _answer(tmp_path: Path, answers: list[str]) -> tuple[str, dict]:
    messy_table(150).to_csv(tmp_path / "in.csv", index=False)
    done = copilot("clean", str(tmp_path / "in.csv"), "-t", "outcome", "-o", str(tmp_path / "out.csv"),
                   "--report", str(tmp_path / "r.json"), data_dir=tmp_path / "data", check=False,
                   input_text="\n".join(answers) + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads((tmp_path / "r.json").read_text())


def test_skip_and_quit_change_nothing(tmp_path: Path) -> None:
    out, report = _answer(tmp_path, ["s", "q"])
    statuses = [(s["tool"], s["status"]) for s in report["steps"]]
    # skip rejects the step (the plan moves on); quit stops the session, leaving the waiting step skipped
    assert statuses == [("evaluate", "done"), ("coerce_types", "rejected"), ("drop_columns", "skipped")]
    original = pd.read_csv(tmp_path / "in.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), original)
    text = " ".join(out.split())
    assert "wants to change the data" in text
    assert "preview: 150 rows × 8 columns" in text and "would change: age" in text  # shown before the question
    assert text.index("would change: age") < text.index("approve / skip / edit / quit")


def test_an_edit_is_previewed_and_asked_again_before_it_runs(tmp_path: Path) -> None:
    out, report = _answer(tmp_path, ["a", "e", '{"columns": ["note"]}', "q"])
    text = " ".join(out.split())
    assert "removes columns: site" in text and "removes columns: note" in text  # the proposal, then the edit
    drop = next(s for s in report["steps"] if s["tool"] == "drop_columns")
    assert drop["status"] == "skipped" and drop["params"]["columns"] == ["note"]  # previewed, never approved
    assert {"note", "site"} <= set(pd.read_csv(tmp_path / "out.csv").columns)  # neither was dropped


def test_edited_parameters_are_validated_and_used(tmp_path: Path) -> None:
    out, report = _answer(tmp_path, ["a", "e", '{"columns": ["nope"]}', "e", '{"columns": ["note"]}', "a", "q"])
    assert "no column" in out or "nope" in out  # the bad edit is refused with a reason, then asked again
    drop = next(s for s in report["steps"] if s["tool"] == "drop_columns")
    assert drop["status"] == "done" and drop["params"]["columns"] == ["note"]
    cleaned = pd.read_csv(tmp_path / "out.csv")
    assert "note" not in cleaned.columns and "site" in cleaned.columns


def test_enter_or_an_unknown_answer_asks_again_and_approves_nothing(tmp_path: Path) -> None:
    out, report = _answer(tmp_path, ["", "yes", "s", "q"])
    statuses = [(s["tool"], s["status"]) for s in report["steps"]]
    assert statuses == [("evaluate", "done"), ("coerce_types", "rejected"), ("drop_columns", "skipped")]
    text = " ".join(out.split())
    assert "Enter alone does not approve" in text and "'yes' is not an answer" in text
    assert text.count("type a (approve), s (skip), e (edit the parameters) or q (quit") == 2


def test_the_end_of_input_stops_without_approving(tmp_path: Path) -> None:
    """``copilot clean`` in a pipe without --yes: no answer is no approval, and the run does not pass as done."""
    messy_table(150).to_csv(tmp_path / "in.csv", index=False)
    done = copilot("clean", str(tmp_path / "in.csv"), "-t", "outcome", "-o", str(tmp_path / "out.csv"),
                   "--report", str(tmp_path / "r.json"), data_dir=tmp_path / "data", check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "end of input: stopping without approving coerce_types" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(s["tool"], s["status"]) for s in report["steps"]] == [("evaluate", "done"), ("coerce_types", "skipped")]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "in.csv"))
