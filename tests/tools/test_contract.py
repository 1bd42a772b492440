"""The contract every registered tool, built-in or plugin, must meet."""

from __future__ import annotations

import inspect
import json

import pandas as pd
import pytest

from tests.conftest import messy_table
from tools.base import Tool, ToolContext, ToolResult
from tools.registry import default_registry

TOOLS = sorted(default_registry().tools.items())


def _run(tool_cls: type[Tool], table: pd.DataFrame, ctx: ToolContext) -> ToolResult:
    return tool_cls().run(table, tool_cls.parse_params({}), ctx)


@pytest.mark.parametrize(("name", "tool_cls"), TOOLS, ids=[n for n, _ in TOOLS])
def test_tool_meets_contract(name: str, tool_cls: type[Tool], messy_ctx: ToolContext) -> None:
    table = messy_table(200, seed=1)
    before = table.copy(deep=True)
    result = _run(tool_cls, table, messy_ctx)

    pd.testing.assert_frame_equal(table, before)  # the input is never changed in place
    assert result.summary.strip()
    json.dumps({"findings": result.findings, "metrics": result.metrics, "fitted": result.fitted})
    if tool_cls.mutates:
        assert isinstance(result.table, pd.DataFrame)
        assert set(result.table.index) <= set(table.index), "rows keep their identity (index)"
        assert "outcome" in result.table.columns and "record_id" in result.table.columns
    else:
        assert result.table is None
    again = _run(tool_cls, table, messy_ctx)  # deterministic for a given seed
    assert again.findings == result.findings
    if result.table is not None:
        pd.testing.assert_frame_equal(again.table, result.table)


@pytest.mark.parametrize(("name", "tool_cls"), TOOLS, ids=[n for n, _ in TOOLS])
def test_reapply_is_self_contained(name: str, tool_cls: type[Tool], messy_ctx: ToolContext) -> None:
    """``reapply`` is copied verbatim into pipeline.py, so it must run on its own."""
    if tool_cls.reapply is None:
        pytest.skip("no column-level transform")
    fn = tool_cls.reapply
    namespace: dict[str, object] = {}
    exec(compile(inspect.getsource(fn), "<pipeline>", "exec"), namespace)  # a fresh module
    standalone = namespace[fn.__name__]
    table = messy_table(200, seed=2)
    result = _run(tool_cls, table, messy_ctx)
    assert result.fitted is not None
    fitted = json.loads(json.dumps(result.fitted))  # it travels as JSON
    held_out = messy_table(50, seed=3)
    via_tool = fn(held_out.copy(), fitted)
    pd.testing.assert_frame_equal(standalone(held_out.copy(), fitted), via_tool)
