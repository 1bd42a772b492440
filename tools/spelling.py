"""Which spellings of a category are the same category: the pure helpers behind ``harmonise_categories``.

Three methods, run in this order, each failing closed (when in doubt, values stay apart):

1. **Key collision** (OpenRefine's fingerprint): values with the same key are one group. The key is the
   value trimmed, lower-cased, folded to ASCII, punctuation removed, whitespace collapsed and its unique
   words sorted, so ``Male``, `` male `` and ``MALE.`` share the key ``male``. Unlike OpenRefine, the signs
   that change a category keep a word of their own (``+`` as ``plus``, ``<``, ``>``, a trailing ``-`` as
   ``minus``): blood groups ``O+`` and ``O-`` stay apart.
2. **Near misses** (only with ``near_miss``): a group joins a group at least ten times as frequent when
   their keys are at most two edits apart (insertions, deletions, substitutions, swaps of neighbours),
   their similarity (one minus edits over the longer length) reaches the threshold, both keys have at
   least four characters and the same digits, and no other such group is as close. Two frequent groups
   (``Leeds`` and ``Lees`` with similar counts) are never merged.
3. **Abbreviations**: a one-letter key joins the one other group whose key starts with that letter, when
   that key is a word of at least three letters (``m`` joins ``male``) or the usual long form of
   ``y``/``n``/``t``/``f`` (``yes``, ``no``, ``true``, ``false``). Letters are read as abbreviations only
   when every one-letter key of the column stands for exactly one group: in a column of grades ``A`` to
   ``F`` with a ``Fail``, no letter is an abbreviation.

A group's canonical spelling is its most frequent spelling as written among those of its own key, spaces
around it aside: an abbreviation or a misspelling is never chosen while the word is there (``F`` never
stands for ``female``), nor `` f `` while ``F`` is; ties go to the first in sort order.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

MAX_EDITS = 2
#: A group joins a near miss only when that one is this many times as frequent.
FREQUENCY_RATIO = 10
MIN_NEAR_MISS_LENGTH = 4
#: Near misses compare every pair of groups; beyond this many groups only keys and abbreviations are used.
MAX_NEAR_MISS_GROUPS = 1000
SHORT_FORMS = {"y": "yes", "n": "no", "t": "true", "f": "false"}

_SIGNS = ((re.compile(r"\+"), " plus "), (re.compile(r"<"), " lt "), (re.compile(r">"), " gt "))
_TRAILING_MINUS = re.compile(r"-(?=\s|$)")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_DIGITS = re.compile(r"\D")


def fingerprint(value: str) -> str:
    """OpenRefine's fingerprint key of ``value``, keeping the signs that change a category."""
    text = value.strip().lower()
    for sign, word in _SIGNS:
        text = sign.sub(word, text)
    text = _TRAILING_MINUS.sub(" minus ", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _PUNCTUATION.sub("", text)
    return " ".join(sorted(set(text.split())))


@dataclass
class Group:
    """Spellings that are one category: ``variants`` maps each spelling as written to its cells."""

    key: str
    variants: dict[str, int] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)  # spelling -> "key", "abbreviation" or "near miss"
    chosen: str | None = None  # the canonical spelling, when groups of groups chose it

    @property
    def count(self) -> int:
        return sum(self.variants.values())

    @property
    def canonical(self) -> str:
        own = [v for v in self.variants if self.how.get(v, "key") == "key"] or list(self.variants)
        trimmed = [v for v in own if v == v.strip()] or own
        return self.chosen or min(trimmed, key=lambda v: (-self.variants[v], v))

    def absorb(self, other: Group, how: str) -> None:
        for variant, n in other.variants.items():
            self.variants[variant] = self.variants.get(variant, 0) + n
            self.how[variant] = how


def key_groups(counts: Mapping[str, int]) -> dict[str, Group]:
    """Spellings grouped by fingerprint; a value with an empty key (``?``, ``--``) stays alone."""
    groups: dict[str, Group] = {}
    for value, n in counts.items():
        key = fingerprint(value) or f"\0{value}"
        group = groups.setdefault(key, Group(key))
        group.variants[value] = group.variants.get(value, 0) + int(n)
        group.how[value] = "key"
    return groups


def abbreviations(groups: Mapping[str, Group]) -> dict[str, str]:
    """One-letter key -> the key of the group it abbreviates; empty unless every letter has exactly one."""
    letters = [k for k in groups if len(k) == 1 and k.isalpha()]
    found: dict[str, str] = {}
    for letter in letters:
        starts = [k for k in groups if len(k) > 1 and k[0] == letter and not k.startswith("\0")]
        long_form = SHORT_FORMS.get(letter)
        if long_form in starts:
            found[letter] = long_form
        elif len(starts) == 1 and len(starts[0]) >= 3 and starts[0].isalpha():
            found[letter] = starts[0]
        else:
            return {}
    return found


