"""A coordinator and a worker together: what the engine and the CLI ask for the next steps.

:meth:`AgentPair.propose` returns the remaining plan with the first step's
tool call prepared, what to tell the human, and what the LLM cost. The
rule-based pair needs no LLM; :class:`agents.llm_pair.LLMPair` uses one and
falls back to the rule-based pair, saying why, whenever the LLM fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agents.llm import TokenFn, Usage
from agents.plan import Guidance, PlanStep
from agents.rule_based import PlanningState, RuleBasedCoordinator
from tools.registry import Registry


@dataclass
class Proposal:
    steps: list[PlanStep]
    notes: list[str] = field(default_factory=list)  # told to the human as the assistant's messages
    #: Rules the coordinator read from the chat: a suggestion for the person (``agents.rules``), never in force
    #: by itself; the steps and their parameters honour the rules in force.
    read_rules: Guidance | None = None
    usage: Usage = field(default_factory=Usage)  # what this proposal cost, to add to the session's
    by: str = "rule-based"


class AgentPair(Protocol):
    name: str
    #: False when proposing may take seconds (an LLM): the engine then plans in the background.
    instant: bool

    def propose(self, state: PlanningState, registry: Registry, usage: Usage) -> Proposal:
        """The remaining steps, first one next, its parameters ready for the gate. What an LLM may see of
        the data is ``state.llm_data``, at the session's share level."""
        ...

    def reply(self, question: str, state: PlanningState, usage: Usage, on_token: TokenFn) -> tuple[str, Usage] | None:
        """An answer to a chat message the rule-based reader did not understand, with what it cost; None or
        an empty answer: no answer (the cost is kept all the same)."""
        ...


class RuleBasedPair:
    """The embedded default: plans with fixed rules; the coordinator's parameters are the call."""

    name = "rule-based"
    instant = True

    def __init__(self) -> None:
        self.coordinator = RuleBasedCoordinator()

    def propose(self, state: PlanningState, registry: Registry, usage: Usage) -> Proposal:
        return Proposal(steps=self.coordinator.plan(state))

    def reply(self, question: str, state: PlanningState, usage: Usage, on_token: TokenFn) -> tuple[str, Usage] | None:
        return None
