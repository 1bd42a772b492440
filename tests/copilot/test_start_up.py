"""Start-up: an engine starts its executor's forkserver when it starts, so the first step does not wait for its
imports, and the command line loads nothing it does not use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: In a fresh interpreter (a test process has long had a forkserver): the processes this one started,
#: right after ``Engine.start`` and before any session exists.
PROBE = """
import json, os, sys
from pathlib import Path
from copilot.session.engine import Engine
from copilot.settings import Settings

def children():
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read()
            cmdline = open(f"/proc/{entry}/cmdline").read().replace("\\0", " ")
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append(cmdline)
    return found

before = children()
engine = Engine(Settings(data_dir=Path(sys.argv[1]), executor=sys.argv[2]))
engine.start(recover=False)
after = children()
engine.close()
print(json.dumps({"before": before, "after": after}))
"""


def _children(tmp_path: Path, executor: str) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "data"), executor], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_forkserver_runs_before_the_first_step(tmp_path: Path) -> None:
    seen = _children(tmp_path, "local")
    assert not any("forkserver" in c for c in seen["before"])
    assert any("multiprocessing.forkserver" in c for c in seen["after"]), seen


def test_the_command_line_starts_without_the_llm_sdk() -> None:
    """Without an LLM configured nothing loads the ``openai`` SDK: half a second of every ``copilot`` run."""
    probe = "import sys, copilot.cli.app\nprint('openai' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
