"""The parts the engine is built from, chosen by the settings: the sandbox and the agents."""

from __future__ import annotations

import os

from agents.llm import LLMClient, LLMConfig
from agents.llm_pair import LLMPair
from agents.pair import AgentPair, RuleBasedPair
from copilot.settings import Settings
from tools.sandbox import Limits, Sandbox


def make_sandbox(settings: Settings, extra_tools: tuple[str, ...] = ()) -> Sandbox:
    limits = Limits(
        settings.tool_memory_mb,
        settings.tool_cpu_seconds,
        settings.tool_wall_seconds,
        settings.tool_threads,
        strict=settings.sandbox == "strict",
    )
    return Sandbox(limits, settings.data_dir / "sandbox", extra_tools=extra_tools)


def make_agents(settings: Settings) -> AgentPair:
    """The LLM pair when ``COPILOT_LLM_MODEL`` names a model, else the rule-based pair. The endpoint and
    key are the openai SDK's own ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``."""
    if not settings.llm_model:
        return RuleBasedPair()
    config = LLMConfig(
        model=settings.llm_model, base_url=os.environ.get("OPENAI_BASE_URL") or None,
        api_key=os.environ.get("OPENAI_API_KEY") or None, timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries, max_calls=settings.llm_max_calls, max_tokens=settings.llm_max_tokens,
    )  # fmt: skip
    return LLMPair(LLMClient(config))
