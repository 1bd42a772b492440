"""coerce_types: give every column the type it really has, turning missing codes,
units and impossible values into honest missing cells.

What each type does to a column (every type first turns its sentinel codes into
missing; a code matches after trimming, in any case, and a numeric code also
matches by value, so ``-999`` matches ``-999.0``):

- **numeric**: the unit ("kg", "$", "%") is stripped from the start or end of
  each cell, thousands separators are dropped, and the rest is read as a number
  (float64; "12%" becomes 12). The decimal mark is the column's own: with
  ``decimal`` ``","`` (detected from cells such as ``3,5`` or ``1.234,56``) the
  point, a space or an apostrophe separates thousands and a comma the decimals;
  with ``"."`` it is the other way round. Values outside ``[min, max]`` become
  missing and are counted apart from cells that do not parse.
- **boolean**: yes/y/true/t/1 become 1.0 and no/n/false/f/0 become 0.0 (any
  case), stored as float64 so that imputers and models see a number; True/False
  and 0/1 columns are mapped the same way, so train and new data agree, and a
  ``yes`` typed into a column of 0s and 1s is a 1.
- **datetime**: text is parsed as dates (mixed formats allowed) into
  ``datetime64[us]``; time zones are converted to UTC. Expanding dates into
  features is left to later steps.
- **categorical**, **text**: values are kept (numbers stay numbers); text
  columns take the string dtype.

A cell that is present but cannot be converted becomes missing and is reported
with its row label: nothing is lost silently.

With no ``columns`` the schema of every column comes from
:func:`tools.feature_types.profile_table`: numbers stored as text become numeric,
detected codes become missing, units are stripped, yes/no columns become 1/0,
date text becomes dates. Detected codes are empty-cell markers (``?``, ``NA``,
``N/A``, ``-``) in any column, number codes (``-999``), and words such as
``unknown`` or ``not recorded`` only in a column of numbers. In a categorical or
text column such a word is an answer and stays a level: it becomes missing only
when the person lists it in that column's ``sentinels``. A column cast to
numeric, boolean or datetime by an entry in ``columns`` (without ``sentinels``)
also drops those words, since such a column cannot hold a level.

An entry in ``columns`` overrides that inference only in the fields it sets
(``{"age": {"min": 0, "max": 120}}`` keeps the detected type, codes and unit).
Identifier columns are never touched; the target keeps its values, except that
its sentinel codes (a ``?`` label) become missing.

``fitted`` is the full explicit schema that was applied, so ``reapply`` repeats
exactly the same casts on new data without inferring anything again.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.feature_types import profile_table

ColumnType = Literal["numeric", "categorical", "boolean", "datetime", "text"]
_EXAMPLES = 10
_MOSTLY_UNCONVERTIBLE = 0.5


class ColumnSchema(BaseModel):
    """How one column should be read; a field left null keeps what the profile found."""

    model_config = ConfigDict(extra="forbid")

    type: ColumnType | None = Field(
        None, description="Type to convert the column to; null keeps the type the profile detects."
    )
    sentinels: list[str] | None = Field(
        None,
        description="Cell values that mean 'missing', e.g. ['?', '-999', 'unknown'] (matched after "
        "trimming, in any case; numeric codes also by value). Null keeps the detected codes: markers such "
        "as '?' or 'NA' and number codes, but not answer words such as 'unknown' or 'refused' in a "
        "categorical column, which stay levels unless listed here; [] means none.",
    )
    unit: str | None = Field(
        None,
        description="Unit written in the cells to strip before reading numbers, e.g. 'kg' or '$' "
        "(numeric only). Null keeps the detected unit; '' means none.",
    )
    decimal: Literal[".", ","] | None = Field(
        None,
        description="Decimal mark written in the cells (numeric only): ',' reads '1.234,5' as 1234.5, '.' reads "
        "'1,234.5' so. Null keeps the detected mark.",
    )
    min: float | None = Field(None, description="Smallest valid value (numeric only); smaller values become missing.")
    max: float | None = Field(None, description="Largest valid value (numeric only); larger values become missing.")


class CoerceTypesParams(ToolParams):
    columns: dict[str, ColumnSchema] = Field(
        default_factory=dict,
        description="Per-column schema overrides, keyed by column name, e.g. "
        "{'age': {'type': 'numeric', 'min': 0, 'max': 120}}. Empty: infer every column's schema.",
    )
    infer: bool = Field(
        True,
        description="Also infer and apply the schema of the columns not listed in `columns`; "
        "false changes only the listed columns.",
    )


def reapply_coerce_types(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Apply the schema in ``fitted["columns"]`` to ``table`` (a copy is returned).

    Each entry: ``type`` (numeric, categorical, boolean, datetime, text, or null
    to keep the values), ``sentinels``, ``unit``, ``decimal``, ``min``, ``max`` and ``role``
    ("feature" or "target"; new data may come without its target column).
    Self-contained: its source is copied into the exported pipeline.
    """
    import re
    import warnings

    import numpy as np
    import pandas as pd

    def is_number(col: pd.Series) -> bool:
        return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)

    def drop_codes(col: pd.Series, sentinels: list[str]) -> pd.Series:
        codes = [str(c).strip().lower() for c in sentinels]
        values = pd.to_numeric(pd.Series(codes, dtype="str"), errors="coerce").dropna().tolist()
        if is_number(col):
            return col.mask(col.isin(values))
        keys = col.astype("str").str.strip().str.lower()
        is_code = keys.isin(codes)
        if values:
            is_code |= pd.to_numeric(keys, errors="coerce").isin(values)
        return col.mask(is_code) if is_code.any() else col

    def to_numbers(col: pd.Series, unit: str | None, decimal: str) -> pd.Series:
        if is_number(col):
            return col.astype("float64")
        if pd.api.types.is_timedelta64_dtype(col):
            return col.dt.total_seconds()
        text = col.astype("str").str.strip()
        if unit:
            text = text.str.replace(rf"(?i)^{re.escape(unit)}\s*|\s*{re.escape(unit)}$", "", regex=True)
        group = re.escape(("," if decimal == "." else ".") + " \u00a0\u202f'")
        if text.str.contains(rf"\d[{group}]\d", regex=True).any():
            text = text.str.replace(rf"(?<=\d)[{group}](?=\d{{3}}(?!\d))", "", regex=True).str.strip()
        if decimal == ",":
            text = text.str.replace(",", ".", regex=False).mask(text.str.contains(".", regex=False))
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        return numbers.where(np.isfinite(numbers))

    def to_booleans(col: pd.Series) -> pd.Series:
        words = {"yes": 1.0, "y": 1.0, "true": 1.0, "t": 1.0, "1": 1.0, "1.0": 1.0}
        words |= {"no": 0.0, "n": 0.0, "false": 0.0, "f": 0.0, "0": 0.0, "0.0": 0.0}
        keys = col.astype("str").str.strip().str.lower()
        numbers = pd.to_numeric(keys, errors="coerce")  # "1.00" is a 1 too
        return keys.map(words).fillna(numbers.where(numbers.isin([0.0, 1.0]))).astype("float64")

    def to_dates(col: pd.Series) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(col):
            return pd.to_datetime(col, utc=True).dt.tz_localize(None).astype("datetime64[us]")
        codes, uniques = pd.factorize(col.astype("str").str.strip())  # parse each distinct text once
        text = pd.Series(uniques, dtype="str")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
            other = parsed.isna().to_numpy()
            if other.any():
                parsed[other] = pd.to_datetime(text[other], format="mixed", errors="coerce", utc=True)
        values = parsed.dt.tz_localize(None).astype("datetime64[us]").to_numpy()
        dates = np.where(codes >= 0, values[codes], np.datetime64("NaT", "us"))
        return pd.Series(dates, index=col.index, name=col.name, dtype="datetime64[us]")

    def lost(name: str, before: pd.Series, gone: pd.Series, what: str) -> list[str]:
        if not gone.any():
            return []
        shown = ", ".join(repr(v) for v in before[gone].astype("str").unique()[:3])
        return [f"column {name!r}: {int(gone.sum())} cell(s) {what} and became missing, e.g. {shown}"]

    out = table.copy()
    notes = list(out.attrs.get("copilot_notes", []))
    for name, spec in fitted["columns"].items():
        if name not in out.columns:
            if spec.get("role") == "target":
                continue
            raise ValueError(f"column {name!r} is missing from the data; the pipeline expects it")
        col = drop_codes(out[name], spec.get("sentinels") or [])
        present, kind = col.notna(), spec.get("type")
        if kind == "numeric":
            col = to_numbers(col, spec.get("unit"), spec.get("decimal") or ".")
            notes += lost(name, out[name], present & col.isna(), "could not be read as numbers")
            low, high = spec.get("min"), spec.get("max")
            span = f"fell outside [{-np.inf if low is None else low:g}, {np.inf if high is None else high:g}]"
            ranged = col.mask(col < low) if low is not None else col
            ranged = ranged.mask(ranged > high) if high is not None else ranged
            notes += lost(name, out[name], col.notna() & ranged.isna(), span)
            col = ranged
        elif kind in ("boolean", "datetime"):
            col = to_booleans(col) if kind == "boolean" else to_dates(col)
            notes += lost(name, out[name], present & col.isna(), f"could not be read as {kind}")
        elif kind in ("categorical", "text") and pd.api.types.is_object_dtype(col):
            col = col.astype("str")
        out[name] = col
    out.attrs["copilot_notes"] = notes
    return out


