"""date_features: parsed dates become numbers, missing dates stay missing, new data keeps the fitted origin."""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tools.base import ToolContext, ToolResult
from tools.coerce_types import CoerceTypes
from tools.date_features import DateFeatures, reapply_date_features

CTX = ToolContext(target="outcome", id_columns=["record_id"], task="classification", seed=0)
FOUR = ["year", "month", "day_of_week", "days_since"]
#: How the same day is written in the text column: the formats mix, as in a hand-kept sheet.
FORMATS = ["%Y-%m-%d", "%d %B %Y", "%b %d, %Y", "%Y/%m/%d"]


def run(table: pd.DataFrame, ctx: ToolContext = CTX, **params: object) -> ToolResult:
    return DateFeatures().run(table, DateFeatures.parse_params(params), ctx)


def coerce(table: pd.DataFrame, ctx: ToolContext = CTX) -> pd.DataFrame:
    result = CoerceTypes().run(table, CoerceTypes.parse_params({}), ctx)
    assert result.table is not None
    return result.table


def visit_days(n: int, seed: int = 0, start: str = "2019-01-02", span: int = 700) -> pd.Series:
    rng = np.random.default_rng(seed)
    days = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, span, n), unit="D")
    days = pd.Series(days)
    days.iloc[0] = pd.Timestamp(start)  # the earliest day is in the data
    return days


def visit_table(n: int = 120, seed: int = 0, missing: tuple[int, ...] = (3, 8)) -> tuple[pd.DataFrame, pd.Series]:
    """A table whose ``visit`` column is date text in mixed formats, and the dates it means."""
    days = visit_days(n, seed)
    text = [d.strftime(FORMATS[i % len(FORMATS)]) for i, d in enumerate(days)]
    for i in missing:
        text[i], days.iloc[i] = ("?" if i % 2 else None), pd.NaT
    rng = np.random.default_rng(seed + 1)
    table = pd.DataFrame({
        "record_id": [f"R{i:05d}" for i in range(n)],
        "visit": text,
        "weight": rng.normal(70, 5, n).round(1),
        "outcome": rng.choice(["sick", "well"], n),
    })  # fmt: skip
    return table, days


def expected(days: pd.Series, origin: pd.Timestamp) -> dict[str, np.ndarray]:
    """What each feature should be, straight from pandas' own accessors."""
    return {
        "year": days.dt.year.to_numpy(dtype=float, na_value=np.nan),
        "month": days.dt.month.to_numpy(dtype=float, na_value=np.nan),
        "day_of_week": days.dt.day_of_week.to_numpy(dtype=float, na_value=np.nan),
        "hour": days.dt.hour.to_numpy(dtype=float, na_value=np.nan),
        "days_since": ((days - origin).dt.total_seconds() / 86400).to_numpy(dtype=float, na_value=np.nan),
    }


def test_mixed_text_dates_parsed_by_coerce_types_become_the_features_pandas_gives() -> None:
    table, days = visit_table()
    parsed = coerce(table)
    assert parsed["visit"].dtype == "datetime64[us]"
    result = run(parsed)
    out = result.table
    made = ["visit_year", "visit_month", "visit_day_of_week", "visit_days_since"]
    assert list(out.columns) == ["record_id", *made, "weight", "outcome"]  # in the place of the date
    want = expected(days, pd.Timestamp("2019-01-02"))
    for feature in FOUR:
        assert out[f"visit_{feature}"].dtype == "float64"
        np.testing.assert_array_equal(out[f"visit_{feature}"].to_numpy(), want[feature])
    assert out.loc[0, "visit_days_since"] == 0.0
    spec = {"action": "features", "features": FOUR, "origin": "2019-01-02T00:00:00", "last": days.max().isoformat()}
    assert result.fitted == {"columns": {"visit": spec}}
    report = result.findings["columns"][0]
    assert report["missing"] == 2 and report["features"] == made
    assert "visit (dates 2019-01-02 to" in result.summary and "2 missing dates stay missing" in result.summary
    pd.testing.assert_series_equal(out["weight"], table["weight"])


def test_missing_dates_stay_missing_in_every_feature() -> None:
    table, days = visit_table(missing=(1, 2, 5, 8))
    out = run(coerce(table)).table
    gone = days.isna().to_numpy()
    features = out[[f"visit_{f}" for f in FOUR]]
    assert features[gone].isna().all().all() and features[~gone].notna().all().all()


