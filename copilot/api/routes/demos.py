"""Demo datasets one click away: list them, and start a session on one."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from copilot.api.deps import EngineDep, OwnerDep, SettingsDep
from copilot.api.paging import Page, WindowDep
from copilot.data.demo_data import TARGET, demo_data
from copilot.errors import NotFound
from copilot.session.engine import Engine
from copilot.session.views import SessionView

router = APIRouter(prefix="/api/demos", tags=["demos"])


class DemoView(BaseModel):
    name: str
    title: str
    target: str


DEMOS = {
    "breast_cancer": DemoView(
        name="breast_cancer", target=TARGET,
        title="Breast cancer (scikit-learn) with planted faults: flipped labels, unit slips, gaps, '?' codes, copies",
    ),
}  # fmt: skip
GOAL = "Predict `diagnosis`; clean the planted faults."


class DemosPage(Page[DemoView]):
    """The demo datasets a session can start on."""


@router.get("")
def list_demos(_: OwnerDep, window: WindowDep) -> DemosPage:
    return window.page(DemosPage, lambda offset, limit: list(DEMOS.values())[offset : offset + limit])


@router.post("/{name}/sessions", status_code=status.HTTP_201_CREATED)
async def create_demo_session(name: str, engine: EngineDep, settings: SettingsDep, owner: OwnerDep) -> SessionView:
    """Start a session on the demo dataset ``name`` (its faulty training part, as a CSV)."""
    if name not in DEMOS:
        raise NotFound(f"no demo dataset named {name!r}; see GET /api/demos")
    return await run_in_threadpool(_create, engine, settings.data_dir / "uploads", name, owner)


def _create(engine: Engine, folder: Path, name: str, owner: str) -> SessionView:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix="demo-", suffix=".csv", delete=False) as handle:
        path = Path(handle.name)
    try:
        demo_data(seed=0).dirty.to_csv(path, index=False)
        return engine.create_session(path, f"{name}.csv", DEMOS[name].target, owner, goal=GOAL)
    finally:
        path.unlink(missing_ok=True)
