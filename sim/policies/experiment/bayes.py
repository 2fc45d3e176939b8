"""Bayesian "chance to beat" and "expected loss" rule (``kind: bayes``).

**No frequentist guarantee.** Stopping when a posterior quantity crosses a threshold, at
any look, does not bound the rate of false winners: in A/A runs it grows with the number
of looks like a peeked test's. ``alpha`` only sets the level of the reported interval.
This is the rule of VWO's SmartStats and GrowthBook's Bayesian engine, here to compare.

Proportions: independent Beta(prior_a + x, prior_b + n − x) posteriors per arm.

* chance to beat: P(p_B > p_A) = ∫ f_A(p)·(1 − F_B(p)) dp, by Gauss–Legendre quadrature
  over ±12 posterior standard deviations of the narrower posterior (checked against the
  exact finite sum of Evan Miller, "Formulas for Bayesian A/B Testing", 2015, eq. 1);
* expected loss of choosing B, E[max(p_A − p_B, 0)], by size-biasing (Chris Stucchio,
  "Bayesian A/B Testing at VWO", 2015, section 4, eq. (8)):
  E[max(p_A − p_B, 0)] = m_A·P(A⁺ > B) − m_B·P(A > B⁺), X⁺ the posterior with a + 1,
  m the posterior means; the loss of keeping A symmetrically.

Means: the normal approximation d = m_B − m_A ~ N(d̂, V) (flat prior, ``base.difference``):
P(B > A) = Φ(d̂/√V); E[max(−d, 0)] = √V·φ(d̂/√V) − d̂·Φ(−d̂/√V); E[max(d, 0)] likewise.

Losses are relative to the primary's mean. A run stops, once both arms have ``min_units``,
when P(B > A) >= ``chance_to_beat`` (candidate) or <= 1 − ``chance_to_beat`` (primary), or
when the smaller expected loss is below ``expected_loss`` (the choice with that loss). The
lift interval is the delta-method interval at z_{1−α/2} (``base.lift_interval``): the
normal approximation of a credible interval under flat priors.
"""

from __future__ import annotations

import functools

import numpy as np

from sim.policies.experiment.base import (
    BayesTestSpec,
    LookResult,
    Looks,
    Verdicts,
    difference,
    lift_interval,
    z_quantile,
)

#: Gauss–Legendre nodes of the chance-to-beat integral.
NODES = 128


@functools.cache
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [−1, 1] (computed once)."""
    return np.polynomial.legendre.leggauss(NODES)


def _beta_sd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    return np.sqrt(a * b / (s * s * (s + 1.0)))


def prob_greater(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """P(X2 > X1) for independent X_i ~ Beta(a_i, b_i), elementwise (module docstring)."""
    from scipy.special import betainc, betaln

    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a1, b1, a2, b2)))
    x, w = _legendre()
    # integrate against the density of the narrower posterior: the other's CDF is smooth there
    first = _beta_sd(a1, b1) <= _beta_sd(a2, b2)
    a_d, b_d = np.where(first, a1, a2), np.where(first, b1, b2)  # the density's parameters
    a_c, b_c = np.where(first, a2, a1), np.where(first, b2, b1)  # the CDF's
    mean, sd = a_d / (a_d + b_d), _beta_sd(a_d, b_d)
    lo, hi = np.maximum(mean - 12.0 * sd, 0.0), np.minimum(mean + 12.0 * sd, 1.0)
    half = (hi - lo)[:, None] / 2.0 if a1.ndim else (hi - lo) / 2.0
    p = (lo[..., None] + hi[..., None]) / 2.0 + half * x
    p = np.clip(p, 1e-300, 1.0 - 1e-16)
    log_pdf = (a_d[..., None] - 1.0) * np.log(p) + (b_d[..., None] - 1.0) * np.log1p(-p) - betaln(a_d, b_d)[..., None]
    cdf = betainc(a_c[..., None], b_c[..., None], p)
    # first: P(X2 > X1) = ∫ f1 (1 − F2); else: ∫ f2 F1
    integrand = np.exp(log_pdf) * np.where(first[..., None], 1.0 - cdf, cdf)
    return np.clip(np.sum(integrand * w * half, axis=-1), 0.0, 1.0)


def beta_chance_and_losses(
    a_a: np.ndarray, b_a: np.ndarray, a_b: np.ndarray, b_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(p_B > p_A), E[max(p_A − p_B, 0)] (loss of choosing B), E[max(p_B − p_A, 0)] (of keeping A))."""
    m_a, m_b = a_a / (a_a + b_a), a_b / (a_b + b_b)
    chance = prob_greater(a_a, b_a, a_b, b_b)
    loss_b = m_a * prob_greater(a_b, b_b, a_a + 1.0, b_a) - m_b * prob_greater(a_b + 1.0, b_b, a_a, b_a)
    loss_a = m_b * prob_greater(a_a, b_a, a_b + 1.0, b_b) - m_a * prob_greater(a_a + 1.0, b_a, a_b, b_b)
    return chance, np.maximum(loss_b, 0.0), np.maximum(loss_a, 0.0)


