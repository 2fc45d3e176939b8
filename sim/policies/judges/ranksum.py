"""The loops of Kayenta's Mann–Whitney interval, as plain functions numba can compile.

``tied_or_diff`` (``MannWhitney.wilcoxonDiff`` on sorted samples) and ``brent_step`` (one
iteration of ``BrentSolver.solve``) are the one source of each: ``mannwhitney`` runs them
as Python (its public functions, Kayenta's unit tests) and ``kernels`` compiles them for
the interval every Kayenta judgement computes. Sources: see ``mannwhitney``.
"""

from __future__ import annotations

import math

import numpy as np

#: BrentSolver.java's constants: absolute tolerance, machine epsilon, iteration cap.
BRENT_TOLERANCE = 1e-4
_EPS = 2.220446049250313e-16
MAX_ITERATIONS = 1000


class AllTiedError(ValueError):
    """Every observation is tied: the normal approximation has no variance."""


def sorted_diff(mu: float, zq: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """``wilcoxon_diff`` of sorted samples (the root finders call it many times).

    Raises:
        AllTiedError: when every value of xs − mu and ys is equal.
    """
    value, tied = tied_or_diff(mu, zq, xs, ys)
    if tied:
        raise AllTiedError("cannot compute confidence interval when all observations are tied")
    return value


def tied_or_diff(mu: float, zq: float, xs: np.ndarray, ys: np.ndarray) -> tuple[float, bool]:
    """``sorted_diff`` as (value, all tied) instead of raising: compiled code that must go on
    after all-tied samples (numba's try/except crashed the batch pass) reads the flag.

    The rank sum is computed by counting instead of ranking: the x's rank sum is
    nx(nx+1)/2 plus, for each x, the number of y below it and half the y equal to it.
    Both are sums of halves, exact in floating point, so the value is Kayenta's. The counts
    and the runs of ties come from one merge of the two sorted samples (x − mu stays
    sorted: subtraction is monotone), without sorting or allocating: ``kernels`` compiles
    this source, and the interval's root finders call it many times.
    """
    nx, ny = len(xs), len(ys)
    # per x − mu: the y below it (lo) and up to it (hi), as searchsorted left and right
    below, upto, lo, hi = 0, 0, 0, 0
    for i in range(nx):
        v = xs[i] - mu
        while lo < ny and ys[lo] < v:
            lo += 1
        while hi < ny and ys[hi] <= v:
            hi += 1
        below += lo
        upto += hi
    dz = float(below) + 0.5 * float(upto - below) - nx * ny / 2.0
    n = nx + ny
    # tie correction: sum of t^3 - t over the runs of equal values of the merged samples,
    # in ascending order (integers: exact)
    ties, run, previous = 0.0, 0.0, 0.0
    i, j = 0, 0
    for _ in range(n):
        if j >= ny or (i < nx and xs[i] - mu <= ys[j]):
            v = xs[i] - mu
            i += 1
        else:
            v = ys[j]
            j += 1
        if run > 0.0 and v == previous:
            run += 1.0
        else:
            ties += run * run * run - run
            run = 1.0
        previous = v
    ties += run * run * run - run
    sigma = math.sqrt((nx * ny / 12.0) * ((n + 1.0) - ties / (n * (n - 1.0))))
    if sigma == 0.0:
        return 0.0, True
    correction = math.copysign(0.5, dz) if dz != 0.0 else 0.0
    return (dz - correction) / sigma - zq, False


def brent_step(
    a: float, b: float, c: float, fa: float, fb: float, fc: float, tol: float
) -> tuple[bool, float, float, float, float, float, float]:
    """One iteration of ``brent_root`` after ``fb = f(b)``: (done, a, b, c, fa, fb, fc), b
    the root when done, else the next point to evaluate. The one source of the algorithm:
    ``brent_root`` runs it as Python, ``kernels`` compiles it (numba) for the Mann–Whitney
    interval."""
    if (fb > 0.0 and fc > 0.0) or (fb < 0.0 and fc < 0.0):
        c, fc = a, fa  # the bracket's other end: the last point of the other sign
    prev_step = b - a
    if abs(fc) < abs(fb):
        # keep b the best guess so far and c the other end of the bracket
        a, b, c = b, c, b
        fa, fb, fc = fb, fc, fb
    tol_act = 2.0 * _EPS * abs(b) + tol / 2.0
    new_step = (c - b) / 2.0
    if abs(new_step) <= tol_act or fb == 0.0:
        return True, a, b, c, fa, fb, fc
    if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
        cb = c - b
        if a == c:  # two points: secant
            t1 = fb / fa
            p = cb * t1
            q = 1.0 - t1
        else:  # three points: inverse quadratic interpolation
            q = fa / fc
            t1 = fb / fc
            t2 = fb / fa
            p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
            q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
        if p > 0.0:
            q = -q
        else:
            p = -p
        # accept the interpolation only if it stays well inside the bracket and
        # shrinks faster than bisection would
        if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
            new_step = p / q
    if abs(new_step) < tol_act:
        new_step = tol_act if new_step > 0.0 else -tol_act
    a, fa = b, fb
    b += new_step
    return False, a, b, c, fa, fb, fc
