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

from sim.world.faults import ReleaseModel
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
    ) -> None:
        self.env = env = simpy.Environment()
        self.rate = rate
        self.population = population
        self.release = release
        self.router = router
        self.telemetry = telemetry
        self.rng = rngs[0]
        self.t = np.zeros(1)
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
        return uid, int(self.population.cohort[g])

    def _arrivals(self):
        # Thinning: candidates at the peak rate, each kept with probability λ(t)/peak.
        peak = self.rate.max_rate(0.0, float("inf"))
        if peak <= 0:
            return
        while True:
            yield self.env.timeout(-np.log(1.0 - self._u()) / peak)
            now = self.env.now
            if self._u() * peak < float(self.rate.rate(now)):
                self._serve(now)

    def _loads(self, now: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The canary's and the primary's expected request rates now, for load faults: the
        canary's live, mirrored and load-test requests; the primary's live ones."""
        if not self.release.has_load_faults:
            return None, None
        run = np.array([0])
        live = float(self.rate.rate(now)) * self.population.cohort_share
        share = self.router.canary_share(run)[0]
        mirror = float(self.router.mirror_share(run)[0, 0])
        tests = sum(rps for start, end, rps in self.loads if start <= now < end)
        primary = float((live * (1 - share)).sum())
        canary = float((live * share).sum() + primary * mirror + tests)
        return np.array([[canary]]), np.array([[primary]])

    def _record(self, now: float, cohort: int, canary: bool, u: float, synthetic: bool = False) -> bool:
        """One request's telemetry: outcome from ``u``, a latency draw. Returns failed.
        ``synthetic``: a mirrored or load-test request (it addresses the canary's Service)."""
        p_ref, p = self.release.error_probs(np.array([now]), *self._loads(now))
        failed = u < float((p if canary else p_ref)[0, 0, cohort])
        # The outcome is drawn first (from u), then a latency from that outcome's law.
        lat_p, lat_c = self.release.latency(now, cohort, failed)
        latency = float((lat_c if canary else lat_p).sample(self.rng))
        bucket = int(np.searchsorted(self._bounds, latency, side="left"))  # le semantics
        slot = int(self.telemetry.slot_of(np.array([now]))[0])
        tel = self.telemetry
        tel.ensure(slot)
        v = CANARY if canary else PRIMARY
        tel.n[0, slot, v] += 1
        tel.err[0, slot, v] += failed
        if canary:
            tel.hist[0, slot, bucket] += 1
        elif tel.hist_primary is not None:
            tel.hist_primary[0, slot, bucket] += 1
        if self.series is not None:
            live_via_stable = canary and not synthetic and self.series.live_via_stable
            self._cell(slot, 2 if live_via_stable else v, int(failed), bucket, latency)
        return failed

    def _cell(self, slot: int, route: int, code: int, bucket: int, latency_ms: float) -> None:
        """One request into its cell (route as ``SeriesStore.add``): a pod of its version
        drawn uniformly (the load balancer), its count, bucket and latency."""
        store = self.series
        assert store is not None
        pods = store.pods[min(route, 1)]
        pod = min(int(self._u() * pods), pods - 1) if pods > 1 else 0
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
        canary = self._u() < float(self.router.canary_share(run)[0, cohort])
        u = self._u()
        failed = self._record(now, cohort, canary, u)
        if not canary and self._u() < float(self.router.mirror_share(run)[0, 0]):
            # A mirrored copy: the canary serves it too (its own outcome), nobody sees it.
            self._record(now, cohort, True, self._u(), synthetic=True)
        if canary and self.accounting:
            p_ref, p = self.release.error_probs(np.array([now]), *self._loads(now))
            p_ref_c, p_c = float(p_ref[0, 0, cohort]), float(p[0, 0, cohort])
            excess = p_ref_c <= u < p_c
            self.ledger.requests[0, cohort] += 1
            self.ledger.errors[0, cohort] += failed
            self.ledger.excess[0, cohort] += excess
            self.exposed.add(uid)
            if excess:
                self.affected.add(uid)

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
        if t1 > self.env.now:
            self.env.run(until=t1)
        self.t[:] = t1
        if self.series is not None:
            self._flush(t1)

    def decided(self, run: int) -> None:
        self.accounting = False

    def after_promotion(self, run: int, t0: float, duration_s: float) -> None:
        """All traffic on the new version for ``duration_s``, request by request."""
        t, peak = t0, self.rate.max_rate(0.0, float("inf"))
        while peak > 0:
            t += -np.log(1.0 - self._u()) / peak
            if t >= t0 + duration_s:
                break
            if self._u() * peak >= float(self.rate.rate(t)):
                continue
            uid, cohort = self._user()
            load = np.array([[float(self.rate.rate(t))]]) if self.release.has_load_faults else None
            p_ref, p = self.release.error_probs(np.array([t]), load, load)
            u = self._u()
            self.ledger.after_requests[0, cohort] += 1
            self.exposed.add(uid)
            if float(p_ref[0, 0, cohort]) <= u < float(p[0, 0, cohort]):
                self.ledger.after_excess[0, cohort] += 1
                self.affected.add(uid)

    def users_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct users exposed and affected: this mode knows them by id."""
        return np.array([float(len(self.exposed))]), np.array([float(len(self.affected))])
