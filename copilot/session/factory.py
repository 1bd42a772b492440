"""The parts the engine is built from, chosen by the settings: the executor of tool calls and the agents."""

from __future__ import annotations

import logging
import os
from typing import Any

from agents.llm import LLMClient, LLMConfig
from agents.llm_pair import LLMPair
from agents.pair import AgentPair, RuleBasedPair
from copilot.errors import ExecutorError
from copilot.settings import Settings
from tools.executor import Executor, ExecutorUnavailable
from tools.sandbox import Limits, Sandbox, isolation_report

log = logging.getLogger(__name__)


def make_sandbox(settings: Settings, extra_tools: tuple[str, ...] = ()) -> Executor:
    """The executor of ``COPILOT_EXECUTOR``, under the tool limits of the settings. A ray executor that cannot
    join its cluster stops start-up (:class:`ExecutorError`): tools never run elsewhere than asked."""
    limits = Limits(
        settings.tool_memory_mb,
        settings.tool_cpu_seconds,
        settings.tool_wall_seconds,
        settings.tool_threads,
        strict=settings.sandbox == "strict",
    )
    root = settings.data_dir / "sandbox"
    if settings.executor == "local":
        return Sandbox(limits, root, extra_tools=extra_tools)
    from tools.ray_executor import RayExecutor  # Ray is an optional extra

    try:
        return RayExecutor(limits, root, extra_tools=extra_tools, address=settings.ray_cluster())
    except ExecutorUnavailable as exc:
        raise ExecutorError(str(exc)) from None


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


def probed_isolation(settings: Settings) -> dict[str, Any]:
    """The sandbox's layers on this machine; a warning in the log when the kernel's are missing."""
    report = isolation_report((str(settings.data_dir),))
    if not report["kernel"]:
        log.warning(isolation_warning(report))
    return report


def isolation_warning(report: dict[str, Any]) -> str:
    return (f"The sandbox runs without its full kernel isolation here ({report['describe']}): tools are held by "
            "Python's audit hooks, which native code can get past. Set COPILOT_SANDBOX=strict to run no tool "
            "without it.")  # fmt: skip
