"""Group-sequential two-sided test with Lan–DeMets alpha spending (``kind: group-sequential``).

K planned looks at information fractions t_k = k/K (equally spaced: a look per day of a
constant-traffic experiment; the last at max duration). Look k spends
α(t_k) − α(t_{k−1}) of the type I error (Lan & DeMets, Biometrika 70, 1983). The design
is symmetric: each side spends α/2 by the one-sided spending functions of
``sim.policies.judges.classical.spent_alpha`` (Lan & DeMets 1983, section 3), so the total
two-sided spending is α(t) = 2·spent_alpha(t, α/2):

* O'Brien–Fleming type: α(t) = 2·(2 − 2Φ(z_{1−α/4}/√t));
* Pocock type: α(t) = α·log(1 + (e − 1)t).

This is the convention of the published tables (Jennison & Turnbull 2000, ch. 7; R's
ldbounds and gsDesign ``sfLDOF``: K = 5, α = 0.05 gives 4.877, 3.357, 2.680, 2.290, 2.031).

The boundaries c_k on Z_k (reject when |Z_k| >= c_k) are solved look by look so that
P(|Z_j| < c_j for j < k, |Z_k| >= c_k) equals the spent increment, by the recursive
numerical integration of Armitage, McPherson & Rowe (JRSS A 132, 1969), in the form of
Jennison & Turnbull, *Group Sequential Methods with Applications to Clinical Trials* (2000),
chapter 19: with the B-value W(t) = Z·√t a Brownian motion (drift θ, W(t_k) ~ N(θt_k, t_k)),
the sub-density of W(t_k) on the continuation region is carried forward by

    f_{k+1}(u) = ∫_{|w|<c_k√t_k} f_k(w) φ((u − w − θΔ)/√Δ)/√Δ dw,   Δ = t_{k+1} − t_k,

on a grid with Simpson's rule (J&T 19.2). At the last look (or an earlier ``final`` look)
all the remaining alpha is spent; a run not rejected then is ``NONE``. The classic
O'Brien–Fleming (c_k = C·√(K/k)) and Pocock (c_k = C) boundaries are there too
(``classic_boundaries``), to check the recursion against J&T's Tables 2.1 and 2.3.

The statistic is Z = d̂/√V on the difference (``base.difference``), and the lift interval at
look k uses c_k: Jennison & Turnbull's repeated confidence intervals (ch. 9), simultaneous
over looks at level 1 − α.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.policies.experiment.base import (
    GroupSequentialTestSpec,
    LookResult,
    Looks,
    Verdicts,
    difference,
    lift_interval,
)
from sim.policies.judges.classical import spent_alpha

#: Highest z boundary searched (a look that may spend nothing gets inf).
Z_MAX = 40.0


def _simpson_weights(m: int, h: float) -> np.ndarray:
    """Simpson's rule weights for m (odd) points spaced h."""
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w * h / 3.0


@dataclass
class _Density:
    """The sub-density of W(t) on the continuation region, at Simpson nodes."""

    t: float
    grid: np.ndarray
    weighted: np.ndarray  # density × Simpson weight


