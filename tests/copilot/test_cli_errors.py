"""A user's mistake ends with a readable message and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.copilot.test_clean_e2e import copilot

CSV = "id,age,outcome\n" + "".join(f"{i},{20 + (i * 7) % 50},{'yes' if i % 3 else 'no'}\n" for i in range(40))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target", "Outcome"], "there is no column 'Outcome'. Did you mean 'outcome'?"),
        (["--target", "outcome", "--rule", "age<120"], "write a rule as COLUMN=MIN..MAX"),
        (["--target", "outcome", "--rule", "height=0..3"], "the rule(s) name column(s) 'height' that"),
        (["--target", "outcome", "--step", "no_such_tool"], "no tool named 'no_such_tool'"),
        (["--target", "outcome", "--step", 'impute:{"method": "magic"}'], "method"),
    ],
)
def test_user_errors_are_explained(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    done = copilot("clean", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), *args, "--yes",
                   data_dir=tmp_path / "data", check=False)  # fmt: skip
    assert done.returncode != 0
    assert words in " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_bad_file_and_output(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    done = copilot("clean", str(tmp_path / "empty.csv"), "-t", "y", "-o", str(tmp_path / "o.csv"),
                   data_dir=tmp_path / "d", check=False)  # fmt: skip
    assert done.returncode == 2 and "empty.csv: the file is empty" in done.stderr
    (tmp_path / "in.csv").write_text(CSV)
    done = copilot("clean", str(tmp_path / "in.csv"), "-t", "outcome", "-o", str(tmp_path / "o.doc"),
                   data_dir=tmp_path / "d", check=False)  # fmt: skip
    assert done.returncode == 2 and "cannot write .doc" in done.stderr
    done = copilot("apply", str(tmp_path / "nope.pipeline.json"), str(tmp_path / "in.csv"), "-o",
                   str(tmp_path / "o.csv"), data_dir=tmp_path / "d", check=False)  # fmt: skip
    assert done.returncode == 2 and "no such pipeline file" in done.stderr


def test_plan_only_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(CSV.replace(",20,", ",?,"))
    done = copilot("clean", str(tmp_path / "in.csv"), "-t", "outcome", "-o", str(tmp_path / "out.csv"),
                   "--plan-only", data_dir=tmp_path / "data")  # fmt: skip
    assert "coerce_types" in done.stdout and "evaluate" in done.stdout
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "data" / "versions").exists()
