"""A Beta-Binomial Bayesian judge (in the style of Iter8's Bayesian canary analysis).

Each version's error probability gets an independent Beta(a, b) prior, updated with its
requests and failures since the rollout started; the canary is rolled back when the
posterior probability P(p_canary > p_primary + delta | data) exceeds ``probability``
(default 0.99).

**This judge has no frequentist error guarantee.** A posterior probability checked at
every tick is not a p-value, and rolling back on the first tick it crosses 0.99 is a
repeated test: its false rollback rate on good releases depends on how long the rollout
runs and how often it looks. pdsim measures that rate by simulation like every other
judge's (``benchmarks/compare_judges.py``, ``tests/policies/judges``); it is not alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.policies.judges.base import JudgeData, Judgement, Verdict
from sim.policies.judges.counts import totals
from sim.policies.judges.spec import ERRORS, BayesSpec, signals_to_judge


def prob_canary_worse(
    nc: float,
    ec: float,
    np_: float,
    ep: float,
    delta: float = 0.0,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    points: int = 401,
) -> float:
    """P(p_canary > p_primary + delta) under independent Beta posteriors.

    Integrates the canary's posterior tail over the primary's posterior on a grid of
    ±12 posterior standard deviations (deterministic; no Monte Carlo).
    """
    from scipy.special import betainc
    from scipy.stats import beta as beta_dist

    ap, bp = prior_a + ep, prior_b + np_ - ep
    ac, bc = prior_a + ec, prior_b + nc - ec
    mean = ap / (ap + bp)
    sd = float(np.sqrt(ap * bp / ((ap + bp) ** 2 * (ap + bp + 1))))
    x = np.linspace(max(0.0, mean - 12 * sd), min(1.0, mean + 12 * sd), points)
    w = beta_dist.pdf(x, ap, bp)
    if w.sum() <= 0:
        return 0.5
    w = w / w.sum()
    tail = 1.0 - betainc(ac, bc, np.clip(x + delta, 0.0, 1.0))
    return float(w @ tail)


@dataclass(frozen=True)
class BayesState:
    """Sticky decision (a rolled-back canary stays rolled back)."""

    rejected: bool = False


class BayesJudge:
    """``kind: bayes``: roll back when P(p_c > p_p + delta) > probability.

    Args:
        spec: the ``judge:`` block.
        signals: the builtin metrics the strategy lets it judge (errors only).
    """

    kind = "bayes"
    needs_latency = False

    def __init__(self, spec: BayesSpec, signals: frozenset[str] = frozenset({ERRORS})) -> None:
        self.spec = spec
        self.signals = signals_to_judge(spec.metrics, signals, frozenset({ERRORS}))

    def initial_state(self) -> BayesState:
        return BayesState()

    def judge(self, state: BayesState, data: JudgeData) -> tuple[BayesState, Judgement]:
        spec = self.spec
        nc, ec, np_, ep = totals(data)
        if nc <= 0:
            return state, Judgement(Verdict.FAIL if state.rejected else Verdict.NO_DATA, reject=state.rejected)
        prob = prob_canary_worse(nc, ec, np_, ep, spec.delta, spec.prior_a, spec.prior_b)
        detail: dict[str, float | str | None] = {"p_canary_worse": round(prob, 6), "bound": spec.probability}
        if state.rejected or prob > spec.probability:
            detail["statistic"] = f"P(p_canary > p_primary + {spec.delta:g}) = {prob:.4f} > {spec.probability:g}"
            return BayesState(True), Judgement(Verdict.FAIL, reject=True, detail=detail)
        return state, Judgement(Verdict.PASS, detail=detail)
