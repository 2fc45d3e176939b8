"""The world's driver: rollouts of one policy in one simulated world, many at a time.

Each rollout ticks its policy: at a tick the world serves the observation, calls
``policy.step`` and applies the actions (routes, scale-up, promotion, rollback). When the
next tick comes, what decides a rollout and what a trace line holds are the shared rules
of ``sim.policies.driver``, which ``pdsim replay`` and ``check_policy`` follow too. Between
ticks nothing is decided, so the driver needs no event queue: it jumps to the earliest
next tick of any run, serves every run that ticks then in one vectorised pass (traffic
drawn in bulk up to now, metric queries for all of them), and steps their policies.
Workload readiness is a timeline read at the tick's time, not a chain of events; a canary
scaled to pod counts (an Argo canary) also ticks its policy when its new pods become
available, as their ReplicaSet's update makes the controller reconcile then.
The per-request mode keeps its requests as simpy events inside ``ExactTraffic``, which
the driver runs up to each tick.

Each run draws from its own random streams in its own order, so its result depends on
its seed only, never on its batch-mates.
"""

from __future__ import annotations

import dataclasses
import gc
from bisect import insort
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, overload

import numpy as np

from sim.errors import InputError
from sim.inputs.scenario import Scenario
from sim.limits import MAX_TICKS_PER_RUN
from sim.outcomes import PROMOTED, RunRecord, decide, rollout_correct, winner_correct, winner_of
from sim.policies.base import (
    ASK_JUDGE,
    Action,
    BatchObservation,
    ExperimentEnded,
    Finish,
    HookCalled,
    Judged,
    JudgementNeeded,
    MetricQuery,
    MetricValue,
    Observation,
    Policy,
    Promote,
    Readiness,
    Rollback,
    ScaleUp,
    SetWeights,
    metric_arrays,
    metric_values,
)
from sim.policies.driver import Decision, metric_queries, next_tick, trace_line, wants_line
from sim.promql import Result, SeriesBatch
from sim.seeds import STREAMS, Streams, streams
from sim.world.business import BusinessLedger, BusinessModel, UserSplit
from sim.world.draws import stream_states
from sim.world.fast import FastTraffic
from sim.world.faults import ReleaseModel
from sim.world.metrics import metric_plan
from sim.world.noise import NoiseModel
from sim.world.router import Router
from sim.world.series import SeriesStore
from sim.world.serving import Traffic
from sim.world.telemetry import Telemetry
from sim.world.traffic import Population, RateFunction, build_population
from sim.world.users import count_sticky_users, count_users


@dataclass(frozen=True)
class Prepared:
    """What a scenario implies before any random draw: built once, shared by its runs."""

    population: Population
    release: ReleaseModel
    rate: RateFunction


_PREPARED: dict[int, tuple[Scenario, Prepared]] = {}


class _Results(Sequence[MetricValue]):
    """A query's ``MetricValue`` per run of a tick, from the engine's ``Result``, converted
    only when read: class stepping reads the values of one run per class (``of``), and a
    policy's keys read the others only where the ``BatchObservation`` columns do not tell
    (a result other than a single sample). Converting every run's result every tick cost
    as much as evaluating the query (issue 17)."""

    def __init__(self, result: Result) -> None:
        self._result = result
        self._all: list[MetricValue] | None = None

    def _values(self) -> list[MetricValue]:
        if self._all is None:
            self._all = metric_values(self._result)
        return self._all

    def __len__(self) -> int:
        return int(self._result.value.values.shape[0])

    @overload
    def __getitem__(self, i: int) -> MetricValue: ...

    @overload
    def __getitem__(self, i: slice) -> list[MetricValue]: ...

    def __getitem__(self, i: int | slice) -> MetricValue | list[MetricValue]:
        return self._values()[i]

    def of(self, rows: list[int]) -> list[MetricValue]:
        """The values of the runs ``rows``, converting only theirs when not all are yet."""
        if self._all is not None:
            return [self._all[i] for i in rows]
        return metric_values(self._result.take(np.array(rows, dtype=np.intp)))


#: A query's values for a tick's runs: one ``MetricValue`` per run, and the
#: ``BatchObservation`` columns (single samples, and which runs have one).
_Column = tuple[Sequence[MetricValue], np.ndarray, np.ndarray]


def prepare(scenario: Scenario) -> Prepared:
    """The scenario's static model, memoised by identity (scenarios are immutable)."""
    hit = _PREPARED.get(id(scenario))
    if hit is not None and hit[0] is scenario:
        return hit[1]
    if len(_PREPARED) > 64:
        _PREPARED.clear()
    prepared = Prepared(build_population(scenario.traffic), ReleaseModel(scenario), RateFunction(scenario.traffic.rate))
    _PREPARED[id(scenario)] = (scenario, prepared)
    return prepared


def cohort_requests(scenario: Scenario) -> list[dict[str, str]]:
    """What each cohort's requests look like to route matching (cohort 0 first: no special
    header or cookie, ``GET /``): the cohort's header, its ``cookie`` and the pseudo-headers
    ``:method`` and ``:path`` (the scenario's ``method`` and ``path``), as Envoy presents a
    request to an Istio ``HTTPMatchRequest``."""
    out: list[dict[str, str]] = [{":method": "GET", ":path": "/"}]
    for c in scenario.traffic.cohorts:
        h = {":method": c.method, ":path": c.path}
        if c.header:
            name, _, value = c.header.partition(":")
            h[name.strip()] = value.strip()
        if c.cookie:
            h["cookie"] = c.cookie
        out.append(h)
    return out


#: Readiness views as canonical objects: equal views are one object, so that class
#: stepping can key a run's readiness by identity (``World._serve_classes``). Only an
#: optimisation: a view not found here merely makes a class of its own. Bounded. Keyed
#: by the fields as a plain tuple (a view is equal to another exactly when its fields
#: are), so that finding the view costs a tuple's hash, not a Readiness built to look up.
_VIEWS: dict[tuple[bool, float | None, int | None, int | None, float | None], Readiness] = {}
_MAX_VIEWS = 1 << 16


