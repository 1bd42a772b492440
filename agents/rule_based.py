"""The embedded coordinator: a deterministic plan from the profile, re-made after every step.

It needs no LLM. Each call to :meth:`RuleBasedCoordinator.plan` looks at the
current profile (which changes as steps run: coercion reveals missing cells,
de-duplication removes rows), the human's guidance and what has already
happened, and returns the remaining steps in the order of the data-centric
taxonomy: baseline score, schema (types, then personal data, then one spelling
per category, then dates as numbers), target rows, duplicates, leakage,
anomalies, label quality, missingness, final score. Label quality comes before
imputation so that no cell is filled in from a row whose label is wrong (the
label models handle missing cells themselves). A step that ran, failed or was
skipped is never proposed again under the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.plan import HELD_OUT_SUFFIX, REVERT, Guidance, Observation, PlanStep

Profile = dict[str, Any]
ROBUST_Z = 5.0
#: A score this much below the baseline is a real loss, not cross-validation noise.
SCORE_TOLERANCE = 0.01
#: Steps that are judgement calls, and may be undone when the score falls after them. Schema fixes and
#: imputation are not: without them the table is not ML-ready.
REVERTIBLE = ("outliers", "label_issues", "duplicates", "drop_columns:leakage")
#: Row-level tools that never see the held-out rows; the others (outliers, duplicates) clean them as they go.
HIDDEN_FROM_HOLDOUT = ("label_issues",)
#: What a failed step is retried with, once: settings that need less memory and time (a step
#: usually fails on the sandbox's limits). Tools not listed are not retried.
SAFER: dict[str, dict[str, Any]] = {
    "impute": {"method": "simple"},
    "label_issues": {"model": "linear"},
    "outliers": {"method": "robust_z"},
    "evaluate": {"model": "linear", "folds": 3},
}


@dataclass
class PlanningState:
    profile: Profile
    target: str
    task: str
    id_columns: list[str]
    guidance: Guidance = field(default_factory=Guidance)
    history: list[Observation] = field(default_factory=list)
    current_step: str | None = None  # the key of the step that made the current version; None: the upload
    messages: list[str] = field(default_factory=list)  # the human's recent chat, newest last
    #: What an LLM may see of the data (:func:`agents.summary.summarize`), built from the table at the session's
    #: share level; None when not built (the rule-based agents never need it).
    llm_data: dict[str, Any] | None = None
    holdout: float = 0.0  # the share of rows held out to score on (``tools.holdout``)

    def seen(self, key: str) -> bool:
        return any(obs.key == key for obs in self.history)

    def last(self, key: str) -> Observation | None:
        return next((obs for obs in reversed(self.history) if obs.key == key), None)

    def features(self) -> dict[str, dict[str, Any]]:
        skip = {self.target, *self.id_columns}
        return {c: info for c, info in self.profile["columns"].items() if c not in skip}


class RuleBasedCoordinator:
    """Plans from the profile with fixed, documented rules."""

    name = "rule-based"

    def plan(self, state: PlanningState) -> list[PlanStep]:
        """The remaining steps, first one next."""
        rules: list[Callable[[PlanningState], PlanStep | None]] = [
            _baseline, _coerce, _personal, _harmonise, _dates, _drop_useless_columns, _drop_missing_target,
            _duplicates, _leakage, _drop_leaky_columns, _outliers, _label_issues, _impute,
        ]  # fmt: skip
        steps = [step for rule in rules if (step := rule(state)) is not None]
        steps += [*_requested(state), _final_score(state), *(_backtrack(state) or _clean_held_out(state))]
        return [retry for s in steps if (retry := _unless_seen(state, s)) is not None]


def _unless_seen(state: PlanningState, step: PlanStep) -> PlanStep | None:
    """The step if it has not happened; once, a cheaper retry of a step that failed; else nothing."""
    if not state.seen(step.key):
        return step
    failed = state.last(step.key)
    safer = SAFER.get(step.tool)
    if failed is None or failed.status != "failed" or safer is None or state.seen(f"{step.key}:retry"):
        return None
    reason = failed.summary.rstrip(".") or "it failed"
    return step.model_copy(update={
        "key": f"{step.key}:retry", "params": step.params | safer,
        "rationale": f"{step.key} failed ({reason[:200]}); try once more with cheaper settings {safer}.",
    })  # fmt: skip


def _baseline(state: PlanningState) -> PlanStep:
    return PlanStep(key="evaluate:baseline", tool="evaluate", params={},
                    rationale="Score a standard model on the data as it is, to compare every change against.",
                    expected="No change to the data; a baseline score.")  # fmt: skip


def _coerce(state: PlanningState) -> PlanStep | None:
    notes = []
    for col, info in state.profile["columns"].items():
        if col in state.id_columns or info["type"] == "personal":
            continue
        if info.get("numeric_as_text"):
            notes.append(f"`{col}` holds numbers stored as text")
        if info.get("sentinel_count"):
            codes = ", ".join(repr(s) for s in info.get("sentinels", [])[:3])
            notes.append(f"`{col}` has {info['sentinel_count']} missing-value code(s) {codes}")
        if info.get("unit"):
            notes.append(f"`{col}` has the unit {info['unit']!r} inside its cells")
        if info["type"] == "datetime" and not str(info.get("dtype", "")).startswith("datetime"):
            notes.append(f"`{col}` holds dates stored as text")
    if not notes:
        return None
    kept = [f"{', '.join(map(repr, list(info['level_codes'])[:2]))} in `{col}`"
            for col, info in state.profile["columns"].items()
            if info.get("level_codes") and col not in state.id_columns][:3]  # fmt: skip
    answers = f" Answers such as {'; '.join(kept)} stay categories: they are not set missing." if kept else ""
    return PlanStep(key="coerce_types", tool="coerce_types", params={},
                    rationale=_sentence(notes) + "; cast them so models read them as numbers and codes as missing."
                              + answers,
                    expected="Text columns become numeric; codes become missing cells.")  # fmt: skip


def _personal(state: PlanningState) -> PlanStep | None:
    found = {c: info.get("personal") or "personal data" for c, info in state.features().items()
             if info["type"] == "personal"}  # fmt: skip
    if not found:
        return None
    kinds = "; ".join(f"`{c}` holds {_KIND_WORDS.get(k, k)}" for c, k in found.items())
    scrubbed = [c for c, k in found.items() if k == "free_text_with_pii"]
    kept = [c for c in found if c in state.guidance.keep_columns and c not in scrubbed]  # kept, as pseudonyms
    dropped = [c for c in found if c not in scrubbed and c not in kept]
    fixes, expected = [], []
    if dropped:
        fixes.append(f"drop {_names(dropped)}")
        expected.append(f"{len(dropped)} column(s) fewer")
    if scrubbed:
        fixes.append(f"replace the e-mail addresses and phone numbers in {_names(scrubbed)} by [email] and [phone]")
        expected.append(f"[email] and [phone] in the text of {len(scrubbed)} column(s)")
    if kept:
        fixes.append(f"pseudonymise {_names(kept)}, which your rule keeps")
        expected.append(f"a pseudonym per person in {len(kept)} column(s)")
    params = {"columns": {c: "pseudonymise" for c in kept}} if kept else {}
    return PlanStep(key="personal_data", tool="personal_data", params=params,
                    rationale=f"{_sentence([kinds])}: personal data, which must be neither a model feature nor in "
                              f"the ML-ready table; {', and '.join(fixes)}. Set a column to `pseudonymise` to keep a "
                              "stable stand-in per person (a keyed hash), or to `keep` if you need it as it is.",
                    expected="; ".join(expected) + "; no other column changes.")  # fmt: skip


_KIND_WORDS = {"name": "people's names", "email": "e-mail addresses", "phone": "phone numbers",
               "address": "street addresses", "birth_date": "dates of birth",
               "free_text_with_pii": "free text with e-mail addresses or phone numbers in it"}  # fmt: skip


def _names(columns: list[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns)


def _harmonise(state: PlanningState) -> PlanStep | None:
    variants = {c: int(info.get("spelling_variants") or 0) for c, info in state.features().items()}
    variants = {c: n for c, n in variants.items() if n}
    if not variants:
        return None
    notes = [f"`{c}` has {n} spelling(s) of a category written another way" for c, n in variants.items()]
    return PlanStep(key="harmonise_categories", tool="harmonise_categories", params={"columns": list(variants)},
                    rationale=_sentence(notes[:4]) + " (case, spaces, punctuation or a one-letter abbreviation such "
                              "as 'M' for 'male'); give each category one spelling, so that models and counts see "
                              "one category, not several. Check the mapping before approving.",
                    expected="Fewer distinct values in those columns; no cell becomes missing.")  # fmt: skip


def _dates(state: PlanningState) -> PlanStep | None:
    dates = [c for c, info in state.features().items() if info["type"] == "datetime"]
    if not dates:
        return None
    keep = [c for c in dates if c in state.guidance.keep_columns]
    columns = {c: "keep" if c in keep else "features" for c in dates}
    made = [c for c in dates if c not in keep]
    if not made:
        return None
    names = ", ".join(f"`{c}`" for c in made[:4]) + (f" and {len(made) - 4} more" if len(made) > 4 else "")
    kept = f" {', '.join(f'`{c}`' for c in keep)} stay as dates, as you asked." if keep else ""
    verb = "holds" if len(made) == 1 else "hold"
    return PlanStep(key="date_features", tool="date_features", params={"columns": columns},
                    rationale=f"{names} {verb} dates, which a model cannot read as they are; replace each by its "
                              "year, month, day of the week and days since the earliest date (and the hour where "
                              "it has times of day), measured from the same day in new data." + kept,
                    expected="Each date column replaced by numeric `<column>_year`, `_month`, `_day_of_week` and "
                             "`_days_since` columns; missing dates stay missing.")  # fmt: skip


def _drop_useless_columns(state: PlanningState) -> PlanStep | None:
    keep = set(state.guidance.keep_columns)
    useless = {
        col: ("has a single value" if info["type"] == "constant" else f"is {info['missing_pct']:.0f}% missing")
        for col, info in state.features().items()
        if col not in keep and info["type"] != "personal" and (info["type"] == "constant" or info["missing_pct"] >= 95)
    }
    if not useless:
        return None
    reasons = [f"`{c}` {why}" for c, why in useless.items()]
    return PlanStep(key="drop_columns:useless", tool="drop_columns", params={"columns": list(useless)},
                    rationale=_sentence(reasons) + ", so it carries no information for a model.",
                    expected=f"{len(useless)} column(s) fewer.")  # fmt: skip


def _drop_missing_target(state: PlanningState) -> PlanStep | None:
    target = state.profile.get("target") or {}
    missing = int(target.get("missing", 0))
    if not missing:
        return None
    return PlanStep(key="drop_rows:missing_target", tool="drop_rows", params={"missing_target": True},
                    rationale=f"{missing} row(s) have no value for the target `{state.target}`; "
                              "a model cannot learn from them and an ML-ready table cannot keep them.",
                    expected=f"{missing} row(s) fewer.")  # fmt: skip


def _duplicates(state: PlanningState) -> PlanStep | None:
    n = int(state.profile.get("duplicate_rows", 0))
    if not n:
        return None
    action = "drop" if state.guidance.allow_row_drops else "flag"
    return PlanStep(key="duplicates", tool="duplicates", params={"mode": "exact", "action": action},
                    rationale=f"{n} row(s) repeat another row exactly (identifiers aside); duplicates "
                              "over-weight those records and leak between cross-validation folds.",
                    expected=f"{n} row(s) fewer." if action == "drop" else "Duplicates listed.")  # fmt: skip


def _leakage(state: PlanningState) -> PlanStep:
    return PlanStep(key="leakage", tool="leakage", params={},
                    rationale="Check whether any single feature predicts the target almost perfectly, "
                              "which usually means it was recorded after the outcome.",
                    expected="No change to the data; a list of suspects.")  # fmt: skip


def _drop_leaky_columns(state: PlanningState) -> PlanStep | None:
    found = state.last("leakage")
    if found is None or found.status != "done":
        return None
    keep = set(state.guidance.keep_columns)
    suspects = [s for s in found.findings.get("suspects", []) if s["column"] not in keep]
    suspects = [s for s in suspects if s["column"] in state.profile["columns"]]
    if not suspects:
        return None
    reasons = [f"`{s['column']}` alone scores {s['metric']} {s['score']:.3f}" for s in suspects]
    return PlanStep(key="drop_columns:leakage", tool="drop_columns",
                    params={"columns": [s["column"] for s in suspects]},
                    rationale=_sentence(reasons) + "; drop it unless it is known before the outcome.",
                    expected=f"{len(suspects)} column(s) fewer.")  # fmt: skip


def _outliers(state: PlanningState) -> PlanStep | None:
    extreme = [f"`{col}` reaches {value:g} (robust z {z:.0f})" for col, value, z in _extremes(state)]
    ranges = {c: r for c, r in state.guidance.ranges.items() if c in state.profile["columns"]}
    if not extreme and not ranges:
        return None
    notes = extreme[:3] + [f"`{c}` must lie in {_bound(lo)}..{_bound(hi)}" for c, (lo, hi) in ranges.items()]
    params: dict[str, Any] = {"method": "robust_z", "threshold": ROBUST_Z, "action": "set_missing"}
    if ranges:
        params["ranges"] = {c: list(r) for c, r in ranges.items()}
    return PlanStep(key="outliers", tool="outliers", params=params,
                    rationale=_sentence(notes) + "; such values are usually unit slips or typos, so set them "
                              "missing and let imputation fill them.",
                    expected="Impossible cells become missing.")  # fmt: skip


def _extremes(state: PlanningState) -> list[tuple[str, float, float]]:
    """The min or max of each numeric feature that is far out: robust z above twice ``ROBUST_Z`` from the
    quartiles; in a column where one value holds over half the cells (a point mass), judged from the values
    off it, as ``outliers`` judges it, when ``outliers`` would change it (the profile's ``off_mass_*``)."""
    found = []
    for col, info in state.features().items():
        stats = info.get("stats")
        if info["type"] != "numeric" or not stats or stats.get("q3") is None:
            continue
        if stats.get("off_mass_strong_z") is not None:
            for value, z in ((stats["min"], stats["off_mass_z_min"]), (stats["max"], stats["off_mass_z_max"])):
                if z is not None and z > ROBUST_Z and z >= stats["off_mass_strong_z"]:
                    found.append((col, value, z))
            continue
        scale = (stats["q3"] - stats["q1"]) / 1.349
        if scale <= 0:
            continue
        for value in (stats["min"], stats["max"]):
            z = abs(value - stats["median"]) / scale
            if z > ROBUST_Z * 2:
                found.append((col, value, z))
    return sorted(found, key=lambda t: -t[2])


def _impute(state: PlanningState) -> PlanStep | None:
    gaps = {c: info["missing"] for c, info in state.features().items()
            if info["missing"] and info["type"] not in {"text", "identifier", "constant", "personal"}}  # fmt: skip
    if not gaps:
        return None
    worst = sorted(gaps.items(), key=lambda kv: -kv[1])[:3]
    n_rows = max(int(state.profile["n_rows"]), 1)
    notes = [f"`{c}` is {100 * n / n_rows:.0f}% missing" for c, n in worst]
    return PlanStep(key="impute", tool="impute", params={"method": "auto"},
                    rationale=_sentence(notes) + f" ({sum(gaps.values())} cells in {len(gaps)} column(s)); fill "
                              "numbers from the other columns where they are correlated, else with the median, and "
                              "add a `<column>__was_missing` indicator where one value holds most rows or the gaps "
                              "predict the target; give categories and booleans an explicit 'missing' level instead "
                              "of a guess. Free text and identifiers are left as they are.",
                    expected="No missing feature cells; categorical gaps show as a 'missing' level.")  # fmt: skip


def _label_issues(state: PlanningState) -> PlanStep | None:
    if state.task != "classification":
        return None
    if state.guidance.allow_row_drops:
        params: dict[str, Any] = {"action": "drop", "model": "auto"}
        fix = "drop those rows: a wrong label costs more than a row, and a guessed label can be wrong too"
        expected = "The rows with suspicious labels dropped; each listed with its evidence."
    else:
        params = {"action": "relabel", "model": "auto", "min_confidence": 0.8}
        fix = "relabel the ones the model is confident about (you asked for no row drops)"
        expected = "A few labels corrected; each listed with its evidence."
    return PlanStep(key="label_issues", tool="label_issues", params=params,
                    rationale="Find labels that cross-validated models disagree with (cleanlab's confident "
                              "learning, with the model whose out-of-fold probabilities fit best) and " + fix + ". "
                              "It runs before imputation so that no cell is filled in from a mislabelled row.",
                    expected=expected)  # fmt: skip


def _requested(state: PlanningState) -> list[PlanStep]:
    return [
        PlanStep(key=f"requested:{i}:{req.tool}", tool=req.tool, params=req.params,
                 rationale=f"You asked for `{req.tool}`.", expected="As the tool describes.")
        for i, req in enumerate(state.guidance.requested)
    ]  # fmt: skip


def _final_score(state: PlanningState) -> PlanStep:
    score = _score(state.last("evaluate:baseline")) or _score(state.last("evaluate:baseline:retry"))
    then = f" (it was {score:.3f})" if score is not None else ""
    return PlanStep(key="evaluate:final", tool="evaluate", params={},
                    rationale=f"Score the cleaned data the same way as the baseline{then}.",
                    expected="No change to the data; the score after cleaning.")  # fmt: skip


def _backtrack(state: PlanningState) -> list[PlanStep]:
    """After a score below the baseline, undo the last judgement step and score again."""
    last = state.history[-1] if state.history else None
    if last is not None and last.tool == REVERT and last.status == "done":
        return [PlanStep(key=f"evaluate:after_{last.key}", tool="evaluate", params={},
                         rationale=f"Score the data again now that {last.key} is undone.",
                         expected="No change to the data; a score to compare with the baseline.")]  # fmt: skip
    baseline = _score(state.last("evaluate:baseline")) or _score(state.last("evaluate:baseline:retry"))
    latest = _score(last) if last is not None and last.key.startswith("evaluate:") else None
    step = state.current_step
    if baseline is None or latest is None or latest >= baseline - SCORE_TOLERANCE or step is None:
        return []
    if not step.startswith(REVERTIBLE):
        return []
    return [PlanStep(key=f"{REVERT}:{step}", tool=REVERT, params={"step": step},
                     rationale=f"The score fell to {latest:.3f} from a baseline of {baseline:.3f}; `{step}` made the "
                               "last change to the data, so undo it (back to the version before it).",
                     expected=f"The data as it was before {step}.")]  # fmt: skip


def _clean_held_out(state: PlanningState) -> list[PlanStep]:
    """Once the final score is in, clean the held-out rows the way the label step cleaned the others: the
    gain is measured, and the table the person takes away should be cleaned throughout."""
    final = _score(state.last("evaluate:final"))
    if not state.holdout or final is None:
        return []
    history = state.history
    reverted = {obs.key.removeprefix(f"{REVERT}:") for obs in history if obs.tool == REVERT and obs.status == "done"}
    done = [obs for obs in state.history if obs.tool in HIDDEN_FROM_HOLDOUT and obs.status == "done"
            and not obs.key.endswith(HELD_OUT_SUFFIX) and obs.key not in reverted and _changed_rows(obs)]  # fmt: skip
    return [_held_out_step(obs, final) for obs in done]


def _changed_rows(obs: Observation) -> bool:
    return bool(obs.metrics.get("relabelled") or obs.metrics.get("dropped"))


def _held_out_step(obs: Observation, final: float) -> PlanStep:
    """The same call on the held-out rows; the evidence for acting was weighed on every label by the step
    itself, so it is not asked for again on the few rows left (their flips are all that remain)."""
    params = (obs.params | {"require_evidence": False}) if obs.tool == "label_issues" else obs.params
    return PlanStep(key=f"{obs.key}{HELD_OUT_SUFFIX}", tool=obs.tool, params=params,
                    rationale=f"The gain is measured ({final:.3f}, on the rows held out before any change); now "
                              f"apply `{obs.key}` to those rows too, with the same settings, so the table you take "
                              "away is cleaned throughout. No score follows: these rows can no longer judge it.",
                    expected=f"The held-out rows cleaned as {obs.key} cleaned the others.")  # fmt: skip


def _score(obs: Observation | None) -> float | None:
    return obs.metrics.get("score") if obs is not None and obs.status == "done" else None


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _sentence(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]
