"""Coordinator and worker over an LLM, with the rule-based pair as the fall-back at each stage.

A session never waits on a broken LLM: every call has a deadline, the SDK
retries 429s, 5xx and time-outs with back-off, and whatever still fails (or
a budget that is spent, or answers that stay invalid after correction) hands
that stage to the rule-based agents, with a note that tells the human why.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from agents.guard import comply
from agents.llm import COUNTERS, LLMClient, LLMError, TokenFn, Usage
from agents.llm_coordinator import LLMCoordinator, observation_summary
from agents.llm_worker import LLMWorker
from agents.pair import Proposal
from agents.plan import REVERT, PlanStep
from agents.rule_based import PlanningState, RuleBasedCoordinator
from agents.summary import shown_data
from agents.worker import ToolCallError, validate_call
from tools.registry import Registry


class LLMPair:
    instant = False

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.name = f"llm:{client.config.model}"
        self.coordinator = LLMCoordinator(client)
        self.worker = LLMWorker(client)
        self.rules = RuleBasedCoordinator()
        self.chat_prompt = (files("agents") / "prompts" / "chat.md").read_text(encoding="utf-8")

    def propose(self, state: PlanningState, registry: Registry, usage: Usage) -> Proposal:
        if self.client.budget_spent(usage):  # the human was told when it ran out; plan quietly by the rules
            return Proposal(steps=self.rules.plan(state))
        spent = usage.spending()
        notes: list[str] = []
        try:
            steps, guidance = self.coordinator.plan(state, registry, self.rules.plan(state), spent)
        except LLMError as exc:
            spent.fallbacks += 1
            note = f"The LLM coordinator could not plan ({exc}); the rule-based coordinator planned instead."
            return Proposal(steps=self.rules.plan(state), notes=[note], usage=_minus(spent, usage))
        draft = self.rules.plan(state)
        for step in steps[1:]:
            step.params = _suggested(step, draft)
        if steps and steps[0].tool != REVERT:
            steps[0].params = self._prepare(steps[0], state, registry, draft, spent, notes)
        return Proposal(steps=steps, notes=notes, read_rules=guidance, usage=_minus(spent, usage), by=self.name)

    def _prepare(
        self, step: PlanStep, state: PlanningState, registry: Registry, draft: list[PlanStep], spent: Usage,
        notes: list[str],
    ) -> dict[str, Any]:  # fmt: skip
        suggested = _suggested(step, draft)
        try:
            return self.worker.prepare(step, state, registry, suggested, spent).params
        except LLMError as exc:
            spent.fallbacks += 1
            notes.append(f"The LLM worker could not prepare `{step.tool}` ({exc}); "
                         "the rule-based worker's parameters are used.")  # fmt: skip
        columns = list(state.profile["columns"])
        try:
            call = validate_call(registry, step.tool, suggested, columns)
            return validate_call(registry, step.tool, comply(step.tool, call.params, state.guidance), columns).params
        except ToolCallError:
            return {}

    def reply(self, question: str, state: PlanningState, usage: Usage, on_token: TokenFn) -> tuple[str, Usage]:
        """A streamed answer from the data at the session's share level, and what it cost; the answer is empty
        when the LLM could not give one (what it cost, the request sent included, still counts)."""
        spent = usage.spending()
        context = {"question": question, "target": state.target, "guidance": state.guidance.model_dump(),
                   "data": shown_data(state),
                   "history": [observation_summary(o) for o in state.history]}  # fmt: skip
        messages = [{"role": "system", "content": self.chat_prompt}, {"role": "user", "content": json.dumps(context)}]
        try:
            text = self.client.chat(messages, spent, on_token=on_token).content.strip()
        except LLMError:
            text = ""
        return text, _minus(spent, usage)


def _suggested(step: PlanStep, draft: list[PlanStep]) -> dict[str, Any]:
    """The rule-based parameters for the same key, else for the same tool, else the tool's defaults."""
    same = next((s for s in draft if s.key == step.key), None) or next((s for s in draft if s.tool == step.tool), None)
    return dict(same.params) if same is not None else {}


def _minus(total: Usage, before: Usage) -> Usage:
    """What was spent since ``before``, of which ``total`` is a later :meth:`Usage.spending` copy."""
    counts = {name: getattr(total, name) - getattr(before, name) for name in COUNTERS}
    return Usage(**counts, requests=total.requests[len(before.requests) :])
