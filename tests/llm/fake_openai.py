"""A small OpenAI-compatible server for the tests: ``POST /v1/chat/completions``, streamed or not,
with tool calls, answering from a script the test sets, and recording every request it receives.

It tells the three kinds of request apart by their shape, as the agents send them: a
``response_format`` is the coordinator asking for a plan, ``tools`` is the worker asking
for a call, ``stream`` is the chat. Each kind answers its scripted faults first, in order,
then behaves well: the coordinator plans the scripted steps not yet in the history, the
worker calls the step's tool with the scripted arguments.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

PlanFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Script:
    steps: list[tuple[str, str]] = field(default_factory=list)  # (key, tool) in order
    arguments: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool -> worker arguments
    faults: dict[str, deque[str]] = field(default_factory=lambda: {k: deque() for k in ("plan", "call", "chat")})
    plan_fn: PlanFn | None = None  # overrides ``steps`` when set
    chat_text: str = "The table has missing values in a few columns; the plan imputes them."
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 5.0  # how long a "timeout" fault sleeps

    def fault(self, kind: str, *names: str) -> None:
        self.faults[kind].extend(names)


def make_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        script.requests.append(body)
        kind = "plan" if body.get("response_format") else "call" if body.get("tools") else "chat"
        fault = _take_fault(script, kind, body)
        if fault == "http_500":
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=500)
        if fault == "http_429":
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}}, status_code=429)
        if fault == "timeout":
            await asyncio.sleep(script.delay_s)
        if kind == "chat":
            return StreamingResponse(_stream(script.chat_text), media_type="text/event-stream")
        if kind == "plan":
            return _completion(_plan_content(script, body, fault))
        return _completion(None, _tool_call(script, body, fault))

    return app


def _take_fault(script: Script, kind: str, body: dict[str, Any]) -> str | None:
    """The first scripted fault of this kind; ``name@tool`` only for a worker request about that tool."""
    tool = json.loads(body["messages"][1]["content"]).get("step", {}).get("tool") if kind == "call" else None
    for fault in script.faults[kind]:
        name, _, only = fault.partition("@")
        if not only or only == tool:
            script.faults[kind].remove(fault)
            return name
    return None


def _plan_content(script: Script, body: dict[str, Any], fault: str | None) -> str:
    if fault == "nonsense":
        return "I think the data looks lovely today."
    task = json.loads(body["messages"][1]["content"])
    if fault == "unknown_tool":
        return json.dumps({"steps": [{"key": "magic", "tool": "make_it_clean", "rationale": "because"}]})
    if script.plan_fn is not None:
        return json.dumps(script.plan_fn(task))
    seen = {h["key"] for h in task["history"]}
    steps = [{"key": k, "tool": t, "rationale": f"Scripted step {k}.", "expected": ""} for k, t in script.steps]
    return json.dumps({"steps": [s for s in steps if s["key"] not in seen]})


def _tool_call(script: Script, body: dict[str, Any], fault: str | None) -> dict[str, Any]:
    step = json.loads(body["messages"][1]["content"])["step"]
    name, arguments = step["tool"], json.dumps(script.arguments.get(step["tool"], {}))
    if fault == "broken_json":
        arguments = '{"method": "auto",'
    elif fault == "unknown_tool":
        name = "clean_everything"
    elif fault == "missing_column":
        arguments = json.dumps({"columns": ["no_such_column"]})
    elif fault == "nonsense":
        return {}
    function = {"name": name, "arguments": arguments}
    return {"id": f"call_{len(script.requests)}", "type": "function", "function": function}


def _completion(content: str | None, call: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if call:
        message["tool_calls"] = [call]
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }  # fmt: skip


def _stream(text: str) -> Iterator[str]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake"}
    for word in text.split(" "):
        delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
        yield f"data: {json.dumps(base | {'choices': [delta]})}\n\n"
    usage = {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}
    yield f"data: {json.dumps(base | {'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


class FakeOpenAI:
    """The fake server on a loopback port, in a thread of the test process."""

    def __init__(self) -> None:
        self.script = Script()
        config = uvicorn.Config(make_app(self.script), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
