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

from sim.policies.judges.base import JudgeData, Judgement, Verdict
from sim.policies.judges.counts import error_slots, slot_count, totals
from sim.policies.judges.spec import ERRORS, LATENCY, MsprtSpec, signals_to_judge


def msprt_log_lambda(score: float, info: float, sigma2: float, tau: float, one_sided: bool = True) -> float:
    """log Lambda of the stratified mSPRT (see the module docstring)."""
    from scipy.special import log_ndtr

    if info <= 0 or sigma2 <= 0:
        return 0.0
    r = 1.0 + tau * tau * info / sigma2
    log_l = -0.5 * math.log(r) + tau * tau * score * score / (2.0 * sigma2 * sigma2 * r)
    if one_sided:
        log_l += math.log(2.0) + float(log_ndtr(score * tau / (sigma2 * math.sqrt(r))))
    return log_l


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


class MsprtJudge:
    """``kind: msprt``: Bernoulli mSPRT on errors, normal mSPRT on log latency.

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

    def judge(self, state: MsprtState, data: JudgeData) -> tuple[MsprtState, Judgement]:
        spec = self.spec
        k = slot_count(data)
        es, ei, ls, li = state.error_score, state.error_info, state.latency_score, state.latency_info
        if k > state.seen:
            slots = error_slots(data, state.seen)
            n = slots.n_canary + slots.n_primary
            ok = (slots.n_canary > 0) & (slots.n_primary > 0)
            if ok.any():
                es += float(np.sum((slots.n_primary * slots.e_canary - slots.n_canary * slots.e_primary)[ok] / n[ok]))
                ei += float(np.sum((slots.n_canary * slots.n_primary)[ok] / n[ok]))
            if LATENCY in self.signals and data.canary.hist is not None and data.primary.hist is not None:
                ls, li = self._latency(data, state.seen, k, ls, li)
        nc, ec, np_, ep = totals(data)
        detail: dict[str, float | str | None] = {}
        bound = len(self.signals) / spec.alpha if self.signals else 1.0 / spec.alpha
        crossed = []
        if ERRORS in self.signals and ec + ep >= max(spec.min_failures, 1):
            p = (ec + ep) / (nc + np_)
            log_l = msprt_log_lambda(es, ei, p * (1.0 - p), spec.tau_error_rate, spec.one_sided)
            detail["lambda_errors"] = round(math.exp(min(log_l, 700.0)), 4)
            if log_l >= math.log(bound):
                crossed.append(f"mSPRT {math.exp(min(log_l, 700.0)):.4g} >= {bound:g} on {ERRORS}")
        if LATENCY in self.signals and li > 0:
            sigma2 = self._pooled_log_variance(data, k)
            log_l = msprt_log_lambda(ls, li, sigma2, spec.tau_log_latency, spec.one_sided)
            detail["lambda_latency"] = round(math.exp(min(log_l, 700.0)), 4)
            if log_l >= math.log(bound):
                crossed.append(f"mSPRT {math.exp(min(log_l, 700.0)):.4g} >= {bound:g} on {LATENCY}")
        rejected = state.rejected or bool(crossed)
        new = MsprtState(max(k, state.seen), es, ei, ls, li, rejected)
        detail["bound"] = bound
        if crossed:
            detail["statistic"] = "; ".join(crossed)
        if rejected:
            return new, Judgement(Verdict.FAIL, reject=True, detail=detail)
        return new, Judgement(Verdict.NO_DATA if nc <= 0 else Verdict.INCONCLUSIVE, detail=detail)

    @staticmethod
    def _latency(data: JudgeData, seen: int, k: int, score: float, info: float) -> tuple[float, float]:
        hc, hp = data.canary.hist, data.primary.hist
        assert hc is not None and hp is not None  # called only with both histograms
        x = log_bucket_midpoints(data.bounds_ms)
        hc, hp = np.asarray(hc[seen:k], float), np.asarray(hp[seen:k], float)
        nc, np_ = hc.sum(axis=1), hp.sum(axis=1)
        ok = (nc > 0) & (np_ > 0)
        if not ok.any():
            return score, info
        mc, mp = (hc[ok] @ x) / nc[ok], (hp[ok] @ x) / np_[ok]
        w = nc[ok] * np_[ok] / (nc[ok] + np_[ok])
        return score + float(np.sum(w * (mc - mp))), info + float(np.sum(w))

    @staticmethod
    def _pooled_log_variance(data: JudgeData, k: int) -> float:
        hc, hp = data.canary.hist, data.primary.hist
        assert hc is not None and hp is not None  # called only with both histograms
        x = log_bucket_midpoints(data.bounds_ms)
        h = np.asarray(hc[:k], float).sum(axis=0) + np.asarray(hp[:k], float).sum(axis=0)
        n = h.sum()
        if n < 2:
            return 0.0
        mean = float(h @ x) / n
        return float(h @ (x - mean) ** 2) / (n - 1)
