"""Argo's kayenta metric provider, answered by the Kayenta replica.

argoproj/argo-rollouts ``metricproviders/kayenta/kayenta.go``: ``evaluateResult`` (score
truncated to an int; Successful at or above ``pass``, Inconclusive at or above
``marginal``), ``getStartTime`` (the run's start with ``lookback``, else now minus the
metric's ``interval``; an Error without one), ``Run`` (Running, ``resumeDelay`` 15 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.kayenta import RESUME_DELAY_S, config_for, evaluate_result, judge_measurement, scope_window
from sim.policies.judges.base import JudgeData, VersionSeries
from sim.policies.judges.kayenta import KayentaSpec

PROVIDER = {
    "address": "http://kayenta",
    "application": "app",
    "canaryConfigName": "cfg",
    "threshold": {"pass": 90, "marginal": 75},
    "scopes": [
        {
            "name": "default",
            "controlScope": {"scope": "stable", "step": 60},
            "experimentScope": {"scope": "canary", "step": 60},
        }
    ],
}


@pytest.mark.parametrize(
    "score, phase",
    [
        (100, ar.SUCCESSFUL),
        (90.0, ar.SUCCESSFUL),
        (89.99, ar.INCONCLUSIVE),
        (75, ar.INCONCLUSIVE),
        (74.9, ar.FAILED),
        (0, ar.FAILED),
    ],
)
def test_evaluate_result_truncates_the_score(score, phase):
    assert evaluate_result(score, 90, 75) == phase


def _data(
    seconds: float, canary_error: float, primary_error: float, rate: float = 200.0, scrape: float = 15.0, seed: int = 0
) -> JudgeData:
    """Counters of both versions, slot by slot, for ``seconds`` (slot 0 empty)."""
    rng = np.random.default_rng(seed)
    k = int(seconds // scrape) + 1
    n = rng.poisson(rate * scrape, size=(2, k)).astype(float)
    n[:, 0] = 0
    e = rng.binomial(n.astype(int), [[canary_error], [primary_error]]).astype(float)
    return JudgeData(seconds, scrape, (25.0, 50.0, 100.0), VersionSeries(n[0], e[0]), VersionSeries(n[1], e[1]))


def test_scope_window_keeps_the_slots_scraped_by_its_end():
    data = _data(600, 0.01, 0.01)
    cut = scope_window(data, 0.0, 300.0)
    assert cut.t == 300.0 and len(cut.canary.requests) == 21 and len(cut.primary.errors) == 21
    assert np.array_equal(cut.canary.requests, data.canary.requests[:21])


def test_config_for_takes_the_named_config_and_the_scope_step():
    named = KayentaSpec(step="2m")
    assert config_for(PROVIDER, {"cfg": named}).step == 60.0
    assert config_for({**PROVIDER, "scopes": []}, {"cfg": named}).step == 120.0
    assert config_for(PROVIDER, {}).metrics == KayentaSpec().metrics  # the default config


def test_a_regressed_canary_fails_and_a_healthy_one_succeeds():
    bad = judge_measurement(PROVIDER, config_for(PROVIDER, {}), _data(1800, 0.05, 0.005), 0.0, 1800.0, 1800.0)
    good = judge_measurement(PROVIDER, config_for(PROVIDER, {}), _data(1800, 0.005, 0.005), 0.0, 1800.0, 1800.0)
    assert isinstance(bad, ar.ProviderPhase) and bad.phase == ar.FAILED and bad.value < 75
    assert isinstance(good, ar.ProviderPhase) and good.phase == ar.SUCCESSFUL and good.value >= 90


def test_the_scope_without_lookback_is_the_last_interval():
    """The canary was bad in the first 25 minutes only: a 5-minute scope ending at 30 min
    sees a healthy canary, a lookback scope from the run's start sees the regression."""
    early = _data(1800, 0.05, 0.005)
    late = _data(1800, 0.005, 0.005, seed=1)
    mixed = JudgeData(
        1800,
        15.0,
        early.bounds_ms,
        VersionSeries(
            np.concatenate([early.canary.requests[:101], late.canary.requests[101:]]),
            np.concatenate([early.canary.errors[:101], late.canary.errors[101:]]),
        ),
        VersionSeries(
            np.concatenate([early.primary.requests[:101], late.primary.requests[101:]]),
            np.concatenate([early.primary.errors[:101], late.primary.errors[101:]]),
        ),
    )
    recent = judge_measurement(PROVIDER, config_for(PROVIDER, {}), mixed, 0.0, 1800.0, 300.0)
    whole = judge_measurement({**PROVIDER, "lookback": True}, config_for(PROVIDER, {}), mixed, 0.0, 1800.0, 600.0)
    assert recent.phase == ar.SUCCESSFUL and whole.phase == ar.FAILED


