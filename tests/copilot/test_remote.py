"""The API client behind ``copilot clean --server``, against scripted answers: retries, keys, refusals, pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import copilot.cli.remote
from agents.chat import interpret
from agents.plan import Guidance
from copilot.cli.remote import Remote, RemoteError
from copilot.cli.remote_clean import goal_for

Handler = Callable[[httpx.Request], httpx.Response]
SESSION = {"id": "s1", "state": "planning", "target": "outcome", "task": "classification", "goal": "",
           "policy": "mutating", "source": "in.csv", "version": "v0", "plan": [], "pending_step": None,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}  # fmt: skip


class Script:
    """Answers each request with the next of ``steps``: a response, or an exception to raise."""

    def __init__(self, *steps: httpx.Response | type[httpx.TransportError]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, type):
            raise step("scripted", request=request)
        return step


def remote_with(script: Script, token: str | None = None) -> Remote:
    remote = Remote("http://copilot.test/", token)
    remote.http = httpx.Client(base_url=remote.base_url, headers=remote.headers, transport=httpx.MockTransport(script))
    return remote


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copilot.cli.remote, "BACKOFF_S", 0.0)


def test_a_create_is_retried_with_the_same_key(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,outcome\n1,x\n")
    script = Script(httpx.ConnectError, httpx.ReadTimeout, httpx.Response(201, json=SESSION))
    view = remote_with(script).create_session(tmp_path / "in.csv", {"target": "outcome", "goal": "keep `a`"})
    assert view.id == "s1"
    keys = [request.headers["Idempotency-Key"] for request in script.requests]
    assert len(keys) == 3 and len(set(keys)) == 1
    body = script.requests[-1].content
    assert b'name="target"\r\n\r\noutcome' in body and b"keep `a`" in body and b"1,x" in body  # the file, resent whole


def test_each_approval_gets_its_own_key_and_keeps_it_through_retries() -> None:
    script = Script(httpx.ConnectError, httpx.Response(200, json=SESSION), httpx.Response(200, json=SESSION))
    remote = remote_with(script)
    remote.send("POST", "/api/sessions/s1/steps/1/approve", keyed=True, json={"proposal": "ab"})
    remote.send("POST", "/api/sessions/s1/steps/2/approve", keyed=True, json={"proposal": "cd"})
    first, retry, second = (request.headers["Idempotency-Key"] for request in script.requests)
    assert first == retry != second


def test_only_reads_are_retried_without_a_key() -> None:
    script = Script(httpx.ConnectError, httpx.Response(200, json=SESSION))
    assert remote_with(script).session("s1").id == "s1"
    assert "Idempotency-Key" not in script.requests[0].headers

    script = Script(httpx.ConnectError, httpx.Response(200, json=SESSION))
    with pytest.raises(RemoteError, match=r"cannot reach http://copilot.test: is `copilot serve` running\?"):
        remote_with(script).send("POST", "/api/sessions/s1/steps/1/reject", json={"proposal": "ab", "reason": "no"})
    assert len(script.requests) == 1  # a reject is not sent twice


def test_a_server_that_stays_away_is_said_after_the_retries() -> None:
    script = Script(*[httpx.ConnectError] * (copilot.cli.remote.RETRIES + 1))
    with pytest.raises(RemoteError, match="cannot reach"):
        remote_with(script).session("s1")
    assert len(script.requests) == copilot.cli.remote.RETRIES + 1


@pytest.mark.parametrize(
    ("status", "body", "token", "words"),
    [
        (401, {"detail": "missing bearer token"}, None, "the server needs a token: pass --token or set COPILOT_TOKEN"),
        (401, {"detail": "invalid bearer token"}, "nope", "the server refused the token"),
        (413, {"detail": "the upload is larger than the server's limit of 1 MiB"}, None, "larger than the server's"),
        (400, {"detail": "in.csv: not a table"}, None, "(400): in.csv: not a table"),
        (502, None, None, "the server failed (502) on GET /api/sessions/s1: Bad Gateway"),
    ],
)
def test_refusals_are_said_in_words(status: int, body: Any, token: str | None, words: str) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    with pytest.raises(RemoteError) as caught:
        remote_with(Script(response), token).session("s1")
    assert words in str(caught.value)


def version(vid: str, current: bool) -> dict[str, Any]:
    return {"id": vid, "parent": None, "step_id": None, "tool": None, "n_rows": 3, "n_columns": 2,
            "content_hash": "0" * 64, "created_at": "2026-01-01T00:00:00Z", "current": current}  # fmt: skip


def test_the_current_version_is_found_in_a_list_or_in_pages() -> None:
    listed = Script(httpx.Response(200, json=[version("v0", False), version("v1", True)]))
    assert remote_with(listed).current_version("s1").id == "v1"

    paged = Script(httpx.Response(200, json={"items": [version("v0", False)], "next_cursor": "c1"}),
                   httpx.Response(200, json={"items": [version("v1", True)], "next_cursor": None}))  # fmt: skip
    assert remote_with(paged).current_version("s1").id == "v1"
    assert paged.requests[1].url.params["cursor"] == "c1"


@pytest.mark.parametrize(
    "guidance",
    [
        Guidance(ranges={"age": (0.0, 120.0)}),
        Guidance(ranges={"dose": (0.5, None), "temp": (None, -3.25), "rate": (1e-05, 1e20)}),
        Guidance(keep_columns=["blood pressure", "bmi"], allow_row_drops=False),
        Guidance(ranges={"weight": (-5.0, 200.0)}, keep_columns=["site"], allow_row_drops=False),
    ],
)
def test_the_rules_sent_as_a_goal_read_back_as_given(guidance: Guidance) -> None:
    """The server reads the goal with ``agents.chat``: the rules it holds must be those of the command line."""
    columns = {name: {} for name in ["age", "dose", "temp", "rate", "blood pressure", "bmi", "weight", "site"]}
    read = interpret(goal_for(guidance), Guidance(), {"columns": columns}, "outcome").guidance
    assert (read.ranges, read.keep_columns, read.allow_row_drops) == \
        (guidance.ranges, guidance.keep_columns, guidance.allow_row_drops)  # fmt: skip
