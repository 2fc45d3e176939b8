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
from dataclasses import dataclass, field
from functools import lru_cache

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
from sim.policies.judges.counts import Slots, bound_index
from sim.policies.judges.spec import ERRORS, LATENCY, SequentialSpec, signals_to_judge

GRID = 256


def beta_binomial_e_value(
    canary: float, primary: float, p0: float, concentration: float, one_sided: bool = True
) -> float:
    """Lindon–Malek's closed-form e-value for a constant share ``p0`` (log scale avoided
    only at the end). One-sided: the Beta prior truncated to q > p0."""
    from scipy.special import betainc, betaln  # lazy: validate imports no scipy (docs/architecture.md section 2)

    a, b = concentration * p0, concentration * (1.0 - p0)
    log_e = betaln(a + canary, b + primary) - betaln(a, b) - canary * math.log(p0) - primary * math.log1p(-p0)
    if one_sided:
        # P(q > p0) under posterior and prior: I_{1-p0}(b, a) by the symmetry of the Beta.
        log_e += math.log(max(betainc(b + primary, a + canary, 1.0 - p0), 1e-300))
        log_e -= math.log(betainc(b, a, 1.0 - p0))
    return math.exp(min(log_e, 700.0))


@lru_cache(maxsize=8)
def grid_nodes(max_rr: float, size: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell edges, then nodes (cell midpoints) of the log relative-risk grid and exp(nodes)."""
    edges = np.linspace(0.0, math.log(max_rr), size + 1)
    nodes = 0.5 * (edges[1:] + edges[:-1])
    return edges, nodes, np.exp(nodes)


def mixture_log_weights(p_ref: np.ndarray, concentration: float, max_rr: float, size: int = GRID) -> np.ndarray:
    """Log weights (m, size) of the discretised one-sided prior for m prior shares.

    The truncated Beta(k·p, k·(1−p)) on q in (p, q(max_rr)) mapped to theta = odds(q) /
    odds(p); each node carries the prior mass of its cell (weights sum to 1). Row by row:
    a share's weights do not depend on the other shares computed with it.
    """
    from scipy.special import betainc  # lazy: validate imports no scipy (docs/architecture.md section 2)

    from sim.policies.judges import kernels  # numba: compiled on first use, not at import

    p = np.asarray(p_ref, dtype=float)[:, None]
    theta = np.exp(grid_nodes(max_rr, size)[0])
    q = theta * p / (theta * p + 1.0 - p)
    cdf = betainc(concentration * p, concentration * (1.0 - p), q)
    return kernels.log_masses(np.ascontiguousarray(cdf))


#: Prior log weights by (share, concentration, max relative risk): 257 incomplete beta
#: functions cost ~0.3 ms a share, and runs of one scenario meet the same shares again.
_WEIGHTS: dict[tuple[float, float, float], np.ndarray] = {}
_WEIGHTS_KEPT = 8192


def prior_log_weights(p_ref: np.ndarray, concentration: float, max_rr: float) -> np.ndarray:
    """``mixture_log_weights`` of the GRID-node prior for m shares (m, GRID), each distinct
    share computed once and remembered (the same numbers: a share's weights are a
    function of the share)."""
    shares = np.asarray(p_ref, dtype=float)
    unique, inverse = np.unique(shares, return_inverse=True)
    keys = [(float(p), concentration, max_rr) for p in unique]
    missing = [i for i, key in enumerate(keys) if key not in _WEIGHTS]
    if missing:
        if len(_WEIGHTS) + len(missing) > _WEIGHTS_KEPT:
            # A bounded memory: forget everything, rarely; then this call's known shares
            # are missing too.
            _WEIGHTS.clear()
            missing = list(range(len(keys)))
        fresh = mixture_log_weights(unique[missing], concentration, max_rr)
        for j, i in enumerate(missing):
            _WEIGHTS[keys[i]] = fresh[j]
    table = np.stack([_WEIGHTS[key] for key in keys]) if keys else np.zeros((0, GRID))
    return table[inverse.reshape(-1)]


def forget_prior_weights() -> None:
    """Empty the memory of ``prior_log_weights`` (benchmarks measure the cold cost)."""
    _WEIGHTS.clear()


def mixture_grid(p_ref: float, concentration: float, max_rr: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (log relative risk) and log weights of the discretised one-sided prior at one
    share (``prior_log_weights``)."""
    return grid_nodes(max_rr)[1], prior_log_weights(np.array([p_ref]), concentration, max_rr)[0]


def log_likelihood_ratios(
    e_canary: np.ndarray, e_primary: np.ndarray, share: np.ndarray, log_theta: np.ndarray
) -> np.ndarray:
    """Log LR(theta) against theta = 1 summed over slots, for T tests at once.

    Per slot: c·log(theta) − f·log(theta·pi + 1 − pi), c canary events of f in total and
    pi the canary's share of requests. Arguments are (T, K) counts and shares and (T, G)
    nodes; slots without events or without one of the versions contribute nothing.
    """
    from sim.policies.judges import kernels

    log_theta = np.ascontiguousarray(log_theta, dtype=float)

    def rows(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=float)

    return kernels.llr_rows(rows(e_canary), rows(e_primary), rows(share), log_theta, np.exp(log_theta))


def log_likelihood_ratio(slots: Slots, log_theta: np.ndarray) -> np.ndarray:
    """``log_likelihood_ratios`` of one test (shape (G,))."""
    return log_likelihood_ratios(slots.e_canary[None], slots.e_primary[None], slots.share()[None], log_theta[None])[0]


def _logsumexp(x: np.ndarray) -> float:
    # scipy's logsumexp costs ~1 ms a call in array-API checks; this runs every tick.
    from sim.policies.judges import kernels

    return float(kernels.log_sum_exp(np.ascontiguousarray(x, dtype=float)))


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


@dataclass(eq=False)
class EProcessBatch:
    """``EProcessState`` of n runs as arrays (the batch state; tests allocated on the first
    judgement, when the histogram bounds are known).

    Attributes:
        started: (n,) whether the run was judged yet.
        seen, rejected: (n,) as ``EProcessState``.
        p_ref: (n, T) prior shares (NaN until a test's first event).
        log_m: (n, T, GRID) log LRs.
        log_w: (n, T, GRID) the prior's log weights at ``p_ref``, computed when an e-value
            is first needed (most runs of a good release never come near the bound, and
            257 incomplete beta functions cost more than many ticks of judging).
        weighed: (n, T) whether ``log_w`` holds the weights of ``p_ref``.
        version: judgements made with this state (a ``Judgements`` whose details are
            computed on demand reads them from the state of its own judgement only).
        scratch: the batch pass's working memory for its logs, (rows, GRID), kept from
            one judgement to the next: fresh memory of megabytes costs a page fault per
            page touched, more than the logs themselves.
    """

    started: np.ndarray
    seen: np.ndarray
    rejected: np.ndarray
    p_ref: np.ndarray | None = None
    log_m: np.ndarray | None = None
    log_w: np.ndarray | None = None
    weighed: np.ndarray | None = None
    version: int = 0
    scratch: np.ndarray = field(default_factory=lambda: np.empty((0, GRID)))

    def allocate(self, tests: int) -> None:
        """Room for ``tests`` tests per run (once)."""
        if self.p_ref is None:
            n = len(self.seen)
            self.p_ref = np.full((n, tests), math.nan)
            self.log_m = np.zeros((n, tests, GRID))
            self.log_w = np.zeros((n, tests, GRID))
            self.weighed = np.zeros((n, tests), dtype=bool)


@dataclass(frozen=True)
class _Tests:
    """What a sequential judge tests under given histogram bounds: the errors (or not) and
    the bucket index of each latency bound."""

    errors: bool
    latency: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(self.errors) + len(self.latency)


class SequentialJudge:
    """``kind: sequential``: count e-processes on errors and latency buckets.

    The scalar ``judge`` is the batch pass on a batch of one (``kernels``): a run's numbers
    are the same bit for bit whichever batch it is judged in.

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

    @lru_cache(maxsize=8)  # noqa: B019 (a judge lives as long as its policy; bounds are few)
    def _tests(self, bounds_ms: tuple[float, ...]) -> _Tests:
        latency: tuple[int, ...] = ()
        if LATENCY in self.signals:
            latency = tuple(
                sorted({j for b in self.spec.latency_bounds_ms if (j := bound_index(bounds_ms, b)) is not None})
            )
        return _Tests(ERRORS in self.signals, latency)

    def batch_state(self, n: int) -> EProcessBatch:
        """n runs not judged yet."""
        return EProcessBatch(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))

    def state_row(self, state: EProcessBatch, i: int) -> EProcessState:
        """Run i's ``EProcessState``."""
        if not state.started[i] or state.p_ref is None or state.log_m is None:
            return EProcessState(int(state.seen[i]), (), b"", bool(state.rejected[i]))
        return EProcessState(
            int(state.seen[i]),
            # NaN as the one ``math.nan`` object: states compare equal by identity, as the
            # scalar's always did (NaN != NaN)
            tuple(math.nan if math.isnan(p) else float(p) for p in state.p_ref[i]),
            state.log_m[i].tobytes(),
            bool(state.rejected[i]),
        )

    def _batch_of(self, state: EProcessState, tests: int) -> EProcessBatch:
        """A batch of one holding the scalar ``state``."""
        b = self.batch_state(1)
        b.allocate(tests)
        assert b.p_ref is not None and b.log_m is not None and b.log_w is not None
        b.seen[0], b.rejected[0] = state.seen, state.rejected
        if state.p_ref:
            b.p_ref[0] = state.p_ref
            b.log_m[0] = np.frombuffer(state.log_m).reshape(tests, GRID)
        return b

    def judge(self, state: EProcessState, data: JudgeData) -> tuple[EProcessState, Judgement]:
        batch = self._batch_of(state, self._tests(data.bounds_ms).size)
        out = self.judge_batch(batch, np.zeros(1, dtype=np.int64), JudgeBatch.of(data))
        return self.state_row(batch, 0), out.at(0)

    def judge_batch(self, state: EProcessBatch, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Every run of ``rows`` judged in one compiled pass (see the class docstring)."""
        from sim.policies.judges import kernels

        spec = self.spec
        tests = self._tests(data.bounds_ms)
        state.allocate(tests.size)
        assert state.p_ref is not None and state.log_m is not None and state.log_w is not None
        rows = np.asarray(rows, dtype=np.int64)
        state.started[rows] = True
        state.version += 1
        n_slots = data.canary_requests.shape[1]
        bound = (1.0 if spec.combine == "mean" else max(int(tests.errors) + bool(tests.latency), 1)) / spec.alpha
        # Every value a verdict compares (a metric's e-value, a mean of them) is at most
        # the largest LR: runs whose largest is clearly below the bound cannot cross it
        # and skip the mixture sums (the bulk of the cost); the margin covers rounding.
        threshold = math.log(bound) - 1e-6
        if n_slots and tests.size:
            _, nodes, theta = grid_nodes(spec.max_relative_risk)
            has_hist = data.canary_hist is not None and data.primary_hist is not None
            empty = np.zeros((1, 1, 1))
            counts = [_floats(x) for x in (data.canary_requests, data.canary_errors)]
            counts += [_floats(x) for x in (data.primary_requests, data.primary_errors)]
            hists = [_floats(data.canary_hist), _floats(data.primary_hist)] if has_hist else [empty, empty]
            latency = np.array(tests.latency, dtype=np.int64)
            is_near = np.empty(len(rows), dtype=bool)
            # In chunks of runs: the logs of a chunk stay in cache.
            for lo in range(0, len(rows), _CHUNK):
                part, hi = rows[lo : lo + _CHUNK], lo + _CHUNK
                cr, ce, pr, pe = (x[lo:hi] for x in counts)
                hc, hp = (h[lo:hi] if has_hist else h for h in hists)
                owner, logs, weight, canary_events, state.scratch = kernels.slot_events(
                    part,
                    state.seen,
                    state.p_ref,
                    cr,
                    ce,
                    pr,
                    pe,
                    hc,
                    hp,
                    has_hist,
                    tests.errors,
                    latency,
                    theta,
                    state.scratch,
                )
                # log(theta·pi + 1 − pi) of every entry at every node in numpy (SIMD logs,
                # ~5 times faster than a compiled loop's); each element depends on its
                # entry's share only, so a run's numbers do not depend on its batch
                np.log(logs, out=logs)
                is_near[lo:hi] = kernels.fold_logs(
                    part, state.p_ref, state.log_m, owner, weight, logs, canary_events, nodes, threshold
                )
            near = np.flatnonzero(is_near)
        else:
            near = np.flatnonzero(kernels.log_e_ceiling(rows, state.p_ref, state.log_m) >= threshold)
        state.seen[rows] = np.maximum(state.seen[rows], n_slots)
        crossed = np.zeros(len(rows), dtype=bool)
        if len(near):
            crossed[near] = self._metric_values(state, rows[near], tests)[2]
        rejected = state.rejected[rows] | crossed
        state.rejected[rows] = rejected
        no_data = data.canary_requests.sum(axis=1) <= 0
        verdict = np.where(rejected, FAIL_CODE, np.where(no_data, NO_DATA_CODE, INCONCLUSIVE_CODE)).astype(np.int8)
        version = state.version

        def detail(i: int) -> Detail:
            if state.version != version:
                raise RuntimeError("a judgement's detail is read after its state was judged again")
            values, stat, hit, _ = self._metric_values(state, rows[i : i + 1], tests)
            out: Detail = {f"e_{_NAMES[m]}": round(float(v[0]), 4) for m, v in values.items()}
            if stat is not None:
                if hit[0]:
                    out["statistic"] = f"mean e-value {float(stat[0]):.4g} >= {bound:g}"
            elif hit[0]:
                out["statistic"] = "; ".join(
                    f"e-value {float(v[0]):.4g} >= {bound:g} on {m}" for m, v in values.items() if v[0] >= bound
                )
            out["bound"] = bound
            return out

        return Judgements(verdict, rejected, np.zeros(len(rows), dtype=bool), detail)

    def _metric_values(
        self, state: EProcessBatch, runs: np.ndarray, tests: _Tests
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray, float]:
        """Per metric, each run's value (the errors' e-value; the mean of the latency
        bounds', summed left to right as a Python sum of them); the mean of the metrics
        (``combine: mean``, else None); whether the run crosses the bound; the bound."""
        from sim.policies.judges import kernels

        assert state.p_ref is not None and state.log_m is not None and state.log_w is not None
        assert state.weighed is not None
        spec = self.spec
        # the prior's weights of tests with a share, where not computed yet
        need_r, need_t = np.nonzero(~state.weighed[runs] & ~np.isnan(state.p_ref[runs]))
        if len(need_r):
            at = runs[need_r]
            shares = state.p_ref[at, need_t]
            state.log_w[at, need_t] = prior_log_weights(shares, spec.concentration, spec.max_relative_risk)
            state.weighed[at, need_t] = True
        e = kernels.e_values(runs, state.p_ref, state.log_m, state.log_w) if tests.size else np.ones((len(runs), 0))
        values: dict[str, np.ndarray] = {}
        if tests.errors:
            values[ERRORS] = e[:, 0]
        if tests.latency:
            first = int(tests.errors)
            total = e[:, first]
            for t in range(first + 1, tests.size):
                total = total + e[:, t]
            values[LATENCY] = total / len(tests.latency)
        crossed = np.zeros(len(runs), dtype=bool)
        if spec.combine == "mean":
            bound = 1.0 / spec.alpha
            stat = np.asarray(sum(values.values()) / len(values) if values else np.ones(len(runs)))
            return values, stat, stat >= bound, bound
        bound = max(len(values), 1) / spec.alpha
        for v in values.values():
            crossed |= v >= bound
        return values, None, crossed, bound


_NAMES = {ERRORS: "errors", LATENCY: "latency"}
#: Runs per chunk of the batch pass's logs (a chunk's logs stay in cache; 32 to 512 measured alike).
_CHUNK = 256


def _floats(x: np.ndarray | None) -> np.ndarray:
    """C-contiguous float64 (what the compiled loops take)."""
    return np.ascontiguousarray(x, dtype=float)
