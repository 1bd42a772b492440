"""The harmonise_categories card shows the mapping it found as spellings → categories, the person edits it in
place, the edit is previewed, and approving commits exactly the edited mapping."""

from __future__ import annotations

import io
import json
import re

import httpx
import numpy as np
import pandas as pd
from playwright.sync_api import Page, expect

from tests.api.conftest import Server, csv_bytes, get_session, step_by_id
from tests.browser.conftest import screenshot
from tests.browser.test_preview_card import TIMEOUT, first_gate, open_card

#: The seven spellings of two categories, with their cells.
SEVEN = {"Male": 40, "male": 25, "M": 6, "Female": 35, "female": 20, "F": 8, " f ": 3}


def spelled_table() -> bytes:
    sex = np.random.default_rng(0).permutation([v for v, n in SEVEN.items() for _ in range(n)])
    rng = np.random.default_rng(1)
    n = len(sex)
    frame = pd.DataFrame({"record": [f"R{i:05d}" for i in range(n)], "sex": sex,
                          "x0": rng.normal(0, 1, n).round(3), "x1": rng.normal(5, 2, n).round(3)})  # fmt: skip
    frame["status"] = np.where(frame["x0"] + rng.normal(0, 0.5, n) > 0, "sick", "well")
    return csv_bytes(frame)


def categories_of(api: httpx.Client, session_id: str, version: str) -> dict[str, int]:
    data = api.get(f"/api/sessions/{session_id}/versions/{version}/data")
    assert data.status_code == 200, data.text
    return pd.read_csv(io.StringIO(data.text))["sex"].value_counts().to_dict()


def test_the_person_edits_the_mapping_previews_it_and_approves_it(
    page: Page, server: Server, api: httpx.Client
) -> None:
    session = first_gate(api, spelled_table(), "harmonise_categories")
    found = session["pending_step"]["preview"]["mappings"]["sex"]
    assert {g["category"]: g["cells"] for g in found} == {"Male": 71, "Female": 66}
    card = open_card(page, server, session)
    editor = card.locator(".mapping-editor table[data-column='sex']")
    rows = editor.locator("tbody tr")
    expect(rows).to_have_count(len(SEVEN), timeout=TIMEOUT)
    shown = {r.locator("td").nth(0).inner_text(): r.locator("input").input_value() for r in rows.all()}
    assert shown == {'"Male"': "Male", '"male"': "Male", '"M"': "Male", '"Female"': "Female", '"female"': "Female",
                     '"F"': "Female", '" f "': "Female"}  # fmt: skip
    screenshot(page, "mapping_editor")

    # Keep 'M' apart (it is the code of another study arm here) and call the women 'female'.
    editor.get_by_label('sex: category for "M"', exact=True).fill("M")
    editor.get_by_label('sex: category for "Female"', exact=True).fill("female")
    assert json.loads(card.locator("#param-mapping").input_value()) == {"sex": {"M": "M", "Female": "female"}}
    approve = card.get_by_role("button", name=re.compile("^Approve"))
    expect(approve).to_be_disabled()
    card.get_by_role("button", name=re.compile("^Preview with these parameters")).click()
    proposal = session["pending_step"]["proposal"]
    expect(card).not_to_have_attribute("data-proposal", proposal, timeout=TIMEOUT)

    # The new preview gathers what the person said, and its editor starts from it.
    card = page.locator("section.approval")
    edited = get_session(api, session["id"])["pending_step"]
    assert edited["params"]["mapping"] == {"sex": {"M": "M", "Female": "female"}}
    assert {g["category"]: g["cells"] for g in edited["preview"]["mappings"]["sex"]} == {"Male": 65, "female": 66}
    renamed = card.locator(".mapping-editor").get_by_label('sex: category for "female"', exact=True)
    expect(renamed).to_have_value("female")
    with page.expect_response(lambda r: r.url.endswith("/approve")) as answered:
        card.get_by_role("button", name=re.compile("^Approve")).click()
    assert answered.value.status == 200, answered.value.text()

    step = step_by_id(get_session(api, session["id"]), session["pending_step"]["id"])
    assert step["status"] == "done" and step["params"]["mapping"] == {"sex": {"M": "M", "Female": "female"}}
    version = api.get(f"/api/sessions/{session['id']}/versions").json()["items"]
    current = next(v for v in version if v["current"])
    assert current["content_hash"] == edited["preview"]["content_hash"]
    assert categories_of(api, session["id"], current["id"]) == {"Male": 65, "female": 66, "M": 6}
