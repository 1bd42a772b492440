"""The outliers tool on planted unit slips, impossible values and far rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from tools._frame import is_right_skewed, robust_scale
from tools.base import ToolContext, ToolResult
from tools.outliers import Outliers

CTX = ToolContext(target="outcome", id_columns=["pid"], seed=0)


def patients(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Weight 60-90 kg, height in cm, age 20-80, an id and a numeric target with its own extremes."""
    rng = np.random.default_rng(seed)
    outcome = rng.normal(0, 1, n)
    outcome[:3] = 1e6  # extreme target values: never the tool's business
    return pd.DataFrame(
        {
            "pid": np.arange(1000, 1000 + n),
            "weight": rng.uniform(60, 90, n).round(1),
            "height": rng.normal(172, 8, n).round(1),
            "age": rng.integers(20, 81, n),
            "outcome": outcome,
        }
    )


def with_slips(table: pd.DataFrame) -> pd.DataFrame:
    """A weight of 75000 (grams) in row 10 and a height of 1720 (mm) in row 20."""
    out = table.copy()
    out.loc[10, "weight"] = 75000.0
    out.loc[20, "height"] = 1720.0
    return out


def run(table: pd.DataFrame, **params: object) -> ToolResult:
    return Outliers().run(table, Outliers.parse_params(params), CTX)


def test_robust_z_finds_unit_slips_and_sets_them_missing() -> None:
    table = with_slips(patients())
    result = run(table)
    assert result.findings["per_column"] == {"weight": 1, "height": 1}
    assert {(e["row"], e["column"]) for e in result.findings["rows"]} == {(10, "weight"), (20, "height")}
    assert np.isnan(result.table.loc[10, "weight"]) and np.isnan(result.table.loc[20, "height"])
    assert result.table.isna().sum().sum() == 2
    assert result.findings["rows"][0]["value"] == 75000.0  # most extreme first
    assert "weight" in result.summary and "75000" in result.summary


def test_target_and_ids_are_never_touched() -> None:
    table = with_slips(patients())
    table.loc[5, "pid"] = 10**9
    result = run(table, action="clip")
    pd.testing.assert_series_equal(result.table["outcome"], table["outcome"])
    pd.testing.assert_series_equal(result.table["pid"], table["pid"])
    assert not {"outcome", "pid"} & set(result.findings["per_column"])
    for column in ("outcome", "pid"):
        with pytest.raises(ValueError, match=column):
            run(table, columns=[column])
        with pytest.raises(ValueError, match=column):
            run(table, method="rules", ranges={column: [0, 1]})


def test_rule_range_flags_only_impossible_ages() -> None:
    table = patients()
    table.loc[3, "age"] = 250
    table.loc[7, "age"] = -3
    table.loc[8, "age"] = 120  # on the bound: valid
    result = run(table, method="rules", ranges={"age": [0, 120]}, action="flag")
    assert sorted(e["row"] for e in result.findings["rows"]) == [3, 7]
    reasons = {e["row"]: e["reason"] for e in result.findings["rows"]}
    assert reasons == {3: "above the maximum 120", 7: "below the minimum 0"}
    pd.testing.assert_frame_equal(result.table, table)


def test_rule_with_one_open_end() -> None:
    table = patients()
    table.loc[3, "age"] = 250
    table.loc[7, "age"] = -3
    result = run(table, method="rules", ranges={"age": [None, 120]}, action="flag")
    assert [e["row"] for e in result.findings["rows"]] == [3]


def test_drop_removes_exactly_the_flagged_rows() -> None:
    table = with_slips(patients())
    table.loc[30, "age"] = 150
    result = run(table, action="drop", ranges={"age": [0, 120]})
    assert result.findings["flagged_rows"] == 3
    assert sorted(set(table.index) - set(result.table.index)) == [10, 20, 30]
    pd.testing.assert_frame_equal(result.table, table.drop(index=[10, 20, 30]))
    assert result.metrics["rows_dropped"] == 3.0


def test_clip_pulls_values_to_the_robust_bounds() -> None:
    table = with_slips(patients())
    result = run(table, action="clip", threshold=5.0)
    scale = robust_scale(table["weight"])
    assert result.table.loc[10, "weight"] == pytest.approx(scale.center + 5.0 * scale.spread)
    assert result.table.loc[10, "weight"] < 200
    untouched = table.index.difference([10, 20])
    pd.testing.assert_frame_equal(result.table.loc[untouched], table.loc[untouched], check_dtype=False)


def test_clip_with_a_rule_uses_the_rule_range() -> None:
    table = patients()
    table.loc[3, "age"] = 250
    result = run(table, method="rules", ranges={"age": [0, 120]}, action="clip")
    assert result.table.loc[3, "age"] == 120


