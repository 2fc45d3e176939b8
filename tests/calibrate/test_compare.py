"""The stable-service simulation behind ``--report`` and the recorded-against-simulated
comparison (sim.calibrate.compare)."""

from __future__ import annotations

import pytest

from sim.calibrate.compare import compare, simulate_stable
from sim.inputs.scenario import load_scenario
from tests.helpers import write

SERVICE = """
name: stable
horizon: 1h
traffic: {rate: 20/s}
baseline:
  error_rate: 0.01
  latency: {median: 40ms, p99: 250ms}
  replicas: 2
telemetry: {scrape_interval: 15s}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    return load_scenario(write(tmp_path_factory.mktemp("compare"), "stable.yaml", SERVICE))


def test_the_stable_simulation_holds_all_traffic_on_the_primary(scenario) -> None:
    # fluxcd/flagger pkg/controller/scheduler.go checkCanaryStatus: a closed confirm-rollout
    # gate comes before ScaleFromZero, so no request reaches a canary.
    rec = simulate_stable(scenario, "istio", 3600.0, seed=1)
    assert len(rec.pods) == 2 and all("primary" in p for p in rec.pods)
    assert rec.total_requests.sum() / rec.duration_s == pytest.approx(20, rel=0.03)
    assert rec.total_errors.sum() / rec.total_requests.sum() == pytest.approx(0.01, rel=0.15)
    assert rec.step_s == 15.0 and rec.duration_s == 3600.0  # as long as a recording of 1h


def test_a_poor_fit_is_said_and_a_good_one_is_not(scenario) -> None:
    recorded = simulate_stable(scenario, "istio", 3600.0, seed=1)
    same = {s.name: s for s in compare(recorded, simulate_stable(scenario, "istio", 3600.0, seed=2))}
    assert not same["error ratio"].poor and not same["mean rate (requests/s)"].poor
    doubled = scenario.model_copy(update={"baseline": scenario.baseline.model_copy(update={"error_rate": 0.02})})
    worse = {s.name: s for s in compare(recorded, simulate_stable(doubled, "istio", 3600.0, seed=2))}
    assert worse["error ratio"].poor.startswith("The simulated error ratio")
    assert "above the recorded" in worse["error ratio"].poor
    lo, hi = worse["error ratio"].recorded_ci
    assert lo < worse["error ratio"].recorded < hi
