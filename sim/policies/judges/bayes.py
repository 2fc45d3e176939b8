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

from sim.policies.judges.base import (
    FAIL_CODE,
    NO_DATA_CODE,
    PASS_CODE,
    Detail,
    JudgeBatch,
    JudgeData,
    Judgement,
    Judgements,
)
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
    counts = (np.array([nc]), np.array([ec]), np.array([np_]), np.array([ep]))
    return float(prob_canary_worse_rows(*counts, delta, prior_a, prior_b, points)[0])


def prob_canary_worse_rows(
    nc: np.ndarray,
    ec: np.ndarray,
    np_: np.ndarray,
    ep: np.ndarray,
    delta: float = 0.0,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    points: int = 401,
) -> np.ndarray:
    """``prob_canary_worse`` of many runs ((n,) counts), row by row (each row its own grid)."""
    from scipy.special import betainc  # lazy: validate imports no scipy (docs/architecture.md section 2)
    from scipy.stats import beta as beta_dist  # lazy: scipy.stats costs a run's start-up

    ap, bp = prior_a + ep, prior_b + np_ - ep
    ac, bc = prior_a + ec, prior_b + nc - ec
    mean = ap / (ap + bp)
    sd = np.sqrt(ap * bp / ((ap + bp) ** 2 * (ap + bp + 1)))
    x = np.linspace(np.maximum(0.0, mean - 12 * sd), np.minimum(1.0, mean + 12 * sd), points, axis=1)
    w = beta_dist.pdf(x, ap[:, None], bp[:, None])
    total = w.sum(axis=1)
    empty = total <= 0  # (an infinite density at an end of the grid gives NaN, as it did)
    with np.errstate(invalid="ignore"):
        w = w / np.where(empty, 1.0, total)[:, None]
    tail = 1.0 - betainc(ac[:, None], bc[:, None], np.clip(x + delta, 0.0, 1.0))
    return np.where(empty, 0.5, (w * tail).sum(axis=1))


@dataclass(frozen=True)
class BayesState:
    """Sticky decision (a rolled-back canary stays rolled back)."""

    rejected: bool = False


class BayesJudge:
    """``kind: bayes``: roll back when P(p_c > p_p + delta) > probability (the scalar
    ``judge`` is the batch pass on a batch of one).

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

    def batch_state(self, n: int) -> np.ndarray:
        """Whether each run was rolled back (n,)."""
        return np.zeros(n, dtype=bool)

    def state_row(self, state: np.ndarray, i: int) -> BayesState:
        return BayesState(bool(state[i]))

    def judge(self, state: BayesState, data: JudgeData) -> tuple[BayesState, Judgement]:
        one = np.array([state.rejected])
        out = self.judge_batch(one, np.zeros(1, dtype=np.int64), JudgeBatch.of(data))
        return self.state_row(one, 0), out.at(0)

    def judge_batch(self, state: np.ndarray, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Every run of ``rows`` judged in one pass (posterior integrals as (runs, grid) arrays)."""
        spec = self.spec
        nc, ec = data.canary_requests.sum(axis=1), data.canary_errors.sum(axis=1)
        np_, ep = data.primary_requests.sum(axis=1), data.primary_errors.sum(axis=1)
        seen = nc > 0  # without canary requests: no data, the decision so far stands
        prob = np.full(len(rows), np.nan)
        if seen.any():
            prob[seen] = prob_canary_worse_rows(
                nc[seen], ec[seen], np_[seen], ep[seen], spec.delta, spec.prior_a, spec.prior_b
            )
        before = state[rows]
        rejected = before | (seen & (prob > spec.probability))
        state[rows] = rejected
        verdict = np.where(rejected, FAIL_CODE, np.where(seen, PASS_CODE, NO_DATA_CODE)).astype(np.int8)

        def detail(i: int) -> Detail:
            if not seen[i]:
                return {}
            out: Detail = {"p_canary_worse": round(float(prob[i]), 6), "bound": spec.probability}
            if rejected[i]:
                out["statistic"] = (
                    f"P(p_canary > p_primary + {spec.delta:g}) = {float(prob[i]):.4f} > {spec.probability:g}"
                )
            return out

        return Judgements(verdict, rejected, np.zeros(len(rows), dtype=bool), detail)
