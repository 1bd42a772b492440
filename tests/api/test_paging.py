"""Every list is paged (``limit`` and an opaque ``cursor``): following the cursors reads each item once, in
order, and a cursor the server did not give is a 422 that names it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot.api.paging import CURSOR_PATTERN, Page, Window, decode_cursor, encode_cursor
from tests.api.conftest import approve, new_session, wait_for, wait_for_gate


class Numbers(Page[int]):
    pass


def follow(api: httpx.Client, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of ``path``, read ``limit`` at a time by following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, **params}
    while True:
        response = api.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert page["items"], "a page that promises more must hold something"
        query = {"limit": limit, "cursor": page["next_cursor"]}


@pytest.fixture(scope="module")
def worked(api: httpx.Client) -> str:
    """A session with several versions, events and messages: two approvals and a chat message."""
    session_id = new_session(api, policy="mutating")
    for _ in range(2):
        gate = wait_for_gate(api, session_id)
        assert approve(api, session_id, gate["pending_step"]).status_code == 200
    api.post(f"/api/sessions/{session_id}/messages", json={"text": "age over 120 is impossible"})
    wait_for(api, session_id)
    return session_id


def test_sessions_page_by_page_are_the_whole_list_in_order(api: httpx.Client) -> None:
    for _ in range(3):
        new_session(api)
    whole = api.get("/api/sessions", params={"limit": 500}).json()
    assert whole["next_cursor"] is None and len(whole["items"]) >= 3
    assert [s["id"] for s in follow(api, "/api/sessions", 2)] == [s["id"] for s in whole["items"]]


@pytest.mark.parametrize("kind", ["versions", "events", "messages", "llm-requests"])
def test_a_sessions_lists_page_by_page(api: httpx.Client, worked: str, kind: str) -> None:
    path = f"/api/sessions/{worked}/{kind}"
    whole = api.get(path, params={"limit": 500}).json()["items"]
    assert follow(api, path, 1) == whole == follow(api, path, 3)
    if kind == "versions":
        assert len(whole) >= 3 and sum(v["current"] for v in whole) == 1
    if kind == "events":
        assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    if kind == "messages":
        assert any(m["text"] == "age over 120 is impossible" for m in whole)


def test_events_after_a_seq_are_the_rest(api: httpx.Client, worked: str) -> None:
    path = f"/api/sessions/{worked}/events"
    whole = api.get(path, params={"limit": 500}).json()["items"]
    middle = whole[len(whole) // 2]["seq"]
    rest = follow(api, path, 4, after=middle)
    assert rest == [e for e in whole if e["seq"] > middle]
    beyond = api.get(path, params={"after": whole[-1]["seq"]}).json()
    assert beyond == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ({"cursor": encode_cursor(3) + "!"}, ["query", "cursor"]),
        ({"cursor": "p1.-1"}, ["query", "cursor"]),
        ({"cursor": "p1.\u0663"}, ["query", "cursor"]),  # an Arabic-Indic 3: a digit to Python, not to the pattern
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 501}, ["query", "limit"]),
        ({"after": 18061810659211259904}, ["query", "after"]),  # beyond a 64-bit integer: a 422, not a 500
    ],
)
def test_a_bad_cursor_or_limit_is_a_422_naming_it(api: httpx.Client, params: dict[str, Any], where: list[str]) -> None:
    response = api.get("/api/sessions/0123456789abcdef/events" if "after" in params else "/api/sessions", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["loc"] == where and where[-1] in body["detail"]


def test_another_owners_list_is_a_404(api: httpx.Client) -> None:
    assert api.get("/api/sessions/0123456789abcdef/events").status_code == 404


@given(st.integers(0, 40), st.integers(1, 12))
def test_following_cursors_reads_each_item_once(n: int, limit: int) -> None:
    items = list(range(n))
    seen: list[int] = []
    window = Window(0, limit)
    while True:
        page = window.page(Numbers, lambda offset, count: items[offset : offset + count])
        seen += page.items
        if page.next_cursor is None:
            break
        window = Window(decode_cursor(page.next_cursor), limit)
    assert seen == items


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_cursor_of_the_documented_form_is_a_position(cursor: str) -> None:
    position = decode_cursor(cursor)
    assert position >= 0 and decode_cursor(encode_cursor(position)) == position
    assert re.fullmatch(CURSOR_PATTERN, encode_cursor(position))
