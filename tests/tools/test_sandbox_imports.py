"""A tool may import the tool library lazily inside the sandbox, however the project is installed.

An editable install reaches the project through an import hook, not ``sys.path``, so the sandbox's
readable folders must name the tool library itself. The call runs in a fresh interpreter whose working
folder and ``sys.path`` hold nothing of the project: as ``copilot serve`` runs anywhere but the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

LAZY_TOOL = """
import pandas as pd

from tools.base import Tool, ToolContext, ToolParams, ToolResult


class Lazy(Tool):
    name = "lazy_import"
    category = "readiness"
    mutates = False
    Params = ToolParams
    description = "Imports a module of the tool library only when it runs."

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        import tools.executor  # never imported before the call: read from the tool library's folder

        return ToolResult(summary=f"read {len(tools.executor.EXECUTORS)} executor names")
"""

CALL = """
import json, sys
from pathlib import Path
import pandas as pd
from tools.sandbox import CallContext, Limits, Sandbox

root = Path(sys.argv[1])
pd.DataFrame({"a": [1, 2, 3]}).to_parquet(root / "in.parquet")
sandbox = Sandbox(Limits(memory_mb=2048, cpu_seconds=20, wall_seconds=60), root / "calls", ("lazy_tool:Lazy",))
out = sandbox.run("lazy_import", root / "in.parquet", {}, CallContext())
print(json.dumps({"ok": out.ok, "error": out.error, "summary": out.result.get("summary")}))
"""


def test_a_tool_imports_the_tool_library_lazily_from_anywhere(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "lazy_tool.py").write_text(textwrap.dedent(LAZY_TOOL))
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(plugins)}
    done = subprocess.run([sys.executable, "-c", CALL, str(work)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"ok": True, "error": None, "summary": "read 2 executor names"}


def test_starting_calls_loads_no_table_library() -> None:
    """A Ray worker only starts a child (which imports pandas itself): importing the executors must not
    cost it pandas, pydantic or scikit-learn, a second of every call."""
    probe = ("import sys, tools.ray_executor, tools.sandbox\n"
             "print(sorted({'pandas', 'pydantic', 'sklearn'} & set(sys.modules)))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
