"""Reads the human's chat messages with fixed rules: gate actions, guidance and questions.

Understood, in any case, with polite filler ("please", "could you", "thanks")
ignored. A column is named as written, in any case, with or without backticks
or quotes; spaces may stand for underscores and a trailing plural "s" is
forgiven ("ages" finds `age`). Other names need quotes if they hold symbols.

* Gate actions, only when the whole message is the command: "approve", "yes",
  "ok", "go ahead", "looks good" (approve); "no", "skip", "reject", "skip this
  step" (reject); "undo", "revert", "go back", "undo the last step" (undo);
  "stop", "quit", "that's enough" (stop); "accept the rules", "use the suggested
  rules" (accept the rules an LLM suggested). An approval or an acceptance in
  the chat names what the person saw (the message's ``proposal`` or
  ``suggestion``); the engine refuses one that does not.
* Row drops: "don't drop rows", "never drop patients", "keep all rows", "no
  rows should be dropped", "stop dropping rows" forbid them; "you may drop rows
  again", "dropping rows is fine", "rows can be dropped" allow them.
* Columns to keep: "keep age", "keep the column `Age`", "don't drop age", "age
  is important", "age must be kept"; lists such as "keep age, bmi and sex".
* Valid ranges: "age must be between 0 and 120", "age is 0..120", "age=0..",
  "age must be at most 120", "age >= 0", "0 <= age <= 120", "age can't be
  negative", "age must not exceed 120", "bmi < 80", "age over 120 is
  impossible", "the maximum age is 120". A bound on one side keeps the one
  already set on the other; strict and non-strict comparisons read alike, and
  "positive" reads as "at least 0". A bound that contradicts the other side is
  refused.
* The goal: "the goal is ...", "I want to predict ...": the rest of the
  sentence, as written.
* Questions (a sentence that starts with how, what, which, is, are, does, tell
  me, show me, list or describe, or that ends with "?" and gives no
  instruction): the number of rows, columns or duplicates, the target and its
  class balance, and for named columns their type, missing cells, range,
  minimum, maximum, median, mean, quartiles and commonest values. Answers come
  from the profile alone, so no cell of the table is ever quoted beyond it. A
  question none of these fit is not understood (an LLM, if one is set up,
  answers it).

A message may hold several instructions, split at ";", ".", ",", "and" and new
lines; each one applies. A column that is not in the table changes nothing: the
answer names it with the closest existing columns. Anything else, a gate word
inside a longer sentence included ("I approve of dropping age"), is not
understood and changes nothing: a misread instruction would silently change
what every later plan does, so the rules err towards asking again.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.plan import Guidance

Profile = dict[str, Any]
Action = Literal["approve", "reject", "undo", "stop", "accept_rules"]
Bounds = tuple[float | None, float | None]


class ChatReading(BaseModel):
    """What one chat message asks for, and the guidance once it is applied."""

    action: Action | None = Field(default=None, description="A gate action the text asks for.")
    guidance: Guidance = Field(description="The guidance after the message; a new object.")
    changes: list[str] = Field(default_factory=list, description="One sentence per guidance change.")
    answer: str | None = Field(default=None, description="Answers to questions, and notes on what was not applied.")
    understood: bool = Field(description="False when nothing in the text was recognised.")


def interpret(text: str, guidance: Guidance, profile: Profile, target: str) -> ChatReading:
    """Read ``text`` against the current ``guidance`` and the table's ``profile``; ``guidance`` is left as it is."""
    message = _normalise(text)
    updated = guidance.model_copy(deep=True)
    action = _gate_action(message)
    if action is not None:
        return ChatReading(action=action, guidance=updated, understood=True)
    columns = list(profile["columns"])
    changes: list[str] = []
    notes: list[str] = []
    understood = False
    for sentence in _sentences(message):
        body = _strip_filler(sentence)
        asks = _QUESTION_START.match(body) is not None
        instructions = [] if asks else _instructions(body.rstrip("? "), columns)
        if instructions:
            understood = True
            for instruction in instructions:
                change, note = _apply_to_column(instruction, updated, columns)
                changes += [change] if change else []
                notes += [note] if note else []
        elif (asks or body.endswith("?")) and (reply := _answer(body, profile, target)) is not None:
            understood = True
            notes.append(reply)
    return ChatReading(guidance=updated, changes=changes, answer=" ".join(notes) or None, understood=understood)


