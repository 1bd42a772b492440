"""The LLM worker: the next step as a function call, its arguments checked before anyone sees them.

Every registered tool is offered as a function whose parameters are the JSON
Schema of the tool's ``Params``. The answer must call the step's tool with
arguments that are a JSON object, pass the tool's schema, name only columns
the table has and honour the human's guidance (:mod:`agents.guard`). Each
failure gets a corrective tool message naming what was wrong; after
:data:`CORRECTIONS` of them :class:`~agents.llm.LLMError` is raised and the
rule-based worker's parameters are used.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from agents.guard import violations
from agents.llm import LLMClient, LLMError, Reply, Usage
from agents.plan import PlanStep
from agents.rule_based import PlanningState
from agents.summary import shown_data
from agents.worker import ToolCall, ToolCallError, validate_call
from tools.registry import Registry

CORRECTIONS = 2


class LLMWorker:
    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.system = (files("agents") / "prompts" / "worker.md").read_text(encoding="utf-8")

    def prepare(
        self, step: PlanStep, state: PlanningState, registry: Registry, suggested: dict[str, Any], usage: Usage
    ) -> ToolCall:
        """A validated call of ``step.tool``; raises LLMError when the LLM cannot produce one."""
        task = {"step": {"key": step.key, "tool": step.tool, "rationale": step.rationale},
                "data": shown_data(state),
                "guidance": state.guidance.model_dump(), "suggested_params": suggested}  # fmt: skip
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.system},
                                          {"role": "user", "content": json.dumps(task)}]  # fmt: skip
        functions = function_schemas(registry)
        for attempt in range(CORRECTIONS + 1):
            reply = self.client.chat(messages, usage, tools=functions)
            try:
                return self._checked(reply, step, state, registry)
            except ToolCallError as exc:
                if attempt == CORRECTIONS:
                    raise LLMError(f"no valid call of {step.tool} after {CORRECTIONS} corrections: {exc}") from None
                messages += _correction(reply, str(exc))
        raise AssertionError("unreachable")

    def _checked(self, reply: Reply, step: PlanStep, state: PlanningState, registry: Registry) -> ToolCall:
        if not reply.tool_calls:
            raise ToolCallError(f"no function was called; call `{step.tool}`")
        name, raw = reply.tool_calls[0]["name"], reply.tool_calls[0]["arguments"]
        if name not in registry.names():
            raise ToolCallError(f"there is no tool named {name!r}; this step calls `{step.tool}`")
        if name != step.tool:
            raise ToolCallError(f"this step calls `{step.tool}`, not `{name}`")
        try:
            params = json.loads(raw or "{}")
        except json.JSONDecodeError as exc:
            raise ToolCallError(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(params, dict):
            raise ToolCallError("the arguments must be a JSON object")
        call = validate_call(registry, step.tool, params, list(state.profile["columns"]))
        broken = violations(call, state.guidance)
        if broken:
            raise ToolCallError("; ".join(broken))
        return call


def function_schemas(registry: Registry) -> list[dict[str, Any]]:
    """Each tool as an OpenAI function: its name, description and the JSON Schema of its ``Params``."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema()}}
            for t in registry.tools.values()]  # fmt: skip


def _correction(reply: Reply, problem: str) -> list[dict[str, Any]]:
    """The assistant's answer and the error it earned, in the shape the chat API expects."""
    if not reply.tool_calls:
        return [{"role": "assistant", "content": reply.content},
                {"role": "user", "content": f"Error: {problem}."}]  # fmt: skip
    calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
             for c in reply.tool_calls]  # fmt: skip
    answers = [{"role": "tool", "tool_call_id": c["id"], "content": f"Error: {problem}. Call the function again."}
               for c in reply.tool_calls]  # fmt: skip
    return [{"role": "assistant", "content": reply.content or None, "tool_calls": calls}, *answers]