def _nodes(half_width: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    m = int(min(max(math.ceil(2.0 * half_width / step), 200), 4000)) | 1  # odd
    grid = np.linspace(-half_width, half_width, m)
    return grid, _simpson_weights(m, grid[1] - grid[0])


def _first(t: float, c: float, drift: float) -> _Density:
    from scipy.stats import norm

    s = math.sqrt(t)
    half = min(c * s, abs(drift) * t + 10.0 * s)
    grid, w = _nodes(half, s / 8.0)
    return _Density(t, grid, w * norm.pdf(grid, drift * t, s))


def _crossing(prev: _Density, t: float, c: float, drift: float) -> float:
    """P(continue to t_prev, then |W(t)| >= c√t)."""
    from scipy.special import ndtr

    if math.isinf(c):
        return 0.0
    s = math.sqrt(t - prev.t)
    b = c * math.sqrt(t)
    mu = prev.grid + drift * (t - prev.t)
    return float(np.sum(prev.weighted * (ndtr((-b - mu) / s) + ndtr((mu - b) / s))))


def _advance(prev: _Density, t: float, c: float, drift: float) -> _Density:
    """f at t on |W| < c√t (the recursion of the module docstring)."""
    from scipy.stats import norm

    d = t - prev.t
    s = math.sqrt(d)
    reach = float(np.max(np.abs(prev.grid))) + abs(drift) * d + 10.0 * s
    half = min(c * math.sqrt(t), reach)
    grid, w = _nodes(half, s / 8.0)
    kernel = norm.pdf((grid[:, None] - prev.grid[None, :] - drift * d) / s) / s
    return _Density(t, grid, w * (kernel @ prev.weighted))


def exit_probabilities(boundaries: np.ndarray, fractions: np.ndarray, drift: float = 0.0) -> np.ndarray:
    """P(first |Z_k| >= c_k at look k) for each k, for W with the given drift (θ√I_max in
    standard units: drift 0 is the null). Used to check boundaries and for power."""
    from scipy.stats import norm

    c, t = np.asarray(boundaries, float), np.asarray(fractions, float)
    out = np.zeros(len(c))
    s = math.sqrt(t[0])
    out[0] = norm.sf(c[0] - drift * s) + norm.cdf(-c[0] - drift * s)
    dens = _first(t[0], c[0], drift)
    for k in range(1, len(c)):
        out[k] = _crossing(dens, t[k], c[k], drift)
        dens = _advance(dens, t[k], c[k], drift)
    return out


def _solve(prev: _Density | None, t: float, target: float) -> float:
    """The boundary c at t spending ``target`` after ``prev`` (None: the first look)."""
    from scipy.optimize import brentq
    from scipy.special import ndtri

    if target <= 1e-15:
        return math.inf
    if prev is None:
        return float(-ndtri(target / 2.0))
    if _crossing(prev, t, 1e-9, 0.0) <= target:
        return 0.0
    return float(brentq(lambda c: _crossing(prev, t, c, 0.0) - target, 1e-9, Z_MAX, xtol=1e-10))


def two_sided_spent(t: float, alpha: float, spending: str) -> float:
    """α(t) of the symmetric two-sided design: α/2 per side (module docstring)."""
    return 2.0 * spent_alpha(t, alpha / 2.0, spending)


def spending_boundaries(fractions: np.ndarray, alpha: float, spending: str = "obrien-fleming") -> np.ndarray:
    """Two-sided Lan–DeMets boundaries c_k at the information fractions (the last one spends
    α(t_K); with t_K = 1 that is all of α)."""
    return _Plan(np.asarray(fractions, float), alpha, spending).boundaries


def classic_boundaries(looks: int, alpha: float, shape: str = "obrien-fleming") -> np.ndarray:
    """The classic equally spaced boundaries: O'Brien & Fleming (Biometrika 1979),
    c_k = C·√(K/k), or Pocock (Biometrika 1977), c_k = C, with C such that the total
    two-sided crossing probability under the null is α (J&T Tables 2.1, 2.3)."""
    from scipy.optimize import brentq

    t = np.arange(1, looks + 1) / looks

    def bounds(c: float) -> np.ndarray:
        return c / np.sqrt(t) if shape == "obrien-fleming" else np.full(looks, c)

    c = brentq(lambda c: exit_probabilities(bounds(c), t).sum() - alpha, 1.0, 10.0, xtol=1e-10)
    return bounds(c)


@dataclass
class _Plan:
    """Boundaries of a plan, with the densities to solve an early final look."""

    fractions: np.ndarray
    alpha: float
    spending: str
    boundaries: np.ndarray = field(init=False)
    densities: list[_Density] = field(init=False)

    def __post_init__(self) -> None:
        c: list[float] = []
        self.densities = []
        prev: _Density | None = None
        spent = 0.0
        for t in self.fractions:
            target = two_sided_spent(float(t), self.alpha, self.spending)
            ck = _solve(prev, float(t), target - spent)
            spent = target
            c.append(ck)
            prev = _first(float(t), ck, 0.0) if prev is None else _advance(prev, float(t), ck, 0.0)
            self.densities.append(prev)
        self.boundaries = np.array(c)

    def final_boundary(self, k: int) -> float:
        """Boundary at look k (0-based) if it is the last: spends all of α left."""
        if k >= len(self.fractions) - 1:
            return float(self.boundaries[-1])
        t = float(self.fractions[k])
        spent = two_sided_spent(float(self.fractions[k - 1]), self.alpha, self.spending) if k else 0.0
        return _solve(self.densities[k - 1] if k else None, t, self.alpha - spent)


class GroupSequentialTest:
    """``kind: group-sequential``: K equally spaced looks, Lan–DeMets spending.

    The rule counts looks: look k (1-based) is at t = k/K. Looks past the K-th spend
    nothing (boundary inf); a ``final`` look before the K-th spends all of α left.

    Args:
        spec: the ``test:`` block.
    """

    kind = "group-sequential"

    def __init__(self, spec: GroupSequentialTestSpec) -> None:
        self.spec = spec
        self._plan: _Plan | None = None

    @property
    def plan(self) -> _Plan:
        """The boundaries (computed once, on first use)."""
        if self._plan is None:
            k = self.spec.looks
            self._plan = _Plan(np.arange(1, k + 1) / k, self.spec.alpha, self.spec.spending)
        return self._plan

    def boundary(self, look: int, final: bool) -> float:
        """c at look ``look`` (0-based)."""
        plan = self.plan
        if look >= len(plan.boundaries):
            return math.inf
        return plan.final_boundary(look) if final else float(plan.boundaries[look])

    def state(self, n_runs: int) -> Verdicts:
        return Verdicts.empty(n_runs)

    def look(self, state: Verdicts, data: Looks, final: bool = False) -> tuple[Verdicts, LookResult]:
        c = self.boundary(state.looks, final)
        d, v = difference(data)
        z = np.where(v > 0, d / np.sqrt(np.where(v > 0, v, 1.0)), 0.0)
        crossed = (v > 0) & (np.abs(z) >= c)
        out = state.settle(crossed & (z > 0), crossed & (z < 0), lift_interval(data, c), final)
        return state, out
