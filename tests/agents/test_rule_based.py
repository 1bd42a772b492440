"""The rule-based coordinator plans from the profile, honours guidance and re-plans."""

from __future__ import annotations

from typing import Any

from agents.plan import Guidance, Observation, RequestedStep
from agents.rule_based import PlanningState, RuleBasedCoordinator


def _col(kind: str, missing: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "missing": missing, "missing_pct": missing, "sentinels": [], "sentinel_count": 0,
            "numeric_as_text": False, "unit": None, **extra}  # fmt: skip


def _profile(**columns: dict[str, Any]) -> dict[str, Any]:
    return {"n_rows": 100, "n_columns": len(columns), "columns": columns, "duplicate_rows": 0,
            "target": {"column": "y", "task": "classification", "missing": 0}, "suggested_id_columns": []}  # fmt: skip


NUMERIC = {"min": 1.0, "q1": 40.0, "median": 50.0, "q3": 60.0, "max": 70.0, "mean": 50.0, "std": 10.0}
DIRTY = _profile(
    id=_col("identifier"),
    age=_col("numeric", 5, numeric_as_text=True, sentinels=["?"], sentinel_count=5, stats=NUMERIC),
    weight=_col("numeric", 10, stats={**NUMERIC, "max": 75000.0}),
    site=_col("constant"),
    y=_col("categorical"),
)


def _keys(state: PlanningState) -> list[str]:
    return [s.key for s in RuleBasedCoordinator().plan(state)]


def test_plan_covers_the_faults_in_order_with_reasons() -> None:
    state = PlanningState({**DIRTY, "duplicate_rows": 3}, "y", "classification", ["id"])
    plan = RuleBasedCoordinator().plan(state)
    assert [s.key for s in plan] == [
        "evaluate:baseline", "coerce_types", "drop_columns:useless", "duplicates", "leakage", "outliers",
        "label_issues", "impute", "evaluate:final",
    ]  # fmt: skip
    why = {s.key: s.rationale for s in plan}
    assert "`age` holds numbers stored as text" in why["coerce_types"] and "'?'" in why["coerce_types"]
    assert "`site` has a single value" in why["drop_columns:useless"]
    assert "3 row(s) repeat" in why["duplicates"]
    assert "`weight` reaches 75000" in why["outliers"]
    assert "`weight` is 10% missing" in why["impute"]
    assert next(s for s in plan if s.key == "drop_columns:useless").params == {"columns": ["site"]}
    labels = next(s for s in plan if s.key == "label_issues")
    assert labels.params == {"action": "drop", "model": "auto"}
    assert "before imputation" in labels.rationale


def test_clean_table_gets_only_diagnostics() -> None:
    clean = _profile(a=_col("numeric", stats=NUMERIC), y=_col("categorical"))
    keys = _keys(PlanningState(clean, "y", "regression", []))
    assert keys == ["evaluate:baseline", "leakage", "evaluate:final"]


def test_replans_from_history_and_new_profile() -> None:
    history = [Observation(key=k, tool=k.split(":")[0], status="done") for k in ("evaluate:baseline", "coerce_types")]
    leak = Observation(
        key="leakage",
        tool="leakage",
        status="done",
        findings={"suspects": [{"column": "weight", "score": 0.99, "metric": "roc_auc"}]},
    )
    keys = _keys(PlanningState(DIRTY, "y", "classification", ["id"], history=[*history, leak]))
    assert keys[:2] == ["drop_columns:useless", "drop_columns:leakage"]
    assert "coerce_types" not in keys and "leakage" not in keys
    failed = Observation(key="impute", tool="impute", status="failed")
    assert "impute" not in _keys(PlanningState(DIRTY, "y", "classification", ["id"], history=[failed]))


def test_guidance_is_honoured() -> None:
    guidance = Guidance(ranges={"age": (0, 120)}, keep_columns=["site"], allow_row_drops=False,
                        requested=[RequestedStep(tool="winsorize", params={"upper": 0.95})])  # fmt: skip
    state = PlanningState({**DIRTY, "duplicate_rows": 2}, "y", "classification", ["id"], guidance)
    plan = {s.key: s for s in RuleBasedCoordinator().plan(state)}
    assert "drop_columns:useless" not in plan  # `site` is kept
    assert plan["duplicates"].params["action"] == "flag"
    assert plan["label_issues"].params["action"] == "relabel"  # never drops rows
    assert "drop_uncertain" not in plan["label_issues"].params
    assert plan["outliers"].params["ranges"] == {"age": [0, 120]}
    assert "`age` must lie in 0..120" in plan["outliers"].rationale
    assert list(plan)[-2:] == ["requested:0:winsorize", "evaluate:final"]


def test_missing_target_rows_are_dropped_for_ml_readiness() -> None:
    profile = {**DIRTY, "target": {"column": "y", "missing": 4}}
    plan = {s.key: s for s in RuleBasedCoordinator().plan(PlanningState(profile, "y", "classification", []))}
    assert plan["drop_rows:missing_target"].params == {"missing_target": True}
    assert "4 row(s) have no value for the target" in plan["drop_rows:missing_target"].rationale


