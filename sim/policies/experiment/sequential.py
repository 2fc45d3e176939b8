"""Anytime-valid two-sided test: the mixture SPRT and its confidence sequence (``kind: sequential``).

Johari, Pekelis & Walsh, "Peeking at A/B Tests" (KDD 2017), and Johari, Koomen, Pekelis &
Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research
70(3), 2022), the test of Optimizely's Stats Engine. For the difference θ = m_B − m_A with
estimate d̂ and variance V (``base.difference``: σ̂²_A/n_A + σ̂²_B/n_B, the plug-in
variance; Bernoulli: p̂(1 − p̂)), the likelihood ratio of N(θ, V) against N(θ0, V) mixed over
θ ~ N(θ0, τ²) is (the paper's two-stream normal mSPRT with 2σ²/n = V):

    Λ(θ0) = sqrt(V / (V + τ²)) · exp(τ²(d̂ − θ0)² / (2V(V + τ²)))

Λ(θ0) is a nonnegative martingale under θ0 with mean 1, so rejecting θ0 = 0 at the first
look where Λ(0) >= 1/α has type I error at most α under any looks (Ville's inequality);
with the plug-in variance the guarantee is asymptotic. Inverting the test gives the
confidence sequence {θ0 : Λ(θ0) < 1/α} (JKPW 2022, section 3: always-valid intervals):

    |d̂ − θ0| < c·sqrt(V),  c² = 2(V + τ²)/τ² · (log(1/α) + ½·log((V + τ²)/V))

The same formula is ``sim.policies.judges.msprt`` (on score S = d̂/V, information I = 1/V,
σ² = 1); this module reuses its ``msprt_log_lambdas``. τ is ``tau`` times the pooled mean.
The lift interval uses the same c (``base.lift_interval``).
"""

from __future__ import annotations

import math

import numpy as np

from sim.policies.experiment.base import (
    LookResult,
    Looks,
    SequentialTestSpec,
    Verdicts,
    difference,
    lift_interval,
)
from sim.policies.judges.msprt import msprt_log_lambdas


def mixture_tau(looks: Looks, tau: float) -> np.ndarray:
    """The mixture's standard deviation in the metric's units: ``tau`` × |pooled mean|."""
    total = looks.n_a + looks.n_b
    pooled = np.where(total > 0, (looks.sum_a + looks.sum_b) / np.maximum(total, 1.0), 0.0)
    return tau * np.abs(pooled)


def msprt_log_lambda_two_sided(d: np.ndarray, v: np.ndarray, tau_abs: np.ndarray) -> np.ndarray:
    """log Λ(0) of the two-sided normal mSPRT (module docstring); 0 where V or τ is 0.

    Λ depends on the data only through d̂/τ and V/τ², so each run is passed in units of its
    own τ (d' = d̂/τ, V' = V/τ²) to ``msprt_log_lambdas`` with τ = 1, σ² = 1.
    """
    ok = (v > 0) & (tau_abs > 0)
    t = np.where(ok, tau_abs, 1.0)
    v_scaled = np.where(ok, v, 1.0) / (t * t)
    d_scaled = np.where(ok, d, 0.0) / t
    log_l = msprt_log_lambdas(d_scaled / v_scaled, 1.0 / v_scaled, np.ones_like(v_scaled), 1.0, False)
    return np.where(ok, log_l, 0.0)


def critical_value(v: np.ndarray, tau_abs: np.ndarray, alpha: float) -> np.ndarray:
    """c of the confidence sequence |d̂ − θ| < c·sqrt(V) (module docstring); inf where V or τ is 0."""
    ok = (v > 0) & (tau_abs > 0)
    v = np.where(ok, v, 1.0)
    t2 = np.where(ok, tau_abs, 1.0) ** 2
    c2 = 2.0 * (v + t2) / t2 * (math.log(1.0 / alpha) + 0.5 * np.log((v + t2) / v))
    return np.where(ok, np.sqrt(c2), np.inf)


def confidence_sequence(looks: Looks, alpha: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the always-valid interval for m_B − m_A at this look."""
    d, v = difference(looks)
    half = critical_value(v, mixture_tau(looks, tau), alpha) * np.sqrt(v)
    return d - half, d + half


class SequentialTest:
    """``kind: sequential``: two-sided mSPRT for a difference in proportions or means.

    Args:
        spec: the ``test:`` block.
    """

    kind = "sequential"

    def __init__(self, spec: SequentialTestSpec) -> None:
        self.spec = spec

    def state(self, n_runs: int) -> Verdicts:
        return Verdicts.empty(n_runs)

    def look(self, state: Verdicts, data: Looks, final: bool = False) -> tuple[Verdicts, LookResult]:
        spec = self.spec
        d, v = difference(data)
        tau_abs = mixture_tau(data, spec.tau)
        enough = (np.minimum(data.n_a, data.n_b) >= spec.min_units) & (v > 0)
        crossed = enough & (msprt_log_lambda_two_sided(d, v, tau_abs) >= math.log(1.0 / spec.alpha))
        crit = critical_value(v, tau_abs, spec.alpha)
        out = state.settle(crossed & (d > 0), crossed & (d < 0), lift_interval(data, crit), final)
        return state, out
