"""Distinct users behind request counts (blast radius in users).

Given that the candidate served K requests of a cohort, X of them excess failures,
which users sent them? Each request's user is drawn by activity weight independently of
its time and outcome, so the X and the K − X requests each split over the cohort's
activity groups multinomially, and within a group of n equally active users, k requests
reach a number of distinct users that follows the classical occupancy distribution.
Counting the affected users first and the exposed ones on top gives ``users_affected <=
users_exposed`` in every run, at a cost independent of the request rate.

Speed: ``count_users`` runs once per batch of ~500 rollouts, so what it costs per run is
what counts. Each run draws, from its own users stream (a state row of
``sim.world.draws``), a multinomial of its excess failures, one uniform for every
occupancy draw, and a multinomial of its fresh requests; each of the three is one
compiled call for the whole batch. Everything else is vectorised across the batch and
turns uniforms into draws by inverse CDF: of the exact occupancy distribution (small
counts), of the binomial of the misses, or of the normal (large counts; within 0.03 in
total variation of the exact law, tested). One uniform per (run, group) makes the number
of draws a run takes depend on its own counts only, never on its batch-mates.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, overload

import numpy as np
from scipy.special import ndtri

from sim.world.draws import multinomial_each, uniform_rows
from sim.world.traffic import Population

_POISSON_LIMIT = 30.0  # expected collisions or empty boxes below this: Poisson regime
_EXACT = 64  # k or n at most this: sample exactly
#: Largest k an exact draw meets: past n(ln n + 12) draws every box of n <= _EXACT is hit.
_EXACT_K = int(_EXACT * (np.log(_EXACT) + 12.0)) + 1
#: ``random()`` returns multiples of 2^-53, so u + 2^-54 lies strictly inside (0, 1).
_HALF_STEP = 2.0**-54
_LOG_FACTORIAL = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1.0, _EXACT + 1)))])  # log j!
_K_BANDS = np.array([8, 16, 32])  # draws of the (k, n) pairs tabulated together
_BLOCK = 16  # binomial pmf terms summed per pass (most draws are below 16)


@lru_cache(maxsize=1)
def _log_all_hit() -> np.ndarray:
    """log T(k, j) for k <= _EXACT_K, j <= _EXACT: T the probability that k uniform draws
    into j boxes hit all j (T = S(k, j) j! / j^k, S a Stirling number of the second kind).

    Built by the recurrence T(k, j) = T(k-1, j) + T(k-1, j-1) ((j-1)/j)^(k-1) (the last
    draw lands in a box already hit, or it hits the last empty one), whose terms are all
    positive probabilities: no cancellation, relative error about k machine epsilons.
    """
    t = np.zeros((_EXACT_K + 1, _EXACT + 1))
    t[0, 0] = 1.0
    j = np.arange(1, _EXACT + 1, dtype=float)
    shrink = (j - 1.0) / j
    step = np.ones(_EXACT)  # ((j-1)/j)^(k-1), starting at k = 1 (0^0 = 1)
    for k in range(1, _EXACT_K + 1):
        t[k, 1:] = t[k - 1, 1:] + t[k - 1, :-1] * step
        step = step * shrink
    with np.errstate(divide="ignore"):
        return np.log(t)


def _occupancy_cdf(k: np.ndarray, n: np.ndarray, width: int) -> np.ndarray:
    """CDF of the distinct boxes D among k uniform draws into n boxes, one row per (k, n)
    pair: F[i, j] = P(D <= j) for j < ``width``; needs min(k, n) < width <= _EXACT + 1
    and k <= _EXACT_K.

    P(D = j) = C(n, j) (j/n)^k T(k, j) (choose the j boxes hit, all k draws in them, all
    of them hit), computed in logs as Σ_{i<j} log(1 - i/n) - log j! + k log j - (k - j)
    log n + log T(k, j): the only logarithm per entry is log(1 - i/n), exact at large n
    where log C(n, j) from log-gammas would cancel. Each row ends in exactly 1.
    """
    k = np.asarray(k, dtype=np.int64)
    kf = k.astype(float)[:, None]
    n = np.asarray(n, dtype=float)[:, None]
    log_n = np.log(n)
    i = np.arange(width - 1, dtype=float)
    j = np.arange(width, dtype=float)
    log_p = np.empty((len(k), width))
    log_p[:, 0] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        np.cumsum(np.log1p(-i / n), axis=1, out=log_p[:, 1:])  # -inf once j > n
        log_p += (kf * np.log(j) - _LOG_FACTORIAL[:width]) - (kf - j) * log_n + _log_all_hit()[k, :width]
    log_p[k == 0] = np.where(j == 0, 0.0, -np.inf)  # no draws: no box hit
    prob = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    cdf = np.cumsum(prob, axis=1)
    return cdf / cdf[:, -1:]


def _small_n_rows(n: int) -> int:
    """Rows of the exact laws of n <= _EXACT boxes: k from 0 up to _EXACT draws and to just
    past saturation (k > n(ln n + 12)), after which no draw is needed."""
    return max(_EXACT, int(n * (np.log(n) + 12.0)) + 1) + 1


@lru_cache(maxsize=1)
def _small_n_layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The flat array of every exact law with n <= _EXACT (the row of (n, k) starts at
    ``start[n] + k * (n + 1)``; ~11 MB, allocated once and left untouched), its ``start``
    and which n's laws are filled in (``_small_n_cdfs``)."""
    start = np.zeros(_EXACT + 2, dtype=np.int64)
    for n in range(1, _EXACT + 1):
        start[n + 1] = start[n] + _small_n_rows(n) * (n + 1)
    return np.empty(int(start[-1])), start, np.zeros(_EXACT + 1, dtype=bool)


