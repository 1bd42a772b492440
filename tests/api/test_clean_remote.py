"""``copilot clean --server``: the command line as a client of a real ``copilot serve``.

The CLI runs in its own interpreter, answers come on its stdin, and what it did is read back from the
server over HTTP, as another service would see it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.api.conftest import (
    Server,
    free_port,
    get_session,
    messy_csv,
    mutating_tools,
    reject,
    wait_for_gate,
)
from tests.conftest import messy_table

RULES = ["--rule", "weight=0..200", "--keep", "site", "--no-row-drops"]
TOKEN_A, TOKEN_B = "alpha-token", "beta-token"
PROMPT = "approve / skip / edit / quit"


def start_clean(source: Path, output: Path, *args: str, folder: Path, server: str | None = None,
                env: dict[str, str] | None = None, input_text: str | None = "") -> subprocess.Popen[str]:  # fmt: skip
    """``copilot clean SOURCE -t outcome -o OUTPUT ARGS`` in a fresh interpreter, ``input_text`` on its stdin
    (None: left open, for the test to answer).

    Its data directory is ``folder/cli-data``: a remote run must never make it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    base |= {"COPILOT_DATA_DIR": str(folder / "cli-data"), "COLUMNS": "200"} | (env or {})
    command = [sys.executable, "-m", "copilot.cli", "clean", str(source), "-t", "outcome", "-o", str(output), *args]
    command += ["--server", server] if server else []
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=base)  # fmt: skip
    assert process.stdin is not None
    if input_text is not None:
        process.stdin.write(input_text)
        process.stdin.close()
    return process


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    assert process.stdout is not None and process.stderr is not None
    process.wait(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, process.stdout.read(), process.stderr.read())


def clean(source: Path, output: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return finish(start_clean(source, output, *args, **kwargs))


def session_id_of(stdout: str) -> str:
    """The session the run said it made."""
    match = re.search(r"session ([0-9a-f]{32}) on http", stdout)
    assert match, stdout
    return match[1]


def statuses(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["tool"], step["status"]) for step in session["plan"]]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(messy_csv())
    return path


def test_yes_writes_what_the_local_run_writes(server: Server, source: Path, tmp_path: Path) -> None:
    remote_out, local_out = tmp_path / "remote.csv", tmp_path / "local" / "local.csv"
    local_out.parent.mkdir()
    local = start_clean(source, local_out, "--yes", "--report", str(tmp_path / "local.json"), *RULES,
                        folder=tmp_path / "local")  # fmt: skip
    remote = clean(source, remote_out, "--yes", "--report", str(tmp_path / "remote.json"), *RULES,
                   folder=tmp_path, server=server.base_url)  # fmt: skip
    local_done = finish(local)
    assert remote.returncode == 0, remote.stderr
    assert local_done.returncode == 0, local_done.stderr
    assert not (tmp_path / "cli-data").exists()  # the engine never ran in the remote client's process
    pd.testing.assert_frame_equal(pd.read_csv(remote_out), pd.read_csv(local_out))

    ours, theirs = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("remote", "local"))
    assert [(s["tool"], s["status"], s["params"]) for s in ours["steps"]] == \
        [(s["tool"], s["status"], s["params"]) for s in theirs["steps"]]  # fmt: skip
    for key in ("rows_before", "rows_after", "columns_before", "columns_after", "score_before", "score_after",
                "warnings", "agents"):  # fmt: skip
        assert ours[key] == theirs[key], key
    held = {key: ours["guidance"][key] for key in ("ranges", "keep_columns", "allow_row_drops")}
    assert held == {"ranges": {"weight": [0.0, 200.0]}, "keep_columns": ["site"], "allow_row_drops": False}
    assert held == {key: theirs["guidance"][key] for key in held}
    assert "site" in pd.read_csv(remote_out).columns  # kept, as --keep asked

    spec, local_spec = (json.loads(p.with_suffix(".pipeline.json").read_text()) for p in (remote_out, local_out))
    assert {k: v for k, v in spec.items() if k != "created_at"} == \
        {k: v for k, v in local_spec.items() if k != "created_at"}  # fmt: skip
    compile(remote_out.with_suffix(".pipeline.py").read_text(), "remote.pipeline.py", "exec")
    assert f"wrote {remote_out}, {remote_out.with_suffix('.pipeline.json')}" in " ".join(remote.stdout.split())
    with server.client() as api:
        assert get_session(api, session_id_of(remote.stdout))["state"] == "done"


