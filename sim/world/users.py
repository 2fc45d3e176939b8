"""Distinct users behind request counts (blast radius in users).

Given that the candidate served K requests of a cohort, X of them excess failures,
which users sent them? Each request's user is drawn by activity weight independently of
its time and outcome, so the X and the K − X requests each split over the cohort's
activity groups multinomially, and within a group of n equally active users, k requests
reach a number of distinct users that follows the classical occupancy distribution.
Counting the affected users first and the exposed ones on top gives ``users_affected <=
users_exposed`` in every run, at a cost independent of the request rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from sim.world.traffic import Population

_POISSON_LIMIT = 30.0  # expected collisions or empty boxes below this: Poisson regime
_EXACT = 64            # k or n at most this: sample exactly


def _exact_small_k(rng: np.random.Generator, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes among k uniform draws, by drawing them (every k <= _EXACT)."""
    kmax = int(k.max())
    # floor(U·n) is a uniform box; padding beyond each k is -1 and never counted.
    draws = np.floor(rng.random((len(k), kmax)) * n[:, None])
    draws[np.arange(kmax)[None, :] >= k[:, None]] = -1.0
    draws.sort(axis=1)
    new = np.empty(draws.shape, dtype=bool)
    new[:, 0] = True
    np.not_equal(draws[:, 1:], draws[:, :-1], out=new[:, 1:])
    return (new & (draws >= 0)).sum(axis=1).astype(float)


