"""Distinct users behind request counts (blast radius in users).

Given that the candidate served K requests of a cohort, which users sent them? Each
request comes from a user chosen by activity weight, so the requests split over the
cohort's activity groups multinomially, and within a group of n equally active users,
k requests reach a number of distinct users that follows the classical occupancy
distribution. The X excess failures are a uniform subset of those K requests
(multivariate hypergeometric over groups), spread over the users that group exposed.
This gives ``users_affected <= users_exposed`` in every run, at a cost independent of
the request rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.world.traffic import Population

_POISSON_LIMIT = 30.0  # expected collisions or empty boxes below this: Poisson regime


def occupancy(rngs: Sequence[np.random.Generator] | None, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes hit by ``k`` uniform draws into ``n`` boxes, elementwise over (R, G).

    The occupancy distribution in its three regimes: when few collisions are expected
    (k ≪ n), D = k − Poisson(expected collisions); when few boxes stay empty (k ≫ n),
    D = n − Poisson(expected empties); in between, where both are large, a normal draw
    with the exact mean and variance. Each approximation matches the exact mean and is
    accurate in its regime (tested against exact sampling). Row i draws from
    ``rngs[i]``; ``rngs=None`` returns the expectation.
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
    use_coll = (collisions < _POISSON_LIMIT) & (collisions <= empties)
    use_empt = ~use_coll & (empties < _POISSON_LIMIT)
    lam = np.concatenate([np.where(use_coll, collisions, 0.0), np.where(use_empt, empties, 0.0)], axis=1)
    width = k.shape[1]
    d = np.empty_like(k)
    for i, rng in enumerate(rngs):  # each run's own stream, in a fixed order
        pois = rng.poisson(lam[i])
        z = rng.standard_normal(width)
        d[i] = np.where(use_coll[i], k[i] - pois[:width],
                        np.where(use_empt[i], n[i] - pois[width:],
                                 np.round(mean[i] + np.sqrt(np.maximum(var[i], 0.0)) * z)))
    return np.clip(d, np.minimum(k, 1.0), np.minimum(k, n))


def count_users(population: Population, requests: np.ndarray, excess: np.ndarray,
                rngs: Sequence[np.random.Generator] | None) -> tuple[np.ndarray, np.ndarray]:
    """Users exposed and users affected per run, from per-cohort request and excess counts.

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
        sub = None if rngs is None else [rngs[i] for i in rows]
        if sub is None:
            k, x = requests[rows, c, None] * p, excess[rows, c, None] * p
        else:
            k = np.zeros((len(rows), len(p)))
            x = np.zeros((len(rows), len(p)))
            for j, (i, rng) in enumerate(zip(rows, sub)):
                k[j] = rng.multinomial(int(requests[i, c]), p)
                if excess[i, c] > 0:
                    x[j] = rng.multivariate_hypergeometric(k[j].astype(np.int64), int(excess[i, c]),
                                                           method="marginals")
        d = occupancy(sub, k, np.broadcast_to(sizes, k.shape))
        exposed[rows] += d.sum(axis=1)
        hit = np.flatnonzero(excess[rows, c] > 0)
        if len(hit):
            # Excess failures land on requests a group sent, hence on its d exposed users
            # (treated as equally likely).
            dh = d[hit]
            a = occupancy(None if sub is None else [sub[j] for j in hit], x[hit], np.maximum(dh, 1.0))
            affected[rows[hit]] += np.where(dh > 0, a, 0.0).sum(axis=1)
    return exposed, affected