def infer_schema(profile: dict[str, Any], target: str | None, id_columns: list[str]) -> dict[str, dict]:
    """The schema the profile implies: what to convert, which codes, which unit.

    Identifiers and constant columns are left out; the target only has its codes.
    """
    schema: dict[str, dict] = {}
    for name, col in profile["columns"].items():
        if col["type"] in ("identifier", "personal") or name in id_columns:
            continue
        if name == target:
            if col["sentinels"]:
                schema[name] = _spec(None, col["sentinels"], role="target")
            continue
        if col["type"] == "constant":
            continue
        kind = _cast_type(col)
        numeric = kind == "numeric"
        schema[name] = _spec(kind, col["sentinels"], col["unit"] if numeric else None,
                             col.get("decimal_mark", ".") if numeric else None)  # fmt: skip
    return schema


def _cast_type(profile: dict[str, Any]) -> str:
    """The type a feature column is cast to: numbers written as text are read as numbers, except in a
    yes/no column, where a typed ``yes`` is as good as a ``1``."""
    return "numeric" if profile["numeric_as_text"] and profile["type"] != "boolean" else profile["type"]


def _spec(
    kind: str | None,
    sentinels: list[str],
    unit: str | None = None,
    decimal: str | None = None,
    role: str = "feature",
) -> dict[str, Any]:
    spec = {"type": kind, "sentinels": list(sentinels), "unit": unit or None, "decimal": decimal}
    return spec | {"min": None, "max": None, "role": role}


