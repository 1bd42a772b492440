"""The engine's conversation: the person's chat messages, and the rules in force.

A message is stored and read with fixed rules (:mod:`agents.chat`): a gate action (acting only on the
proposal the message names), new rules (the plan is re-made to honour them), or a question answered from
the profile; with an LLM set up, what the rules cannot read goes to it. Rules an LLM reads are only a
suggestion (:mod:`agents.rules`) that the person accepts by its id. Every change to the rules in force
goes through :meth:`Conversation._set_rules`, and is an event.

A part of :class:`copilot.session.engine.Engine`, which provides the write transaction, the events, the gate
actions and the planning threads used here.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from agents.chat import interpret
from agents.llm import Usage
from agents.pair import AgentPair
from agents.plan import Guidance
from agents.rules import RuleSuggestion, suggest
from copilot.errors import Conflict, InvalidParams, Stale
from copilot.session import row_views as views
from copilot.session.events import EventBus
from copilot.session.planning import Planner, keep_requests
from copilot.session.views import EventView, MessageView, SessionView
from copilot.storage.store import MessageRow, SessionRow, Store, VersionRow, now

CHAT_HELP = (
    'I did not understand that. You can say approve, skip, undo or stop; give rules such as "don\'t drop rows", '
    '"keep column X" or "X must be between 0 and 120"; or ask about the data, e.g. "how many missing values '
    'in X?".'
)


class Conversation:
    """Chat and rules; the engine supplies the rest (see the module's docstring)."""

    store: Store
    bus: EventBus
    agents: AgentPair
    planner: Planner
    _planning: ThreadPoolExecutor

    def post_message(
        self, session_id: str, owner: str, text: str, proposal: str | None = None, suggestion: str | None = None
    ) -> MessageView:
        """Store the human's message and act on it: a gate action, new rules (the plan is re-made to
        honour them), or a question answered from the profile (or by the LLM, when one is set up).

        "approve" or "reject" act only on the proposal the message names (``proposal``: the card the
        person saw), "accept the rules" only on the suggestion it names."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            message = MessageRow(session_id=session.id, role="user", text=text)
            db.add(message)
            db.flush()
            self._emit(db, session, "message", {"id": message.id, "role": "user", "text": text})
            view = views.message_view(message)
            version = db.get_one(VersionRow, (session.id, session.version))
            reading = interpret(text, Guidance.model_validate(session.guidance), version.profile, session.target)
            replan = reading.guidance.model_dump() != session.guidance
            if replan:
                self._set_rules(db, session, reading.guidance, reading.changes, by="you, in the chat")
            said = " ".join([*reading.changes, *([reading.answer] if reading.answer else [])])
            if said:
                self._say(db, session, said)
            elif not reading.understood and self.agents.instant:
                self._say(db, session, CHAT_HELP)
            for_llm = not reading.understood and not self.agents.instant  # it may hold rules the LLM can read
            replan = (replan or for_llm) and self._reopen(db, session)
        if reading.action is not None:
            self._chat_action(session_id, owner, reading.action, text, proposal, suggestion)
        elif not reading.understood and not self.agents.instant:
            self._planning.submit(self._llm_reply, session_id, text, replan)
        elif replan:
            self._schedule(session_id)
        return view

    def _reopen(self, db: Session, session: SessionRow) -> bool:
        """Back to planning from a gate (or from a preview being made for it), so new rules take effect at
        once; False when not at a gate."""
        if session.state not in {"awaiting_approval", "previewing"}:
            return False
        self._drop_proposed(db, session)
        self._set_state(db, session, "planning")
        return True

    def _chat_action(
        self, session_id: str, owner: str, action: str, text: str, proposal: str | None, suggestion: str | None
    ) -> None:
        """A gate action said in the chat; a message says when there is nothing to act on, or when the
        message does not name what the person saw."""
        try:
            pending = self.get_session(session_id, owner).pending_step
            if action == "undo":
                self.undo(session_id, owner)
            elif action == "stop":
                self.stop(session_id, owner)
            elif action == "accept_rules":
                if suggestion is None:
                    raise Conflict("the message does not say which suggestion you saw; use its Accept button")
                self.accept_rules(session_id, owner, suggestion)
            elif pending is None:
                raise Conflict(f"no step is waiting for approval, so there is nothing to {action}")
            elif proposal is None:
                raise Conflict(f"the message does not say which proposal you saw, so I will not {action} "
                               f"{pending.tool} unseen; use the card's buttons")  # fmt: skip
            elif action == "approve":
                self.approve(session_id, pending.id, owner, proposal)
            else:
                self.reject(session_id, pending.id, owner, proposal, text)
        except (Conflict, InvalidParams) as exc:
            with self._write(session_id) as db:
                self._say(db, db.get_one(SessionRow, session_id), f"I could not {action.replace('_', ' ')}: {exc}.")

    def _llm_reply(self, session_id: str, text: str, replan: bool) -> None:
        """Planning thread: the LLM answers a message the rule-based reader did not understand; then
        the plan is re-made, since the message may hold rules the coordinator must honour."""
        with self.store.transaction() as db:
            session = db.get_one(SessionRow, session_id)
            state, usage = self.planner.state(db, session), Usage.model_validate(session.llm_usage or {})
        answer = self.agents.reply(text, state, usage, lambda token: self._token(session_id, token))
        with self._write(session_id) as db:
            session = db.get_one(SessionRow, session_id)
            if answer is not None:
                session.llm_usage = usage_after(session, answer[1])
                keep_requests(db, session.id, answer[1])
            self._say(db, session, answer[0] if answer and answer[0] else "The LLM could not answer; " + CHAT_HELP)
        if replan:
            self._advance(session_id)

    def _token(self, session_id: str, text: str) -> None:
        """A piece of the assistant's streamed answer: sent live, not stored (the whole message is)."""
        self.bus.publish(session_id, EventView(seq=0, type="token", at=now(), data={"text": text}))

    def _say(self, db: Session, session: SessionRow, text: str) -> None:
        message = MessageRow(session_id=session.id, role="assistant", text=text)
        db.add(message)
        db.flush()
        self._emit(db, session, "message", {"id": message.id, "role": "assistant", "text": text})

    def accept_rules(self, session_id: str, owner: str, suggestion: str) -> SessionView:
        """Put the rules an LLM suggested in force, named by the suggestion's id; only what still tightens
        the rules in force applies (the person may have changed them since)."""
        with self._write(session_id) as db:
            session = self._owned(db, session_id, owner)
            pending = views.suggested_rules(session)
            if pending is None or pending.id != suggestion:
                raise Stale(f"the rule suggestion {suggestion!r} is not waiting for you, so nothing changed",
                            pending.model_dump() if pending else None)  # fmt: skip
            current = Guidance.model_validate(session.guidance)
            guidance, changes, _ = suggest(current, pending.guidance)
            session.rule_suggestion = {**(session.rule_suggestion or {}), "suggestion": None}
            self._set_rules(db, session, guidance, changes, by="you, accepting the LLM's suggestion")
            self._say(db, session, f"Accepted the suggested rules: {'; '.join(changes) or 'nothing left to change'}.")
            replan = self._reopen(db, session)
        if replan:
            self._schedule(session_id)
        return self.get_session(session_id, owner)

    def _suggest_rules(self, db: Session, session: SessionRow, read: Guidance) -> None:
        """Rules the LLM read from the chat: what tightens the rules in force waits for the person's
        acceptance; what would loosen them is refused and said. The same reading is told once."""
        stored = session.rule_suggestion or {}
        if stored.get("read") == read.model_dump():
            return
        tightened, changes, refused = suggest(Guidance.model_validate(session.guidance), read)
        pending = RuleSuggestion(id=uuid.uuid4().hex, guidance=tightened, changes=changes) if changes else None
        session.rule_suggestion = {"read": read.model_dump(), "suggestion": pending.model_dump() if pending else None}
        if refused:
            self._say(db, session, f"The LLM read in your messages a wish {'; '.join(refused)}. Your rules stay "
                                   "as they are: change them yourself in the chat if you mean it.")  # fmt: skip
        if pending is not None:
            self._emit(db, session, "rules_suggested", pending.model_dump())
            self._say(db, session, f"The LLM suggests these rules: {'; '.join(changes)}. They apply only once you "
                                   "accept them (say \"accept the rules\", or use the Accept button).")  # fmt: skip

    def _set_rules(self, db: Session, session: SessionRow, guidance: Guidance, changes: list[str], by: str) -> None:
        """Every change to the rules in force goes through here, and is an event."""
        session.guidance = guidance.model_dump()
        self._emit(db, session, "rules_changed", {"guidance": session.guidance, "changes": changes, "by": by})


def usage_after(session: SessionRow, spent: Usage) -> dict[str, int]:
    return Usage.model_validate(session.llm_usage or {}).plus(spent).model_dump()
