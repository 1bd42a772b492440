"""Liveness and readiness probes; no token needed."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from copilot.api.deps import EngineDep
from copilot.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> Health:
    """The process answers."""
    return Health()


@router.get("/readyz", responses={503: {"description": "The store is not reachable."}})
def readyz(engine: EngineDep) -> Readiness:
    """The store answers; says which isolation layers the sandbox has and how many tools are registered."""
    try:
        engine.store.ping()
    except Exception:
        log.exception("readiness check: the store is not reachable")
        raise HTTPException(503, "the store is not reachable; see the server log") from None
    report = engine.isolation
    layers = {k: v for k, v in report.items() if k not in {"describe", "kernel"}}
    return Readiness(isolation=report["describe"], kernel_isolation=report["kernel"], layers=layers,
                     tools=len(engine.registry.tools))  # fmt: skip