def _canonical(
    ready: bool,
    unready_since: float | None = None,
    updated: int | None = None,
    available: int | None = None,
    startup_s: float | None = None,
) -> Readiness:
    """The canonical view with these fields (``Readiness``'s, in its order)."""
    key = (ready, unready_since, updated, available, startup_s)
    hit = _VIEWS.get(key)
    if hit is not None:
        return hit
    if len(_VIEWS) >= _MAX_VIEWS:
        _VIEWS.clear()
    view = _VIEWS[key] = Readiness(ready, unready_since, updated, available, startup_s)
    return view


#: The views of a workload before any change (canonical).
_READY_VIEW, _UNREADY_VIEW = _canonical(True), _canonical(False)


def row_classes(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The classes of equal rows of ``table`` (n, k) of integers, in the rows' sorted
    (lexicographic) order: each class's first row, and each row's class. The same as
    ``np.unique(table, axis=0, return_index=True, return_inverse=True)``'s last two,
    for a fifth of its cost on a tick's few hundred rows (it sorts a structured copy
    of the rows; here a ``lexsort`` of the columns does, stable, so a class's first row
    in sorted order is its first in the table)."""
    n = table.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    order = np.lexsort(table.T[::-1])
    ranked = table[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


class Workload:
    """Readiness of one workload over time: a timeline of changes, read at a tick.

    A change is (time, ready); the view at ``t`` is the last change at or before ``t``
    (changes at the same time in the order they were made). A workload that becomes
    unready at ``t`` and ready again later reports ``unready_since = t``, the time its
    ``MinimumReplicasUnavailable`` condition was set.

    A workload scaled to pod counts (``scale``, an Argo canary) also counts its pods:
    each pod added is available ``startup`` after its scale-up, and the view reports
    ``available`` (none during a scripted outage) and is ready when every pod is.
    The changes then stand for outages only.
    """

    def __init__(self, ready: bool = True) -> None:
        self._view = _READY_VIEW if ready else _UNREADY_VIEW  # a canary scaled to zero has no condition yet
        self._pending: list[tuple[float, int, bool, bool]] = []  # (time, order, ready, rolling), sorted
        self._made = 0
        #: Pods of the workload, when known: the view then counts updated and available
        #: pods (all or none available: pods start together), for ready thresholds.
        self.pods: int | None = None
        self._touched = False  # a change has taken effect
        #: Counted pods (``scale``): (started, available from) per pod; the view then
        #: counts them one by one (Argo's canary steps).
        self._pods: list[tuple[float, float]] | None = None
        self._startup = 0.0  # start-up of the counted pods

    def change(self, at: float, ready: bool, rolling: bool = False) -> None:
        """From ``at`` on the workload is (un)ready, until a later change; ``rolling``: a
        rolling update replaces its pods meanwhile (no pod count is final)."""
        self._made += 1
        insort(self._pending, (at, self._made, ready, rolling))

    def scale(self, at: float, replicas: int, startup_s: float, never: bool = False) -> bool:
        """Scale to ``replicas`` pods at ``at``: new pods are available ``startup_s``
        later (never, for a release whose pods never get ready); a scale-down removes
        the pods that are not available yet first, then the newest, as the ReplicaSet
        controller picks them (``getPodsToDelete``). Returns whether the workload had no
        pod counts before (its first scale)."""
        first = self._pods is None
        if first:
            self._pods = []
            if not self._touched:  # scaled from zero: "no pods" was not an outage
                self._view = _READY_VIEW
        pods = self._pods
        assert pods is not None
        self._startup = startup_s
        if replicas > len(pods):
            ready_at = float("inf") if never else at + startup_s
            pods += [(at, ready_at)] * (replicas - len(pods))
        elif replicas < len(pods):
            pods.sort(key=lambda p: p[1])  # available first, the newest last
            del pods[replicas:]
        return first

    def view(self, t: float) -> Readiness:
        """What Kubernetes reports at ``t`` (``t`` never decreases between calls)."""
        while self._pending and self._pending[0][0] <= t:
            at, _, ready, rolling = self._pending.pop(0)
            self._touched = True
            # Made unready again (a restart, an outage): the condition is set anew.
            pods = None if rolling else self.pods
            self._view = _canonical(ready, None if ready else at, pods, None if pods is None else pods * ready)
        if self._pods is None:
            return self._view
        base = self._view
        n = len(self._pods)
        if not base.ready:  # an outage: no pod is available
            return _canonical(False, base.unready_since, n, 0, self._startup)
        starting = [started for started, ready_at in self._pods if ready_at > t]
        available = n - len(starting)
        if not starting:
            return _canonical(True, None, n, available, self._startup)
        return _canonical(False, min(starting), n, available, self._startup)

    def valid_until(self, t: float) -> float:
        """When the view read at ``t`` may next change: the next change on the timeline
        or, for counted pods, the next pod becoming available (inf: never, as it stands)."""
        until = self._pending[0][0] if self._pending else float("inf")
        if self._pods is not None:
            for _, ready_at in self._pods:
                if t < ready_at < until:
                    until = ready_at
        return until

    def next_available(self, t: float) -> float | None:
        """When the next of its counted pods becomes available after ``t`` (None: none
        is starting). The ReplicaSet's status update then triggers a reconcile."""
        if self._pods is None:
            return None
        later = [ready_at for _, ready_at in self._pods if t < ready_at < float("inf")]
        return min(later) if later else None

    def ready_from(self, t: float) -> float | None:
        """The first time at or after ``t`` from which the workload is ready, as its
        timeline stands (None: it never becomes ready). Reads without consuming, so a
        later ``view`` still sees every change."""
        ready, since = self._view.ready, t
        for at, _, r, _rolling in self._pending:
            if at <= t:
                ready = r
            elif ready:
                return since
            else:
                ready, since = r, at
        return since if ready else None


@dataclass
class RunResult:
    """A run's record and, when asked for, its trace (one dict per tick)."""

    record: RunRecord
    trace: list[dict[str, Any]] = field(default_factory=list)
    #: The run's raw series as Prometheus would hold them (when asked for; None when no
    #: query reads series).
    series: SeriesBatch | None = None


