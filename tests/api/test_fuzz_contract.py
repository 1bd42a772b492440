"""Schemathesis against a real ``copilot serve``, without tokens and with them: every check, every phase (the
stateful phase follows the document's links: create → get → approve, edit, reject, undo), a bounded number
of examples per operation, and zero failures. The only exceptions it is told of are in schemathesis.toml,
each with its reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import running_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 8  # per operation and phase: the coverage phase is exhaustive anyway, and the suite stays under 35 min


@pytest.mark.parametrize(("tokens", "seed"), [("", 11), ("fuzz-alpha-token,fuzz-beta-token", 12)])
def test_the_served_api_is_what_its_document_says(tmp_path: Path, tokens: str, seed: int) -> None:
    with running_server(tmp_path, tokens=tokens) as server:
        auth = ["-H", f"Authorization: Bearer {tokens.split(',')[0]}"] if tokens else []
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
            "run", f"{server.base_url}/openapi.json", *auth, "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "-n", str(EXAMPLES), "--seed", str(seed),
            "--generation-database", "none", "--request-timeout", "60", "-w", "1", "--no-color",
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counted and counted[1] == counted[2] and int(counted[1]) > 400, output[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-3000:]
