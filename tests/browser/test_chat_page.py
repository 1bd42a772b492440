"""The chat page in Chromium: upload, plan, preview an edit and approve it, reject, reload, undo, download."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
from playwright.sync_api import Page, expect

from tests.api.conftest import Server, get_session, running_server, step_by_id, wait_for, wait_for_gate
from tests.browser.conftest import screenshot
from tests.conftest import messy_table

TIMEOUT = 60_000


def approval_title(page: Page) -> str:
    return page.locator("#approval-title").inner_text(timeout=TIMEOUT)


def session_id(page: Page) -> str:
    match = re.search(r"#/s/(\w+)$", page.url)
    assert match, page.url
    return match.group(1)


def test_upload_approve_reject_reload_undo_download(page: Page, server: Server, tmp_path: Path) -> None:
    table = tmp_path / "messy.csv"
    messy_table(150).to_csv(table, index=False)
    api = httpx.Client(base_url=server.base_url, timeout=30)

    page.goto(server.base_url)
    page.set_input_files("#file", table)
    expect(page.locator("select#target option")).to_have_count(8)
    page.select_option("select#target", "outcome")
    screenshot(page, "start")
    page.get_by_role("button", name="Start session").click()

    # The plan, and the first gate: coerce_types, whose schema override is edited in the form.
    expect(page.locator("#approval-title")).to_contain_text("coerce_types", timeout=TIMEOUT)
    expect(page.locator(".plan .step")).not_to_have_count(0)
    expect(page.locator("#conn")).to_have_text("Live")
    sid = session_id(page)
    coerce_id = get_session(api, sid)["pending_step"]["id"]
    screenshot(page, "approval")
    page.fill("#param-columns", '{"age": {"type": "numeric", "min": 0, "max": 110}}')
    # An edited form is previewed first (a new proposal, still coerce_types); what is approved is that preview.
    first_proposal = get_session(api, sid)["pending_step"]["proposal"]
    page.keyboard.press("Control+Enter")
    card = page.locator("section.approval")
    expect(card).not_to_have_attribute("data-proposal", first_proposal, timeout=TIMEOUT)
    expect(page.locator("#approval-title")).to_contain_text("coerce_types")
    expect(page.get_by_role("button", name=re.compile("^Approve"))).to_be_enabled()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#approval-title")).not_to_contain_text("coerce_types", timeout=TIMEOUT)
    coerce = step_by_id(wait_for_gate(api, sid), coerce_id)
    age = coerce["params"]["columns"]["age"]
    assert coerce["status"] == "done" and (age["type"], age["min"], age["max"]) == ("numeric", 0, 110), coerce
    coerced_version = coerce["version"]

    # Reject the next gate with a reason: the step shows as rejected and the coordinator moves on.
    rejected_id = get_session(api, sid)["pending_step"]["id"]
    page.keyboard.press("Escape")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("keep every column for now")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator(f'.step[data-step="{rejected_id}"] .badge')).to_have_text("rejected", timeout=TIMEOUT)
    session = wait_for_gate(api, sid)
    assert step_by_id(session, rejected_id)["status"] == "rejected"
    pending = session["pending_step"]
    expect(page.locator("#approval-title")).to_contain_text(f"step {pending['id']}: {pending['tool']}")

    # A reload finds the same session and the same pending step.
    page.reload()
    expect(page.locator("#approval-title")).to_contain_text(f"step {pending['id']}: {pending['tool']}",
                                                            timeout=TIMEOUT)  # fmt: skip
    assert session_id(page) == sid
    screenshot(page, "session")

    # Approve it as proposed, then undo back to the coerced version.
    page.get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.locator(f'.step[data-step="{pending["id"]}"] .badge')).to_have_text("done", timeout=TIMEOUT)
    assert wait_for(api, sid)["version"] != coerced_version
    page.get_by_role("button", name="Undo last change").click()
    expect(page.locator(".data-pane")).to_contain_text(f"Version {coerced_version}", timeout=TIMEOUT)
    assert wait_for(api, sid)["version"] == coerced_version
    screenshot(page, "after_undo")

    # The cleaned CSV of the current version: `age` is numeric, its '?' codes are gone.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "cleaned.csv"
    download.value.save_as(saved)
    cleaned = pd.read_csv(saved)
    assert pd.api.types.is_numeric_dtype(cleaned["age"]), cleaned["age"].head()
    assert "?" not in cleaned.astype(str).to_numpy()
    assert len(cleaned) == 150


def test_demo_button_starts_a_session(page: Page, server: Server) -> None:
    page.goto(server.base_url)
    page.get_by_role("button", name="Demo: breast cancer").click()
    expect(page.locator("h1")).to_contain_text("breast_cancer.csv → predict diagnosis", timeout=TIMEOUT)
    expect(page.locator("#approval-title")).to_be_visible(timeout=TIMEOUT)
    screenshot(page, "demo")


def test_token_is_asked_once_and_sent(page: Page, tmp_path: Path) -> None:
    with running_server(tmp_path, tokens="secret-token") as guarded:
        page.goto(guarded.base_url)  # the static page needs no token; the API calls do
        expect(page.locator("#token-dialog")).to_be_visible(timeout=TIMEOUT)
        page.fill("#token-input", "secret-token")
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Demo: breast cancer")).to_be_visible(timeout=TIMEOUT)
        assert page.evaluate("sessionStorage.getItem('copilot-token')") == "secret-token"


def test_a_rule_said_in_the_chat_shows_as_a_rule_and_changes_the_plan(page: Page, server: Server) -> None:
    api = httpx.Client(base_url=server.base_url, timeout=30)
    page.goto(server.base_url)
    page.set_input_files("#file", {"name": "patients.csv", "mimeType": "text/csv",
                                   "buffer": messy_table(150).to_csv(index=False).encode()})  # fmt: skip
    page.select_option("select#target", "outcome")
    page.get_by_role("button", name="Start session").click()
    expect(page.locator("#approval-title")).to_contain_text("coerce_types", timeout=TIMEOUT)
    expect(page.locator("#rules")).to_contain_text("none yet")
    page.fill("#chat-input", "never drop patients, and keep site")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#rules")).to_have_text("Rules: no row drops; keep site", timeout=TIMEOUT)
    expect(page.locator(".messages li.assistant")).to_contain_text("Rows will not be dropped.")
    screenshot(page, "chat_rules")
    plan = get_session(api, session_id(page))["plan"]
    assert not any(s["key"] == "drop_columns:useless" for s in plan)
    assert next(s for s in plan if s["tool"] == "label_issues")["params"]["action"] == "relabel"


def test_a_finished_session_shows_its_scores_and_why_they_differ_in_rows(page: Page, server: Server) -> None:
    api = httpx.Client(base_url=server.base_url, timeout=30)
    upload = {"file": ("patients.csv", messy_table(150).to_csv(index=False).encode(), "text/csv")}
    created = api.post("/api/sessions", files=upload, data={"target": "outcome", "policy": "never"})
    assert created.status_code == 201, created.text
    session = wait_for(api, created.json()["id"], timeout=180)
    assert session["state"] == "done" and session["score_note"], session["state"]
    page.goto(f"{server.base_url}/#/s/{session['id']}")
    expect(page.locator(".scores")).to_contain_text(f"Score before: {session['score_before']:.3f}", timeout=TIMEOUT)
    expect(page.locator(".score-note")).to_have_text(session["score_note"])
    screenshot(page, "finished")


def test_the_card_follows_the_proposal_and_an_unchanged_form_is_no_edit(page: Page, server: Server) -> None:
    api = httpx.Client(base_url=server.base_url, timeout=30)
    upload = {"file": ("patients.csv", messy_table(150).to_csv(index=False).encode(), "text/csv")}
    created = api.post("/api/sessions", files=upload, data={"target": "outcome"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    first = wait_for_gate(api, sid)["pending_step"]
    page.goto(f"{server.base_url}/#/s/{sid}")
    card = page.locator("section.approval")
    expect(card).to_have_attribute("data-proposal", first["proposal"], timeout=TIMEOUT)
    # Another tab (here: another client) says a rule: the plan is re-made and the proposal changes under the card.
    said = api.post(f"/api/sessions/{sid}/messages", json={"text": "never drop rows"})
    assert said.status_code == 201, said.text
    second = wait_for_gate(api, sid)["pending_step"]
    assert second["proposal"] != first["proposal"]
    expect(card).to_have_attribute("data-proposal", second["proposal"], timeout=TIMEOUT)
    with page.expect_response(lambda r: r.url.endswith("/approve")) as answered:
        page.get_by_role("button", name=re.compile("^Approve")).click()
    assert answered.value.status == 200
    body = answered.value.request.post_data_json
    assert body == {"proposal": second["proposal"], "preview": second["preview"]["id"]}, body  # what is on screen
    expect(card).not_to_have_attribute("data-proposal", second["proposal"], timeout=TIMEOUT)
    ran = step_by_id(wait_for_gate(api, sid), second["id"])
    assert ran["status"] == "done" and ran["params"] == second["params"]
    stale = api.post(f"/api/sessions/{sid}/steps/{first['id']}/approve", json={"proposal": first["proposal"]})
    assert stale.status_code == 409, stale.text
