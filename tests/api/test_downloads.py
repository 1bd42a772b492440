"""Downloads of a finished session: versions as CSV and Parquet, the pipeline, its script, the report."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import messy_csv, mutating_tools, new_session, steps_of, versions, wait_for


@dataclass(frozen=True)
class Finished:
    session: dict[str, Any]
    versions: list[dict[str, Any]]
    upload: bytes


@pytest.fixture(scope="module")
def finished(api: httpx.Client) -> Finished:
    """A session on the messy table that ran every step without asking (policy ``never``)."""
    upload = messy_csv(seed=3)
    session_id = new_session(api, upload, policy="never")
    session = wait_for(api, session_id, timeout=120)
    assert session["state"] == "done", (session["error"], steps_of(session))
    return Finished(session, versions(api, session_id), upload)


def download(api: httpx.Client, finished: Finished, path: str) -> httpx.Response:
    response = api.get(f"/api/sessions/{finished.session['id']}/{path}")
    assert response.status_code == 200, (path, response.text)
    return response


def data(api: httpx.Client, finished: Finished, version: str, fmt: str) -> pd.DataFrame:
    body = download(api, finished, f"versions/{version}/data?format={fmt}").content
    return pd.read_csv(io.BytesIO(body)) if fmt == "csv" else pd.read_parquet(io.BytesIO(body))


def test_versions_form_a_chain_ending_at_the_current_one(api: httpx.Client, finished: Finished) -> None:
    chain = finished.versions
    assert chain[0]["parent"] is None and chain[0]["step_id"] is None
    assert [v["parent"] for v in chain[1:]] == [v["id"] for v in chain[:-1]]
    assert [v["id"] for v in chain if v["current"]] == [chain[-1]["id"]] == [finished.session["version"]]
    assert len({v["id"] for v in chain}) == len(chain)
    changed = [s for s in finished.session["plan"] if s["version"] is not None]
    assert {s["tool"] for s in changed} <= mutating_tools(api)
    made = [(s["id"], s["tool"], s["version"]) for s in changed]
    assert [(v["step_id"], v["tool"], v["id"]) for v in chain[1:]] == made


def test_every_version_downloads_with_its_shape(api: httpx.Client, finished: Finished) -> None:
    for version in finished.versions:
        table = data(api, finished, version["id"], "parquet")
        assert table.shape == (version["n_rows"], version["n_columns"]), version
    first = data(api, finished, finished.versions[0]["id"], "csv")
    pd.testing.assert_frame_equal(first, pd.read_csv(io.BytesIO(finished.upload)))


def test_csv_and_parquet_hold_the_same_table(api: httpx.Client, finished: Finished) -> None:
    last = finished.session["version"]
    as_csv, as_parquet = data(api, finished, last, "csv"), data(api, finished, last, "parquet")
    assert list(as_csv.columns) == list(as_parquet.columns)
    pd.testing.assert_frame_equal(as_csv, as_parquet.reset_index(drop=True), check_dtype=False, check_exact=False,
                                  rtol=1e-9)  # fmt: skip
    body = download(api, finished, f"versions/{last}/data?format=parquet").content
    assert pq.read_schema(io.BytesIO(body)).names == list(as_csv.columns), "readers other than pandas see these"
    assert "site" not in as_parquet.columns and as_parquet["age"].dtype.kind == "f"


def test_download_headers_and_bad_requests(api: httpx.Client, finished: Finished) -> None:
    last = finished.session["version"]
    csv = download(api, finished, f"versions/{last}/data?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert ".csv" in csv.headers.get("content-disposition", "")
    base = f"/api/sessions/{finished.session['id']}/versions"
    assert api.get(f"{base}/{last}/data?format=xlsx").status_code == 422
    missing = api.get(f"{base}/no-such-version/data?format=csv")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_a_version_of_another_session_is_404(api: httpx.Client, finished: Finished) -> None:
    other = new_session(api)
    response = api.get(f"/api/sessions/{other}/versions/{finished.session['version']}/data?format=csv")
    assert response.status_code == 404, response.text
    api.post(f"/api/sessions/{other}/stop")


def test_pipeline_spec_and_report_agree_with_the_session(api: httpx.Client, finished: Finished) -> None:
    spec = download(api, finished, "pipeline.json").json()
    assert spec["target"] == "outcome" and "record_id" in spec["id_columns"]
    changed = [v["tool"] for v in finished.versions[1:]]
    assert [step["tool"] for step in spec["steps"]] == changed
    report = download(api, finished, "report").json()
    assert [s["tool"] for s in report["steps"]] == [s["tool"] for s in finished.session["plan"]]
    assert {s["status"] for s in report["steps"]} == {"done"}
    assert report["score_after"] == pytest.approx(finished.session["score_after"])
    assert report["score_note"] == finished.session["score_note"]
    assert report["score_note"].startswith("Both scores are on the")  # the same held-out rows, before and after


def test_the_script_replays_the_cleaning_on_the_upload(api: httpx.Client, finished: Finished, tmp_path: Path) -> None:
    script = download(api, finished, "pipeline.py").text
    assert "import copilot" not in script and "from tools" not in script
    (tmp_path / "pipeline.py").write_text(script)
    (tmp_path / "upload.csv").write_bytes(finished.upload)
    subprocess.run([sys.executable, "pipeline.py", "upload.csv", "out.csv", "--train"], check=True, cwd=tmp_path,
                   env={"PATH": os.environ["PATH"]}, timeout=120)  # fmt: skip
    expected = data(api, finished, finished.session["version"], "csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), expected, check_exact=False, rtol=1e-9)
