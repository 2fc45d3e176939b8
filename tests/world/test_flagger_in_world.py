"""Flagger's canary policy driven by the simulated world, tick by tick.

``telemetry: {noise: false}`` makes every metric its expectation, so each run is fully
deterministic and the traces below can be written down by hand from the rules of
fluxcd/flagger (commit 15bd6ad5), ``pkg/controller/scheduler.go``:

* tick 1 (t = interval) picks up the new revision: Progressing, weight 0, canary scaled
  up, nothing analysed (checkCanaryStatus);
* tick 2 runs the pre-rollout hooks only and steps the weight (advanceCanary's
  ``canaryWeight == 0 && Iterations == 0`` branch, then runCanary);
* from tick 3 the metrics are checked; a failure adds one failed check and holds the
  weight; ``failedChecks >= threshold`` rolls back at the start of the next tick;
* at ``weight >= maxWeight``: Promote and Promoting; next tick Finalising (all traffic to
  the primary, runPromotionTrafficShift); next tick Succeeded.

Only the public API is used: ``parse_scenario``, ``scenario_policy`` and ``run_one``.
"""

from __future__ import annotations

import textwrap

import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.runs.runner import run_one
from sim.yamlio import loads_yaml

SEED = 12345

FIELDS = ("tick", "t", "phase", "canary_weight", "routed_weight", "failed_checks", "iterations")


def scenario_text(
    *, rate: str = "50/s", release: str = "{}", step_weight: int = 10, max_weight: int = 50, threshold: int = 5
) -> str:
    return textwrap.dedent(f"""\
        name: flagger-in-world
        horizon: 2h
        traffic:
          rate: {rate}
        baseline:
          error_rate: 0.001
        release: {release}
        telemetry:
          noise: false
        policy:
          flagger:
            analysis:
              interval: 1m
              threshold: {threshold}
              stepWeight: {step_weight}
              maxWeight: {max_weight}
              metrics:
                - name: request-success-rate
                  thresholdRange: {{min: 99}}
                  interval: 1m
        """)


def simulate(text: str):
    scenario = parse_scenario(loads_yaml(text, file="flagger-in-world.yaml"))
    return run_one(scenario, scenario_policy(scenario), SEED, trace=True)


def table(trace: list[dict]) -> list[tuple]:
    """(tick, t, phase, canary_weight, routed_weight, failed_checks, iterations) per line."""
    return [tuple(line[k] for k in FIELDS) for line in trace]


def test_bad_release_is_rolled_back_after_threshold_failed_checks():
    """5% errors against a success-rate min of 99: every check from tick 3 fails; the
    weight stays 10; failed checks count 1..5 at ticks 3-7 and tick 8 (t=480) rolls back
    (scheduler.go advanceCanary threshold check, then rollback: SyncStatus{Failed, 0},
    which zeroes failedChecks, pkg/canary/status.go syncCanaryStatus)."""
    result = simulate(scenario_text(release="{faults: [{kind: error_rate, rate: 0.05}]}"))
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 10, 10, 0, 0),
        (3, 180.0, "Progressing", 10, 10, 1, 0),
        (4, 240.0, "Progressing", 10, 10, 2, 0),
        (5, 300.0, "Progressing", 10, 10, 3, 0),
        (6, 360.0, "Progressing", 10, 10, 4, 0),
        (7, 420.0, "Progressing", 10, 10, 5, 0),
        (8, 480.0, "Failed", 0, 0, 0, 0),
    ]
    rec = result.record
    assert rec.outcome == "rolled_back"
    assert rec.release_bad is True
    assert rec.decision_time_s == 480.0
    assert rec.detection_time_s == 480.0
    assert rec.final_phase == "Failed"
    assert rec.ticks == 8
    assert rec.false_rollback is False and rec.missed is False
    # 10% of 50/s from t=120 to t=480: 1800 requests, 5% failing, 0.1% of them expected anyway.
    assert rec.canary_requests == pytest.approx(1800.0)
    assert rec.canary_errors == pytest.approx(90.0)
    assert rec.excess_errors == pytest.approx(1800.0 * (0.05 - 0.001))


def test_good_release_is_promoted():
    """99.9% success passes every check: weights 10..50 at ticks 2-6, Promote at tick 7
    (weight 50 >= maxWeight, runCanary; Promoting keeps the weight, status.go
    setStatusPhase), Finalising at tick 8 (stepWeightPromotion 0: all traffic to the
    primary, runPromotionTrafficShift), Succeeded at tick 9."""
    result = simulate(scenario_text())
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 10, 10, 0, 0),
        (3, 180.0, "Progressing", 20, 20, 0, 0),
        (4, 240.0, "Progressing", 30, 30, 0, 0),
        (5, 300.0, "Progressing", 40, 40, 0, 0),
        (6, 360.0, "Progressing", 50, 50, 0, 0),
        (7, 420.0, "Promoting", 50, 50, 0, 0),
        (8, 480.0, "Finalising", 0, 0, 0, 0),
        (9, 540.0, "Succeeded", 0, 0, 0, 0),
    ]
    assert [a["action"] for a in result.trace[6]["actions"]] == ["promote"]
    rec = result.record
    assert rec.outcome == "promoted"
    assert rec.release_bad is False
    assert rec.decision_time_s == 420.0
    assert rec.detection_time_s is None
    assert rec.false_rollback is False and rec.missed is False
    assert rec.excess_errors == pytest.approx(0.0, abs=1e-9)
    assert rec.final_phase == "Succeeded"
    assert rec.ticks == 9


