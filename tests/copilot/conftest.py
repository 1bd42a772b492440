"""Fixtures of the engine tests: an engine on the embedded defaults, in a data directory of its own.

Its store is ``database_url``: SQLite, or a fresh PostgreSQL database in a test marked ``both_stores``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.session.engine import Engine
from copilot.settings import Settings


@pytest.fixture
def engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    eng = Engine(Settings(data_dir=tmp_path / "data", database_url=database_url))
    eng.start()
    yield eng
    eng.close()
