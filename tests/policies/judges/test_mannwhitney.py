"""Kayenta's statistics (sim/policies/judges/mannwhitney.py) against Kayenta's own tests and scipy.

Upstream: spinnaker/kayenta,
* kayenta-mannwhitney/src/main/scala/com/netflix/kayenta/mannwhitney/MannWhitney.scala
  (``wilcoxonDiff``, ``calculateConfidenceInterval``) and BrentSolver.java (``solve``),
  tested by kayenta-mannwhitney/src/test/scala/.../mannwhitney/MannWhitneySuite.scala;
* kayenta-judge/src/main/scala/com/netflix/kayenta/judge/stats/EffectSizes.scala
  (``meanRatio``, ``cles``) and stats/DescriptiveStatistics.scala (``percentile``), tested
  by kayenta-judge/src/test/scala/.../judge/StatisticSuite.scala;
* kayenta-judge/.../judge/detectors/IQRDetector.scala (``detect``), tested by DetectorSuite.scala.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.policies.judges.mannwhitney import (
    AllTiedError,
    brent_root,
    cles,
    iqr_outliers,
    mann_whitney_ci,
    mean_ratio,
    percentile,
    wilcoxon_diff,
)
from tests.policies.judges.kayenta_cases import arrays

MW = "MannWhitneySuite"
E = 1e-6  # MannWhitneySuite's tolerance


# --- MannWhitneySuite.scala -------------------------------------------------------------


def test_wilcoxon_diff_function():
    """MannWhitneySuite "Wilcoxon Diff Function": wilcoxonDiff(0, 0) and (5, 0)."""
    a = arrays(MW, "Wilcoxon Diff Function")
    assert wilcoxon_diff(0.0, 0.0, a["x"], a["y"]) == pytest.approx(-1.229416, abs=E)
    assert wilcoxon_diff(5.0, 0.0, a["x"], a["y"]) == pytest.approx(-35.80606, abs=E)


def test_small_interval_and_estimate():
    """MannWhitneySuite "Mann-Whitney Confidence Interval & Estimate" (95 %)."""
    a = arrays(MW, "Mann-Whitney Confidence Interval & Estimate")
    r = mann_whitney_ci(a["experimentData"], a["controlData"])
    assert (r.lower, r.upper, r.estimate) == pytest.approx((6.0, 39.0, 22.5), abs=E)


def test_problem_case_at_98_percent():
    """MannWhitneySuite "...: Problem Case": 850 near-identical values, confidence 0.98."""
    a = arrays(MW, "Mann-Whitney Confidence Interval & Estimate: Problem Case")
    r = mann_whitney_ci(a["experiment"], a["control"], confidence=0.98)
    assert r.lower == pytest.approx(-1.4808028936386108e-5, abs=E)
    assert r.upper == pytest.approx(1.808255910873413e-5, abs=E)
    assert r.estimate == pytest.approx(1.808255910873413e-5, abs=E)


@pytest.mark.parametrize(
    "test_name, confidence, expected",
    [
        (
            "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version",
            0.95,
            (-0.500002521696696, -3.486287505871302e-5, -0.4999393907180323),
        ),
        (
            "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version (Large)",
            0.98,
            (-0.4999173250549087, -6.912685789769486e-6, -3.45044082729315e-5),
        ),
    ],
)
def test_tie_out_with_r(test_name, confidence, expected):
    """MannWhitneySuite "Tie out with R Version" (and "(Large)"): R's wilcox.test values;
    the interval to 1e-6, the estimate to 1e-4, as upstream asserts."""
    a = arrays(MW, test_name)
    r = mann_whitney_ci(a["experiment"], a["control"], confidence=confidence)
    assert r.lower == pytest.approx(expected[0], abs=E)
    assert r.upper == pytest.approx(expected[1], abs=E)
    assert r.estimate == pytest.approx(expected[2], abs=1e-4)


def test_intermediate_values():
    """MannWhitneySuite "Mann-Whitney Intermediate Values / Variables": the range ends,
    the statistic there at ±z(0.975), and Brent's roots (which, at Kayenta's 1e-4
    tolerance, put the "lower" end above the "upper" one on this data)."""
    a = arrays(MW, "Mann-Whitney Intermediate Values / Variables")
    x, y = a["x"], a["y"]
    mu_min, mu_max = x.min() - y.max(), x.max() - y.min()
    assert (mu_min, mu_max) == pytest.approx((-3.124999999999986, 5.555555555555557), abs=E)
    z = -stats.norm.ppf(0.025)
    assert z == pytest.approx(1.9599639845400536, abs=E)
    f = [
        wilcoxon_diff(mu_min, z, x, y),
        wilcoxon_diff(mu_max, z, x, y),
        wilcoxon_diff(mu_min, -z, x, y),
        wilcoxon_diff(mu_max, -z, x, y),
    ]
    assert f == pytest.approx([17.090968923762254, -20.997687930433106, 21.01089689284236, -17.077759961353], abs=E)
    lower = brent_root(lambda m: wilcoxon_diff(m, z, x, y), mu_min, mu_max, f[0], f[1])
    upper = brent_root(lambda m: wilcoxon_diff(m, -z, x, y), mu_min, mu_max, f[2], f[3])
    f0 = (wilcoxon_diff(mu_min, 0.0, x, y), wilcoxon_diff(mu_max, 0.0, x, y))
    estimate = brent_root(lambda m: wilcoxon_diff(m, 0.0, x, y), mu_min, mu_max, *f0)
    assert lower == pytest.approx(3.521755377702165e-5, abs=E)
    assert upper == pytest.approx(2.02456461662334e-5, abs=E)
    assert estimate == pytest.approx(2.6279243045155653e-5, abs=E)
    r = mann_whitney_ci(x, y, confidence=0.95)
    assert (r.lower, r.upper, r.estimate) == pytest.approx((lower, upper, estimate), abs=1e-12)


def test_z_quantile():
    """MannWhitneySuite "Test zQuant": the 0.98 interval uses z = -2.326348."""
    assert stats.norm.ppf(0.02 / 2) == pytest.approx(-2.326348, abs=E)


def test_all_tied_raises():
    """MannWhitney.wilcoxonDiff throws when every observation is tied (sigma = 0)."""
    with pytest.raises(AllTiedError):
        wilcoxon_diff(0.0, 0.0, np.array([1.0, 1.0]), np.array([1.0]))


# --- scipy ---------------------------------------------------------------------------------


def _samples(seed: int, n: int = 40, m: int = 35, shift: float = 0.3, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    y = rng.normal(0.0, 1.0, m)
    if decimals is not None:  # coarse values: many ties
        x, y = np.round(x, decimals), np.round(y, decimals)
    return x, y


@pytest.mark.parametrize("seed, decimals", [(1, None), (2, 1), (3, 0), (4, 2)])
def test_statistic_and_p_value_match_scipy(seed, decimals):
    """At shift 0 the standardised statistic is scipy's: U = dz + nx·ny/2, and the
    two-sided p-value of the continuity- and tie-corrected normal approximation."""
    x, y = _samples(seed, decimals=decimals)
    ref = stats.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided", method="asymptotic")
    z = wilcoxon_diff(0.0, 0.0, x, y)
    assert 2 * stats.norm.sf(abs(z)) == pytest.approx(ref.pvalue, rel=1e-9)
    # the sign says which sample is larger: that of U1 − nx·ny/2, U1 being scipy's U of x
    assert np.sign(z) == np.sign(ref.statistic - len(x) * len(y) / 2)


@pytest.mark.parametrize("seed, confidence", [(5, 0.98), (6, 0.98), (7, 0.95), (8, 0.9)])
def test_interval_is_the_set_of_shifts_scipy_does_not_reject(seed, confidence):
    """The interval's ends are where scipy's two-sided test of (x − mu, y) starts to
    reject at 1 − confidence: between consecutive pairwise differences the p-value is
    constant, so scan their midpoints; Kayenta's roots sit on the accepted region's ends
    up to Brent's 1e-4 tolerance. A wrong confidence level moves them by many gaps."""
    x, y = _samples(seed, n=30, m=25)
    diffs = np.unique((x[:, None] - y[None, :]).ravel())
    mids = (diffs[1:] + diffs[:-1]) / 2
    p = stats.mannwhitneyu(
        x[None, :] - mids[:, None],
        np.broadcast_to(y, (len(mids), len(y))),
        alternative="two-sided",
        method="asymptotic",
        axis=1,
    ).pvalue
    accepted = np.flatnonzero(p > 1 - confidence)
    lo_end, hi_end = diffs[accepted[0]], diffs[accepted[-1] + 1]
    r = mann_whitney_ci(x, y, confidence=confidence)
    assert r.lower == pytest.approx(lo_end, abs=1e-4)
    assert r.upper == pytest.approx(hi_end, abs=1e-4)
    # Hodges–Lehmann: the median of the pairwise differences (between the middle two)
    d = np.sort((x[:, None] - y[None, :]).ravel())
    k = len(d) // 2
    assert d[k - 1] - 1e-4 <= r.estimate <= d[k] + 1e-4


