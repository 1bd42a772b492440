"""A caller run as a script (as the ``copilot`` console script runs) is loaded once, by the forkserver,
not again in every sandboxed child: each re-run would import the whole application."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
with open(os.environ["MAIN_RUNS"], "a") as marks:  # one line each time this script's body runs
    marks.write(__name__ + "\\n")

import pandas as pd
from tools.sandbox import CallContext, Limits, Sandbox


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    pd.DataFrame({{"a": range(20), "b": range(20)}}).to_parquet(folder / "in.parquet")
    sandbox = Sandbox(Limits(2048, 60, 60, 1), folder / "sandbox")
    for _ in range(3):
        outcome = sandbox.run("drop_columns", folder / "in.parquet", {{"columns": ["a"]}}, CallContext("b"))
        assert outcome.ok, outcome.error


if __name__ == "__main__":
    main()
"""


def test_a_script_caller_is_loaded_once_for_all_its_sandboxed_calls(tmp_path: Path) -> None:
    script, marks = tmp_path / "caller.py", tmp_path / "runs.txt"
    script.write_text(SCRIPT.format(root=str(ROOT)), encoding="utf-8")
    env = os.environ | {"MAIN_RUNS": str(marks)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert marks.read_text().split() == ["__main__", "__mp_main__"]  # the caller, then the forkserver: not per call
