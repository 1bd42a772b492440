"""Bad files through the CLI and the API: a clear refusal naming the file and what to do, and nothing
half-made; awkward but valid files read correctly; exported CSV cannot run formulas in a spreadsheet."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.api.conftest import Server, get_session, upload, wait_for_gate
from tests.hostile.bad_files import ACCEPTED, FORMULAS, REFUSED, TARGET, AwkwardFile, BadFile
from tests.hostile.conftest import CliRunner, assert_versions_intact, files_under

REFUSED_IDS = [bad.name for bad in REFUSED]
ACCEPTED_IDS = [ok.name for ok in ACCEPTED]


def test_there_are_at_least_25_hostile_inputs() -> None:
    assert len(REFUSED) + len(ACCEPTED) >= 25
    assert len({f.name for f in (*REFUSED, *ACCEPTED)}) == len(REFUSED) + len(ACCEPTED)


# --- CLI ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", REFUSED, ids=REFUSED_IDS)
def test_cli_refuses_a_bad_file_naming_it(run_cli: CliRunner, tmp_path: Path, bad: BadFile) -> None:
    source, output = tmp_path / bad.name, tmp_path / "clean.csv"
    source.write_bytes(bad.make())
    done = run_cli("clean", str(source), "--target", bad.target, "--output", str(output), "--yes")
    assert done.code == 2, done.text
    assert f"error: {bad.name}:" in done.text and bad.words in done.text, done.text
    assert "Traceback" not in done.text
    assert not output.exists() and files_under(tmp_path / "data" / "versions") == []


@pytest.mark.parametrize("awkward", ACCEPTED, ids=ACCEPTED_IDS)
def test_cli_reads_an_awkward_file(run_cli: CliRunner, tmp_path: Path, awkward: AwkwardFile) -> None:
    source = tmp_path / awkward.name
    source.write_bytes(awkward.make())
    done = run_cli("clean", str(source), "--target", TARGET, "--output", str(tmp_path / "o.csv"), "--plan-only")
    assert done.code == 0, done.text
    assert "Plan" in done.text and "evaluate" in done.text


def test_exported_csv_cannot_run_formulas(run_cli: CliRunner, tmp_path: Path) -> None:
    """Text cells starting with = + - @ get a leading quote (OWASP); numbers, even negative, do not."""
    formulas = next(f for f in ACCEPTED if f.name == "formulas.csv")
    source, output = tmp_path / formulas.name, tmp_path / "clean.csv"
    source.write_bytes(formulas.make())
    done = run_cli("clean", str(source), "--target", TARGET, "--output", str(output), "--keep", "note", "--yes")
    assert done.code == 0, done.text
    cleaned = pd.read_csv(output, keep_default_na=False)
    notes = set(cleaned["note"])
    assert notes == {"'" + f for f in FORMULAS if f != "-3.5"} | {"-3.5"}, notes
    assert (cleaned["weight"] > 0).all() and pd.api.types.is_numeric_dtype(cleaned["weight"])
    for line in output.read_text().splitlines():
        assert not any(cell.startswith(("=", "+", "@")) for cell in line.split(",")), line


# --- API ----------------------------------------------------------------------------------------------------------


def _snapshot(hostile: Server, api: httpx.Client) -> tuple[list[str], int, list[Path]]:
    sessions = api.get("/api/sessions", params={"limit": 500})
    assert sessions.status_code == 200, sessions.text
    return [s["id"] for s in sessions.json()["items"]], assert_versions_intact(hostile.data_dir), \
        files_under(hostile.data_dir / "versions")  # fmt: skip


@pytest.mark.parametrize("bad", REFUSED, ids=REFUSED_IDS)
def test_api_refuses_a_bad_upload_naming_it(hostile: Server, api: httpx.Client, bad: BadFile) -> None:
    before = _snapshot(hostile, api)
    response = upload(api, bad.make(), target=bad.target, filename=bad.name)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert detail.startswith(f"{bad.name}:") and bad.words in detail, detail
    assert _snapshot(hostile, api) == before  # no session, no version, no blob
    assert files_under(hostile.data_dir / "uploads") == []


@pytest.mark.parametrize("awkward", ACCEPTED, ids=ACCEPTED_IDS)
def test_api_reads_an_awkward_upload(api: httpx.Client, awkward: AwkwardFile) -> None:
    response = upload(api, awkward.make(), filename=awkward.name, policy="always")
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]
    wait_for_gate(api, session_id)
    version = get_session(api, session_id)["version"]
    data = api.get(f"/api/sessions/{session_id}/versions/{version}/data?format=parquet")
    assert data.status_code == 200, data.text
    assert awkward.check(pd.read_parquet(io.BytesIO(data.content)))
    assert api.post(f"/api/sessions/{session_id}/stop").status_code == 200
