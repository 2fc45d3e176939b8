"""The validation issue 15 demands: a recording made by pdsim itself from a known noisy
scenario, exported as query_range JSON, calibrated by ``pdsim calibrate``, and the
calibrated scenario re-simulated for a day: mean rate, error ratio, dispersion of
per-minute and per-5-minute error counts and latency p50/p90/p99 agree within sampling
error (``sim.calibrate.compare``'s intervals).

The known service is overdispersed in requests and errors (``sim.world.noise``), its
pods differ, and its latency is bimodal (a mixture).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.calibrate.compare import between_runs, compare, simulate_stable, stable_series
from sim.calibrate.recording import read_recording
from sim.inputs.scenario import load_scenario
from sim.promql.openmetrics import api_time, api_value
from sim.promql.series import SeriesBatch
from tests.helpers import invoke, write

KNOWN = """
name: known-noisy-service
horizon: 24h
traffic:
  rate: {diurnal: {mean: 20/s, amplitude: 0.3, period: 24h, phase: 6h}}
baseline:
  error_rate: 0.01
  latency: {mixture: [{weight: 0.85, median: 30ms, p99: 90ms}, {weight: 0.15, median: 400ms, p99: 1500ms}]}
  replicas: 3
telemetry:
  scrape_interval: 15s
  provider: istio
noise:
  requests: {dispersion: 4, window: 5m}
  errors: {dispersion: 3, window: 5m}
  pods: {error_rate: 0.3}
"""

EPOCH = 1767225600.0


def _query_range(batch: SeriesBatch) -> str:
    """Run 0's raw series as Prometheus's /api/v1/query_range returns them."""
    result = []
    for k, labels in enumerate(batch.labels):
        kept = np.flatnonzero(batch.present[0, :, k])
        values = [[api_time(EPOCH + float(batch.times_s[s])), api_value(float(batch.values[0, s, k]))] for s in kept]
        if values:
            result.append({"metric": dict(labels), "values": values})
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


@pytest.mark.slow
def test_a_calibrated_scenario_reproduces_the_recording(tmp_path) -> None:
    known = load_scenario(write(tmp_path, "known.yaml", KNOWN))
    export = write(tmp_path, "recorded.json", _query_range(stable_series(known, "istio", 86400.0, seed=1)))
    out = tmp_path / "calibrated.yaml"
    result = invoke("calibrate", export, "-o", out)
    assert result.exit_code == 0, result.stderr
    recorded = read_recording([export])
    calibrated = load_scenario(out)
    simulated = simulate_stable(calibrated, "istio", recorded.duration_s, seed=2)
    # The day's pods are one draw: the error ratio differs between days by their spread.
    assert calibrated.noise.pods is not None and calibrated.noise.pods.error_rate > 0.1
    stats = {s.name: s for s in compare(recorded, simulated, seed=3, between=between_runs(calibrated))}
    for name in (
        "mean rate (requests/s)",
        "error ratio",
        "error dispersion at 60s",
        "error dispersion at 300s",
        "latency p50 (ms)",
        "latency p90 (ms)",
        "latency p99 (ms)",
    ):
        assert not stats[name].poor, stats[name].poor
