"""Latency laws (issue 15): the lognormal, a mixture of lognormals and an empirical
histogram behind one ``LatencyLaw`` contract, their exact bucket tables, the failed
requests' own law, and the per-request mode drawing from them."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from scipy import stats

from sim.errors import InputError
from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import ISTIO_BUCKETS_MS, Scenario, parse_scenario
from sim.promql.histograms import bucket_quantile
from sim.world.controller import World
from sim.world.faults import ReleaseModel
from sim.world.service import HistogramLatency, LatencyDist, LatencyLaw, MixtureLatency, latency_law
from sim.yamlio import loads_yaml

BOUNDS = tuple(float(b) for b in ISTIO_BUCKETS_MS)
#: Bounds that cut through the histogram law's own buckets (a wrong edge shows here).
CUTS = (4.0, 12.0, 15.0, 30.0, 31.0, 70.0, 120.0, 333.0, 999.0)

LOGNORMAL = LatencyDist.from_quantiles(40.0, 250.0)
CACHE_MISS = LatencyDist.from_quantiles(300.0, 2000.0)
MIXTURE = MixtureLatency((3.0, 1.0), (LatencyDist.from_quantiles(20.0, 60.0), CACHE_MISS))
HISTOGRAM = HistogramLatency.from_counts((10.0, 30.0, 100.0, 400.0, 1000.0), (5, 50, 0, 30, 15))

LAWS: dict[str, LatencyLaw] = {
    "lognormal": LOGNORMAL,
    "shifted lognormal": LOGNORMAL.shifted(7.0),
    "mixture": MIXTURE,
    "mixture with a point mass": MixtureLatency((0.5, 0.5), (LOGNORMAL, LOGNORMAL.with_p99(1.0))),
    "histogram": HISTOGRAM,
    "shifted, scaled histogram": HISTOGRAM.shifted(3.0).scaled(1.3),
    "scaled, shifted mixture": MIXTURE.scaled(0.7).shifted(5.0),
}
law_cases = pytest.mark.parametrize("law", list(LAWS.values()), ids=list(LAWS))
bounds_cases = pytest.mark.parametrize("bounds", [BOUNDS, CUTS], ids=["istio", "cuts"])


def buckets_of(x: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """Bucket of each latency, with Prometheus's ``le`` semantics (upper bound included)."""
    return np.searchsorted(bounds, x, side="left")


def draws(law: LatencyLaw, n: int = 200_000, seed: int = 20261206) -> np.ndarray:
    x = law.sample(np.random.default_rng(seed), n)
    assert isinstance(x, np.ndarray) and x.shape == (n,)
    return x


# --- bucket probabilities and moments ------------------------------------------------------


@law_cases
@bounds_cases
def test_bucket_probs_sum_to_one_and_are_the_sampled_frequencies(law, bounds):
    p = law.bucket_probs(bounds)
    assert p.shape == (len(bounds) + 1,) and np.all(p >= 0.0)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    n = 200_000
    counts = np.bincount(buckets_of(draws(law, n), bounds), minlength=len(bounds) + 1)
    # A bucket the law never reaches is never drawn.
    assert np.all(counts[p == 0] == 0)
    keep = p * n >= 5
    res = stats.chisquare(counts[keep], p[keep] / p[keep].sum() * counts[keep].sum())
    # With 200,000 draws, an edge misplaced by 1% of a bucket shifts a frequency by ~1e-3:
    # a chi-square of hundreds.
    assert res.pvalue > 1e-3


@law_cases
@bounds_cases
def test_bucket_moments_are_the_monte_carlo_ones(law, bounds):
    mean, var = law.bucket_moments(bounds)
    x = draws(law, 200_000, seed=11)
    b = buckets_of(x, bounds)
    checked = 0
    for k in range(len(bounds) + 1):
        xs = x[b == k]
        if len(xs) < 500:
            continue
        checked += 1
        se_mean = xs.std() / math.sqrt(len(xs))
        assert abs(xs.mean() - mean[k]) <= 4.5 * se_mean + 1e-12, k
        centred = xs - xs.mean()
        se_var = math.sqrt(max(float((centred**4).mean()) - float(xs.var()) ** 2, 0.0) / len(xs))
        assert abs(xs.var() - var[k]) <= 4.5 * se_var + 1e-12, k
        assert (bounds[k - 1] if k else 0.0) <= mean[k] <= (bounds[k] if k < len(bounds) else np.inf)
    assert checked >= 3