def _exact_small_n(rng: np.random.Generator, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes among k draws into n boxes (every n <= _EXACT): the k draws as
    one multinomial over the n boxes, and the boxes that got any."""
    out = np.empty(len(k))
    for i, (ki, ni) in enumerate(zip(k.astype(np.int64), n.astype(np.int64))):
        out[i] = np.count_nonzero(rng.multinomial(ki, _uniform(int(ni))))
    return out


@lru_cache(maxsize=_EXACT + 1)
def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def occupancy(rngs: Sequence[np.random.Generator] | None, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes hit by ``k`` uniform draws into ``n`` boxes, elementwise over (R, G).

    Exact where counts are small (k or n at most 64: the draws themselves, or a
    multinomial over the few boxes). Where both are large, the misses (collisions if
    k ≪ n, empty boxes if k ≫ n) follow a binomial with the exact mean and variance while
    few, and D a normal with the exact mean and variance otherwise (both tested against
    exact sampling). Row i draws from ``rngs[i]``; ``rngs=None`` returns the expectation.
    """
    k = np.asarray(k, dtype=float)
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    many = n > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        qk = np.where(many, np.exp(k * np.log1p(-1.0 / np.where(many, n, 2.0))), 0.0)
        mean = np.where(k > 0, np.where(many, n * (1.0 - qk), np.minimum(k, 1.0)), 0.0)
        if rngs is None:
            return mean
        q2k = np.exp(k * np.log1p(-2.0 / np.where(n > 2, n, 3.0)))
        var = np.where(n > 2, n * (n - 1) * q2k + n * qk - n * n * qk * qk, 0.0)
    collisions = np.maximum(k - mean, 0.0)
    empties = np.maximum(n - mean, 0.0)
    small_k = (k > 0) & (k <= _EXACT)
    # Far past the coupon-collector point every box is hit: P(some box empty) <= n(1-1/n)^k
    # <= e^-12 when k/n > ln(n) + 12, so D = n without drawing.
    saturated = (k > 0) & ~small_k & (k > n * (np.log(n) + 12.0))
    small_n = (k > 0) & ~small_k & ~saturated & (n <= _EXACT)
    large = (k > 0) & ~small_k & ~small_n & ~saturated
    # Large k and n: the misses (collisions or empty boxes, whichever are fewer) are a
    # sum of weakly dependent indicators; a binomial with their exact mean and variance
    # (under-dispersed: var < mean) fits them, a normal when they are many.
    misses = np.minimum(collisions, empties)
    use_binom = large & (misses < _POISSON_LIMIT)
    use_norm = large & ~use_binom
    with np.errstate(divide="ignore", invalid="ignore"):
        p_b = np.clip(1.0 - var / np.where(misses > 0, misses, 1.0), 1e-9, 1.0)
        trials = np.where(use_binom, np.maximum(np.round(misses / p_b), 1.0), 0.0)
        p_b = np.where(use_binom, np.clip(misses / np.maximum(trials, 1.0), 0.0, 1.0), 0.0)
    from_coll = collisions <= empties
    d = np.where(saturated, n, 0.0)
    # Per-row flags computed once: the loop below runs for every run of a batch.
    any_k, any_n = small_k.any(axis=1), small_n.any(axis=1)
    any_b, any_norm = use_binom.any(axis=1), use_norm.any(axis=1)
    for i, rng in enumerate(rngs):  # each run's own stream, and only the draws it needs
        row = d[i]
        if any_k[i]:
            m = small_k[i]
            row[m] = _exact_small_k(rng, k[i, m], n[i, m])
        if any_n[i]:
            m = small_n[i]
            row[m] = _exact_small_n(rng, k[i, m], n[i, m])
        if any_b[i]:
            m = use_binom[i]
            miss = rng.binomial(trials[i, m].astype(np.int64), p_b[i, m])
            row[m] = np.where(from_coll[i, m], k[i, m] - miss, n[i, m] - miss)
        if any_norm[i]:
            m = use_norm[i]
            z = rng.standard_normal(int(m.sum()))
            row[m] = np.round(mean[i, m] + np.sqrt(np.maximum(var[i, m], 0.0)) * z)
    return np.clip(d, np.minimum(k, 1.0), np.minimum(k, n))


def count_users(population: Population, requests: np.ndarray, excess: np.ndarray,
                rngs: Sequence[np.random.Generator] | None) -> tuple[np.ndarray, np.ndarray]:
    """Users exposed and users affected per run, from per-cohort request and excess counts.

    Every request's user is drawn by activity weight, independently of when it came and
    of whether it failed, so given the X excess failures and the K − X other requests of
    a cohort, each set splits over users multinomially. Affected users: the distinct
    users of the X. Exposed: those, plus the users the K − X requests add: y of them land
    on users not yet hit with probability (n − A)/n each, and spread over those uniformly.

    Args:
        population: the user groups.
        requests: candidate requests per run and cohort, shape (R, C).
        excess: excess failures per run and cohort, shape (R, C); each <= requests.
        rngs: each run's users stream, or None for expectations (``noise: false``).

    Returns:
        ``(users_exposed, users_affected)``, each of shape (R,).
    """
    R = requests.shape[0]
    exposed, affected = np.zeros(R), np.zeros(R)
    for c in range(population.n_cohorts):
        # Only runs with requests in this cohort draw anything: whether a run draws must
        # depend on that run alone, never on its batch-mates.
        rows = np.flatnonzero(requests[:, c] > 0)
        if not len(rows):
            continue
        sizes, p = population.groups_of(c)
        n = np.broadcast_to(sizes.astype(float), (len(rows), len(p)))
        if rngs is None:
            exposed[rows] += occupancy(None, requests[rows, c, None] * p, n).sum(axis=1)
            affected[rows] += occupancy(None, excess[rows, c, None] * p, n).sum(axis=1)
            continue
        sub = [rngs[i] for i in rows]
        x = np.zeros((len(rows), len(p)))
        y = np.zeros((len(rows), len(p)))
        for j, (i, rng) in enumerate(zip(rows, sub)):
            if excess[i, c] > 0:
                x[j] = rng.multinomial(int(excess[i, c]), p)
            y[j] = rng.multinomial(int(requests[i, c] - excess[i, c]), p)
        a = occupancy(sub, x, n)
        fresh = np.zeros_like(y)
        for j, rng in enumerate(sub):
            fresh[j] = rng.binomial(y[j].astype(np.int64), np.clip((n[j] - a[j]) / n[j], 0.0, 1.0))
        d = a + occupancy(sub, fresh, np.maximum(n - a, 1.0)) * (n > a)
        exposed[rows] += d.sum(axis=1)
        affected[rows] += a.sum(axis=1)
    return exposed, affected
