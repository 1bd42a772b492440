"""A setting that is not valid stops every command before it serves or touches data: the gate fails closed.

``COPILOT_POLICY=Always`` used to start a server on which no step waited for approval.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api.conftest import free_port

COMMANDS = {
    "serve": ["serve", "--host", "127.0.0.1", "--port", "{port}"],
    "clean": ["clean", "in.csv", "--target", "y", "--output", "out.csv"],
    "clean --yes": ["clean", "in.csv", "--target", "y", "--output", "out.csv", "--yes"],
    "apply": ["apply", "in.pipeline.json", "in.csv", "--output", "out.csv"],
    "doctor": ["doctor"],
    "demo": ["demo"],
}


def run_copilot(folder: Path, args: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``copilot ARGS`` in ``folder``, with only the given COPILOT_* settings; returns the run and its seconds."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    clean_env |= {"COPILOT_DATA_DIR": str(folder / "data"), "COLUMNS": "200", **env}
    command = [sys.executable, "-m", "copilot.cli", *(a.format(port=free_port()) for a in args)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=folder, env=clean_env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unknown_policy_stops_start_up(name: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    done, seconds = run_copilot(tmp_path, COMMANDS[name], COPILOT_POLICY="Always")
    assert done.returncode != 0 and seconds < 30, (done.returncode, seconds, done.stdout)
    said = " ".join(done.stderr.split())
    assert "COPILOT_POLICY='Always'" in said and "'always', 'mutating' or 'never'" in said, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "data").exists()


def test_an_unreadable_token_file_stops_the_server(tmp_path: Path) -> None:
    done, _ = run_copilot(tmp_path, COMMANDS["serve"], COPILOT_TOKEN_FILE=str(tmp_path / "missing"))
    assert done.returncode != 0
    assert "COPILOT_TOKEN_FILE=" in done.stderr and "cannot read it" in done.stderr
    assert "Traceback" not in done.stderr