def _small_n_cdfs(ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_small_n_layout``'s flat laws and starts, with the laws of every n of ``ns`` filled
    in. Each n's laws are built on its first use: a batch meets a few n (building all 64
    cost 25 ms, a few µs per run of a whole benchmark, for the handful of runs that draw
    one), and each is the same call, so the same numbers, as building them all at once."""
    flat, start, built = _small_n_layout()
    for n in np.unique(ns[~built[ns]]).tolist():
        rows = _small_n_rows(n)
        flat[start[n] : start[n + 1]] = _occupancy_cdf(np.arange(rows), np.full(rows, n), n + 1).ravel()
        built[n] = True
    return flat, start


def _exact_inverse(u: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes among k uniform draws into n boxes, by inverse CDF of the exact law
    (``_occupancy_cdf``). Needs min(k, n) <= _EXACT and k <= _EXACT_K."""
    kk = k.astype(np.int64)
    nn = n.astype(np.int64)
    d = np.empty(len(u))
    small = nn <= _EXACT
    if small.any():
        ks, ns = kk[small], nn[small]
        flat, start = _small_n_cdfs(ns)
        d[small] = _search(flat, start[ns] + ks * (ns + 1), np.minimum(ks, ns), u[small])
    big = ~small
    if big.any():
        # n > _EXACT, so k <= _EXACT: the law of each distinct (k, n) of the call (a batch
        # repeats them: the group sizes, less a few users already hit). The pairs come
        # sorted by k; each band of k gets rows just wide enough for it.
        kb, nb = kk[big], nn[big]
        _, first, inv = np.unique(kb * (nb.max() + 1) + nb, return_index=True, return_inverse=True)
        pk, pn = kb[first], nb[first]
        cuts = np.searchsorted(pk, _K_BANDS, side="right")
        tables, base, at = [], np.empty(len(pk), dtype=np.int64), 0
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(pk)]])):
            if b > a:
                width = int(pk[b - 1]) + 1
                tables.append(_occupancy_cdf(pk[a:b], pn[a:b], width).ravel())
                base[a:b] = at + np.arange(b - a) * width
                at += len(tables[-1])
        d[big] = _search(np.concatenate(tables), base[inv.ravel()], kb, u[big])
    return d


