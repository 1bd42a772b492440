"""date_features: a date column becomes numbers a model can use.

Each chosen date column is replaced, where it stood, by ``<col>_year``, ``<col>_month``,
``<col>_day_of_week`` (0 = Monday) and ``<col>_days_since`` (days, with a fraction for the time of
day, since the earliest date seen when fitted), plus ``<col>_hour`` when the column carries times of
day (not every one is midnight). Every feature is float64; a missing date is missing in each of them.

With no ``columns`` every date feature column is expanded: typed ``datetime`` (``ctx.column_types``,
else inferred) or stored as dates without another declared type. A column of date text is expanded
too when named; it is read with ``pd.to_datetime(..., format="mixed", utc=True)``. The target,
identifiers and columns typed ``personal`` are never touched. ``columns`` may also ``drop`` a date
column or ``keep`` it as it is.

``fitted`` holds, per column, the action, the features made and the fitted range as ISO text: the
earliest date is the origin of ``days_since``, so new data is measured from the same day. ``reapply``
accepts dates outside that range (``days_since`` may be negative) but counts them, and cells that do
not read as dates become missing; both are reported in ``table.attrs["copilot_notes"]``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tools._frame import column_kinds, plural, protected_columns
from tools.base import Tool, ToolContext, ToolParams, ToolResult

Action = Literal["features", "drop", "keep"]
Feature = Literal["year", "month", "day_of_week", "days_since", "hour"]
ALL_FEATURES: tuple[str, ...] = ("year", "month", "day_of_week", "days_since", "hour")
_MOSTLY_UNREADABLE = 0.5


class DateFeaturesParams(ToolParams):
    columns: dict[str, Action] = Field(
        default_factory=dict,
        description="What to do with each date column: 'features' (replace it by numbers), 'drop' or 'keep'. "
        "Date columns not listed get 'features'; a text column of dates is read as dates when listed.",
    )
    features: list[Feature] = Field(
        default_factory=lambda: list(ALL_FEATURES),
        min_length=1,
        description="Which numbers to make: year, month, day_of_week (0 = Monday), days_since (the earliest "
        "date seen) and hour (made only for a column that carries times of day).",
    )


def reapply_date_features(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Replace each date column in ``fitted["columns"]`` by its features (a copy is returned).

    Each entry: ``action`` (features, drop or keep), ``features`` (the names made, in order),
    ``origin`` and ``last`` (the fitted range, ISO text). Dates outside that range and cells that do
    not read as dates are reported in ``table.attrs["copilot_notes"]``.
    Self-contained: its source is copied into the exported pipeline.
    """
    import warnings

    import numpy as np
    import pandas as pd

    def as_dates(col: pd.Series) -> np.ndarray:  # the same reading as tools.date_features.read_dates
        if pd.api.types.is_datetime64_any_dtype(col):
            stamps = pd.to_datetime(col, utc=True).dt.tz_localize(None)
            return stamps.to_numpy(dtype="datetime64[us]")
        codes, uniques = pd.factorize(col)  # parse each distinct value once
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = pd.Series([str(v).strip() for v in uniques], dtype=object)
            parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        values = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        return np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT", "us"))

    def shown(stamp: pd.Timestamp) -> str:
        return str(stamp.date()) if stamp == stamp.normalize() else stamp.isoformat(sep=" ")

    def dates_n(n: int) -> str:
        return f"{n} date" if n == 1 else f"{n} dates"

    out = table.copy()
    notes = list(out.attrs.get("copilot_notes", []))
    for name, spec in fitted["columns"].items():
        if spec["action"] == "keep":
            continue
        if name not in out.columns:
            raise ValueError(f"column {name!r} is missing from the data; the pipeline expects it")
        if spec["action"] == "drop":
            out = out.drop(columns=[name])
            continue
        clash = [f"{name}_{f}" for f in spec["features"] if f"{name}_{f}" in out.columns]
        if clash:
            raise ValueError(f"column {name!r}: the data already has {clash}, the names of its date features")
        col = out[name]
        dates = pd.Series(as_dates(col), dtype="datetime64[us]")
        unread = col.notna().to_numpy() & dates.isna().to_numpy()
        origin, last = pd.Timestamp(spec["origin"]), pd.Timestamp(spec["last"])
        made = {
            "year": dates.dt.year,
            "month": dates.dt.month,
            "day_of_week": dates.dt.day_of_week,
            "hour": dates.dt.hour,
            "days_since": (dates - origin) / pd.Timedelta(days=1),
        }
        position = out.columns.get_loc(name)
        out = out.drop(columns=[name])
        for i, feature in enumerate(spec["features"]):
            out.insert(position + i, f"{name}_{feature}", made[feature].to_numpy(dtype="float64", na_value=np.nan))
        before, after = int((dates < origin).sum()), int((dates > last).sum())
        if before:
            notes.append(f"column {name!r}: {dates_n(before)} before the earliest seen when fitted ({shown(origin)})")
        if after:
            notes.append(f"column {name!r}: {dates_n(after)} after the latest seen when fitted ({shown(last)})")
        if unread.any():
            examples = list(dict.fromkeys(str(v) for v in col[unread]))
            listed = ", ".join(repr(v) for v in examples[:5]) + (" and more" if len(examples) > 5 else "")
            cells = "1 cell" if unread.sum() == 1 else f"{int(unread.sum())} cells"
            notes.append(f"column {name!r}: {cells} not read as dates, now missing: {listed}")
    out.attrs["copilot_notes"] = notes
    return out


