"""Business outcomes of live traffic (issue 19): sessions, conversions, order values and
engagement per version, from a scenario's ``business:`` block and ``release.effects``.

The law, per run, segment, cohort and version (``BusinessModel``, ``BusinessLedger.add``):

* **sessions**: each live request a version serves starts a session with probability
  1/k (k = ``requests_per_session``), so given the N live requests of a cell, its
  sessions are Binomial(N, 1/k) (independent thinning of the requests). Sessions thus
  follow whatever routed the requests (weights, header cohorts, session affinity).
* **conversions**: each session converts with p = rate for the primary and
  rate · (1 + L(t)) for the candidate where its effect applies (everyone, or the
  effect's cohort only), L(t) = lift + novelty.lift · 2^(−t/half_life), t the segment's
  midpoint in seconds since the rollout started: Binomial(sessions, p).
* **order values**: each conversion's value is lognormal with median m · (1 + L_order(t))
  and log-sd σ. Each value is drawn (the sum and the sum of squares are then exact)
  while a cell has at most ``EXACT_LIMIT`` (200) conversions; above that, the pair (Σx, Σx²)
  is drawn from the bivariate normal with the exact mean and covariance of a sum of
  that many i.i.d. pairs (x, x²) (the CLT: E x^j = m^j exp(j²σ²/2), the lognormal's
  moments, Johnson, Kotz & Balakrishnan, *Continuous Univariate Distributions* vol. 1,
  ch. 14), so large cells cost O(1) and keep exact first and second moments.
* **engagement**: per session Poisson(μ·(1 + L_eng(t))), or gamma-Poisson (negative
  binomial) with variance d·mean when ``dispersion`` d > 1. The sum over n sessions is
  drawn exactly (a sum of n Poisson(μ) is Poisson(nμ); of n NB(a, q) is NB(na, q)). The
  sum of squares is not a function of the sum: up to ``EXACT_LIMIT`` sessions each
  count is drawn (exact); above, Σy² is drawn from its normal law *given the drawn sum*
  (the bivariate CLT's conditional, with the exact moments of y from its factorial
  moments E[y(y−1)...(y−j+1)] = E[G^j], G the gamma mean; Johnson, Kemp & Kotz,
  *Univariate Discrete Distributions*, ch. 4 and 5), so the sum is always exact.

All draws come from each run's own ``business`` stream (``sim.seeds.STREAMS``), a numpy
Generator made from the run's seed (``sim.seeds.Streams``): the draws need binomial,
lognormal and negative-binomial vectors whose lengths depend on the counts, which numpy
samples exactly; a run's draws follow its own history only, so its business data do not
depend on the batch. The cost is a few numpy calls per run and advance, and only for a
scenario with ``business:``.

Users per version are the distinct users behind its sessions: a session's user is drawn
by activity weight within its cohort's activity groups (``Population``; under a user
split, within that version's users), and each advance draws how many users its new
sessions meet for the first time (``BusinessLedger._meet_users``: binomial thinning by
the unseen share, then the occupancy law of ``sim.world.users``), so the count never
decreases from tick to tick. Without noise it is its expectation: Σ n(1 − (1 − p/n)^k)
over groups of n users with share p of k sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.inputs.scenario import Effect, Scenario
from sim.policies.base import BusinessData
from sim.seeds import Streams
from sim.world.traffic import Population, RateFunction
from sim.world.users import occupancy_given

#: Conversions (or sessions) of one cell up to which every order value (engagement
#: count) is drawn one by one; above it the moments' normal law is used.
EXACT_LIMIT = 200
#: Pieces of the ``after_promotion`` window over which novelty is integrated.
AFTER_PIECES = 64
#: The business metrics a policy may name (``Policy.business_metric``).
METRICS = ("conversion", "order_value", "revenue", "engagement")


def lift_at(effect: Effect | None, t: np.ndarray) -> np.ndarray:
    """An effect's relative lift L(t) = lift + novelty.lift · 2^(−t/half_life) at times
    ``t`` (seconds since the rollout started); 0 without an effect."""
    t = np.asarray(t, dtype=float)
    if effect is None:
        return np.zeros_like(t)
    out = np.full_like(t, effect.lift)
    if effect.novelty is not None:
        out = out + effect.novelty.lift * np.exp2(-np.maximum(t, 0.0) / effect.novelty.half_life)
    return out


def lognormal_moments(median: float, sigma: float) -> tuple[float, float, float, float]:
    """E x, E x², E x³, E x⁴ of a lognormal with this median and log-sd:
    E x^j = median^j · exp(j² σ² / 2)."""
    return tuple(median**j * math.exp(j * j * sigma * sigma / 2.0) for j in (1, 2, 3, 4))  # type: ignore[return-value]


def count_moments(mean: float, dispersion: float) -> tuple[float, float, float, float]:
    """E y, E y², E y³, E y⁴ of an engagement count: Poisson(mean) (dispersion 1) or
    gamma-Poisson with variance dispersion · mean. From the factorial moments f_j =
    E[G^j] (G ≡ mean for the Poisson; gamma with shape a = mean/(d−1) and scale d−1:
    E G^j = scale^j a(a+1)...(a+j−1)): E y² = f2 + f1, E y³ = f3 + 3 f2 + f1,
    E y⁴ = f4 + 6 f3 + 7 f2 + f1 (Stirling numbers of the second kind)."""
    if dispersion <= 1.0 or mean == 0.0:
        f = [mean**j for j in (1, 2, 3, 4)]
    else:
        scale = dispersion - 1.0
        a = mean / scale
        f = [scale**j * math.prod(a + i for i in range(j)) for j in (1, 2, 3, 4)]
    f1, f2, f3, f4 = f
    return f1, f2 + f1, f3 + 3 * f2 + f1, f4 + 6 * f3 + 7 * f2 + f1


class _Pools:
    """Cells of i.i.d. draws pooled by (version, law parameter): the sum of the draws of
    cells that share a law is the sum of their pooled count of draws (the same law), so a
    long advance costs one cell per distinct law and version, not per segment. The pools
    depend on the laws only, so they are found once per advance for all runs. With
    ``per_cell`` (the series need each segment's and pod's sums) every cell is its own pool.

    Args:
        param: the law's parameter per cell.
        version: each cell's version (0 primary, 1 candidate), same shape.
        per_cell: one pool per cell.
    """

    def __init__(self, param: np.ndarray, version: np.ndarray, per_cell: bool = False) -> None:
        flat_v = version.reshape(-1)
        if per_cell:
            self.index = np.arange(flat_v.size)
            self.param, self.version = param.reshape(-1), flat_v
            return
        values, inverse = np.unique(param.reshape(-1), return_inverse=True)
        key = inverse.reshape(-1) * 2 + flat_v
        used, index = np.unique(key, return_inverse=True)
        self.index = index.reshape(-1)
        self.param = values[used // 2]
        self.version = used % 2

    def __call__(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pooled counts of ``counts`` (the cells' shape), their parameter and version."""
        pooled = np.bincount(self.index, weights=counts.reshape(-1), minlength=len(self.param))
        return pooled, self.param, self.version


