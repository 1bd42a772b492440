"""The FastAPI application: routers, error handlers, the upload cap, and the engine's life cycle."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from copilot.api.contract import install_contract, operation_id
from copilot.api.errors import install_error_handlers
from copilot.api.limits import UploadSizeLimit
from copilot.api.logs import redact_server_logs
from copilot.api.routes import (
    demos,
    health,
    llm_requests,
    messages,
    rules,
    sessions,
    steps,
    tools,
    versions,
    webhooks,
    ws,
)
from copilot.session.engine import Engine
from copilot.settings import Settings

STALE_SECONDS = 24 * 3600
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
API_PATHS = frozenset({"/api", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
DESCRIPTION = """A human-guided, data-centric co-pilot: upload a table, follow the plan, approve each change.

With `COPILOT_TOKENS` set, every call except `/healthz` and `/readyz` needs `Authorization: Bearer <token>`
(the WebSocket also takes `?token=`), and each token sees only its own sessions."""


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The service over ``engine`` (by default a new one on ``settings``); the app starts and closes it."""
    engine = engine or Engine(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for folder in ("uploads", "downloads"):
            _sweep(settings.data_dir / folder)
        engine.start()
        _freeze_startup_heap()
        try:
            yield
        finally:
            await run_in_threadpool(engine.close)

    app = FastAPI(title="datacopilot", version=version("datacopilot"), description=DESCRIPTION, lifespan=lifespan,
                  generate_unique_id_function=operation_id)  # fmt: skip
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = settings.token_list()
    redact_server_logs()
    install_error_handlers(app)
    install_contract(app, tokens=bool(app.state.tokens))
    app.add_middleware(UploadSizeLimit, path=sessions.router.prefix, max_mb=settings.max_upload_mb)
    if not app.state.tokens:  # loopback only: refuse other Host names, so DNS rebinding cannot reach it
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS))
    for module in (health, sessions, messages, steps, rules, versions, llm_requests, webhooks, tools, demos, ws):
        app.include_router(module.router)
    frontend = frontend_dir()
    if frontend.is_dir():
        app.router.routes.append(FrontendMount("/", StaticFiles(directory=frontend, html=True), name="frontend"))
    return app


class FrontendMount(Mount):
    """The chat page's files at ``/``, which never answer for a path of the API: a wrong method there is the
    API's 405 (with its ``Allow``), and an unknown API path the API's 404, not the file server's."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path.startswith("/api/") or path in API_PATHS:
            return Match.NONE, {}
        return super().matches(scope)


def frontend_dir() -> Path:
    """The chat page's static files: ``COPILOT_FRONTEND_DIR``, else ``frontend/`` of the repository."""
    return Path(os.environ.get("COPILOT_FRONTEND_DIR") or Path(__file__).resolve().parents[2] / "frontend")


def _freeze_startup_heap() -> None:
    """Keep what start-up made (pandas, scikit-learn, pydantic models: millions of objects)
    out of the cyclic garbage collector's reach. Otherwise every full collection walks all of
    it and stops the event loop and every step thread for a few hundred milliseconds."""
    gc.collect()
    gc.freeze()


def _sweep(folder: Path) -> None:
    """Remove temporary uploads and downloads that a server which died left behind."""
    cutoff = time.time() - STALE_SECONDS
    for path in folder.glob("*"):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