# --- StatisticSuite.scala / DetectorSuite.scala ----------------------------------------------

ST = "StatisticSuite"


def test_percentiles():
    """StatisticSuite "Summary Statistics: ... Percentile ..." (type R-7)."""
    assert percentile(arrays(ST, "Summary Statistics: Basic Percentile")["testData"], 5) == pytest.approx(
        0.175, abs=1e-4
    )
    assert percentile(arrays(ST, "Summary Statistics: Basic Percentile")["testData"], 50) == 1.75
    assert percentile(arrays(ST, "Summary Statistics: Basic Percentile")["testData"], 100) == 3.5
    assert (
        percentile(arrays(ST, "Summary Statistics: Basic Percentile Estimate (Linear Interpolation)")["testData"], 50)
        == 4.5
    )
    assert percentile(arrays(ST, "Summary Statistics: Percentile (NIST Data)")["testData"], 90) == pytest.approx(
        95.19568
    )
    data = arrays(ST, "Summary Statistics: Percentile Estimate (Linear Interpolation)")["testData"]
    assert percentile(data, 25) == 0.0
    assert percentile(data, 75) == pytest.approx(0.0416, abs=1e-4)
    assert math.isnan(percentile(np.array([]), 50))


@pytest.mark.parametrize(
    "test_name, expected",
    [
        ("Effect Size: Mean Ratio (No Effect)", 1.0),
        ("Effect Size: Mean Ratio (High)", 10.0),
        ("Effect Size: Mean Ratio (Low)", 0.1),
        ("Effect Size: Mean Ratio (Zero Mean)", math.nan),
    ],
)
def test_mean_ratio(test_name, expected):
    """StatisticSuite "Effect Size: Mean Ratio ..." (EffectSizes.meanRatio)."""
    a = arrays(ST, test_name)
    got = mean_ratio(a["controlData"], a["experimentData"])
    assert math.isnan(got) if math.isnan(expected) else got == pytest.approx(expected)


