"""A version's latency: a (shifted) lognormal given by its median and p99, its
transforms (latency faults) and the histogram bucket probabilities the fast path uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.inputs.scenario import ISTIO_BUCKETS_MS
from sim.world.service import LatencyDist

BOUNDS = tuple(float(b) for b in ISTIO_BUCKETS_MS)


@pytest.mark.parametrize("median,p99", [(40.0, 250.0), (1.0, 1.5), (300.0, 3000.0), (5.0, 5.0)])
def test_from_quantiles_gives_back_median_and_p99(median, p99):
    d = LatencyDist.from_quantiles(median, p99)
    assert d.quantile(0.5) == pytest.approx(median)
    assert d.quantile(0.99) == pytest.approx(p99)
    assert d.shift == 0.0


def test_cdf_and_quantile_are_inverse():
    d = LatencyDist.from_quantiles(40.0, 250.0).shifted(12.0)
    for q in (0.01, 0.25, 0.5, 0.9, 0.999):
        assert float(d.cdf(np.array([d.quantile(q)]))[0]) == pytest.approx(q)


def test_cdf_is_zero_at_or_below_the_shift():
    d = LatencyDist.from_quantiles(40.0, 250.0).shifted(30.0)
    np.testing.assert_array_equal(d.cdf(np.array([-5.0, 0.0, 10.0, 30.0])), [0.0, 0.0, 0.0, 0.0])
    assert float(d.cdf(np.array([30.001]))[0]) > 0.0


def test_cdf_matches_scipy_lognorm():
    d = LatencyDist.from_quantiles(40.0, 250.0)
    x = np.array([1.0, 10.0, 40.0, 100.0, 250.0, 1000.0])
    ref = stats.lognorm(s=d.sigma, scale=math.exp(d.mu))
    np.testing.assert_allclose(d.cdf(x), ref.cdf(x))


def test_shifted_adds_a_constant_to_every_quantile():
    d = LatencyDist.from_quantiles(40.0, 250.0)
    s = d.shifted(100.0)
    for q in (0.1, 0.5, 0.99):
        assert s.quantile(q) == pytest.approx(d.quantile(q) + 100.0)
    # Shifts add up.
    assert d.shifted(10.0).shifted(5.0) == d.shifted(15.0)


def test_scaled_multiplies_every_quantile():
    d = LatencyDist.from_quantiles(40.0, 250.0)
    for base in (d, d.shifted(20.0)):
        s = base.scaled(2.5)
        for q in (0.1, 0.5, 0.99):
            assert s.quantile(q) == pytest.approx(2.5 * base.quantile(q))


def test_with_p99_keeps_the_median_and_moves_the_p99():
    d = LatencyDist.from_quantiles(40.0, 250.0)
    for target in (100.0, 400.0, 2000.0):
        s = d.with_p99(target)
        assert s.quantile(0.5) == pytest.approx(40.0)
        assert s.quantile(0.99) == pytest.approx(target)


def test_with_p99_on_a_shifted_distribution_keeps_the_shift_and_hits_the_p99():
    d = LatencyDist.from_quantiles(40.0, 250.0).shifted(50.0)
    s = d.with_p99(900.0)
    assert s.shift == 50.0
    assert s.quantile(0.5) == pytest.approx(d.quantile(0.5))
    assert s.quantile(0.99) == pytest.approx(900.0)


def test_with_p99_below_the_median_collapses_the_tail_to_the_median():
    """A p99 below the median is impossible; the tail is shrunk to nothing (σ = 0)."""
    d = LatencyDist.from_quantiles(40.0, 250.0)
    s = d.with_p99(10.0)
    assert s.sigma == 0.0
    assert s.quantile(0.99) == pytest.approx(40.0)


@pytest.mark.parametrize(
    "dist",
    [
        LatencyDist.from_quantiles(40.0, 250.0),
        LatencyDist.from_quantiles(40.0, 250.0).shifted(300.0),
        LatencyDist.from_quantiles(0.2, 0.3),
        LatencyDist.from_quantiles(5000.0, 4e6),
        LatencyDist.from_quantiles(40.0, 250.0).with_p99(1.0),  # σ = 0: a point mass at 40 ms
    ],
)
def test_bucket_probs_sum_to_one_and_are_cdf_differences(dist):
    p = dist.bucket_probs(BOUNDS)
    assert p.shape == (len(BOUNDS) + 1,)
    assert np.all(p >= 0.0)
    assert float(p.sum()) == pytest.approx(1.0)
    c = dist.cdf(np.array(BOUNDS))
    np.testing.assert_allclose(p[0], c[0], atol=1e-15)
    np.testing.assert_allclose(p[1:-1], np.diff(c), atol=1e-15)
    np.testing.assert_allclose(p[-1], 1.0 - c[-1], atol=1e-15)


def test_point_mass_falls_in_the_bucket_holding_it():
    p = LatencyDist.from_quantiles(40.0, 250.0).with_p99(1.0).bucket_probs(BOUNDS)
    assert p[BOUNDS.index(50.0)] == 1.0  # 40 ms is in (25, 50]


def test_bucket_probs_are_read_only():
    """They are cached and shared: nobody may write into them."""
    p = LatencyDist.from_quantiles(40.0, 250.0).bucket_probs(BOUNDS)
    with pytest.raises(ValueError):
        p[0] = 1.0


def _sample(d: LatencyDist, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws from the shifted lognormal by its definition (the reference for the cdf)."""
    return d.shift + np.exp(d.mu + d.sigma * rng.standard_normal(n))


def test_sampling_agrees_with_the_cdf():
    d = LatencyDist.from_quantiles(40.0, 250.0).shifted(7.0)
    x = _sample(d, np.random.default_rng(20240501), 20000)
    assert x.min() > 7.0
    res = stats.kstest(x, lambda v: d.cdf(np.asarray(v)))
    assert res.pvalue > 0.01


def test_sampled_buckets_match_bucket_probs():
    d = LatencyDist.from_quantiles(40.0, 250.0)
    n = 50000
    x = _sample(d, np.random.default_rng(7), n)
    counts = np.bincount(np.searchsorted(BOUNDS, x, side="left"), minlength=len(BOUNDS) + 1)
    p = d.bucket_probs(BOUNDS)
    keep = p * n > 5
    res = stats.chisquare(counts[keep], p[keep] / p[keep].sum() * counts[keep].sum())
    assert res.pvalue > 0.001
