"""personal_data: people's names, e-mail addresses, phone numbers, street addresses and dates of birth are
recognised, never a feature, and dropped, pseudonymised or scrubbed.

What is personal data is decided by :mod:`tools.pii_rules` (the profile types such a column ``personal``):
from the cells (``phonenumbers``, Google's libphonenumber, for phone numbers; ``email-validator`` for
e-mail addresses; cell shapes for names and addresses), the column's name and its cardinality; a name
alone never suffices. Presidio is not used: it needs a spaCy model downloaded, and nothing here downloads.

What happens to a column, per ``columns`` (a column not named gets the default for its kind):

- ``drop`` (the default): the column goes, here and from new data;
- ``scrub`` (the default for free text): each e-mail address becomes ``[email]`` and each phone number
  ``[phone]``, by the regular expressions kept in ``fitted``;
- ``pseudonymise``: each value becomes ``p_`` and the first 16 hex digits of its HMAC-SHA256 under a key
  drawn at fit time (``secrets.token_hex(32)``) and kept in ``fitted``, so ``copilot apply`` gives the same
  person the same pseudonym; values are compared trimmed, case-folded, phone numbers by their digits. The
  column is then an identifier, never a feature. Whoever holds the key (it is in the exported pipeline)
  can test a guess of a value against its pseudonym: treat the pipeline file as a secret;
- ``keep``: left as it is (your call); it is still never a feature.

Missing cells stay missing. The summary and findings quote the masked evidence only, never a value.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from tools.base import Chart, Tool, ToolContext, ToolParams, ToolResult
from tools.column_facts import column_facts
from tools.feature_types import personal_finding
from tools.pii_rules import DATE_PATTERN, EMAIL_PATTERN, EXTENSION_PATTERN, PHONE_DIGITS, PHONE_PATTERN

Action = Literal["drop", "pseudonymise", "scrub", "keep"]
ACTIONS: tuple[str, ...] = ("drop", "pseudonymise", "scrub", "keep")
_DONE = {"drop": "dropped", "pseudonymise": "pseudonymised", "scrub": "scrubbed", "keep": "kept as it is"}


class PersonalDataParams(ToolParams):
    columns: dict[str, Action] = Field(
        default_factory=dict,
        description="What to do per column: drop, pseudonymise (a keyed hash, the same for the same person), "
        "scrub (e-mail addresses and phone numbers in text become [email] and [phone]) or keep. A recognised "
        "column not named here is dropped, free text scrubbed. A column not recognised may be named too.",
    )


def reapply_personal_data(table: pd.DataFrame, fitted: dict) -> pd.DataFrame:
    """Drop, pseudonymise or scrub the columns in ``fitted["columns"]`` (a copy is returned).

    A column absent from ``table`` is passed over. Pseudonyms are ``p_`` + 16 hex digits of the
    HMAC-SHA256 of the trimmed, case-folded value (a phone number's digits) under ``fitted["key"]``.
    Self-contained: its source is copied into the exported pipeline.
    """
    import hashlib
    import hmac
    import re

    import pandas as pd

    specs = fitted.get("columns", {})
    key = bytes.fromhex(fitted["key"]) if fitted.get("key") else b""
    email = re.compile(fitted["email_pattern"])
    phone = re.compile(fitted["phone_pattern"])
    extension, date = re.compile(fitted["extension_pattern"]), re.compile(fitted["date_pattern"])
    low, high = fitted["phone_digits"]

    def missing(value: object) -> bool:
        return value is None or (not isinstance(value, str) and bool(pd.isna(value)))

    def canonical(value: object, kind: str) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = " ".join(str(value).split()).casefold()
        if kind == "phone":
            return ("+" if text.startswith("+") else "") + re.sub(r"\D", "", extension.sub("", text))
        return text

    def pseudonym(value: object, kind: str) -> object:
        if missing(value):
            return value
        digest = hmac.new(key, canonical(value, kind).encode("utf-8"), hashlib.sha256).hexdigest()
        return "p_" + digest[:16]

    def is_phone(match: re.Match) -> str:
        found = match.group()
        digits = sum(c.isdigit() for c in extension.sub("", found))
        return "[phone]" if low <= digits <= high and not date.match(found) else found

    def scrub(value: object) -> object:
        if not isinstance(value, str):
            return value
        while email.search(value):  # each pass removes an "@", so this ends
            value = email.sub("[email]", value)
        return phone.sub(is_phone, value)

    out = table.copy()
    for name, spec in specs.items():
        if name not in out.columns or spec["action"] in ("drop", "keep"):
            continue
        col = out[name]
        if spec["action"] == "pseudonymise":
            mapped = col.map(lambda v, kind=spec["kind"]: pseudonym(v, kind)).astype(object)
        else:
            mapped = col.map(scrub)
        out[name] = mapped.astype(col.dtype) if isinstance(col.dtype, pd.StringDtype) else mapped
    return out.drop(columns=[c for c, s in specs.items() if s["action"] == "drop" and c in out.columns])


def recognised_columns(table: pd.DataFrame, ctx: ToolContext) -> dict[str, dict[str, Any]]:
    """Each column recognised as personal data (the target and declared identifiers aside), with its finding."""
    found = {}
    for name in map(str, table.columns):
        if name == ctx.target or name in ctx.id_columns:
            continue
        ctx.check_cancelled()
        finding = personal_finding(name, column_facts(table[name]))
        if finding is not None:
            found[name] = {"kind": finding.kind, "share": round(finding.share, 4),
                           "examples": list(finding.examples), "evidence": finding.evidence}  # fmt: skip
    return found


def choose_actions(
    table: pd.DataFrame, params: PersonalDataParams, ctx: ToolContext, found: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The action per column: the person's where given, else the default for the kind recognised."""
    unknown = sorted(set(params.columns) - set(map(str, table.columns)))
    if unknown:
        raise ValueError(
            f"personal_data: no column named {', '.join(map(repr, unknown))}; "
            f"the table has: {', '.join(map(str, table.columns))}"
        )
    if ctx.target in params.columns:
        raise ValueError(f"personal_data never changes the target {ctx.target!r}; remove it from `columns`")
    for name, action in params.columns.items():
        if name in ctx.id_columns and action in ("drop", "scrub"):
            raise ValueError(
                f"column {name!r} is declared an identifier: personal_data may pseudonymise or keep it, not {action} it"
            )
    chosen = {}
    for name in map(str, table.columns):
        if name not in found and name not in params.columns:
            continue
        info = found.get(name) or {"kind": "named", "share": None, "examples": [], "evidence": "Named by you."}
        default = "scrub" if info["kind"] == "free_text_with_pii" else "drop"
        chosen[name] = info | {"column": name, "action": params.columns.get(name, default)}
    return chosen


def summarise(actions: list[dict[str, Any]]) -> str:
    if not actions:
        return (
            "No column looks like personal data (names, e-mail addresses, phone numbers, addresses, dates of "
            "birth); nothing changed."
        )
    parts = [f"{a['column']} {_DONE[a['action']]} ({_why(a)})" for a in actions]
    return "Personal data: " + "; ".join(parts) + "."


def _why(action: dict[str, Any]) -> str:
    if action["share"] is None:
        return "named by you"
    shown = ", ".join(repr(e) for e in action["examples"])
    return f"{action['kind']}: {100 * action['share']:.0f}% of the sampled cells, e.g. {shown}, masked"


class PersonalData(Tool):
    name = "personal_data"
    description = (
        "Find personal data (people's names, e-mail addresses, phone numbers, street addresses, dates of "
        "birth, free text holding e-mail addresses or phone numbers) and drop it, pseudonymise it (a keyed "
        "hash, the same for the same person in new data) or scrub it out of text ([email], [phone]); by "
        "default recognised columns are dropped and free text scrubbed. Evidence is masked. Such columns "
        "are never model features. Re-applies to new data."
    )
    category = "schema"
    mutates = True
    Params = PersonalDataParams
    reapply = staticmethod(reapply_personal_data)

    def run(self, table: pd.DataFrame, params: PersonalDataParams, ctx: ToolContext) -> ToolResult:
        ctx.progress(0.0, "looking for personal data")
        chosen = choose_actions(table, params, ctx, recognised_columns(table, ctx))
        pseudonymised = any(a["action"] == "pseudonymise" for a in chosen.values())
        fitted: dict[str, Any] = {
            "columns": {c: {"action": a["action"], "kind": a["kind"]} for c, a in chosen.items()},
            "key": secrets.token_hex(32) if pseudonymised else None,
            "email_pattern": EMAIL_PATTERN,
            "phone_pattern": PHONE_PATTERN,
            "extension_pattern": EXTENSION_PATTERN,
            "date_pattern": DATE_PATTERN,
            "phone_digits": list(PHONE_DIGITS),
        }
        out = reapply_personal_data(table, fitted)
        actions = list(chosen.values())
        for a in actions:
            if a["action"] == "scrub":
                a["cells_changed"] = int((table[a["column"]].ne(out[a["column"]]) & table[a["column"]].notna()).sum())
        counts = {action: sum(a["action"] == action for a in actions) for action in ACTIONS}
        scrubbed = sum(a.get("cells_changed", 0) for a in actions)
        return ToolResult(
            summary=summarise(actions),
            table=out,
            findings={"columns": actions, "recognised": [a["column"] for a in actions if a["kind"] != "named"]},
            metrics={f"columns_{_DONE[k].split()[0]}": float(n) for k, n in counts.items()}
            | {"cells_scrubbed": float(scrubbed)},
            charts=_charts(actions),
            fitted=fitted,
        )


def _charts(actions: list[dict[str, Any]]) -> list[Chart]:
    shown = [a for a in actions if a["share"] is not None]
    if not shown:
        return []
    return [Chart("bar", "Sampled cells that look like personal data (%)", [a["column"] for a in shown],
                  [100.0 * a["share"] for a in shown], "column", "% of sampled cells")]  # fmt: skip