# --- Splitting a message ----------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "−": "-", "–": "-", "—": "-", "…": "..."})
_SENTENCE_BREAK = re.compile(r"(?<=[?!])\s+|(?<!\.)\.(?!\.)(?=\s|$)|[;\n]+")
# "and" before a number joins the two ends of a range ("between 0 and 120"); so does a comma.
_PIECE_BREAK = re.compile(r",?\s+(?:and|&|plus|but)\s+(?!\s*[-+]?\d)|,(?!\s*[-+]?\d)\s*", re.I)
_FILLERS = (
    "please", "pls", "kindly", "also", "then", "so", "ok", "okay", "oh", "well", "hi", "hey", "now", "just",
    "yes", "sure", "and", "but", "remember", "note", "make sure", "ensure", "be sure", "i think", "i believe",
    "by the way", "btw", "fyi", "could you", "can you", "would you", "will you", "you should", "you must",
    "you need to", "we need to", "i want you to", "i'd like you to", "i would like you to", "remember that",
    "note that", "keep in mind that", "bear in mind that", "make sure that", "make sure you", "important",
)  # fmt: skip
_LEADING_FILLER = re.compile(
    r"^(?:(?:" + "|".join(map(re.escape, sorted(_FILLERS, key=len, reverse=True))) + r")(?![\w'])[\s,:!-]*)+", re.I
)
_TRAILING_FILLER = re.compile(r"(?:[\s,]*\b(?:please|pls|thank you|thanks|thx|too|as well|for me)\b)*[\s,!]*$", re.I)


def _normalise(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text.translate(_TYPOGRAPHY).replace("\r", "\n")).strip()


def _sentences(message: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_BREAK.split(message) if s and s.strip(" .!")]


def _strip_filler(text: str) -> str:
    return _TRAILING_FILLER.sub("", _LEADING_FILLER.sub("", text.strip())).strip()


# --- Gate actions -----------------------------------------------------------------------------------

_GATE_OBJECT = r"(?: (?:it|this|that|this step|that step|the step|this one|the last step|last step|the last change))?"
_GATE_WORDS: dict[Action, str] = {
    "approve": r"approved?|yes|yeah|yep|yup|y|ok|okay|sure|fine|alright|all right|accept(?:ed)?|agreed|"
    r"confirm(?:ed)?|go ahead|go for it|do it|proceed|continue|run it|apply it|lgtm|sounds good|"
    r"looks? (?:good|fine|great|ok)(?: to me)?",
    "reject": r"no|nope|nah|n|skip|reject(?:ed)?|decline|don'?t|do not|don'?t do (?:it|that)|not this one|pass",
    "undo": r"undo|revert|go back|roll ?back|take (?:it|that) back|step back",
    "stop": r"stop|quit|exit|halt|enough|that'?s enough|that is enough|i'?m done|we'?re done|stop here|stop now",
    "accept_rules": r"(?:accept|apply|use|adopt) (?:the |these |those |your |that |this )?"
    r"(?:suggested |proposed |new )?(?:rules?|suggestions?)",
}
_GATE = {
    action: re.compile(rf"(?:{words}){_GATE_OBJECT}(?: (?:{words}){_GATE_OBJECT})*")
    for action, words in _GATE_WORDS.items()
}
_GATE_FILLER = re.compile(r"\b(?:please|pls|thank you|thanks|thx|cheers|then|just|for now|hi|hey)\b")


def _gate_action(message: str) -> Action | None:
    """The action when the whole message is one gate command, repeated at most ("yes, go ahead")."""
    words = " ".join(_GATE_FILLER.sub(" ", re.sub(r"[^\w'\s]", " ", message.lower())).split())
    return next((action for action, pattern in _GATE.items() if pattern.fullmatch(words)), None)


# --- Instructions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowDrops:
    allowed: bool


@dataclass(frozen=True)
class _Goal:
    text: str


@dataclass(frozen=True)
class _Keep:
    column: str


@dataclass(frozen=True)
class _Range:
    column: str
    bounds: Bounds


@dataclass(frozen=True)
class _Bare:
    """A piece that is only a column name: it takes the instruction next to it ("keep age and bmi")."""

    column: str


_Instruction = _RowDrops | _Goal | _Keep | _Range

