"""All configuration, from ``COPILOT_*`` environment variables (or a ``.env`` file).

Settings fail closed: a value that is not valid (a policy spelt ``Always``, an unreadable token file)
stops start-up with a message naming the variable, never falls back to something that asks less.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import DirectoryPath, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from agents.llm import Share
from copilot.errors import CopilotError
from copilot.webhooks.urls import Target, parse_allow_list

#: Which steps wait for a person: every step, the steps that change data, or none. Exact, lower-case words.
Policy = Literal["always", "mutating", "never"]
#: ``COPILOT_*`` variables read elsewhere, not settings of this class.
OTHER_VARIABLES = frozenset({"COPILOT_FRONTEND_DIR", "COPILOT_SANDBOX_MAIN_PATH"})
#: Settings whose value is not repeated in an error message, since it may hold a password.
SECRET_FIELDS = frozenset({"database_url", "tokens"})


class SettingsError(CopilotError):
    """A ``COPILOT_*`` value that is not valid; the message names each variable and what it accepts."""


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "datacopilot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COPILOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Where versions and the store live.")
    max_file_mb: float = Field(500.0, gt=0, description="Largest input file accepted, in MiB.")
    max_rows: int = Field(5_000_000, gt=0, description="Most rows in one table.")
    max_columns: int = Field(2_000, gt=0, description="Most columns in one table.")
    min_rows: int = Field(10, ge=2, description="Fewest rows a table needs to be cleaned.")
    tool_memory_mb: int = Field(
        4096, ge=256, description="Address-space limit (RLIMIT_AS, virtual memory) of one tool run, in MiB."
    )
    tool_cpu_seconds: int = Field(600, ge=1, description="CPU-time limit (RLIMIT_CPU) of one tool run.")
    tool_wall_seconds: float = Field(900.0, gt=0, description="Wall-clock limit of one tool run.")
    tool_threads: int = Field(1, ge=1, le=256, description="OpenMP/BLAS threads of one tool run.")
    seed: int = Field(0, description="Seed handed to every tool; runs are reproducible.")
    holdout: float = Field(
        0.2,
        ge=0.0,
        le=0.5,
        description="Share of the labelled rows a new session sets aside, before any change, to score the "
        "cleaning on; row-level steps never touch them. 0: none (scores are cross-validated on the current rows).",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: a SQLite file in the data directory."
    )
    tokens: str = Field(
        "", description="Comma-separated bearer tokens; empty: no auth, and the server binds 127.0.0.1 only."
    )
    token_file: Path | None = Field(None, description="A file with one bearer token per line (added to tokens).")
    max_upload_mb: float = Field(200.0, gt=0, description="Largest upload accepted by the API, in MiB.")
    max_running_steps: int = Field(
        2,
        ge=1,
        description="Tool runs at once from this server across sessions; others queue. With the ray "
        "executor, up to the cluster's free CPUs.",
    )
    executor: Literal["local", "ray"] = Field(
        "local",
        description="Where tool calls run: local (sandboxed children of this server) or ray (one sandboxed task per "
        "call on the Ray cluster at COPILOT_RAY_ADDRESS). Exact, lower-case words.",
    )
    ray_address: str = Field(
        "",
        description="The Ray cluster of the ray executor: its head's HOST:PORT, or auto; empty: RAY_ADDRESS, else "
        "auto (the cluster started on this machine with `ray start --head`). Not ray://: Ray Client cannot stream.",
    )
    import_dir: DirectoryPath | None = Field(
        None, description="A folder whose files may be named (not uploaded) when creating a session."
    )
    policy: Policy = Field("mutating", description="Default approval policy: always, mutating or never.")
    sandbox: Literal["warn", "strict"] = Field(
        "warn",
        description="strict: run no tool where the kernel's isolation (namespaces, Landlock) is missing; "
        "warn: run with the audit hooks alone and say so at start-up and in each session.",
    )
    llm_model: str = Field(
        "",
        description="The model of the LLM agents; empty: the rule-based agents. The endpoint and key are the "
        "openai SDK's own OPENAI_BASE_URL and OPENAI_API_KEY.",
    )
    llm_share: Share = Field(
        "aggregates",
        description="The most a session may let an LLM see, least first: aggregates (counts and coarse statistics, "
        "no cell value), categories (also the text of common categories), samples (also a few rows, never "
        "identifiers, free text or dates). A session sees aggregates unless it asks for more.",
    )
    llm_max_calls: int = Field(60, ge=1, description="Most LLM calls per session; then the rule-based agents.")
    llm_max_tokens: int = Field(400_000, ge=1, description="Most LLM tokens per session; then the rule-based agents.")
    llm_timeout_s: float = Field(60.0, gt=0, description="Time-out of one LLM request, in seconds.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a timed-out, 429 or 5xx LLM request.")
    webhook_urls: str = Field(
        "",
        description="Comma-separated URL prefixes webhooks may be sent to (scheme, host, port and a path prefix, "
        "e.g. https://hooks.example.org/copilot/); empty: webhooks off. Checked again at each delivery.",
    )
    webhook_attempts: int = Field(6, ge=1, le=50, description="Most POSTs of one webhook delivery, the first included.")
    webhook_backoff_s: float = Field(
        2.0, gt=0, le=3600, description="Wait before a webhook's first retry, in seconds; doubled after each retry."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=300, description="Time-out of one webhook POST, in seconds.")

    @field_validator("data_dir")
    @classmethod
    def _folder_or_absent(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError("it exists and is not a folder")
        return value

    @field_validator("token_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        """A token file that cannot be read, or holds no token, would leave the server open to anyone local."""
        if value is not None:
            try:
                tokens = _file_tokens(value)
            except OSError as exc:
                raise ValueError(f"cannot read it ({exc.strerror})") from None
            except UnicodeDecodeError:
                raise ValueError("it is not UTF-8 text") from None
            if not tokens:
                raise ValueError("it holds no token (one a line; lines starting with # are comments)")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value:  # empty: the default store, as when unset
            try:
                make_url(value).get_dialect()
            except (ArgumentError, NoSuchModuleError, ValueError):
                raise ValueError("not an SQLAlchemy URL of a known database, e.g. postgresql://HOST/DB") from None
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_prefixes(cls, value: str) -> str:
        parse_allow_list(value)
        return value

    def webhook_prefixes(self) -> list[Target]:
        """The parsed entries of COPILOT_WEBHOOK_URLS; none: webhooks are off."""
        return parse_allow_list(self.webhook_urls)

    def token_list(self) -> list[str]:
        """Every configured token, from COPILOT_TOKENS and COPILOT_TOKEN_FILE."""
        tokens = [t.strip() for t in self.tokens.split(",") if t.strip()]
        return tokens + (_file_tokens(self.token_file) if self.token_file is not None else [])

    def ray_cluster(self) -> str:
        """The address the ray executor joins."""
        return self.ray_address or os.environ.get("RAY_ADDRESS") or "auto"

    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'copilot.db'}"


def _file_tokens(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def load_settings() -> Settings:
    """The settings in force; raises :class:`SettingsError`, naming every bad variable, rather than start.
    A ``COPILOT_*`` name that is no setting (``COPILOT_SANDBX=strict``) is refused too: ignored, a typo in a
    security setting would leave the default in force unseen."""
    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError("invalid settings:\n" + "\n".join(f"  {line}" for line in unknown))
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each ``COPILOT_*`` variable that names no setting, with the closest one."""
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    known = sorted({f"{prefix}{name}".upper() for name in Settings.model_fields} | OTHER_VARIABLES)
    lines = []
    for name in sorted(n for n in environ if n.upper().startswith(prefix) and n.upper() not in known):
        close = difflib.get_close_matches(name.upper(), known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name} is not a setting{hint} (unset it, or see `copilot doctor` for those in force)")
    return lines


def describe(error: ValidationError) -> str:
    """One line per bad value, naming its environment variable and what it accepts."""
    prefix = Settings.model_config.get("env_prefix", "")
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        variable = f"{prefix}{name}".upper()
        shown = "" if name in SECRET_FIELDS else f"={problem['input']!r}"
        reason = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}{shown} is not valid: {reason[:1].lower()}{reason[1:]}")
    return "invalid settings:\n" + "\n".join(f"  {line}" for line in lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
