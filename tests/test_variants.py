"""Tests of sim.runs.variants: policy/fault variants (validated like files) and plain-loop grids
on common random numbers."""

from __future__ import annotations

import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import load_scenario
from sim.runs.runner import records_frame, run_batch
from sim.runs.variants import fault_variant, flagger_variant, run_grid
from tests.helpers import SCENARIOS


@pytest.fixture(scope="module")
def spike():
    return load_scenario(SCENARIOS / "error-spike.yaml")


def test_flagger_variant_changes_only_what_it_is_told(spike):
    policy = flagger_variant(spike.policy, name="v", interval="30s", threshold=2, success_rate_min=99.5)
    a = policy.spec.analysis
    assert (a.interval, a.threshold, a.stepWeight, a.maxWeight) == (30.0, 2, 10, 50)
    sr = {q.name: q for q in policy.queries()}
    assert sr["request-success-rate"].min == 99.5 and sr["request-duration"].max == 500
    assert policy.name == "v"


@pytest.mark.parametrize("settings", [{"stepWeight": 150}, {"interval": "soon"}, {"threshold": "x"}])
def test_invalid_variant_raises(spike, settings):
    with pytest.raises(ValueError):
        flagger_variant(spike.policy, name="bad", **settings)


def test_fault_variant(spike):
    milder = fault_variant(spike, rate=0.01)
    assert milder.release.faults[0].rate == 0.01 and spike.release.faults[0].rate == 0.05
    assert milder.name == spike.name  # same name, same seeds: comparable runs
    with pytest.raises(ValueError):
        fault_variant(spike, rate=2.0)
    with pytest.raises(ValueError):
        fault_variant(spike, index=3, rate=0.1)


def test_grid_settings_share_seeds_and_match_run_batch(spike):
    frame = run_grid([spike], spike.policy, {"threshold": [1, 5]}, runs=20)
    assert len(frame) == 40 and sorted(frame["threshold"].unique()) == [1, 5]
    by = {t: f.sort_values("run") for t, f in frame.groupby("threshold")}
    assert list(by[1]["seed"]) == list(by[5]["seed"])  # common random numbers
    # The base setting's runs are exactly what run_batch gives for the scenario's own policy.
    same = run_grid([spike], spike.policy, {"threshold": [5]}, runs=20)
    direct = records_frame(run_batch(spike, scenario_policy(spike), 20, spike.seed))
    assert list(same["excess_errors"]) == list(direct["excess_errors"])
    # A lower threshold detects sooner on every paired run.
    assert (by[1]["decision_time_s"].to_numpy() < by[5]["decision_time_s"].to_numpy()).all()