def test_weight_overshoots_max_weight():
    """maxWeight 50 with stepWeight 20 routes 20, 40, 60 and then promotes
    (scheduler.go runCanary: ``if canaryWeight < maxWeight`` then ``+= step``)."""
    result = simulate(scenario_text(step_weight=20, max_weight=50))
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 20, 20, 0, 0),
        (3, 180.0, "Progressing", 40, 40, 0, 0),
        (4, 240.0, "Progressing", 60, 60, 0, 0),
        (5, 300.0, "Promoting", 60, 60, 0, 0),
        (6, 360.0, "Finalising", 0, 0, 0, 0),
        (7, 420.0, "Succeeded", 0, 0, 0, 0),
    ]
    assert result.record.outcome == "promoted"
    assert result.record.decision_time_s == 300.0


def test_no_traffic_means_no_data_and_a_rollback():
    """No requests reach the canary, so the success-rate query returns nothing
    (pkg/metrics/providers/prometheus.go RunQuery: ErrNoValuesFound), which
    runBuiltinMetricChecks (scheduler_metrics.go) counts as a failed check: a good
    release is rolled back exactly as a bad one would be."""
    result = simulate(scenario_text(rate="0/s"))
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 10, 10, 0, 0),
        (3, 180.0, "Progressing", 10, 10, 1, 0),
        (4, 240.0, "Progressing", 10, 10, 2, 0),
        (5, 300.0, "Progressing", 10, 10, 3, 0),
        (6, 360.0, "Progressing", 10, 10, 4, 0),
        (7, 420.0, "Progressing", 10, 10, 5, 0),
        (8, 480.0, "Failed", 0, 0, 0, 0),
    ]
    assert all(line["metrics"]["request-success-rate"] is None for line in result.trace)
    rec = result.record
    assert rec.outcome == "rolled_back"
    assert rec.release_bad is False
    assert rec.false_rollback is True
    assert rec.decision_time_s == 480.0
    assert rec.canary_requests == 0.0


def test_slow_canary_start_waits_without_counting():
    """A canary that needs 150s to become ready (scaled up at t=60, ready at t=210):
    ticks 2 and 3 wait on IsCanaryReady's retriable error and count nothing; the first
    step comes at tick 4 (scheduler.go advanceCanary). After the promotion the primary
    rolls out the new spec for 150s too (ready at t=690), so Promoting waits on
    IsPrimaryReady until tick 12."""
    result = simulate(scenario_text(release="{startup: 150s}"))
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 0, 0, 0, 0),
        (3, 180.0, "Progressing", 0, 0, 0, 0),
        (4, 240.0, "Progressing", 10, 10, 0, 0),
        (5, 300.0, "Progressing", 20, 20, 0, 0),
        (6, 360.0, "Progressing", 30, 30, 0, 0),
        (7, 420.0, "Progressing", 40, 40, 0, 0),
        (8, 480.0, "Progressing", 50, 50, 0, 0),
        (9, 540.0, "Promoting", 50, 50, 0, 0),
        (10, 600.0, "Promoting", 50, 50, 0, 0),
        (11, 660.0, "Promoting", 50, 50, 0, 0),
        (12, 720.0, "Finalising", 0, 0, 0, 0),
        (13, 780.0, "Succeeded", 0, 0, 0, 0),
    ]
    assert result.record.outcome == "promoted"
    assert result.record.decision_time_s == 540.0


def test_canary_that_never_becomes_ready_is_rolled_back_at_the_progress_deadline():
    """Scaled up at t=60 and never ready: retriable until 60 + 600 < now
    (pkg/canary/deployment_ready.go isDeploymentReady), so ticks 2-11 wait and tick 12
    (t=720) rolls back (scheduler.go advanceCanary: non-retriable IsCanaryReady)."""
    result = simulate(scenario_text(release="{faults: [{kind: never_ready}]}"))
    expected = [(1, 60.0, "Progressing", 0, 0, 0, 0)]
    expected += [(k, 60.0 * k, "Progressing", 0, 0, 0, 0) for k in range(2, 12)]
    expected += [(12, 720.0, "Failed", 0, 0, 0, 0)]
    assert table(result.trace) == expected
    rec = result.record
    assert rec.outcome == "rolled_back"
    assert rec.decision_time_s == 720.0
    assert rec.canary_requests == 0.0