def count_moments_array(mean: np.ndarray, dispersion: float) -> list[np.ndarray]:
    """``count_moments`` for an array of means."""
    mean = np.asarray(mean, dtype=float)
    if dispersion <= 1.0:
        f = [mean**j for j in (1, 2, 3, 4)]
    else:
        scale = dispersion - 1.0
        a = mean / scale
        f = [scale**j * np.prod([a + i for i in range(j)], axis=0) for j in (1, 2, 3, 4)]
    f1, f2, f3, f4 = f
    return [f1, f2 + f1, f3 + 3 * f2 + f1, f4 + 6 * f3 + 7 * f2 + f1]


def _pairs_normal(rng: np.random.Generator, n: np.ndarray, m: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(Σx, Σx²) of n i.i.d. x with raw moments ``m`` (arrays, one per cell), from the
    bivariate normal with the sums' exact means and covariance (the CLT, by its Cholesky
    factor); Σx kept >= 0 and Σx² >= (Σx)²/n (Cauchy–Schwarz)."""
    m1, m2, m3, m4 = m
    v = n * (m2 - m1 * m1)
    c = n * (m3 - m1 * m2)
    w = n * (m4 - m2 * m2)
    sv = np.sqrt(np.maximum(v, 0.0))
    z = rng.standard_normal((2, len(n)))
    slope = np.where(sv > 0, c / np.where(sv > 0, sv, 1.0), 0.0)
    rest = np.sqrt(np.maximum(w - slope * slope, 0.0))
    s = np.maximum(n * m1 + sv * z[0], 0.0)
    q = n * m2 + slope * z[0] + rest * z[1]
    return s, np.maximum(q, s * s / n)


def _square_given_sum(rng: np.random.Generator, n: np.ndarray, s: np.ndarray, m: list[np.ndarray]) -> np.ndarray:
    """Σy² of n i.i.d. counts y with raw moments ``m`` given their drawn sums ``s``: the
    bivariate CLT's conditional normal, mean n·m2 + c/v·(s − n·m1), variance n·(w − c²/v)
    (v, c, w: var y, cov(y, y²), var y²). Kept >= s (counts: y² >= y) and >= s²/n."""
    m1, m2, m3, m4 = m
    v, c, w = m2 - m1 * m1, m3 - m1 * m2, m4 - m2 * m2
    beta = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)
    mean = n * m2 + beta * (s - n * m1)
    sd = np.sqrt(np.maximum(n * (w - beta * c), 0.0))
    return np.maximum(np.maximum(mean + sd * rng.standard_normal(len(n)), s * s / n), s)


@dataclass(frozen=True)
class BusinessModel:
    """What depends on the scenario only: the laws and the candidate's effects.

    Attributes:
        rate, median, sigma, mean, dispersion, k, min_effect: the ``business:`` block.
        effects: the candidate's ``release.effects``.
        cohort_index: each effect's cohort index in the population (None: everyone).
        cohort_share: each cohort's share of traffic (so of sessions).
    """

    rate: float
    median: float
    sigma: float
    mean: float
    dispersion: float
    k: float
    min_effect: float
    conversion: Effect | None
    order_value: Effect | None
    engagement: Effect | None
    cohort_index: dict[str, int | None]
    cohort_share: np.ndarray

    @classmethod
    def of(cls, scenario: Scenario, population: Population) -> BusinessModel | None:
        """The model of a scenario, or None without ``business:``."""
        b = scenario.business
        if b is None:
            return None
        names = [c.name for c in scenario.traffic.cohorts]
        eff = scenario.release.effects
        index: dict[str, int | None] = {}
        for metric in ("conversion", "order_value", "engagement"):
            e = getattr(eff, metric)
            index[metric] = None if e is None or e.cohort is None else 1 + names.index(e.cohort)
        return cls(
            b.conversion.rate,
            b.order_value.median,
            b.order_value.sigma,
            b.engagement.mean,
            b.engagement.dispersion,
            b.requests_per_session,
            b.min_effect,
            eff.conversion,
            eff.order_value,
            eff.engagement,
            index,
            population.cohort_share,
        )

    def multiplier(self, metric: str, t: np.ndarray) -> np.ndarray:
        """The candidate's factor 1 + L(t) of ``metric`` (conversion, order_value,
        engagement) per time and cohort (S, C): 1 for cohorts the effect leaves alone."""
        t = np.asarray(t, dtype=float)
        effect = getattr(self, metric)
        C = len(self.cohort_share)
        out = np.ones((len(t), C))
        if effect is None:
            return out
        lift = lift_at(effect, t)
        c = self.cohort_index[metric]
        if c is None:
            out += lift[:, None]
        else:
            out[:, c] += lift
        return out

    def order_mean(self) -> float:
        """The primary's mean order value: median · exp(σ²/2) (the lognormal's mean)."""
        return self.median * math.exp(self.sigma**2 / 2.0)

    def per_session(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected conversions and revenue per session (S, C, version: primary, candidate)
        at times ``t``: p and p · mean order value."""
        conv = self.rate * np.stack([np.ones((len(t), len(self.cohort_share))), self.multiplier("conversion", t)], -1)
        order = self.order_mean() * np.stack([np.ones_like(conv[..., 0]), self.multiplier("order_value", t)], axis=-1)
        return conv, conv * order

    def true_lift(self, metric: str) -> float:
        """The candidate's long-run relative lift of ``metric`` (no novelty), over the
        whole population: a cohort-only effect weighted by its cohort's share of sessions
        (for revenue, (1 + conversion lift)(1 + order lift) − 1 per cohort, then weighted)."""
        share = self.cohort_share / self.cohort_share.sum()

        def per_cohort(name: str) -> np.ndarray:
            e = getattr(self, name)
            out = np.zeros(len(share))
            if e is None:
                return out
            c = self.cohort_index[name]
            if c is None:
                out[:] = e.lift
            else:
                out[c] = e.lift
            return out

        if metric == "revenue":
            lift = (1.0 + per_cohort("conversion")) * (1.0 + per_cohort("order_value")) - 1.0
            # Revenue is per session; its mean over cohorts weighs the primary's revenue alike.
            return float((share * lift).sum())
        if metric not in ("conversion", "order_value", "engagement"):
            raise ValueError(f"unknown business metric {metric!r} (one of {', '.join(METRICS)})")
        return float((share * per_cohort(metric)).sum())


