"""The statistics of Kayenta's NetflixACAJudge, reimplemented for pdsim.

Sources (spinnaker/kayenta, read, not copied):

* ``kayenta-mannwhitney/.../mannwhitney/MannWhitney.scala``: ``wilcoxonDiff`` and
  ``calculateConfidenceInterval`` — the two-sided Wilcoxon rank-sum (Mann–Whitney)
  confidence interval of the location shift x − y by the normal approximation, with tie
  and continuity corrections, and the Hodges–Lehmann estimate as the root at z = 0. It is
  R's ``wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)``.
* ``kayenta-mannwhitney/.../mannwhitney/BrentSolver.java``: the roots are found with
  Brent's method (R's ``zeroin``) at an *absolute* tolerance of 1e-4, so the interval
  ends are accurate to about 1e-4 in the metric's own unit; Kayenta's tests expect the
  exact iterates, which is why ``brent_root`` follows the same algorithm and constants
  rather than calling ``scipy.optimize.brentq``.
* ``kayenta-judge/.../judge/stats/EffectSizes.scala``: ``meanRatio`` and ``cles``.
* ``kayenta-judge/.../judge/detectors/IQRDetector.scala`` and
  ``.../stats/DescriptiveStatistics.scala`` (percentiles are Hyndman–Fan type 7, numpy's
  default linear interpolation).

Everything here is deterministic; nothing draws random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.policies.judges.ranksum import BRENT_TOLERANCE, MAX_ITERATIONS, AllTiedError, brent_step, sorted_diff

__all__ = [
    "BRENT_TOLERANCE",
    "MAX_ITERATIONS",
    "AllTiedError",
    "MannWhitneyResult",
    "brent_root",
    "brent_step",
    "cles",
    "interval_quantile",
    "iqr_outliers",
    "mann_whitney_ci",
    "mean_ratio",
    "percentile",
    "sorted_diff",
    "wilcoxon_diff",
]


@dataclass(frozen=True)
class MannWhitneyResult:
    """Confidence interval of the location shift (experiment − control) and its estimate.

    Attributes:
        lower: lower end of the interval.
        upper: upper end of the interval.
        estimate: the Hodges–Lehmann estimate (root of the standardised statistic at 0).
    """

    lower: float
    upper: float
    estimate: float


def wilcoxon_diff(mu: float, zq: float, x: np.ndarray, y: np.ndarray) -> float:
    """Standardised, continuity-corrected rank-sum statistic of (x − mu, y), minus ``zq``.

    ``MannWhitney.wilcoxonDiff``: dz = W − nx(nx+1)/2 − nx·ny/2 with W the rank sum of
    x − mu among all values (average ranks for ties), corrected by sign(dz)/2 and divided
    by the tie-corrected standard deviation.

    Raises:
        AllTiedError: when every value of x − mu and y is equal.
    """
    return sorted_diff(mu, zq, np.sort(np.asarray(x, dtype=float)), np.sort(np.asarray(y, dtype=float)))


def brent_root(
    f: Callable[[float], float], a: float, b: float, fa: float, fb: float, tol: float = BRENT_TOLERANCE
) -> float:
    """A zero of ``f`` in [a, b] by Brent's method (Brent 1973, ``zeroin``).

    Bisection safeguarded by secant and inverse quadratic interpolation, stopping when the
    bracket is within ``2·eps·|b| + tol/2``. Like Kayenta's ``BrentSolver.solve`` (and R's
    ``R_zeroin2``) it trusts the caller's ``fa``/``fb`` and does not check that they
    bracket a root: the caller decides what a non-bracketing interval means.
    """
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    c, fc = a, fa
    for _ in range(MAX_ITERATIONS + 1):
        done, a, b, c, fa, fb, fc = brent_step(a, b, c, fa, fb, fc, tol)
        if done:
            return b
        fb = f(b)
    return b  # Kayenta returns the last iterate when Brent does not converge


def mann_whitney_ci(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> MannWhitneyResult:
    """Two-sided confidence interval and Hodges–Lehmann estimate of the shift x − y.

    ``MannWhitney.calculateConfidenceInterval``: each interval end is the root of
    ``wilcoxon_diff(mu, ±z)`` on [min x − max y, max x − min y], or that end of the
    range when the statistic does not change sign there; the estimate is the root at 0.

    Args:
        x: the experiment (canary) sample, non-empty, no NaN.
        y: the control (baseline) sample, non-empty, no NaN.
        confidence: two-sided confidence level (Kayenta's judge uses 0.98).

    Raises:
        AllTiedError: when the rank statistic has no variance.
    """
    from sim.policies.judges import kernels  # numba: compiled on first use, not at import

    x = np.sort(np.asarray(x, dtype=float))
    y = np.sort(np.asarray(y, dtype=float))
    lower, upper, estimate = kernels.mann_whitney_roots(x, y, interval_quantile(confidence))
    return MannWhitneyResult(lower, upper, estimate)


def interval_quantile(confidence: float) -> float:
    """The standard normal's lower (1 − confidence)/2 quantile (negative): the z whose ±
    bound the two-sided interval of ``mann_whitney_ci``."""
    from scipy.special import ndtri  # lazy: validate imports no scipy (docs/architecture.md section 2)

    return float(ndtri((1.0 - confidence) / 2.0))


def mean_ratio(control: np.ndarray, experiment: np.ndarray) -> float:
    """``EffectSizes.meanRatio``: mean(experiment) / mean(control); NaN if either mean is 0."""
    c, e = float(np.mean(control)), float(np.mean(experiment))
    return math.nan if c == 0.0 or e == 0.0 else e / c


def cles(control: np.ndarray, experiment: np.ndarray) -> float:
    """``EffectSizes.cles``: common-language effect size P(experiment > control) + ½P(=).

    Vargha–Delaney A from the experiment's rank sum among both samples (average ranks).
    """
    m, n = len(experiment), len(control)
    values = np.concatenate([np.asarray(experiment, float), np.asarray(control, float)])
    ranks = _average_ranks(values)
    r1 = float(np.sum(ranks[:m]))
    return (2.0 * r1 - m * (m + 1)) / (2.0 * n * m)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(values)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def percentile(values: np.ndarray, p: float) -> float:
    """``DescriptiveStatistics.percentile``: the p-th percentile (0 < p ≤ 100), type R-7."""
    if len(values) == 0:
        return math.nan
    return float(np.percentile(np.asarray(values, float), p))


def iqr_outliers(values: np.ndarray, factor: float = 1.5, reduce_sensitivity: bool = False) -> np.ndarray:
    """``IQRDetector.detect``: True where a value lies outside the Tukey fences.

    Fences Q1 − factor·IQR and Q3 + factor·IQR; with ``reduce_sensitivity`` (what the
    judge uses, factor 3) widened to at least the 1st and 99th percentiles.
    """
    if factor <= 0.0:
        raise ValueError("factor must be greater than zero")
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    q1, q3 = percentile(values, 25), percentile(values, 75)
    lower, upper = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
    if reduce_sensitivity:
        lower = min(percentile(values, 1), lower)
        upper = max(percentile(values, 99), upper)
    return (values > upper) | (values < lower)