_NUM = r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?"
_UNIT = r"(?:\s*(?:%|percent|years?(?:\s+old)?|yrs|months?|weeks?|days?|hours?|kg|g|mg|lbs?|cm|mm|m|bpm|mmhg))?"
_QUOTED = r"`[^`]+`|\"[^\"]+\"|'[^']+'"
_NOT_A_COLUMN = r"(?:it|its|this|that|they|them|these|those|there|which|what|going|in|on|up|all|every|any|rows?)\b"
_COL = rf"(?P<col>{_QUOTED}|(?!{_NOT_A_COLUMN})\w[\w .\-]*?)"
_COLUMN = rf"(?:the\s+)?(?:(?:column|feature|variable)s?\s+)?{_COL}(?:\s+(?:column|feature|variable|values?))?"
_NOT = (
    r"(?:must not|mustn'?t|should not|shouldn'?t|cannot|can not|can'?t|may not|will not|won'?t|does not|doesn'?t|"
    r"do not|don'?t|is not|isn'?t|are not|aren'?t|shall not|must never|should never|can never|will never|"
    r"is never|are never|never)"
)

_ROWS = (
    r"(?:rows?|patients?|records?|samples?|observations?|entries|entry|cases?|subjects?|participants?|people|"
    r"persons?|customers?|examples?|instances?|data points?|lines?)"
)
_DROP = r"(?:drop|remove|delete|discard|exclude|lose|throw (?:away|out)|filter out|get rid of)"
_DROPPED = r"(?:dropped|removed|deleted|discarded|excluded|lost|thrown (?:away|out)|filtered out)"
_DROPPING = r"(?:dropping|removing|deleting|discarding|excluding|losing|throwing (?:away|out)|filtering out)"
_ANY = r"(?:(?:any|a single|one|some)\s+)?(?:(?:of\s+)?(?:the|my|our)\s+)?"
_OK = r"(?:fine|ok|okay|allowed|acceptable|alright|all right|permitted)"
_FORBID_ROWS = [
    re.compile(p, re.I)
    for p in (
        rf"\b{_NOT}\s+(?:ever\s+)?{_DROP}\s+{_ANY}{_ROWS}\b",
        rf"\bkeep\s+(?:(?:all|every|each)\s+(?:of\s+)?)?(?:the\s+|my\s+|our\s+)?(?:single\s+)?{_ROWS}\b",
        rf"\b(?:no|none of the)\s+{_ROWS}\s+(?:should|must|may|can|will|shall|are to)\s+(?:ever\s+)?be\s+{_DROPPED}",
        rf"\b{_ROWS}\s+(?:should|must|may|can|will|shall|are)\s*(?:not|n't|'t|never)\s+(?:ever\s+)?(?:be\s+)?{_DROPPED}",
        rf"\b{_DROPPING}\s+{_ANY}{_ROWS}\s+is\s+(?:not\s+{_OK}|forbidden|prohibited|unacceptable|off the table)",
        rf"\bstop\s+{_DROPPING}\s+{_ANY}{_ROWS}",
        r"\bno\s+(?:row|patient|record)\s+(?:drops|dropping|removals?|deletions?)\b",
    )
]
_ALLOW_ROWS = [
    re.compile(p, re.I)
    for p in (
        rf"\b(?:may|can|are allowed to|are free to|feel free to|go ahead and)\s+(?:now\s+|again\s+)?"
        rf"{_DROP}\s+{_ANY}{_ROWS}\b",
        rf"\b{_DROPPING}\s+{_ANY}{_ROWS}\s+is\s+(?:(?:now|again)\s+)?{_OK}",
        rf"\bit(?:'s|\s+is)\s+{_OK}\s+to\s+{_DROP}\s+{_ANY}{_ROWS}",
        rf"\b{_ROWS}\s+(?:may|can)\s+(?:now\s+|again\s+)?be\s+{_DROPPED}",
        rf"\ballow\s+(?:row\s+(?:drops|dropping|removals?)|{_DROPPING}\s+{_ANY}{_ROWS})",
    )
]

_KEEP = [
    re.compile(p, re.I)
    for p in (
        rf"(?:keep|retain|preserve|leave)\s+{_COLUMN}"
        r"(?:\s+(?:alone|as it is|as is|in(?:\s+the\s+(?:data|dataset|table))?))?",
        rf"{_NOT}\s+(?:ever\s+)?(?:drop|remove|delete|discard|exclude|lose|touch)\s+{_COLUMN}",
        rf"{_COLUMN}\s+(?:is|are)\s+(?:very\s+|really\s+|extremely\s+|quite\s+|super\s+)?"
        r"(?:important|essential|crucial|critical|vital|key|needed|required|relevant|valuable)\b.*",
        rf"{_COLUMN}\s+(?:must|should|has to|have to|needs? to)\s+(?:be\s+kept|stay|remain)"
        r"(?:\s+in(?:\s+the\s+(?:data|dataset|table))?)?",
    )
]

