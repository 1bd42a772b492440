"""Where the kernel refuses a layer, COPILOT_SANDBOX=strict runs no tool, and the default says what is missing.

User namespaces are taken away for real: the sandbox runs in a process inside a user namespace whose
``user.max_user_namespaces`` is 0, so the child's ``unshare`` fails as it does where an administrator
disabled them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import pandas as pd
    from tools.sandbox import CallContext, Limits, Sandbox, isolation_report

    def main():
        folder = Path(sys.argv[1])
        pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]}).to_parquet(folder / "in.parquet")
        sandbox = Sandbox(Limits(memory_mb=2048, cpu_seconds=30, wall_seconds=60, strict=sys.argv[2] == "strict"),
                          folder / "data" / "sandbox")
        out = sandbox.run("feature_types", folder / "in.parquet", {}, CallContext(target="y"))
        print(json.dumps({"ok": out.ok, "kind": out.error_kind, "error": out.error, "report": isolation_report()}))

    if __name__ == "__main__":
        main()
""")


def _run_without_user_namespaces(tmp_path: Path, mode: str) -> dict:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    inner = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} {script} {tmp_path} {mode}"
    done = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", inner], capture_output=True,
                          text=True, timeout=180, cwd=Path(__file__).parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux's unshare is missing")


def test_strict_runs_no_tool_without_the_kernel_layers(tmp_path: Path) -> None:
    result = _run_without_user_namespaces(tmp_path, "strict")
    assert result["report"]["namespaces"] is False and result["report"]["kernel"] is False
    assert not result["ok"] and result["kind"] == "isolation", result
    assert "COPILOT_SANDBOX=strict" in result["error"] and "namespaces: unavailable" in result["error"]


def test_the_default_runs_and_reports_what_is_missing(tmp_path: Path) -> None:
    result = _run_without_user_namespaces(tmp_path, "warn")
    assert result["ok"], result
    assert "namespaces: unavailable" in result["report"]["describe"]
    assert result["report"]["landlock_abi"] >= 0 and result["report"]["audit_hooks"] is True