def test_hour_only_for_a_column_with_times_of_day() -> None:
    days = visit_days(60)
    stamps = days + pd.to_timedelta(np.arange(60) % 24, unit="h")
    table = pd.DataFrame({"at": stamps, "on": days, "outcome": "x"})
    result = run(table, ToolContext(target="outcome"))
    out = result.table
    assert "at_hour" in out.columns and "on_hour" not in out.columns
    np.testing.assert_array_equal(out["at_hour"].to_numpy(), stamps.dt.hour.to_numpy(dtype=float))
    frac = ((stamps - stamps.min()).dt.total_seconds() / 86400).to_numpy()
    np.testing.assert_array_equal(out["at_days_since"].to_numpy(), frac)
    asked = run(table, ToolContext(target="outcome"), features=["hour", "year"]).table
    assert [c for c in asked.columns if c.startswith("at_")] == ["at_year", "at_hour"]
    assert [c for c in asked.columns if c.startswith("on_")] == ["on_year"]  # midnight only: no hour


def test_reapply_gives_the_same_features_and_measures_new_data_from_the_fitted_origin() -> None:
    table, _ = visit_table()
    train = coerce(table)
    result = run(train)
    fitted = json.loads(json.dumps(result.fitted))
    again = reapply_date_features(train, fitted)
    pd.testing.assert_frame_equal(again, result.table)
    assert again.attrs["copilot_notes"] == []
    later = pd.DataFrame({"visit": pd.to_datetime(["2019-06-01", "2019-06-02", None]), "weight": [1.0, 2.0, 3.0]})
    new = reapply_date_features(later, fitted)
    origin = pd.Timestamp("2019-01-02")
    assert new["visit_days_since"].tolist()[:2] == [150.0, 151.0]  # not 0 and 1: the fitted origin holds
    assert (pd.Timestamp("2019-06-01") - origin).days == 150
    assert np.isnan(new["visit_days_since"].iloc[2])
    assert new["visit_day_of_week"].tolist()[:2] == [5.0, 6.0]  # a Saturday and a Sunday
    assert new.attrs["copilot_notes"] == []


def test_dates_outside_the_fitted_range_and_unreadable_cells_are_reported() -> None:
    train = pd.DataFrame({"visit": pd.to_datetime(["2019-01-02", "2019-05-01", "2020-05-01"]), "outcome": "a"})
    fitted = run(train, ToolContext(target="outcome")).fitted
    new = pd.DataFrame({"visit": ["2018-12-31", "2018-01-01", "1999-07-07", "2021-01-01", "soon", "n/a", None]})
    new.attrs["copilot_notes"] = ["an earlier step's note"]
    out = reapply_date_features(new, fitted)
    origin = pd.Timestamp("2019-01-02")
    want = [float((pd.Timestamp(d) - origin).days) for d in new["visit"].iloc[:4]]
    assert out["visit_days_since"].tolist()[:4] == want == [-2.0, -366.0, -7119.0, 730.0]
    assert out["visit_year"].iloc[4:].isna().all()
    assert out.attrs["copilot_notes"] == [
        "an earlier step's note",
        "column 'visit': 3 dates before the earliest seen when fitted (2019-01-02)",
        "column 'visit': 1 date after the latest seen when fitted (2020-05-01)",
        "column 'visit': 2 cells not read as dates, now missing: 'soon', 'n/a'",
    ]
    assert new.attrs["copilot_notes"] == ["an earlier step's note"]  # the input is not changed


def test_a_text_column_named_is_read_as_dates_and_new_text_the_same_way() -> None:
    table, days = visit_table()
    result = run(table, columns={"visit": "features"})
    want = expected(days, pd.Timestamp("2019-01-02"))
    np.testing.assert_array_equal(result.table["visit_days_since"].to_numpy(), want["days_since"])
    assert result.findings["columns"][0]["not_read"] == 1  # the "?" code
    assert "1 of them not readable as dates" in result.summary
    with pytest.raises(ValueError, match=r"'weight' holds numbers"):
        run(table, columns={"weight": "features"})
    words = table.assign(note=["fine"] * len(table))
    with pytest.raises(ValueError, match=r"'note': 120 of 120 values cannot be read as dates \(e\.g\. 'fine'\)"):
        run(words, columns={"note": "features"})


def test_text_dates_are_left_alone_unless_named() -> None:
    table, _ = visit_table()
    result = run(table)
    pd.testing.assert_frame_equal(result.table, table)
    assert result.summary == "No date column to turn into features; nothing changed."
    assert result.fitted == {"columns": {}}


def test_drop_and_keep() -> None:
    days = visit_days(40)
    table = pd.DataFrame({"a": days, "b": days + pd.Timedelta(days=3), "c": days, "outcome": "x"})
    result = run(table, ToolContext(target="outcome"), columns={"a": "drop", "b": "keep"})
    assert list(result.table.columns) == ["b", *(f"c_{f}" for f in FOUR), "outcome"]
    pd.testing.assert_series_equal(result.table["b"], table["b"])
    assert "Dropped a." in result.summary and "Kept b as dates." in result.summary
    new = reapply_date_features(table.drop(columns="outcome"), result.fitted)
    assert list(new.columns) == ["b", *(f"c_{f}" for f in FOUR)]