@law_cases
def test_the_mean_is_the_monte_carlo_mean(law):
    x = draws(law, 400_000, seed=5)
    assert abs(x.mean() - law.mean_ms()) <= 4.5 * x.std() / math.sqrt(len(x))


def test_a_bucket_never_reached_gets_its_lower_edge_and_no_variance():
    mean, var = HISTOGRAM.bucket_moments(CUTS)
    p = HISTOGRAM.bucket_probs(CUTS)
    empty = np.flatnonzero(p == 0)  # (30, 31] and (31, 70] lie in the empty (30, 100] bucket
    assert list(empty) == [CUTS.index(31.0), CUTS.index(70.0)]
    np.testing.assert_array_equal(mean[empty], [30.0, 31.0])
    np.testing.assert_array_equal(var[empty], [0.0, 0.0])


def test_bucket_tables_are_cached_and_read_only():
    p = MIXTURE.bucket_probs(BOUNDS)
    assert MIXTURE.bucket_probs(BOUNDS) is p
    for a in (p, *HISTOGRAM.bucket_moments(BOUNDS)):
        with pytest.raises(ValueError):
            a[0] = 1.0


# --- closed forms by hand -------------------------------------------------------------------


def test_a_histogram_bucket_cut_by_a_bound_by_hand():
    """(0, 10] with half the requests, (10, 30] with the other half; the bucket (0, 20]
    holds 0.5 + 0.25: mean (0.5·5 + 0.25·15) / 0.75 and, by total variance,
    10²/12 + (0.5·(5 − m)² + 0.25·(15 − m)²) / 0.75."""
    h = HistogramLatency.from_counts((10.0, 30.0), (1, 1))
    p = h.bucket_probs((20.0,))
    mean, var = h.bucket_moments((20.0,))
    m = (0.5 * 5 + 0.25 * 15) / 0.75
    np.testing.assert_allclose(p, [0.75, 0.25])
    np.testing.assert_allclose(mean, [m, 25.0])
    np.testing.assert_allclose(var, [100 / 12 + (0.5 * (5 - m) ** 2 + 0.25 * (15 - m) ** 2) / 0.75, 100 / 12])


def test_a_mixture_combines_its_components_by_total_variance():
    """Point masses at 10 ms (1/4) and 100 ms (3/4) in one bucket: mean 77.5 ms, variance
    1/4·67.5² + 3/4·22.5²; in buckets of their own, each its own point."""
    ten, hundred = LatencyDist(math.log(10.0), 0.0), LatencyDist(math.log(100.0), 0.0)
    mix = MixtureLatency((1.0, 3.0), (ten, hundred))
    assert mix.weights == (0.25, 0.75)
    mean, var = mix.bucket_moments((1000.0,))
    np.testing.assert_allclose([mean[0], var[0]], [77.5, 0.25 * 67.5**2 + 0.75 * 22.5**2])
    np.testing.assert_allclose(mix.bucket_probs((50.0,)), [0.25, 0.75])
    np.testing.assert_allclose(mix.bucket_moments((50.0,))[0], [10.0, 100.0])
    assert mix.mean_ms() == pytest.approx(77.5)


def test_a_lognormal_tail_bucket_keeps_its_precision():
    """The bucket above 10 s of a 40/250 ms lognormal has probability ~1e-12: computed on
    the upper side (Φ(−z)), not as 1 − Φ(z), it has the survival function's digits."""
    p = LOGNORMAL.bucket_probs(BOUNDS)[-1]
    ref = stats.lognorm(s=LOGNORMAL.sigma, scale=math.exp(LOGNORMAL.mu)).sf(BOUNDS[-1])
    assert p == pytest.approx(ref, rel=1e-9)


def test_the_lognormal_mean_and_point_mass():
    assert LOGNORMAL.mean_ms() == pytest.approx(math.exp(LOGNORMAL.mu + LOGNORMAL.sigma**2 / 2))
    point = LOGNORMAL.with_p99(1.0).shifted(5.0)
    assert point.mean_ms() == pytest.approx(45.0)
    assert point.sample(np.random.default_rng(1)) == pytest.approx(45.0)


# --- transforms and the vectorised table ------------------------------------------------------


