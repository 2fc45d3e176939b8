"""The scenario written: each fitted model lands in its key, loads as pdsim loads it, and
the comment above each block says what was fitted from what."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.calibrate.recording import Recording
from sim.calibrate.scenario_out import calibrate_recording, scenario_of, scenario_yaml

LE = np.array([1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0])


def _recording(requests: np.ndarray, errors: np.ndarray, buckets: np.ndarray) -> Recording:
    t = len(requests)
    return Recording(
        files=("svc.json",),
        provider="istio",
        series=("istio_requests_total", "istio_request_duration_milliseconds_bucket"),
        times_s=1767225600.0 + 15.0 * np.arange(t + 1),
        requests=requests[:, None].astype(float),
        errors=errors[:, None].astype(float),
        pods=("",),
        le_ms=LE,
        buckets=buckets[None, :].astype(float),
        error_buckets=np.zeros(len(LE) + 1),
        interval_buckets=np.tile(buckets / t, (t, 1)),
    )


def _lognormal_buckets(rng: np.random.Generator) -> np.ndarray:
    z = np.exp(rng.normal(math.log(40), 0.8, 50_000))
    return np.histogram(z, bins=np.concatenate([[0], LE, [np.inf]]))[0]


def test_gamma_blocks_of_requests_and_errors_are_written_with_their_comments() -> None:
    rng = np.random.default_rng(20)
    n, w0 = 2880, 20
    g = np.repeat(rng.gamma(2.0, 0.5, n // w0), w0)  # multiplier variance 0.5 per 5-minute block
    req = rng.poisson(300 * g)
    err = rng.binomial(req, np.clip(0.01 * np.repeat(rng.gamma(2.0, 0.5, n // w0), w0), 0, 1))
    cal = calibrate_recording(_recording(req, err, _lognormal_buckets(rng)))
    text = scenario_yaml(cal, "svc")
    scenario = scenario_of(text, "svc.yaml")
    assert scenario.noise.requests is not None and scenario.noise.requests.window == 300
    assert scenario.noise.errors is not None and scenario.noise.errors.window == 300
    assert scenario.noise.errors.dispersion > 2
    assert "noise.requests: gamma blocks of 5m" in text and "noise.errors: gamma blocks of 5m" in text
    assert scenario.baseline.latency.median == pytest.approx(40, rel=0.05)


def test_an_ou_log_rate_is_written_as_a_process_on_rate() -> None:
    rng = np.random.default_rng(21)
    n, sigma, tau = 5760, 0.2, 40.0
    a = math.exp(-1 / tau)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = a * x[i - 1] + math.sqrt(1 - a * a) * sigma * rng.standard_normal()
    req = rng.poisson(300 * np.exp(x - sigma**2 / 2))
    cal = calibrate_recording(_recording(req, rng.binomial(req, 0.01), _lognormal_buckets(rng)))
    scenario = scenario_of(scenario_yaml(cal, "svc"), "svc.yaml")
    (process,) = scenario.noise.processes
    assert process.of == "rate" and process.sigma == pytest.approx(sigma, rel=0.3)
    assert process.tau == pytest.approx(tau * 15, rel=0.5)


def test_a_latency_no_law_fits_is_written_as_the_histogram() -> None:
    rng = np.random.default_rng(22)
    buckets = np.zeros(len(LE) + 1)
    buckets[[1, 4, 8]] = [30_000, 40_000, 30_000]
    req = rng.poisson(300, 480)
    text = scenario_yaml(calibrate_recording(_recording(req, rng.binomial(req, 0.01), buckets)), "svc")
    scenario = scenario_of(text, "svc.yaml")
    hist = scenario.baseline.latency.histogram
    assert hist is not None and hist.counts == [0, 30_000, 0, 0, 40_000, 0, 0, 0, 30_000]
    assert "neither law fits" in text


def test_a_day_with_a_cycle_gets_a_diurnal_rate_starting_at_the_first_timestamp() -> None:
    rng = np.random.default_rng(23)
    n = 5760
    mid = (np.arange(n) + 0.5) * 15
    req = rng.poisson(300 * (1 + 0.5 * np.sin(2 * math.pi * (mid + 21600) / 86400)))
    text = scenario_yaml(calibrate_recording(_recording(req, rng.binomial(req, 0.01), _lognormal_buckets(rng))), "svc")
    diurnal = scenario_of(text, "svc.yaml").traffic.rate.diurnal
    assert diurnal is not None and diurnal.amplitude == pytest.approx(0.5, abs=0.02)
    assert diurnal.phase == pytest.approx(21600, abs=300) and diurnal.period == 86400
    assert "simulated t = 0 is the time of day of the recording's first timestamp" in text.replace("\n#     ", " ")
