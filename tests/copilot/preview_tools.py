"""Tools for the preview tests, registered in the sandbox child by the tests (``Sandbox.extra_tools``)."""

from __future__ import annotations

import os
import time

import pandas as pd

from tools.base import Tool, ToolContext, ToolParams, ToolResult


class NoParams(ToolParams):
    pass


class Dice(Tool):
    """Adds a column of fresh random bytes: two runs never make the same table, so a committed table that is
    the previewed one proves that approval ran nothing again."""

    name = "dice"
    description = "Adds a column of random numbers (a test tool)."
    category = "readiness"
    mutates = True
    train_only = True  # nothing to re-apply to new data
    Params = NoParams

    def run(self, table: pd.DataFrame, params: NoParams, ctx: ToolContext) -> ToolResult:
        rolls = [b for b in os.urandom(len(table))]
        return ToolResult(summary=f"rolled {len(rolls)} dice", table=table.assign(dice=rolls))


class Slow(Tool):
    """Takes its time, watching for cancellation: long enough to act on a session while it is previewed."""

    name = "slow"
    description = "Waits ten seconds, then changes nothing (a test tool)."
    category = "readiness"
    mutates = True
    train_only = True  # nothing to re-apply to new data
    Params = NoParams

    def run(self, table: pd.DataFrame, params: NoParams, ctx: ToolContext) -> ToolResult:
        for _ in range(200):
            ctx.check_cancelled()
            time.sleep(0.05)
        return ToolResult(summary="waited", table=table.assign(waited=1))


class Twins(Tool):
    """Returns its first row twice under one label: the preview could not tell which copy is which."""

    name = "twins"
    description = "Repeats the first row under its label (a test tool)."
    category = "readiness"
    mutates = True
    train_only = True
    Params = NoParams

    def run(self, table: pd.DataFrame, params: NoParams, ctx: ToolContext) -> ToolResult:
        return ToolResult(summary="twinned", table=pd.concat([table, table.head(1)]))


TOOLS = (Dice, Slow, Twins)
EXTRA = tuple(f"tests.copilot.preview_tools:{cls.__name__}" for cls in TOOLS)
