"""Anytime-valid count e-processes: the canary's share of failures and of slow requests.

Lindon & Malek, "Anytime-Valid Inference For Multinomial Count Data", NeurIPS 2022
(reference code: assuncaolfi/savvi ``src/savvi/multinomial.py``, ``Multinomial.update_odds``;
michaellindon/anycount), as Netflix uses it for canaries ("Sequential A/B Testing Keeps the
World Streaming", part 2). Under the null hypothesis (the canary fails as often as the
primary) each failure is the canary's with probability p0, the canary's share of traffic.
With a Beta(k·p0, k·(1−p0)) mixture over the canary's share of failures q,

    E_n = B(a + c, b + d) / (B(a, b) · p0^c · (1 − p0)^d)        (c, d: canary, primary failures)

is a test martingale; rolling back when E_n >= 1/alpha is wrong with probability at most
alpha however often it is checked (Ville's inequality). One-sided ("the canary is worse"):
the mixture is restricted to q > p0 (``beta_binomial_e_value``).

**Time-varying shares.** A canary ramps its weight, so p0 changes. The closed form needs
one p0; plugging in the exposure-weighted share of all requests so far would change the
null under past data and lose the martingale property, and keeping one Beta posterior on q
across weights mispredicts every label after a step. pdsim mixes over the quantity that
stays constant across a ramp, the relative risk theta = p_canary / p_primary: in a slot
whose exposure-weighted canary share of requests is pi (see ``counts``), a failure is the
canary's with probability q = theta·pi / (theta·pi + 1 − pi). The per-slot likelihood
ratios of theta against theta = 1 multiply into a martingale for every theta, and so does
any fixed mixture of them; restricted to theta >= 1 it is a supermartingale under every
theta <= 1 (the one-sided null). The prior on theta is Lindon–Malek's truncated Beta(k·p,
k·(1−p)) on q at the share p of the first slot with a failure, mapped to theta and
discretised on a log grid. With a constant share this IS the closed form above (tested
to a fraction of a percent); with a ramp it stays valid where the closed form does not.

Latency: the same e-process on "requests slower than bound b" for each bound (histogram
data only give these counts); under the null (same latency distribution) a slow request is
the canary's with probability pi too. The e-values of the bounds are averaged (an average
of e-values is an e-value), which tests the distribution functions at every bound at once.
Metrics combine by Bonferroni (each of m metrics at alpha/m) or by averaging e-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.policies.judges.base import JudgeData, Judgement, Verdict
from sim.policies.judges.counts import Slots, bound_index, error_slots, slot_count, totals
from sim.policies.judges.spec import ERRORS, LATENCY, SequentialSpec, signals_to_judge

GRID = 256


def beta_binomial_e_value(
    canary: float, primary: float, p0: float, concentration: float, one_sided: bool = True
) -> float:
    """Lindon–Malek's closed-form e-value for a constant share ``p0`` (log scale avoided
    only at the end). One-sided: the Beta prior truncated to q > p0."""
    from scipy.special import betainc, betaln

    a, b = concentration * p0, concentration * (1.0 - p0)
    log_e = betaln(a + canary, b + primary) - betaln(a, b) - canary * math.log(p0) - primary * math.log1p(-p0)
    if one_sided:
        # P(q > p0) under posterior and prior: I_{1-p0}(b, a) by the symmetry of the Beta.
        log_e += math.log(max(betainc(b + primary, a + canary, 1.0 - p0), 1e-300))
        log_e -= math.log(betainc(b, a, 1.0 - p0))
    return math.exp(min(log_e, 700.0))


@lru_cache(maxsize=4096)
def mixture_grid(p_ref: float, concentration: float, max_rr: float, size: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (log relative risk) and log weights of the discretised one-sided prior.

    The truncated Beta(k·p, k·(1−p)) on q in (p, q(max_rr)) mapped to theta = odds(q) /
    odds(p); each node carries the prior mass of its cell (weights sum to 1).
    """
    from scipy.special import betainc

    edges = np.linspace(0.0, math.log(max_rr), size + 1)
    theta = np.exp(edges)
    q = theta * p_ref / (theta * p_ref + 1.0 - p_ref)
    a, b = concentration * p_ref, concentration * (1.0 - p_ref)
    cdf = betainc(a, b, q)
    mass = np.maximum(np.diff(cdf), 1e-300)
    nodes = 0.5 * (edges[1:] + edges[:-1])
    return nodes, np.log(mass / mass.sum())


