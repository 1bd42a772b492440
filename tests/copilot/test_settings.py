"""Settings fail closed: a value that is not one of the valid ones stops start-up, naming the variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from copilot.api.schemas import SessionOptions
from copilot.session.views import SessionView
from copilot.settings import Policy, Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No COPILOT_* variable or .env file of the machine running the tests."""
    for name in [n for n in os.environ if n.startswith("COPILOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize("value", ["Always", "ALWAYS", " always", "sometimes", ""])
def test_a_policy_that_is_not_exactly_a_valid_one_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(policy=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", get_args(Policy))
def test_the_valid_policies_are_taken(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_POLICY", value)
    assert load_settings().policy == value


def test_the_message_names_the_variable_the_value_and_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_POLICY", "Always")
    monkeypatch.setenv("COPILOT_MAX_ROWS", "many")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "COPILOT_POLICY='Always' is not valid" in message and "'always', 'mutating' or 'never'" in message
    assert "COPILOT_MAX_ROWS='many' is not valid" in message


def test_the_api_and_the_views_use_the_settings_policy() -> None:
    assert SessionView.model_fields["policy"].annotation is Policy
    assert SessionOptions.model_fields["policy"].annotation == Policy | None
    with pytest.raises(ValidationError):
        SessionOptions(target="y", policy="Always")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot read it (No such file or directory)"), ("# no token yet\n\n", "it holds no token"),
     (b"\xff\xfe", "it is not UTF-8 text")],
)  # fmt: skip
def test_a_token_file_that_gives_no_token_stops_start_up(
    content: str | bytes | None, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    monkeypatch.setenv("COPILOT_TOKEN_FILE", str(path))
    with pytest.raises(SettingsError, match="COPILOT_TOKEN_FILE") as raised:
        load_settings()
    assert words in str(raised.value)


def test_a_readable_token_file_adds_its_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tokens").write_text("# ops\nalpha\n\n  beta  \n")
    monkeypatch.setenv("COPILOT_TOKEN_FILE", str(tmp_path / "tokens"))
    monkeypatch.setenv("COPILOT_TOKENS", "gamma")
    assert load_settings().token_list() == ["gamma", "alpha", "beta"]


def test_a_database_url_that_names_no_known_database_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COPILOT_DATABASE_URL", "postgress://copilot:s3cret@db/copilot")
    with pytest.raises(SettingsError, match="COPILOT_DATABASE_URL is not valid") as raised:
        load_settings()
    assert "s3cret" not in str(raised.value)
    monkeypatch.setenv("COPILOT_DATABASE_URL", "")  # empty: the default SQLite store, as when unset
    assert load_settings().store_url().startswith("sqlite:///")


def test_folders_must_be_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_IMPORT_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="COPILOT_IMPORT_DIR="):
        load_settings()
    monkeypatch.delenv("COPILOT_IMPORT_DIR")
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "file"))
    with pytest.raises(SettingsError, match=r"COPILOT_DATA_DIR=.* it exists and is not a folder"):
        load_settings()


def test_a_misspelt_variable_stops_start_up_naming_the_closest_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_SANDBX", "strict")
    monkeypatch.setenv("COPILOT_POLCY", "always")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "COPILOT_SANDBX is not a setting; did you mean COPILOT_SANDBOX?" in message
    assert "COPILOT_POLCY is not a setting; did you mean COPILOT_POLICY?" in message
    monkeypatch.delenv("COPILOT_SANDBX")
    monkeypatch.delenv("COPILOT_POLCY")
    monkeypatch.setenv("COPILOT_SANDBOX", "strict")
    monkeypatch.setenv("COPILOT_FRONTEND_DIR", "/tmp")  # read by the API, not a setting of the class
    assert load_settings().sandbox == "strict"


@pytest.mark.parametrize("value", ["0.9", "-0.1", "a fifth"])
def test_a_holdout_share_out_of_range_or_not_a_number_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A mistyped share would leave sessions scored on the rows they clean, or on none; start-up refuses it."""
    monkeypatch.setenv("COPILOT_HOLDOUT", value)
    with pytest.raises(SettingsError, match="COPILOT_HOLDOUT"):
        load_settings()


@pytest.mark.parametrize("value", ["Ray", "remote", "ray://head:10001", ""])
def test_an_executor_that_is_not_one_of_the_two_stops_start_up(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped executor never falls back to another place to run tools: the address has its own setting."""
    monkeypatch.setenv("COPILOT_EXECUTOR", value)
    with pytest.raises(SettingsError, match="COPILOT_EXECUTOR") as raised:
        load_settings()
    assert "'local' or 'ray'" in str(raised.value)


def test_the_ray_address_comes_from_its_setting_then_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert load_settings().ray_cluster() == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert load_settings().ray_cluster() == "10.0.0.5:6379"
    monkeypatch.setenv("COPILOT_RAY_ADDRESS", "head:6379")
    assert load_settings().ray_cluster() == "head:6379"
