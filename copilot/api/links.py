"""OpenAPI links: which call follows from an answer, and where its ids come from.

A generated client and a stateful fuzzer read them the same way: a created session's ``id`` is the
``session_id`` of every call on it, and a session waiting at the gate names the step, proposal and preview
that approving, editing or rejecting it needs.
"""

from __future__ import annotations

from typing import Any

SESSION = "$response.body#/id"
PENDING = "$response.body#/pending_step"
_ON_SESSION = ("get_session", "get_profile", "list_versions", "list_events", "list_messages", "get_report",
               "get_pipeline", "undo_step", "stop_session")  # fmt: skip


def _session_calls() -> dict[str, dict[str, Any]]:
    return {op: {"operationId": op, "parameters": {"session_id": SESSION}} for op in _ON_SESSION}


def _gate_calls() -> dict[str, dict[str, Any]]:
    step = {"session_id": SESSION, "step_id": f"{PENDING}/id"}
    proposal = f"{PENDING}/proposal"
    return {
        "approve_step": {"operationId": "approve_step", "parameters": step,
                         "requestBody": {"proposal": proposal, "preview": f"{PENDING}/preview/id"}},
        "preview_step": {"operationId": "preview_step", "parameters": step,
                         "requestBody": {"proposal": proposal, "params": f"{PENDING}/params"}},
        "reject_step": {"operationId": "reject_step", "parameters": step,
                        "requestBody": {"proposal": proposal, "reason": "not this step"}},
        "preview_rows": {"operationId": "preview_rows",
                         "parameters": {"session_id": SESSION, "preview_id": f"{PENDING}/preview/id"}},
    }  # fmt: skip


#: For each operation's success status, the calls its answer leads to.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("create_session", "201"): _session_calls(),
    ("create_session_from_path", "201"): _session_calls(),
    ("create_demo_session", "201"): _session_calls(),
    ("get_session", "200"): _session_calls() | _gate_calls(),
    ("approve_step", "200"): _session_calls() | _gate_calls(),
    ("preview_step", "200"): _session_calls() | _gate_calls(),
    ("reject_step", "200"): _session_calls() | _gate_calls(),
}


def add_links(schema: dict[str, Any]) -> None:
    """Put :data:`LINKS` on the operations of ``schema`` that it has."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for (op, status), links in LINKS.items():
                if operation.get("operationId") == op and status in operation.get("responses", {}):
                    operation["responses"][status]["links"] = links
