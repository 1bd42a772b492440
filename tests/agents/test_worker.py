"""The worker refuses calls that fail the tool's schema or name columns the table lacks."""

from __future__ import annotations

import pytest

from agents.worker import ToolCallError, referenced_columns, validate_call
from tools.registry import build_registry

REGISTRY = build_registry(include_plugins=False)


def test_columns_are_found_wherever_the_tools_name_them() -> None:
    params = {"columns": ["a", "b"], "ranges": {"c": [0, 1]},
              "conditions": [{"column": "d", "op": "isna", "value": None}], "method": "auto"}  # fmt: skip
    assert sorted(referenced_columns(params)) == ["a", "b", "c", "d"]


def test_valid_call_is_normalised_with_defaults() -> None:
    call = validate_call(REGISTRY, "drop_columns", {"columns": ["a"]}, ["a", "y"])
    assert call.params["columns"] == ["a"] and "max_missing_pct" in call.params


@pytest.mark.parametrize(
    ("tool", "params", "words"),
    [
        ("imputer", {}, "no tool named 'imputer'"),
        ("impute", {"method": "magic"}, "method"),
        ("impute", {"colour": "red"}, "colour"),
        ("drop_columns", {"columns": ["ghost"]}, "column(s) ['ghost'] that the table does not have"),
        ("drop_rows", {"conditions": [{"column": "ghost", "op": "isna"}]}, "['ghost']"),
    ],
)
def test_bad_calls_name_the_problem(tool: str, params: dict, words: str) -> None:
    with pytest.raises(ToolCallError) as info:
        validate_call(REGISTRY, tool, params, ["a", "y"])
    assert words in str(info.value)
