"""Domain errors: a person caused them and can fix them, so they carry a plain message.

Only the outer layers (CLI, API) turn them into exit codes or HTTP statuses.
"""

from __future__ import annotations


class CopilotError(Exception):
    """An error a user can act on; ``str(err)`` is the whole message."""


class InputFileError(CopilotError):
    """The input file cannot be read as a table (names the file, says what to do)."""


class TableError(CopilotError):
    """The table was read but cannot be cleaned as asked (target, rows, columns)."""


class PipelineError(CopilotError):
    """A pipeline spec that cannot be read or applied to the given data."""


class StepFailed(CopilotError):
    """A tool call failed in the sandbox; the input version is untouched."""


class StorageError(CopilotError):
    """The server's own stored data cannot be read (a version's file cut short on disk): not the caller's
    fault, so the API answers 500, with this message rather than a stack trace."""


class NotFound(CopilotError):
    """No such session, step or version for this caller (another owner's look the same)."""


class Conflict(CopilotError):
    """The action does not fit the current state (e.g. approving a rejected step)."""


class Stale(Conflict):
    """An approval, rejection or acceptance names a proposal that is no longer pending; nothing ran.

    ``pending`` is what waits for the person now (None when nothing does), so a client can show it."""

    def __init__(self, message: str, pending: dict[str, object] | None) -> None:
        super().__init__(message)
        self.pending = pending


class InvalidParams(CopilotError):
    """Edited parameters that fail the tool's schema or name unknown columns."""

    def __init__(self, message: str, errors: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.errors = errors


class RuleViolation(InvalidParams):
    """A call whose parameters break a rule the person set; the message quotes the rule."""


class UrlNotAllowed(InvalidParams):
    """A webhook URL outside the server's allow-list (``COPILOT_WEBHOOK_URLS``), or webhooks are off."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [{"loc": ["body", "url"], "msg": message}])


class ExecutorError(CopilotError):
    """The executor of ``COPILOT_EXECUTOR`` cannot run tool calls (Ray missing, no cluster at the address):
    nothing starts, rather than run tools elsewhere than asked."""