def build_schema(
    table: pd.DataFrame, params: CoerceTypesParams, ctx: ToolContext, profile: dict[str, Any]
) -> dict[str, dict]:
    """The explicit schema to apply: the inferred one, overridden by ``params.columns``."""
    unknown = [c for c in params.columns if c not in set(map(str, table.columns))]
    if unknown:
        known = ", ".join(map(str, table.columns))
        raise ValueError(f"column(s) {unknown} in `columns` are not in the table; pick from: {known}")
    inferred = infer_schema(profile, ctx.target, ctx.id_columns) if params.infer else {}
    schema: dict[str, dict] = {}
    for col in map(str, table.columns):
        entry = params.columns.get(col)
        if entry is not None:
            schema[col] = _override(col, profile["columns"][col], inferred.get(col), entry, ctx)
        elif col in inferred:
            schema[col] = inferred[col]
    return schema


def _override(
    name: str, profile: dict[str, Any], inferred: dict | None, entry: ColumnSchema, ctx: ToolContext
) -> dict[str, Any]:
    """Merge one user entry into the inferred schema, refusing what makes no sense."""
    if name in ctx.id_columns or (profile["type"] == "identifier" and entry.type is None):
        raise ValueError(
            f"column {name!r} is an identifier, which coerce_types leaves alone; remove it from "
            "`columns` (or give it a type if it is not an identifier)"
        )
    if profile["type"] == "personal" and entry.type is None:
        raise ValueError(
            f"column {name!r} is personal data ({profile.get('personal', 'recognised')}), which coerce_types leaves "
            "alone; drop or pseudonymise it with personal_data (or give it a type if it is not personal data)"
        )
    role = "target" if name == ctx.target else "feature"
    if role == "target" and (entry.type, entry.unit, entry.min, entry.max) != (None, None, None, None):
        raise ValueError(
            f"column {name!r} is the target: coerce_types only turns its sentinel codes into missing; "
            "set only `sentinels` for it"
        )
    base = inferred or _spec(_castable(profile, role), profile["sentinels"], role=role)
    spec = base | {k: v for k, v in entry.model_dump().items() if v is not None}
    if entry.sentinels is None and spec["type"] in ("numeric", "boolean", "datetime"):
        spec["sentinels"] = [*spec["sentinels"], *profile.get("level_codes", {})]  # no level in such a column
    spec["unit"] = spec["unit"] or None
    if spec["type"] == "numeric" and not spec.get("decimal"):
        spec["decimal"] = profile.get("decimal_mark", ".")
    _check_numeric_only(name, spec, entry)
    return spec