def _search(cdf: np.ndarray, base: np.ndarray, top: np.ndarray, u: np.ndarray) -> np.ndarray:
    """D = #{j : F(j) <= u} for each cell, its F at ``cdf[base : base + top + 1]`` (F(top) = 1)."""
    # Most draws land on the top value (no collision among few draws into many boxes, or
    # every box hit): one look-up settles them; the rest search their row's [0, top).
    d = top.copy()
    rest = np.flatnonzero(cdf[base + top - 1] > u)
    if len(rest):
        u_r, base_r = u[rest], base[rest]
        lo = np.zeros(len(rest), dtype=np.int64)
        hi = top[rest] - 1
        for _ in range(int(hi.max()).bit_length()):
            mid = (lo + hi) >> 1
            below = cdf[base_r + mid] <= u_r
            go = lo < hi
            lo = np.where(go & below, mid + 1, lo)
            hi = np.where(go & ~below, mid, hi)
        d[rest] = lo
    return d


def _binomial_inverse(u: np.ndarray, trials: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial(trials, p) draws by inverse CDF: X = #{j : F(j) <= u}, F summed up from 0.

    Used where the mean is under _POISSON_LIMIT; for p > 1/2 the sum counts failures
    instead (the same law: trials − Binomial(trials, 1 − p)), so P(0) = (1 − p)^trials
    stays far from underflow and the sum short. Cells whose u lies past the first
    _BLOCK values (rare) go on in further passes.
    """
    flip = p > 0.5
    q = np.where(flip, 1.0 - p, p)
    out = np.empty(len(u))
    idx = np.arange(len(u))
    t = trials  # whole numbers: the pmf turns exactly 0 past t and stays 0
    ratio = q / (1.0 - q)
    pmf = np.exp(t * np.log1p(-q))  # P(X = j0) of each open cell
    cdf = pmf.copy()  # P(X <= j0)
    j0 = 0
    while True:
        at = (cdf <= u).astype(np.int64)
        for j in range(j0, j0 + _BLOCK - 1):
            pmf *= (t - j) * (ratio / (j + 1.0))
            cdf += pmf
            at += cdf <= u
        # Settled: u falls in the pass, or the pass reaches past the support or into
        # underflow (then u is above a cdf that rounding left a hair under 1).
        done = (at < _BLOCK) | (j0 + _BLOCK > t) | (pmf == 0.0)
        out[idx[done]] = np.minimum(j0 + at[done], t[done])
        if done.all():
            break
        keep = ~done
        j = j0 + _BLOCK - 1
        idx, u, t, ratio = idx[keep], u[keep], t[keep], ratio[keep]
        pmf = pmf[keep] * ((t - j) * (ratio / (j + 1.0)))
        cdf = cdf[keep] + pmf
        j0 += _BLOCK
    return np.where(flip, trials - out, out)


@overload
def _moments(k: np.ndarray, n: np.ndarray, var: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def _moments(k: np.ndarray, n: np.ndarray, var: Literal[False]) -> tuple[np.ndarray, None]: ...


def _moments(k: np.ndarray, n: np.ndarray, var: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact mean (and variance) of the occupancy count."""
    many = n > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        qk = np.where(many, np.exp(k * np.log1p(-1.0 / np.where(many, n, 2.0))), 0.0)
        mean = np.where(k > 0, np.where(many, n * (1.0 - qk), np.minimum(k, 1.0)), 0.0)
        if not var:
            return mean, None
        q2k = np.exp(k * np.log1p(-2.0 / np.where(n > 2, n, 3.0)))
        return mean, np.where(n > 2, n * (n - 1) * q2k + n * qk - n * n * qk * qk, 0.0)


def occupancy(states: np.ndarray | None, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Distinct boxes hit by ``k`` uniform draws into ``n`` boxes, elementwise over (R, G).

    Exact where counts are small (k or n at most 64: inverse CDF of the exact law).
    Where both are large, the misses (collisions if k ≪ n, empty boxes if k ≫ n) follow
    a binomial with the exact mean and variance while few, and D a normal with the exact
    mean and variance otherwise (both tested against exact sampling). Row i draws G
    uniforms from stream ``states[i]`` (``sim.world.draws`` state rows); ``states=None``
    returns the expectation. With streams, k and n are whole numbers (counts of requests
    and users).
    """
    k = np.asarray(k, dtype=float)
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    if states is None:
        return _moments(k, n, var=False)[0]
    u = uniform_rows(states, np.arange(k.shape[0]), np.empty(k.shape))
    return _occupancy_given(u, k, n)


def occupancy_given(u: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``occupancy`` from uniforms ``u`` the caller drew (one per cell, same shape as k),
    for a caller whose stream is a numpy Generator (``sim.world.business``)."""
    k = np.asarray(k, dtype=float)
    return _occupancy_given(np.asarray(u, dtype=float), k, np.maximum(np.asarray(n, dtype=float), 1.0))


def _occupancy_given(u: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``occupancy`` with its uniforms given: one per cell, same shape as k; n >= 1."""
    drawn = k > 0
    trivial = drawn & ((k <= 1.0) | (n <= 1.0))  # one draw or one box: D = 1
    exact = drawn & ~trivial & (k <= _EXACT)
    rest = drawn & ~trivial & ~exact
    # Far past the coupon-collector point every box is hit: P(some box empty) <= n(1-1/n)^k
    # <= e^-12 when k/n > ln(n) + 12, so D = n without drawing.
    saturated = rest & (k > n * (np.log(n) + 12.0))
    rest &= ~saturated
    small_n = rest & (n <= _EXACT)
    exact |= small_n
    large = rest & ~small_n
    d = np.where(saturated, n, np.where(trivial, 1.0, 0.0))
    if exact.any():
        d[exact] = _exact_inverse(u[exact], k[exact], n[exact])
    if large.any():
        d[large] = _large_counts(u[large], k[large], n[large])
    return np.clip(d, np.minimum(k, 1.0), np.minimum(k, n))


def _large_counts(u: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Occupancy where k and n both exceed _EXACT (flat cells, not saturated).

    The misses (collisions or empty boxes, whichever are fewer) are a sum of weakly
    dependent indicators; a binomial with their exact mean and variance (under-dispersed:
    var < mean) fits them while few, and D a normal with the exact mean and variance when
    they are many.
    """
    mean, var = _moments(k, n, var=True)
    collisions = np.maximum(k - mean, 0.0)
    empties = np.maximum(n - mean, 0.0)
    misses = np.minimum(collisions, empties)
    d = np.empty(len(u))
    binom = misses < _POISSON_LIMIT
    if binom.any():
        miss_b = misses[binom]
        with np.errstate(divide="ignore", invalid="ignore"):
            p_b = np.clip(1.0 - var[binom] / np.where(miss_b > 0, miss_b, 1.0), 1e-9, 1.0)
        trials = np.maximum(np.round(miss_b / p_b), 1.0)
        p_b = np.clip(miss_b / trials, 0.0, 1.0)
        miss = _binomial_inverse(u[binom], trials, p_b)
        d[binom] = np.where(collisions[binom] <= empties[binom], k[binom] - miss, n[binom] - miss)
    norm = ~binom
    if norm.any():
        z = ndtri(u[norm] + _HALF_STEP)
        d[norm] = np.round(mean[norm] + np.sqrt(np.maximum(var[norm], 0.0)) * z)
    return d


def count_users(
    population: Population, requests: np.ndarray, excess: np.ndarray, states: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Users exposed and users affected per run, from per-cohort request and excess counts.

    Every request's user is drawn by activity weight, independently of when it came and
    of whether it failed, so given the X excess failures and the K − X other requests of
    a cohort, each set splits over users multinomially. Affected users: the distinct
    users of the X. Exposed: those, plus the users the K − X requests add. Of the y_g
    other requests to group g, each lands on a user not yet hit with probability
    (n_g − A_g)/n_g and spreads over those uniformly; thinning the multinomial of the
    K − X by these probabilities gives the fresh requests per group in one multinomial.

    Args:
        population: the user groups.
        requests: candidate requests per run and cohort, shape (R, C).
        excess: excess failures per run and cohort, shape (R, C); each <= requests.
        states: each run's users stream, a state row of ``sim.world.draws`` (R, 4), or
            None for expectations (``noise: false``).

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
        G = len(p)
        n = np.broadcast_to(sizes.astype(float), (len(rows), G))
        if states is None:
            exposed[rows] += occupancy(None, requests[rows, c, None] * p, n).sum(axis=1)
            affected[rows] += occupancy(None, excess[rows, c, None] * p, n).sum(axis=1)
            continue
        # Each run's draws, in this order: its excess failures' groups, its uniforms,
        # its fresh requests' groups (one compiled call each for all runs).
        n_excess = excess[rows, c]
        x = np.zeros((len(rows), G))
        hit = n_excess > 0
        if hit.any():
            x[hit] = multinomial_each(states, rows[hit], n_excess[hit], np.broadcast_to(p, (int(hit.sum()), G)))
        u = uniform_rows(states, rows, np.empty((len(rows), 2 * G)))  # both occupancy draws
        a = _occupancy_given(u[:, :G], x, n)
        # Fresh requests: each other request reaches a group and a user not yet hit there.
        pvals = np.empty((len(rows), G + 1))
        np.multiply(p, np.clip((n - a) / n, 0.0, 1.0), out=pvals[:, :G])
        pvals[:, G] = np.maximum(1.0 - pvals[:, :G].sum(axis=1), 0.0)
        fresh = multinomial_each(states, rows, requests[rows, c] - n_excess, pvals)[:, :G]
        left = np.maximum(n - a, 1.0)
        d = a + _occupancy_given(u[:, G:], fresh, left) * (n > a)
        exposed[rows] += d.sum(axis=1)
        affected[rows] += a.sum(axis=1)
    return exposed, affected


def count_sticky_users(
    population: Population,
    exposed_groups: np.ndarray,
    requests_groups: np.ndarray,
    excess: np.ndarray,
    other_requests: np.ndarray,
    other_excess: np.ndarray,
    states: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Users exposed and affected per run under session affinity (``sim.world.router.StickyUsers``).

    The users exposed while routing was sticky are the cookie holders, counted as the
    cookies were set (``exposed_groups``). A cohort's excess failures of that time split
    over its groups in proportion to the canary requests each sent (multinomially), and
    within a group land on its exposed users alike: the users affected are their
    occupancy. Requests of other times (not sticky: A/B or header routes; after a
    promotion, when every user reaches the new version) are counted by ``count_users``
    and added as if independent of the sticky ones, each user new with probability
    (users not yet counted) / (all users).

    Args:
        population: the user groups.
        exposed_groups: distinct users who held the canary's cookie, per run and group (R, G).
        requests_groups: live canary requests per run and group while sticky (R, G).
        excess: their excess failures per run and cohort (R, C).
        other_requests: the other requests per run and cohort (R, C).
        other_excess: their excess failures per run and cohort (R, C).
        states: each run's users stream (R, 4), or None for expectations.

    Returns:
        ``(users_exposed, users_affected)``, each of shape (R,).
    """
    x = np.zeros_like(exposed_groups)
    for c in range(population.n_cohorts):
        g = np.flatnonzero(population.cohort == c)
        rows = np.flatnonzero(excess[:, c] > 0)
        if not len(rows) or not len(g):
            continue
        q = requests_groups[np.ix_(rows, g)]
        total = q.sum(axis=1, keepdims=True)
        p = np.where(total > 0, q / np.where(total > 0, total, 1.0), 1.0 / len(g))
        if states is None:
            x[np.ix_(rows, g)] = excess[rows, c, None] * p
        else:
            x[np.ix_(rows, g)] = multinomial_each(states, rows, excess[rows, c], p)
    affected_groups = occupancy(states, x, np.maximum(exposed_groups, 1.0)) * (exposed_groups > 0)
    exposed, affected = exposed_groups.sum(axis=1), affected_groups.sum(axis=1)
    if other_requests.any():
        e2, a2 = count_users(population, other_requests, other_excess, states)
        n = float(population.total_users)
        exposed = exposed + e2 * (1.0 - exposed / n)
        affected = affected + a2 * (1.0 - affected / n)
    return exposed, affected