_MODAL = r"(?:must|should|shall|will|can|may|has to|have to|needs? to|is supposed to|are supposed to|ought to)"
_VERB = (
    rf"(?:\s+{_MODAL}(?:\s+(?:always|only))?\s+(?:be|lie|fall|stay|remain|range|go)"
    r"|\s+(?:is|are|lies|falls|ranges|stays|goes|runs)(?:\s+(?:always|only))?|\s*[:=])?\s*"
)
_NOT_BE = rf"\s+{_NOT}\s+(?:ever\s+)?(?:(?:be|go|fall|lie)\s+)?"
_UPPER = (
    r"(?:at most|no more than|not more than|no greater than|not greater than|no higher than|not higher than|"
    r"no larger than|not above|not over|up to|a maximum of|max(?:imum)?(?: of)?|less than or equal to|"
    r"lower than or equal to|smaller than or equal to|less than|lower than|smaller than|below|under|<=|=<|<)"
)
_LOWER = (
    r"(?:at least|no less than|not less than|no lower than|not lower than|no smaller than|not below|not under|"
    r"a minimum of|min(?:imum)?(?: of)?|greater than or equal to|more than or equal to|higher than or equal to|"
    r"greater than|more than|higher than|larger than|bigger than|above|over|>=|=>|>)"
)
_IMPOSSIBLE = (
    r"(?:(?:simply|just|clearly|physically)\s+)?(?:impossible|invalid|not possible|not valid|not plausible|"
    r"implausible|unrealistic|not realistic|wrong|an error|errors|a mistake|mistakes|nonsense|bogus|not allowed)"
)


def _number(text: str | None) -> float | None:
    return None if text is None else float(text.replace(",", ""))


def _between(m: re.Match[str]) -> Bounds:
    low, high = sorted(float(m[group].replace(",", "")) for group in "ab")
    return low, high


def _one_sided(m: re.Match[str]) -> Bounds:
    groups = m.groupdict()
    return _number(groups.get("a")), _number(groups.get("b"))


def _at_least_zero(m: re.Match[str]) -> Bounds:
    return 0.0, None


_A, _B = rf"(?P<a>{_NUM})", rf"(?P<b>{_NUM})"
_RANGE_FORMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Bounds]]] = [
    (re.compile(p, re.I), build)
    for p, build in (
        (rf"{_COLUMN}\s+{_LOWER}\s*{_B}{_UNIT}\s+(?:is|are|would be)\s+{_IMPOSSIBLE}", _one_sided),
        (rf"{_COLUMN}\s+{_UPPER}\s*{_A}{_UNIT}\s+(?:is|are|would be)\s+{_IMPOSSIBLE}", _one_sided),
        (rf"(?:an?\s+)?negative\s+{_COLUMN}\s+(?:is|are|would be)\s+{_IMPOSSIBLE}", _at_least_zero),
        (rf"{_A}\s*<=?\s*{_COLUMN}\s*<=?\s*{_B}{_UNIT}", _between),
        (rf"(?:the\s+)?(?:max(?:imum)?|highest|largest|upper (?:bound|limit))\s+(?:(?:of|for)\s+)?{_COLUMN}"
         rf"\s*(?:is|=|:)\s*{_B}{_UNIT}", _one_sided),
        (rf"(?:the\s+)?(?:min(?:imum)?|lowest|smallest|lower (?:bound|limit))\s+(?:(?:of|for)\s+)?{_COLUMN}"
         rf"\s*(?:is|=|:)\s*{_A}{_UNIT}", _one_sided),
        (rf"{_COLUMN}{_VERB}(?:between|from|in(?:\s+the)?\s+range(?:\s+of)?|within|in)?\s*[\[(]?\s*{_A}\s*"
         rf"(?:and|to|-|\.\.\.?|,)\s*{_B}\s*[\])]?{_UNIT}", _between),
        (rf"{_COLUMN}{_VERB}{_A}?\s*\.\.\.?\s*{_B}?{_UNIT}", _one_sided),
        (rf"{_COLUMN}{_VERB}{_UPPER}\s*{_B}{_UNIT}", _one_sided),
        (rf"{_COLUMN}{_VERB}{_LOWER}\s*{_A}{_UNIT}", _one_sided),
        (rf"{_COLUMN}{_NOT_BE}(?:{_LOWER}|exceed(?:s|ing)?)\s*{_B}{_UNIT}", _one_sided),
        (rf"{_COLUMN}{_NOT_BE}{_UPPER}\s*{_A}{_UNIT}", _one_sided),
        (rf"{_COLUMN}(?:{_NOT_BE}negative|{_VERB}(?:positive|non-?negative|not negative|never negative))",
         _at_least_zero),
    )
]  # fmt: skip

