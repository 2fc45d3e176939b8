"""Each fit on synthetic data with a known truth (sim.calibrate.fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.calibrate import fit

STEP = 15.0


def _ou(n: int, sigma: float, tau: float, rng: np.random.Generator) -> np.ndarray:
    a = math.exp(-1 / tau)
    x = np.zeros(n)
    x[0] = sigma * rng.standard_normal()
    for i in range(1, n):
        x[i] = a * x[i - 1] + math.sqrt(1 - a * a) * sigma * rng.standard_normal()
    return x


def test_daily_cycle_recovered_with_the_phase_of_the_first_timestamp() -> None:
    # Diurnal's law (sim/inputs/scenario.py): mean (1 + a sin(2π (t + phase) / period)).
    rng = np.random.default_rng(1)
    n = 5760
    mid = (np.arange(n) + 0.5) * STEP
    truth = 20 * STEP * (1 + 0.4 * np.sin(2 * math.pi * (mid + 18000) / fit.DAY_S))
    prof = fit.fit_profile(rng.poisson(truth), STEP)
    assert prof.mean.value == pytest.approx(20, abs=4 * prof.mean.se)
    assert prof.amplitude is not None and prof.amplitude.value == pytest.approx(0.4, abs=4 * prof.amplitude.se)
    assert prof.phase_s is not None and prof.phase_s.value == pytest.approx(18000, abs=4 * prof.phase_s.se)
    np.testing.assert_allclose(prof.expected, truth, rtol=0.02)


def test_short_or_flat_recordings_get_a_constant_rate() -> None:
    rng = np.random.default_rng(2)
    assert fit.fit_profile(rng.poisson(300, 240), STEP).amplitude is None  # an hour
    assert fit.fit_profile(rng.poisson(300, 5760), STEP).amplitude is None  # a flat day


def test_poisson_counts_have_dispersion_one_and_the_poisson_model() -> None:
    rng = np.random.default_rng(3)
    c = rng.poisson(300, 5760)
    e = np.full(5760, 300.0)
    d = fit.dispersion_index(c, e, [1, 4, 20])
    assert np.all(np.abs(d.index - 1) < 3 * d.se)
    noise = fit.fit_count_noise(d, fit.autocorrelation(c, e, 10), 5760, 300.0, STEP)
    assert noise.kind == "poisson"


def test_gamma_blocks_recovered_from_dispersion_and_autocorrelation() -> None:
    rng = np.random.default_rng(4)
    n, w0, d_true, mu = 5760, 20, 5.0, 300.0
    v = (d_true - 1) / (mu * w0)  # variance of the multiplier: index d at the window
    g = np.repeat(rng.gamma(1 / v, v, n // w0), w0)
    c = rng.poisson(mu * g)
    e = np.full(n, mu)
    d = fit.dispersion_index(c, e, [1, 4, 20, 80])
    noise = fit.fit_count_noise(d, fit.autocorrelation(c, e, 10), n, mu, STEP)
    assert noise.kind == "blocks" and noise.window_s == w0 * STEP
    assert noise.dispersion is not None and noise.dispersion.value == pytest.approx(d_true, rel=0.3)


def test_ou_log_rate_recovered() -> None:
    rng = np.random.default_rng(5)
    n, sigma, tau, mu = 5760, 0.2, 40.0, 300.0
    c = rng.poisson(mu * np.exp(_ou(n, sigma, tau, rng) - sigma**2 / 2))
    e = np.full(n, mu)
    d = fit.dispersion_index(c, e, [1, 4, 20, 60])
    noise = fit.fit_count_noise(d, fit.autocorrelation(c, e, 10), n, mu, STEP)
    assert noise.kind == "ou"
    assert noise.sigma is not None and noise.sigma.value == pytest.approx(sigma, rel=0.3)
    assert noise.tau_s is not None and noise.tau_s.value == pytest.approx(tau * STEP, rel=0.5)


def test_model_moments_agree_with_simulation() -> None:
    # The closed forms the fit matches, checked against draws of their own models.
    rng = np.random.default_rng(6)
    sigma, tau, mu = 0.3, 10.0, 50.0
    c = rng.poisson(mu * np.exp(_ou(200_000, sigma, tau, rng) - sigma**2 / 2))
    d = fit.dispersion_index(c, np.full(len(c), mu), [1, 5])
    np.testing.assert_allclose(d.index, fit.ou_dispersion(np.array([1, 5]), sigma, tau, mu), rtol=0.08)
    np.testing.assert_allclose(
        fit.autocorrelation(c, np.full(len(c), mu), 2), fit.ou_acf(np.array([1, 2]), sigma, tau, mu), atol=0.02
    )


def test_error_dispersion_given_requests_is_one_for_binomial_and_grows_with_shocks() -> None:
    rng = np.random.default_rng(7)
    n = rng.poisson(300, 5760).astype(float)
    p = 0.01
    binom = rng.binomial(n.astype(int), p)
    d = fit.dispersion_index(binom, p * n, [1, 4, 20], trials=n)
    assert np.all(np.abs(d.index - 1) < 3 * d.se)
    shocked = rng.binomial(n.astype(int), np.clip(p * np.repeat(rng.gamma(2, 0.5, 5760 // 4), 4), 0, 1))
    d2 = fit.dispersion_index(shocked, p * n, [1, 4, 20], trials=n)
    # Var of a 4-interval window: N p + (N p)² / 2 (gamma of shape 2), N p = 12.
    assert d2.index[1] == pytest.approx(1 + 12 / 2, rel=0.15)


def test_pod_heterogeneity_recovered_and_zero_for_identical_pods() -> None:
    rng = np.random.default_rng(8)
    pods, sd = 200, 0.5
    mult = np.exp(rng.normal(-(sd**2) / 2, sd, pods))
    req = np.full((10, pods), 2000.0)
    err = rng.binomial(2000, np.clip(0.01 * mult, 0, 1), size=(10, pods)).astype(float)
    est = fit.pod_error_sd(err, req)
    assert est is not None and est.value == pytest.approx(sd, rel=0.2)
    same = rng.binomial(2000, 0.01, size=(10, pods)).astype(float)
    flat = fit.pod_error_sd(same, req)
    assert flat is not None and flat.value < 0.1
    assert fit.pod_error_sd(err[:, :1], req[:, :1]) is None


LE = np.array([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000])


def _hist(z: np.ndarray) -> np.ndarray:
    return np.histogram(z, bins=np.concatenate([[0], LE, [np.inf]]))[0].astype(float)


def test_lognormal_latency_recovered_from_buckets() -> None:
    rng = np.random.default_rng(9)
    z = np.exp(rng.normal(math.log(40), math.log(250 / 40) / fit.Z99, 100_000))
    law = fit.fit_latency(LE, _hist(z))
    assert law is not None and law.kind == "lognormal"
    _, med, p99 = law.components[0]
    assert med.value == pytest.approx(40, abs=4 * med.se)
    assert p99.value == pytest.approx(250, abs=4 * p99.se)


def test_bimodal_latency_is_a_mixture_by_aic() -> None:
    rng = np.random.default_rng(10)
    z = np.concatenate([np.exp(rng.normal(math.log(5), 0.3, 75_000)), np.exp(rng.normal(math.log(200), 0.4, 25_000))])
    law = fit.fit_latency(LE, _hist(z))
    assert law is not None and law.kind == "mixture"
    (w1, m1, _), (w2, m2, _) = law.components
    assert w1 == pytest.approx(0.75, abs=0.02) and m1.value == pytest.approx(5, rel=0.05)
    assert m2.value == pytest.approx(200, rel=0.05)
    assert law.aic["mixture"] < law.aic["lognormal"] - fit.MIXTURE_AIC_LEAD


def test_a_law_neither_fits_is_written_as_the_histogram() -> None:
    counts = np.zeros(len(LE) + 1)
    counts[[1, 5, 9]] = [30_000, 40_000, 30_000]  # three spikes: no 2-lognormal mixture
    law = fit.fit_latency(LE, counts)
    assert law is not None and law.kind == "histogram" and "neither law fits" in law.why
    assert law.counts[-1] == 30_000 and len(law.le_ms) == 10


def test_bucket_quantile_as_prometheus_interpolates() -> None:
    # prometheus promql/quantile.go bucketQuantile: linear within the bucket holding the
    # rank, from 0 in the first; the highest finite bound in the +Inf bucket.
    le = np.array([10.0, 20.0, 40.0])
    counts = np.array([10.0, 30.0, 40.0, 20.0])  # the last is above 40
    assert fit.bucket_quantile(0.05, le, counts) == pytest.approx(5.0)
    assert fit.bucket_quantile(0.25, le, counts) == pytest.approx(10 + 10 * 15 / 30)
    assert fit.bucket_quantile(0.9, le, counts) == pytest.approx(40.0)


def test_failed_requests_latency_gets_its_own_law_only_when_it_differs() -> None:
    rng = np.random.default_rng(12)
    ok = _hist(np.exp(rng.normal(math.log(40), 0.8, 50_000)))
    same = _hist(np.exp(rng.normal(math.log(40), 0.8, 1_000)))
    timeouts = _hist(rng.uniform(4000, 5000, 1_000))
    assert not fit.errors_differ(LE, ok, same)[0]
    differ, gap = fit.errors_differ(LE, ok, timeouts)
    assert differ and gap > 0.9
    few = _hist(rng.uniform(4000, 5000, fit.MIN_ERROR_OBSERVATIONS - 1))
    assert not fit.errors_differ(LE, ok, few)[0]
