"""A preview in a few lines of plain text, for the terminal: what approving would change, before it is asked."""

from __future__ import annotations

from typing import Any

from copilot.session.views import PreviewView

SHOWN = 5  # rows, cells and columns named before "…"


def preview_lines(preview: PreviewView) -> list[str]:
    """Counts first, then the first dropped rows with their evidence, the changed columns, and the classes."""
    lines = [_counts(preview)]
    if preview.dropped:
        more = f" (first {SHOWN} of {preview.dropped_rows})" if preview.dropped_rows > SHOWN else ""
        rows = "; ".join(f"row {r.row}{_evidence(r.evidence)}" for r in preview.dropped[:SHOWN])
        lines.append(f"would drop{more}: {rows}")
    changed = [c for c in preview.columns if c.changed or c.dtype_before != c.dtype_after]
    if changed:
        parts = [f"{c.column} {c.changed} cells" + (f" ({c.dtype_before} → {c.dtype_after})"
                                                      if c.dtype_before != c.dtype_after else "")
                 for c in changed[:SHOWN]]  # fmt: skip
        lines.append("would change: " + ", ".join(parts) + (" …" if len(changed) > SHOWN else ""))
        examples = "; ".join(f"row {c.row} {c.column} {_value(c.before)} → {_value(c.after)}"
                             for c in preview.cells[:3])  # fmt: skip
        if examples:
            lines.append(f"e.g. {examples}")
    for what, names in (("adds columns", preview.columns_added), ("removes columns", preview.columns_removed)):
        if names:
            lines.append(f"{what}: " + ", ".join(names[:SHOWN]) + (" …" if len(names) > SHOWN else ""))
    counts = preview.class_counts or {}
    moved = {k: v for k, v in counts.items() if v[0] != v[1]}
    if moved:
        lines.append("classes: " + ", ".join(f"{k} {b} → {a}" for k, (b, a) in list(moved.items())[:SHOWN]))
    return lines + _mapping_lines(preview)


def _mapping_lines(preview: PreviewView) -> list[str]:
    """One line per column whose spellings the step would gather: ``sex: 'male', 'M' → 'Male'``."""
    lines = []
    for column, groups in list(preview.mappings.items())[:SHOWN]:
        parts = [", ".join(repr(v) for v in g.variants if v != g.category) + f" → {g.category!r}" for g in groups]
        lines.append(f"would map {column}: " + "; ".join(parts[:SHOWN]) + (" …" if len(parts) > SHOWN else ""))
    return lines


def _counts(preview: PreviewView) -> str:
    rows = f"{preview.rows_before} → {preview.rows_after} rows" if preview.rows_after != preview.rows_before \
        else f"{preview.rows_after} rows"  # fmt: skip
    if preview.rows_after == preview.rows_before and not preview.changed_cells and \
            preview.columns_before == preview.columns_after and not preview.columns_added:  # fmt: skip
        return f"preview: no change to the data ({rows} × {preview.columns_after} columns)"
    return f"preview: {rows} × {preview.columns_after} columns, {preview.changed_cells} cells changed"


def _evidence(evidence: dict[str, Any]) -> str:
    shown = ", ".join(f"{k} {_value(v)}" for k, v in evidence.items() if k != "action")
    return f" ({shown})" if shown else ""


def _value(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)
