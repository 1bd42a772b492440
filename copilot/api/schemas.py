"""Request bodies of the API, and the client frames of the WebSocket (the same actions).

Responses are the engine's read models (``copilot.session.views``) and the few models declared here.
Unknown keys are refused, so a misspelt ``params`` cannot silently approve the proposed parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.llm import Share
from copilot.api.paging import Page
from copilot.session.views import EventView, MessageView, Policy, SessionView, VersionView
from copilot.webhooks.views import DeliveryView, WebhookEvent, WebhookView


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionOptions(_Body):
    """What a new session needs besides the table."""

    target: str = Field(min_length=1, max_length=1000, description="The column to predict.")
    goal: str = Field("", max_length=10_000, description="The goal and domain rules, in plain words.")
    policy: Policy | None = Field(None, description="Approval policy; default: the server's COPILOT_POLICY.")
    id_columns: list[str] = Field(
        default_factory=list, description="Identifier columns: a list, or one comma-separated string."
    )
    llm_share: Share = Field(
        "aggregates",
        description="What an LLM may see of the data: aggregates (counts and coarse statistics), categories (also "
        "the text of common categories) or samples (also a few rows); at most the server's COPILOT_LLM_SHARE.",
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _blank_policy(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("id_columns", mode="before")
    @classmethod
    def _split_columns(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class CreateFromPath(SessionOptions):
    path: str = Field(
        min_length=1, max_length=4096, description="A file inside the server's COPILOT_IMPORT_DIR, relative to it."
    )


ProposalId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


class ApproveRequest(_Body):
    proposal: ProposalId = Field(
        description="The id of the proposal you saw (the session's `pending_step.proposal`); a stale one is a 409."
    )
    preview: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")] | None = Field(
        None,
        description="The preview you saw (`pending_step.preview.id` or its `content_hash`): approving commits "
        "exactly it; another one is a 409.",
    )
    params: dict[str, Any] | None = Field(
        None,
        description="For a read-only step: edited parameters (checked against the tool's schema and your rules); "
        "none: the proposed ones. For a previewed step, if sent, they must be the previewed ones (else a 409): "
        "edit through `.../preview` instead.",
    )


class PreviewRequest(_Body):
    proposal: ProposalId = Field(description="The id of the proposal you saw; a stale one is a 409.")
    params: dict[str, Any] = Field(
        description="The parameters to preview (checked against the tool's schema and your rules); the step comes "
        "back to the gate with a new proposal id and the preview of these."
    )


class RejectRequest(_Body):
    proposal: ProposalId = Field(description="The id of the proposal you saw; a stale one is a 409.")
    reason: str = Field(min_length=1, max_length=2000, description="Why; the coordinator re-plans with it.")


class MessageRequest(_Body):
    text: str = Field(min_length=1, max_length=10_000, description="Chat text: goals, domain rules, questions.")
    proposal: ProposalId | None = Field(
        None, description='The proposal on the person\'s screen: "approve" or "reject" in the text act on it only.'
    )
    suggestion: ProposalId | None = Field(
        None, description='The rule suggestion on the person\'s screen: "accept the rules" acts on it only.'
    )


class AcceptRulesRequest(_Body):
    suggestion: ProposalId = Field(description="The id of the rule suggestion you saw (`rule_suggestion.id`).")


class WebhookRequest(_Body):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where to POST: a URL under a prefix in the server's COPILOT_WEBHOOK_URLS.",
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(get_args(WebhookEvent)),
        min_length=1,
        description="What to be told of: awaiting_approval, step_finished, step_failed, done; default: all four.",
    )

    @field_validator("events")
    @classmethod
    def _once_each(cls, value: list[WebhookEvent]) -> list[WebhookEvent]:
        return list(dict.fromkeys(value))


class ApproveAction(ApproveRequest):
    action: Literal["approve"]
    step_id: int


class PreviewAction(PreviewRequest):
    action: Literal["preview"]
    step_id: int


class RejectAction(RejectRequest):
    action: Literal["reject"]
    step_id: int


class MessageAction(MessageRequest):
    action: Literal["message"]


class AcceptRulesAction(AcceptRulesRequest):
    action: Literal["accept_rules"]


class UndoAction(_Body):
    action: Literal["undo"]


class StopAction(_Body):
    action: Literal["stop"]


Action = ApproveAction | PreviewAction | RejectAction | MessageAction | AcceptRulesAction | UndoAction | StopAction
ClientAction = Annotated[Action, Field(discriminator="action")]


class PluginErrorView(BaseModel):
    entry_point: str
    source: str
    message: str


class ToolView(BaseModel):
    name: str
    description: str
    category: str
    mutates: bool = Field(description="Whether it changes the data (its steps are previewed and approved).")
    train_only: bool = Field(description="Whether it is fitted on the training rows only.")
    params_schema: dict[str, Any] = Field(description="The JSON schema of its parameters.")


class ToolsView(BaseModel):
    tools: list[ToolView] = Field(description="Each tool of the registry, plugins included.")
    plugin_errors: list[PluginErrorView] = Field(description="Plugins that failed to load, and why.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    isolation: str = Field(
        description="The sandbox's layers in words, e.g. 'user, network and pid namespaces: no network; "
        "landlock ABI 7: files, tcp, signals+abstract sockets; audit hooks'."
    )
    kernel_isolation: bool = Field(description="Whether the kernel's layers (namespaces and Landlock) are in force.")
    layers: dict[str, Any] = Field(
        description="Each layer: namespaces, landlock_abi, landlock_tcp, landlock_scoped, audit_hooks."
    )
    tools: int = Field(description="How many tools the registry holds.")


class SessionsPage(Page[SessionView]):
    """The caller's sessions, oldest first."""


class VersionsPage(Page[VersionView]):
    """A session's versions, oldest first."""


class MessagesPage(Page[MessageView]):
    """A session's chat messages, oldest first."""


class EventsPage(Page[EventView]):
    """A session's events in order: the same as the WebSocket sends, for a client that polls."""


class WebhooksPage(Page[WebhookView]):
    """A token's subscriptions, oldest first, deleted ones marked inactive."""


class DeliveriesPage(Page[DeliveryView]):
    """A subscription's delivery log, oldest first."""
