"""A sweep file small enough to run in a test: 2 cells of 4 runs, 2 chunks per cell."""

from __future__ import annotations

from tests.helpers.paths import SCENARIOS

TINY_SWEEP = f"""\
name: tiny
scenario: {SCENARIOS / "error-spike.yaml"}
grid:
  policy.flagger.analysis.threshold: [1, 5]
runs: 4
seed: 5
chunk_size: 2
"""
