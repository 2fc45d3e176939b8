"""Drive a judge directly with simulated per-slot counts (no world): fast, seeded.

A canary ramp as Flagger runs it: the weight steps every ``tick_s`` through ``weights``
(percent; the last one holds), the judge looks once per tick at every slot ingested so
far. Requests per slot and version are Poisson, failures binomial, latency buckets
multinomial: the same model as the world's fast path (``sim/world/fast.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.policies.judges.base import Judge, JudgeData, VersionSeries

BOUNDS_MS = (25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)


@dataclass(frozen=True)
class Ramp:
    """One simulated rollout's world: rates, error probabilities, the ramp."""

    rate_per_s: float = 1000.0
    p_primary: float = 0.001
    relative_risk: float = 1.0
    weights: tuple[int, ...] = (10, 20, 30, 40, 50)
    ticks: int = 10
    tick_s: float = 60.0
    scrape_s: float = 15.0
    latency: bool = False
    latency_shift: float = 1.0  # canary latency = primary latency x shift


@lru_cache(maxsize=16)
def _bucket_probs(scale: float) -> np.ndarray:
    from scipy.stats import lognorm

    sigma = np.log(250.0 / 40.0) / 2.326
    cdf = lognorm.cdf(np.array(BOUNDS_MS), sigma, scale=40.0 * scale)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def run(judge: Judge, ramp: Ramp, rng: np.random.Generator) -> tuple[str, int]:
    """('reject' | 'accept' | 'none', tick of the decision, or the last tick)."""
    per_tick = int(round(ramp.tick_s / ramp.scrape_s))
    slots = ramp.ticks * per_tick + 1
    req = np.zeros((slots, 2))
    err = np.zeros((slots, 2))
    hist = np.zeros((slots, 2, len(BOUNDS_MS) + 1)) if ramp.latency else None
    probs = (_bucket_probs(1.0), _bucket_probs(ramp.latency_shift)) if ramp.latency else None
    state = judge.initial_state()
    p = (ramp.p_primary, min(ramp.p_primary * ramp.relative_risk, 1.0))
    for tick in range(1, ramp.ticks + 1):
        w = ramp.weights[min(tick - 1, len(ramp.weights) - 1)] / 100.0
        lo = (tick - 1) * per_tick + 1
        k = lo + per_tick
        for v, share in ((0, 1.0 - w), (1, w)):
            n = rng.poisson(ramp.rate_per_s * ramp.scrape_s * share, size=per_tick)
            req[lo:k, v] = n
            err[lo:k, v] = rng.binomial(n, p[v])
            if hist is not None:
                hist[lo:k, v] = rng.multinomial(n, probs[v])
        data = JudgeData(
            t=tick * ramp.tick_s,
            scrape_s=ramp.scrape_s,
            bounds_ms=BOUNDS_MS,
            canary=VersionSeries(req[:k, 1], err[:k, 1], None if hist is None else hist[:k, 1]),
            primary=VersionSeries(req[:k, 0], err[:k, 0], None if hist is None else hist[:k, 0]),
        )
        state, j = judge.judge(state, data)
        if j.reject:
            return "reject", tick
        if j.accept:
            return "accept", tick
    return "none", ramp.ticks


def rejection_rate(judge: Judge, ramp: Ramp, runs: int, seed: int) -> tuple[int, int]:
    """(rollouts rejected, runs), each run from its own child of ``seed``."""
    children = np.random.SeedSequence(seed).spawn(runs)
    k = sum(run(judge, ramp, np.random.default_rng(c))[0] == "reject" for c in children)
    return k, runs