def test_isolation_forest_recalls_planted_far_rows() -> None:
    rng = np.random.default_rng(1)
    n, planted = 500, np.arange(0, 500, 50)
    x = rng.normal(0, 1, (n, 4))
    x[planted] = rng.choice([-1, 1], (len(planted), 4)) * rng.uniform(5, 7, (len(planted), 4))
    table = pd.DataFrame(x, columns=list("abcd"))
    result = Outliers().run(
        table,
        Outliers.parse_params({"method": "isolation_forest", "contamination": 0.02}),
        ToolContext(seed=3),
    )
    flagged = {e["row"] for e in result.findings["rows"]}
    assert len(flagged & set(planted)) >= 8
    assert len(flagged) <= 12
    # set_missing blanks one cell per flagged row: the most extreme by robust z
    assert (result.table.isna().sum(axis=1) <= 1).all()
    assert result.table.isna().to_numpy().sum() == len(flagged)
    assert any(c.kind == "histogram" for c in result.charts)


def test_lof_flags_a_far_row() -> None:
    table = patients(300)
    table.loc[42, ["weight", "height"]] = [160.0, 120.0]
    result = run(table, method="lof", action="flag", contamination=0.01)
    assert 42 in {e["row"] for e in result.findings["rows"]}


def test_a_mostly_constant_column_is_skipped_not_flagged() -> None:
    table = patients()
    table["visits"] = 0
    table.loc[:5, "visits"] = 1
    result = run(table)
    assert "visits" not in result.findings["per_column"]
    assert any(s["column"] == "visits" for s in result.findings["skipped"])


def test_user_errors_name_the_column() -> None:
    table = patients(50)
    table["city"] = "Leeds"
    with pytest.raises(ValueError, match="'wieght'"):
        run(table, columns=["wieght"])
    with pytest.raises(ValueError, match="city"):
        run(table, columns=["city"])
    with pytest.raises(ValueError, match="needs ranges"):
        run(table, method="rules")
    with pytest.raises(ValueError, match="age"):
        run(table, method="rules", ranges={"age": [120, 0]})


def test_no_outliers_leaves_the_table_unchanged() -> None:
    table = patients()
    result = run(table)
    assert result.findings["flagged_cells"] == 0
    pd.testing.assert_frame_equal(result.table, table)
    assert result.table is not table


def test_iqr_spread_is_used_when_the_mad_is_zero() -> None:
    rng = np.random.default_rng(4)
    table = patients()
    visits = np.where(np.arange(len(table)) < 210, 5.0, rng.uniform(5, 15, len(table)))  # over half are 5
    visits[300] = 500.0
    table["visits"] = visits
    scale = robust_scale(table["visits"])
    assert scale.center == 5.0 and 2 < scale.spread < 6  # IQR / 1.349, not the zero MAD
    result = run(table, action="flag")
    assert result.findings["per_column"] == {"visits": 1}
    assert result.findings["rows"][0]["row"] == 300


