"""Recognisers of personal data in one column, with evidence that quotes no cell.

Each recogniser reads a sample of a column's distinct non-missing cells (:data:`SAMPLE_DISTINCT` at most)
and the column's name and cardinality, and says whether the column is personal data and of which kind:

- ``email``: at least 80 % of the sampled cells are e-mail addresses (``email-validator``, syntax only).
- ``phone``: at least 80 % are phone numbers: 9 to 15 digits in a phone's shape that ``phonenumbers``
  (Google's libphonenumber) reads as a possible number, international (``+44 …``) or of one of
  :data:`REGIONS`. A column of bare digits (``5551234567``), as codes and record numbers are written,
  counts only when its name says phone.
- ``birth_date``: dates, at least 95 % of them 0 to 120 years before today, in a column whose name says
  birth (``dob``, ``birth_date``, ``DateOfBirth``).
- ``address``: at least 80 % of the cells are a house number followed by words (``12 Mill Road``,
  ``Flat 6 Thorpe Streets``), at least half of them distinct, and either the name says address or at
  least a quarter carry a street word, a flat or suite number, or a postcode.
- ``name``: 1 to 3 capitalised alphabetic tokens (hyphens and apostrophes allowed, titles such as
  ``Dr`` aside). With a name hint (``first_name``, ``surname``, ``patient``): 80 % of the cells, and at
  least 10 distinct values that are 10 % of the cells (or 200 values). Without one: 90 % of the cells,
  at least 20 cells of which half are distinct, and most cells full names of 2 or 3 tokens. A column whose
  name says place or thing (``city``, ``species``, ``drug_name``) is never names.
- ``free_text_with_pii``: text (3 words a cell on average) of which at least 5 % of the cells hold an
  e-mail address or a phone number. Names inside free text are not found: that takes a language model.

A name hint alone never suffices: the cells must agree. Examples in the evidence are masked
(``j***@e***.com``, ``+44 *** *** *862``), because evidence may reach an LLM's prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

Kind = str  # one of KINDS
KINDS = ("name", "email", "phone", "address", "birth_date", "free_text_with_pii")
SAMPLE_DISTINCT = 500
REGIONS = ("US", "GB")
PHONE_DIGITS = (9, 15)

#: An e-mail address inside text (the scrubber's pattern; ``email-validator`` confirms a match).
EMAIL_PATTERN = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
#: A phone number inside text: an optional ``+CC``/``00CC`` and ``(0)``, an optional area code in brackets,
#: groups of digits split by spaces, dots or hyphens, an optional extension. Only a match of
#: :data:`PHONE_DIGITS` digits (extension aside) that is not an ISO date counts.
PHONE_PATTERN = (
    r"(?<![\w+])(?:(?:\+|00)\d{1,3}[\s.-]?)?(?:\(0\)\s?)?(?:\(\d{1,5}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{1,5}){0,5}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?!\w)"
)
EXTENSION_PATTERN = r"\s?(?:x|ext\.?)\s?\d{1,6}$"
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}(?!\d)|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$"
#: What ``personal_data`` writes for a pseudonymised cell: ``p_`` and 16 hex digits of a keyed hash.
PSEUDONYM_PATTERN = r"p_[0-9a-f]{16}"
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)
_EXTENSION = re.compile(EXTENSION_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_PHONE_CELL = re.compile(r"[+\d\s().\-x]*(?:ext\.?\s?\d+)?")
_TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "jr", "sr", "ii", "iii", "iv",
           "md", "dds", "phd", "dvm"}  # fmt: skip
_NAME_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?,?")
_HOUSE = re.compile(r"(?:^|\s)\d{1,5}[A-Za-z]?,?\s+[A-Z][\w'’.-]*(?:\s+[A-Za-z][\w'’.-]*){0,5}")
_STREET_WORD = re.compile(
    r"\b(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|place|pl|boulevard|blvd|way|terrace|close|"
    r"crescent|square|sq|gardens|grove|hill|park|parkway|circle|row|walk|highway|hwy|mews|view|trail|plaza|"
    r"alley|flat|apt|apartment|suite|unit|studio|floor)s?\b\.?",
    re.IGNORECASE,
)
_POSTCODE = re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")

_HINTS: dict[str, set[str]] = {
    "name": {"name", "names", "surname", "forename", "firstname", "lastname", "fullname", "patient", "given"},
    "email": {"email", "mail", "emailaddress"},
    "phone": {"phone", "telephone", "tel", "mobile", "fax", "phonenumber", "cellphone"},
    "address": {"address", "addr", "street", "residence", "postal"},
    "birth_date": {"dob", "birth", "birthday", "birthdate", "born"},
}
#: Words that make a column a place or a thing, never a person's name.
_NOT_PERSON = {"city", "town", "country", "county", "state", "region", "species", "island", "site", "ward",
               "hospital", "clinic", "drug", "medication", "medicine", "product", "company", "file", "brand",
               "department", "diagnosis", "condition", "test", "study", "trial", "team", "organisation",
               "organization", "org", "street", "place", "unit", "breed", "category", "type", "class"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """A column recognised as personal data: its kind, the share of sampled cells that agree, masked
    examples and one sentence of evidence (no raw cell in any of them)."""

    kind: Kind
    share: float
    sampled: int
    examples: tuple[str, ...]
    hint: bool

    @property
    def evidence(self) -> str:
        what = _WHAT[self.kind]
        shown = ", ".join(repr(e) for e in self.examples)
        hint = "; the column's name agrees" if self.hint else ""
        return (f"Personal data ({self.kind}): {100 * self.share:.0f}% of {self.sampled} sampled distinct cells "
                f"{what}, e.g. {shown} (masked){hint}.")  # fmt: skip


_WHAT = {
    "name": "look like people's names",
    "email": "are e-mail addresses",
    "phone": "are phone numbers",
    "address": "look like street addresses",
    "birth_date": "are dates 0-120 years ago",
    "free_text_with_pii": "are text holding an e-mail address or a phone number",
}


def name_words(name: str) -> set[str]:
    """The lower-case words of a column name: ``DateOfBirth`` → {date, of, birth}; also the whole, unsplit."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.strip())
    words = {w for w in re.split(r"[\W_]+", spaced.lower()) if w}
    return words | {re.sub(r"[\W_]+", "", name.lower())}


