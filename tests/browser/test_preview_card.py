"""The approval card shows what a step would change before the person approves it, and approving commits that.

The tables are small and each has one fault, so the step under test is the session's first gate: two unit slips
in ``x0`` (``outliers``), 12% of the labels flipped (``label_issues``, which drops them on evidence), gaps in
``x1`` under a numeric target (``impute``; a numeric target has no label step before it).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pandas as pd
from playwright.sync_api import Locator, Page, expect
from sklearn.datasets import make_classification

from tests.api.conftest import Server, csv_bytes, get_session, step_by_id, upload, wait_for_gate
from tests.browser.conftest import screenshot

TIMEOUT = 60_000
ROWS = 300
SLIPS = {7: 250.0, 40: -300.0}  # row label: a value of x0 far beyond its bulk
GAPS = 30


def patients(*, slips: bool = False, flips: float = 0.0, gaps: bool = False, numeric_target: bool = False) -> bytes:
    """Six numeric features, an id and a target: ``status`` (sick/well), or ``risk``, a number."""
    x, y = make_classification(n_samples=ROWS, n_features=6, n_informative=4, class_sep=2.0, flip_y=0, random_state=1)
    table = pd.DataFrame(x.round(3), columns=[f"x{i}" for i in range(6)])
    table.insert(0, "patient", [f"P{i:04d}" for i in range(ROWS)])
    rng = np.random.default_rng(2)
    if numeric_target:
        table["risk"] = (2 * table["x2"] - table["x3"] + rng.normal(0, 0.5, ROWS)).round(3)
    else:
        status = np.where(y == 1, "sick", "well")
        flipped = rng.choice(ROWS, int(flips * ROWS), replace=False)
        status[flipped] = np.where(status[flipped] == "sick", "well", "sick")
        table["status"] = status
    if slips:
        table.loc[list(SLIPS), "x0"] = list(SLIPS.values())
    if gaps:
        table.loc[rng.choice(ROWS, GAPS, replace=False), "x1"] = np.nan
    return csv_bytes(table)


def first_gate(api: httpx.Client, content: bytes, tool: str, target: str = "status") -> dict[str, Any]:
    """A new session (policy "mutating") at its first gate, which is ``tool``'s."""
    created = upload(api, content, target=target, filename="patients.csv", policy="mutating")
    assert created.status_code == 201, created.text
    session = wait_for_gate(api, created.json()["id"], timeout=120)
    assert session["pending_step"]["tool"] == tool, session["pending_step"]
    assert session["pending_step"]["preview"] is not None, session["pending_step"]
    return session


def open_card(page: Page, server: Server, session: dict[str, Any]) -> Locator:
    page.goto(f"{server.base_url}/#/s/{session['id']}")
    card = page.locator("section.approval")
    expect(card).to_have_attribute("data-proposal", session["pending_step"]["proposal"], timeout=TIMEOUT)
    return card


def shown_counts(card: Locator) -> tuple[int, int, int, int]:
    """Rows and columns before and after, as the card's line of counts says them."""
    counts = card.locator(".preview-counts").inner_text()
    rows = re.search(r"Rows: (\d+) → (\d+)", counts)
    columns = re.search(r"Columns: (\d+) → (\d+)", counts)
    assert rows and columns, counts
    return int(rows[1]), int(rows[2]), int(columns[1]), int(columns[2])


def approve_and_check_the_data_pane(page: Page, card: Locator, version: str) -> None:
    """Approve what the card shows; the data pane then shows the rows × columns the preview said."""
    _, rows, _, columns = shown_counts(card)
    with page.expect_response(lambda r: r.url.endswith("/approve")) as answered:
        card.get_by_role("button", name=re.compile("^Approve")).click()
    assert answered.value.status == 200, answered.value.text()
    data = page.locator(".data-pane")
    expect(data).not_to_contain_text(f"Version {version}:", timeout=TIMEOUT)
    expect(data).to_contain_text(f"{rows} rows × {columns} columns", timeout=TIMEOUT)


