"""The router: where each live request goes, for every run of a batch.

A narrow interface in Flagger's spirit (``pkg/router``): policies set routes through
actions, the world reads per-cohort shares from here. Weighted routing is not sticky:
each request independently goes to the canary with probability weight/100, which keeps
per-version arrivals Poisson (thinning). A/B routing is sticky by construction: a
cohort's users carry the header or cookie, so all their requests match, or none do.

Argo's managed routes (issue 16): a ``setHeaderRoute`` sends the requests its match
selects all to the canary; a ``setMirrorRoute`` copies the requests its match selects
(method, path, headers: ``rollout/trafficrouting/istio/istio.go`` ``createMirrorRoute``)
to the canary, ``mirrorPercentage`` of them, whichever version serves them (an Istio
route's ``mirror`` is "in addition to forwarding the requests to the intended
destination"). Which cohorts a named route selects is asked of the policy once per
route (``Policy.route_matches``) from each cohort's request (``cohort_requests``).

Flagger's session affinity (``analysis.sessionAffinity``, fluxcd/flagger
``pkg/router/istio.go`` ``getSessionAffinityRouteRules``) makes weighted routing sticky:
while the canary's weight is not 0, the weighted route's canary destination sets a
cookie (``Max-Age``: ``maxAge``, default 86400 s) and a route before it sends every
request carrying that cookie to the canary. At weight 0 the route is gone and the next
non-zero weight mints a new cookie (``Status.SessionAffinityCookie`` moves to
``PreviousSessionAffinityCookie``): the cookies of before no longer route. The
per-request mode keeps each user's cookie; the fast path ``StickyUsers`` keeps how many
users of each activity group hold one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.policies.base import Routes, SetWeights
from sim.policies.driver import routes_after
from sim.world.draws import multinomial_runs, poisson_rows
from sim.world.traffic import Population


class Router:
    """Current routes of ``runs`` simulated rollouts.

    Args:
        runs: rollouts in the batch.
        match_mask: per cohort (C,), whether its requests match the policy's A/B
            conditions.
        cohort_share: each cohort's share of traffic (C,), for the routed share.
        route_mask: a managed route's name -> which cohorts' requests it selects (C,);
            None: a named route selects the cohorts of ``match_mask``.
        session_affinity_s: the canary cookie's lifetime (Flagger ``sessionAffinity``
            ``maxAge``); 0: weighted routing is not sticky.
        session_affinity_primary_s: the primary cookie's lifetime (``primaryCookieName``:
            the analysis interval); 0: none.
    """

    def __init__(
        self,
        runs: int,
        match_mask: np.ndarray,
        cohort_share: np.ndarray,
        route_mask: Callable[[str], np.ndarray] | None = None,
        session_affinity_s: float = 0.0,
        session_affinity_primary_s: float = 0.0,
    ) -> None:
        self.session_affinity_s = session_affinity_s
        self.session_affinity_primary_s = session_affinity_primary_s if session_affinity_s > 0 else 0.0
        self.match_mask = match_mask.astype(float)
        self.cohort_share = cohort_share
        self._route_mask = route_mask
        self._masks: dict[str, np.ndarray] = {}
        C = len(self.match_mask)
        self.weight = np.zeros(runs)
        self.matched = np.zeros(runs, dtype=bool)
        self.mirrored = np.zeros(runs, dtype=bool)  # what GetRoutes reports (``Routes.mirrored``)
        self.header = np.zeros((runs, C), dtype=bool)  # cohorts a header route sends to the canary
        self.mirror = np.zeros((runs, C))  # share of each cohort's live requests copied to the canary
        self._routes = [Routes()] * runs
        #: Which canary cookie routes: a new one from each weight set after a weight of 0.
        self.cookie_epoch = np.zeros(runs, dtype=np.int64)
        #: An experiment's user split (``SetWeights.by_user``, issue 19): whether each run
        #: routes by user, and then the candidate's share of each cohort's traffic (the
        #: activity share of its users, set by the world from its draw of them).
        self.by_user = np.zeros(runs, dtype=bool)
        self.user_share = np.zeros((runs, C))

    def _mask(self, route: str, default: np.ndarray) -> np.ndarray:
        """Cohorts selected by the managed route ``route`` ("" : ``default``)."""
        if not route:
            return default
        mask = self._masks.get(route)
        if mask is None:
            mask = self._masks[route] = (
                self._route_mask(route).astype(float) if self._route_mask is not None else self.match_mask
            )
        return mask

    def routes(self, run: int) -> Routes:
        """What ``GetRoutes`` returns for one run."""
        return self._routes[run]

    def set(self, run: int, a: SetWeights) -> None:
        """Apply a policy's ``SetWeights`` to one run's routes."""
        self.set_many(np.array([run]), a)

    def set_many(self, runs: np.ndarray, a: SetWeights) -> None:
        """Apply one ``SetWeights`` to the routes of several runs (a class step's runs)."""
        routes = routes_after(Routes(), a)  # a SetWeights replaces the routes whatever they were
        for r in runs.tolist():
            self._routes[r] = routes
        if a.canary_weight == 0:
            # The sticky route is removed with its cookie.
            self.cookie_epoch[runs[self.weight[runs] != 0]] += 1
        self.weight[runs] = a.canary_weight
        self.by_user[runs] = a.by_user
        self.matched[runs] = a.matched
        self.mirrored[runs] = a.mirrored
        self.header[runs] = (self._mask(a.header_match, self.match_mask) > 0) if a.header_route else False
        every = np.ones_like(self.match_mask)
        self.mirror[runs] = a.mirror_percent / 100.0 * self._mask(a.mirror_match, every) if a.mirrored else 0.0

    def sticky(self, runs: np.ndarray) -> np.ndarray:
        """Whether each run's weighted routing is sticky now (bool, len(runs)): session
        affinity on, a non-zero weight, and plain weighted routing (no A/B or header route)."""
        if self.session_affinity_s <= 0:
            return np.zeros(len(runs), dtype=bool)
        return (self.weight[runs] > 0) & ~self.matched[runs] & ~self.header[runs].any(axis=1) & ~self.by_user[runs]

    def canary_share(self, runs: np.ndarray) -> np.ndarray:
        """P(a live request of each cohort goes to the canary), shape (len(runs), C)."""
        w = (self.weight[runs] / 100.0)[:, None]
        share = np.where(self.matched[runs][:, None], w * self.match_mask[None, :], w)
        share = np.where(self.by_user[runs][:, None], self.user_share[runs], share)
        return np.where(self.header[runs], 1.0, share)

    def mirror_share(self, runs: np.ndarray) -> np.ndarray:
        """Share of each cohort's live requests copied to the canary, shape (len(runs), C)."""
        return self.mirror[runs]

    def routed_percent(self, run: int) -> float:
        """Percent of all live traffic the canary receives (weighted routing: the weight;
        A/B and header routes: the weight times the matching cohorts' share of traffic)."""
        if not self.matched[run] and not self.header[run].any() and not self.by_user[run]:
            return float(self.weight[run])
        return round(float(100.0 * (self.canary_share(np.array([run]))[0] * self.cohort_share).sum()), 6)


@dataclass
class _Cookies:
    """Cookies set during one segment: they expire over ``[start, end)``, uniformly."""

    start: float
    end: float
    rows: np.ndarray  # runs
    epochs: np.ndarray  # each run's cookie epoch then (-1: the primary's cookie)
    left: np.ndarray  # not yet expired, (len(rows), G)
    done: float = 0.0  # share of [start, end) released so far


class StickyUsers:
    """Session affinity in the fast path: how many users of each activity group hold the
    canary's cookie (and the primary's), per run, and the canary requests they send.

    A group holds n equally active users, each sending a Poisson stream of intensity
    m per segment (their share of the segment's requests). A user without a cookie sends
    each request to the canary with the weight w until the first one does; from then on
    all go to the canary. So over a segment, each cookieless user gets a cookie with
    probability 1 − exp(−w m) (independently: a binomial), and sends the canary that first
    request plus the rest of its stream after it, whose mean given a hit in the segment is
    m − E[τ | τ < m] (τ exponential with rate w); holders send the canary all of theirs
    (Poisson H m). The rest after a first hit is drawn as a Poisson of its mean (a mixed
    Poisson's variance is slightly larger; the per-request mode is the reference). A
    cookie set during a segment [a, c) expires in [a + age, c + age), uniformly: at each
    segment's start the cookies whose expiry falls before the segment's middle are
    released (binomially), which rounds each expiry to the nearest segment boundary
    (unbiased on average). Several lifetimes within one segment (a primary cookie shorter
    than a scrape interval) are not resolved.

    With a primary cookie (Flagger's ``primaryCookieName``, lifetime ``primary_age_s``: the
    analysis interval) a cookieless user's *first* request decides: to the canary (w) it
    gets the canary's cookie, to the primary (1 − w) the primary's, and stays there until
    that expires; so a user makes one weighted draw per cookie instead of one per request
    (τ is then its first request, rate 1).

    Users exposed are counted as cookies are set: each canary cookie goes to a user who
    held none, new to the canary with probability (never exposed) / (without the
    canary's cookie).

    Args:
        runs: rollouts in the batch.
        population: the user groups.
        max_age_s: the canary cookie's lifetime.
        primary_age_s: the primary cookie's lifetime (0: no primary cookie).
    """

    def __init__(self, runs: int, population: Population, max_age_s: float, primary_age_s: float = 0.0) -> None:
        self.max_age_s = max_age_s
        self.primary_age_s = primary_age_s
        self.n = population.users.astype(float)  # (G,)
        self.cohort = population.cohort  # (G,)
        share = population.cohort_share[self.cohort]
        #: Each user's share of its cohort's requests.
        self.per_user = np.where(share > 0, population.weight / np.where(share > 0, share, 1.0), 0.0)
        self.to_cohort = np.eye(population.n_cohorts)[self.cohort]  # (G, C)
        G = len(self.n)
        self.holders = np.zeros((runs, G))
        self.primary_holders = np.zeros((runs, G))
        self.exposed = np.zeros((runs, G))
        self.requests = np.zeros((runs, G))  # live canary requests per group
        #: Excess failures of those requests per cohort (the rest of the ledger's came
        #: while routing was not sticky: A/B, header routes).
        self.excess = np.zeros((runs, population.n_cohorts))
        self.epoch = np.zeros(runs, dtype=np.int64)
        #: Cookies set and not yet expired: their expiry window, runs, epochs (-1: a
        #: primary cookie), counts left (R, G) and the share of the window released.
        self._issued: list[_Cookies] = []

    def sync(self, runs: np.ndarray, epochs: np.ndarray) -> None:
        """Canary cookies of an old epoch (the weight went to 0 since) route no more;
        primary cookies keep routing until they expire (Flagger keeps their value)."""
        stale = self.epoch[runs] != epochs
        if stale.any():
            self.holders[runs[stale]] = 0.0
            self.epoch[runs] = epochs

    def _expire(self, states: np.ndarray | None, runs: np.ndarray, a: float, c: float) -> None:
        """Release the cookies of ``runs`` whose expiry falls before the middle of the
        segment [a, c) (other runs may be at other times)."""
        x = 0.5 * (a + c)
        keep: list[_Cookies] = []
        for e in self._issued:
            mine = np.isin(e.rows, runs) if e.start < x else np.zeros(len(e.rows), dtype=bool)
            if mine.any():
                done = min(max((x - e.start) / (e.end - e.start), 0.0), 1.0)
                p = (done - e.done) / (1.0 - e.done) if e.done < 1.0 else 1.0
                idx = np.flatnonzero(mine)
                rows = e.rows[idx]
                gone = self._binomial(states, rows, e.left[idx], np.full(e.left[idx].shape, p))
                e.left[idx] -= gone
                live = (e.epochs[idx] < 0) | (self.epoch[rows] == e.epochs[idx])
                target = self.primary_holders if e.epochs[0] < 0 else self.holders
                target[rows[live]] = np.maximum(target[rows[live]] - gone[live], 0.0)
                if done >= 1.0:
                    e = _Cookies(e.start, e.end, e.rows[~mine], e.epochs[~mine], e.left[~mine], e.done)
                elif mine.all():
                    e = _Cookies(e.start, e.end, e.rows, e.epochs, e.left, done)
                else:  # runs of this group moved on; the others keep their share
                    keep.append(_Cookies(e.start, e.end, e.rows[~mine], e.epochs[~mine], e.left[~mine], e.done))
                    e = _Cookies(e.start, e.end, e.rows[mine], e.epochs[mine], e.left[mine], done)
            if len(e.rows):
                keep.append(e)
        self._issued = keep

    def _binomial(self, states: np.ndarray | None, runs: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        if states is None:
            return n * p
        p = np.clip(p, 0.0, 1.0)
        return multinomial_runs(states, runs, n, np.stack([p, 1.0 - p], axis=-1))[..., 0]

    def draw(
        self,
        states: np.ndarray | None,
        runs: np.ndarray,
        b: np.ndarray,
        lam: np.ndarray,
        share: np.ndarray,
        account: np.ndarray,
    ) -> np.ndarray:
        """Live canary requests (R, S, C) of ``runs`` over the segments of cuts ``b``, given
        each cohort's expected requests ``lam`` (1|R, S, C) and the weighted canary share
        ``share`` (R, C); ``states`` None: expectations (``noise: false``). Only the runs
        ``account`` (bool, R) add to the users exposed and the requests per group (a run
        that has decided routes on, but its harm is no longer the canary's)."""
        R, S, C = len(runs), len(b) - 1, share.shape[1]
        out = np.zeros((R, S, C))
        w = share[:, self.cohort]  # (R, G)
        pinned = self.primary_age_s > 0
        for s in range(S):
            self._expire(states, runs, float(b[s]), float(b[s + 1]))
            m = np.broadcast_to(lam[:, s, self.cohort] * self.per_user, w.shape)
            held = self.holders[runs]
            held_p = self.primary_holders[runs]
            free = np.maximum(self.n - held - held_p, 0.0)
            # The first request to the canary comes at τ ~ Exp(rate) (intensity units):
            # rate w without a primary cookie (every request is weighted), rate 1 with
            # one (the first request is the only weighted one).
            rate = np.ones_like(w) if pinned else w
            rm = rate * m
            p_first = -np.expm1(-rm)
            with np.errstate(divide="ignore", invalid="ignore"):
                # E[m − τ | τ < m] = m − 1/rate + m e^{−rate m} / (1 − e^{−rate m}); m/2 as rate m → 0.
                rest = np.where(rm > 1e-6, m - 1.0 / rate + m * np.exp(-rm) / p_first, 0.5 * m)
            p_hit = w * p_first if pinned else p_first
            k = self._binomial(states, runs, free, p_hit)
            if pinned:  # the others whose first request went to the primary
                with np.errstate(divide="ignore", invalid="ignore"):
                    p_primary = np.where(p_hit < 1.0, (1.0 - w) * p_first / (1.0 - p_hit), 0.0)
                k_p = self._binomial(states, runs, free - k, p_primary)
            mean = np.ascontiguousarray(held * m + k * rest)
            q = k + (mean if states is None else poisson_rows(states, runs, mean, np.empty_like(mean)))
            new = np.clip((self.n - self.exposed[runs]) / np.where(self.n > held, self.n - held, 1.0), 0.0, 1.0)
            fresh = self._binomial(states, runs, k, new)
            self.exposed[runs] += fresh * account[:, None]
            self.holders[runs] = held + k
            self.requests[runs] += q * account[:, None]
            a, c = float(b[s]), float(b[s + 1])
            if k.any():
                self._issued.append(_Cookies(a + self.max_age_s, c + self.max_age_s, runs.copy(), self.epoch[runs], k))
            if pinned:
                self.primary_holders[runs] = held_p + k_p
                if k_p.any():
                    age = self.primary_age_s
                    self._issued.append(_Cookies(a + age, c + age, runs.copy(), np.full(R, -1), k_p))
            out[:, s] = q @ self.to_cohort
        return out
