"""The parts of webhooks that need no server: the allow-list matcher, signatures, retry verdicts, the
COPILOT_WEBHOOK_* settings, and the claim that keeps two dispatchers on one store from sending one attempt."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from copilot.settings import Settings, SettingsError, load_settings
from copilot.storage.store import DeliveryRow, EventRow, SessionRow, Store, WebhookRow, now
from copilot.webhooks import verify_signature
from copilot.webhooks.dispatcher import BACKOFF_CAP_S, Dispatcher, backoff, verdict
from copilot.webhooks.outbox import Outbox, hook_event
from copilot.webhooks.signing import signature_header
from copilot.webhooks.urls import DEFAULT_PORTS, allowed, parse_allow_list

hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
)
segments = st.lists(st.from_regex(r"[A-Za-z0-9_~-]{1,8}", fullmatch=True), max_size=3)
ports = st.integers(min_value=1, max_value=65535)


@dataclass(frozen=True)
class Entry:
    scheme: str
    host: str
    port: int | None  # None: the scheme's default, not written
    path: str

    @property
    def text(self) -> str:
        return f"{self.scheme}://{self.host}{'' if self.port is None else f':{self.port}'}{self.path}"

    def url(self, more: list[str], netloc: str | None = None) -> str:
        """A URL under this prefix: ``more`` appended to its path, on a ``/`` boundary."""
        netloc = netloc or self.text.removeprefix(f"{self.scheme}://").removesuffix(self.path)
        return f"{self.scheme}://{netloc}{self.path.rstrip('/')}/{'/'.join(more)}"


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    """An allow-list entry."""
    path = "/" + "/".join(draw(segments))
    if path != "/" and draw(st.booleans()):
        path += "/"
    return Entry(draw(st.sampled_from(["http", "https"])), draw(hosts), draw(st.none() | ports), path)


@given(entries(), segments, st.booleans(), st.booleans(), st.sampled_from(["", "?a=1"]))
def test_a_path_appended_to_an_allowed_prefix_matches(
    entry: Entry, more: list[str], upper: bool, explicit_port: bool, query: str
) -> None:
    netloc = entry.host.upper() if upper else entry.host
    if entry.port is not None or explicit_port:  # the default port written out is the same port
        netloc += f":{entry.port or DEFAULT_PORTS[entry.scheme]}"
    url = entry.url(more, netloc) + query
    assert allowed(url, parse_allow_list(entry.text)), (entry.text, url)


@given(entries(), hosts, segments)
def test_a_url_on_another_host_never_matches(entry: Entry, other: str, more: list[str]) -> None:
    if other == entry.host:
        other = other + ".example"
    netloc = other + ("" if entry.port is None else f":{entry.port}")
    assert not allowed(entry.url(more, netloc), parse_allow_list(entry.text)), (entry.text, other)


@given(entries(), ports, segments)
def test_a_url_on_another_port_never_matches(entry: Entry, other: int, more: list[str]) -> None:
    if other == (entry.port or DEFAULT_PORTS[entry.scheme]):
        other = other % 65535 + 1
    url = entry.url(more, f"{entry.host}:{other}")
    assert not allowed(url, parse_allow_list(entry.text)), (entry.text, url)


ENTRY = "http://127.0.0.1:9000/copilot/"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000.evil.com/copilot/x",  # the port continues into a host name
        "http://127.0.0.1:90001/copilot/x",  # no such port
        "http://127.0.0.1:9000@evil.com/copilot/x",  # user info: the host is evil.com
        "http://user@127.0.0.1:9000/copilot/x",  # user info, even on the right host
        "https://127.0.0.1:9000/copilot/x",  # another scheme
        "http://127.0.0.1:9001/copilot/x",
        "http://127.0.0.1/copilot/x",  # port 80
        "http://localhost:9000/copilot/x",  # the same machine, by another name
        "http://127.0.0.1:9000/copilotx",  # not on a / boundary
        "http://127.0.0.1:9000/other/",
        "http://127.0.0.1:9000/copilot/../admin",
        "http://127.0.0.1:9000/copilot/%2e%2e/admin",
        "http://127.0.0.1:9000/copilot/..%2fadmin",
        "http://127.0.0.1:9000/copilot\\..\\admin",
        "http://127.0.0.1:9000/copilot/x#frag",
        "http://127.0.0.1:9000/copilot/ x",
        "ftp://127.0.0.1:9000/copilot/x",
        "//127.0.0.1:9000/copilot/x",
        "",
    ],
)
def test_look_alikes_do_not_match(url: str) -> None:
    assert not allowed(url, parse_allow_list(ENTRY))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000.evil.com/", "http://127.0.0.1:90001/", "http://127.0.0.1:9000@evil.com/"]
)
def test_an_entry_without_a_path_is_no_string_prefix(url: str) -> None:
    """Each of these starts with the entry's text, and goes elsewhere."""
    assert url.startswith("http://127.0.0.1:9000") and not allowed(url, parse_allow_list("http://127.0.0.1:9000"))
    assert allowed("http://127.0.0.1:9000/any/path", parse_allow_list("http://127.0.0.1:9000"))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/copilot/", "http://127.0.0.1:9000/copilot", "http://127.0.0.1:9000/copilot/a/b?c=d"],
)
def test_urls_under_the_prefix_match(url: str) -> None:
    assert allowed(url, parse_allow_list(f" {ENTRY} ,https://hooks.example.org/"))