def log_likelihood_ratios(
    e_canary: np.ndarray, e_primary: np.ndarray, share: np.ndarray, log_theta: np.ndarray
) -> np.ndarray:
    """Log LR(theta) against theta = 1 summed over slots, for T tests at once.

    Per slot: c·log(theta) − f·log(theta·pi + 1 − pi), c canary events of f in total and
    pi the canary's share of requests. Arguments are (T, K) counts and shares and (T, G)
    nodes; slots without events or without one of the versions contribute nothing.
    """
    f = e_canary + e_primary
    use = (f > 0) & (share > 0) & (share < 1)
    f = np.where(use, f, 0.0)
    c = np.where(use, e_canary, 0.0)
    pi = np.where(use, share, 0.5)
    theta = np.exp(log_theta)
    denom = np.log(theta[:, None, :] * pi[:, :, None] + (1.0 - pi)[:, :, None])  # (T, K, G)
    return c.sum(axis=1)[:, None] * log_theta - np.einsum("tk,tkg->tg", f, denom)


def log_likelihood_ratio(slots: Slots, log_theta: np.ndarray) -> np.ndarray:
    """``log_likelihood_ratios`` of one test (shape (G,))."""
    return log_likelihood_ratios(slots.e_canary[None], slots.e_primary[None], slots.share()[None], log_theta[None])[0]


def _logsumexp(x: np.ndarray) -> float:
    # scipy's logsumexp costs ~1 ms a call in array-API checks; this runs every tick.
    m = float(x.max())
    return m + math.log(float(np.exp(x - m).sum()))


def first_event_share(slots: Slots) -> float | None:
    """The canary's share of requests in the first slot with an event (the prior's p)."""
    pi = slots.share()
    hit = np.flatnonzero((slots.e_canary + slots.e_primary > 0) & (pi > 0) & (pi < 1))
    return float(pi[hit[0]]) if len(hit) else None


@dataclass(frozen=True)
class EProcessState:
    """State of one or more count e-processes (errors, then one per latency bound).

    Attributes:
        seen: slots already folded in.
        p_ref: each test's prior share (NaN until its first event).
        log_m: each test's log LR at every grid node, float64 bytes (immutable, hashable).
        rejected: a past tick crossed the bound (rejection is final).
    """

    seen: int = 0
    p_ref: tuple[float, ...] = ()
    log_m: bytes = b""
    rejected: bool = False


