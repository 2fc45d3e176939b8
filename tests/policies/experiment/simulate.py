"""Simulated A/B looks shared by the experiment tests: binomial or lognormal data, per day."""

from __future__ import annotations

import numpy as np

from sim.policies.experiment import LookResult, Looks, Test


def proportion_looks(runs: int, looks: int, per_look: int, p: float, lift: float, seed: int) -> list[Looks]:
    """Cumulative looks of ``runs`` experiments: ``per_look`` units per arm between looks,
    conversion ``p`` on A and ``p·(1 + lift)`` on B."""
    rng = np.random.default_rng(seed)
    xa = rng.binomial(per_look, p, size=(looks, runs)).cumsum(axis=0)
    xb = rng.binomial(per_look, p * (1.0 + lift), size=(looks, runs)).cumsum(axis=0)
    out = []
    for k in range(looks):
        n = np.full(runs, float(per_look * (k + 1)))
        out.append(Looks.proportions(n, xa[k], n, xb[k]))
    return out


def mean_looks(runs: int, looks: int, per_look: int, sigma: float, lift: float, seed: int) -> list[Looks]:
    """Cumulative looks of lognormal values (median 1, log-sd ``sigma``), B scaled by 1 + lift."""
    rng = np.random.default_rng(seed)
    sums = np.zeros((2, runs))
    sqs = np.zeros((2, runs))
    out = []
    for k in range(looks):
        for arm, scale in ((0, 1.0), (1, 1.0 + lift)):
            y = scale * rng.lognormal(0.0, sigma, size=(runs, per_look))
            sums[arm] += y.sum(axis=1)
            sqs[arm] += (y * y).sum(axis=1)
        n = np.full(runs, float(per_look * (k + 1)))
        out.append(Looks.means(n, sums[0].copy(), sqs[0].copy(), n, sums[1].copy(), sqs[1].copy()))
    return out


def run_looks(test: Test, looks: list[Looks]) -> LookResult:
    """Every look in turn, the last one final; the last look's result."""
    state = test.state(len(looks[0]))
    out = None
    for k, data in enumerate(looks):
        state, out = test.look(state, data, final=k == len(looks) - 1)
    assert out is not None
    return out