def _castable(profile: dict[str, Any], role: str) -> str | None:
    if role == "target" or profile["type"] in ("identifier", "constant", "personal"):
        return None
    return _cast_type(profile)


def _check_numeric_only(name: str, spec: dict[str, Any], entry: ColumnSchema) -> None:
    if spec["type"] != "numeric":
        if entry.unit or entry.decimal or entry.min is not None or entry.max is not None:
            raise ValueError(
                f"column {name!r}: unit, decimal, min and max only apply to numeric columns, and it is "
                f"{spec['type'] or 'kept as it is'}; set type 'numeric' or drop them"
            )
        spec["unit"] = spec["decimal"] = None
    if spec["min"] is not None and spec["max"] is not None and spec["min"] > spec["max"]:
        raise ValueError(f"column {name!r}: min {spec['min']} is above max {spec['max']}; swap them")


def measure(table: pd.DataFrame, out: pd.DataFrame, schema: dict[str, dict]) -> list[dict[str, Any]]:
    """What the schema did to each column, measured by re-running the same transform.

    A pass with codes only tells which cells were sentinels; a pass without the
    ranges tells which cells parsed but fell outside them; the rest of the cells
    that were present and are now missing could not be converted.
    """
    cols = list(schema)
    codes_only = {c: s | {"type": None, "min": None, "max": None} for c, s in schema.items()}
    coded_out = reapply_coerce_types(table[cols], {"columns": codes_only})
    ranged = [c for c, s in schema.items() if s["min"] is not None or s["max"] is not None]
    unbounded = out[cols].copy()
    if ranged:
        open_ends = {c: schema[c] | {"min": None, "max": None} for c in ranged}
        unbounded[ranged] = reapply_coerce_types(table[ranged], {"columns": open_ends})[ranged]
    return [_column_report(c, schema[c], table[c], out[c], coded_out[c].isna(), unbounded[c].notna()) for c in cols]


def _column_report(
    name: str, spec: dict, before: pd.Series, after: pd.Series, coded_na: pd.Series, parsed: pd.Series
) -> dict[str, Any]:
    present = before.notna()
    coded = present & coded_na
    out_of_range = parsed & after.isna()
    unconvertible = present & ~coded & ~parsed
    return {
        "column": name,
        "role": spec["role"],
        "from_dtype": str(before.dtype),
        "to_dtype": str(after.dtype),
        "to_type": spec["type"] or "kept",
        "changed": not after.equals(before),
        "sentinels": spec["sentinels"],
        "sentinels_replaced": int(coded.sum()),
        "unit": spec["unit"],
        "unit_stripped": _unit_cells(before[present & ~coded], spec["unit"]),
        "min": spec["min"],
        "max": spec["max"],
        "out_of_range": int(out_of_range.sum()),
        "out_of_range_examples": _examples(before[out_of_range]),
        "unconvertible": int(unconvertible.sum()),
        "unconvertible_examples": _examples(before[unconvertible]),
    }


def _unit_cells(values: pd.Series, unit: str | None) -> int:
    """Cells written with ``unit`` before or after the number."""
    if not unit or pd.api.types.is_numeric_dtype(values):
        return 0
    keys = values.astype("str").str.strip().str.lower()
    return int((keys.str.startswith(unit.lower()) | keys.str.endswith(unit.lower())).sum())


def _examples(values: pd.Series) -> list[dict[str, Any]]:
    """The first few affected cells as ``{"row": index label, "value": the cell as written}``."""
    head = values.head(_EXAMPLES)
    return [{"row": _json_label(r), "value": str(v)} for r, v in zip(head.index.tolist(), head.tolist(), strict=True)]


def _json_label(label: Any) -> Any:
    return label if isinstance(label, (str, int, float, bool)) or label is None else str(label)


def _refuse_mostly_unconvertible(reports: list[dict[str, Any]], table: pd.DataFrame) -> None:
    """A cast that would wipe out most of a column is a wrong type, not dirty data."""
    for r in reports:
        others = int(table[r["column"]].notna().sum()) - r["sentinels_replaced"]
        if others and r["unconvertible"] > _MOSTLY_UNCONVERTIBLE * others:
            example = r["unconvertible_examples"][0]["value"]
            raise ValueError(
                f"column {r['column']!r}: {r['unconvertible']} of {others} values cannot be read as "
                f"{r['to_type']} (e.g. {example!r}); choose another type for it"
            )


