"""The tool registry: built-ins and plugins, each with the JSON schema of its parameters."""

from __future__ import annotations

from fastapi import APIRouter

from copilot.api.deps import EngineDep, OwnerDep
from copilot.api.schemas import PluginErrorView, ToolsView, ToolView

router = APIRouter(prefix="/api/tools", tags=["tools"])


@router.get("")
def list_tools(engine: EngineDep, _: OwnerDep) -> ToolsView:
    registry = engine.registry
    return ToolsView(
        tools=[ToolView.model_validate(tool.describe()) for tool in registry.tools.values()],
        plugin_errors=[PluginErrorView(**error.__dict__) for error in registry.errors],
    )