def date_columns(table: pd.DataFrame, ctx: ToolContext) -> list[str]:
    """The date feature columns: typed ``datetime``, or stored as dates with no other declared type."""
    kinds = column_kinds(table, ctx)
    protected = protected_columns(table, ctx)
    return [
        str(c)
        for c in ctx.feature_columns(table)
        if c not in protected
        and (kinds[c] == "datetime" or (c not in ctx.column_types and pd.api.types.is_datetime64_any_dtype(table[c])))
    ]


def pick_actions(table: pd.DataFrame, params: DateFeaturesParams, ctx: ToolContext) -> dict[str, str]:
    """What to do with each column: every date column gets ``features`` unless ``params.columns`` says else."""
    dates = date_columns(table, ctx)
    unknown = [c for c in params.columns if c not in table.columns]
    if unknown:
        there = ", ".join(dates) or "none"
        raise ValueError(
            f"date_features: no column named {', '.join(map(repr, unknown))}; the date columns are: {there}"
        )
    kinds = column_kinds(table, ctx)
    protected = protected_columns(table, ctx)
    for name in params.columns:
        if name in protected or kinds[name] == "personal":
            why = {ctx.target: "the target"}.get(name) or ("personal data" if kinds[name] == "personal" else "")
            why = why or "an identifier"
            raise ValueError(f"date_features never changes {name!r}: it is {why}; remove it from `columns`")
        col = table[name]
        if name not in dates and (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise ValueError(f"column {name!r} holds numbers, not dates; date_features reads dates or date text")
        if name not in dates:
            refuse_unreadable(name, col, read_dates(col))
    with_dates = [c for c in dates if table[c].notna().any()]  # an empty column is left to drop_columns
    return {c: "features" for c in with_dates} | dict(params.columns)


def read_dates(col: pd.Series) -> pd.Series:
    """The column as ``datetime64[us]`` (UTC, no zone), read exactly as ``reapply_date_features`` reads it."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True).dt.tz_localize(None).astype("datetime64[us]")
    codes, uniques = pd.factorize(col)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = pd.Series([str(v).strip() for v in uniques], dtype=object)
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    values = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    dates = np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT", "us"))
    return pd.Series(dates, index=col.index, name=col.name, dtype="datetime64[us]")


def refuse_unreadable(name: str, col: pd.Series, dates: pd.Series) -> None:
    """A column of which most values are not dates is the wrong column, not dirty dates."""
    present = col.notna().to_numpy()
    unread = present & dates.isna().to_numpy()
    if unread.sum() > _MOSTLY_UNREADABLE * present.sum():
        example = col[unread].iloc[0]
        raise ValueError(
            f"column {name!r}: {int(unread.sum())} of {int(present.sum())} values cannot be read as dates "
            f"(e.g. {example!r}); date_features reads dates or date text"
        )


def fit_column(name: str, col: pd.Series, features: list[str], table: pd.DataFrame) -> dict[str, Any]:
    """The fitted range of one column and the features it gets (``hour`` only with times of day)."""
    dates = read_dates(col)
    refuse_unreadable(name, col, dates)
    present = dates.dropna()
    if present.empty:
        raise ValueError(f"column {name!r} has no date to learn from; drop it instead")
    with_times = bool((present != present.dt.normalize()).any())
    chosen = [f for f in ALL_FEATURES if f in features and (f != "hour" or with_times)]
    clash = [f"{name}_{f}" for f in chosen if f"{name}_{f}" in table.columns]
    if clash:
        raise ValueError(
            f"column {name!r}: the table already has {clash}, the names its date features would take; "
            "rename it (or them) first"
        )
    first, last = present.min().isoformat(), present.max().isoformat()
    return {"action": "features", "features": chosen, "origin": first, "last": last}


def column_report(name: str, col: pd.Series, spec: dict[str, Any], out: pd.DataFrame) -> dict[str, Any]:
    made = [f"{name}_{f}" for f in spec["features"]]
    missing = out[made[0]].isna() if made else col.isna()
    return {
        "column": name,
        "action": spec["action"],
        "features": made,
        "first": spec["origin"],
        "last": spec["last"],
        "missing": int(missing.sum()),
        "not_read": int((col.notna().to_numpy() & missing.to_numpy()).sum()),
        "constant": [f for f in made if out[f].nunique() <= 1],
    }


def summarise(reports: list[dict[str, Any]], actions: dict[str, str]) -> str:
    if not actions:
        return "No date column to turn into features; nothing changed."
    parts = []
    for r in reports:
        text = f"{r['column']} (dates {r['first'][:10]} to {r['last'][:10]}) by {', '.join(r['features'])}"
        if f"{r['column']}_days_since" in r["features"]:
            text += f" (days since {r['first'][:10]})"
        if r["missing"]:
            text += f"; {plural(r['missing'], 'missing date')} stay missing"
            text += f" ({r['not_read']} of them not readable as dates)" if r["not_read"] else ""
        if r["constant"]:
            text += f"; {', '.join(r['constant'])} hold a single value (kept, but they tell a model nothing yet)"
        parts.append(text)
    sentences = [f"Replaced {' | '.join(parts)}."] if parts else []
    dropped = [c for c, a in actions.items() if a == "drop"]
    kept = [c for c, a in actions.items() if a == "keep"]
    sentences += [f"Dropped {', '.join(dropped)}."] if dropped else []
    sentences += [f"Kept {', '.join(kept)} as dates."] if kept else []
    return " ".join(sentences)


class DateFeatures(Tool):
    name = "date_features"
    description = (
        "Turn date columns into numbers a model can use: year, month, day of the week (0 = Monday) and days "
        "since the earliest date seen, plus the hour where the column has times of day. Each date column is "
        "replaced by its features (or dropped, or kept, as you choose); missing dates stay missing. The "
        "target, identifiers and personal columns are untouched. Re-applies to new data from the same "
        "earliest date, and reports dates outside the range it was fitted on."
    )
    category = "schema"
    mutates = True
    Params = DateFeaturesParams
    reapply = staticmethod(reapply_date_features)

    def run(self, table: pd.DataFrame, params: DateFeaturesParams, ctx: ToolContext) -> ToolResult:
        actions = pick_actions(table, params, ctx)
        fitted: dict[str, Any] = {"columns": {}}
        for i, (name, action) in enumerate(actions.items()):
            ctx.check_cancelled()
            ctx.progress(i / max(len(actions), 1), f"reading the dates of {name}")
            if action == "features":
                fitted["columns"][name] = fit_column(name, table[name], list(params.features), table)
            else:
                fitted["columns"][name] = {"action": action, "features": [], "origin": None, "last": None}
        out = reapply_date_features(table, fitted)
        out.attrs.pop("copilot_notes", None)
        reports = [
            column_report(c, table[c], s, out) for c, s in fitted["columns"].items() if s["action"] == "features"
        ]
        return ToolResult(
            summary=summarise(reports, actions),
            table=out,
            findings={"columns": reports, "actions": actions},
            metrics={
                "columns_expanded": float(len(reports)),
                "features_made": float(sum(len(r["features"]) for r in reports)),
                "columns_dropped": float(sum(a == "drop" for a in actions.values())),
                "missing_dates": float(sum(r["missing"] for r in reports)),
            },
            fitted=fitted,
        )
