"""The report a file-in, file-out run writes beside its table: the session's report and what it leaves out."""

from __future__ import annotations

from typing import Any

from copilot.session.views import SessionView


def file_report(report: dict[str, Any], session: SessionView, agents: str, missing_target: int) -> dict[str, Any]:
    """The session's report with what it leaves out for a file-in, file-out run."""
    versions = report["versions"]
    current = next(v for v in versions if v["current"])
    warnings = [f"{missing_target} row(s) still have no value for `{session.target}`: the output is not "
                "ML-ready until they are dropped."] if missing_target else []  # fmt: skip
    return report | {
        "columns_before": versions[0]["n_columns"], "columns_after": current["n_columns"], "warnings": warnings,
        "agents": agents, "llm_usage": session.llm_usage, "guidance": session.guidance,
    }  # fmt: skip
