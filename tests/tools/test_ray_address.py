"""The ray executor's address is checked before Ray is asked: a bad one fails at once, saying what to give."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

import pytest

from tests.ray_cluster import cluster_processes, free_port, running, start_head, stop_head
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


def test_stopping_a_test_cluster_leaves_other_clusters_running(ray_address: str) -> None:
    """The tests' cluster ends by its own processes only: ``ray stop`` would end every Ray cluster on the
    machine, a developer's own and another test run's among them."""
    folder = tempfile.mkdtemp(prefix="ray-")
    start_head(folder, free_port(), cpus=1)
    ours = cluster_processes(folder)
    assert ours
    stop_head(folder)
    assert not any(running(pid) for pid in ours)
    host, port = ray_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):  # the run's cluster still answers
        pass
    assert not Path(folder).exists()
