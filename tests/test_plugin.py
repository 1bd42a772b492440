"""The example plugin installs as a package, shows up in the registry and runs through `copilot clean`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.copilot.test_clean_e2e import copilot

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Install the plugin with pip into a folder of its own, put on the CLI's path."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True, timeout=300)  # fmt: skip
    return {"PYTHONPATH": os.pathsep.join([str(site), str(Path.cwd())])}


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x[:3] = [40.0, -35.0, 50.0]  # extreme values the plugin should tame
    return pd.DataFrame({"x": x, "z": rng.normal(0, 1, n), "y": np.where(x + rng.normal(0, 1, n) > 0, "a", "b")})


def test_plugin_is_listed_with_its_source(installed: dict[str, str], tmp_path: Path) -> None:
    listing = json.loads(copilot("tools", "--json", data_dir=tmp_path, env=installed).stdout)
    tools = {t["name"]: t for t in listing["tools"]}
    assert tools["winsorize"]["category"] == "anomalies" and tools["winsorize"]["mutates"]
    assert set(tools["winsorize"]["params_schema"]["properties"]) == {"lower", "upper", "columns"}
    human = copilot("tools", data_dir=tmp_path, env=installed).stdout
    assert "winsorize" in human and "copilot-winsorize" in human


def test_plugin_runs_in_clean_and_reapplies(installed: dict[str, str], tmp_path: Path) -> None:
    _table(200, 0).to_csv(tmp_path / "train.csv", index=False)
    _table(50, 1).to_csv(tmp_path / "test.csv", index=False)
    request = 'winsorize:{"lower": 0.05, "upper": 0.95}'
    copilot("clean", str(tmp_path / "train.csv"), "-t", "y", "-o", str(tmp_path / "out.csv"), "--yes",
            "--step", request, data_dir=tmp_path / "data", env=installed)  # fmt: skip
    spec = json.loads((tmp_path / "out.pipeline.json").read_text())
    step = next(s for s in spec["steps"] if s["tool"] == "winsorize")
    low, high = step["fitted"]["bounds"]["x"]
    cleaned = pd.read_csv(tmp_path / "out.csv")
    assert cleaned["x"].max() <= high + 1e-12 and cleaned["x"].min() >= low - 1e-12
    assert high < 5  # the extreme values were clipped, not kept
    copilot("apply", str(tmp_path / "out.pipeline.json"), str(tmp_path / "test.csv"), "-o",
            str(tmp_path / "applied.csv"), data_dir=tmp_path / "data", env=installed)  # fmt: skip
    applied = pd.read_csv(tmp_path / "applied.csv")
    assert applied["x"].max() <= high + 1e-12 and applied["x"].min() >= low - 1e-12
    assert len(applied) == 50