def test_an_empty_allow_list_allows_nothing() -> None:
    assert parse_allow_list("") == parse_allow_list(" , ") == []
    assert not allowed("http://127.0.0.1:9000/copilot/", [])


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("COPILOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("hooks.example.org/copilot/", "not an http:// or https:// URL"),
        ("https://hooks.example.org:99999/", "its port is not a number"),
        ("https://me:pw@hooks.example.org/", "names a user"),
        ("https://hooks.example.org/copilot/?x=1", "has a ?query"),
        ("https://hooks.example.org/#x", "has a #fragment"),
    ],
)
def test_a_mistyped_allow_list_entry_stops_start_up(value: str, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_WEBHOOK_URLS", f"http://127.0.0.1:9000/,{value}")
    with pytest.raises(SettingsError, match="COPILOT_WEBHOOK_URLS=") as refused:
        load_settings()
    assert f"the entry {value!r}" in str(refused.value) and words in str(refused.value)


@pytest.mark.usefixtures("clean_environment")
def test_the_webhook_settings_have_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.webhook_urls, settings.webhook_attempts, settings.webhook_backoff_s) == ("", 6, 2.0)
    assert settings.webhook_timeout_s == 5.0 and settings.webhook_prefixes() == []
    monkeypatch.setenv("COPILOT_WEBHOOK_BACKOFF_S", "0")
    with pytest.raises(SettingsError, match="COPILOT_WEBHOOK_BACKOFF_S"):
        load_settings()


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_time() -> None:
    body, at = b'{"id":"d1","event":"done"}', int(time.time())
    header = signature_header("s3cret", body, at)
    assert verify_signature("s3cret", header, body)
    assert not verify_signature("other", header, body)
    assert not verify_signature("s3cret", header, body + b" ")
    assert not verify_signature("s3cret", header, body, now=at + 301)  # stale: a replay
    assert not verify_signature("s3cret", header, body, now=at - 301)  # from the future
    assert verify_signature("s3cret", header, body, tolerance_s=600, now=at + 301)
    assert not verify_signature("s3cret", header.replace(f"t={at}", f"t={at + 1}"), body)  # the time is signed too
    rotated = f"t={at},v1={'0' * 64},{header.split(',')[1]}"  # several signatures: one must match
    assert verify_signature("s3cret", rotated, body)
    for broken in ["", "t=,v1=", f"v1={header.split('v1=')[1]}", f"t=now,{header.split(',')[1]}", "garbage"]:
        assert not verify_signature("s3cret", broken, body), broken


@pytest.mark.parametrize(
    ("status", "attempt", "expected"),
    [(200, 1, "delivered"), (204, 6, "delivered"), (None, 1, "retry"), (500, 5, "retry"), (503, 6, "failed"),
     (408, 1, "retry"), (429, 1, "retry"), (400, 1, "failed"), (404, 1, "failed"), (302, 1, "failed"),
     (301, 1, "failed")],
)  # fmt: skip
def test_what_is_retried(status: int | None, attempt: int, expected: str) -> None:
    assert verdict(status, attempt, attempts=6) == expected


def test_the_back_off_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(30, 2.0) == BACKOFF_CAP_S


def new_store(folder: Path, sessions: dict[str, str], url: str | None = None) -> Store:
    """A migrated store holding ``sessions`` (id: owner): SQLite in ``folder``, or ``url``."""
    store = Store(url or f"sqlite:///{folder / 'copilot.db'}")
    store.migrate()
    with store.transaction() as db:
        for session_id, owner in sessions.items():
            db.add(SessionRow(id=session_id, owner=owner, state="planning", target="y", task="binary",
                              policy="mutating", source="x", source_format={}, id_columns=[], guidance={},
                              version="v0"))  # fmt: skip
    return store


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [("approval_requested", {}, "awaiting_approval"), ("step_finished", {}, "step_finished"),
     ("step_failed", {}, "step_failed"), ("session_state", {"state": "done"}, "done"),
     ("session_state", {"state": "failed"}, None), ("progress", {}, None), ("message", {}, None)],
)  # fmt: skip
def test_which_engine_events_are_webhook_events(kind: str, data: dict[str, str], expected: str | None) -> None:
    assert hook_event(kind, data) == expected


