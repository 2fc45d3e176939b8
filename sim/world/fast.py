"""The fast traffic path: whole segments of requests drawn at once.

Between world events (policy ticks, scrapes, fault edges) routing and fault state are
constant, so for each segment, version and cohort:

* each request carries independent marks: a latency bucket and an outcome. The
  canary's outcome couples it to the primary through one uniform U per request:
  ``fail_both`` (U < min(p, p_ref): the primary would have failed it too), ``excess``
  (p_ref <= U < p: what the blast radius counts) or ``ok``;
* marking a Poisson process splits it into independent Poisson processes, so the count
  of each outcome is an independent Poisson(Λ · share · route · P(outcome));
* given those counts, the N requests' latency buckets are independent of their
  outcomes, so the histogram is Multinomial(N, P(bucket)) (summed over cohorts that
  share the latency distribution, a multinomial of their total). Together that is
  exactly the distribution of every (bucket, outcome) cell being an independent
  Poisson, with a handful of draws per segment instead of buckets × outcomes.

Every run draws from its own stream, in an order fixed by its own history, so a run's
result does not depend on the batch it was simulated in; the draws of all runs that
advance together are one compiled call (``sim.world.draws``), and everything else is
computed for all runs of a batch at once. A run's cost does not grow with the request
rate.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.world.business import BusinessLedger
from sim.world.draws import category_order, multinomial, multinomial_runs, normal_sd, poisson_rows
from sim.world.faults import ReleaseModel
from sim.world.noise import Factors, Latent
from sim.world.router import Router, StickyUsers
from sim.world.series import SeriesStore
from sim.world.serving import Ledger
from sim.world.telemetry import Telemetry
from sim.world.traffic import Population, RateFunction


def _pod_shares(q: np.ndarray) -> np.ndarray:
    """Each outcome's split over the pods (R, S, C, P, K) from per-pod outcome
    probabilities ``q`` (R, S, C, P|1, K): a request lands on any pod alike, so an
    outcome's pods are in proportion to their probabilities of it (even where all are 0)."""
    total = q.sum(axis=3, keepdims=True)
    return np.where(total > 0, q / np.where(total > 0, total, 1.0), 1.0 / q.shape[3])


def retried_outcomes(outcome: np.ndarray, ok_fail: np.ndarray, tries: int) -> tuple[np.ndarray, np.ndarray]:
    """A canary request's and a primary request's outcome probabilities when the mesh
    tries a failed request ``tries`` times in all (``MeshRetries.tries_of_failures``).

    Each try fails independently with the version's probability (Istio's default retry
    host predicate, ``previous_hosts``, sends a retry to another pod: a pod's noise does
    not follow the request), so a request fails for its user only when all ``tries`` fail
    (p^tries), and it succeeds after exactly j failed tries with probability p^j (1 − p).

    Args:
        outcome: a canary try's (ok, fail_both, excess) probabilities (..., 3).
        ok_fail: a primary try's (ok, failed) probabilities (..., 2).
        tries: tries of a failing request, >= 1.

    Returns:
        The canary's (ok at the first try, fail_both, excess, ok after 1 .. tries−1
        failed tries) and the primary's (ok at the first try, failed, ok after 1 ..
        tries−1 failed tries): a partition of each request's fate, so marking the
        Poisson arrivals by it gives independent Poisson counts. ``fail_both`` and
        ``excess`` compare the final failures (p^tries against the primary's), as a
        single try's do.
    """
    pc, pr = np.broadcast_arrays(outcome[..., 1] + outcome[..., 2], ok_fail[..., 1])
    qc, qr = pc**tries, pr**tries
    j = np.arange(1, tries)
    after_c = pc[..., None] ** j * (1.0 - pc[..., None])
    after_p = pr[..., None] ** j * (1.0 - pr[..., None])
    final_c = np.stack([1.0 - pc, np.minimum(qc, qr), np.maximum(qc - qr, 0.0)], axis=-1)
    final_p = np.stack([1.0 - pr, qr], axis=-1)
    return np.concatenate([final_c, after_c], axis=-1), np.concatenate([final_p, after_p], axis=-1)