def test_a_label_issues_card_shows_the_rows_to_drop_with_their_labels(
    page: Page, server: Server, api: httpx.Client
) -> None:
    session = first_gate(api, patients(flips=0.12), "label_issues")
    card = open_card(page, server, session)
    if session["pending_step"]["params"]["action"] != "drop":
        card.locator("#param-action").select_option("drop")
        card.get_by_role("button", name=re.compile("^Preview with these parameters")).click()
        expect(card).not_to_have_attribute("data-proposal", session["pending_step"]["proposal"], timeout=TIMEOUT)

    dropped = card.locator(".dropped-rows")
    heading = dropped.locator("h4").inner_text(timeout=TIMEOUT)
    said = re.search(r"Rows dropped \((\d+)\)", heading)
    assert said, heading
    total = int(said[1])
    before, after, _, _ = shown_counts(card)
    assert total > 20 and after == before - total, (heading, before, after)
    # The evidence comes first and is set apart; each dropped row's given label is its status, the suggestion another.
    headers = dropped.locator("thead tr").nth(1).locator("th")
    assert headers.all_inner_texts()[:2] == ["given", "suggested"]
    expect(dropped.locator("thead th.evidence", has_text="given")).to_have_count(1)
    names = ["row", *headers.all_inner_texts()]
    rows = dropped.locator("tbody tr")
    expect(rows).to_have_count(20)
    for row in rows.all():
        cells = dict(zip(names, row.locator("th, td").all_inner_texts(), strict=True))
        assert cells["given"] == cells["status"] and cells["suggested"] in {"sick", "well"} - {cells["given"]}, cells
    screenshot(page, "preview_label_issues")

    # The next page comes from the server: the rows after the first 20.
    first = rows.first.locator("th").inner_text()
    dropped.get_by_role("button", name="Next").click()
    expect(dropped.locator(".page")).to_have_text(f"21–{total} of {total}", timeout=TIMEOUT)
    expect(rows).to_have_count(total - 20)
    assert first not in rows.locator("th").all_inner_texts()
    dropped.get_by_role("button", name="Previous").click()
    expect(rows.first.locator("th")).to_have_text(first, timeout=TIMEOUT)

    approve_and_check_the_data_pane(page, card, session["version"])
    step = step_by_id(get_session(api, session["id"]), session["pending_step"]["id"])
    assert step["status"] == "done" and step["metrics"]["dropped"] == total, step


def test_an_impute_card_shows_the_changed_cells_highlighted(page: Page, server: Server, api: httpx.Client) -> None:
    session = first_gate(api, patients(gaps=True, numeric_target=True), "impute", target="risk")
    card = open_card(page, server, session)
    cells = card.locator(".changed-cells")
    expect(cells.locator("h4")).to_contain_text("Cells changed", timeout=TIMEOUT)
    per_column = cells.locator("table.changed-columns tbody tr", has=page.locator("th", has_text=re.compile("^x1$")))
    filled = int(per_column.locator("td").first.inner_text())
    assert filled == GAPS, filled
    # Each changed cell is highlighted, what was there struck out (a gap), what comes inserted (a number).
    changed = cells.locator("table.cells td.changed")
    expect(changed.first).to_be_visible()
    for cell in changed.all()[:10]:
        assert cell.locator("del").inner_text() == "missing"
        assert re.fullmatch(r"-?\d+(\.\d+)?", cell.locator("ins").inner_text()), cell.inner_text()
    screenshot(page, "preview_impute")

    # One column's changed cells, paged from the server.
    cells.get_by_role("button", name="Show the changed cells of x1").click()
    expect(cells.locator("table.cells caption")).to_have_text(f"Changed cells of x1 ({filled})", timeout=TIMEOUT)
    columns = cells.locator("table.cells tbody tr td:nth-of-type(1)")
    expect(columns).to_have_count(filled)
    assert set(columns.all_inner_texts()) == {"x1"}

    approve_and_check_the_data_pane(page, card, session["version"])