@law_cases
@bounds_cases
def test_bucket_table_is_each_scaled_laws_buckets(law, bounds):
    factors = np.array([0.5, 1.0, 2.0, 1.0, 3.3, 0.5])
    probs, mean, var = law.bucket_table(bounds, factors)
    assert probs.shape == mean.shape == var.shape == (len(factors), len(bounds) + 1)
    for i, f in enumerate(factors):
        scaled = law.scaled(float(f))
        m, v = scaled.bucket_moments(bounds)
        np.testing.assert_allclose(probs[i], scaled.bucket_probs(bounds), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(mean[i], m, rtol=1e-9)
        np.testing.assert_allclose(var[i], v, rtol=1e-7, atol=1e-9)


def test_bucket_table_refuses_a_factor_that_is_not_positive():
    with pytest.raises(ValueError, match="> 0"):
        LOGNORMAL.bucket_table(BOUNDS, np.array([1.0, 0.0]))


@law_cases
def test_scaled_and_shifted_are_the_laws_of_f_y_and_y_plus_ms(law):
    """Quantiles move as the variable does, and the order of the transforms matters: a
    shifted law scaled by f is shifted by shift·f."""
    for q in (0.05, 0.5, 0.95):
        y = law.quantile(q)
        assert law.scaled(2.5).quantile(q) == pytest.approx(2.5 * y, rel=1e-9)
        assert law.shifted(12.0).quantile(q) == pytest.approx(y + 12.0, rel=1e-9)
        assert law.shifted(12.0).scaled(2.0).quantile(q) == pytest.approx(2.0 * (y + 12.0), rel=1e-9)
        assert law.scaled(2.0).shifted(12.0).quantile(q) == pytest.approx(2.0 * y + 12.0, rel=1e-9)
    assert law.scaled(3.0).mean_ms() == pytest.approx(3.0 * law.mean_ms())
    assert law.shifted(4.0).mean_ms() == pytest.approx(law.mean_ms() + 4.0)


@law_cases
def test_quantile_inverts_the_cdf(law):
    """The smallest x with cdf(x) >= q: the exact inverse where the cdf is continuous and
    increasing, the atom's place where it jumps (the point mass at 40 ms)."""
    atom = law is LAWS["mixture with a point mass"]
    for q in (0.01, 0.1, 0.3, 0.5, 0.77, 0.9, 0.99):
        x = law.quantile(q)
        below, above = law.cdf(np.array([x * (1 - 1e-9), x * (1 + 1e-9)]))
        assert below <= q + 1e-9 and above >= q - 1e-9
        if not atom:
            assert float(law.cdf(np.array([x]))[0]) == pytest.approx(q, abs=1e-9)
    if atom:
        assert law.quantile(0.3) == pytest.approx(40.0) and law.quantile(0.7) == pytest.approx(40.0)
    grid = np.array([[1.0, 10.0], [100.0, 1e4]])
    c = law.cdf(grid)
    assert c.shape == grid.shape and np.all(np.diff(c.ravel()) >= 0)


@law_cases
def test_one_draw_is_a_float_and_draws_repeat_with_the_seed(law):
    x = law.sample(np.random.default_rng(3))
    assert isinstance(x, float) and x > 0
    np.testing.assert_array_equal(draws(law, 100, seed=9), draws(law, 100, seed=9))


def test_the_lognormal_draws_one_standard_normal_per_latency():
    """The per-request mode's stream is unchanged: ``shift + exp(mu + sigma·Z)``."""
    d = LOGNORMAL.shifted(3.0)
    z = np.random.default_rng(4).standard_normal(3)
    rng = np.random.default_rng(4)
    got = [d.sample(rng) for _ in range(3)]
    np.testing.assert_array_equal(got, 3.0 + np.exp(d.mu + d.sigma * z))


def test_a_mixture_of_one_component_is_that_lognormal():
    one = MixtureLatency((2.0,), (LOGNORMAL,))
    assert one.weights == (1.0,)
    for bounds in (BOUNDS, CUTS):
        np.testing.assert_allclose(one.bucket_probs(bounds), LOGNORMAL.bucket_probs(bounds), rtol=1e-12, atol=1e-300)
        for a, b in zip(one.bucket_moments(bounds), LOGNORMAL.bucket_moments(bounds)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    for q in (0.1, 0.5, 0.99):
        assert one.quantile(q) == pytest.approx(LOGNORMAL.quantile(q), rel=1e-12)
    assert one.mean_ms() == pytest.approx(LOGNORMAL.mean_ms())


def test_a_histogram_law_gives_back_its_shares_at_its_own_bounds():
    """Uniform within its buckets: at its own bounds each bucket holds its share, with the
    bucket's midpoint as mean and width²/12 as variance; nothing above the last bound."""
    le = (10.0, 30.0, 100.0, 400.0, 1000.0)
    shares = np.array([5, 50, 0, 30, 15]) / 100
    np.testing.assert_allclose(HISTOGRAM.bucket_probs(le), [*shares, 0.0], atol=1e-15)
    mean, var = HISTOGRAM.bucket_moments(le)
    edges = np.array((0.0, *le))
    full = shares > 0
    np.testing.assert_allclose(mean[:-1][full], ((edges[:-1] + edges[1:]) / 2)[full])
    np.testing.assert_allclose(var[:-1][full], (np.diff(edges) ** 2 / 12)[full])
    assert HISTOGRAM.quantile(1.0) == 1000.0 and HISTOGRAM.cdf(np.array([1000.0, 5e3])).tolist() == [1.0, 1.0]


def test_histogram_quantile_is_prometheus_bucket_quantile():
    """promql/quantile.go bucketQuantile (through sim.promql's transcription): linear
    interpolation in the bucket where the cumulative count first reaches q·count, the
    first bucket starting at 0; an empty bucket is never interpolated into."""
    counts = np.array([5.0, 50.0, 0.0, 30.0, 15.0])
    bounds = np.array([10.0, 30.0, 100.0, 400.0, 1000.0, np.inf])
    cumulative = np.concatenate([np.cumsum(counts), [counts.sum()]])
    for q in (0.01, 0.05, 0.3, 0.54, 0.6, 0.8, 0.99):
        ref = bucket_quantile(np.array([q]), bounds, cumulative[None, :], np.ones((1, 6), dtype=bool))[0]
        assert HISTOGRAM.quantile(q) == pytest.approx(ref, rel=1e-12), q


@pytest.mark.parametrize(
    "make",
    [
        lambda: HistogramLatency((10.0, 5.0), (1.0, 1.0)),
        lambda: HistogramLatency((10.0,), (1.0, 1.0)),
        lambda: HistogramLatency((10.0,), (0.0,)),
        lambda: HistogramLatency((10.0,), (1.0,), low=10.0),
        lambda: MixtureLatency((1.0, -1.0), (LOGNORMAL, LOGNORMAL)),
        lambda: MixtureLatency((1.0,), (LOGNORMAL, LOGNORMAL)),
    ],
)
def test_impossible_laws_are_refused(make):
    with pytest.raises(ValueError):
        make()


# --- the scenario's forms and the release model ---------------------------------------------


def scenario(baseline: str, faults: str = "[]", policy: str = "") -> Scenario:
    text = (
        textwrap.dedent("""\
        name: latency-laws
        horizon: 10m
        traffic: {rate: 40/s, users: 1000}
        baseline:
        """)
        + textwrap.indent(textwrap.dedent(baseline), "  ")
        + f"release:\n  faults: {faults}\n"
        + textwrap.dedent(policy)
    )
    return parse_scenario(loads_yaml(text, file="laws.yaml"))


MIXED = """\
error_rate: 0.3
latency:
  mixture:
    - {weight: 3, median: 20ms, p99: 60ms}
    - {weight: 1, median: 300ms, p99: 2s}
error_latency:
  histogram: {le: [1s, 2s, 5s], counts: [10, 60, 30]}
"""


def test_the_three_forms_become_their_laws():
    lognormal = scenario("latency: {median: 40ms, p99: 250ms}\n")
    assert latency_law(lognormal.baseline.latency) == LOGNORMAL
    mixed = scenario(MIXED)
    assert latency_law(mixed.baseline.latency) == MIXTURE
    assert mixed.baseline.error_latency is not None
    assert latency_law(mixed.baseline.error_latency) == HistogramLatency((1000.0, 2000.0, 5000.0), (0.1, 0.6, 0.3))


@pytest.mark.parametrize(
    "baseline,faults,line,message",
    [
        (
            "latency:\n  histogram: {le: [10ms, 5ms], counts: [1, 2]}\n",
            "[]",
            6,
            "baseline.latency.histogram: le must increase",
        ),
        (
            "latency:\n  histogram:\n    le: [10ms, 50ms]\n    counts: [1, 2, 3]\n",
            "[]",
            6,
            "baseline.latency.histogram: counts has 3 entries; le has 2: give one count per bucket",
        ),
        (
            "latency:\n  median: 40ms\n  p99: 250ms\n  mixture: [{weight: 1, median: 10ms, p99: 20ms}]\n",
            "[]",
            5,
            "baseline.latency: give exactly one of median and p99 (lognormal), mixture or histogram",
        ),
        (
            "latency:\n  mixture: [{weight: 1, median: 10ms, p99: 20ms}]\n",
            "[{kind: latency, p99: 2s}]",
            8,
            "release.faults[0].p99: a p99 latency fault stretches a lognormal tail",
        ),
        (
            "error_latency:\n  histogram: {le: [1s, 2s], counts: [1, 1]}\n",
            "[{kind: latency, p99: 2s}]",
            8,
            "release.faults[0].p99: a p99 latency fault stretches a lognormal tail",
        ),
    ],
    ids=["le not increasing", "counts length", "median and mixture", "p99 on a mixture", "p99 on error_latency"],
)
def test_bad_latency_laws_are_one_line_errors(baseline, faults, line, message):
    with pytest.raises(InputError) as info:
        scenario(baseline, faults)
    assert str(info.value).startswith(f"laws.yaml:{line}: {message}")
    assert "\n" not in str(info.value)


def test_failed_requests_have_their_law_with_the_same_faults():
    sc = scenario(MIXED, "[{kind: latency, factor: 2, onset: 1m}, {kind: latency, shift: 5ms, target: both}]")
    release = ReleaseModel(sc)
    err = HistogramLatency((1000.0, 2000.0, 5000.0), (0.1, 0.6, 0.3))
    assert release.has_error_latency and release.error_latency_law == err
    assert release.latency(30.0, 0) == (MIXTURE.shifted(5.0), MIXTURE.shifted(5.0))
    assert release.latency(30.0, 0, failed=True) == (err.shifted(5.0), err.shifted(5.0))
    assert release.latency(90.0, 0, failed=True) == (err.shifted(5.0), err.shifted(5.0).scaled(2.0))
    assert release.latency(90.0, 0)[1] == MIXTURE.shifted(5.0).scaled(2.0)


def test_without_error_latency_failed_requests_share_the_law():
    release = ReleaseModel(scenario("latency: {median: 40ms, p99: 250ms}\n", "[{kind: latency, p99: 1s}]"))
    assert not release.has_error_latency and release.error_latency_law is None
    assert release.latency(0.0, 0, failed=True) == release.latency(0.0, 0) == (LOGNORMAL, LOGNORMAL.with_p99(1000.0))


# --- the per-request mode ------------------------------------------------------------------------

POLICY = """\
policy:
  flagger:
    analysis:
      interval: 30s
      threshold: 5
      stepWeight: 50
      maxWeight: 50
"""


def test_the_per_request_mode_draws_each_outcomes_law():
    """``--exact`` with a mixture baseline and a histogram for failed requests (30% of
    them): the canary's histogram, pooled over runs, is 0.7 × the mixture's bucket
    probabilities + 0.3 × the histogram's (chi-square). Drawing failed requests from
    the success law would leave the (1 s, 2.5 s] bucket at ~1% instead of ~19%."""
    sc = scenario(MIXED, policy=POLICY)
    bounds = tuple(float(b) for b in sc.telemetry.buckets_ms)
    err = HistogramLatency((1000.0, 2000.0, 5000.0), (0.1, 0.6, 0.3))
    expected = 0.7 * MIXTURE.bucket_probs(bounds) + 0.3 * err.bucket_probs(bounds)
    policy = scenario_policy(sc)
    hist = np.zeros(len(bounds) + 1)
    for seed in (101, 202, 303):
        world = World(sc, policy, [seed], exact=True)
        world.run()
        hist += world.telemetry.hist[0].sum(axis=0)
    n = hist.sum()
    assert n > 3_000
    keep = expected * n >= 5
    res = stats.chisquare(hist[keep], expected[keep] / expected[keep].sum() * hist[keep].sum())
    assert res.pvalue > 1e-3