def test_without_interval_or_lookback_the_measurement_errs():
    got = judge_measurement(PROVIDER, config_for(PROVIDER, {}), _data(600, 0.01, 0.01), 0.0, 600.0, None)
    assert isinstance(got, ar.ProviderError) and "interval" in got.message


def test_without_counters_the_measurement_errs():
    assert isinstance(judge_measurement(PROVIDER, KayentaSpec(), None, 0.0, 60.0, 60.0), ar.ProviderError)


def test_argo_polls_after_fifteen_seconds():
    assert RESUME_DELAY_S == 15.0


# -- through the world ------------------------------------------------------------------------

SCENARIO = """\
name: argo-kayenta
horizon: 2h
after_promotion: 0s
traffic: {{rate: 200/s, users: 5000}}
baseline: {{error_rate: 0.005}}
release: {{startup: 0s, faults: [{faults}]}}
policy:
  argo:
    strategy:
      canary:
        trafficRouting: {{istio: {{virtualService: {{name: vs}}}}}}
        steps:
          - setWeight: 20
          - pause: {{duration: 10m}}
          - analysis: {{templates: [{{templateName: kayenta}}]}}
          - setWeight: 50
          - pause: {{duration: 10m}}
    templates:
      kayenta:
        metrics:
          - name: kayenta
            interval: 10m
            count: 1
            provider:
              kayenta:
                address: http://kayenta:8090
                application: app
                canaryConfigName: errors
                threshold: {{pass: 90, marginal: 75}}
                scopes:
                  - name: default
                    controlScope: {{scope: app=stable, step: 60}}
                    experimentScope: {{scope: app=canary, step: 60}}
"""


def _world(faults: str, seed: int):
    from sim.inputs.policy import scenario_policy
    from sim.inputs.scenario import parse_scenario
    from sim.runs.runner import run_one
    from sim.seeds import run_seed
    from sim.yamlio import loads_yaml

    sc = parse_scenario(loads_yaml(SCENARIO.format(faults=faults)))
    return run_one(sc, scenario_policy(sc), run_seed(seed, 0, 0), trace=True)


def test_the_world_feeds_the_replica_and_a_bad_canary_is_aborted_at_the_judgement():
    """The analysis step at 10 minutes asks Kayenta about the last 10 minutes of both
    versions (the canary at 20%): 5% errors against 0.5% scores 0 -> Failed -> abort at the
    poll, 15 s after the step's run started at 615 s."""
    result = _world("{kind: error_rate, rate: 0.05}", 1)
    assert result.record.outcome == "rolled_back"
    assert result.record.rollback_reason == "step:2 analysis phase failed"
    assert result.record.decision_time_s == 615 + RESUME_DELAY_S


def test_a_good_canary_passes_the_judgement_and_is_promoted():
    """The canary is available at the 15 s resync, so the 10m pause runs 15-615 s; the
    step's run starts at 615 and the judgement passes when polled at 630 (the step completes
    only on a Successful run); then setWeight 50 and the 10m pause: promoted at 1,230 s."""
    result = _world("", 2)
    assert result.record.outcome == "promoted"
    assert [line["analysis_runs"]["step:2"]["phase"] for line in result.trace if "step:2" in line["analysis_runs"]] == [
        "Running"
    ]
    advanced = next(line for line in result.trace if line["step_index"] >= 3)
    assert advanced["t"] == 615 + RESUME_DELAY_S
    assert result.record.decision_time_s == advanced["t"] + 600
