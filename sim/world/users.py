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

import numpy as np

from sim.world.traffic import Population

_POISSON_LIMIT = 30.0  # expected collisions or empty boxes below this: Poisson regime


def occupancy(rng: np.random.Generator | None, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes hit by ``k`` uniform draws into ``n`` boxes, elementwise.

    The occupancy distribution in its three regimes: when few collisions are expected
    (k ≪ n), D = k − Poisson(expected collisions); when few boxes stay empty (k ≫ n),
    D = n − Poisson(expected empties); in between, where both are large, a normal draw
    with the exact mean and variance. Each approximation matches the exact mean and
    is accurate in its regime (tested against exact sampling). ``rng=None`` returns
    the expectation.
    """
    k = np.asarray(k, dtype=float)
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    log_q = np.log1p(-1.0 / np.maximum(n, 1.0 + 1e-12))
    qk = np.where(n > 1, np.exp(k * log_q), 0.0)
    mean = np.where(n > 1, n * (1.0 - qk), np.minimum(k, 1.0))
    mean = np.where(k > 0, mean, 0.0)
    if rng is None:
        return mean
    collisions = np.maximum(k - mean, 0.0)
    empties = np.maximum(n - mean, 0.0)
    var = np.where(n > 1, n * (n - 1) * np.exp(k * np.log1p(-2.0 / np.maximum(n, 2.0))) + n * qk
                   - n * n * qk * qk, 0.0)
    z = rng.standard_normal(len(k))
    d_norm = np.round(mean + np.sqrt(np.maximum(var, 0.0)) * z)
    d_coll = k - rng.poisson(np.where(collisions < _POISSON_LIMIT, collisions, 0.0))
    d_empt = n - rng.poisson(np.where(empties < _POISSON_LIMIT, empties, 0.0))
    d = np.where((collisions < _POISSON_LIMIT) & (collisions <= empties), d_coll,
                 np.where(empties < _POISSON_LIMIT, d_empt, d_norm))
    return np.clip(d, np.minimum(k, 1.0), np.minimum(k, n))


def count_users(population: Population, requests: np.ndarray, excess: np.ndarray,
                rng: np.random.Generator | None) -> tuple[float, float]:
    """Users exposed and users affected, from per-cohort request and excess counts.

    Args:
        population: the user groups.
        requests: candidate requests per cohort, shape (C,).
        excess: excess failures per cohort, shape (C,); each <= requests.
        rng: the run's users stream, or None for expectations (``noise: false``).
    """
    exposed = affected = 0.0
    for c in range(population.n_cohorts):
        k_total, x_total = float(requests[c]), float(excess[c])
        if k_total <= 0:
            continue
        sizes, p = population.groups_of(c)
        if rng is None:
            k, x = k_total * p, x_total * p
        else:
            k = rng.multinomial(int(k_total), p)
            x = (rng.multivariate_hypergeometric(k, int(x_total)) if x_total > 0
                 else np.zeros_like(k))
        d = occupancy(rng, k, sizes)
        exposed += float(d.sum())
        if x_total > 0:
            # Excess failures land on requests this group sent, hence on its d exposed
            # users (treated as equally likely).
            hit = d > 0
            affected += float(occupancy(rng, x[hit], d[hit]).sum())
    return exposed, affected