@dataclass
class _Run:
    """Per-rollout bookkeeping of the world."""

    seed: int
    index: int
    rng: Streams
    canary: Workload = field(default_factory=lambda: Workload(ready=False))  # scaled to zero at first
    primary: Workload = field(default_factory=Workload)
    decision: Decision = field(default_factory=Decision)
    lines: list[dict[str, Any]] = field(default_factory=list)
    hook_calls: dict[str, int] = field(default_factory=dict)
    #: Weights the router applies later (``SetWeights.once_primary_ready``): (time, action);
    #: time None when the primary never becomes ready.
    held: tuple[float | None, SetWeights] | None = None
    #: The experiment's conclusion (``ExperimentEnded``), when the policy gave one.
    ended: ExperimentEnded | None = None


class World:
    """A batch of rollouts of one policy in one scenario.

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        seeds: one run seed per rollout (see ``sim.seeds``).
        run_indexes: the ``run`` field of each record (default 0, 1, ...).
        exact: serve requests one by one (one run at a time).
        trace: record one line per tick.
        keep_series: return each run's raw series with its result.
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        seeds: Sequence[int],
        *,
        run_indexes: Sequence[int] | None = None,
        exact: bool = False,
        trace: bool = False,
        keep_series: bool = False,
    ) -> None:
        self.scenario = scenario
        self.keep_series = keep_series
        self.policy = policy
        self.trace_on = trace
        idx = list(run_indexes) if run_indexes is not None else list(range(len(seeds)))
        self.runs = [_Run(seed=s, index=k, rng=streams(s)) for s, k in zip(seeds, idx)]
        R = len(self.runs)
        #: Each run's policy state (equal states of class-stepped runs are one object),
        #: ticks so far, whether it has stepped, and its final phase once known.
        self.states = np.empty(R, dtype=object)
        self.ticks = np.zeros(R, dtype=np.int64)
        self.stepped = np.zeros(R, dtype=bool)
        self.phases = np.full(R, "", dtype=object)
        prepared = prepare(scenario)
        self.population, self.release = prepared.population, prepared.release
        requests = cohort_requests(scenario)
        targets = policy.metric_targets()
        self.router = Router(
            len(self.runs),
            np.array([bool(policy.matches(h)) for h in requests]),
            self.population.cohort_share,
            lambda route: np.array([bool(policy.route_matches(route, h)) for h in requests]),
            session_affinity_s=targets.session_affinity_s,
            session_affinity_primary_s=targets.session_affinity_primary_s,
        )
        tel = scenario.telemetry
        self.queries = list(policy.queries())
        plan = metric_plan(scenario, policy)
        for run in self.runs:  # pod counts for ready thresholds (Flagger's canaryReadyThreshold)
            run.primary.pods, run.canary.pods = plan.pods
        self.compiled = plan.compiled
        self.failing = plan.failing
        self.lag_s = tel.lag
        bindings = plan.bound
        missing = None
        if tel.missing_scrapes > 0:
            k = int(np.ceil(scenario.horizon / tel.scrape_interval)) + 2
            missing = np.stack([r.rng["telemetry"].random(k) < tel.missing_scrapes for r in self.runs])
        # A statistical judge (or an Argo Kayenta metric) compares both versions: the
        # primary's counters must then be drawn, and its histogram too when latency is
        # judged (plain threshold policies skip both and keep their speed).
        tags = policy.tags
        self.reads_versions = tags.reads_versions
        self.versions_latency = tags.versions_latency
        self.trace_on_change = tags.trace_on_change
        self.reads_vectors = tags.reads_vectors  # how the trace shows a vector (driver.metric_json)
        self.trace_queries = metric_queries(policy)  # the trace's ``queries``
        #: The queries evaluated at each tick: all of them for a trace, else those whose
        #: values some decision reads (``PolicyTags.trace_only_queries``: a judged check's
        #: queries were 18 µs of a 127 µs sequential-judge rollout on good-release, read by
        #: nothing; they draw no random number, so results stay equal).
        self.read_queries = [q for q in self.queries if trace or q.name not in tags.trace_only_queries]
        primary_hist = self.versions_latency or any(
            b.version == "primary" and b.signal.startswith("latency") for b in bindings.values()
        )
        self.telemetry = Telemetry(
            len(self.runs),
            scenario.horizon,
            tel.scrape_interval,
            tel.lag,
            missing,
            plan.universe.bounds_ms if plan.universe is not None else tel.buckets_ms,
            primary_histogram=primary_hist,
            bindings=bindings,
            primary_counts=self.reads_versions,
        )
        # The per-version counters are for judges, bound signals and queries without
        # PromQL; with none of them the raw series hold everything read.
        self.telemetry.counted = (
            self.reads_versions
            or bool(bindings)
            or any(q.name not in plan.compiled and q.name not in plan.failing for q in self.queries)
        )
        #: The raw series the queries read (None when no query is PromQL).
        self.series = (
            None
            if plan.universe is None
            else SeriesStore(
                plan.universe, plan.pods, len(self.runs), self.telemetry.n_slots, tel.scrape_interval, missing
            )
        )
        horizon_s = scenario.horizon + scenario.after_promotion
        mean_rate = float(prepared.rate.cumulative(horizon_s)) / horizon_s
        #: The runs' noise multipliers (``sim.world.noise``): drawn from each run's noise stream.
        self.latent = NoiseModel(scenario, plan.pods, mean_rate).draw(seeds)
        retries = targets.retries
        #: Tries of a failing live request (the mesh's retries; 1: none).
        self.tries = retries.tries_of_failures if retries is not None else 1
        if exact:
            if len(self.runs) != 1:
                raise ValueError("the exact mode simulates one run at a time")
            from sim.world.exact import ExactTraffic

            self.traffic: Traffic = ExactTraffic(
                prepared.rate,
                self.population,
                self.release,
                self.router,
                self.telemetry,
                [self.runs[0].rng["exact"]],
                tel.noise,
                series=self.series,
                latent=self.latent,
                pods=plan.pods,
                tries=self.tries,
            )
        else:
            self.traffic = FastTraffic(
                prepared.rate,
                self.population,
                self.release,
                self.router,
                self.telemetry,
                stream_states(list(seeds), STREAMS["traffic"]),
                tel.noise,
                series=self.series,
                latent=self.latent,
                pods=plan.pods,
                tries=self.tries,
            )
        #: Business outcomes (issue 19, ``sim.world.business``): None without ``business:``.
        model = BusinessModel.of(scenario, self.population)
        self.business = (
            None if model is None else BusinessLedger(model, [run.rng for run in self.runs], self.population, tel.noise)
        )
        #: An experiment's user split per run (``SetWeights.by_user``), drawn from the business stream.
        self.user_split = UserSplit(self.population, R)
        self.reads_business = tags.reads_business and self.business is not None
        self._rate = prepared.rate
        if self.business is not None and self.series is not None and self.series.reads_business:
            # A query reads the application's business counters: drawn per pod.
            self.business.pods = plan.pods
        if isinstance(self.traffic, FastTraffic) and self.business is not None:
            # Both versions' live requests are drawn: sessions follow them.
            self.traffic.business = self.business
            self.traffic.primary_counts = True
        elif not isinstance(self.traffic, FastTraffic):
            from sim.world.exact import ExactTraffic

            assert isinstance(self.traffic, ExactTraffic)
            self.traffic.business = self.business
            self.traffic.user_split = self.user_split
        self._latency = {k: v.latency for k, v in scenario.webhooks.items() if v.latency > 0}
        #: Whether some run holds weights for later (``SetWeights.once_primary_ready``).
        self._held = False
        #: Class stepping (``_serve_classes``): the policy keys its runs, the traffic is
        #: the fast path's, nothing is traced, no webhook is scripted (scripted outcomes
        #: are drawn run by run), and a policy that reads both versions lets the world
        #: run its judge (``Policy.batch_judge``).
        self.by_class = (
            tags.steps_by_class
            and not exact
            and not trace
            and not scenario.webhooks
            and (not self.reads_versions or policy.batch_judge() is not None)
            and not self.reads_business  # each run reads its own business data
        )
        #: The judge the world runs for class-stepped runs (``Policy.batch_judge``), and
        #: its state for every run of the batch.
        self._judge = policy.batch_judge() if self.by_class and self.reads_versions else None
        self._judge_state = self._judge.batch_state(R) if self._judge is not None else None
        #: Equal states as one object, so that the class step can compare them by identity.
        self._interned: dict[Any, Any] = {}
        #: Class stepping's readiness views, canary then primary: when each run's view must
        #: be read again, the view and its identity (``_views``).
        self._view_due = (np.full(R, -np.inf), np.full(R, -np.inf))
        self._view_objs = (np.empty(R, dtype=object), np.empty(R, dtype=object))
        self._view_ids = (np.zeros(R, dtype=np.int64), np.zeros(R, dtype=np.int64))
        #: Runs whose canary counts its pods (``Workload.scale``): it wakes the controller
        #: when its next pod becomes available (``_wake``, as of the last view read).
        self._counted = np.zeros(R, dtype=bool)
        self._wake = np.full(R, np.inf)

    def _webhooks(self, run: _Run, now: float) -> dict[str, bool]:
        """Scripted webhook outcomes if called now (``webhooks:`` of the scenario)."""
        return {key: self._passes(run, key, 0, now) for key in self.scenario.webhooks}

    def _passes(self, run: _Run, key: str, attempt: int, at: float) -> bool:
        """Whether the ``attempt``-th attempt (0: the call itself, then its retries) of a
        call to the hook scripted under ``key`` passes, made at ``at``: each attempt is a
        call of the script (``fail_first`` counts it, a new ``fail_probability`` draw)."""
        script = self.scenario.webhooks[key]
        fail = (
            script.outcome == "fail"
            or run.hook_calls.get(key, 0) + attempt < script.fail_first
            or (script.fail_until is not None and at < script.fail_until)
            or (script.fail_from is not None and at >= script.fail_from)
        )
        if script.fail_probability > 0:
            fail |= bool(run.rng["hooks"].random() < script.fail_probability)
        return not fail

    # -- ticks ---------------------------------------------------------------------------

    def _start(self, w: Workload, now: float, startup_s: float, never: bool = False, rolling: bool = False) -> None:
        """A rollout of ``w``'s pods: unready from now, ready once they have started;
        ``rolling``: a rolling update (old pods replaced), not a scale-up from zero."""
        w.change(now, False, rolling)
        if not never:
            w.change(now + startup_s, True)

    def _serve(self, group: np.ndarray, now: float) -> None:
        """One tick of every run in ``group``: traffic up to now and the metric queries
        for all of them at once, then the policy steps: one per class of runs alike
        (``_serve_classes``) when the policy keys them, else one per run."""
        if self._held:
            for r in group.tolist():
                self._release_held(r, now)
        self.traffic.advance(group, now)
        columns = [(q.name, self._metric(q, group, now)) for q in self.read_queries]
        values = [(name, col[0]) for name, col in columns]
        if self.by_class:
            batch = BatchObservation(
                now,
                len(group),
                dict(values),
                {name: col[1] for name, col in columns},
                {name: col[2] for name, col in columns},
            )
            keys = self.policy.observation_keys(batch)
            if keys is not None:
                self._serve_classes(group, now, values, keys)
                return
            if self._judge is not None:
                # The world holds the judge's states: stepped alone, the policy would judge
                # from its own (empty) judge state.
                raise TypeError(f"policy {self.policy.name!r} has a batch_judge but did not key a batch")
        values = [(name, v[:]) for name, v in values]  # every run reads its own: converted at once
        policy, hooks, router, latency = self.policy, bool(self.scenario.webhooks), self.router, self._latency
        judge_data = self.telemetry.judge_data if self.reads_versions else None
        runs, horizon, nexts = self.runs, self.scenario.horizon, []
        business = self.business if self.reads_business else None
        for i, r in enumerate(group.tolist()):
            run = runs[r]
            ticks = int(self.ticks[r]) + 1
            self.ticks[r] = ticks
            if ticks > MAX_TICKS_PER_RUN:
                raise self._too_many_ticks()
            metrics = {name: v[i] for name, v in values}
            obs = Observation(
                t=now,
                tick=ticks,
                metrics=metrics,
                routes=router.routes(r),
                canary=run.canary.view(now),
                primary=run.primary.view(now),
                webhooks=self._webhooks(run, now) if hooks else {},
                webhook_latency=latency,
                versions=judge_data(r, now, self.versions_latency) if judge_data else None,
                webhook_attempt=partial(self._passes, run) if hooks else None,
                business=business.data(r) if business is not None else None,
            )
            state, actions = policy.step(self.states[r], obs)
            for a in actions:
                self._apply(r, a, now)
            self.states[r] = state
            self.stepped[r] = True
            if self.trace_on:
                status = policy.status(state)
                if wants_line(self.trace_on_change, run.lines, status, actions):
                    run.lines.append(
                        trace_line(
                            now,
                            ticks,
                            status,
                            router.routed_percent(r),
                            actions,
                            metrics,
                            policy.event(state),
                            self.trace_queries,
                            self.reads_vectors,
                        )
                    )
            nt = next_tick(policy, state, now, horizon)
            if nt is not None:
                # A counted canary pod becoming available updates its ReplicaSet, which
                # makes the controller reconcile then (an Argo canary's scale-ups).
                wake = run.canary.next_available(now)
                if wake is not None and wake < nt:
                    nt = wake
            nexts.append(self._end(r) if nt is None else nt)
        self._next[group] = nexts

    def _serve_classes(
        self, group: np.ndarray, now: float, values: list[tuple[str, Sequence[MetricValue]]], keys: np.ndarray
    ) -> None:
        """Class stepping, the world's one speed device for policy steps (the contract is
        ``sim.policies.base.BatchObservation``).

        The runs of ``group`` are split into classes: equal states (interned, so equal
        states are one object and compare by identity here), equal routes, equal canary
        and primary readiness and equal policy ``keys`` rows. The policy steps once per
        class, for its first run, and every run of the class takes the new state and
        the actions; actions are applied to the class's runs together where the world
        can (weights, promotions). Each run still draws from its own streams, so every
        run's record is what stepping it alone gives (``tests/world/test_class_stepping.py``).
        """
        router, policy = self.router, self.policy
        n = len(group)
        # States, routes and views compare by identity: equal ones are one object
        # (``_interned``, ``_canonical``); one that is not merely makes a class of its own.
        canary, primary = self._views(group, now)
        ids = np.empty((n, 6), dtype=np.int64)
        ids[:, 0] = [id(x) for x in self.states[group].tolist()]
        ids[:, 1] = self._view_ids[0][group]
        ids[:, 2] = self._view_ids[1][group]
        ids[:, 3] = router.weight[group]
        ids[:, 4] = router.mirrored[group]
        ids[:, 5] = router.matched[group]
        table = np.concatenate([ids, np.asarray(keys, dtype=np.int64).reshape(n, -1)], axis=1)
        first, inverse = row_classes(table)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(first)))
        ticks = self.ticks[group] + 1
        if ticks.max() > MAX_TICKS_PER_RUN:
            raise self._too_many_ticks()
        self.ticks[group] = ticks
        self.stepped[group] = True
        nexts = np.empty(n)
        ask = ASK_JUDGE if self._judge is not None else None
        firsts = first.tolist()
        # Each class's metrics are its first run's.
        picked = [(name, v.of(firsts) if isinstance(v, _Results) else [v[i] for i in firsts]) for name, v in values]
        start = 0
        for c_idx, i in enumerate(firsts):
            stop = int(bounds[c_idx])
            where = order[start:stop]
            start = stop
            r0 = int(group[i])
            obs = Observation(
                t=now,
                tick=int(ticks[i]),
                metrics={name: v[c_idx] for name, v in picked},
                routes=router.routes(r0),
                canary=canary[i],
                primary=primary[i],
                webhook_latency=self._latency,
                versions=ask,
            )
            try:
                state, actions = policy.step(self.states[r0], obs)
            except JudgementNeeded:
                self._judged_step(group, where, obs, now, nexts)
                continue
            self._take(group, where, state, actions, now, nexts)
        self._next[group] = nexts

    def _take(
        self,
        group: np.ndarray,
        where: np.ndarray,
        state: Any,
        actions: tuple[Action, ...],
        now: float,
        nexts: np.ndarray,
    ) -> None:
        """The runs ``group[where]`` of one class take its step's result: the new state
        (one interned object), the actions, and their next tick (into ``nexts[where]``)."""
        policy = self.policy
        state = self._interned.setdefault(state, state)
        members = group[where]
        shared = np.empty(len(members), dtype=object)
        shared.fill(state)  # the one object in every cell (a list could be unpacked)
        self.states[members] = shared
        self._apply_class(members, actions, now)
        nt = next_tick(policy, state, now, self.scenario.horizon)
        if nt is None:
            self.phases[members] = str(policy.status(state)["phase"])
            nexts[where] = np.inf
            return
        nexts[where] = nt
        counted = self._counted[members]
        if counted.any():
            # A counted canary pod becoming available makes the controller reconcile:
            # when, as of the last view read (``_views``), or anew where this tick's
            # actions changed the workload.
            changed = counted & (self._view_due[0][members] == -np.inf)
            for r in members[changed].tolist():
                wake = self.runs[r].canary.next_available(now)
                self._wake[r] = np.inf if wake is None else wake
            nexts[where] = np.where(counted, np.minimum(nt, self._wake[members]), nt)

    def _judged_step(
        self, group: np.ndarray, where: np.ndarray, obs: Observation, now: float, nexts: np.ndarray
    ) -> None:
        """A class whose step consults the judge: the judge judges all its runs in one
        pass (their states are the world's, ``_judge_state``), and the runs are stepped
        again by class of answer (verdict, reject, accept; a rejecting run alone, as its
        reason quotes its own statistic), each with its ``Judged`` answer."""
        judge = self._judge
        assert judge is not None
        members = group[where]
        data = self.telemetry.judge_batch(members, now, self.versions_latency)
        answers = judge.judge_batch(self._judge_state, members, data)
        table = np.column_stack(
            [answers.verdict, answers.reject, answers.accept, np.where(answers.reject, members, -1)]
        ).astype(np.int64)
        first, inverse = row_classes(table)
        state0 = self.states[members[0]]
        for k, f in enumerate(first.tolist()):
            state, actions = self.policy.step(state0, dataclasses.replace(obs, versions=Judged(answers.at(f))))
            self._take(group, where[inverse == k], state, actions, now, nexts)

    def _views(self, group: np.ndarray, now: float) -> tuple[list[Readiness], list[Readiness]]:
        """The canary's and primary's readiness of each run of ``group`` at ``now``, read
        again only where it may have changed since it was last read (``Workload.valid_until``),
        with their identities in ``_view_ids``."""
        out = []
        runs, counted = self.runs, self._counted
        for k, (due, objs, ids) in enumerate(zip(self._view_due, self._view_objs, self._view_ids)):
            stale = group[due[group] <= now]
            if len(stale):
                # Read run by run, stored for all of them at once (an array write per
                # run costs more than the read).
                rs = stale.tolist()
                workloads = [runs[r].canary for r in rs] if k == 0 else [runs[r].primary for r in rs]
                views = [w.view(now) for w in workloads]
                objs[stale] = views
                ids[stale] = [id(v) for v in views]
                due[stale] = [w.valid_until(now) for w in workloads]
                if k == 0:
                    for i in np.flatnonzero(counted[stale]).tolist():
                        wake = workloads[i].next_available(now)
                        self._wake[rs[i]] = np.inf if wake is None else wake
            out.append(objs[group].tolist())
        return out[0], out[1]

    def _workload_changed(self, r: int) -> None:
        """Run ``r``'s workloads changed: read their views again at its next tick."""
        self._view_due[0][r] = self._view_due[1][r] = -np.inf

    def _apply_class(self, members: np.ndarray, actions: tuple[Action, ...], now: float) -> None:
        """Apply one class's actions to all its runs: weights and promotions together,
        anything else run by run (``_apply``)."""
        runs = self.runs
        for a in actions:
            if isinstance(a, SetWeights) and not a.once_primary_ready and not a.by_user:
                if self._held:
                    for r in members.tolist():
                        runs[r].held = None
                self.router.set_many(members, a)
            elif isinstance(a, Promote) and isinstance(self.traffic, FastTraffic):
                promoted = self._promote(members.tolist(), a, now)
                self.traffic.after_promotion_many(np.array(promoted, dtype=int), now, self.scenario.after_promotion)
            elif isinstance(a, ScaleUp):
                self._scale_up(members.tolist(), a, now)
            elif not isinstance(a, Finish):  # the world has nothing to do for a Finish
                for r in members.tolist():
                    self._apply(r, a, now)

    def _metric(self, q: MetricQuery, group: np.ndarray, now: float) -> _Column:
        """One query's value for every run of ``group`` at ``now``: PromQL over the raw
        series as Prometheus would answer it (samples ingested by ``now − lag``), or a bound
        signal, whose no data (NaN) is None. Converted once per query, not per run; with
        the ``BatchObservation`` columns of it."""
        query = self.compiled.get(q.name)
        failed = self.failing.get(q.name)
        if failed is not None:
            return [failed] * len(group), np.full(len(group), np.nan), np.zeros(len(group), dtype=bool)
        if query is not None:
            assert self.series is not None
            result = query.evaluate(self.series.batch(), group, now, ingested_until_s=now - self.lag_s)
            return (_Results(result), *metric_arrays(result))
        values = self.telemetry.query(q, group, now)
        return [None if x != x else x for x in values.tolist()], values, values == values

    def _too_many_ticks(self) -> InputError:
        """A rollout past ``limits.MAX_TICKS_PER_RUN`` ticks: work that would not end in
        reasonable time (issue 13 item 9), refused as bad input."""
        return InputError(
            self.scenario.name,
            None,
            "horizon",
            f"a rollout of policy {self.policy.name!r} ticks more than {MAX_TICKS_PER_RUN:,} times before the "
            f"horizon ({self.scenario.horizon:g} s) without deciding: shorten the horizon or lengthen the "
            "policy's interval",
        )

    def _end(self, r: int) -> float:
        """A run ends: its policy has finished, or its next tick falls at or past the
        horizon, which ends simulated time (a run cut by the horizon ends with its last
        tick before it). Its next tick is then never: inf."""
        self.phases[r] = str(self.policy.status(self.states[r])["phase"])
        return np.inf

    def _release_held(self, r: int, until: float) -> None:
        """Apply run ``r``'s held weights if they fall due by ``until``: its live traffic
        is served under the old routes up to that moment (and counted where it went)."""
        held = self.runs[r].held
        if held is None or held[0] is None or held[0] > until:
            return
        self.traffic.advance(np.array([r]), held[0])
        self._route(r, held[1])
        self.runs[r].held = None

    def _promote(self, rs: list[int], a: Promote, now: float) -> list[int]:
        """Runs ``rs`` promote at ``now``, those that have not decided already (returned):
        their traffic is no longer the canary's to account, and the primary's rolling
        update to the new spec starts (its pods need startup time). The damage after
        promotion is the caller's to draw, run by run or for a class at once."""
        rel = self.scenario.release
        startup = rel.primary_startup if rel.primary_startup is not None else rel.startup
        runs, promoted = self.runs, []
        for r in rs:
            if not runs[r].decision.note(a, now):
                continue
            promoted.append(r)
            self._business_decided(r, now, kept=1)
            self.traffic.decided(r)
            self._workload_changed(r)
            self._start(runs[r].primary, now, startup, rolling=True)
        return promoted

    def _route(self, r: int, a: SetWeights) -> None:
        """Run ``r``'s router takes ``a``; a user split draws which users the candidate
        gets (``UserSplit``, from the run's business stream) and routes by their share."""
        self.router.set(r, a)
        if a.by_user:
            rng = self.runs[r].rng["business"]
            self.router.user_share[r] = self.user_split.assign(rng, r, a.canary_weight / 100.0)
            if self.business is not None:
                self.business.split_users[r] = self.user_split.users[r]

    def _business_decided(self, r: int, now: float, kept: int) -> None:
        """Run ``r`` decided at ``now``, keeping version ``kept`` (0 primary, 1 candidate):
        its rollout's business accounting stops, and the ``after_promotion`` window's
        expected regret is computed with all traffic on the kept version."""
        if self.business is None:
            return
        self.business.active[r] = False
        self.business.after_decision(r, now, self.scenario.after_promotion, kept, self._rate)

    def _apply(self, r: int, a: Action, now: float) -> None:
        run = self.runs[r]
        if isinstance(a, SetWeights):
            run.held = None  # a newer routing decision replaces one still waiting
            if a.once_primary_ready:
                at = run.primary.ready_from(now)
                if at is None or at > now:
                    run.held = (at, a)
                    self._held = True
                    return
            self._route(r, a)
        elif isinstance(a, HookCalled):
            for key in {a.name, a.type}:
                run.hook_calls[key] = run.hook_calls.get(key, 0) + 1
            if a.load_rps > 0:
                self.traffic.start_load(r, now, a.load_rps, a.load_s)
        elif isinstance(a, ScaleUp):
            self._scale_up([r], a, now)
        elif isinstance(a, Promote) and self._promote([r], a, now):
            self.traffic.after_promotion(r, now, self.scenario.after_promotion)
        elif isinstance(a, Rollback):
            # The decision is noted, but the ledger keeps counting: harm ends when the
            # router sends live traffic away from the canary (the weights the policy sets
            # with it, at once for Flagger's ``rollback`` and Argo's abort, or later),
            # not at the decision.
            if run.decision.note(a, now):
                self._business_decided(r, now, kept=0)
        elif isinstance(a, ExperimentEnded):
            run.ended = a  # the record's winner and estimates; routes are the Promote's or Rollback's

    def _scale_up(self, rs: list[int], a: ScaleUp, now: float) -> None:
        """Runs ``rs`` scale their canary up at ``now``: its pods start (all of them, or
        ``a.replicas`` counted pods) and serve once started."""
        release = self.scenario.release
        startup, never = release.startup, self.release.never_ready
        runs = self.runs
        for r in rs:
            self._workload_changed(r)
            if a.replicas is None:
                self._start(runs[r].canary, now, startup, never=never)
            else:
                self._counted[r] = True
                if not runs[r].canary.scale(now, a.replicas, startup, never=never):
                    continue  # more pods of a canary already started (Argo's later setWeight steps)
            if not never:  # new pods: cold from when they serve
                self.latent.canary_ready(r, now + startup)
            if release.test_rps > 0:
                # Smoke/load tests of the new version (e.g. of a blue/green preview).
                self.traffic.start_load(r, now, release.test_rps, self.scenario.horizon)

    # -- the batch ----------------------------------------------------------------------

    def run(self) -> list[RunResult]:
        """Simulate every rollout until its policy finishes or the horizon."""
        shared = self.policy.initial_state() if self.by_class else None
        for r, run in enumerate(self.runs):
            self.states[r] = shared if self.by_class else self.policy.initial_state()
            for u in self.scenario.release.unready:  # scripted outages (``release.unready``)
                w = run.canary if u.workload == "canary" else run.primary
                w.change(u.at, False)
                if u.duration is not None:
                    w.change(u.at + u.duration, True)
        horizon = self.scenario.horizon
        firsts = [next_tick(self.policy, state, 0.0, horizon, first=True) for state in self.states.tolist()]
        self._next = np.array([self._end(r) if nt is None else nt for r, nt in enumerate(firsts)])
        # Lockstep: the earliest next tick of any run, and every run that ticks then.
        while True:
            now = float(self._next.min())
            if now == np.inf:
                break
            self._serve(np.flatnonzero(self._next == now), now)
        for r in range(len(self.runs)):
            self._release_held(r, horizon)
        # Runs still sending live traffic to the candidate: unfinished ones, and rolled-back
        # ones whose traffic has not left it (weights held, or never set back), until the horizon.
        open_runs = np.array(
            [
                r
                for r, run in enumerate(self.runs)
                if run.decision.time is None
                or (run.decision.outcome != PROMOTED and (run.held is not None or self.router.routed_percent(r) > 0))
            ],
            dtype=int,
        )
        if len(open_runs):
            self.traffic.advance(open_runs, self.scenario.horizon)
        if self.business is not None:
            for r in np.flatnonzero(np.isnan(self.business.regret_conversions_after)).tolist():
                # Undecided by the horizon: the primary stays, from the horizon on.
                self.business.after_decision(r, self.scenario.horizon, self.scenario.after_promotion, 0, self._rate)
        led = self.traffic.ledger
        counted = self.traffic.users_counts()  # the exact mode knows its users
        if counted is not None:
            exposed, affected = counted
        else:
            users = (
                stream_states([run.seed for run in self.runs], STREAMS["users"])
                if self.scenario.telemetry.noise
                else None
            )
            sticky = self.traffic.sticky if isinstance(self.traffic, FastTraffic) else None
            if sticky is not None and sticky.requests.any():
                # Session affinity: the users are the cookie holders (``StickyUsers``).
                # Requests that reached the canary while routing was not sticky (A/B,
                # header routes) and after a promotion are counted apart.
                sticky_requests = sticky.requests @ sticky.to_cohort
                exposed, affected = count_sticky_users(
                    self.population,
                    sticky.exposed,
                    sticky.requests,
                    sticky.excess,
                    np.maximum(led.requests - sticky_requests, 0.0) + led.after_requests,
                    np.maximum(led.excess - sticky.excess, 0.0) + led.after_excess,
                    users,
                )
            else:
                exposed, affected = count_users(
                    self.population, led.requests + led.after_requests, led.excess + led.after_excess, users
                )
            split = np.flatnonzero(self.user_split.split > 0)
            if len(split):
                # Under a user split the candidate's requests come from its users only
                # (until a promotion sends it everyone's: then the population's count stands).
                exposed, affected = np.array(exposed, dtype=float), np.array(affected, dtype=float)
                for r in split.tolist():
                    if led.after_requests[r].sum() > 0:
                        continue
                    own = stream_states([self.runs[r].seed], STREAMS["users"]) if users is not None else None
                    row = np.s_[r : r + 1]
                    e, a = count_users(
                        self.user_split.candidate_population(r),
                        led.requests[row] + led.after_requests[row],
                        led.excess[row] + led.after_excess[row],
                        own,
                    )
                    exposed[r], affected[r] = e[0], a[0]
        # Per-run totals over cohorts, for the whole batch at once.
        totals = {
            "canary_requests": led.requests.sum(axis=1),
            "canary_errors": led.errors.sum(axis=1),
            "excess_errors": led.excess.sum(axis=1) + led.after_excess.sum(axis=1),
            "excess_errors_after_promotion": led.after_excess.sum(axis=1),
            "users_exposed": np.asarray(exposed, dtype=float),
            "users_affected": np.asarray(affected, dtype=float),
        }
        # Columns as Python lists, read run by run (what is the batch's alike, once).
        columns = {k: v.tolist() for k, v in totals.items()}
        unphased = self.stepped & (self.phases == "")
        for r in np.flatnonzero(unphased).tolist():
            self.phases[r] = str(self.policy.status(self.states[r])["phase"])
        phases, ticks = self.phases.tolist(), self.ticks.tolist()
        bad, onset = self.scenario.release_bad, self.release.onset_s()
        return [
            self._result(r, {k: v[r] for k, v in columns.items()}, phases[r], ticks[r], bad, onset)
            for r in range(len(self.runs))
        ]

    def _result(
        self, r: int, totals: dict[str, float], phase: str, ticks: int, bad: bool, onset: float | None
    ) -> RunResult:
        """Run ``r``'s result: its record from its ``totals`` (``run``'s columns), final
        ``phase`` and ``ticks``, with the release's ground truth ``bad`` and fault ``onset``."""
        run = self.runs[r]
        d = run.decision
        record = RunRecord(
            scenario=self.scenario.name,
            policy=self.policy.name,
            run=run.index,
            seed=run.seed,
            outcome=d.outcome,
            release_bad=bad,
            decision_time_s=d.time,
            fault_onset_s=onset,
            final_phase=phase,
            ticks=ticks,
            rollback_reason=d.reason,
            canary_requests=totals["canary_requests"],
            canary_errors=totals["canary_errors"],
            excess_errors=totals["excess_errors"],
            excess_errors_after_promotion=totals["excess_errors_after_promotion"],
            users_exposed=totals["users_exposed"],
            users_affected=totals["users_affected"],
            **decide(d.outcome, bad, d.time, onset),
            **self._business_record(r, d.outcome),
        )
        series = None
        if self.keep_series and self.series is not None:
            b = self.series.batch()
            series = SeriesBatch(b.labels, b.times_s, b.values[r : r + 1].copy(), b.present[r : r + 1].copy())
        return RunResult(record, run.lines, series)

    def _business_record(self, r: int, outcome: str) -> dict[str, Any]:
        """The record's business fields of run ``r`` (``sim.outcomes``; none without ``business:``)."""
        b = self.business
        if b is None:
            return {}
        ended = self.runs[r].ended
        winner = ended.winner if ended is not None else winner_of(outcome)
        true_lift = b.model.true_lift(self.policy.business_metric())

        def est(x: float | None) -> float | None:
            return None if x is None or x != x else float(x)

        return {
            "winner": winner,
            "correct": (
                winner_correct(winner, true_lift, b.model.min_effect, self.scenario.release_bad)
                if ended is not None
                else rollout_correct(outcome, true_lift, b.model.min_effect, self.scenario.release_bad)
            ),
            "true_lift": true_lift,
            "lift_estimate": est(ended.lift) if ended is not None else None,
            "lift_ci_low": est(ended.lift_low) if ended is not None else None,
            "lift_ci_high": est(ended.lift_high) if ended is not None else None,
            "regret_conversions": float(b.regret_conversions[r]),
            "regret_revenue": float(b.regret_revenue[r]),
            "regret_conversions_after_promotion": float(b.regret_conversions_after[r]),
            "regret_revenue_after_promotion": float(b.regret_revenue_after[r]),
            "sessions": float(b.sessions[r].sum()),
            "srm": bool(ended.srm) if ended is not None else None,
        }


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A batch allocates many short-lived objects and no reference cycles that matter,
    yet the cyclic collector's full passes walk every object of the process (numpy,
    pandas, scipy, pydantic ...): about a tenth of a rollout's cost for nothing. It is
    paused for the batch and restored after; reference counting still frees memory."""
    global _FROZEN
    if not _FROZEN:
        # What the process holds before its first batch (modules, their tables, the
        # scenario) is never garbage, but every full pass after a batch walked it again
        # (about a fifth of a 500-run batch's time, measured): moved once out of the
        # collector's sight (``gc.freeze``); it is still freed by reference counting.
        # The garbage is collected first from the two younger generations only: start-up's
        # garbage is there (the ``pdsim`` command's young generation is large, sim/cli.py
        # STARTUP_GC_THRESHOLDS); a full pass found 30 more objects for 3x the time.
        gc.collect(1)
        gc.freeze()
        _FROZEN = True
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: Whether ``_collector_paused`` has frozen the process's objects yet.
_FROZEN = False


def run_rollouts(
    scenario: Scenario,
    policy: Policy,
    seeds: Sequence[int],
    *,
    run_indexes: Sequence[int] | None = None,
    exact: bool = False,
    trace: bool = False,
    keep_series: bool = False,
) -> list[RunResult]:
    """Simulate rollouts, one per seed; each result depends on its own seed only."""
    with _collector_paused():
        if exact and len(seeds) > 1:
            idx = list(run_indexes) if run_indexes is not None else list(range(len(seeds)))
            return [
                World(scenario, policy, [s], run_indexes=[k], exact=True, trace=trace, keep_series=keep_series).run()[0]
                for s, k in zip(seeds, idx)
            ]
        return World(
            scenario, policy, seeds, run_indexes=run_indexes, exact=exact, trace=trace, keep_series=keep_series
        ).run()
