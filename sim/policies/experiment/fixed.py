"""The fixed-horizon two-sided z test, and the same test peeked at every look (``kind: fixed``).

The Wald z test of a difference in proportions or in means with unpooled variance
(Casella & Berger 2002, section 10.3.2; the unpooled form, so that test and interval
agree; statsmodels' ``test_proportions_2indep(method="wald")`` is the same statistic):

    Z = (m̂_B − m̂_A) / sqrt(σ̂²_A/n_A + σ̂²_B/n_B),   reject when |Z| > z_{1−α/2}.

Planned (``peek: false``): the test is done once, at the first look where both arms hold
``sample_size`` units (or at the final look, with what there is); before that the rule
continues. Its power at a true difference δ with per-arm variances σ²_A, σ²_B and n per
arm is, by the normal approximation,

    power = Φ(δ/s − z_{1−α/2}) + Φ(−δ/s − z_{1−α/2}),   s = sqrt((σ²_A + σ²_B)/n)

(``analytic_power``), and its interval m̂_B − m̂_A ± z_{1−α/2}·s covers δ with probability
1 − α. Peeked (``peek: true``): the same test at every look, stopping at the first
rejection: each look alone has size α, the sequence does not (Armitage, McPherson & Rowe,
JRSS A 132, 1969: about 0.19 for 10 looks at α = 0.05). Here to show why peeking fails.
"""

from __future__ import annotations

import math

import numpy as np

from sim.policies.experiment.base import (
    FixedTestSpec,
    LookResult,
    Looks,
    Verdicts,
    difference,
    lift_interval,
    z_quantile,
)


def z_statistic(data: Looks) -> tuple[np.ndarray, np.ndarray]:
    """(Z, defined): the unpooled z of m_B − m_A; defined where V > 0."""
    d, v = difference(data)
    ok = v > 0
    return np.where(ok, d / np.sqrt(np.where(ok, v, 1.0)), 0.0), ok


def analytic_power(delta: float, var_a: float, var_b: float, n: float, alpha: float) -> float:
    """Power of the planned two-sided test at difference ``delta`` (module docstring): the
    planner's ``mean_power`` with the difference as a lift of a mean of 1, ``n`` per arm."""
    from sim.policies.experiment.plan import mean_power

    return mean_power(1.0, math.sqrt(var_a), delta, n, alpha=alpha, sd_candidate=math.sqrt(var_b))


class FixedTest:
    """``kind: fixed``: the planned fixed-horizon test, or the same test peeked.

    Args:
        spec: the ``test:`` block.
    """

    kind = "fixed"

    def __init__(self, spec: FixedTestSpec) -> None:
        self.spec = spec
        self.z = z_quantile(1.0 - spec.alpha / 2.0)

    def state(self, n_runs: int) -> Verdicts:
        return Verdicts.empty(n_runs)

    def look(self, state: Verdicts, data: Looks, final: bool = False) -> tuple[Verdicts, LookResult]:
        z, ok = z_statistic(data)
        reached = np.minimum(data.n_a, data.n_b) >= self.spec.sample_size
        # planned: one test, when the plan is reached (or at the final look); peeked: every look
        over = np.full(len(data), final) | (reached & (not self.spec.peek))
        testing = over | self.spec.peek
        crossed = testing & ok & (np.abs(z) > self.z)
        out = state.settle(crossed & (z > 0), crossed & (z < 0), lift_interval(data, self.z), over)
        return state, out
