"""Fixtures for the LLM path: the fake OpenAI-compatible server, and an engine pointed at it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.session.engine import Engine
from copilot.session.views import SessionView
from copilot.settings import Settings
from tests.llm.fake_openai import FakeOpenAI, Script

OWNER = "alice"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    monkeypatch.setenv("OPENAI_BASE_URL", server.start())
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    yield server
    server.stop()


@pytest.fixture
def script(fake: FakeOpenAI) -> Script:
    return fake.script


def llm_settings(tmp_path: Path, **overrides: object) -> Settings:
    values = {"data_dir": tmp_path / "data", "llm_model": "fake-model", "llm_timeout_s": 1.0,
              "llm_max_retries": 1} | overrides  # fmt: skip
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def llm_engine(tmp_path: Path, fake: FakeOpenAI) -> Iterator[Engine]:
    engine = Engine(llm_settings(tmp_path))
    engine.start()
    yield engine
    engine.close()


def wait_for(engine: Engine, session_id: str, states: set[str], timeout: float = 60) -> SessionView:
    """The session once it reaches one of ``states`` (planning with an LLM runs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = engine.get_session(session_id, OWNER)
        if view.state in states:
            return view
        time.sleep(0.05)
    raise AssertionError(f"session {session_id} stayed {view.state}")