_GOAL = [
    re.compile(p, re.I)
    for p in (
        r"(?:\b(?:my|our|the)\s+(?:main\s+)?(?:goal|aim|objective|purpose|task)\s+is|\b(?:goal|aim|objective)\s*:)"
        r"\s*(?:to\s+)?(?P<goal>.+)",
        r"\b(?:i|we)(?:'d| would)?\s+(?:want|like|need|wish|aim|hope|plan|am trying|'m trying|are trying|'re trying)"
        r"\s+to\s+(?P<goal>(?:predict|forecast|classify|estimate|model|detect|identify|find out)\b.+)",
    )
]


def _instructions(sentence: str, columns: list[str]) -> list[_Instruction]:
    """The instructions in one sentence; unrecognised pieces drop out."""
    head, goal = _split_goal(sentence)
    parsed = _attach_bare_columns([_parse_piece(piece, columns) for piece in _PIECE_BREAK.split(head)])
    return [p for p in parsed if p is not None] + ([_Goal(goal)] if goal else [])


def _split_goal(sentence: str) -> tuple[str, str]:
    """The sentence before a goal statement, and the goal: the goal runs to the end of the sentence."""
    for pattern in _GOAL:
        match = pattern.search(sentence)
        if match:
            head = re.sub(r"(?:[\s,]+(?:and|but)?)+$", "", sentence[: match.start()], flags=re.I)
            return head, _strip_filler(match["goal"])
    return sentence, ""


def _parse_piece(piece: str, columns: list[str]) -> _Instruction | _Bare | None:
    body = _strip_filler(piece)
    if not body:
        return None
    if any(p.search(body) for p in _FORBID_ROWS):
        return _RowDrops(allowed=False)
    if any(p.search(body) for p in _ALLOW_ROWS):
        return _RowDrops(allowed=True)
    for pattern, build in _RANGE_FORMS:
        if (match := pattern.fullmatch(body)) and (bounds := build(match)) != (None, None):
            return _Range(match["col"], bounds)
    for pattern in _KEEP:
        if match := pattern.fullmatch(body):
            return _Keep(match["col"])
    if re.fullmatch(_QUOTED, body) or _resolve(body, columns) is not None:
        return _Bare(body)
    return None


def _attach_bare_columns(parsed: list[_Instruction | _Bare | None]) -> list[_Instruction | None]:
    """Give each bare column the column instruction before it, else the first one after it."""
    out: list[_Instruction | _Bare | None] = list(parsed)
    for i, item in enumerate(out):
        if not isinstance(item, _Bare):
            continue
        before = out[i - 1] if i else None
        after = next((x for x in out[i + 1 :] if not isinstance(x, _Bare)), None)
        model = next((x for x in (before, after) if isinstance(x, (_Keep, _Range))), None)
        out[i] = replace(model, column=item.column) if model else None
    return [x for x in out if not isinstance(x, _Bare)]


# --- Applying instructions --------------------------------------------------------------------------

Outcome = tuple[str | None, str | None]  # (a change made, a note on why nothing changed)


def _apply_to_column(instruction: _Instruction, guidance: Guidance, columns: list[str]) -> Outcome:
    if isinstance(instruction, (_Keep, _Range)):
        column = _resolve(instruction.column, columns)
        if column is None:
            return None, _no_such_column(_unquote(instruction.column), columns)
        instruction = replace(instruction, column=column)
    return _apply(instruction, guidance)


