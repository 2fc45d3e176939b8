"""The per-request reference mode: every request is a simpy event.

Slow on purpose. It exists to prove the fast path right: the same scenario served
request by request — arrivals of a non-homogeneous Poisson process by thinning, a user
drawn by activity, a route drawn from the router's current weight, one uniform that
decides the outcome on both versions, a latency sampled from the version's law for
that outcome — must agree in distribution with the fast path's bulk draws. It writes the
same telemetry and ledger and knows its users by id.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from sim.world.business import BusinessLedger, UserSplit
from sim.world.faults import ReleaseModel
from sim.world.noise import Factors, Latent
from sim.world.router import Router
from sim.world.series import SeriesStore
from sim.world.serving import Ledger
from sim.world.telemetry import CANARY, PRIMARY, Telemetry
from sim.world.traffic import Population, RateFunction

_CHUNK = 4096  # random numbers drawn ahead, a chunk at a time


class ExactTraffic:
    """One run's traffic, request by request (a ``sim.world.serving.Traffic``, as ``FastTraffic``).

    Its requests are events of its own simpy environment, run up to each tick by
    ``advance``.

    Args:
        rate: λ(t).
        population: users and cohorts.
        release: fault models.
        router: current routes (run 0).
        telemetry: scraped counters to fill.
        rngs: one generator (this mode simulates one run).
        noise: ignored: requests are always random here.
        series: the raw series to fill, or None.
        latent: the run's noise multipliers (``sim.world.noise``), or None.
        pods: pods of (primary, canary), for per-pod noise.
        tries: how many times the mesh tries a failing live request; 1: no retries.
    """

    def __init__(
        self,
        rate: RateFunction,
        population: Population,
        release: ReleaseModel,
        router: Router,
        telemetry: Telemetry,
        rngs: Sequence[np.random.Generator],
        noise: bool = True,
        series: SeriesStore | None = None,
        latent: Latent | None = None,
        pods: tuple[int, int] = (1, 1),
        tries: int = 1,
    ) -> None:
        self.tries = tries
        #: Session affinity: each user's canary cookie (its epoch and expiry).
        #: Session affinity configured (a router without the attribute, as tests' stubs, has none).
        self._affinity = getattr(router, "session_affinity_s", 0.0) > 0
        self.cookies: dict[int, tuple[int, float]] = {}
        #: ... and the primary's (``primaryCookieName``): its expiry.
        self.primary_cookies: dict[int, float] = {}
        self.env = env = simpy.Environment()
        self.rate = rate
        self.population = population
        self.release = release
        self.router = router
        self.telemetry = telemetry
        self.rng = rngs[0]
        self.t = np.zeros(1)
        #: The run's business outcomes (``sim.world.business``; None without ``business:``),
        #: from the live requests each version served per cohort since the last advance.
        self.business: BusinessLedger | None = None
        #: An experiment's user split (set by the world), or None.
        self.user_split: UserSplit | None = None
        self._group = 0
        self._live = np.zeros((1, 1, population.n_cohorts, 2))
        self._failed = np.zeros_like(self._live)
        self.ledger = Ledger(1, population.n_cohorts)
        self.accounting = True
        self.exposed: set[int] = set()
        self.affected: set[int] = set()
        self._bounds = telemetry.bounds_ms
        # Users laid out group after group: group g holds ids offset[g] .. offset[g+1]-1.
        self._offset = np.concatenate([[0], np.cumsum(population.users)])
        share = population.users * population.weight
        self._group_cdf = np.cumsum(share / share.sum())
        self._buf = np.empty(0)
        self._pos = 0
        self.loads: list[tuple[float, float, float]] = []
        self.series = series
        self.latent = latent if latent is not None and latent.model.active else None
        self.pods = series.pods if series is not None else pods
        #: A request's pod matters before its outcome (per-pod noise): drawn first.
        self._pod_first = self.latent is not None and (
            self.latent.pod_error is not None or self.latent.pod_latency is not None
        )
        self._cached: tuple[tuple[int, float], Factors] | None = None
        #: Cells' increments per scrape slot not yet handed to the series store.
        self._pending: dict[int, np.ndarray] = {}
        self._next_slot = 1
        env.process(self._arrivals())

    def _u(self) -> float:
        """The next uniform of this run's stream (drawn in chunks for speed)."""
        if self._pos >= len(self._buf):
            self._buf, self._pos = self.rng.random(_CHUNK), 0
        self._pos += 1
        return float(self._buf[self._pos - 1])

    def _user(self) -> tuple[int, int]:
        g = min(int(np.searchsorted(self._group_cdf, self._u(), side="right")), len(self._group_cdf) - 1)
        uid = int(self._offset[g] + min(int(self._u() * self.population.users[g]), self.population.users[g] - 1))
        self._group = g
        return uid, int(self.population.cohort[g])

    def _arrivals(self):
        # Thinning: candidates at the peak rate, each kept with probability λ(t)/peak.
        peak = self.rate.max_rate(0.0, float("inf"))
        if peak <= 0:
            return
        if self.latent is None or self.latent.rate is None:
            while True:
                yield self.env.timeout(-np.log(1.0 - self._u()) / peak)
                now = self.env.now
                if self._u() * peak < float(self.rate.rate(now)):
                    self._serve(now)
        # The noise multiplies λ by a constant per noise step: thinning within each step
        # at that step's peak, restarted at its end (exponential gaps are memoryless).
        while True:
            now = self.env.now
            k = int(self.latent.steps(np.array([now]))[0])
            end = (k + 1) * self.latent.model.step_s
            m = self.latent.rate_at(0, k)
            gap = -np.log(1.0 - self._u()) / (peak * m) if m > 0 else np.inf
            if now + gap >= end:
                yield self.env.timeout(end - now)
                continue
            yield self.env.timeout(gap)
            now = self.env.now
            if self._u() * peak < float(self.rate.rate(now)):
                self._serve(now)

    def _loads(self, now: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The canary's and the primary's expected request rates now, for load faults: the
        canary's live, mirrored and load-test requests; the primary's live ones."""
        if not self.release.has_load_faults and (self.latent is None or self.latent.model.load is None):
            return None, None
        run = np.array([0])
        live = float(self.rate.rate(now)) * self._rate_factor(now) * self.population.cohort_share
        share = self.router.canary_share(run)[0]
        mirror = self.router.mirror_share(run)[0]
        tests = sum(rps for start, end, rps in self.loads if start <= now < end)
        primary = float((live * (1 - share)).sum())
        canary = float((live * share).sum() + (live * mirror).sum() + tests)
        return np.array([[canary]]), np.array([[primary]])

    def _factors(self, now: float) -> Factors:
        """The noise's multipliers now: constant over a noise step (and a canary's ready
        time), so computed once per step rather than per request."""
        latent = self.latent
        assert latent is not None
        k = int(latent.steps(np.array([now]))[0])
        key = (k, float(latent.ready[0]))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, latent.at(np.array([0]), np.array([(k + 0.5) * latent.model.step_s])))
        return self._cached[1]

    def _rate_factor(self, now: float) -> float:
        """The noise's multiplier of the request rate now."""
        if self.latent is None or self.latent.rate is None:
            return 1.0
        return self.latent.rate_at(0, int(self.latent.steps(np.array([now]))[0]))

    def _error_probs(self, now: float, cohort: int, v: int, pod: int) -> tuple[float, float]:
        """Error probabilities now: the primary's mean over its pods (what a canary request
        is compared with) and that of version ``v``'s pod ``pod`` (``_noisy``)."""
        p_ref, p = self.release.error_probs(np.array([now]), *self._loads(now))
        return self._noisy(now, float(p_ref[0, 0, cohort]), float(p[0, 0, cohort]), v, pod)

    def _noisy(self, t: float, primary: float, canary: float, v: int, pod: int) -> tuple[float, float]:
        """The versions' error probabilities at ``t`` under the noise's multipliers
        (``FastTraffic._pod_outcomes`` states the law): the primary's mean over its pods,
        and that of version ``v``'s pod ``pod``."""
        latent = self.latent
        if latent is not None:
            f = self._factors(t)
            if f.error is not None:
                primary = min(1.0, primary * float(f.error[0, 0, 0]))
                canary = min(1.0, canary * float(f.error[0, 0, 1]))
            if latent.pod_error is not None:
                m = latent.pod_error[0]
                pods = np.minimum(1.0, primary * m[0, : self.pods[0]])
                return float(pods.mean()), min(1.0, canary * float(m[1, pod])) if v else float(pods[pod])
        return primary, canary if v else primary

    def _latency_factor(self, now: float, v: int, pod: int) -> float:
        """The noise's latency multiplier now of version ``v``'s pod ``pod``."""
        latent = self.latent
        if latent is None or not latent.model.latency_varies:
            return 1.0
        f = self._factors(now)
        factor = 1.0 if f.latency is None else float(f.latency[0, 0, v])
        if latent.model.load is not None:
            canary, primary = self._loads(now)
            assert canary is not None and primary is not None
            rate = float((canary if v else primary)[0, 0])
            factor *= float(latent.model.load_factor(np.array(rate / self.pods[v])))
        if latent.pod_latency is not None:
            factor *= float(latent.pod_latency[0, v, pod])
        return factor

    def _pod(self, v: int) -> int:
        pods = self.pods[v]
        return min(int(self._u() * pods), pods - 1) if pods > 1 else 0

    def _record(
        self, now: float, cohort: int, canary: bool, u: float, synthetic: bool = False
    ) -> tuple[bool, float, float]:
        """One request's telemetry: outcome from ``u``, a latency draw. Returns whether it
        failed, the primary's error probability (mean over its pods) and that of the pod
        that served it. ``synthetic``: a mirrored or load-test request (it addresses the
        canary's Service)."""
        v = CANARY if canary else PRIMARY
        pod = self._pod(v) if self._pod_first else None
        ref, own = self._error_probs(now, cohort, v, pod or 0)
        failed = u < own
        # The outcome is drawn first (from u), then a latency from that outcome's law.
        lat_p, lat_c = self.release.latency(now, cohort, failed)
        dist = lat_c if canary else lat_p
        factor = self._latency_factor(now, v, pod or 0)
        if factor != 1.0:
            dist = dist.scaled(factor)
        latency = float(dist.sample(self.rng))
        bucket = int(np.searchsorted(self._bounds, latency, side="left"))  # le semantics
        slot = int(self.telemetry.slot_of(np.array([now]))[0])
        tel = self.telemetry
        tel.ensure(slot)
        tel.n[0, slot, v] += 1
        tel.err[0, slot, v] += failed
        if canary:
            tel.hist[0, slot, bucket] += 1
        elif tel.hist_primary is not None:
            tel.hist_primary[0, slot, bucket] += 1
        if self.series is not None:
            live_via_stable = canary and not synthetic and self.series.live_via_stable
            self._cell(slot, 2 if live_via_stable else v, int(failed), bucket, latency, pod)
        return failed, ref, own

    def _cell(self, slot: int, route: int, code: int, bucket: int, latency_ms: float, pod: int | None) -> None:
        """One request into its cell (route as ``SeriesStore.add``): its pod (drawn
        uniformly, the load balancer, unless per-pod noise drew it first), its count,
        bucket and latency."""
        store = self.series
        assert store is not None
        if pod is None:
            pod = self._pod(min(route, 1))
        cells = self._pending.get(slot)
        if cells is None:
            cells = self._pending[slot] = np.zeros((3, 2, max(store.pods), store.n_quantities))
        cells[route, code, pod, 0] += 1
        cells[route, code, pod, 1 + bucket] += 1
        cells[route, code, pod, -1] += latency_ms

    def _flush(self, t1: float) -> None:
        """Hand every slot up to ``t1``'s to the series store, empty ones too (a scrape of
        a quiet slot still records every live series)."""
        store = self.series
        assert store is not None
        last = int(self.telemetry.slot_of(np.array([t1]))[0])
        if last < self._next_slot:
            return
        slots = np.arange(self._next_slot, last + 1)
        empty = np.zeros((3, 2, max(store.pods), store.n_quantities))
        cells = np.stack([self._pending.pop(int(k), empty) for k in slots])[None]
        store.add(np.array([0]), slots, cells)
        # The last slot may be partial: later requests of it are added on top next time.
        self._next_slot = last

    def _serve(self, now: float) -> None:
        uid, cohort = self._user()
        run = np.array([0])
        if self.user_split is not None and self.router.by_user[0]:
            # A user split: the users of a group are alike, so the candidate's k of them
            # (``UserSplit``) are its first k ids; a user's requests all go one way.
            g = self._group
            canary = uid - int(self._offset[g]) < self.user_split.users[0, g]
        elif self._affinity and self.router.sticky(run)[0]:
            canary = self._sticky_route(uid, cohort, now)
        else:
            canary = self._u() < float(self.router.canary_share(run)[0, cohort])
        u = self._u()
        if self.tries > 1:
            failed, excess = self._tried(now, cohort, canary, u)
        else:
            failed, ref, own = self._record(now, cohort, canary, u)
            excess = ref <= u < own
        mirror = float(self.router.mirror_share(run)[0, cohort])
        if mirror > 0 and self._u() < mirror:
            # A mirrored copy (of a request either version served, Istio's ``mirror``): the
            # canary serves it too (its own outcome), nobody sees it.
            self._record(now, cohort, True, self._u(), synthetic=True)
        if self.business is not None:
            self._live[0, 0, cohort, int(canary)] += 1
            self._failed[0, 0, cohort, int(canary)] += failed
        if canary and self.accounting:
            self.ledger.requests[0, cohort] += 1
            self.ledger.errors[0, cohort] += failed
            self.ledger.excess[0, cohort] += excess
            self.exposed.add(uid)
            if excess:
                self.affected.add(uid)

    def _sticky_route(self, uid: int, cohort: int, now: float) -> bool:
        """Session affinity: a user holding the current canary cookie goes to the canary,
        one holding the primary's (``primaryCookieName``) to the primary; any other
        request is routed by weight and gets the cookie of the version it reached
        (``Max-Age``: the router's ``session_affinity_s``, the primary's
        ``session_affinity_primary_s``). The routes are tried in Flagger's order: sticky
        canary, sticky primary, weighted."""
        epoch = int(self.router.cookie_epoch[0])
        held = self.cookies.get(uid)
        if held is not None and held[0] == epoch and now < held[1]:
            return True
        if now < self.primary_cookies.get(uid, -np.inf):
            return False  # the primary's cookie (``primaryCookieName``) pins it there
        canary = self._u() < float(self.router.canary_share(np.array([0]))[0, cohort])
        if canary:
            self.cookies[uid] = (epoch, now + self.router.session_affinity_s)
        elif self.router.session_affinity_primary_s > 0:
            self.primary_cookies[uid] = now + self.router.session_affinity_primary_s
        return canary

    def _tried(self, now: float, cohort: int, canary: bool, u: float) -> tuple[bool, bool]:
        """A live request the mesh retries: tried (each try a request the version's proxy
        reports, on a pod of its own) until one succeeds or ``tries`` have failed.
        Returns whether it failed for its user and, for the canary, whether in excess:
        given that all its tries failed, the primary's would all have failed too with
        probability min(qc, qr) / qc (qc, qr: the versions' chances that all tries fail),
        the coupling ``sim.world.fast.retried_outcomes`` draws from."""
        for i in range(self.tries):
            failed, ref, _ = self._record(now, cohort, canary, u if i == 0 else self._u())
            if not failed:
                return False, False
        if not canary:
            return True, False
        qc = self._version_error(now, cohort) ** self.tries
        qr = ref**self.tries
        return True, self._u() * qc >= min(qc, qr)

    def _version_error(self, now: float, cohort: int) -> float:
        """The canary's error probability now, over its pods (a retry's pod is drawn anew)."""
        if self.latent is None or self.latent.pod_error is None:
            return self._error_probs(now, cohort, CANARY, 0)[1]
        return float(np.mean([self._error_probs(now, cohort, CANARY, k)[1] for k in range(self.pods[1])]))

    def _load_test(self, end: float, rps: float):
        """A load tester's requests: Poisson at ``rps`` until ``end``, to the canary only."""
        while True:
            yield self.env.timeout(-np.log(1.0 - self._u()) / rps)
            if self.env.now >= end:
                return
            self._record(self.env.now, 0, True, self._u(), synthetic=True)

    # -- the Traffic protocol -------------------------------------------------------------

    def start_load(self, run: int, t: float, rps: float, duration_s: float) -> None:
        self.loads.append((t, t + duration_s, rps))
        self.env.process(self._load_test(t + duration_s, rps))

    def advance(self, runs: np.ndarray, t1: float) -> None:
        """Serve the requests that arrive before ``t1``, one event at a time."""
        t0 = float(self.t[0])
        if t1 > self.env.now:
            self.env.run(until=t1)
        self.t[:] = t1
        if self.business is not None and t1 > t0:
            # The same law as the fast path's, from this tick's live requests per version
            # and cohort (novelty at the tick interval's midpoint).
            self.business.add(np.array([0]), np.array([0.5 * (t0 + t1)]), self._live, self._failed)
            self._live[:] = 0.0
            self._failed[:] = 0.0
        if self.series is not None:
            self._flush(t1)

    def decided(self, run: int) -> None:
        self.accounting = False

    def after_promotion(self, run: int, t0: float, duration_s: float) -> None:
        """All traffic on the new version for ``duration_s``, request by request."""
        t, peak = t0, self.rate.max_rate(0.0, float("inf"))
        while peak > 0:
            m = self._rate_factor(t)
            gap = -np.log(1.0 - self._u()) / (peak * m) if m > 0 else np.inf
            if self.latent is not None and self.latent.rate is not None:
                end = (int(self.latent.steps(np.array([t]))[0]) + 1) * self.latent.model.step_s
                if t + gap >= end:  # the next noise step, with its own rate (memoryless gaps)
                    t = end
                    if t >= t0 + duration_s:
                        break
                    continue
            t += gap
            if t >= t0 + duration_s:
                break
            if self._u() * peak >= float(self.rate.rate(t)):
                continue
            uid, cohort = self._user()
            pod = self._pod(CANARY) if self._pod_first else 0
            ref, own = self._after_probs(t, cohort, pod)
            if self.tries > 1:
                # Retried as before promotion: each try on a pod of its own.
                own = self._after_version(t, cohort)
                ref, own = ref**self.tries, own**self.tries
            u = self._u()
            self.ledger.after_requests[0, cohort] += 1
            self.exposed.add(uid)
            if ref <= u < own:
                self.ledger.after_excess[0, cohort] += 1
                self.affected.add(uid)

    def _after_probs(self, t: float, cohort: int, pod: int) -> tuple[float, float]:
        """After promotion: the primary's error probability had it served this request
        (at the whole traffic's load) and the new version's pod ``pod``'s."""
        load = None
        if self.release.has_load_faults:
            load = np.array([[float(self.rate.rate(t)) * self._rate_factor(t)]])
        p_ref, p = self.release.error_probs(np.array([t]), load, load)
        return self._noisy(t, float(p_ref[0, 0, cohort]), float(p[0, 0, cohort]), CANARY, pod)

    def _after_version(self, t: float, cohort: int) -> float:
        """After promotion: the new version's error probability over its pods."""
        if self.latent is None or self.latent.pod_error is None:
            return self._after_probs(t, cohort, 0)[1]
        return float(np.mean([self._after_probs(t, cohort, k)[1] for k in range(self.pods[1])]))

    def users_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct users exposed and affected: this mode knows them by id."""
        return np.array([float(len(self.exposed))]), np.array([float(len(self.affected))])