def skewed_table(n: int = 2000, sigma: float = 0.75, seed: int = 5) -> pd.DataFrame:
    """A lognormal concentration (positive, long right tail, no faults), a symmetric change
    with negative values, and an id and a target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pid": np.arange(n),
            "conc": rng.lognormal(3.0, sigma, n),
            "delta": rng.normal(0.0, 10.0, n),
            "outcome": rng.normal(0, 1, n),
        }
    )


def test_a_clean_lognormal_column_is_judged_on_the_log_scale() -> None:
    table = skewed_table()
    result = run(table, action="flag")
    assert result.findings["per_column"].get("conc", 0) <= 0.005 * len(table)  # linear z flags ~2.5%
    assert result.findings["scales"] == {"conc": "log", "delta": "linear"}
    assert "log scale" in run(skewed_table(400, sigma=1.0), action="flag").summary


def test_unit_slips_in_a_lognormal_column_are_all_flagged() -> None:
    table = skewed_table()
    slips = np.random.default_rng(6).choice(len(table), 20, replace=False)
    table.loc[slips, "conc"] *= 1000
    result = run(table, action="flag")
    flagged = {e["row"] for e in result.findings["rows"] if e["column"] == "conc"}
    assert set(slips) <= flagged and len(flagged) <= len(slips) + 0.005 * len(table)
    reasons = {e["reason"] for e in result.findings["rows"] if e["column"] == "conc"}
    assert all("on the log scale" in r for r in reasons)
    assert result.findings["scales"]["conc"] == "log"


def test_symmetric_zero_or_negative_columns_keep_the_linear_scale() -> None:
    table = with_slips(patients())
    table["delta"] = np.random.default_rng(7).normal(0.0, 10.0, len(table))
    table["delta"] = table["delta"].where(table.index != 50, 5000.0)
    table["dose"] = np.random.default_rng(8).lognormal(1.0, 1.0, len(table))
    table.loc[0, "dose"] = 0.0  # not strictly positive: log is undefined, so linear
    result = run(table, action="flag")
    scales = result.findings["scales"]
    assert scales == {"weight": "linear", "height": "linear", "age": "linear", "delta": "linear", "dose": "linear"}
    reasons = {(e["row"], e["column"]): e["reason"] for e in result.findings["rows"]}
    assert "on the linear scale" in reasons[(50, "delta")]
    assert "on the linear scale" in reasons[(10, "weight")]


def test_log_scale_needs_a_clear_skew_and_enough_values() -> None:
    rng = np.random.default_rng(9)
    assert is_right_skewed(rng.lognormal(0, 0.5, 500))
    assert not is_right_skewed(rng.uniform(60, 90, 500))  # positive but symmetric
    assert not is_right_skewed(rng.normal(172, 8, 500))
    assert not is_right_skewed(-rng.lognormal(0, 1, 500))  # left-skewed, negative
    assert not is_right_skewed(rng.lognormal(0, 1, 10))  # too few values to judge
    lognormal = rng.lognormal(0, 1, 500)
    lognormal[:5] *= 1e6  # slips cannot change the decision (quantiles only)
    assert is_right_skewed(lognormal)


def test_clip_on_a_log_scale_column_uses_exp_of_the_log_bounds() -> None:
    table = skewed_table(500)
    table.loc[3, "conc"] = table["conc"].median() * 1000
    result = run(table, action="clip", threshold=5.0)
    logs = np.log(table["conc"])
    center = logs.median()
    spread = 1.4826 * (logs - center).abs().median()
    assert result.table.loc[3, "conc"] == pytest.approx(np.exp(center + 5.0 * spread))
    assert robust_scale(table["conc"], allow_log=True).bounds(5.0)[1] == pytest.approx(np.exp(center + 5 * spread))
    untouched = table.index.difference([3])
    pd.testing.assert_frame_equal(result.table.loc[untouched], table.loc[untouched], check_dtype=False)


def test_row_methods_pick_the_cell_by_its_scale_aware_z() -> None:
    """A legitimate high concentration has a larger linear z than the real fault in its row."""
    rng = np.random.default_rng(10)
    n = 500
    table = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n), "conc": rng.lognormal(0, 1, n)})
    table.loc[7, ["a", "b", "conc"]] = [8.0, -8.0, np.exp(2.5)]  # conc: linear z ~13, log z ~2.5
    result = Outliers().run(
        table, Outliers.parse_params({"method": "isolation_forest", "contamination": 0.01}), ToolContext(seed=0)
    )
    entry = next(e for e in result.findings["rows"] if e["row"] == 7)
    assert entry["column"] in ("a", "b") and "linear scale" in entry["reason"]
    assert result.table.loc[7, "conc"] == table.loc[7, "conc"]


def breast_cancer() -> pd.DataFrame:
    """569 real tumours, 30 measurements; most are positive and right-skewed, none is faulty."""
    return load_breast_cancer(as_frame=True).data


def test_few_flags_on_the_clean_breast_cancer_table() -> None:
    table = breast_cancer()
    result = Outliers().run(table, Outliers.parse_params({"action": "flag"}), ToolContext())
    assert result.findings["flagged_cells"] <= 40  # 27 measured; the linear z alone flagged 197
    assert result.findings["scales"]["mean area"] == "log"
    assert result.findings["scales"]["mean concavity"] == "linear"  # it has zeros


def test_every_unit_slip_is_found_on_the_breast_cancer_table() -> None:
    table = breast_cancer()
    values = table.to_numpy()
    cells = np.flatnonzero(values.ravel() != 0)  # zero times 1000 is no slip
    slips = np.random.default_rng(11).choice(cells, int(0.03 * values.size), replace=False)
    truth = np.zeros(values.size, dtype=bool)
    truth[slips] = True
    slipped = values.ravel().copy()
    slipped[slips] *= 1000
    frame = pd.DataFrame(slipped.reshape(values.shape), columns=table.columns)
    result = Outliers().run(frame, Outliers.parse_params({"action": "set_missing"}), ToolContext())
    flagged = result.table.isna().to_numpy().ravel()
    assert flagged[truth].all()  # recall 100%
    assert (flagged & ~truth).sum() <= 30