@pytest.mark.parametrize(
    "test_name, expected, tol",
    [
        ("CLES Effect Size: Identical", 0.5, 0.0),
        ("CLES Effect Size: Different (No Overlap)", 0.0, 0.0),
        ("CLES Effect Size: High Metric", 0.771, 0.001),
        ("CLES Effect Size: Low Metric", 0.12, 1e-12),
    ],
)
def test_cles(test_name, expected, tol):
    """StatisticSuite "CLES Effect Size: ..." (EffectSizes.cles), and the definition
    P(experiment > control) + ½·P(tie) by brute force."""
    a = arrays(ST, test_name)
    got = cles(a["controlData"], a["experimentData"])
    assert got == pytest.approx(expected, abs=tol)
    e, c = a["experimentData"][:, None], a["controlData"][None, :]
    assert got == pytest.approx(np.mean((e > c) + 0.5 * (e == c)))


@pytest.mark.parametrize("test_name", ["IQR Detection", "IQR Detect Two Sided"])
def test_iqr_detector(test_name):
    """DetectorSuite "IQR Detection" / "IQR Detect Two Sided" (factor 1.5)."""
    a = arrays("DetectorSuite", test_name)
    assert iqr_outliers(a["testData"], 1.5).tolist() == a["truth"].tolist()


def test_iqr_nist_and_empty():
    """DetectorSuite "IQR NIST Test" (only the last value is an outlier) and "IQR Empty Data"."""
    data = arrays("DetectorSuite", "IQR NIST Test")["testData"]
    assert iqr_outliers(data, 1.5).tolist() == [False] * (len(data) - 1) + [True]
    assert iqr_outliers(np.array([]), 1.5).tolist() == []


def test_iqr_reduced_sensitivity_widens_to_p1_p99():
    """IQRDetector(reduceSensitivity = true): fences are at least the 1st/99th percentiles,
    so with factor 0.1 the tails a plain Tukey test flags are kept."""
    data = np.arange(100.0)
    plain = iqr_outliers(data, 0.1)
    reduced = iqr_outliers(data, 0.1, reduce_sensitivity=True)
    assert plain.sum() > 2 * reduced.sum()
    assert reduced.tolist() == [True] + [False] * 98 + [True]  # only beyond P1 / P99
