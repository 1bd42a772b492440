"""Tools that misbehave on purpose, registered only in the sandbox tests."""

from __future__ import annotations

import os
import socket
import time

import pandas as pd
from pydantic import Field

from tools.base import Tool, ToolContext, ToolParams, ToolResult


class _NoParams(ToolParams):
    pass


class _Diagnostic(Tool):
    category = "readiness"
    mutates = False
    Params = _NoParams
    description = "A test tool that misbehaves on purpose."
    name = "abstract_test_tool"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        raise NotImplementedError


class CountParams(ToolParams):
    steps: int = Field(3, ge=1, le=100, description="How many progress messages to send.")


class CountRows(_Diagnostic):
    """Well-behaved: counts rows and reports progress."""

    name = "count_rows"
    Params = CountParams

    def run(self, table: pd.DataFrame, params: CountParams, ctx: ToolContext) -> ToolResult:
        for i in range(params.steps):
            ctx.progress((i + 1) / params.steps, f"step {i + 1}")
        return ToolResult(
            summary=f"{len(table)} rows",
            metrics={"rows": float(len(table))},
            findings={"target": ctx.target, "cwd": os.getcwd()},
        )


class EatMemory(_Diagnostic):
    name = "eat_memory"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        hoard = [bytearray(256 * 1024 * 1024) for _ in range(200)]  # 50 GiB
        return ToolResult(summary=f"kept {len(hoard)} blocks")


class SpinForever(_Diagnostic):
    name = "spin_forever"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        while True:
            pass


class SleepForever(_Diagnostic):
    name = "sleep_forever"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        time.sleep(10_000)
        return ToolResult(summary="woke up")


class HardExit(_Diagnostic):
    name = "hard_exit"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        os._exit(3)


class OpenSocket(_Diagnostic):
    name = "open_socket"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        with socket.create_connection(("127.0.0.1", 9), timeout=1):
            pass
        return ToolResult(summary="connected")


class Raise(_Diagnostic):
    name = "raise_error"

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        raise RuntimeError("something broke inside the tool")


class Vandal(Tool):
    """Mutating and train-only, but overwrites its input file and drops the target."""

    name = "vandal"
    category = "readiness"
    mutates = True
    train_only = True
    Params = _NoParams
    description = "A test tool that tries to damage its input."

    def run(self, table: pd.DataFrame, params: ToolParams, ctx: ToolContext) -> ToolResult:
        pd.DataFrame({"x": [1]}).to_parquet("input.parquet")
        return ToolResult(summary="dropped target", table=table.drop(columns=[ctx.target]))


class FlattererParams(ToolParams):
    relabel_to: str = Field("no", description="The label every remaining row gets.")


class Flatterer(Tool):
    """Row-level: keeps only the rows whose label is ``relabel_to`` and relabels what it can reach, the
    way a step would raise a score it is judged by."""

    name = "flatterer"
    category = "label_quality"
    mutates = True
    train_only = True
    Params = FlattererParams
    description = "A test tool that drops and relabels rows to flatter the score."

    def run(self, table: pd.DataFrame, params: FlattererParams, ctx: ToolContext) -> ToolResult:
        kept = table.head(5).assign(**{ctx.target: params.relabel_to})
        return ToolResult(summary=f"kept {len(kept)} rows", table=kept)


class Impostor(Flatterer):
    """Row-level, but hands back rows under labels it was never given (the held-out rows' labels)."""

    name = "impostor"
    description = "A test tool that invents rows under other rows' labels."

    def run(self, table: pd.DataFrame, params: FlattererParams, ctx: ToolContext) -> ToolResult:
        invented = table.head(len(table)).copy()
        invented.index = range(len(invented))  # 0..n-1: the labels of the rows it was not shown
        return ToolResult(summary="renumbered rows", table=invented)


HOSTILE = [f"tests.tools.sandbox_tools:{cls.__name__}" for cls in
           (CountRows, EatMemory, SpinForever, SleepForever, HardExit, OpenSocket, Raise, Vandal,
            Flatterer, Impostor)]  # fmt: skip
