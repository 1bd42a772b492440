"""What the engine shows of a caller's sessions: read-only views, each in a read transaction of its own.

Another owner's session looks like no session (:class:`NotFound`), so ids cannot be probed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from copilot.data.pipeline import PipelineSpec
from copilot.data.script import render_script
from copilot.errors import NotFound
from copilot.session import row_views as views
from copilot.session.views import EventView, MessageView, ProfileView, ReportView, SessionView, VersionView
from copilot.storage.store import EventRow, MessageRow, SessionRow, Store, VersionRow
from copilot.storage.versions import VersionStore
from tools.registry import Registry


class SessionReads:
    """The read side of :class:`copilot.session.engine.Engine`."""

    store: Store
    registry: Registry
    version_store: VersionStore

    def list_sessions(self, owner: str, offset: int = 0, limit: int | None = None) -> list[SessionView]:
        """The owner's sessions, oldest first (``limit`` of them from ``offset``)."""
        with self.store.transaction() as db:
            query = select(SessionRow).where(SessionRow.owner == owner).order_by(SessionRow.created_at, SessionRow.id)
            rows = db.scalars(query.offset(offset).limit(limit))
            return [views.session_view(db, s, self.registry) for s in rows]

    def get_session(self, session_id: str, owner: str) -> SessionView:
        with self.store.transaction() as db:
            return views.session_view(db, self._owned(db, session_id, owner), self.registry)

    def profile(self, session_id: str, owner: str) -> ProfileView:
        with self.store.transaction() as db:
            session = self._owned(db, session_id, owner)
            return ProfileView.model_validate(db.get_one(VersionRow, (session.id, session.version)).profile)

    def messages(self, session_id: str, owner: str, offset: int = 0, limit: int | None = None) -> list[MessageView]:
        with self.store.transaction() as db:
            session = self._owned(db, session_id, owner)
            query = select(MessageRow).where(MessageRow.session_id == session.id).order_by(MessageRow.id)
            return [views.message_view(m) for m in db.scalars(query.offset(offset).limit(limit))]

    def versions(self, session_id: str, owner: str, offset: int = 0, limit: int | None = None) -> list[VersionView]:
        with self.store.transaction() as db:
            return views.version_views(db, self._owned(db, session_id, owner), offset, limit)

    def version_file(self, session_id: str, version_id: str, owner: str) -> Path:
        with self.store.transaction() as db:
            session = self._owned(db, session_id, owner)
            row = db.get(VersionRow, (session.id, version_id))
            if row is None:
                raise NotFound(f"session {session_id} has no version {version_id!r}")
            return self.version_store.blob_path(row.blob)

    def pipeline(self, session_id: str, owner: str) -> PipelineSpec:
        with self.store.transaction() as db:
            return views.pipeline_spec(db, self._owned(db, session_id, owner), self.registry)

    def pipeline_script(self, session_id: str, owner: str) -> str:
        return render_script(self.pipeline(session_id, owner), self.registry)

    def report(self, session_id: str, owner: str) -> ReportView:
        with self.store.transaction() as db:
            return views.report(db, self._owned(db, session_id, owner), self.registry)

    def events_after(self, session_id: str, owner: str, after: int, limit: int | None = None) -> list[EventView]:
        """The session's events with a sequence number above ``after``, in order (at most ``limit``)."""
        with self.store.transaction() as db:
            session = self._owned(db, session_id, owner)
            query = select(EventRow).where(EventRow.session_id == session.id, EventRow.seq > after)
            return [views.event_view(e) for e in db.scalars(query.order_by(EventRow.seq).limit(limit))]

    def _owned(self, db: Session, session_id: str, owner: str) -> SessionRow:
        session = db.get(SessionRow, session_id) if len(session_id) <= 32 else None
        if session is None or session.owner != owner:
            raise NotFound(f"no session {session_id!r}")
        return session
