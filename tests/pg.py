"""A private PostgreSQL for the store's tests: one cluster per test run, one fresh database per test.

The cluster is started from the server binaries on this machine (Debian's ``/usr/lib/postgresql/*/bin``, or
``initdb`` on PATH) in a temporary folder, listens on a Unix socket only, and is stopped when the run ends.
Run as root (as in CI), it runs as the ``postgres`` user, which owns its folders. Without the binaries the
PostgreSQL half of the store's tests fails in CI (``CI=true``) and is skipped elsewhere, saying why.

A test runs on both stores when it is marked ``both_stores`` and asks for ``database_url`` (directly or
through a fixture): ``None`` for the default SQLite file, else the URL of a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

STORES = ("sqlite", "postgresql")
USER = "postgres"  # the database superuser initdb makes, and the system user the server runs as under root


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest Debian version, else the one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Cluster:
    """A running PostgreSQL on ``socket_dir``/``port`` that trusts local connections as ``postgres``."""

    bin: Path
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.socket_dir}&port={self.port}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=USER, dbname=database,
                               autocommit=True)  # fmt: skip

    def start(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:  # the server refuses to run as root
            shutil.chown(self.folder, USER)
            shutil.chown(self.socket_dir, USER)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses='' -c fsync=off " \
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex}"
        with self.connect() as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Connections a test left open (a killed server's) are ended first."""
        with self.connect() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(self, tool: str, *args: str) -> None:
        as_user = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            log = self.folder / "server.log"
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}"
                               f"{log.read_text(errors='replace')[-3000:] if log.exists() else ''}")  # fmt: skip


def unavailable(reason: str) -> None:
    """CI must run the PostgreSQL tests, so there a missing server fails them; elsewhere they are skipped."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason} (install PostgreSQL's server, e.g. apt-get install postgresql)")


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Cluster]:
    """The run's private cluster, started by the first test that needs it."""
    folder = binaries()
    if folder is None:
        unavailable("no initdb in /usr/lib/postgresql/*/bin or on PATH")
    assert folder is not None
    cluster = Cluster(folder, Path(tempfile.mkdtemp(prefix="copilot-pg-")), port=5432 + os.getpid() % 1000)
    try:
        cluster.start()
        yield cluster
        cluster.stop()
    finally:
        shutil.rmtree(cluster.folder, ignore_errors=True)


def _database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    cluster: Cluster = request.getfixturevalue("postgresql")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The store of one test: ``None`` (SQLite in its data directory) unless parametrised to PostgreSQL."""
    yield from _database(request)


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The same, for a module's own server (one database for all of the module's tests)."""
    yield from _database(request)


def parametrise_stores(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests``: a test marked ``both_stores`` runs once on SQLite and once on PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_stores") is None:
        return
    for name, scope in (("database_url", "function"), ("module_database_url", "module")):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, STORES, indirect=True, scope=scope)
            return
    raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked both_stores but uses no database_url")