def _apply(instruction: _Instruction, guidance: Guidance) -> Outcome:
    """Change ``guidance`` in place."""
    match instruction:
        case _RowDrops(allowed=allowed):
            sentence = "Rows may be dropped." if allowed else "Rows will not be dropped."
            if guidance.allow_row_drops == allowed:
                return None, f"Already so: {sentence.lower()}"
            guidance.allow_row_drops = allowed
            return sentence, None
        case _Goal(text=text):
            if guidance.goal == text:
                return None, f"The goal is already: {text}."
            guidance.goal = text
            return f"The goal is now: {text}.", None
        case _Keep(column=column):
            if column in guidance.keep_columns:
                return None, f"`{column}` is already kept."
            guidance.keep_columns.append(column)
            return f"`{column}` will be kept.", None
        case _Range(column=column, bounds=bounds):
            return _apply_range(guidance, column, bounds)
    raise AssertionError(instruction)


def _apply_range(guidance: Guidance, column: str, bounds: Bounds) -> Outcome:
    """Set the bounds given, keeping an existing bound on the other side."""
    old = guidance.ranges.get(column, (None, None))
    low = bounds[0] if bounds[0] is not None else old[0]
    high = bounds[1] if bounds[1] is not None else old[1]
    if low is not None and high is not None and low > high:
        kept = _describe_range(column, old) if old != (None, None) else f"`{column}` has no range."
        return None, f"`{column}` cannot be at least {_fmt(low)} and at most {_fmt(high)}; unchanged: {kept}"
    if (low, high) == old:
        return None, f"Already so: {_describe_range(column, old)}"
    guidance.ranges[column] = (low, high)
    return _describe_range(column, (low, high)), None


def _describe_range(column: str, bounds: Bounds) -> str:
    low, high = bounds
    if low is not None and high is not None:
        return f"`{column}` must lie in {_fmt(low)}..{_fmt(high)}."
    if low is not None:
        return f"`{column}` must be at least {_fmt(low)}."
    return f"`{column}` must be at most {_fmt(high)}." if high is not None else f"`{column}` has no range."


# --- Columns ----------------------------------------------------------------------------------------


def _unquote(name: str) -> str:
    return name.strip().strip("`\"'").strip()


def _loose(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.casefold()).strip("_")


def _resolve(name: str, columns: Iterable[str]) -> str | None:
    """The column ``name`` means: exact, then ignoring case and space/underscore, then without a plural "s"."""
    name = _unquote(name)
    by_key: dict[str, str] = {}
    for column in columns:
        if column == name:
            return column
        by_key.setdefault(_loose(column), column)
    key = _loose(name)
    return by_key.get(key) or (by_key.get(key[:-1]) if key.endswith("s") else None)


def _no_such_column(name: str, columns: list[str]) -> str:
    by_key = {c.casefold(): c for c in columns}
    close = [by_key[k] for k in difflib.get_close_matches(name.casefold(), list(by_key), n=3, cutoff=0.6)]
    if close:
        return f"There is no column `{name}`; did you mean {' or '.join(f'`{c}`' for c in close)}?"
    return f"There is no column `{name}`; the columns are {_names(columns)}."


