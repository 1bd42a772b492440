"""The tool registry: the built-ins plus every ``copilot.tools`` entry point.

A plugin is any installed distribution that declares, in its packaging::

    [project.entry-points."copilot.tools"]
    my_tool = "my_package.module:MyTool"

A plugin that fails to import, is not a :class:`~tools.base.Tool` subclass, or
takes a name already taken is skipped and reported in ``Registry.errors``;
it never breaks the registry.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points

from tools.base import Tool
from tools.builtin import BUILTIN_TOOLS

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "copilot.tools"


class UnknownToolError(KeyError):
    """A tool name that the registry does not hold."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"no tool named {self.name!r}; known tools: {', '.join(self.known)}"


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be registered, and why."""

    entry_point: str
    source: str
    message: str


@dataclass
class Registry:
    tools: dict[str, type[Tool]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)  # tool name -> distribution
    errors: list[PluginError] = field(default_factory=list)

    def get(self, name: str) -> type[Tool]:
        try:
            return self.tools[name]
        except KeyError:
            raise UnknownToolError(name, sorted(self.tools)) from None

    def names(self) -> list[str]:
        return list(self.tools)

    def add(self, tool: object, source: str, entry_point: str) -> None:
        """Register ``tool`` or record why it cannot be."""
        if not (isinstance(tool, type) and issubclass(tool, Tool)):
            self._reject(entry_point, source, f"{tool!r} is not a subclass of tools.base.Tool")
        elif tool.name in self.tools:
            owner = self.plugins.get(tool.name, "the built-ins")
            self._reject(entry_point, source, f"tool name {tool.name!r} is already taken by {owner}")
        else:
            self.tools[tool.name] = tool
            if source != "builtin":
                self.plugins[tool.name] = source

    def _reject(self, entry_point: str, source: str, message: str) -> None:
        log.warning("plugin %s from %s skipped: %s", entry_point, source, message)
        self.errors.append(PluginError(entry_point, source, message))


def load_object(spec: str) -> object:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_registry(include_plugins: bool = True) -> Registry:
    """Load the built-ins (a failure there is our bug and raises) and the plugins."""
    registry = Registry()
    for spec in BUILTIN_TOOLS:
        registry.add(load_object(spec), "builtin", spec)
    if include_plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            source = ep.dist.name if ep.dist else "unknown distribution"
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not break the registry
                registry._reject(f"{ep.name} = {ep.value}", source, f"{type(exc).__name__}: {exc}")
                continue
            registry.add(loaded, source, f"{ep.name} = {ep.value}")
    return registry


def find_tool(name: str, extra: tuple[str, ...] = ()) -> type[Tool]:
    """Load only what it takes to find ``name``: built-ins and ``extra`` first, plugins if need be.

    The sandbox child uses this, so a call to a built-in never imports plugin code."""
    registry = build_registry(include_plugins=False)
    for spec in extra:
        registry.add(load_object(spec), "extra", spec)
    if name in registry.tools:
        return registry.tools[name]
    return build_registry().get(name)


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The process-wide registry (built once)."""
    return build_registry()