def test_constant_features_are_made_and_said() -> None:
    days = pd.Series(pd.to_datetime(["2019-01-07", "2019-03-04", "2019-11-11", None]))  # three Mondays in 2019
    result = run(pd.DataFrame({"d": days, "outcome": "x"}), ToolContext(target="outcome"))
    assert result.table["d_year"].tolist()[:3] == [2019.0] * 3
    assert result.findings["columns"][0]["constant"] == ["d_year", "d_day_of_week"]
    assert "d_year, d_day_of_week hold a single value" in result.summary


def test_the_target_identifiers_and_personal_columns_are_never_touched() -> None:
    days = visit_days(30)
    table = pd.DataFrame({"record_id": days, "born": days, "seen": days, "outcome": days})
    ctx = ToolContext(target="outcome", id_columns=["record_id"], column_types={"born": "personal"})
    result = run(table, ctx)
    assert list(result.table.columns) == ["record_id", "born", *(f"seen_{f}" for f in FOUR), "outcome"]
    for name, why in (("record_id", "an identifier"), ("born", "personal data"), ("outcome", "the target")):
        with pytest.raises(ValueError, match=rf"never changes '{name}': it is {why}"):
            run(table, ctx, columns={name: "features"})


def test_bad_params_say_what_is_wrong() -> None:
    days = visit_days(20)
    table = pd.DataFrame({"visit": days, "visit_year": 1.0, "outcome": "x"})
    ctx = ToolContext(target="outcome")
    with pytest.raises(ValueError, match=r"no column named 'vist'; the date columns are: visit"):
        run(table, ctx, columns={"vist": "features"})
    with pytest.raises(ValueError, match=r"'visit': the table already has \['visit_year'\]"):
        run(table, ctx)
    assert list(run(table, ctx, features=["month"]).table.columns) == ["visit_month", "visit_year", "outcome"]
    with pytest.raises(ValidationError):
        DateFeatures.parse_params({"features": ["week"]})
    with pytest.raises(ValidationError):
        DateFeatures.parse_params({"columns": {"visit": "explode"}})
    fitted = run(table, ctx, features=["month"]).fitted
    with pytest.raises(ValueError, match=r"'visit': the data already has \['visit_month'\]"):  # new data
        reapply_date_features(table.assign(visit_month=1), fitted)


def test_time_zones_become_utc_and_repeated_row_labels_are_fine() -> None:
    stamps = pd.Series(pd.to_datetime(["2019-01-01 23:30", "2019-06-01 12:00"]).tz_localize("America/New_York"))
    table = pd.DataFrame({"t": stamps.to_numpy(), "outcome": "x"}, index=[5, 5])
    out = run(table, ToolContext(target="outcome")).table
    assert out["t_year"].tolist() == [2019.0, 2019.0] and out["t_month"].tolist() == [1.0, 6.0]
    assert out["t_hour"].tolist() == [4.0, 16.0]  # 04:30 and 16:00 UTC
    assert list(out.index) == [5, 5]


def test_reapply_is_self_contained() -> None:
    """The source of reapply_date_features is copied into pipeline.py: it must run on its own."""
    namespace: dict[str, object] = {}
    exec(compile(inspect.getsource(reapply_date_features), "<pipeline>", "exec"), namespace)
    table, _ = visit_table()
    fitted = json.loads(json.dumps(run(coerce(table)).fitted))
    new, _ = visit_table(40, seed=5, missing=(2,))
    new = new.assign(visit=new["visit"].where(new.index != 4, "not a date"))
    standalone = namespace["reapply_date_features"](new.copy(), fitted)
    pd.testing.assert_frame_equal(standalone, reapply_date_features(new.copy(), fitted))
    assert standalone.attrs == reapply_date_features(new.copy(), fitted).attrs
    assert any("1 cell not read as dates" in note for note in standalone.attrs["copilot_notes"])


STAMPS = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 12, 31))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(STAMPS, st.none()), min_size=1, max_size=30).filter(lambda v: any(v)))
def test_reapply_equals_the_run_and_days_since_is_the_exact_difference(values: list[datetime | None]) -> None:
    table = pd.DataFrame({"d": pd.Series(values, dtype="datetime64[us]"), "outcome": "x"})
    result = run(table, ToolContext(target="outcome"))
    fitted = json.loads(json.dumps(result.fitted))
    pd.testing.assert_frame_equal(reapply_date_features(table, fitted), result.table, check_flags=False)
    origin = min(v for v in values if v is not None)
    assert fitted["columns"]["d"]["origin"] == pd.Timestamp(origin).isoformat()
    days = result.table["d_days_since"].tolist()
    for value, got in zip(values, days, strict=True):
        if value is None:
            assert np.isnan(got)
        else:
            assert got == (value - origin) / timedelta(days=1)
    has_times = any(v is not None and v.time() != datetime.min.time() for v in values)
    assert ("d_hour" in result.table.columns) == has_times
