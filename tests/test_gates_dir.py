"""The project gates itself: every file in gates/ must pass ``pdsim check`` (exit 0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.gates.decide import load_gates
from tests.helpers import REPO

GATES = sorted((REPO / "gates").glob("*.yaml"))


def test_there_are_gates():
    assert GATES, "gates/ holds no gates file"


@pytest.mark.parametrize("path", GATES, ids=[p.stem for p in GATES])
def test_recommended_policy_passes_its_gates(path: Path, tmp_path: Path):
    gates = load_gates(path)
    # Gates on the recommended policies must be conclusive, not merely not failing.
    assert gates.inconclusive == "fail"
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(cli, ["check", str(path), "--junit", str(junit)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cases = ET.parse(junit).getroot().iter("testcase")
    assert all(c.find("failure") is None and c.find("skipped") is None for c in cases)
