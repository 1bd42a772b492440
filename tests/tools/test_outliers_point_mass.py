"""The outliers tool on point-mass columns, and acting only where the evidence is strong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.rule_based import PlanningState, RuleBasedCoordinator
from tools._frame import Scale, robust_scale
from tools.base import ToolContext, ToolResult
from tools.feature_types import numeric_stats, profile_table
from tools.outliers import Outliers

CTX = ToolContext(target="outcome", id_columns=["pid"], seed=0)
DEFAULT_PLAN = {"method": "robust_z", "threshold": 5.0, "action": "set_missing"}


def run(table: pd.DataFrame, **params: object) -> ToolResult:
    return Outliers().run(table, Outliers.parse_params({**DEFAULT_PLAN, **params}), CTX)


def lab_values(n: int = 2000, mass: float = 1.0, seed: int = 0) -> np.ndarray:
    """93% of the cells at the "negative" value ``mass``; the rest above it, log-normal, within one
    order of magnitude of each other."""
    rng = np.random.default_rng(seed)
    positive = mass + rng.lognormal(np.log(5.0), 0.4, n).round(2)
    return np.where(np.arange(n) % 100 < 93, mass, positive)


def capital_gains(n: int = 5000, seed: int = 1) -> np.ndarray:
    """92% zeros; the rest log-normal, spread over three orders of magnitude."""
    rng = np.random.default_rng(seed)
    gains = rng.lognormal(np.log(3000.0), 1.2, n).round()
    return np.where(rng.random(n) < 0.92, 0.0, gains)


def table_with(**columns: np.ndarray) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    rng = np.random.default_rng(2)
    return pd.DataFrame({"pid": np.arange(n), **columns, "outcome": rng.integers(0, 2, n)})


def typical_off_mass(values: np.ndarray, mass: float) -> int:
    """The row of the off-mass value nearest the median of the off-mass values."""
    off = np.flatnonzero(values != mass)
    return int(off[np.argmin(np.abs(values[off] - np.median(values[off])))])


@pytest.mark.parametrize("mass", [0.0, 1.0])
def test_a_x50_slip_in_a_point_mass_column_is_found_and_set_missing(mass: float) -> None:
    lab = lab_values(mass=mass)
    off = lab[lab != mass]
    assert np.log10(off.max() / off.min()) <= 1  # the other values span one order of magnitude
    row = typical_off_mass(lab, mass)
    lab[row] *= 50
    table = table_with(lab=lab)
    assert robust_scale(table["lab"]).spread == 0  # the plain robust z cannot see it
    result = run(table)
    assert [(e["row"], e["column"], e["strong"]) for e in result.findings["rows"]] == [(row, "lab", True)]
    assert np.isnan(result.table.loc[row, "lab"])
    pd.testing.assert_frame_equal(result.table.drop(index=row), table.drop(index=row), check_dtype=False)
    assert result.findings["scales"]["lab"] == f"log off the mass at {mass:g}"
    assert result.findings["mass_points"] == {"lab": {"value": mass, "share": 0.93}}
    assert result.findings["skipped"] == []
    assert f"other than {mass:g} (held by 93% of the cells" in result.findings["rows"][0]["reason"]
    assert "Set 1 value to missing" in result.summary


def test_a_long_legitimate_tail_off_a_point_mass_is_not_flagged() -> None:
    gains = capital_gains()
    off = gains[gains > 0]
    assert np.log10(off.max() / off.min()) >= 3  # the tail spans three orders of magnitude
    table = table_with(gains=gains)
    result = run(table)
    assert result.findings["flagged_cells"] == 0
    assert result.findings["scales"]["gains"] == "log off the mass at 0"
    pd.testing.assert_frame_equal(result.table, table)
    assert "the table is unchanged" in result.summary


def test_mass_cells_are_never_flagged_and_clip_keeps_them() -> None:
    lab = lab_values(mass=0.0)
    row = typical_off_mass(lab, 0.0)
    lab[row] *= 50
    table = table_with(lab=lab)
    scale = robust_scale(table["lab"], allow_log=True, allow_mass=True)
    assert scale.mass == 0.0 and scale.log
    assert (scale.standardise(table["lab"])[lab == 0.0] == 0.0).all()
    result = run(table, action="clip")
    assert result.table.loc[row, "lab"] == pytest.approx(scale.bounds(5.0)[1])
    assert (result.table.loc[lab == 0.0, "lab"] == 0.0).all()


def normal_table(n: int = 1000) -> tuple[pd.DataFrame, Scale]:
    rng = np.random.default_rng(3)
    table = table_with(height=rng.normal(172.0, 8.0, n).round(1))
    return table, robust_scale(table["height"], allow_log=True, allow_mass=True)


def test_a_moderate_robust_z_is_only_flagged_and_left_unchanged() -> None:
    table, scale = normal_table()
    table.loc[5, "height"] = scale.center + 7 * scale.spread  # unusual, not clearly wrong
    table.loc[9, "height"] = 1720.0  # millimetres: z near 200
    result = run(table)
    entries = {e["row"]: e for e in result.findings["rows"]}
    assert set(entries) == {5, 9}
    assert entries[5]["score"] == pytest.approx(7.0, abs=0.01) and not entries[5]["strong"]
    assert "so only flagged" in entries[5]["reason"] and entries[9]["strong"]
    assert result.table.loc[5, "height"] == table.loc[5, "height"]
    assert np.isnan(result.table.loc[9, "height"]) and result.metrics["cells_changed"] == 1.0
    assert result.findings["strong_cells"] == 1 and result.findings["flagged_only_cells"] == 1
    assert "Set 1 value to missing so that impute can fill it. Only values with strong evidence" in result.summary
    assert "1 value above robust z 5 but short of that was only flagged and left unchanged" in result.summary


def test_strong_z_at_the_threshold_changes_every_flagged_cell() -> None:
    table, scale = normal_table()
    table.loc[5, "height"] = scale.center + 7 * scale.spread
    result = run(table, strong_z=5.0)
    assert np.isnan(result.table.loc[5, "height"]) and result.findings["flagged_only_cells"] == 0


def test_a_given_range_is_strong_evidence_at_any_robust_z() -> None:
    table, scale = normal_table()
    table.loc[5, "height"] = scale.center + 7 * scale.spread
    result = run(table, ranges={"height": [None, scale.center + 6 * scale.spread]})
    assert np.isnan(result.table.loc[5, "height"])
    assert result.findings["rows"][0]["strong"] and result.findings["rows"][0]["reason"].startswith("above the maximum")


def test_drop_removes_only_rows_with_strong_evidence() -> None:
    table, scale = normal_table()
    table.loc[5, "height"] = scale.center + 7 * scale.spread
    table.loc[9, "height"] = 1720.0
    result = run(table, action="drop")
    assert sorted(set(table.index) - set(result.table.index)) == [9]


def test_the_strong_bar_is_ten_or_an_order_of_magnitude_beyond_the_bulk() -> None:
    assert Scale(5.0, 2.0).strong_z(10.0) == 10.0
    assert Scale(0.0, 0.5, log=True).strong_z(10.0) == pytest.approx(2 + np.log(10) / 0.5)  # 6.6
    assert Scale(0.0, 0.1, log=True).strong_z(10.0) == 10.0  # a narrow log scale: ten times is z 25


def test_the_profile_carries_the_point_mass_and_the_tool_agrees() -> None:
    lab = lab_values(mass=1.0)
    row = typical_off_mass(lab, 1.0)
    lab[row] *= 50
    stats = numeric_stats(lab)
    assert stats["q1"] == stats["q3"] == 1.0  # the quartiles cannot see the slip
    assert stats["mass"] == 1.0 and stats["mass_share"] == 0.93 and stats["off_mass_scale"] == "log"
    assert stats["off_mass_z_min"] == 0.0  # the minimum is the mass itself
    score = run(table_with(lab=lab)).findings["rows"][0]["score"]
    assert stats["off_mass_z_max"] == pytest.approx(score, abs=1e-3)
    assert score >= stats["off_mass_strong_z"]
    plain = numeric_stats(np.random.default_rng(4).normal(0, 1, 500))
    assert plain["mass"] is None and plain["off_mass_z_max"] is None
    assert numeric_stats(np.array([]))["mass"] is None


def plan_keys(table: pd.DataFrame) -> dict[str, str]:
    profile = profile_table(table, target="outcome", id_columns=["pid"], task="classification")
    state = PlanningState(profile, "outcome", "classification", ["pid"])
    return {s.key: s.rationale for s in RuleBasedCoordinator().plan(state)}


def test_the_planner_proposes_outliers_for_a_point_mass_slip_and_not_for_a_long_tail() -> None:
    lab = lab_values(n=5000, mass=1.0)
    clean = table_with(lab=lab, gains=capital_gains())
    assert "outliers" not in plan_keys(clean)
    row = typical_off_mass(lab, 1.0)
    slipped = clean.copy()
    slipped.loc[row, "lab"] = lab[row] * 50
    plan = plan_keys(slipped)
    assert "outliers" in plan and f"`lab` reaches {lab[row] * 50:g}" in plan["outliers"]
    assert "`gains`" not in plan["outliers"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_off=st.integers(100, 400),
    mass_share=st.floats(0.55, 0.95),
    sigma=st.floats(0.7, 1.5),
    factors=st.lists(st.floats(-1.0, 1.0), max_size=5),
    seed=st.integers(0, 2**16),
)
def test_no_cell_is_changed_within_an_order_of_magnitude_of_the_bulk(
    n_off: int, mass_share: float, sigma: float, factors: list[float], seed: int
) -> None:
    """A point mass at 0 and a log-normal bulk, plus values up to ten times beyond the bulk's
    10th and 90th percentiles: none of it is strong evidence, so nothing changes."""
    rng = np.random.default_rng(seed)
    off = rng.lognormal(0.0, sigma, n_off)
    low, high = np.percentile(off, [10, 90])
    extra = [high * 10**f if f >= 0 else low * 10**f for f in factors]
    n_mass = int(mass_share / (1 - mass_share) * (n_off + len(extra)))
    values = rng.permutation(np.concatenate([np.zeros(n_mass), off, extra]))
    table = pd.DataFrame({"x": values})
    result = Outliers().run(table, Outliers.parse_params(DEFAULT_PLAN), ToolContext())
    assert result.metrics["cells_changed"] == 0, result.findings["rows"]
    assert result.findings["strong_cells"] == 0
    assert not [e for e in result.findings["rows"] if e["value"] == 0.0]


def populations(n: int = 1000, seed: int = 3) -> np.ndarray:
    """A quarter of the places with no population; the rest log-normal over two orders of magnitude and more."""
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(np.log(200.0), 1.0, n).round(1)
    return np.where(rng.random(n) < 0.24, 0.0, sizes)


def test_the_tail_of_a_zero_inflated_column_is_real_and_a_slip_in_it_is_not() -> None:
    """A quarter at zero is no majority, yet the zeros are a floor: the positive values are judged on their
    own (log) scale, so their long tail stays, while a value a thousand times a typical one is found."""
    values = populations()
    untouched = run(table_with(popul=values))
    assert untouched.findings["strong_cells"] == 0
    pd.testing.assert_series_equal(untouched.table["popul"], table_with(popul=values)["popul"])
    slipped = values.copy()
    row = typical_off_mass(values, 0.0)
    slipped[row] *= 1000
    found = run(table_with(popul=slipped))
    assert pd.isna(found.table.loc[row, "popul"]) and found.findings["strong_cells"] == 1