def normal_chance_and_losses(d: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same three for d ~ N(d̂, V) (module docstring); (0.5, inf, inf) where V is 0."""
    from scipy.special import ndtr
    from scipy.stats import norm

    ok = v > 0
    s = np.sqrt(np.where(ok, v, 1.0))
    z = d / s
    chance = np.where(ok, ndtr(z), 0.5)
    loss_b = np.where(ok, s * norm.pdf(z) - d * ndtr(-z), np.inf)
    loss_a = np.where(ok, s * norm.pdf(z) + d * ndtr(z), np.inf)
    return chance, loss_b, loss_a


class BayesTest:
    """``kind: bayes``: chance to beat / expected loss. No frequentist guarantee.

    Args:
        spec: the ``test:`` block.
    """

    kind = "bayes"

    def __init__(self, spec: BayesTestSpec) -> None:
        self.spec = spec
        self.z = z_quantile(1.0 - spec.alpha / 2.0)

    def state(self, n_runs: int) -> Verdicts:
        return Verdicts.empty(n_runs)

    def chance_and_losses(self, data: Looks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(B > A), loss of choosing B, loss of keeping A), losses relative to A's mean."""
        spec = self.spec
        if data.binary:
            a_a, b_a = spec.prior_a + data.sum_a, spec.prior_b + data.n_a - data.sum_a
            a_b, b_b = spec.prior_a + data.sum_b, spec.prior_b + data.n_b - data.sum_b
            chance, loss_b, loss_a = beta_chance_and_losses(a_a, b_a, a_b, b_b)
            scale = a_a / (a_a + b_a)
        else:
            chance, loss_b, loss_a = normal_chance_and_losses(*difference(data))
            scale = np.abs(data.arm(False)[0])
        ok = scale > 0
        safe = np.where(ok, scale, 1.0)
        return chance, np.where(ok, loss_b / safe, np.inf), np.where(ok, loss_a / safe, np.inf)

    def look(self, state: Verdicts, data: Looks, final: bool = False) -> tuple[Verdicts, LookResult]:
        spec = self.spec
        chance, loss_b, loss_a = self.chance_and_losses(data)
        enough = np.minimum(data.n_a, data.n_b) >= spec.min_units
        better = np.zeros(len(data), dtype=bool)
        worse = np.zeros(len(data), dtype=bool)
        if spec.chance_to_beat is not None:
            better |= chance >= spec.chance_to_beat
            worse |= chance <= 1.0 - spec.chance_to_beat
        if spec.expected_loss is not None:
            small = np.minimum(loss_a, loss_b) < spec.expected_loss
            better |= small & (loss_b <= loss_a)
            worse |= small & (loss_a < loss_b)
        better &= enough
        worse &= enough & ~better
        out = state.settle(better, worse, lift_interval(data, self.z), final)
        return state, out