def is_pseudonym_column(cells: pd.Series) -> bool:
    """Whether every cell is a pseudonym written by ``personal_data`` (then the column is an identifier)."""
    return bool(len(cells)) and bool(cells.astype("str").str.fullmatch(PSEUDONYM_PATTERN).all())


def hinted(name: str, kind: Kind) -> bool:
    words = name_words(name)
    if kind == "name" and words & _NOT_PERSON:
        return False
    if kind == "name" and "id" in words:  # patient_id names a record, not a person
        return False
    return bool(words & _HINTS.get(kind, set()))


def sample_distinct(values: pd.Series, size: int = SAMPLE_DISTINCT) -> list[str]:
    """Up to ``size`` distinct values as text, drawn deterministically."""
    distinct = pd.Series(pd.unique(values.dropna()))
    if len(distinct) > size:
        distinct = distinct.sample(size, random_state=0)
    return [str(v).strip() for v in distinct]


# --- one cell ----------------------------------------------------------------------------------------------


def is_email(cell: str) -> bool:
    if "@" not in cell or len(cell) > 254 or not _EMAIL.fullmatch(cell):
        return False
    try:
        validate_email(cell, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def phone_digits(text: str) -> int:
    return sum(c.isdigit() for c in _EXTENSION.sub("", text))


def is_phone(cell: str) -> bool:
    low, high = PHONE_DIGITS
    if not _PHONE_CELL.fullmatch(cell) or not low <= phone_digits(cell) <= high or _DATE.match(cell):
        return False
    for region in (None, *REGIONS) if cell.startswith(("+", "00")) else REGIONS:
        try:
            number = phonenumbers.parse(cell, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return True
    return False


def is_name(cell: str) -> int:
    """The number of name tokens (1-3) when ``cell`` reads as a person's name, titles aside; else 0."""
    tokens = cell.replace(",", " ").split()
    tokens = [t for t in tokens if t.rstrip(".").lower() not in _TITLES]
    if not 1 <= len(tokens) <= 3:
        return 0
    for token in tokens:
        if not _NAME_TOKEN.fullmatch(token) or not token[0].isupper():
            return 0
        if token.endswith(".") and len(token) > 2:  # an initial ("A.") may end in a dot, a word may not
            return 0
    return len(tokens)


def is_street(cell: str) -> bool:
    return bool(_HOUSE.search(" ".join(cell.split())))


def text_matches(text: str) -> list[tuple[str, str]]:
    """The e-mail addresses and phone numbers in ``text``, as (kind, match)."""
    found = [("email", m.group()) for m in _EMAIL.finditer(text) if is_email(m.group())]
    rest = _EMAIL.sub(" ", text)
    if sum(c.isdigit() for c in rest) >= PHONE_DIGITS[0]:
        found += [("phone", m.group()) for m in _PHONE.finditer(rest) if is_phone(m.group().strip())]
    return found


# --- masks -------------------------------------------------------------------------------------------------


def mask(kind: Kind, cell: str) -> str:
    """``cell`` with all but a hint of its shape hidden."""
    if kind == "email":
        return _mask_email(cell)
    if kind == "phone":
        return _mask_phone(cell)
    if kind == "birth_date":
        return re.sub(r"\d", "*", cell)[:20]
    if kind == "free_text_with_pii":
        found = text_matches(cell)
        return "… " + (mask(*found[0]) if found else "***") + " …"
    words = [re.sub(r"\d", "#", w) if any(c.isdigit() for c in w) else w[:1] + "***" for w in cell.split()]
    return " ".join(words[:6])


def _mask_email(cell: str) -> str:
    local, _, domain = cell.rpartition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}"


def _mask_phone(cell: str) -> str:
    prefix = re.match(r"\+\d{1,3}(?=[\s.(-])", cell)
    head = prefix.group() if prefix else ""
    body = cell[len(head) :]
    n = sum(c.isdigit() for c in body)
    masked, seen = [], 0
    for c in body:
        if c.isdigit():
            seen += 1
            masked.append(c if seen > n - 3 else "*")
        else:
            masked.append(c)
    return head + "".join(masked)


# --- one column --------------------------------------------------------------------------------------------


def recognise(
    name: str, cells: list[str], n_valid: int, n_unique: int, dates: pd.Series | None = None, bare_numbers: bool = False
) -> Finding | None:
    """Whether a column is personal data, from its name, a sample of its distinct cells (``cells``), its
    number of valid and distinct cells, and, for a date-like column, its dates as UTC timestamps.

    ``bare_numbers``: the column is stored as numbers (only a phone column named so can be one)."""
    if dates is not None:
        return _birth_dates(name, dates)
    if not cells:
        return None
    if bare_numbers:
        return _phones(name, cells) if hinted(name, "phone") else None
    return (
        _kind_of_cells(name, cells, "email", is_email)
        or _phones(name, cells)
        or _addresses(name, cells, n_valid, n_unique)
        or _names(name, cells, n_valid, n_unique)
        or _free_text(name, cells)
    )


def _finding(kind: Kind, name: str, cells: list[str], matched: list[str]) -> Finding:
    examples = tuple(mask(kind, c) for c in matched[:2])
    return Finding(kind, len(matched) / len(cells), len(cells), examples, hinted(name, kind))


def _kind_of_cells(name: str, cells: list[str], kind: Kind, test: Callable[[str], bool]) -> Finding | None:
    matched = [c for c in cells if test(c)]
    return _finding(kind, name, cells, matched) if len(matched) >= 0.8 * len(cells) else None


def _phones(name: str, cells: list[str]) -> Finding | None:
    found = _kind_of_cells(name, cells, "phone", is_phone)
    if found is None:
        return None
    bare = sum(c.isdigit() for c in cells) >= 0.5 * len(cells)
    return found if found.hint or not bare else None


def _birth_dates(name: str, dates: pd.Series) -> Finding | None:
    dates = dates.dropna()
    if not hinted(name, "birth_date") or not len(dates):
        return None
    today = pd.Timestamp(datetime.now(UTC))
    age = (today - dates).dt.days / 365.25
    plausible = age.between(0, 120)
    if plausible.mean() < 0.95:
        return None
    shown = [d.strftime("%Y-%m-%d") for d in dates[plausible].head(2)]
    return Finding("birth_date", float(plausible.mean()), len(dates), tuple(mask("birth_date", d) for d in shown),
                   True)  # fmt: skip


def _addresses(name: str, cells: list[str], n_valid: int, n_unique: int) -> Finding | None:
    if n_valid < 5 or n_unique < 0.5 * n_valid:
        return None
    streets = [c for c in cells if is_street(c)]
    if len(streets) < 0.8 * len(cells):
        return None
    marked = sum(bool(_STREET_WORD.search(c) or _POSTCODE.search(c)) for c in streets)
    if not hinted(name, "address") and marked < 0.25 * len(streets):
        return None
    return _finding("address", name, cells, streets)


def _names(name: str, cells: list[str], n_valid: int, n_unique: int) -> Finding | None:
    if name_words(name) & _NOT_PERSON:
        return None
    tokens = [(c, is_name(c)) for c in cells]
    named = [c for c, n in tokens if n]
    if hinted(name, "name"):
        enough = n_unique >= 10 and (n_unique >= 0.1 * n_valid or n_unique >= 200)
        ok = enough and len(named) >= 0.8 * len(cells)
    else:
        full = sum(1 for _, n in tokens if n >= 2)
        ok = n_valid >= 20 and n_unique >= 0.5 * n_valid and len(named) >= 0.9 * len(cells)
        ok = ok and full >= 0.8 * len(named)
    return _finding("name", name, cells, named) if ok else None


def _free_text(name: str, cells: list[str]) -> Finding | None:
    words = sum(len(c.split()) for c in cells) / len(cells)
    if words < 3:
        return None
    holding = [c for c in cells if text_matches(c)]
    if len(holding) < 0.05 * len(cells):
        return None
    return _finding("free_text_with_pii", name, cells, holding)
