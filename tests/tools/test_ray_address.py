"""The ray executor's address is checked before Ray is asked: a bad one fails at once, saying what to give."""

from __future__ import annotations

import time

import pytest

from tests.ray_cluster import free_port
from tools.executor import ExecutorUnavailable
from tools.ray_executor import check_address


@pytest.mark.parametrize(
    ("address", "words"),
    [("ray://head:10001", "Ray Client address, which cannot stream"), ("head", "is not HOST:PORT"),
     ("head:port", "is not HOST:PORT"), ("head:6379/db", "is not HOST:PORT"), ("", "is not HOST:PORT")],
)  # fmt: skip
def test_an_address_that_is_no_head_is_refused(address: str, words: str) -> None:
    with pytest.raises(ExecutorUnavailable, match=words):
        check_address(address)


def test_an_address_where_nothing_listens_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(ExecutorUnavailable, match="nothing answers at"):
        check_address(f"127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 5


def test_auto_is_left_to_ray() -> None:
    check_address("auto")
