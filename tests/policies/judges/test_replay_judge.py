"""``pdsim replay`` of a judged policy (``sim/replay.py``).

A metric-values CSV has no per-version counters: the judge sees nothing, its verdict is
no data (a failed check), and the replay runs to its decision without crashing.
``counter:<canary|primary>:<requests|errors>`` rows give it the scraped counters.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.inputs.policy import load_policy
from sim.runs.replay import load_observations, replay
from tests.helpers import TEST_FIXTURES

FIXTURES = TEST_FIXTURES / "replay"


def _policy(tmp_path: Path, judge: str = "{kind: sequential, alpha: 0.01}"):
    path = tmp_path / "judged.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        flagger:
          analysis:
            interval: 1m
            threshold: 5
            maxWeight: 50
            stepWeight: 10
            metrics:
              - {{name: request-success-rate, thresholdRange: {{min: 99}}, interval: 1m}}
              - {{name: request-duration, thresholdRange: {{max: 500}}, interval: 1m}}
          judge: {judge}
        """)
    )
    return load_policy([path])


def _counters(tmp_path: Path, canary_error_rate: float, seed: int = 1) -> Path:
    """Cumulative counters every 15 s for 20 minutes: 100 requests/s, 10% to the canary."""
    rng = np.random.default_rng(seed)
    lines = ["t,metric,value"]
    totals = dict.fromkeys(("canary:requests", "canary:errors", "primary:requests", "primary:errors"), 0)
    for k in range(81):
        t = 15.0 * k
        if k:
            for v, share, p in (("canary", 0.1, canary_error_rate), ("primary", 0.9, 0.001)):
                n = int(rng.poisson(100 * 15 * share))
                totals[f"{v}:requests"] += n
                totals[f"{v}:errors"] += int(rng.binomial(n, p))
        lines += [f"{t:g},counter:{key},{value}" for key, value in totals.items()]
        lines.append(f"{t:g},request-duration,200")
    path = tmp_path / "counters.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_without_counters_a_judged_policy_replays_without_crashing(tmp_path):
    result = replay(_policy(tmp_path), load_observations(FIXTURES / "good-release.csv"))
    # Flagger's rule for a metric that returns nothing: failed checks, then rollback.
    assert result.decision == "rolled_back" and result.rollback_reason == "failed checks threshold reached 5"
    assert any("no values found" in line["event"] for line in result.trace)


def test_counter_rows_let_the_judge_reject(tmp_path):
    result = replay(_policy(tmp_path), load_observations(_counters(tmp_path, canary_error_rate=0.05)))
    assert result.decision == "rolled_back"
    assert result.rollback_reason.startswith("judge sequential rejected the canary: e-value")


def test_counter_rows_of_a_good_release_promote(tmp_path):
    result = replay(_policy(tmp_path), load_observations(_counters(tmp_path, canary_error_rate=0.001)))
    assert result.decision == "promoted"


def test_a_judge_of_latency_replays_counters_without_histograms(tmp_path):
    # No histograms in a CSV: the latency test sees no events; errors are still judged.
    result = replay(
        _policy(tmp_path, "{kind: msprt, alpha: 0.01}"), load_observations(_counters(tmp_path, canary_error_rate=0.05))
    )
    assert result.decision == "rolled_back" and result.rollback_reason.startswith("judge msprt")


def test_counter_increments_and_resets():
    from sim.runs.replay import Observations

    obs = Observations.from_rows(
        [
            (0, "counter:canary:requests", 100.0),
            (15, "counter:canary:requests", 130.0),
            (30, "counter:canary:requests", 5.0),
            (45, "counter:canary:requests", 25.0),
        ]
    )
    data = obs.versions(40.0)
    assert data.canary.requests.tolist() == [0.0, 30.0, 5.0]  # baseline, +30, reset to 5
    assert data.primary.requests.tolist() == [0.0, 0.0, 0.0] and data.scrape_s == 15.0
    assert Observations.from_rows([(0, "request-success-rate", 99.0)]).versions(60.0) is None


@pytest.mark.parametrize(
    "row,field",
    [
        ("15,counter:canary:latency,3", "metric"),
        ("15,counter:canary:errors,-1", "value"),
        ("15,counter:primary:requests,", "value"),
    ],
)
def test_bad_counter_rows_are_one_line_errors(tmp_path, row, field):
    path = tmp_path / "bad.csv"
    path.write_text(f"t,metric,value\n{row}\n")
    with pytest.raises(InputError) as err:
        load_observations(path)
    assert str(err.value).startswith(f"{path}:2: {field}:")