class BusinessLedger:
    """Cumulative business outcomes per run and version (primary 0, candidate 1) of a batch.

    Args:
        model: the scenario's business model.
        streams: the runs' named streams (each run's ``business`` stream is drawn).
        population: users and cohorts (distinct users per version).
        noise: False makes every quantity its expectation (deterministic tests).
    """

    def __init__(
        self, model: BusinessModel, streams: list[Streams], population: Population, noise: bool = True
    ) -> None:
        self.model = model
        self.population = population
        self.noise = noise
        self._streams = streams
        R, C = len(streams), population.n_cohorts
        shape = (R, 2)
        self.sessions = np.zeros(shape)
        self.conversions = np.zeros(shape)
        self.order_value_sum = np.zeros(shape)
        self.order_value_sumsq = np.zeros(shape)
        self.engagement_sum = np.zeros(shape)
        self.engagement_sumsq = np.zeros(shape)
        self.requests = np.zeros(shape)
        self.errors = np.zeros(shape)
        #: Sessions per run, version and cohort (distinct users).
        self.cohort_sessions = np.zeros((R, 2, C))
        #: Expected conversions and revenue lost against the better version, per run.
        self.regret_conversions = np.zeros(R)
        self.regret_revenue = np.zeros(R)
        self.regret_conversions_after = np.full(R, np.nan)
        self.regret_revenue_after = np.full(R, np.nan)
        #: Runs still in the rollout (a decision stops their business accounting).
        self.active = np.ones(R, dtype=bool)
        self._order_m = lognormal_moments(model.median, model.sigma)
        #: The candidate's users per activity group of runs that split by user (``UserSplit``).
        self.split_users: dict[int, np.ndarray] = {}
        #: Distinct users seen per run, version and activity group (drawn; ``users``).
        self.seen_users = np.zeros((R, 2, len(population.users)))
        #: Pods of (primary, candidate) when the raw series read business counters (``add``
        #: then returns per-pod increments); None otherwise.
        self.pods: tuple[int, int] | None = None

    def rng(self, run: int) -> np.random.Generator:
        """Run ``run``'s business stream."""
        return self._streams[run]["business"]

    def add(self, runs: np.ndarray, mid: np.ndarray, live: np.ndarray, errors: np.ndarray) -> np.ndarray | None:
        """Business outcomes of the live requests ``live`` (R, S, C, version) served at
        segment midpoints ``mid`` (S,) to ``runs``, with their failures ``errors`` (same
        shape): only the runs still in their rollout (``active``) count.

        Returns:
            With ``pods`` set (the raw series read business counters), each run's
            increments per segment, version, pod and counter (R, S, 2, P, 4: sessions,
            conversions, order value sum, engagement sum); else None. Each version's
            requests of a segment and cohort spread over its pods evenly (a multinomial,
            as kube-proxy spreads them), and each pod's business is drawn from its own.
        """
        pods = self.pods
        P = max(pods) if pods is not None else 1
        S, C = live.shape[1], live.shape[2]
        out = np.zeros((len(runs), S, 2, P, 4)) if pods is not None else None
        on = self.active[runs]
        if not on.any():
            return out
        rows = np.flatnonzero(on)
        runs, live, errors = runs[on], live[on], errors[on]
        m = self.model
        self.requests[runs] += live.sum(axis=(1, 2))
        self.errors[runs] += errors.sum(axis=(1, 2))
        conv_p, rev_p = m.per_session(mid)  # (S, C, 2)
        mult_o = np.stack([np.ones((S, C)), m.multiplier("order_value", mid)], axis=-1)
        mult_e = np.stack([np.ones((S, C)), m.multiplier("engagement", mid)], axis=-1)
        shape = (S, C, 2, P)
        version = np.broadcast_to(np.arange(2)[:, None], shape)
        per_cell = pods is not None
        pools_o = _Pools(np.broadcast_to((m.median * mult_o)[..., None], shape), version, per_cell)
        pools_e = _Pools(np.broadcast_to((m.mean * mult_e)[..., None], shape), version, per_cell)
        e2 = count_moments_array(m.mean * mult_e, m.dispersion)[1][..., None]
        met: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for i, r in enumerate(runs.tolist()):
            n = self._by_pod(r, live[i])  # (S, C, 2, P)
            if self.noise:
                rng = self.rng(r)
                sessions = rng.binomial(np.rint(n).astype(np.int64), 1.0 / m.k).astype(float)
                conversions = rng.binomial(sessions.astype(np.int64), conv_p[..., None]).astype(float)
                ov = self._order_values(rng, conversions, pools_o)
                eng = self._engagement(rng, sessions, pools_e)
            else:
                sessions = n / m.k
                conversions = sessions * conv_p[..., None]
                x = mult_o[..., None]
                ov = (
                    pools_o(conversions * m.order_mean() * x)[0],
                    pools_o(conversions * self._order_m[1] * x**2)[0],
                )
                eng = (pools_e(sessions * m.mean * mult_e[..., None])[0], pools_e(sessions * e2)[0])
            for total, pool, pools in (
                (self.order_value_sum, ov[0], pools_o),
                (self.order_value_sumsq, ov[1], pools_o),
                (self.engagement_sum, eng[0], pools_e),
                (self.engagement_sumsq, eng[1], pools_e),
            ):
                total[r] += np.bincount(pools.version, weights=pool, minlength=2)
            by_version = sessions.sum(axis=3)  # (S, C, 2)
            self.sessions[r] += by_version.sum(axis=(0, 1))
            self.conversions[r] += conversions.sum(axis=(0, 1, 3))
            self.cohort_sessions[r] += by_version.sum(axis=0).T
            if self.noise:
                met += self._meet_users(r, by_version.sum(axis=0))
            # Expected loss against serving each session the better version then.
            for gap, regret in ((conv_p, self.regret_conversions), (rev_p, self.regret_revenue)):
                d = gap[..., 1] - gap[..., 0]  # (S, C): the candidate's per-session advantage
                lost = by_version[..., 1] * np.maximum(-d, 0.0) + by_version[..., 0] * np.maximum(d, 0.0)
                regret[r] += float(lost.sum())
            if out is not None:
                # Per cell pools: the sums in the cells' order, summed over cohorts.
                cells = np.stack(
                    [sessions, conversions, ov[0].reshape(shape), eng[0].reshape(shape)], axis=-1
                )  # (S, C, 2, P, 4)
                out[rows[i]] = cells.sum(axis=1)
        self._occupy(met)
        return out

    def _by_pod(self, r: int, n: np.ndarray) -> np.ndarray:
        """Live requests (S, C, 2) of run ``r`` spread over each version's pods evenly
        (S, C, 2, P): a multinomial from the run's business stream (expectations without
        noise); (S, C, 2, 1) when the series are not read."""
        pods = self.pods
        if pods is None:
            return n[..., None]
        P = max(pods)
        out = np.zeros(n.shape + (P,))
        for v in (0, 1):
            k = pods[v]
            if k == 0:
                continue
            if k == 1:
                out[..., v, 0] = n[..., v]
            elif self.noise:
                out[..., v, :k] = self.rng(r).multinomial(np.rint(n[..., v]).astype(np.int64), np.full(k, 1.0 / k))
            else:
                out[..., v, :k] = n[..., v, None] / k
        return out

    def _order_values(
        self, rng: np.random.Generator, conversions: np.ndarray, pools: _Pools
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sum and sum of squares of the order values of each pool of ``conversions``
        (its cells pooled by their median, module docstring)."""
        m = self.model
        c, med, _ = pools(conversions)
        s, q = np.zeros(len(c)), np.zeros(len(c))
        small = (c > 0) & (c <= EXACT_LIMIT)
        if small.any():
            reps = c[small].astype(np.int64)
            x = rng.lognormal(np.repeat(np.log(med[small]), reps), m.sigma)
            at = np.repeat(np.flatnonzero(small), reps)
            s += np.bincount(at, weights=x, minlength=len(c))
            q += np.bincount(at, weights=x * x, minlength=len(c))
        big = c > EXACT_LIMIT
        if big.any():
            n, md = c[big], med[big]
            mom = [md**j * math.exp(j * j * m.sigma**2 / 2.0) for j in (1, 2, 3, 4)]
            s[big], q[big] = _pairs_normal(rng, n, mom)
        return s, q

    def _engagement(
        self, rng: np.random.Generator, sessions: np.ndarray, pools: _Pools
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sum and sum of squares of the per-session engagement counts of each pool of
        ``sessions`` (its cells pooled by their mean)."""
        m = self.model
        n, mu, _ = pools(sessions)
        s, q = np.zeros(len(n)), np.zeros(len(n))
        keep = (n > 0) & (mu > 0)
        d = m.dispersion
        small = keep & (n <= EXACT_LIMIT)
        if small.any():
            reps = n[small].astype(np.int64)
            each = np.repeat(mu[small], reps)
            # Gamma-Poisson as numpy's negative binomial: shape mu/(d−1), success probability 1/d.
            y = (rng.negative_binomial(each / (d - 1.0), 1.0 / d) if d > 1.0 else rng.poisson(each)).astype(float)
            at = np.repeat(np.flatnonzero(small), reps)
            s += np.bincount(at, weights=y, minlength=len(n))
            q += np.bincount(at, weights=y * y, minlength=len(n))
        big = keep & (n > EXACT_LIMIT)
        if big.any():
            nb, mb = n[big], mu[big]
            # The sum exactly: Poisson(n mu), or NB(n a, 1/d) (sums of i.i.d. NB(a, 1/d)).
            total = (rng.negative_binomial(nb * mb / (d - 1.0), 1.0 / d) if d > 1.0 else rng.poisson(nb * mb)).astype(
                float
            )
            s[big] = total
            q[big] = _square_given_sum(rng, nb, total, count_moments_array(mb, d))
        return s, q

    def _group_sizes(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Each version's users per activity group in run ``r`` (primary, candidate): all
        of them, or each side of its user split."""
        n = self.population.users.astype(float)
        on = self.split_users.get(r)
        if on is None:
            return n, n
        return n - on, on.astype(float)

    def _meet_users(
        self, r: int, sessions: np.ndarray
    ) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Distinct users met by run ``r``'s new ``sessions`` per cohort and version (C, 2),
        drawn: each cohort's sessions split over its activity groups by their activity
        (a multinomial); of a group's k new sessions, those that reach a user not yet
        seen are Binomial(k, (n − D)/n) (D seen of n), and they reach as many distinct
        users as that many uniform draws into the n − D unseen (the occupancy law,
        ``sim.world.users.occupancy_given``): the thinning ``count_users`` uses. Returns
        the draws; ``_occupy`` turns them into users."""
        pop, rng = self.population, self.rng(r)
        draws = []
        for v, n in enumerate(self._group_sizes(r)):
            w = n * pop.weight
            k = np.zeros(len(n))
            for c in range(pop.n_cohorts):
                g = np.flatnonzero((pop.cohort == c) & (w > 0))
                total = int(sessions[c, v])
                if total <= 0 or not len(g):
                    continue
                k[g] = rng.multinomial(total, w[g] / w[g].sum())
            hit = np.flatnonzero(k > 0)
            if not len(hit):
                continue
            seen = np.minimum(self.seen_users[r, v, hit], n[hit])
            unseen = n[hit] - seen
            fresh = rng.binomial(k[hit].astype(np.int64), np.where(n[hit] > 0, unseen / np.maximum(n[hit], 1.0), 0.0))
            draws.append((r, v, hit, seen, unseen, fresh, rng.random(len(hit))))
        return draws

    def _occupy(self, draws: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """The new distinct users of ``_meet_users``' draws, for every run of an advance at
        once: the occupancy law's inverse is a function of each cell's uniform, so one
        vectorised call gives what cell-by-cell calls would."""
        if not draws:
            return
        seen, unseen, fresh, u = (np.concatenate([d[i] for d in draws]) for i in (3, 4, 5, 6))
        new = np.where(unseen > 0, occupancy_given(u, fresh, np.maximum(unseen, 1.0)), 0.0)
        new = seen + np.minimum(new, unseen)
        at = 0
        for r, v, hit, *_ in draws:
            self.seen_users[r, v, hit] = new[at : at + len(hit)]
            at += len(hit)

    def users(self, r: int) -> tuple[float, float]:
        """Distinct users behind run ``r``'s sessions per version: drawn (``_meet_users``),
        or their expectation without noise (module docstring)."""
        if self.noise:
            return float(self.seen_users[r, 0].sum()), float(self.seen_users[r, 1].sum())
        out = [0.0, 0.0]
        pop = self.population
        on_candidate = self.split_users.get(r)
        for v in (0, 1):
            for c in range(pop.n_cohorts):
                k = self.cohort_sessions[r, v, c]
                g = pop.cohort == c
                if k <= 0 or not g.any():
                    continue
                n = pop.users[g].astype(float)
                if on_candidate is not None:
                    # Under a user split each version's sessions come from its own users.
                    n = on_candidate[g] if v == 1 else n - on_candidate[g]
                w = n * pop.weight[g]
                if w.sum() <= 0:
                    continue
                p = w / w.sum()
                # Each of a group's n users is met by none of k sessions with (1 − p/n)^k.
                with np.errstate(divide="ignore", invalid="ignore"):
                    hit = np.where(n > 0, -np.expm1(k * np.log1p(-p / np.maximum(n, 1.0))), 0.0)
                out[v] += float((n * hit).sum())
        return out[0], out[1]

    def data(self, r: int) -> BusinessData:
        """Run ``r``'s cumulative business data (``Observation.business``)."""

        def pair(a: np.ndarray) -> tuple[float, float]:
            return float(a[r, 0]), float(a[r, 1])

        return BusinessData(
            sessions=pair(self.sessions),
            conversions=pair(self.conversions),
            order_value_sum=pair(self.order_value_sum),
            order_value_sumsq=pair(self.order_value_sumsq),
            engagement_sum=pair(self.engagement_sum),
            engagement_sumsq=pair(self.engagement_sumsq),
            users=self.users(r),
            requests=pair(self.requests),
            errors=pair(self.errors),
        )

    def after_decision(self, r: int, t0: float, duration_s: float, kept: int, rate: RateFunction) -> None:
        """The expected regret over the ``after_promotion`` window [t0, t0 + duration_s)
        of run ``r``, all traffic on version ``kept`` (0 primary, 1 candidate): the
        window's expected sessions (λ's integral per cohort / k) times the per-session gap
        to the better version, with novelty at the midpoints of ``AFTER_PIECES`` equal
        pieces (the midpoint rule; the gap is smooth in t)."""
        if duration_s <= 0:
            self.regret_conversions_after[r] = 0.0
            self.regret_revenue_after[r] = 0.0
            return
        edges = t0 + duration_s * np.arange(AFTER_PIECES + 1) / AFTER_PIECES
        mid = 0.5 * (edges[1:] + edges[:-1])
        requests = np.diff(rate.cumulative(edges))[:, None] * self.model.cohort_share[None, :]
        conv_p, rev_p = self.model.per_session(mid)
        sessions = requests / self.model.k
        for gap, out in ((conv_p, self.regret_conversions_after), (rev_p, self.regret_revenue_after)):
            out[r] = float((sessions * (gap.max(axis=-1) - gap[..., kept])).sum())


class UserSplit:
    """An experiment's user split (``SetWeights.by_user``): each user's id hashes to a
    uniform number, and users below the split go to the candidate, all their requests,
    for the rollout. So at the first split s each activity group of n users has
    Binomial(n, s) users on the candidate; a later split s' > s adds Binomial(n − k,
    (s' − s)/(1 − s)) (the hashes above s are uniform on (s, 1)), and s' < s keeps
    Binomial(k, s'/s) (those below s are uniform on (0, s)): the assignment stays sticky.
    The candidate's share of a cohort's traffic is its users' share of the cohort's
    activity, not exactly the split. Cohorts' users are drawn apart (each group is one
    cohort's users of one activity tier), so the share differs per cohort.

    Args:
        population: the user groups.
        runs: rollouts in the batch.
    """

    def __init__(self, population: Population, runs: int) -> None:
        self.population = population
        self.split = np.zeros(runs)
        self.users = np.zeros((runs, len(population.users)))

    def assign(self, rng: np.random.Generator, r: int, split: float) -> np.ndarray:
        """Run ``r``'s users at split ``split`` (0..1), drawn from its stream ``rng``;
        returns the candidate's share of each cohort's traffic (C,)."""
        pop, old, k = self.population, float(self.split[r]), self.users[r]
        n = pop.users.astype(np.int64)
        if split > old:
            add = (split - old) / (1.0 - old)
            k = k + rng.binomial(n - k.astype(np.int64), min(add, 1.0))
        elif split < old:
            k = rng.binomial(k.astype(np.int64), split / old).astype(float)
        self.split[r], self.users[r] = split, k
        return self.share(r)

    def share(self, r: int) -> np.ndarray:
        """The candidate's share of each cohort's traffic in run ``r`` (C,)."""
        pop = self.population
        on = np.bincount(pop.cohort, weights=self.users[r] * pop.weight, minlength=pop.n_cohorts)
        return np.where(pop.cohort_share > 0, on / np.where(pop.cohort_share > 0, pop.cohort_share, 1.0), 0.0)

    def candidate_population(self, r: int) -> Population:
        """The candidate's users of run ``r`` as a population (its groups with users):
        who its requests can come from (users exposed and affected)."""
        pop, k = self.population, self.users[r]
        g = k > 0
        share = np.bincount(pop.cohort[g], weights=k[g] * pop.weight[g], minlength=pop.n_cohorts)
        return Population(k[g].astype(np.int64), pop.weight[g], pop.cohort[g], share)
