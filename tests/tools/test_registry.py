"""The registry finds built-ins and plugins; a broken plugin is reported and skipped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools.base import Tool, ToolParams
from tools.registry import UnknownToolError, build_registry


def _fake_distribution(root: Path, entry_points: str, modules: dict[str, str]) -> None:
    """A minimal installed distribution on ``root``: dist-info with entry points, plus modules."""
    info = root / "fake_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[copilot.tools]\n" + textwrap.dedent(entry_points))
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))


GOOD = """
    import pandas as pd
    from tools.base import Tool, ToolParams, ToolResult

    class Count(Tool):
        name = "count_cells"
        description = "Counts the cells of the table."
        category = "readiness"
        mutates = False
        Params = ToolParams

        def run(self, table, params, ctx):
            return ToolResult(summary=f"{table.size} cells")

    class Clash(Count):
        name = "impute"
"""


def test_broken_plugins_are_reported_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_distribution(
        tmp_path,
        """
        good = fake_good:Count
        broken = fake_broken:Tool
        not_a_tool = fake_good:pd
        clash = fake_good:Clash
        missing = fake_nowhere:Thing
        """,
        {"fake_good": GOOD, "fake_broken": "raise RuntimeError('plugin import exploded')\n"},
    )
    already = len(build_registry().tools)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    assert len(registry.tools) == already + 1
    assert registry.plugins["count_cells"] == "fake-plugins"
    problems = {e.entry_point.split(" = ")[0]: e.message for e in registry.errors if e.source == "fake-plugins"}
    assert "plugin import exploded" in problems["broken"]
    assert "not a subclass of tools.base.Tool" in problems["not_a_tool"]
    assert "'impute' is already taken by the built-ins" in problems["clash"]
    assert "No module named 'fake_nowhere'" in problems["missing"]


def test_unknown_tool_lists_the_known_ones() -> None:
    with pytest.raises(UnknownToolError, match=r"no tool named 'imptue'; known tools: .*impute"):
        build_registry(include_plugins=False).get("imptue")


@pytest.mark.parametrize(
    ("attrs", "words"),
    [
        ({"name": "Bad Name"}, "snake_case"),
        ({"category": "magic"}, "category 'magic'"),
        ({"description": ""}, "description"),
        ({"mutates": True}, "must set reapply"),
    ],
)
def test_contract_mistakes_fail_at_class_definition(attrs: dict[str, object], words: str) -> None:
    base = {"name": "ok_tool", "description": "A tool for the test.", "category": "readiness", "mutates": False,
            "Params": ToolParams, "run": lambda self, t, p, c: None}  # fmt: skip
    with pytest.raises(TypeError, match=words):
        type("Bad", (Tool,), {**base, **attrs})


def test_params_without_defaults_are_refused() -> None:
    class Needy(ToolParams):
        column: str

    with pytest.raises(TypeError, match="every parameter needs a default"):
        type("Bad", (Tool,), {"name": "needy", "description": "A tool for the test.", "category": "schema",
                              "mutates": False, "Params": Needy, "run": lambda self, t, p, c: None})  # fmt: skip
