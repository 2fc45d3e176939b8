"""Mixture SPRT (Johari, Pekelis & Walsh, "Peeking at A/B Tests", KDD 2017).

The two-sample normal mSPRT with known variance sigma² and a N(theta0, tau²) mixture over
the difference of means, for n observations in each arm (reference code:
erik-stenberg/mixtureSPRT ``src/test.cpp``, ``cppmSPRT``):

    Lambda_n = sqrt(2σ² / (2σ² + nτ²)) · exp(n²τ²(Ȳ − X̄ − θ0)² / (4σ²(2σ² + nτ²)))

Bernoulli: 2σ² becomes X̄(1−X̄) + Ȳ(1−Ȳ) (a plug-in; the test is then asymptotically,
not exactly, anytime-valid). Reject when Lambda_n >= 1/alpha.

A canary's arms are unbalanced and the split ramps, so pdsim uses the stratified form
that reduces to the formula above for balanced pairs: per slot (a stratum of constant
split) the score D = w·(ȳ_canary − ȳ_primary) with weight w = n_c·n_p/(n_c + n_p), and
S = ΣD ~ N(θ·I, σ²·I) with I = Σw, independent increments. Mixing exp(θS/σ² − θ²I/(2σ²))
over θ ~ N(0, τ²) gives

    Lambda = (1 + τ²I/σ²)^(-1/2) · exp(τ²S² / (2σ²(σ² + τ²I)))

and over the half-normal θ > 0 (one-sided: the canary is worse) twice that times
Φ(S·τ / (σ·sqrt(σ² + τ²I))). Errors are the Bernoulli metric (σ² the pooled p̂(1−p̂));
latency is a normal metric on log milliseconds, each request at its histogram bucket's
geometric midpoint (σ² the pooled variance). The two combine by Bonferroni.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.policies.judges.base import (
    FAIL_CODE,
    INCONCLUSIVE_CODE,
    NO_DATA_CODE,
    Detail,
    JudgeBatch,
    JudgeData,
    Judgement,
    Judgements,
)
from sim.policies.judges.spec import ERRORS, LATENCY, MsprtSpec, signals_to_judge


def msprt_log_lambda(score: float, info: float, sigma2: float, tau: float, one_sided: bool = True) -> float:
    """log Lambda of the stratified mSPRT (see the module docstring)."""
    return float(msprt_log_lambdas(np.array([score]), np.array([info]), np.array([sigma2]), tau, one_sided)[0])


def msprt_log_lambdas(
    score: np.ndarray, info: np.ndarray, sigma2: np.ndarray, tau: float, one_sided: bool = True
) -> np.ndarray:
    """``msprt_log_lambda`` of many runs (arrays of one shape); 0 where info or sigma2 <= 0."""
    from scipy.special import log_ndtr  # lazy: validate imports no scipy (docs/architecture.md section 2)

    ok = (info > 0) & (sigma2 > 0)
    sigma2 = np.where(ok, sigma2, 1.0)  # placeholders where the answer is 0
    r = 1.0 + tau * tau * np.where(ok, info, 0.0) / sigma2
    log_l = -0.5 * np.log(r) + tau * tau * score * score / (2.0 * sigma2 * sigma2 * r)
    if one_sided:
        log_l += math.log(2.0) + log_ndtr(score * tau / (sigma2 * np.sqrt(r)))
    return np.where(ok, log_l, 0.0)


def log_bucket_midpoints(bounds_ms: tuple[float, ...]) -> np.ndarray:
    """log(ms) representing each histogram bucket: geometric midpoints; half the first
    bound for the first bucket, twice the last bound for +Inf."""
    b = np.asarray(bounds_ms, float)
    mids = np.concatenate([[b[0] / 2.0], np.sqrt(b[1:] * b[:-1]), [2.0 * b[-1]]])
    return np.log(mids)


@dataclass(frozen=True)
class MsprtState:
    """Running scores: ``seen`` slots folded in; (S, I) per metric; sticky rejection."""

    seen: int = 0
    error_score: float = 0.0
    error_info: float = 0.0
    latency_score: float = 0.0
    latency_info: float = 0.0
    rejected: bool = False


@dataclass(eq=False)
class MsprtBatch:
    """``MsprtState`` of n runs: ``seen`` (n,), ``score`` (n, 4) as (error S, error I,
    latency S, latency I), ``rejected`` (n,)."""

    seen: np.ndarray
    score: np.ndarray
    rejected: np.ndarray


class MsprtJudge:
    """``kind: msprt``: Bernoulli mSPRT on errors, normal mSPRT on log latency.

    The scalar ``judge`` is the batch pass on a batch of one (compiled sums, ``kernels``).

    Args:
        spec: the ``judge:`` block.
        signals: the builtin metrics the strategy lets it judge.
    """

    kind = "msprt"

    def __init__(self, spec: MsprtSpec, signals: frozenset[str] = frozenset({ERRORS, LATENCY})) -> None:
        self.spec = spec
        self.signals = signals_to_judge(spec.metrics, signals, frozenset({ERRORS, LATENCY}))
        self.needs_latency = LATENCY in self.signals

    def initial_state(self) -> MsprtState:
        return MsprtState()

    def batch_state(self, n: int) -> MsprtBatch:
        """n runs not judged yet."""
        return MsprtBatch(np.zeros(n, dtype=np.int64), np.zeros((n, 4)), np.zeros(n, dtype=bool))

    def state_row(self, state: MsprtBatch, i: int) -> MsprtState:
        """Run i's ``MsprtState``."""
        es, ei, ls, li = (float(x) for x in state.score[i])
        return MsprtState(int(state.seen[i]), es, ei, ls, li, bool(state.rejected[i]))

    def judge(self, state: MsprtState, data: JudgeData) -> tuple[MsprtState, Judgement]:
        one = self.batch_state(1)
        one.seen[0], one.rejected[0] = state.seen, state.rejected
        one.score[0] = (state.error_score, state.error_info, state.latency_score, state.latency_info)
        out = self.judge_batch(one, np.zeros(1, dtype=np.int64), JudgeBatch.of(data))
        return self.state_row(one, 0), out.at(0)

    def judge_batch(self, state: MsprtBatch, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Every run of ``rows`` judged in one pass."""
        from sim.policies.judges import kernels

        spec = self.spec
        rows = np.asarray(rows, dtype=np.int64)
        n_slots = data.canary_requests.shape[1]
        latency = LATENCY in self.signals and data.canary_hist is not None and data.primary_hist is not None
        log_ms = log_bucket_midpoints(data.bounds_ms) if latency else np.zeros(1)  # (a replay may have no bounds)
        hc = _floats(data.canary_hist) if latency else np.zeros((1, 1, 1))
        hp = _floats(data.primary_hist) if latency else np.zeros((1, 1, 1))
        if n_slots:
            kernels.msprt_scores(
                rows,
                state.seen,
                _floats(data.canary_requests),
                _floats(data.canary_errors),
                _floats(data.primary_requests),
                _floats(data.primary_errors),
                hc,
                hp,
                latency,
                log_ms,
                state.score,
            )
        state.seen[rows] = np.maximum(state.seen[rows], n_slots)
        es, ei, ls, li = state.score[rows].T
        nc, ec = data.canary_requests.sum(axis=1), data.canary_errors.sum(axis=1)
        np_, ep = data.primary_requests.sum(axis=1), data.primary_errors.sum(axis=1)
        bound = len(self.signals) / spec.alpha if self.signals else 1.0 / spec.alpha
        n = len(rows)
        lambdas: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # metric -> (shown, log Lambda)
        if ERRORS in self.signals:
            shown = ec + ep >= max(spec.min_failures, 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                p = np.where(shown, (ec + ep) / np.where(shown, nc + np_, 1.0), 0.0)
            lambdas[ERRORS] = (shown, msprt_log_lambdas(es, ei, p * (1.0 - p), spec.tau_error_rate, spec.one_sided))
        if LATENCY in self.signals:
            shown = li > 0
            sigma2 = np.zeros(n)
            if latency and shown.any():
                sigma2[shown] = kernels.pooled_log_variance(hc[shown], hp[shown], log_ms)
            lambdas[LATENCY] = (shown, msprt_log_lambdas(ls, li, sigma2, spec.tau_log_latency, spec.one_sided))
        crossed = np.zeros(n, dtype=bool)
        for shown, log_l in lambdas.values():
            crossed |= shown & (log_l >= math.log(bound))
        rejected = state.rejected[rows] | crossed
        state.rejected[rows] = rejected
        verdict = np.where(rejected, FAIL_CODE, np.where(nc <= 0, NO_DATA_CODE, INCONCLUSIVE_CODE)).astype(np.int8)

        def detail(i: int) -> Detail:
            out: Detail = {}
            hits = []
            for metric, (shown, log_l) in lambdas.items():
                if shown[i]:
                    value = math.exp(min(float(log_l[i]), 700.0))
                    out[f"lambda_{'errors' if metric == ERRORS else 'latency'}"] = round(value, 4)
                    if log_l[i] >= math.log(bound):
                        hits.append(f"mSPRT {value:.4g} >= {bound:g} on {metric}")
            out["bound"] = bound
            if hits:
                out["statistic"] = "; ".join(hits)
            return out

        return Judgements(verdict, rejected, np.zeros(n, dtype=bool), detail)


def _floats(x: np.ndarray | None) -> np.ndarray:
    """C-contiguous float64 (what the compiled loops take)."""
    return np.ascontiguousarray(x, dtype=float)
