"""The LLM client: the official ``openai`` SDK (async) on one background event loop.

The engine and the CLI are synchronous and run planning in worker threads, so
the client owns an event loop in a daemon thread and each call waits for its
coroutine with an overall deadline. Time-outs, 429 and 5xx answers are retried
with back-off by the SDK itself (``max_retries``); whatever still fails raises
:class:`LLMError`, and the caller falls back to the rule-based agents. A
session's usage is counted in :class:`Usage` and checked against its budget
before every call, so a session can never spend more than it was given.
Every request is copied into the :class:`Usage` it is counted in, exactly as it
leaves, before it is sent (a request that then fails has left too), so the
engine can keep it with the session for its owner to read.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import openai  # imported where a client is made: a run without an LLM never loads the SDK

TokenFn = Callable[[str], None]
#: What an LLM may see of a session's data, least first; each level includes those before it.
Share = Literal["aggregates", "categories", "samples"]
SHARE_LEVELS: tuple[Share, ...] = ("aggregates", "categories", "samples")
Purpose = Literal["plan", "call", "reply"]
COUNTERS = ("calls", "prompt_tokens", "completion_tokens", "failed_calls", "fallbacks")


def allows(level: Share, wanted: Share) -> bool:
    """Whether the share level ``level`` includes what ``wanted`` shows."""
    return SHARE_LEVELS.index(level) >= SHARE_LEVELS.index(wanted)


class LLMError(RuntimeError):
    """The endpoint failed, timed out or answered nothing usable, or the budget is spent."""


@dataclass(frozen=True)
class SentRequest:
    """One request as it left for the endpoint: the keyword arguments of ``chat.completions.create``."""

    purpose: Purpose
    request: dict[str, Any]
    at: datetime


class Usage(BaseModel):
    """What a session has spent on the LLM; stored with the session and shown in its JSON.

    ``requests`` holds the requests counted here, in the order sent; it is left out of the stored and
    shown usage (the store keeps each request in a row of its own)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed_calls: int = 0
    fallbacks: int = 0
    requests: list[SentRequest] = Field(default_factory=list, exclude=True)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def plus(self, other: Usage) -> Usage:
        counts = {name: getattr(self, name) + getattr(other, name) for name in COUNTERS}
        return Usage(**counts, requests=[*self.requests, *other.requests])

    def spending(self) -> Usage:
        """A copy to spend from: the same counts, and a list of requests of its own."""
        return self.model_copy(update={"requests": list(self.requests)})


@dataclass(frozen=True)
class LLMConfig:
    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    max_calls: int = 60
    max_tokens: int = 400_000

    def deadline_s(self) -> float:
        """The longest one call may take, retries and their back-off included."""
        return (self.timeout_s + 8.0) * (self.max_retries + 1)


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"} each


class LLMClient:
    """One OpenAI-compatible endpoint; safe to call from any thread."""

    def __init__(self, config: LLMConfig) -> None:
        from openai import AsyncOpenAI  # here, not at import: half a second that a run without an LLM never pays

        self.config = config
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="llm-loop", daemon=True).start()
        self._client = AsyncOpenAI(
            api_key=config.api_key or "not-needed", base_url=config.base_url,
            timeout=config.timeout_s, max_retries=config.max_retries,
        )  # fmt: skip

    def chat(
        self, messages: list[dict[str, Any]], usage: Usage, *, tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None, on_token: TokenFn | None = None,
    ) -> Reply:  # fmt: skip
        """One chat completion; streamed (text only) when ``on_token`` is given. ``usage`` is updated, and
        keeps a copy of the request. Its purpose follows from its shape: a ``response_format`` asks for a
        plan, ``tools`` for a call, anything else is a reply to the person."""
        import openai

        self._check_budget(usage)
        request: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if tools:
            request["tools"] = tools
        if response_format:
            request["response_format"] = response_format
        if on_token:
            request |= {"stream": True, "stream_options": {"include_usage": True}}
        purpose: Purpose = "plan" if response_format else "call" if tools else "reply"
        usage.requests.append(SentRequest(purpose, json.loads(json.dumps(request)), datetime.now(UTC)))
        coro = self._stream(request, usage, on_token) if on_token else self._complete(request, usage)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        usage.calls += 1
        try:
            return future.result(timeout=self.config.deadline_s())
        except TimeoutError:
            future.cancel()
            usage.failed_calls += 1
            raise LLMError(f"the LLM did not answer within {self.config.deadline_s():.0f} s") from None
        except openai.OpenAIError as exc:
            usage.failed_calls += 1
            raise LLMError(_describe(exc)) from None

    def budget_spent(self, usage: Usage) -> bool:
        return usage.calls >= self.config.max_calls or usage.tokens >= self.config.max_tokens

    def _check_budget(self, usage: Usage) -> None:
        if usage.calls >= self.config.max_calls:
            raise LLMError(f"the session's LLM budget of {self.config.max_calls} calls is used up")
        if usage.tokens >= self.config.max_tokens:
            raise LLMError(f"the session's LLM budget of {self.config.max_tokens} tokens is used up")

    async def _complete(self, request: dict[str, Any], usage: Usage) -> Reply:
        response = await self._client.chat.completions.create(**request)
        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens
            usage.completion_tokens += response.usage.completion_tokens
        if not response.choices:
            raise LLMError("the LLM answered with no choices")
        message = response.choices[0].message
        calls = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for c in message.tool_calls or []
            if getattr(c, "function", None) is not None
        ]
        return Reply(content=message.content or "", tool_calls=calls)

    async def _stream(self, request: dict[str, Any], usage: Usage, on_token: TokenFn) -> Reply:
        stream = await self._client.chat.completions.create(**request)
        parts: list[str] = []
        async for chunk in stream:
            if chunk.usage is not None:
                usage.prompt_tokens += chunk.usage.prompt_tokens
                usage.completion_tokens += chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    on_token(choice.delta.content)
        return Reply(content="".join(parts))


def _describe(exc: openai.OpenAIError) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "the LLM timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM endpoint answered HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "the LLM endpoint could not be reached"
    return f"the LLM call failed ({type(exc).__name__})"