def summarise(reports: list[dict[str, Any]], n_columns: int) -> str:
    changed = [r for r in reports if r["changed"]]
    if not changed:
        return f"All {n_columns} columns already had the types and codes of the schema; nothing changed."
    parts = [f"Converted {len(changed)} of {n_columns} columns: " + "; ".join(map(_phrase, changed)) + "."]
    lost = [r for r in changed if r["out_of_range"] or r["unconvertible"]]
    if lost:
        n_range = sum(r["out_of_range"] for r in lost)
        n_bad = sum(r["unconvertible"] for r in lost)
        examples = "; ".join(map(_loss_phrase, lost[:3]))
        parts.append(
            f"{_n(n_range, 'value')} outside the valid range and {_n(n_bad, 'cell')} that could not "
            f"be converted are now missing ({examples})."
        )
    return " ".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _phrase(r: dict[str, Any]) -> str:
    codes = f"{', '.join(map(repr, r['sentinels'][:3]))} code"
    if r["role"] == "target":
        return f"target {r['column']}: {_n(r['sentinels_replaced'], codes)} set missing, other labels unchanged"
    done = {"numeric": "to numbers", "boolean": "to 1/0", "datetime": "to dates"}
    if r["to_type"] in ("categorical", "text") and r["from_dtype"] != r["to_dtype"]:
        done[r["to_type"]] = "to strings"
    details = []
    if r["sentinels_replaced"]:
        details.append(f"{_n(r['sentinels_replaced'], codes)} set missing")
    if r["unit_stripped"]:
        details.append(f"{r['unit']!r} stripped from {_n(r['unit_stripped'], 'cell')}")
    text = f"{r['column']} {done.get(r['to_type'], '')}".strip()
    return text + (f" ({', '.join(details)})" if details else "")


def _loss_phrase(r: dict[str, Any]) -> str:
    examples = [*r["out_of_range_examples"][:1], *r["unconvertible_examples"][:1]]
    return f"{r['column']}: " + ", ".join(f"{e['value']!r} in row {e['row']}" for e in examples)


def coerce_metrics(reports: list[dict[str, Any]]) -> dict[str, float]:
    total = {k: float(sum(r[k] for r in reports)) for k in ("sentinels_replaced", "unit_stripped")}
    total |= {k: float(sum(r[k] for r in reports)) for k in ("out_of_range", "unconvertible")}
    total["columns_changed"] = float(sum(r["changed"] for r in reports))
    total["cells_set_missing"] = total["sentinels_replaced"] + total["out_of_range"] + total["unconvertible"]
    return total


class CoerceTypes(Tool):
    name = "coerce_types"
    description = (
        "Convert columns to their real types: numbers stored as text to numbers (units such as 'kg' or "
        "'$' stripped), yes/no to 1/0, date text to dates, and sentinel codes such as '?', 'NA' or -999 "
        "to missing; words such as 'unknown' stay categories unless given as `sentinels`. Domain "
        "ranges (e.g. age 0..120) turn impossible values into missing. Every cell "
        "that becomes missing is counted and shown; identifiers are untouched and the target keeps its "
        "values. Re-applies to new data."
    )
    category = "schema"
    mutates = True
    Params = CoerceTypesParams
    reapply = staticmethod(reapply_coerce_types)

    def run(self, table: pd.DataFrame, params: CoerceTypesParams, ctx: ToolContext) -> ToolResult:
        ctx.progress(0.0, "profiling the columns")
        profile = profile_table(table, ctx.target, ctx.id_columns, ctx.task)
        ctx.check_cancelled()
        schema = build_schema(table, params, ctx, profile)
        fitted = {"columns": schema}
        ctx.progress(0.5, f"converting {len(schema)} columns")
        out = reapply_coerce_types(table, fitted)
        out.attrs.pop("copilot_notes", None)  # on the training table the findings say it, with rows
        ctx.check_cancelled()
        reports = measure(table, out, schema)
        _refuse_mostly_unconvertible(reports, table)
        lost = [r for r in reports if r["changed"]]
        chart = Chart(
            "bar",
            "Cells set missing per column",
            [r["column"] for r in lost],
            [float(r["sentinels_replaced"] + r["out_of_range"] + r["unconvertible"]) for r in lost],
            "column",
            "cells",
        )
        return ToolResult(
            summary=summarise(reports, table.shape[1]),
            table=out,
            findings={"columns": reports, "changed_columns": [r["column"] for r in lost]},
            metrics=coerce_metrics(reports),
            charts=[chart] if lost else [],
            fitted=fitted,
        )