@pytest.mark.both_stores
def test_an_event_is_queued_for_the_active_subscriptions_that_ask_for_it(
    tmp_path: Path, database_url: str | None
) -> None:
    store = new_store(tmp_path, {"s1": "o", "s2": "o", "s3": "p"}, database_url)
    url = "http://127.0.0.1:9000/"
    with store.transaction() as db:
        db.add_all([
            WebhookRow(id="owner", owner="o", url=url, secret="k", events=["awaiting_approval", "done"]),
            WebhookRow(id="s1-done", owner="o", session_id="s1", url=url, secret="k", events=["done"]),
            WebhookRow(id="deleted", owner="o", url=url, secret="k", events=["done"], active=False),
            WebhookRow(id="other-owner", owner="p", url=url, secret="k", events=["awaiting_approval", "done"]),
        ])  # fmt: skip
    outbox = Outbox(store, Settings(data_dir=tmp_path, webhook_urls=url), "server-1")
    off = Outbox(store, Settings(data_dir=tmp_path), "server-1")
    emitted = [("s2", "approval_requested", {}), ("s1", "session_state", {"state": "done"}),
               ("s1", "step_finished", {}), ("s1", "progress", {})]  # fmt: skip
    with store.transaction() as db:
        for seq, (session_id, kind, data) in enumerate(emitted, start=1):
            row = EventRow(session_id=session_id, seq=seq, type=kind, at=now(), data=data)
            db.add(row)
            outbox.enqueue(db, db.get_one(SessionRow, session_id), row)
            off.enqueue(db, db.get_one(SessionRow, session_id), row)
    with store.transaction() as db:
        queued = {(d.subscription_id, d.session_id, d.event, d.seq) for d in db.scalars(select(DeliveryRow))}
        bodies = [d.body for d in db.scalars(select(DeliveryRow))]
    assert queued == {("owner", "s2", "awaiting_approval", 1), ("owner", "s1", "done", 2), ("s1-done", "s1", "done", 2)}
    assert all(set(b) == {"id", "event", "session_id", "seq", "at", "data"} for b in bodies)


@pytest.mark.both_stores
def test_one_attempt_is_claimed_by_one_dispatcher_until_its_claim_expires(
    tmp_path: Path, database_url: str | None
) -> None:
    store = new_store(tmp_path, {"s1": "o"}, database_url)
    settings = Settings(data_dir=tmp_path, webhook_urls="http://127.0.0.1:9000/")
    first, second = Dispatcher(store, settings, "server-1"), Dispatcher(store, settings, "server-2")
    with store.transaction() as db:
        db.add(WebhookRow(id="w1", owner="o", url="http://127.0.0.1:9000/", secret="k", events=["done"]))
        db.flush()
        db.add(DeliveryRow(id="d1", subscription_id="w1", session_id="s1", event="done", seq=1, body={},
                           status="pending", next_at=now()))  # fmt: skip
    at = now()
    assert first._claim("d1", at) and not second._claim("d1", at) and not first._claim("d1", at)
    later = at + timedelta(seconds=first.claim_s + 1)  # server-1 died mid-send: its claim has run out
    assert second._claim("d1", later) and not first._claim("d1", later)
    with store.transaction() as db:
        assert db.get_one(DeliveryRow, "d1").claimed_by == "server-2"


def test_a_delivery_whose_url_left_the_allow_list_is_refused_unsent(tmp_path: Path) -> None:
    store = new_store(tmp_path, {"s1": "o"})
    dispatcher = Dispatcher(store, Settings(data_dir=tmp_path, webhook_urls="http://127.0.0.1:9000/new/"), "server-1")
    with store.transaction() as db:  # subscribed while the server allowed http://127.0.0.1:9000/old/
        db.add(WebhookRow(id="w1", owner="o", url="http://127.0.0.1:9000/old/x", secret="k", events=["done"]))
        db.flush()
        db.add(DeliveryRow(id="d1", subscription_id="w1", session_id="s1", event="done", seq=1, body={},
                           status="pending", next_at=now()))  # fmt: skip
    dispatcher.dispatch()  # claims it and hands it to a sender; never started, so it has no HTTP client to send with
    dispatcher._senders.shutdown(wait=True)
    with store.transaction() as db:
        delivery = db.get_one(DeliveryRow, "d1")
        assert (delivery.status, delivery.attempts, delivery.claimed_by) == ("refused", [], None)