def test_spelling_variants_get_one_spelling_before_imputation_and_outliers() -> None:
    import numpy as np
    import pandas as pd

    from tools.feature_types import profile_table

    rng = np.random.default_rng(0)
    n = 140
    table = pd.DataFrame({
        "sex": rng.choice(["Male", "male", "M", "Female", "female", "F", " f "], n),
        "city": rng.choice(["Leeds", "York"], n),
        "weight": np.where(np.arange(n) % 10 == 0, np.nan, rng.normal(70, 5, n)),
        "y": rng.choice(["a", "b"], n),
    })  # fmt: skip

    def plan(frame: pd.DataFrame) -> list:
        profile = profile_table(frame, target="y", task="classification")
        return RuleBasedCoordinator().plan(PlanningState(profile, "y", "classification", []))

    steps = plan(table)
    keys = [s.key for s in steps]
    assert keys.index("harmonise_categories") < keys.index("impute")
    step = steps[keys.index("harmonise_categories")]
    assert step.params == {"columns": ["sex"]}
    assert "`sex` has 5 spelling(s)" in step.rationale and "city" not in step.rationale
    clean = table.assign(sex=table["sex"].str.strip().str[0].str.upper())
    assert "harmonise_categories" not in [s.key for s in plan(clean)]


def test_text_dates_are_parsed_then_turned_into_features() -> None:
    """A column of date text: coerce_types parses it, then date_features makes numbers of it; after both
    have run neither is proposed again, and a column the person keeps is left as a date."""
    import numpy as np
    import pandas as pd

    from tools.base import ToolContext
    from tools.coerce_types import CoerceTypes
    from tools.feature_types import profile_table

    rng = np.random.default_rng(0)
    n = 120
    days = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    table = pd.DataFrame({
        "visit": [d.strftime("%Y-%m-%d" if i % 2 else "%d %B %Y") for i, d in enumerate(days)],
        "weight": rng.normal(70, 5, n),
        "y": rng.choice(["a", "b"], n),
    })  # fmt: skip

    def plan(frame: pd.DataFrame, history: list[Observation] | None = None, **guidance: Any) -> list:
        profile = profile_table(frame, target="y", task="classification")
        state = PlanningState(profile, "y", "classification", [], Guidance(**guidance), history=history or [])
        return RuleBasedCoordinator().plan(state)

    steps = plan(table)
    keys = [s.key for s in steps]
    assert keys.index("coerce_types") < keys.index("date_features") < keys.index("leakage")
    assert "`visit` holds dates stored as text" in steps[keys.index("coerce_types")].rationale
    step = steps[keys.index("date_features")]
    assert step.params == {"columns": {"visit": "features"}}
    assert "`visit` holds dates" in step.rationale and "weight" not in step.rationale
    assert "_days_since" in step.expected

    parsed = CoerceTypes().run(table, CoerceTypes.parse_params({}), ToolContext(target="y")).table
    assert pd.api.types.is_datetime64_any_dtype(parsed["visit"])
    done = [Observation(key=k, tool=k, status="done") for k in ("evaluate:baseline", "coerce_types")]
    after = [s.key for s in plan(parsed, done)]
    assert after[0] == "date_features" and "coerce_types" not in after
    featurised = Observation(key="date_features", tool="date_features", status="done")
    assert "date_features" not in [s.key for s in plan(parsed, [*done, featurised])]
    kept = plan(parsed, done, keep_columns=["visit"])
    assert "date_features" not in [s.key for s in kept]


def test_personal_data_is_dropped_or_scrubbed_right_after_coercion_and_never_quoted() -> None:
    import pandas as pd
    from faker import Faker

    from tools.feature_types import profile_table

    Faker.seed(3)
    fake = Faker(["en_US", "en_GB"])
    n = 120
    emails = [fake.email() for _ in range(n)]
    table = pd.DataFrame({
        "patient_name": [fake.name() for _ in range(n)],
        "email": emails,
        "notes": [f"{fake.sentence()} Reach me at {emails[i]}." if i % 4 == 0 else fake.sentence() for i in range(n)],
        "age": [str(20 + i % 60) if i % 10 else "?" for i in range(n)],
        "city": [["Leeds", "York", "Hull"][i % 3] for i in range(n)],
        "y": [["a", "b"][i % 2] for i in range(n)],
    })  # fmt: skip

    def plan(frame: pd.DataFrame, guidance: Guidance | None = None) -> list:
        profile = profile_table(frame, target="y", task="classification")
        state = PlanningState(profile, "y", "classification", [], guidance=guidance or Guidance())
        return RuleBasedCoordinator().plan(state)

    steps = plan(table)
    keys = [s.key for s in steps]
    assert keys.index("coerce_types") < keys.index("personal_data") < keys.index("impute")
    step = steps[keys.index("personal_data")]
    assert step.tool == "personal_data" and step.params == {}
    assert "`patient_name` holds people's names" in step.rationale
    assert "`email` holds e-mail addresses" in step.rationale and "`notes`" in step.rationale
    assert "city" not in step.rationale and "age" not in step.rationale
    assert not any(e in step.rationale + step.expected for e in emails + list(table["patient_name"]))
    assert step.expected.startswith("2 column(s) fewer; [email] and [phone] in the text of 1 column(s)")

    kept = plan(table, Guidance(keep_columns=["email"]))
    step = next(s for s in kept if s.key == "personal_data")
    assert step.params == {"columns": {"email": "pseudonymise"}}, "a kept column stays, as a pseudonym"
    assert "personal_data" not in [s.key for s in plan(table[["age", "city", "y"]])]