def edit_distance(a: str, b: str, limit: int = MAX_EDITS) -> int:
    """Optimal-string-alignment distance (a swap of neighbours is one edit); ``limit + 1`` once above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """One minus the edit distance over the longer key's length."""
    longest = max(len(a), len(b))
    return 1.0 - edit_distance(a, b, longest) / longest if longest else 1.0


def near_miss_target(key: str, count: int, roots: list[Group], threshold: float) -> Group | None:
    """The one far more frequent group whose key is a near miss of ``key``; none when there is none or two.

    ``roots`` are ordered by count, most frequent first."""
    if len(key) < MIN_NEAR_MISS_LENGTH or key.startswith("\0"):
        return None
    digits = _DIGITS.sub("", key)
    best: list[tuple[int, Group]] = []
    for root in roots:  # most frequent first: past the first one too rare to join, none can be joined
        if root.count < FREQUENCY_RATIO * count:
            break
        other = root.key
        if abs(len(other) - len(key)) > MAX_EDITS or len(other) < MIN_NEAR_MISS_LENGTH or other.startswith("\0"):
            continue
        if _DIGITS.sub("", other) != digits or _letter_bound(key, other) > MAX_EDITS:
            continue
        edits = edit_distance(key, other)
        if edits <= MAX_EDITS and 1.0 - edits / max(len(key), len(other)) >= threshold:
            best.append((edits, root))
    if not best:
        return None
    closest = min(edits for edits, _ in best)
    tied = [root for edits, root in best if edits == closest]
    return tied[0] if len(tied) == 1 else None


@lru_cache(maxsize=65536)
def _letters(key: str) -> Counter[str]:
    return Counter(key)


def _letter_bound(a: str, b: str) -> int:
    """A lower bound of the edit distance, cheap: an edit adds or removes at most one letter on each side."""
    left, right = _letters(a), _letters(b)
    return max(sum((left - right).values()), sum((right - left).values()))


def group_spellings(counts: Mapping[str, int], near_miss: bool = True, threshold: float = 0.75) -> list[Group]:
    """The categories among ``counts`` (spelling as written -> cells), most frequent first.

    The canonical spellings are grouped again, with the cells of their groups, until nothing more merges,
    so that harmonised data has nothing left to harmonise (a group that absorbed an abbreviation may have
    become frequent enough for a near miss to join it); unless that would put a spelling in a group whose
    canonical key is neither its own, nor at most ``MAX_EDITS`` away, nor its one-letter abbreviation."""
    groups = _group_once(counts, near_miss, threshold)
    while True:
        by_canonical = {g.canonical: g for g in groups}
        again = _group_once({c: g.count for c, g in by_canonical.items()}, near_miss, threshold)
        if len(again) == len(groups):
            return groups
        merged = [_merge([by_canonical[c] for c in g.variants], g.canonical) for g in again]
        if not all(close_keys(fingerprint(v), fingerprint(g.canonical)) for g in merged for v in g.variants):
            return groups
        groups = merged


def close_keys(a: str, b: str) -> bool:
    """Whether two keys may name one category: equal, a one-letter abbreviation, or a near miss."""
    return (
        a == b
        or (len(a) == 1 and b.startswith(a))
        or (len(b) == 1 and a.startswith(b))
        or edit_distance(a, b) <= MAX_EDITS
    )


def _merge(parts: list[Group], canonical: str) -> Group:
    merged = Group(parts[0].key, chosen=canonical)
    for part in parts:
        merged.variants |= part.variants
        merged.how |= part.how
    return merged


def _group_once(counts: Mapping[str, int], near_miss: bool, threshold: float) -> list[Group]:
    """One pass; near misses come before abbreviations, so that ``F`` still stands for one word once
    ``femal`` has joined ``female``."""
    groups = key_groups(counts)
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.key))
    if near_miss and len(ordered) <= MAX_NEAR_MISS_GROUPS:
        roots: list[Group] = []
        for group in ordered:  # most frequent first, so a group only ever joins one that stays a root
            target = near_miss_target(group.key, group.count, roots, threshold)
            if target is None:
                roots.append(group)
            else:
                target.absorb(group, "near miss")
        groups = {g.key: g for g in roots}
    for letter, long_key in abbreviations(groups).items():
        groups[long_key].absorb(groups.pop(letter), "abbreviation")
    return sorted(groups.values(), key=lambda g: (-g.count, g.key))


def spelling_variants(counts: Mapping[str, int]) -> int:
    """How many spellings would fold into another by key collision or abbreviation (no near misses)."""
    return len(counts) - len(group_spellings(counts, near_miss=False))
