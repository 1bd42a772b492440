"""Fixtures of the engine tests: an engine on the embedded defaults, in a data directory of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.engine import Engine
from copilot.settings import Settings


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(Settings(data_dir=tmp_path / "data"))
    eng.start()
    yield eng
    eng.close()