def test_answers_on_stdin_become_the_sessions_decisions(server: Server, source: Path, tmp_path: Path) -> None:
    # coerce_types: approve; drop_columns: edit to drop `note` instead of `site`, then approve the new
    # preview; the next change: skip; the rest: approve.
    answers = ["a", "e", '{"columns": ["note"]}', "a", "s", *["a"] * 8]
    done = clean(source, tmp_path / "out.csv", folder=tmp_path, server=server.base_url,
                 input_text="\n".join(answers) + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert text.index("would change: age") < text.index(PROMPT)  # shown, then asked
    assert text.index("removes columns: site") < text.index("removes columns: note")  # the proposal, then the edit

    with server.client() as api:
        session = get_session(api, session_id_of(done.stdout))
        mutating = mutating_tools(api)
        changes = [step for step in session["plan"] if step["tool"] in mutating]
    assert session["state"] == "done", statuses(session)
    assert statuses({"plan": changes[:2]}) == [("coerce_types", "done"), ("drop_columns", "done")]
    assert changes[1]["params"]["columns"] == ["note"]  # the edit, as previewed and approved
    assert (changes[2]["status"], changes[2]["error"]) == ("rejected", "skipped at the terminal")  # with its reason
    assert changes[3:] and all(step["status"] == "done" for step in changes[3:]), statuses(session)
    cleaned = pd.read_csv(tmp_path / "out.csv")
    assert "note" not in cleaned.columns and "site" in cleaned.columns


class Reader:
    """Everything a process writes on stdout, read as it comes (a prompt ends with no newline)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.stdout, self.chunks = process.stdout, list[str]()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk := self.stdout.read(1):
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def wait_for(self, words: str, times: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.text.count(words) < times:
            assert time.monotonic() < deadline, f"no {words!r} × {times} in:\n{self.text}"
            time.sleep(0.05)


def test_a_stale_approval_asks_about_what_waits_now(server: Server, source: Path, tmp_path: Path) -> None:
    """The browser rejects the step the terminal shows; the terminal's approval is then a 409, commits
    nothing, and the person is asked about the step that waits now."""
    process = start_clean(source, tmp_path / "out.csv", folder=tmp_path, server=server.base_url, input_text=None)
    assert process.stdin is not None
    out = Reader(process)
    out.wait_for(PROMPT)
    with server.client() as api:
        session_id = session_id_of(out.text)
        shown = get_session(api, session_id)["pending_step"]
        assert shown["tool"] == "coerce_types"
        assert reject(api, session_id, shown, "not now, from the browser").status_code == 200
        waiting = wait_for_gate(api, session_id)["pending_step"]
        process.stdin.write("a\n")  # approves what the terminal shows: coerce_types, no longer pending
        process.stdin.flush()
        out.wait_for(PROMPT, times=2)
        process.stdin.write("q\n")
        process.stdin.close()
        assert process.wait(timeout=60) == 0, out.text
        out.thread.join(timeout=10)
        session = get_session(api, session_id)
    text = " ".join(out.text.split())
    moved = text.index("the session moved on")
    assert text.index(f"{waiting['tool']} wants to change the data", moved) > moved  # shown after the 409
    coerce = next(step for step in session["plan"] if step["tool"] == "coerce_types")
    assert (coerce["status"], coerce["error"]) == ("rejected", "not now, from the browser")  # not approved after all
    assert session["state"] == "stopped" and all(s["status"] != "done" for s in session["plan"] if
                                                  s["tool"] != "evaluate"), statuses(session)  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(source))


def test_the_end_of_input_stops_without_approving(server: Server, source: Path, tmp_path: Path) -> None:
    done = clean(source, tmp_path / "out.csv", "--report", str(tmp_path / "r.json"), folder=tmp_path,
                 server=server.base_url)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "end of input: stopping without approving coerce_types" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    with server.client() as api:
        session = get_session(api, session_id_of(done.stdout))
    assert session["state"] == "stopped"
    assert statuses(session) == [("evaluate", "done"), ("coerce_types", "skipped")]  # read-only ran; no change did
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(source))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with two tokens, taking uploads of at most 50 KiB."""
    srv = Server(tmp_path_factory.mktemp("guarded"), f"{TOKEN_A},{TOKEN_B}", env={"COPILOT_MAX_UPLOAD_MB": "0.05"})
    srv.start()
    yield srv
    srv.terminate()


def test_a_missing_token_is_said(guarded: Server, source: Path, tmp_path: Path) -> None:
    done = clean(source, tmp_path / "out.csv", "--yes", folder=tmp_path, server=guarded.base_url)
    assert done.returncode == 1, done.stderr
    assert "the server needs a token: pass --token or set COPILOT_TOKEN" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and not (tmp_path / "out.csv").exists()


def test_the_session_belongs_to_the_token(guarded: Server, source: Path, tmp_path: Path) -> None:
    """The server and the token from the environment; --plan-only shows the server's first plan and stops."""
    env = {"COPILOT_SERVER": guarded.base_url, "COPILOT_TOKEN": TOKEN_A}
    done = clean(source, tmp_path / "out.csv", "--plan-only", folder=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "coerce_types" in done.stdout and "drop_columns" in done.stdout
    session_id = session_id_of(done.stdout)
    with guarded.client(TOKEN_A) as a:
        session = get_session(a, session_id)
        assert session["state"] == "stopped" and all(s["status"] != "done" for s in session["plan"] if
                                                      s["tool"] != "evaluate")  # fmt: skip
    with guarded.client(TOKEN_B) as b:
        assert b.get(f"/api/sessions/{session_id}").status_code == 404
    assert not (tmp_path / "out.csv").exists()


def test_an_upload_over_the_servers_limit_is_said(guarded: Server, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    messy_table(1500).to_csv(big, index=False)
    done = clean(big, tmp_path / "out.csv", "--yes", "--token", TOKEN_A, folder=tmp_path, server=guarded.base_url)
    assert done.returncode == 1, done.stderr
    assert "larger than the server's limit of 0.05 MiB" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_an_unreachable_server_is_said(source: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = clean(source, tmp_path / "out.csv", "--yes", folder=tmp_path, server=url)
    assert done.returncode == 1, done.stderr
    assert f"cannot reach {url}: is `copilot serve` running?" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]  # no output, not even a part of one


def test_what_the_api_cannot_carry_is_refused(server: Server, source: Path, tmp_path: Path) -> None:
    with server.client() as api:
        before = len(api.get("/api/sessions").json())
        done = clean(source, tmp_path / "out.csv", "--yes", "--step", "winsorize", folder=tmp_path,
                     server=server.base_url)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "--step cannot be sent to a server" in " ".join(done.stderr.split())
        assert len(api.get("/api/sessions").json()) == before  # refused before anything was sent

        done = clean(source, tmp_path / "out.csv", "--yes", "--rule", "agee=0..120", folder=tmp_path,
                     server=server.base_url)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "did not take --rule agee=0..120" in " ".join(done.stderr.split())
        session = get_session(api, session_id_of(done.stdout))
    assert session["state"] == "stopped" and ("coerce_types", "done") not in statuses(session)
    assert not (tmp_path / "out.csv").exists()
