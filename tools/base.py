"""The contract every tool, built-in or plugin, fulfils.

To write a tool, subclass :class:`Tool` and set five class attributes and one
method::

    class MyTool(Tool):
        name = "my_tool"                 # snake_case, unique in the registry
        description = "What it does, for humans and the LLM."
        category = "anomalies"           # a row of the taxonomy (Category)
        mutates = True                   # False for read-only diagnostics
        Params = MyParams                # a ToolParams subclass, every field defaulted

        def run(self, table, params, ctx) -> ToolResult: ...

A column-level mutating tool (one whose transform applies to new data, such
as imputation) also sets ``reapply`` to a *self-contained* module-level function
``reapply(table, fitted) -> table``: it imports what it needs inside its body
and uses no other name of its module, because its source is copied verbatim
into the standalone ``pipeline.py``. A row-level tool that only makes sense on
training data (dropping outliers, fixing labels) sets ``train_only = True``
instead; its effect is recorded but never re-applied to new data. Such a tool
never sees the rows a session holds out for scoring, unless it judges rows
without learning from the labels (``sees_held_out = True``); then it may
repair their cells but never drop one or change its target.

Mistakes fail when the class is defined, not in the middle of a run.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

Category = Literal["schema", "missingness", "label_quality", "anomalies", "leakage", "readiness"]
CATEGORIES: tuple[str, ...] = get_args(Category)
SemanticType = Literal["numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant", "personal"]
Task = Literal["classification", "regression"]
ReapplyFn = Callable[[pd.DataFrame, dict[str, Any]], pd.DataFrame]

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class ToolParams(BaseModel):
    """Base for a tool's parameters: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ToolCancelled(Exception):
    """Raised by :meth:`ToolContext.check_cancelled` when the caller gave up."""


@dataclass
class ToolContext:
    """What a tool knows about the run besides the table and its parameters."""

    target: str | None = None
    id_columns: list[str] = field(default_factory=list)
    column_types: dict[str, str] = field(default_factory=dict)
    task: Task | None = None
    seed: int = 0
    #: The share of the rows set aside to score on (:mod:`tools.holdout`); 0: none.
    holdout: float = 0.0
    #: Which rows a row-level tool may change: the ``training`` rows (all but the held-out ones), or, once the
    #: gain is measured, the ``held_out`` ones (the same cleaning applied to them; :mod:`tools.holdout`).
    holdout_scope: Literal["training", "held_out"] = "training"
    progress: Callable[[float, str], None] = lambda fraction, message: None
    cancelled: Callable[[], bool] = lambda: False

    def feature_columns(self, table: pd.DataFrame) -> list[str]:
        """Columns a model may learn from: all but the target and identifiers."""
        skip = set(self.id_columns) | ({self.target} if self.target else set())
        return [c for c in table.columns if c not in skip]

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise ToolCancelled("the run was cancelled")


@dataclass(frozen=True)
class Chart:
    """A small chart as data; the frontend and report decide how to draw it."""

    kind: Literal["bar", "histogram", "scatter"]
    title: str
    labels: list[str]
    values: list[float]
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class ToolResult:
    """What one tool call produced.

    ``table`` is the new table for a mutating tool (``None`` for diagnostics).
    ``findings`` and ``metrics`` must be JSON-serialisable; ``fitted`` is the
    JSON state that ``reapply`` needs to repeat the transform on new data.
    """

    summary: str
    table: pd.DataFrame | None = None
    findings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)
    fitted: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.summary.strip():
            raise ValueError("ToolResult.summary must say what happened")


class Tool(ABC):
    """Base class of every tool; see the module docstring for how to write one."""

    name: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[Category]
    mutates: ClassVar[bool]
    Params: ClassVar[type[ToolParams]]
    train_only: ClassVar[bool] = False
    #: A train-only tool that judges rows without learning from the labels (outliers, duplicates) sees the rows
    #: held out for scoring and may repair their cells; it still never drops one or changes its target (what it
    #: tries is undone). Every other train-only tool never sees them (:mod:`tools.holdout`).
    sees_held_out: ClassVar[bool] = False
    reapply: ClassVar[ReapplyFn | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_tool_class(cls)

    @abstractmethod
    def run(self, table: pd.DataFrame, params: Any, ctx: ToolContext) -> ToolResult:
        """Run on ``table`` (never modified in place) and return the result."""

    @classmethod
    def parse_params(cls, raw: dict[str, Any] | None) -> ToolParams:
        """Validate raw parameters against ``Params``; raises ``ValidationError``."""
        return cls.Params.model_validate(raw or {})

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The JSON Schema of ``Params``: the LLM function schema and the UI form."""
        return cls.Params.model_json_schema()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "description": cls.description,
            "category": cls.category,
            "mutates": cls.mutates,
            "train_only": cls.train_only,
            "params_schema": cls.schema(),
        }


def _check_tool_class(cls: type[Tool]) -> None:
    """Fail at class definition when the contract is not met."""
    missing = [a for a in ("name", "description", "category", "mutates", "Params") if a not in _attrs(cls)]
    if missing:
        raise TypeError(f"tool class {cls.__name__} must set {', '.join(missing)}")
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        raise TypeError(f"tool {cls.__name__}: name {cls.name!r} must be snake_case, 2-48 characters")
    if cls.category not in CATEGORIES:
        raise TypeError(f"tool {cls.name}: category {cls.category!r} is not one of {CATEGORIES}")
    if not isinstance(cls.Params, type) or not issubclass(cls.Params, ToolParams):
        raise TypeError(f"tool {cls.name}: Params must subclass tools.base.ToolParams")
    if not isinstance(cls.description, str) or len(cls.description.strip()) < 10:
        raise TypeError(f"tool {cls.name}: description must say what the tool does")
    try:
        cls.Params()
    except ValidationError as exc:
        raise TypeError(f"tool {cls.name}: every parameter needs a default ({exc.errors()[0]['loc']})") from None
    if cls.mutates and not cls.train_only and cls.reapply is None:
        raise TypeError(f"tool {cls.name}: a column-level mutating tool must set reapply (or train_only)")


def _attrs(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is Tool:
            break
        names.update(vars(klass))
    return names


def infer_task(target: pd.Series) -> Task:
    """Classification for labels (text, booleans, or at most 20 whole-number values), else regression."""
    values = target.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    whole = bool((values == values.round()).all()) if len(values) else True
    return "classification" if whole and values.nunique() <= 20 else "regression"
