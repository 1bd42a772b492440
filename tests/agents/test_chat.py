"""The chat reader turns a message into a gate action, guidance changes or an answer from the profile."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from agents.chat import ChatReading, interpret
from agents.plan import Guidance
from tools.feature_types import profile_table

FRAME = pd.DataFrame(
    {
        "patient_id": [f"P{i:03d}" for i in range(12)],
        "age": [34, 51, None, 72, 45, 29, 60, None, 38, 51, 47, 47],
        "bmi": [22.5, 31.0, 27.4, 24.1, 35.2, 19.8, 28.0, 26.5, 30.1, 23.3, 25.0, 25.0],
        "sex": ["M", "F", "F", "M", "F", "M", "F", "M", "F", "M", "F", "F"],
        "Blood_Pressure": [120, 135, 128, 140, 118, 122, 150, 131, 127, 119, 133, 133],
        "readmitted": ["yes", "no", "no", "yes", "no", "no", "yes", "no", "no", "no", "yes", "yes"],
    }
)
PROFILE = profile_table(FRAME, target="readmitted", id_columns=["patient_id"], task="classification")


def read(text: str, guidance: Guidance | None = None) -> ChatReading:
    return interpret(text, guidance or Guidance(), PROFILE, "readmitted")


def has_number(text: str | None, value: float) -> bool:
    """Whether ``value`` is written in ``text`` as a whole number token (``47`` is not found in ``147``)."""
    shown = f"{value:g}"
    return text is not None and re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d]|\.\d)", text) is not None


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("approve", "approve"), ("Yes", "approve"), ("ok", "approve"), ("OK!", "approve"),
        ("go ahead", "approve"), ("Looks good.", "approve"), ("yes, go ahead please", "approve"),
        ("skip", "reject"), ("no", "reject"), ("Reject", "reject"), ("skip this step", "reject"),
        ("undo", "undo"), ("revert", "undo"), ("go back", "undo"), ("Undo the last step.", "undo"),
        ("stop", "stop"), ("quit", "stop"), ("That's enough.", "stop"), ("that’s enough", "stop"),
    ],
)  # fmt: skip
def test_a_message_that_is_only_a_gate_command_is_that_action(text: str, action: str) -> None:
    reading = read(text)
    assert (reading.action, reading.understood, reading.changes) == (action, True, [])
    assert reading.guidance == Guidance()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no rows should be dropped", Guidance(allow_row_drops=False)),
        ("No, don't drop rows.", Guidance(allow_row_drops=False)),
        ("ok, keep age", Guidance(keep_columns=["age"])),
        ("yes keep age", Guidance(keep_columns=["age"])),
        ("can you keep age?", Guidance(keep_columns=["age"])),
    ],
)
def test_gate_words_inside_an_instruction_are_guidance_not_an_action(text: str, expected: Guidance) -> None:
    reading = read(text)
    assert reading.action is None
    assert reading.guidance == expected


@pytest.mark.parametrize(
    "text",
    ["I approve of dropping age", "hello there", "keep going", "thanks!", "remove age", "drop rows with missing age",
     "undo it and then approve", ""],
)  # fmt: skip
def test_anything_else_is_not_understood_and_changes_nothing(text: str) -> None:
    before = Guidance(keep_columns=["bmi"], ranges={"age": (0, 120)})
    reading = read(text, before)
    assert (reading.action, reading.understood, reading.changes, reading.answer) == (None, False, [], None)
    assert reading.guidance == before


@pytest.mark.parametrize(
    "text",
    ["don't drop rows", "Never drop patients.", "Please do not remove any rows", "keep all rows", "dont drop any rows",
     "no rows should be dropped", "rows must not be dropped", "stop dropping rows", "you can't remove records"],
)  # fmt: skip
def test_row_drops_are_forbidden(text: str) -> None:
    reading = read(text)
    assert reading.guidance.allow_row_drops is False
    assert reading.changes == ["Rows will not be dropped."]


@pytest.mark.parametrize(
    "text",
    ["you may drop rows again", "Dropping rows is fine.", "rows can be dropped", "it's ok to drop rows",
     "feel free to remove rows"],
)  # fmt: skip
def test_row_drops_are_allowed_again(text: str) -> None:
    reading = read(text, Guidance(allow_row_drops=False))
    assert reading.guidance.allow_row_drops is True
    assert reading.changes == ["Rows may be dropped."]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("keep age", ["age"]), ("Keep column age", ["age"]), ("keep the `age` column", ["age"]),
        ("keep AGE", ["age"]), ('keep "sex"', ["sex"]), ("don't drop bmi", ["bmi"]),
        ("bmi is important", ["bmi"]), ("sex is very important for the model", ["sex"]),
        ("keep `Blood_Pressure`", ["Blood_Pressure"]), ("keep blood pressure", ["Blood_Pressure"]),
        ("keep age, bmi and sex", ["age", "bmi", "sex"]), ("age and bmi are important", ["age", "bmi"]),
    ],
)  # fmt: skip
def test_columns_to_keep(text: str, kept: list[str]) -> None:
    reading = read(text)
    assert reading.guidance.keep_columns == kept
    assert reading.changes == [f"`{c}` will be kept." for c in kept]


def test_a_column_already_kept_is_not_added_twice() -> None:
    reading = read("keep AGE", Guidance(keep_columns=["age"]))
    assert reading.guidance.keep_columns == ["age"]
    assert reading.changes == []
    assert reading.understood and "already kept" in (reading.answer or "")


@pytest.mark.parametrize(
    ("text", "column", "bounds"),
    [
        ("age must be between 0 and 120", "age", (0, 120)), ("age between 0 and 120", "age", (0, 120)),
        ("Age is 0..120.", "age", (0, 120)), ("age=0..", "age", (0, None)), ("0 <= age <= 120", "age", (0, 120)),
        ("age: 18–65 years", "age", (18, 65)), ("bmi in [10, 60]", "bmi", (10, 60)),
        ("age must be at most 120", "age", (None, 120)), ("age >= 0", "age", (0, None)),
        ("age can't be negative", "age", (0, None)), ("age should be positive", "age", (0, None)),
        ("bmi < 80", "bmi", (None, 80)), ("bmi<80", "bmi", (None, 80)),
        ("age over 120 is impossible", "age", (None, 120)), ("ages over 120 are impossible", "age", (None, 120)),
        ("bmi under 10 is impossible", "bmi", (10, None)), ("negative ages are impossible", "age", (0, None)),
        ("age must not exceed 120", "age", (None, 120)), ("the maximum age is 120", "age", (None, 120)),
        ("bmi between -5 and 2.5", "bmi", (-5, 2.5)), ("bmi must be at least -1.25", "bmi", (-1.25, None)),
        ("Blood_Pressure between 120 and 60", "Blood_Pressure", (60, 120)),
        ("blood pressure is at most 250", "Blood_Pressure", (None, 250)),
    ],
)  # fmt: skip
def test_valid_ranges(text: str, column: str, bounds: tuple[float | None, float | None]) -> None:
    reading = read(text)
    assert reading.guidance.ranges == {column: bounds}
    assert len(reading.changes) == 1 and f"`{column}`" in reading.changes[0]


def test_a_bound_on_one_side_keeps_the_bound_already_set_on_the_other() -> None:
    lower = read("age >= 0").guidance
    assert read("age <= 120", lower).guidance.ranges == {"age": (0, 120)}
    assert read("age must be at least 18", Guidance(ranges={"age": (0, 120)})).guidance.ranges == {"age": (18, 120)}
    both = read("age >= 0 and age <= 120")
    assert both.guidance.ranges == {"age": (0, 120)}
    assert both.changes == ["`age` must be at least 0.", "`age` must lie in 0..120."]


def test_a_bound_that_contradicts_the_other_side_is_refused() -> None:
    before = Guidance(ranges={"age": (0, 120)})
    reading = read("age must be at least 130", before)
    assert reading.guidance == before and reading.changes == []
    assert reading.understood and "0..120" in (reading.answer or "")


@pytest.mark.parametrize(
    ("text", "goal"),
    [
        ("The goal is to predict readmission within 30 days.", "predict readmission within 30 days"),
        ("I want to predict readmission", "predict readmission"),
        ("goal: find the patients at risk, and keep costs low", "find the patients at risk, and keep costs low"),
        ("we'd like to predict readmission. Keep age", "predict readmission"),
    ],
)
def test_the_goal_is_the_rest_of_the_sentence(text: str, goal: str) -> None:
    reading = read(text)
    assert reading.guidance.goal == goal
    assert f"The goal is now: {goal}." in reading.changes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Don't drop rows; keep age and bmi must be between 10 and 60",
         Guidance(allow_row_drops=False, keep_columns=["age"], ranges={"bmi": (10, 60)})),
        ("age must be between 0 and 120 and bmi below 80", Guidance(ranges={"age": (0, 120), "bmi": (None, 80)})),
        ("Keep sex.\nNever drop patients. The goal is to predict readmission",
         Guidance(keep_columns=["sex"], allow_row_drops=False, goal="predict readmission")),
        ("please keep bmi, thanks. age can't be negative!", Guidance(keep_columns=["bmi"], ranges={"age": (0, None)})),
    ],
)  # fmt: skip
def test_every_instruction_in_a_message_applies(text: str, expected: Guidance) -> None:
    reading = read(text)
    assert reading.guidance == expected
    assert reading.understood and reading.answer is None


@pytest.mark.parametrize(
    ("text", "unknown", "suggestion"),
    [
        ("keep agee", "agee", "age"), ("bmii must be below 80", "bmii", "bmi"), ("keep `Sexx`", "Sexx", "sex"),
        ("what is the median of agee?", "agee", "age"),
        ("what type is blood_presure?", "blood_presure", "Blood_Pressure"),
    ],
)  # fmt: skip
def test_a_column_not_in_the_table_changes_nothing_and_the_closest_are_named(
    text: str, unknown: str, suggestion: str
) -> None:
    reading = read(text)
    assert reading.understood and reading.guidance == Guidance() and reading.changes == []
    assert f"no column `{unknown}`" in (reading.answer or "")
    assert f"`{suggestion}`" in (reading.answer or "")


def test_a_column_not_in_the_table_does_not_stop_the_other_instructions() -> None:
    reading = read("keep weight and don't drop rows")
    assert reading.guidance == Guidance(allow_row_drops=False)
    assert "no column `weight`" in (reading.answer or "") and "`age`" in (reading.answer or "")


def test_the_guidance_given_is_not_mutated() -> None:
    before = Guidance(goal="g", keep_columns=["age"], ranges={"age": (0, None)})
    snapshot = before.model_dump()
    reading = read("keep bmi; age <= 120; don't drop rows; the goal is to predict readmission", before)
    assert before.model_dump() == snapshot
    assert reading.guidance is not before
    assert reading.guidance.ranges == {"age": (0, 120)} and reading.guidance.keep_columns == ["age", "bmi"]


AGE = FRAME["age"].dropna()
PRESSURE = FRAME["Blood_Pressure"]
CLASSES = FRAME["readmitted"].value_counts()


@pytest.mark.parametrize(
    ("question", "numbers"),
    [
        ("How many rows are there?", [len(FRAME)]),
        ("how many missing values in age?", [FRAME["age"].isna().sum()]),
        ("Is `age` missing a lot?", [FRAME["age"].isna().sum()]),
        ("how many missing values?", [FRAME.isna().sum().sum()]),
        ("what is the max of bmi?", [FRAME["bmi"].max()]),
        ("What's the median of age", [AGE.median()]),
        ("what is the mean of age?", [round(AGE.mean(), 4)]),
        ("what is the range of blood pressure?", [PRESSURE.min(), PRESSURE.max()]),
        ("how many duplicates are there?", [FRAME.drop(columns="patient_id").duplicated().sum()]),
        ("What is the class balance?", [CLASSES["yes"], CLASSES["no"]]),
        ("what values does sex take?", list(FRAME["sex"].value_counts())),
        ("could you tell me the minimum of age and of bmi", [AGE.min(), FRAME["bmi"].min()]),
    ],
)  # fmt: skip
def test_questions_are_answered_with_the_numbers_of_the_table(question: str, numbers: list[float]) -> None:
    reading = read(question)
    assert reading.understood and reading.guidance == Guidance() and reading.action is None
    for number in numbers:
        assert has_number(reading.answer, float(number)), (number, reading.answer)


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("what type is sex?", ["`sex`", "categorical"]),
        ("What columns are there?", [f"`{c}`" for c in FRAME.columns]),
        ("what is the target?", ["`readmitted`", "classification", "2 classes"]),
        ("how many labels are missing?", ["`readmitted`", "0 missing cells"]),
    ],
)
def test_questions_about_types_columns_and_target(question: str, words: list[str]) -> None:
    reading = read(question)
    assert reading.understood and reading.guidance == Guidance()
    for word in words:
        assert word in (reading.answer or ""), (word, reading.answer)


@pytest.mark.parametrize("question", ["what's the weather?", "why?", "tell me something interesting"])
def test_questions_the_rules_cannot_answer_are_not_understood(question: str) -> None:
    reading = read(question)
    assert not reading.understood and reading.answer is None and reading.guidance == Guidance()


def test_an_answer_quotes_no_cell_beyond_the_profile() -> None:
    answer = read("what values does patient_id take?").answer or ""
    assert "12 distinct" in answer and "P00" not in answer


def test_a_message_may_both_instruct_and_ask() -> None:
    reading = read("keep age and don't drop rows. What is the max of bmi?")
    assert reading.guidance == Guidance(keep_columns=["age"], allow_row_drops=False)
    assert has_number(reading.answer, float(FRAME["bmi"].max()))
