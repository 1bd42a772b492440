"""All configuration, from ``COPILOT_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: a SQLite file in the data directory."
    )
    tokens: str = Field(
        "", description="Comma-separated bearer tokens; empty: no auth, and the server binds 127.0.0.1 only."
    )
    token_file: Path | None = Field(None, description="A file with one bearer token per line (added to tokens).")
    max_upload_mb: float = Field(200.0, gt=0, description="Largest upload accepted by the API, in MiB.")
    max_running_steps: int = Field(2, ge=1, description="Tool runs at once across sessions; others queue.")
    import_dir: Path | None = Field(
        None, description="A folder whose files may be named (not uploaded) when creating a session."
    )
    policy: str = Field("mutating", description="Default approval policy: always, mutating or never.")
    llm_model: str = Field(
        "",
        description="The model of the LLM agents; empty: the rule-based agents. The endpoint and key are the "
        "openai SDK's own OPENAI_BASE_URL and OPENAI_API_KEY.",
    )
    llm_share: Literal["aggregates", "samples"] = Field(
        "aggregates", description="What the LLM sees: aggregates only, or also a few rows (never identifiers)."
    )
    llm_max_calls: int = Field(60, ge=1, description="Most LLM calls per session; then the rule-based agents.")
    llm_max_tokens: int = Field(400_000, ge=1, description="Most LLM tokens per session; then the rule-based agents.")
    llm_timeout_s: float = Field(60.0, gt=0, description="Time-out of one LLM request, in seconds.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a timed-out, 429 or 5xx LLM request.")

    def token_list(self) -> list[str]:
        """Every configured token, from COPILOT_TOKENS and COPILOT_TOKEN_FILE."""
        tokens = [t.strip() for t in self.tokens.split(",") if t.strip()]
        if self.token_file is not None:
            lines = self.token_file.read_text(encoding="utf-8").splitlines()
            tokens += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return tokens

    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'copilot.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
