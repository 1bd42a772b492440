"""Plugins made on the fly: a module and a ``dist-info`` folder, found by entry points like an installed package.

Put the folder on a server's ``PYTHONPATH`` and its tools join the registry there, in the API and in the
sandbox children, exactly as a ``pip install``-ed plugin's would.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def plugin_folder(folder: Path, name: str, source: str, tools: dict[str, str]) -> Path:
    """Write module ``name`` with ``source`` and a distribution ``name`` whose ``copilot.tools`` entry
    points are ``tools`` (entry name → class name in the module); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    lines = [f"{entry} = {name}:{cls}" for entry, cls in tools.items()]
    (info / "entry_points.txt").write_text("[copilot.tools]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return folder
