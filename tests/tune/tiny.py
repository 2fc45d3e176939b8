"""A tiny TUNE file (two short scenarios, three parameters) the search tests run in seconds."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.flagger import POLICY_FILE

_SCENARIO = """\
name: {name}
horizon: 1h
after_promotion: 10m
traffic:
  rate: 20/s
  users: 2000
baseline:
  error_rate: 0.001
  latency: {{median: 40ms, p99: 250ms}}
release:
  faults: {faults}
telemetry:
  scrape_interval: 15s
  noise: true
"""

#: The base: Flagger's documented canary as a pdsim policy file.
CANARY = POLICY_FILE

SPACE = """\
space:
  policy.flagger.analysis.interval: {choices: [30s, 1m]}
  policy.flagger.analysis.stepWeight: {low: 2, high: 50}
  policy.flagger.analysis.metrics[0].thresholdRange.min: {low: 95.0, high: 99.9}
"""

TUNE = """\
base: canary.yaml
{space}portfolio:
  - {{scenario: good.yaml, weight: 0.8}}
  - {{scenario: bad.yaml, weight: 0.2}}
validation: {{runs: 16}}
objectives: [excess_errors.mean, detection_time_s.median]
constraints:
  false_rollback_rate: {{max: 0.5}}
budget: {budget}
seed: 1
racing: {{min_runs: 4, max_runs: 12, eta: 3}}
{extra}"""


def write_tiny(folder: Path, *, budget: int = 8, space: str = SPACE, extra: str = "") -> Path:
    """Write the tiny TUNE file, its base policy and scenarios into ``folder``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.yaml").write_text(_SCENARIO.format(name="good", faults="[]"))
    (folder / "bad.yaml").write_text(_SCENARIO.format(name="bad", faults="[{kind: error_rate, rate: 0.05, onset: 0s}]"))
    (folder / "canary.yaml").write_text(CANARY)
    path = folder / "tune.yaml"
    path.write_text(TUNE.format(space=space, budget=budget, extra=extra))
    return path