def _names(columns: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"`{c}`" for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


# --- Questions --------------------------------------------------------------------------------------

_QUESTION_START = re.compile(r"(?:how|what'?s?|which|is|are|does|tell me|show me|list|describe)\b", re.I)
_DUPLICATES = re.compile(r"duplicat|repeated rows|same rows")
_MISSING = re.compile(r"missing|\bnulls?\b|\bnan\b|\bempty\b|\bblank\b|\bna\b")
_TYPE = re.compile(r"\btypes?\b|\bkind\b|\bdtype\b")
_STATS = re.compile(
    r"range|\bmax|\bmin\b|minimum|largest|highest|biggest|smallest|lowest|median|\bmean\b|average|\bstd\b|"
    r"standard deviation|quartile|distribution|statistic|\bstats\b|summary"
)
_VALUES = re.compile(r"\bvalues\b|categor|levels|commonest|most common|frequen")
_TARGET = re.compile(r"\btarget\b|\blabels?\b|\bclass(?:es)?\b|balance|\boutcome\b|predict")
_COLUMNS = re.compile(r"\bcolumns\b|\bfeatures\b|\bvariables\b|\bfields\b|schema")
_ROWS_Q = re.compile(r"\brows\b|records|observations|samples|how big|how large|\bsize\b|\bshape\b|entries")
_STAT_ORDER = {"min": "minimum", "q1": "first quartile", "median": "median", "q3": "third quartile",
               "max": "maximum", "mean": "mean", "std": "standard deviation"}  # fmt: skip
_STAT_ASKED = {
    "min": re.compile(r"\bmin\b|minimum|smallest|lowest|range"),
    "q1": re.compile(r"quartile|\biqr\b"),
    "q3": re.compile(r"quartile|\biqr\b"),
    "median": re.compile(r"median"),
    "max": re.compile(r"\bmax\b|maximum|largest|highest|biggest|range"),
    "mean": re.compile(r"\bmean\b|average"),
    "std": re.compile(r"\bstd\b|standard deviation"),
}
_CANDIDATE = re.compile(r"\b(?:of|in|for|about|is|are|does|column)\s+(?:the\s+)?(?:column\s+)?(?P<col>[\w.\-]+)")
_NOT_NAMES = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "there", "here", "data", "dataset", "table",
    "frame", "rows", "row", "columns", "column", "cells", "cell", "values", "value", "target", "label", "labels",
    "class", "classes", "balance", "missing", "null", "nulls", "empty", "blank", "type", "types", "kind", "dtype",
    "range", "max", "maximum", "min", "minimum", "median", "mean", "average", "std", "distribution", "stats",
    "statistics", "summary", "total", "all", "any", "each", "every", "many", "much", "lot", "duplicates",
    "duplicate", "in", "on", "of", "for", "about", "at", "with", "by", "to", "what", "which", "how", "is", "are",
    "does", "do", "so", "whole", "overall", "goal", "model", "score", "feature", "features", "variable",
    "variables",
))  # fmt: skip


def _answer(question: str, profile: Profile, target: str) -> str | None:
    """The answer from the profile; None for a question these rules cannot answer (an LLM may)."""
    q = question.casefold()
    columns = list(profile["columns"])
    asks_column = any(p.search(q) for p in (_MISSING, _TYPE, _STATS, _VALUES))
    named = _mentioned_columns(question, columns, target if asks_column else None)
    if _DUPLICATES.search(q):
        return _duplicates_answer(profile)
    if named:
        return " ".join(_column_answer(q, column, profile, target) for column in named)
    if asks_column and (unknown := _unknown_candidate(question, columns)):
        return _no_such_column(unknown, columns)
    if _MISSING.search(q):
        return _missing_overall(profile)
    if _TYPE.search(q) or _COLUMNS.search(q):
        return _columns_answer(profile)
    if _TARGET.search(q):
        return _target_answer(profile, target)
    if _ROWS_Q.search(q):
        return f"The table has {profile['n_rows']} rows and {profile['n_columns']} columns."
    return None


def _mentioned_columns(question: str, columns: list[str], target: str | None) -> list[str]:
    """Columns named in ``question``, in order; the target when the question says "target" and names none."""
    quoted = [a or b for a, b in re.findall(r"`([^`]+)`|\"([^\"]+)\"", question)]
    found = [column for name in quoted if (column := _resolve(name, columns)) is not None]
    if not found:
        spans: list[tuple[int, int, str]] = []
        for column in sorted(columns, key=len, reverse=True):
            for form in {column, column.replace("_", " ")}:
                hit = re.search(rf"(?<![\w]){re.escape(form)}(?![\w])", question, re.I)
                if hit and not any(s <= hit.start() < e for s, e, _ in spans):
                    spans.append((hit.start(), hit.end(), column))
        ordered = [c for _, _, c in sorted(spans)]
        found = [c for c in ordered if c.casefold() not in _NOT_NAMES] or ordered
    if not found and target in columns and re.search(r"\b(?:target|labels?|outcome)\b", question, re.I):
        found = [target]
    return list(dict.fromkeys(found))


def _unknown_candidate(question: str, columns: list[str]) -> str | None:
    """A word that the question seems to use as a column name, when no column matched."""
    quoted = re.search(r"`([^`]+)`|\"([^\"]+)\"", question)
    if quoted:
        return quoted[1] or quoted[2]
    words = (m["col"] for m in _CANDIDATE.finditer(question))
    return next((w for w in words if w.casefold() not in _NOT_NAMES and not w[0].isdigit()), None)