class SequentialJudge:
    """``kind: sequential``: count e-processes on errors and latency buckets.

    Args:
        spec: the ``judge:`` block.
        signals: the builtin metrics the strategy lets it judge.
    """

    kind = "sequential"

    def __init__(self, spec: SequentialSpec, signals: frozenset[str] = frozenset({ERRORS, LATENCY})) -> None:
        self.spec = spec
        self.signals = signals_to_judge(spec.metrics, signals, frozenset({ERRORS, LATENCY}))
        self.needs_latency = LATENCY in self.signals

    def initial_state(self) -> EProcessState:
        return EProcessState()

    def _tests(self, data: JudgeData) -> list[tuple[str, int | None]]:
        tests: list[tuple[str, int | None]] = []
        if ERRORS in self.signals:
            tests.append((ERRORS, None))
        if LATENCY in self.signals:
            idx = sorted({j for b in self.spec.latency_bounds_ms if (j := bound_index(data.bounds_ms, b)) is not None})
            tests += [(LATENCY, j) for j in idx]
        return tests

    def _events(
        self, data: JudgeData, tests: list[tuple[str, int | None]], seen: int, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Canary events, primary events and canary shares of the new slots, (T, K) each."""
        ec, ep, pi = [], [], []
        if tests and tests[0][1] is None:
            slots = error_slots(data, seen)
            ec.append(slots.e_canary)
            ep.append(slots.e_primary)
            pi.append(slots.share())
        hc, hp = data.canary.hist, data.primary.hist
        if hc is None or hp is None:
            # No histograms (a replayed CSV of counters): the latency tests see no events.
            none = np.zeros(k - seen)
            for _, j in tests:
                if j is not None:
                    ec.append(none)
                    ep.append(none)
                    pi.append(none)
        elif any(j is not None for _, j in tests):
            hc, hp = np.asarray(hc[seen:k], float), np.asarray(hp[seen:k], float)
            # Requests slower than bound j: the buckets above it (a reversed cumulative sum).
            tail_c = np.cumsum(hc[:, ::-1], axis=1)[:, ::-1]
            tail_p = np.cumsum(hp[:, ::-1], axis=1)[:, ::-1]
            n = tail_c[:, 0] + tail_p[:, 0]
            share = np.divide(tail_c[:, 0], n, out=np.zeros_like(n), where=n > 0)
            for _, j in tests:
                if j is not None:
                    ec.append(tail_c[:, j + 1])
                    ep.append(tail_p[:, j + 1])
                    pi.append(share)
        return np.array(ec), np.array(ep), np.array(pi)

    def judge(self, state: EProcessState, data: JudgeData) -> tuple[EProcessState, Judgement]:
        tests = self._tests(data)
        k = slot_count(data)
        spec = self.spec
        log_m = (
            np.frombuffer(state.log_m).reshape(len(tests), GRID).copy() if state.log_m else np.zeros((len(tests), GRID))
        )
        p_ref = list(state.p_ref) or [math.nan] * len(tests)
        if k > state.seen and tests:
            ec, ep, pi = self._events(data, tests, state.seen, k)
            for i in range(len(tests)):
                if math.isnan(p_ref[i]):
                    first = first_event_share(Slots(pi[i], 1.0 - pi[i], ec[i], ep[i]))
                    if first is not None:
                        p_ref[i] = first
            live = [i for i in range(len(tests)) if not math.isnan(p_ref[i])]
            if live:
                nodes = np.array([mixture_grid(p_ref[i], spec.concentration, spec.max_relative_risk)[0] for i in live])
                log_m[live] += log_likelihood_ratios(ec[live], ep[live], pi[live], nodes)
        e = np.ones(len(tests))
        for i in range(len(tests)):
            if not math.isnan(p_ref[i]):
                _, log_w = mixture_grid(p_ref[i], spec.concentration, spec.max_relative_risk)
                e[i] = math.exp(min(_logsumexp(log_w + log_m[i]), 700.0))
        per_metric = {
            ERRORS: [float(e[i]) for i, (m, _) in enumerate(tests) if m == ERRORS],
            LATENCY: [float(e[i]) for i, (m, _) in enumerate(tests) if m == LATENCY],
        }
        values = {m: sum(v) / len(v) for m, v in per_metric.items() if v}
        detail: dict[str, float | str | None] = {
            f"e_{'errors' if m == ERRORS else 'latency'}": round(v, 4) for m, v in values.items()
        }
        m = max(len(values), 1)
        if spec.combine == "mean":
            bound, stat = 1.0 / spec.alpha, sum(values.values()) / len(values) if values else 1.0
            crossed = [f"mean e-value {stat:.4g} >= {bound:g}"] if stat >= bound else []
        else:
            bound = m / spec.alpha
            crossed = [f"e-value {v:.4g} >= {bound:g} on {name}" for name, v in values.items() if v >= bound]
        rejected = state.rejected or bool(crossed)
        new = EProcessState(max(k, state.seen), tuple(p_ref), log_m.tobytes(), rejected)
        if crossed:
            detail["statistic"] = "; ".join(crossed)
        detail["bound"] = bound
        if rejected:
            return new, Judgement(Verdict.FAIL, reject=True, detail=detail)
        if totals(data)[0] <= 0:
            return new, Judgement(Verdict.NO_DATA, detail=detail)
        return new, Judgement(Verdict.INCONCLUSIVE, detail=detail)
