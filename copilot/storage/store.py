"""The store: sessions, steps, approvals, events, messages and versions in SQL (SQLAlchemy 2).

SQLite in the data directory by default, any SQLAlchemy URL through
``COPILOT_DATABASE_URL``. The schema is created and upgraded by the Alembic
migrations in ``copilot/storage/migrations`` when the engine starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
)  # fmt: skip
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x636F70696C6F74  # the advisory lock held while the schema is upgraded ("copilot")


def now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Times stored in UTC and read back as aware datetimes (SQLite forgets the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON, list[str]: JSON, datetime: UTCDateTime, datetime | None: UTCDateTime,
    }  # fmt: skip


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(String(32))
    goal: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[dict[str, Any]] = mapped_column(JSON)
    id_columns: Mapped[list[str]] = mapped_column(JSON)
    guidance: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    last_seq: Mapped[int] = mapped_column(default=0)
    agents: Mapped[str] = mapped_column(String(128), default="rule-based")  # who planned the last proposal
    llm_usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    llm_share: Mapped[str | None] = mapped_column(String(16), default=None)  # what its LLM sees; None: aggregates
    #: Rules an LLM read from the chat, waiting for the person to accept them (``agents.rules.RuleSuggestion``).
    rule_suggestion: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: The engine advancing it while it is planned or run, and its last sign of life (``copilot.session.heartbeat``).
    runner: Mapped[str | None] = mapped_column(String(128), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The share of rows held out to score on (``tools.holdout``), fixed when the session starts; None: none.
    holdout: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class StepRow(Base):
    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    position: Mapped[int]
    key: Mapped[str] = mapped_column(String(128))
    tool: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    rationale: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    #: Set when the step reaches the gate: a fresh random id, never reused, that an approval must name.
    proposal: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    interrupted: Mapped[bool] = mapped_column(default=False)
    version_before: Mapped[str | None] = mapped_column(String(32), default=None)
    version_after: Mapped[str | None] = mapped_column(String(32), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The engine that runs it, and that engine's last sign of life while it runs (``copilot.session.heartbeat``).
    runner: Mapped[str | None] = mapped_column(String(128), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    #: How many times its tool ran in the sandbox (previews included): an approved preview adds none.
    runs: Mapped[int] = mapped_column(default=0)


class PreviewRow(Base):
    """What a step at the gate would change, computed on ``base_version`` with ``params`` before anyone is
    asked (``copilot.data.preview``). Its table is stored as ``version``/``blob`` but is no version of the session
    until the person approves the ``proposal`` it was shown with; then exactly that version is committed."""

    __tablename__ = "previews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id"), index=True)
    proposal: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    status: Mapped[str] = mapped_column(String(16))  # ready, committed or discarded
    base_version: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[str | None] = mapped_column(String(32), default=None)  # None: the step left the table as it was
    blob: Mapped[str | None] = mapped_column(String(64), default=None)
    n_rows: Mapped[int | None] = mapped_column(default=None)
    n_columns: Mapped[int | None] = mapped_column(default=None)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # the step's result, once committed
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # what the person is shown
    created_at: Mapped[datetime] = mapped_column(default=now)


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    proposal: Mapped[str | None] = mapped_column(String(32), default=None)  # the proposal it answered
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    owner: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=now)


class EventRow(Base):
    __tablename__ = "events"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=now)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now)


class LLMRequestRow(Base):
    """A request exactly as it was sent to an LLM endpoint, kept with its session for its owner to read."""

    __tablename__ = "llm_requests"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # plan, call or reply
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=now)


class VersionRow(Base):
    __tablename__ = "versions"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    blob: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(32), default=None)
    step_id: Mapped[int | None] = mapped_column(default=None)
    tool: Mapped[str | None] = mapped_column(String(64), default=None)
    n_rows: Mapped[int]
    n_columns: Mapped[int]
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)


class IdempotencyRow(Base):
    """The answer to a request sent with an ``Idempotency-Key``: a retry of it gets this answer back."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the operation and its request
    status: Mapped[int | None] = mapped_column(default=None)  # None while the first request runs
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)


class WebhookRow(Base):
    """A subscription: POST the ``events`` of one session, or (``session_id`` None) of every session of
    ``owner``, to ``url``, signed with ``secret``. A deleted one stays, inactive, so its log keeps its name."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id"), default=None, index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)
    active: Mapped[bool] = mapped_column(default=True)


class DeliveryRow(Base):
    """One event to POST to one subscription (``copilot.webhooks``): written in the transaction of the event,
    sent by whichever server claims it first; ``claimed_until`` lets another retry it if that server dies."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"))
    event: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int]
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed, refused or cancelled
    #: One entry per POST: ``{"at", "status_code", "error", "duration_ms"}``.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_at: Mapped[datetime | None] = mapped_column(default=None)  # when a pending one is due
    claimed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Store:
    """Connections and transactions; ``migrate()`` brings the schema up to date."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: SqlEngine = _connect(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Whether several servers may share this store: PostgreSQL's row locks and LISTEN/NOTIFY make the gate
        #: atomic and carry events across them. A SQLite file serves one process (one server, or a CLI beside it).
        self.shared = self.engine.dialect.name == "postgresql"

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            if self.shared:  # servers starting together: one migrates, the others wait and find it done
                connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any error."""
        with self._sessions() as db, db.begin():
            yield db

    @staticmethod
    def lock_session(db: Session, session_id: str) -> SessionRow | None:
        """Read the session under its row lock (``SELECT … FOR NO KEY UPDATE`` on PostgreSQL), held until the
        transaction ends: a write takes it before it reads what it checks, so writes to one session, from any
        server, run one after another. Lock order: the session first, then its steps (as the heartbeat does).
        SQLite has no row locks; there a single writer at a time holds the whole database."""
        if len(session_id) > 32:  # no such id; the caller says NotFound
            return None
        return db.get(SessionRow, session_id, with_for_update={"key_share": True}, populate_existing=True)

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return True


def _connect(url: str) -> SqlEngine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