def test_an_outliers_card_shows_a_before_after_histogram(page: Page, server: Server, api: httpx.Client) -> None:
    session = first_gate(api, patients(slips=True), "outliers")
    card = open_card(page, server, session)
    figure = card.locator("figure", has=page.locator("figcaption", has_text="x0"))
    expect(figure.locator("figcaption")).to_have_text("x0: values before and after", timeout=TIMEOUT)
    chart = figure.locator("svg[role=img]")
    label = chart.get_attribute("aria-label") or ""
    assert label.startswith("Histogram of x0 before and after"), label
    # The two slips lay beyond the bins after the step: one bar below and one above, before only.
    assert "below" in label and "above" in label and "1 before, 0 after" in label, label
    before = re.search(r"before ([\d, ]+);", label)
    assert before, label
    bins = len(before[1].split(","))
    expect(chart.locator(".bars rect.before:not(.outside)")).to_have_count(bins)
    expect(chart.locator(".bars rect.after:not(.outside)")).to_have_count(bins)
    expect(chart.locator(".bars rect.outside")).to_have_count(4)
    expect(chart.locator(".legend text", has_text=re.compile("^before$"))).to_have_count(1)
    expect(chart.locator(".legend text", has_text=re.compile("^after$"))).to_have_count(1)
    # And the cells themselves: each slip becomes a gap.
    changed = card.locator(".changed-cells table.cells td.changed")
    expect(changed).to_have_count(len(SLIPS))
    assert sorted(changed.locator("del").all_inner_texts()) == sorted(f"{v:g}" for v in SLIPS.values())
    screenshot(page, "preview_outliers")

    approve_and_check_the_data_pane(page, card, session["version"])


def test_editing_a_parameter_previews_it_as_a_new_proposal(page: Page, server: Server, api: httpx.Client) -> None:
    session = first_gate(api, patients(slips=True), "outliers")
    first = session["pending_step"]
    card = open_card(page, server, session)
    approve = card.get_by_role("button", name=re.compile("^Approve"))
    again = card.get_by_role("button", name=re.compile("^Preview with these parameters"))
    expect(again).to_be_hidden()

    # An edit: what is shown is no longer what would run, so Approve waits; back as it was, it is allowed again.
    card.locator("#param-action").select_option("drop")
    expect(approve).to_be_disabled()
    expect(again).to_be_visible()
    card.locator("#param-action").select_option(first["params"]["action"])
    expect(approve).to_be_enabled()
    expect(again).to_be_hidden()

    card.locator("#param-action").select_option("drop")
    page.evaluate("""() => {
      window.seenNotes = [];
      new MutationObserver(() => {
        const note = document.querySelector(".approval-slot .previewing");
        if (note) window.seenNotes.push(note.textContent.trim());
      }).observe(document.body, { childList: true, subtree: true });
    }""")
    with page.expect_response(lambda r: r.url.endswith("/preview")) as answered:
        again.click()
    assert answered.value.status == 200, answered.value.text()
    assert answered.value.request.post_data_json["params"]["action"] == "drop"
    expect(card).not_to_have_attribute("data-proposal", first["proposal"], timeout=TIMEOUT)
    assert f"Previewing step {first['id']}: outliers…" in page.evaluate("window.seenNotes")

    # The new card: its own proposal and preview, the edit in its form, and the slips' rows to be dropped (those
    # the step may drop: a row held out for scoring is kept).
    second = get_session(api, session["id"])["pending_step"]
    assert second["id"] == first["id"] and second["proposal"] != first["proposal"]
    expect(card).to_have_attribute("data-proposal", second["proposal"])
    expect(card.locator("#param-action")).to_have_value("drop")
    expect(approve).to_be_enabled()
    dropped = card.locator(".dropped-rows tbody th")
    expect(dropped).not_to_have_count(0)
    labels = [int(label) for label in dropped.all_inner_texts()]
    assert set(labels) <= set(SLIPS), labels
    assert shown_counts(card)[:2] == (ROWS, ROWS - len(labels))
    screenshot(page, "preview_edited")
    with page.expect_request(lambda r: r.url.endswith("/approve")) as sent:
        approve_and_check_the_data_pane(page, card, session["version"])
    assert sent.value.post_data_json == {"proposal": second["proposal"], "preview": second["preview"]["id"]}