def _column_answer(q: str, column: str, profile: Profile, target: str) -> str:
    info = profile["columns"][column]
    if _MISSING.search(q):
        return _missing_answer(column, info, profile["n_rows"])
    if _TYPE.search(q):
        return _type_answer(column, info)
    if _STATS.search(q):
        return _stats_answer(column, info, q)
    if _VALUES.search(q):
        return _values_answer(column, info)
    if column == target and _TARGET.search(q):
        return _target_answer(profile, target)
    summary = _stats_answer(column, info, "") if info.get("stats") else _values_answer(column, info)
    return f"{_type_answer(column, info)} {_missing_answer(column, info, profile['n_rows'])} {summary}"


def _missing_answer(column: str, info: dict[str, Any], n_rows: int) -> str:
    codes = info.get("sentinels") or []
    coded = f", counting codes such as {', '.join(map(repr, codes[:3]))}" if codes else ""
    cells = _plural(info["missing"], "missing cell")
    return f"`{column}` has {cells} ({_fmt(info['missing_pct'])}% of {n_rows} rows{coded})."


def _missing_overall(profile: Profile) -> str:
    cols = profile["columns"]
    total = sum(c["missing"] for c in cols.values())
    if not total:
        return "No cell is missing."
    worst = sorted((c for c in cols if cols[c]["missing"]), key=lambda c: -cols[c]["missing"])
    listed = ", ".join(f"`{c}` {cols[c]['missing']} ({_fmt(cols[c]['missing_pct'])}%)" for c in worst[:5])
    return f"{total} cells are missing in all; by column: {listed}{' and more' if len(worst) > 5 else ''}."


def _type_answer(column: str, info: dict[str, Any]) -> str:
    evidence = info.get("evidence", "").rstrip(".")
    return f"`{column}` is {info['type']}" + (f": {evidence}." if evidence else ".")


def _stats_answer(column: str, info: dict[str, Any], q: str) -> str:
    stats = info.get("stats") or {}
    if stats.get("min") is None:
        return f"`{column}` is {info['type']}, so it has no numeric range. {_values_answer(column, info)}"
    asked = [k for k, pattern in _STAT_ASKED.items() if pattern.search(q)] or ["min", "q1", "median", "q3", "max"]
    parts = [f"{label} {_fmt(stats[k])}" for k, label in _STAT_ORDER.items() if k in asked and stats.get(k) is not None]
    return f"`{column}`: {', '.join(parts)}."


def _values_answer(column: str, info: dict[str, Any]) -> str:
    top = info.get("top_values")
    if not top:
        return f"`{column}` has {info.get('n_unique', 0)} distinct values."
    listed = ", ".join(f"{value!r} ({count})" for value, count in top)
    return f"The commonest values of `{column}` are {listed}, of {info.get('n_unique', len(top))} distinct."


def _duplicates_answer(profile: Profile) -> str:
    n = profile["duplicate_rows"]
    if not n:
        return "No row repeats an earlier row (identifier columns aside)."
    return f"{_plural(n, 'row')} {'repeats' if n == 1 else 'repeat'} an earlier row exactly (identifier columns aside)."


def _columns_answer(profile: Profile) -> str:
    cols = profile["columns"]
    names = list(cols)
    listed = ", ".join(f"`{c}` ({cols[c]['type']})" for c in names[:40])
    more = f" and {len(names) - 40} more" if len(names) > 40 else ""
    return f"The {len(names)} columns are {listed}{more}."


def _target_answer(profile: Profile, target: str) -> str:
    info = profile.get("target")
    if not info:
        return f"The target is `{target}`." if target else "No target is set."
    column, missing = info["column"], info["missing"]
    counts: dict[str, int] = info.get("class_counts") or {}
    if info["task"] != "classification" or not counts:
        stats = profile["columns"].get(column, {}).get("stats") or {}
        spread = f" from {_fmt(stats['min'])} to {_fmt(stats['max'])}" if stats.get("min") is not None else ""
        return f"The target is `{column}` ({info['task']}), with values{spread}; {missing} are missing."
    labelled = sum(counts.values())
    shown = ", ".join(f"{label!r} {n} ({100 * n / labelled:.1f}%)" for label, n in list(counts.items())[:10])
    return (
        f"The target is `{column}` (classification) with {info['n_classes']} classes: {shown}; "
        f"{_plural(missing, 'label')} {'is' if missing == 1 else 'are'} missing."
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fmt(value: float) -> str:
    """A number as a person reads it: ``120`` rather than ``120.0``, at most four decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 0.01 else f"{value:.3g}"