def attempts_seen(cells: np.ndarray, failed: tuple[int, ...], tries: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests by fate (``retried_outcomes``' columns, drawn) as their user sees them and
    as the destination's proxy reports them (every try: Istio's ``reporter="destination"``
    series count each attempt, the source's only the final response).

    Args:
        cells: counts (..., K): ok at the first try, the final failures ``failed``
            (column indexes), then ok after 1 .. tries−1 failed tries.
        failed: the columns of final failures (canary: fail_both and excess; primary:
            failed).
        tries: tries of a failing request.

    Returns:
        ``(final, tries_seen)``, each (..., 1 + len(failed)): the requests (ok, then each
        failure column) and the tries (ok ones, then failed ones: j per request that
        succeeded after j failures, counted with the first failure column, and ``tries``
        per final failure).
    """
    after = cells[..., 1 + len(failed) :]
    ok = cells[..., 0] + after.sum(axis=-1)
    final = np.stack([ok] + [cells[..., c] for c in failed], axis=-1)
    retried = (after * np.arange(1, tries)).sum(axis=-1)
    seen = [ok] + [tries * cells[..., c] for c in failed]
    seen[1] = seen[1] + retried
    return final, np.stack(seen, axis=-1)


class FastTraffic:
    """Draws traffic segment by segment into telemetry and the ledger, for a batch of runs
    (a ``sim.world.serving.Traffic``).

    Args:
        rate: λ(t).
        population: users and cohorts.
        release: fault models.
        router: current routes of every run.
        telemetry: scraped counters to fill.
        states: each run's traffic stream, a state row of ``sim.world.draws`` (R, 4).
        noise: False makes every count its expectation (deterministic tests).
        series: the raw series to fill per version, response code and pod (when a query
            reads them), or None.
        latent: the runs' noise multipliers (``sim.world.noise``), or None for the plain
            Poisson world.
        pods: pods of (primary, canary), for per-pod noise.
        tries: how many times the mesh tries a failing request (``MeshRetries``); 1: no retries.
    """

    def __init__(
        self,
        rate: RateFunction,
        population: Population,
        release: ReleaseModel,
        router: Router,
        telemetry: Telemetry,
        states: np.ndarray,
        noise: bool = True,
        series: SeriesStore | None = None,
        latent: Latent | None = None,
        pods: tuple[int, int] = (1, 1),
        tries: int = 1,
    ) -> None:
        self.tries = tries
        #: Session affinity's cookie holders (None: weighted routing is not sticky; a
        #: router without the attribute, as tests' stubs, has none).
        self.sticky = (
            StickyUsers(len(states), population, router.session_affinity_s, router.session_affinity_primary_s)
            if getattr(router, "session_affinity_s", 0.0) > 0
            else None
        )
        self.rate = rate
        self.population = population
        self.release = release
        self.router = router
        self.telemetry = telemetry
        self.states = states
        self.noise = noise
        self.series = series
        self.latent = latent if latent is not None and latent.model.active else None
        self.pods = series.pods if series is not None else pods
        #: Failed requests have a latency law of their own (a timeout, a fast failure).
        self._error_latency = release.has_error_latency
        self.primary_histogram = telemetry.hist_primary is not None
        #: Draw the primary's requests at all: only when something reads them.
        self.primary_counts = (
            self.primary_histogram or telemetry.reads_primary or (series is not None and series.reads_primary)
        )
        #: The runs' business outcomes (``sim.world.business``; None without ``business:``).
        self.business: BusinessLedger | None = None
        self.t = np.zeros(len(states))
        self.ledger = Ledger(len(states), population.n_cohorts)
        self.accounting = np.ones(len(states), dtype=bool)
        # Load testers sending to the canary, per run: (start, end, requests/s).
        self.loads: list[list[tuple[float, float, float]]] = [[] for _ in range(len(states))]
        #: Whether any run has a load tester (most batches have none: no per-run look then).
        self._loaded = False
        self._rate_cuts = np.array(rate.change_points())
        self._bounds = tuple(float(b) for b in telemetry.bounds_ms)
        self._base_probs = release.base_latency.bucket_probs(self._bounds)
        self._static_probs = np.broadcast_to(self._base_probs, (1, 2, 1, len(self._base_probs)))
        if series is not None:
            m, v = release.base_latency.bucket_moments(self._bounds)
            self._static_moments = (
                np.broadcast_to(m, (1, 2, 1, len(m))),
                np.broadcast_to(v, (1, 2, 1, len(v))),
            )

    def _poisson(self, runs: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """One Poisson draw per cell of ``mean`` (R, M), row i from run ``runs[i]``'s stream.

        A zero mean draws nothing, so a run's stream never depends on cells it does not
        have (e.g. before the first step routes any traffic).
        """
        if not self.noise:
            return mean
        return poisson_rows(self.states, runs, np.ascontiguousarray(mean), np.empty_like(mean))

    def _cuts(self, t0: float, t1: float, scrapes: bool) -> tuple[np.ndarray, bool]:
        """Segment boundaries (t0, scrape times and change points inside, t1), and
        whether every segment falls in a different scrape slot."""
        s = self.telemetry.scrape_s
        k0, k1 = int(t0 // s) + 1, int(np.ceil(t1 / s - 1e-9))
        grid = s * np.arange(k0, k1) if scrapes and k1 > k0 else np.empty(0)
        extra = []
        if self.latent is not None and (not scrapes or self.latent.model.step_s != s):
            # Every latent multiplier is constant over a noise step.
            step = self.latent.model.step_s
            extra.append(step * np.arange(int(t0 // step) + 1, int(np.ceil(t1 / step))))
        if len(self._rate_cuts):
            extra.append(self._rate_cuts[(self._rate_cuts > t0) & (self._rate_cuts < t1)])
        if self.release.faults:
            extra.append(self.release.change_points(t0, t1))
        if extra and sum(len(x) for x in extra):
            inner = np.unique(np.concatenate([grid, *extra]))
            inner = inner[(inner > t0) & (inner < t1)]
            return np.concatenate([[t0], inner, [t1]]), False
        inner = grid[(grid > t0) & (grid < t1)] if len(grid) else grid
        return np.concatenate([[t0], inner, [t1]]), True

    def _laws(self, t: float, cohort: int, code: int):  # noqa: ANN202 - a pair of latency laws
        """The (primary, canary) latency laws at ``t`` of a cohort's requests with response
        code ``code`` (0 ok, 1 failed)."""
        return self.release.latency(t, cohort, failed=bool(code) and self._error_latency)

    def _latency_probs(self, mid: np.ndarray, code: int = 0) -> np.ndarray:
        """Bucket probabilities, broadcastable to (S, version, C, B)."""
        if not self.release.has_latency_faults and not (code and self._error_latency):
            return self._static_probs
        C = self.release.n_cohorts
        probs = np.empty((len(mid), 2, C, len(self._base_probs)))
        for i, t in enumerate(mid):
            for c in range(C):
                for v, d in enumerate(self._laws(float(t), c, code)):
                    probs[i, v, c] = d.bucket_probs(self._bounds)
        return probs

    def _latency_moments(self, mid: np.ndarray, code: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of a latency given its bucket, broadcastable to (S, version, C, B)."""
        if not self.release.has_latency_faults and not (code and self._error_latency):
            return self._static_moments
        C = self.release.n_cohorts
        shape = (len(mid), 2, C, len(self._base_probs))
        mean, var = np.empty(shape), np.empty(shape)
        for i, t in enumerate(mid):
            for c in range(C):
                for v, d in enumerate(self._laws(float(t), c, code)):
                    mean[i, v, c], var[i, v, c] = d.bucket_moments(self._bounds)
        return mean, var

    def _latency_tables(
        self, mid: np.ndarray, code: int, factor: np.ndarray, sums: bool, versions: tuple[int, ...] = (0, 1)
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Per-run bucket probabilities (R, S, version, C|1, P|1, B) of the latency laws
        scaled by ``factor`` (R, S, version, P|1): the noise's multipliers. With ``sums``,
        also the means and variances within buckets (for latency sums). Only ``versions``
        are filled (the others are left undefined: nothing reads them)."""
        R, S, _, P = factor.shape
        varies = self.release.has_latency_faults or (code and self._error_latency)
        C = self.release.n_cohorts if varies else 1
        B = len(self._base_probs)
        probs = np.empty((R, S, 2, C, P, B))
        mean = np.empty_like(probs) if sums else None
        var = np.empty_like(probs) if sums else None
        if not varies and not sums:
            # One law for every segment: one table over all of them (a run's factors often
            # repeat from segment to segment, and the table computes each distinct one once).
            for v in versions:
                probs_v = self.release.base_latency.bucket_probs_table(self._bounds, factor[:, :, v])
                probs[:, :, v, 0] = probs_v.reshape(R, S, P, B)
            return probs, None
        for i, t in enumerate(mid):
            for c in range(C):
                laws = self._laws(float(t), c, code) if varies else (self.release.base_latency,) * 2
                for v in versions:
                    law = laws[v]
                    if mean is None or var is None:
                        probs[:, i, v, c] = law.bucket_probs_table(self._bounds, factor[:, i, v]).reshape(R, P, B)
                        continue
                    table = law.bucket_table(self._bounds, factor[:, i, v].reshape(-1))
                    probs[:, i, v, c] = table[0].reshape(R, P, B)
                    mean[:, i, v, c] = table[1].reshape(R, P, B)
                    var[:, i, v, c] = table[2].reshape(R, P, B)
        return probs, (None if mean is None or var is None else (mean, var))

    def start_load(self, run: int, t: float, rps: float, duration_s: float) -> None:
        """A load tester (e.g. ``hey`` from a webhook) sends ``rps`` to the canary for a while."""
        self.loads[run].append((t, t + duration_s, rps))
        self._loaded = True

    def _synthetic(self, runs: np.ndarray, b: np.ndarray, live: np.ndarray) -> np.ndarray | None:
        """Expected canary requests that are not live users' (R, S, C): mirrored copies of
        the live requests ``live`` (1|R, S, C) a mirror route selects, whichever version
        serves them, and load-tester requests (cohort 0). None when there are none."""
        mirror = self.router.mirror_share(runs)  # (R, C|1)
        has_load = self._loaded and any(self.loads[r] for r in runs.tolist())
        if not has_load and not mirror.any():
            return None
        shape = (len(runs),) + live.shape[1:]
        syn = np.broadcast_to(live * mirror[:, None, :], shape) if mirror.any() else np.zeros(shape)
        if has_load:
            syn = syn.copy()
            for i, r in enumerate(runs):
                for start, end, rps in self.loads[r]:
                    # Overlap of each segment with the load window, times the rate.
                    syn[i, :, 0] += rps * np.clip(np.minimum(b[1:], end) - np.maximum(b[:-1], start), 0.0, None)
        return syn

    def decided(self, run: int) -> None:
        """The rollout promoted: its later traffic is no longer the canary's to account
        (a promoted release's damage is ``after_promotion``'s; ``Traffic.decided``)."""
        self.accounting[run] = False

    def _cohort_means(self, b: np.ndarray, f: Factors | None) -> np.ndarray:
        """Expected live requests per segment and cohort (1|R, S, C): λ's integral over each
        segment of cuts ``b``, times the runs' rate multipliers when noise varies it."""
        cum = self.rate.cumulative(b)
        cohort_lam = ((cum[1:] - cum[:-1])[:, None] * self.population.cohort_share)[None]  # (1, S, C)
        if f is not None and f.rate is not None:
            cohort_lam = cohort_lam * f.rate[..., None]
        return cohort_lam

    def _pod_outcomes(
        self, runs: np.ndarray, p_ref: np.ndarray, p: np.ndarray, f: Factors | None, S: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Outcome probabilities per pod under the noise's error multipliers: the canary's
        (R, S, C, P|1, 3: ok, fail_both, excess) and the primary's (R, S, C, P|1, 2: ok,
        failed); None without error noise.

        A canary request fails on its pod with that pod's probability; it would have
        failed on the primary with the primary's mean over its pods (the request would
        have gone to any of them), which is what ``fail_both`` and ``excess`` compare with.
        """
        latent = self.latent
        if latent is None or ((f is None or f.error is None) and latent.pod_error is None):
            return None
        primary, canary = p_ref, p
        if f is not None and f.error is not None:
            primary = np.minimum(1.0, primary * f.error[..., 0, None])
            canary = np.minimum(1.0, canary * f.error[..., 1, None])
        primary, canary = primary[..., None], canary[..., None]  # (R|1, S|1, C, 1)
        if latent.pod_error is not None:
            m = latent.pod_error[runs]  # (R, 2, P)
            primary = np.minimum(1.0, primary * m[:, None, None, 0, : self.pods[0]])
            canary = np.minimum(1.0, canary * m[:, None, None, 1, : self.pods[1]])
        R, C = len(runs), p.shape[2]
        primary = np.broadcast_to(primary, (R, S, C, primary.shape[3]))
        canary = np.broadcast_to(canary, (R, S, C, canary.shape[3]))
        ref = primary.mean(axis=3, keepdims=True)
        q_c = np.stack([1.0 - canary, np.minimum(canary, ref), np.maximum(canary - ref, 0.0)], axis=-1)
        q_p = np.stack([1.0 - primary, primary], axis=-1)
        return q_c, q_p

    def _latency_factors(
        self,
        runs: np.ndarray,
        f: Factors | None,
        canary_rate: np.ndarray | None,
        primary_rate: np.ndarray | None,
        S: int,
    ) -> np.ndarray | None:
        """The noise's latency multipliers (R, S, version, P|1), or None when none applies."""
        latent = self.latent
        if latent is None or not latent.model.latency_varies:
            return None
        factor = np.ones((len(runs), S, 2))
        if f is not None and f.latency is not None:
            factor = factor * f.latency
        model = latent.model
        if model.load is not None and canary_rate is not None and primary_rate is not None:
            factor[..., 0] *= model.load_factor(primary_rate / self.pods[0])
            factor[..., 1] *= model.load_factor(canary_rate / self.pods[1])
        if latent.pod_latency is None:
            return factor[..., None]
        return factor[..., None] * latent.pod_latency[runs][:, None]

    def _probs(
        self, mid: np.ndarray, code: int, factor: np.ndarray | None, sums: bool, versions: tuple[int, ...] = (0, 1)
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Bucket probabilities of requests with response code ``code`` and, with ``sums``,
        the moments within buckets: shared by the runs (S|1, version, C|1, B), or per run
        (R, S, version, C|1, P|1, B) when the noise scales latency by ``factor`` (then only
        for ``versions``)."""
        if factor is not None:
            return self._latency_tables(mid, code, factor, sums, versions)
        return self._latency_probs(mid, code), (self._latency_moments(mid, code) if sums else None)

    def advance(self, runs: np.ndarray, t1: float) -> None:
        """Serve live traffic of ``runs`` up to ``t1`` under their current routes."""
        t0s = self.t[runs]
        for t0 in np.unique(t0s):  # runs in lockstep share one segment grid
            sel = t0s == t0
            if t0 < t1:
                group = runs[sel]
                self._advance(group, float(t0), t1, self.accounting[group])

    def _advance(self, runs: np.ndarray, t0: float, t1: float, account: np.ndarray) -> None:
        b, unique = self._cuts(t0, t1, scrapes=True)
        self.t[runs] = t1
        R = len(runs)
        mid = 0.5 * (b[1:] + b[:-1])
        f = self.latent.at(runs, mid) if self.latent is not None else None
        cohort_lam = self._cohort_means(b, f)  # (1|R, S, C)
        share = self.router.canary_share(runs)
        mean_c = cohort_lam * share[:, None, :]  # (R, S, C)
        # Session affinity: the sticky runs' live canary requests are drawn user group by
        # user group (``StickyUsers``), then split over outcomes below.
        sticky_rows = np.empty(0, dtype=np.int64)
        if self.sticky is not None:
            self.sticky.sync(runs, self.router.cookie_epoch[runs])
            sticky_rows = np.flatnonzero(self.router.sticky(runs))
        sticky_counts = None
        if len(sticky_rows) and self.sticky is not None:
            lam = cohort_lam if cohort_lam.shape[0] == 1 else cohort_lam[sticky_rows]
            states = self.states if self.noise else None
            sticky_counts = self.sticky.draw(
                states, runs[sticky_rows], b, lam, share[sticky_rows], account[sticky_rows]
            )
            mean_c = np.array(np.broadcast_to(mean_c, (R,) + mean_c.shape[1:]))
            mean_c[sticky_rows] = sticky_counts
        mean_p = np.maximum(cohort_lam - mean_c, 0.0)
        syn = self._synthetic(runs, b, cohort_lam)
        canary_rate = primary_rate = None
        if self.release.has_load_faults or (self.latent is not None and self.latent.model.load is not None):
            # Mirrored and load-test requests load the canary too.
            load = mean_c if syn is None else mean_c + syn
            seconds = np.maximum(np.diff(b), 1e-9)
            canary_rate = load.sum(axis=2) / seconds
            primary_rate = mean_p.sum(axis=2) / seconds
        p_ref, p = self.release.error_probs(mid, canary_rate, primary_rate)  # (R|1, S|1, C)
        pods = self._pod_outcomes(runs, p_ref, p, f, len(mid))
        if pods is None:
            # Outcome probabilities of a canary request: ok, fail_both, excess.
            outcome = np.stack(
                np.broadcast_arrays(1.0 - p, np.minimum(p, p_ref), np.maximum(p - p_ref, 0.0)), axis=-1
            )  # (R|1, S|1, C, 3)
            ok_fail_p = np.stack(np.broadcast_arrays(1.0 - p_ref, p_ref), axis=-1)  # (R|1, S|1, C, 2)
        else:
            outcome, ok_fail_p = pods[0].mean(axis=3), pods[1].mean(axis=3)
        live_c, live_p = outcome, ok_fail_p
        tries = self.tries
        if tries > 1:
            # Live requests are retried by the mesh (mirrored and load-test ones are not:
            # they do not take the VirtualService's routes).
            live_c, live_p = retried_outcomes(outcome, ok_fail_p, tries)
        kc, kp = live_c.shape[-1], live_p.shape[-1]
        shape = (R, len(mid), mean_c.shape[2])
        live_mean = mean_c
        if sticky_counts is not None:
            live_mean = mean_c.copy()
            live_mean[sticky_rows] = 0.0  # drawn as counts: zero means draw nothing here
        parts = [(live_mean[..., None] * live_c).reshape(R, -1)]
        if self.primary_counts:
            parts.append((mean_p[..., None] * live_p).reshape(R, -1))
        if syn is not None:
            # Mirrored and load-test requests meet the canary's faults too; they reach its
            # metrics but no user (responses discarded / synthetic clients).
            parts.append((syn[..., None] * outcome).reshape(R, -1))
        # Zero means draw nothing, so a run's stream never depends on which parts its
        # batch-mates need.
        flat = self._poisson(runs, np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
        m = shape[1] * shape[2]
        cc = flat[:, : kc * m].reshape(shape + (kc,))  # live canary
        at = kc * m
        if self.primary_counts:
            cp = flat[:, at : at + kp * m].reshape(shape + (kp,))
            at += kp * m
        synthetic = None if syn is None else flat[:, at:].reshape(shape + (3,))
        if sticky_counts is not None:
            probs = np.broadcast_to(live_c, shape + (kc,))[sticky_rows]
            if self.noise:
                n_rs = sticky_counts.reshape(len(sticky_rows), -1)
                drawn = multinomial_runs(self.states, runs[sticky_rows], n_rs, probs.reshape(n_rs.shape + (kc,)))
                cc[sticky_rows] = drawn.reshape(sticky_counts.shape + (kc,))
            else:
                cc[sticky_rows] = sticky_counts[..., None] * probs
        business = self.business
        business_inc = None
        if business is not None:
            # Business outcomes of the live requests each version served, as users got them.
            cp_user = cp if tries == 1 else attempts_seen(cp, (1,), tries)[0]
            cc_user = cc if tries == 1 else attempts_seen(cc, (1, 2), tries)[0]
            live_v = np.stack([cp_user.sum(axis=3), cc_user.sum(axis=3)], axis=3)
            err_v = np.stack([cp_user[..., 1:].sum(axis=3), cc_user[..., 1:].sum(axis=3)], axis=3)
            business_inc = business.add(runs, mid, live_v, err_v)
        # What users get (cc: the ledger's) and what the versions' metrics see (every try).
        cc_seen = cc
        if tries > 1:
            cc, cc_seen = attempts_seen(cc, (1, 2), tries)
            if self.primary_counts:
                cp = attempts_seen(cp, (1,), tries)[1]
        factor = self._latency_factors(runs, f, canary_rate, primary_rate, len(mid))
        fails_c = cc[..., 1:]  # (R, S, C, 2)
        slots = self.telemetry.slot_of(b[1:])
        if self.series is not None:
            cells = self._cells(runs, cc_seen, synthetic, cp if self.primary_counts else None, mid, pods, factor)
            self.series.add(runs, slots, cells, business_inc)
            # The per-version counters only when something reads them (a judge, a bound
            # signal): otherwise the series hold everything the queries read.
            if self.telemetry.counted:
                n, err, hist_c, hist_p = self._by_version(cells)
                self.telemetry.add(runs, slots, n, err, hist_c, hist_p, unique)
        else:
            seen = cc_seen if synthetic is None else cc_seen + synthetic
            hist_c = self._version_histogram(runs, seen, 1, mid, None if pods is None else pods[0], factor)
            n_c = seen.sum(axis=(2, 3))
            err_c = seen[..., 1:].sum(axis=(2, 3))
            if self.primary_counts:
                n_p, err_p = cp.sum(axis=(2, 3)), cp[..., 1].sum(axis=2)
                hist_p = (
                    self._version_histogram(runs, cp, 0, mid, None if pods is None else pods[1], factor)
                    if self.primary_histogram
                    else None
                )
            else:
                hist_p = None
                n_p = err_p = np.zeros_like(n_c)
            n = np.stack([n_p, n_c], axis=2)  # (R, S, V)
            err = np.stack([err_p, err_c], axis=2)
            self.telemetry.add(runs, slots, n, err, hist_c, hist_p, unique)
        acc = runs[account]
        if len(acc):
            self.ledger.requests[acc] += cc[account].sum(axis=(1, 3))
            self.ledger.errors[acc] += fails_c[account].sum(axis=(1, 3))
            self.ledger.excess[acc] += fails_c[account][..., 1].sum(axis=1)
            if sticky_counts is not None and self.sticky is not None:
                on = sticky_rows[account[sticky_rows]]
                self.sticky.excess[runs[on]] += fails_c[on][..., 1].sum(axis=1)

    def _by_version(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Requests and errors (R, S, version) and the canary's (and primary's, when kept)
        latency histograms (R, S, B) of the cells, summed over routes, codes and pods."""
        buckets = len(self._base_probs)
        if not self.noise:
            # Expectations are not whole numbers: their sums keep numpy's order.
            by_route = cells.sum(axis=(3, 4))  # (R, S, route, Q)
            by_version = np.stack([by_route[:, :, 0], by_route[:, :, 1] + by_route[:, :, 2]], axis=2)
            errors = cells[:, :, :, 1, :, 0].sum(axis=3)
            err_v = np.stack([errors[:, :, 0], errors[:, :, 1] + errors[:, :, 2]], axis=2)
            hist_pv = by_version[:, :, 0, 1 : 1 + buckets] if self.primary_histogram else None
            return by_version[..., 0], err_v, by_version[:, :, 1, 1 : 1 + buckets], hist_pv
        R, S = cells.shape[:2]
        n, err = np.empty((R, S, 2)), np.empty((R, S, 2))
        hist_c, hist_p = np.empty((R, S, buckets)), np.empty((R, S, buckets))
        _version_sums(cells, buckets, n, err, hist_c, hist_p)
        return n, err, hist_c, hist_p if self.primary_histogram else None

    def _cells(
        self,
        runs: np.ndarray,
        live: np.ndarray,
        synthetic: np.ndarray | None,
        primary: np.ndarray | None,
        mid: np.ndarray,
        pods: tuple[np.ndarray, np.ndarray] | None,
        factor: np.ndarray | None,
    ) -> np.ndarray:
        """Increments per run, segment, route, response code, pod and quantity (count,
        latency buckets, latency sum in ms): (R, S, 3, 2, P, B + 2).

        Routes: the primary; the canary through its own Service (its live requests, and
        its mirrored and smoke-test ones); the canary through the stable Service (its live
        requests instead, when the stable Service selects it: ``SeriesStore.live_via_stable``).
        Requests of a code split over the version's pods as a multinomial with equal
        shares (kube-proxy and mesh load balancing spread them evenly), or, under per-pod
        error noise, with each outcome's shares of the pods' probabilities (a request
        lands on any pod alike, then fails with that pod's probability); each cell's
        latencies fall in buckets as Multinomial(n, P(bucket)) (independent marks, as for
        the whole version, so summing the cells gives back the version's histogram law).
        A cell's latency sum is, given its bucket counts, the sum of each bucket's count
        times the mean latency within the bucket, plus a normal deviation with the summed
        within-bucket variances: exact in mean and variance, and cheap at any request rate
        (drawing every latency would make a run's cost grow with its traffic).
        """
        store = self.series
        assert store is not None
        R, S = live.shape[:2]
        B = len(self._base_probs)
        cells = np.zeros((R, S, 3, 2, max(store.pods), B + 2))
        # A latency sum needs the law's moments within each bucket (and a normal draw):
        # only when a query reads a ``_sum`` series.
        versions = (0, 1) if primary is not None else (1,)
        ok = self._probs(mid, 0, factor, store.reads_sum, versions)
        # Failed requests share the law of successful ones unless the baseline gives them theirs.
        codes = [ok, self._probs(mid, 1, factor, store.reads_sum, versions) if self._error_latency else ok]
        # Pods share a version's outcomes evenly unless their error probabilities differ.
        pod_noise = pods is not None and self.latent is not None and self.latent.pod_error is not None
        shares_c = _pod_shares(pods[0]) if pods is not None and pod_noise else None
        if store.live_via_stable:
            self._route_cells(runs, cells[:, :, 2], live, 1, codes, shares_c)
            if synthetic is not None:
                self._route_cells(runs, cells[:, :, 1], synthetic, 1, codes, shares_c)
        else:
            seen = live if synthetic is None else live + synthetic
            self._route_cells(runs, cells[:, :, 1], seen, 1, codes, shares_c)
        if primary is not None:
            ok_bad = np.stack([primary[..., 0], np.zeros_like(primary[..., 0]), primary[..., 1]], axis=-1)
            shares_p = None
            if pods is not None and pod_noise:
                q = pods[1]
                shares_p = _pod_shares(np.stack([q[..., 0], q[..., 1], q[..., 1]], axis=-1))
            self._route_cells(runs, cells[:, :, 0], ok_bad, 0, codes, shares_p)
        return cells

    def _route_cells(
        self,
        runs: np.ndarray,
        out: np.ndarray,
        outcomes: np.ndarray,
        v: int,
        codes: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]],
        shares: np.ndarray | None,
    ) -> None:
        """One route's cells into ``out`` (R, S, 2, P, B + 2): requests by outcome (R, S, C,
        3: ok, then two kinds of failure) served by version ``v``'s pods, with each
        response code's latency bucket probabilities and, when latency sums are drawn, its
        means and variances within the buckets (None: the sums stay 0); ``shares``: each
        outcome's split over the pods (R, S, C, P, 3), None for even shares."""
        store = self.series
        assert store is not None
        R, S = outcomes.shape[:2]
        B = len(self._base_probs)
        pods = store.pods[v]
        for code, cols in ((0, (0,)), (1, (1, 2))):
            probs, moments = codes[code]
            if shares is None:
                n = outcomes[..., 0] if code == 0 else outcomes[..., 1:].sum(axis=3)  # (R, S, C)
                per_pod = self._split_pods(runs, n, pods)  # (R, S, C, pods)
            else:
                per_pod = np.sum(
                    [self._split_pods(runs, outcomes[..., o], pods, shares[..., :pods, o]) for o in cols], axis=0
                )
            run_probs = probs.ndim == 6  # per run: (R, S, version, C|1, P|1, B)
            pv = probs[:, :, v] if run_probs else probs[:, v]
            c_axis = 2 if run_probs else 1
            if pv.shape[c_axis] == 1:
                # Every cohort has the same latency: one histogram of their total.
                per_pod = per_pod.sum(axis=2, keepdims=True)
            Cc = per_pod.shape[2]
            flat_n = per_pod.reshape(R, S * Cc * pods)
            k_probs: np.ndarray = (
                np.broadcast_to(pv[:, :, :, :pods], (R, S, Cc, pods, B)).reshape(R, S * Cc * pods, B)
                if run_probs
                else np.broadcast_to(pv[:, :, None, :], (S, Cc, pods, B)).reshape(S * Cc * pods, B)
            )
            # Shared probabilities repeat over pods (and segments or cohorts alike): their
            # categories' order is sorted once per distinct row.
            k_order = (
                None
                if run_probs or not self.noise
                else np.broadcast_to(category_order(pv)[:, :, None, :], (S, Cc, pods, B)).reshape(S * Cc * pods, B)
            )
            hist = self._draw_histogram(runs, flat_n, k_probs, k_order).reshape(R, S, Cc, pods, B)
            out[:, :, code, :pods, 0] = per_pod.sum(axis=2)
            out[:, :, code, :pods, 1 : 1 + B] = hist.sum(axis=2)
            if moments is None:
                continue
            if run_probs:
                m = np.broadcast_to(moments[0][:, :, v, :, :pods], (R, S, Cc, pods, B))
                w = np.broadcast_to(moments[1][:, :, v, :, :pods], (R, S, Cc, pods, B))
            else:
                mv, vv = moments[0][:, v], moments[1][:, v]
                m = np.broadcast_to(mv[:, :Cc][:, :, None, :], (S, Cc, pods, B))
                w = np.broadcast_to(vv[:, :Cc][:, :, None, :], (S, Cc, pods, B))
            sd2 = (hist * w).sum(axis=(2, 4))
            total = (hist * m).sum(axis=(2, 4))  # (R, S, pods)
            if self.noise:
                total = total + normal_sd(self.states, runs, np.sqrt(sd2).reshape(R, -1)).reshape(R, S, pods)
            # A latency sum is never negative: the normal's far tail is cut at zero.
            out[:, :, code, :pods, 1 + B] = np.maximum(total, 0.0)

    def _draw_histogram(
        self, runs: np.ndarray, n: np.ndarray, probs: np.ndarray, order: np.ndarray | None = None
    ) -> np.ndarray:
        """Multinomial(n, probs) for ``n`` (R, K) over probabilities shared by the runs
        (K, B) or each run's own (R, K, B); expectations without noise. ``order``: the
        shared probabilities' ``category_order``, when the caller has it."""
        if not self.noise:
            return n[..., None] * probs
        if probs.ndim == 3:
            return multinomial_runs(self.states, runs, n, probs)
        return multinomial(self.states, runs, n, probs, order)

    def _split_pods(self, runs: np.ndarray, n: np.ndarray, pods: int, shares: np.ndarray | None = None) -> np.ndarray:
        """Requests (R, S, C) spread over ``pods`` pods, evenly or by ``shares`` (R, S, C,
        pods, summing to 1): (R, S, C, pods)."""
        if pods == 1:
            return n[..., None]
        R, S, C = n.shape
        if shares is not None:
            if not self.noise:
                return n[..., None] * shares
            return multinomial_runs(self.states, runs, n.reshape(R, S * C), shares.reshape(R, S * C, pods)).reshape(
                R, S, C, pods
            )
        if not self.noise:
            return np.repeat(n[..., None] / pods, pods, axis=3)
        even = np.full((S * C, pods), 1.0 / pods)
        # Equal shares: drawn pod by pod in order (``category_order`` of equal probabilities).
        in_order = np.broadcast_to(np.arange(pods), (S * C, pods))
        return multinomial(self.states, runs, n.reshape(R, S * C), even, in_order).reshape(R, S, C, pods)

    def _version_histogram(
        self,
        runs: np.ndarray,
        outcomes: np.ndarray,
        v: int,
        mid: np.ndarray,
        pod_outcomes: np.ndarray | None,
        factor: np.ndarray | None,
    ) -> np.ndarray:
        """Latency histogram (R, S, B) of version ``v``'s requests by outcome (R, S, C, K:
        ok first, then failures).

        With noise on latency or a latency law for failed requests, each response code is
        drawn apart from the mixture of the version's pods' laws, weighted by that code's
        share of each pod (a pod that fails more holds more of the failed requests)."""
        if factor is None and not self._error_latency:
            return self._histogram(runs, outcomes.sum(axis=3), self._latency_probs(mid)[:, v])
        R, S, C = outcomes.shape[:3]
        B = len(self._base_probs)
        hist = np.zeros((R, S, B))
        ok_probs = None
        for code in (0, 1):
            n = outcomes[..., 0] if code == 0 else outcomes[..., 1:].sum(axis=3)
            if code == 0 or self._error_latency or ok_probs is None:
                probs, _ = self._probs(mid, code, factor, False, (v,))
            else:  # failed requests share the law of successful ones
                probs = ok_probs
            ok_probs = probs
            if probs.ndim != 6:
                hist += self._histogram(runs, n, probs[:, v])
                continue
            pv = probs[:, :, v, :, : self.pods[v]]  # (R, S, C|1, P, B)
            P = pv.shape[3]
            if pod_outcomes is not None and P > 1:
                q = pod_outcomes[..., 0] if code == 0 else pod_outcomes[..., 1:].sum(axis=-1)  # (R, S, C, P)
                total = q.sum(axis=3, keepdims=True)
                w = np.where(total > 0, q / np.where(total > 0, total, 1.0), 1.0 / P)
            else:
                w = np.full((R, S, C, P), 1.0 / P)
            mixture = (np.broadcast_to(pv, (R, S, C, P, B)) * w[..., None]).sum(axis=3)  # (R, S, C, B)
            hist += (
                self._draw_histogram(runs, n.reshape(R, S * C), mixture.reshape(R, S * C, B))
                .reshape(R, S, C, B)
                .sum(axis=2)
            )
        return hist

    def _histogram(self, runs: np.ndarray, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Latency histogram (R, S, B) of ``n`` requests per run, segment and cohort
        (R, S, C), given bucket probabilities (S|1, C|1, B)."""
        R, S, C = n.shape
        B = probs.shape[-1]
        if probs.shape[1] == 1:
            # Every cohort has the same latency: one multinomial of their total.
            n, C = n.sum(axis=2, keepdims=True), 1
        k_probs = np.broadcast_to(probs, (S, C, B)).reshape(S * C, B)
        return self._draw_histogram(runs, n.reshape(R, S * C), k_probs).reshape(R, S, C, B).sum(axis=2)

    def after_promotion(self, run: int, t0: float, duration_s: float) -> None:
        """Damage of a promoted release: all live traffic on the new version for ``duration_s``."""
        self.after_promotion_many(np.array([run]), t0, duration_s)

    def after_promotion_many(self, runs: np.ndarray, t0: float, duration_s: float) -> None:
        """``after_promotion`` of several runs promoted at the same ``t0``, in one pass:
        each run draws from its own stream, so the result is the same as one by one."""
        if duration_s <= 0 or not len(runs):
            return
        b, _ = self._cuts(t0, t0 + duration_s, scrapes=False)
        mid = 0.5 * (b[1:] + b[:-1])
        f = self.latent.at(runs, mid) if self.latent is not None else None
        cohort_lam = self._cohort_means(b, f)  # (1, S, C)
        rate = None
        if self.release.has_load_faults:
            rate = cohort_lam.sum(axis=2) / np.maximum(np.diff(b), 1e-9)
        # Against the primary serving the same traffic, had it not been replaced.
        p_ref, p = self.release.error_probs(mid, rate, rate)
        pods = self._pod_outcomes(runs, p_ref, p, f, len(mid))
        if self.tries > 1:
            # Failing requests are retried (the same VirtualService after promotion).
            pc = p if pods is None else pods[0][..., 1:].sum(axis=-1).mean(axis=3)
            pr = p_ref if pods is None else pods[1][..., 1].mean(axis=3)
            excess_p = np.maximum(pc**self.tries - pr**self.tries, 0.0)
        else:
            excess_p = np.maximum(p - p_ref, 0.0) if pods is None else pods[0][..., 2].mean(axis=3)
        # Requests that did not fail in excess, and excess failures: independent Poisson.
        R = len(runs)
        cohort_lam = np.broadcast_to(cohort_lam, (R,) + cohort_lam.shape[1:])
        excess_p = np.broadcast_to(excess_p, cohort_lam.shape)
        # Per run: (2, S, C) flattened, the layout one run's draws always had.
        mean = np.stack([cohort_lam * (1.0 - excess_p), cohort_lam * excess_p], axis=1).reshape(R, -1)
        draws = self._poisson(runs, mean).reshape((R, 2) + cohort_lam.shape[1:])
        self.ledger.after_requests[runs] += draws.sum(axis=(1, 2))
        self.ledger.after_excess[runs] += draws[:, 1].sum(axis=1)

    def users_counts(self) -> None:
        """None: the fast path draws counts, not users; the world counts them from the ledger."""
        return None


@nb.njit(cache=True)
def _version_sums(cells, n_buckets, n, err, hist_c, hist_p):  # pragma: no cover - compiled
    """Per-version sums of cells (R, S, 3, 2, P, Q) into ``n``, ``err`` (R, S, 2) and the
    canary's and primary's latency buckets ``hist_c``, ``hist_p`` (R, S, n_buckets):
    route 0 is the primary's, routes 1 and 2 the canary's; code 1 counts as errors.

    The speed device of the per-version counters that only judged policies read: one pass
    over each cell's row with the buckets innermost (contiguous, vectorised), where
    numpy's ``sum(axis=(3, 4))`` over the six-axis cells, the ``np.stack`` of the routes
    and the strided slices it left for ``Telemetry.add`` cost four times as much. The
    latency-sum column (past the buckets) is not read. Cells hold whole numbers (drawn
    counts), so summing in this order gives numpy's results exactly."""
    R, S, routes, codes, pods = cells.shape[:5]
    for r in range(R):
        for s in range(S):
            for v in range(2):
                n[r, s, v] = 0.0
                err[r, s, v] = 0.0
            for q in range(n_buckets):
                hist_c[r, s, q] = 0.0
                hist_p[r, s, q] = 0.0
            for route in range(routes):
                v = 0 if route == 0 else 1
                h = hist_p if v == 0 else hist_c
                for c in range(codes):
                    for p in range(pods):
                        x = cells[r, s, route, c, p, 0]
                        n[r, s, v] += x
                        if c == 1:
                            err[r, s, v] += x
                        for q in range(n_buckets):
                            h[r, s, q] += cells[r, s, route, c, p, 1 + q]
