"""The policy contract: observations in, actions out, state passed through.

A policy is a pure state machine in the style of Gymnasium's ``FuncEnv``:
``step(state, observation) -> (new_state, actions)``. It never imports simpy, never
sees raw requests and never mutates its inputs, so the same object can be driven by the
simulator, by a recorded metric series (``pdsim replay``) or by a unit test with
hand-written observations. ``sim.policies.checks.check_policy`` verifies that contract
for any policy, the way scikit-learn's ``check_estimator`` does for estimators, and
``sim.policies.driver`` is the one loop that moves a policy's time forward.

What a driver must know about a policy beyond ``step`` (does it read both versions'
counters, is its trace written only on change, which requests match its A/B routes) is
declared, not probed: ``Policy.tags`` and ``Policy.matches``, with defaults that a policy
inherits by subclassing ``Policy`` (as scikit-learn's estimator tags and Gymnasium's
``FuncEnv`` base do).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from sim.policies.judges.base import Judge, JudgeData, Judgement
from sim.promql.series import Result, Scalar, Vector

#: Value of a metric query that returned no data (Prometheus: an empty vector).
NO_DATA = None


@dataclass(frozen=True)
class QueryError:
    """A metric query that failed: the metrics server answered with an error, or the
    query could not be evaluated. Not "no data": Flagger counts it as a failed check with
    another message, Argo makes it an Error measurement (``MarkMeasurementError``).

    Attributes:
        message: what went wrong, for the trace and the controller's events.
    """

    message: str


class ScalarResult(float):
    """A PromQL *scalar* result (``scalar(...)``, ``time()``, a number), as opposed to an
    instant vector of one sample.

    It is a ``float`` in every respect; the class only remembers the result type, which
    the controllers decode differently: Argo's Prometheus provider hands a scalar to the
    conditions as a number (``result``, not ``result[0]``), and Flagger's ``RunQuery``
    cannot decode one at all (it unmarshals ``data.result`` as a list of series: a query
    error). A plain float is a value read from a replay CSV or written in a test, read as
    before: by Flagger as a value, by Argo as a vector of that one sample.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ScalarResult({float(self)!r})"


class MatrixResult(tuple[float, ...]):
    """A PromQL *range vector* result (a top-level ``x[5m]`` or subquery): every sample of
    every series, series after series, each in time order.

    A tuple of floats in every respect; the class only remembers the result type: Argo's
    provider flattens a matrix into ``result`` that way (``processResponse``), while
    Flagger's ``RunQuery`` refuses one that has series (``ErrMultipleValuesReturned``).
    """

    __slots__ = ()


#: What ``Observation.metrics`` holds for a metric (see ``Observation``).
MetricValue = float | tuple[float, ...] | QueryError | None


#: Flagger's ``ErrMultipleValuesReturned``: a range vector that has series.
MULTIPLE_VALUES = QueryError("query returned multiple values")


def single_value(value: MetricValue) -> float | QueryError | None:
    """A metric value with any vector reduced as Flagger's Prometheus client reduces one
    (``pkg/metrics/providers/prometheus.go`` ``RunQuery``): the *last* series' sample
    (each overwrites the one before), None when empty, ``MULTIPLE_VALUES`` for a range
    vector that has series. Other values come back as they are. This is how a policy that
    does not ``reads_vectors`` is handed, and traced, a recorded vector."""
    if isinstance(value, tuple):
        if isinstance(value, MatrixResult) and value:
            return MULTIPLE_VALUES
        return value[-1] if value else None
    return value


def metric_values(result: Result) -> list[MetricValue]:
    """A PromQL engine ``Result`` as the policy is handed it, one value per row (run):
    a ``QueryError`` where that run's evaluation failed, a ``ScalarResult`` for a scalar,
    the tuple of the present samples (in the result's series order; ``()`` when empty)
    for an instant vector and a ``MatrixResult`` for a range vector. NaN stays NaN."""
    value = result.value
    if isinstance(value, Scalar):
        out: list[MetricValue] = [ScalarResult(v) for v in value.values.tolist()]
    elif isinstance(value, Vector) and value.values.shape[1] == 1:
        # One possible series (sum(...), a ratio of sums): the common case, kept cheap.
        out = [(v,) if p else () for v, p in zip(value.values[:, 0].tolist(), value.present[:, 0].tolist())]
    elif isinstance(value, Vector):
        present, values = value.present.tolist(), value.values.tolist()
        out = [tuple(v for v, p in zip(row, here) if p) for row, here in zip(values, present)]
    else:  # Matrix: (R, T, K'), flattened series-major as processResponse does
        present = np.swapaxes(value.present, 1, 2).tolist()
        values = np.swapaxes(value.values, 1, 2).tolist()
        out = [
            MatrixResult(v for series, have in zip(rows, haves) for v, p in zip(series, have) if p)
            for rows, haves in zip(values, present)
        ]
    if result.error is not None:
        failed = QueryError(result.message or "query failed")
        out = [failed if e else v for v, e in zip(out, result.error.tolist())]
    return out


def metric_arrays(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """A PromQL engine ``Result`` as ``BatchObservation`` columns: each row's single
    sample (of an instant vector with exactly one series present) and whether it has one.
    A row whose evaluation failed, whose vector is empty or has several series, a scalar
    (the controllers decode one differently from a vector of one sample) and a range
    vector are not single (value NaN). No Python work per row."""
    value = result.value
    if isinstance(value, Vector):
        present = value.present
        if present.shape[1] == 1:
            single = present[:, 0].copy()
            values = np.where(single, value.values[:, 0], np.nan)
        else:
            single = present.sum(axis=1) == 1
            values = np.where(single, np.where(present, value.values, 0.0).sum(axis=1), np.nan)
    else:  # a scalar or a range vector
        rows = value.values.shape[0]
        values, single = np.full(rows, np.nan), np.zeros(rows, dtype=bool)
    if result.error is not None:
        single = single & ~result.error
        values = np.where(single, values, np.nan)
    return values.astype(float, copy=False), single


@dataclass(frozen=True)
class Routes:
    """What the router is doing now, as the controller reads it back (``GetRoutes``).

    Attributes:
        canary_weight: percent of live traffic sent to the canary (0-100); with
            ``matched``, percent of the requests that match the A/B conditions.
        mirrored: whether the canary receives a mirrored copy of primary traffic.
        matched: A/B routing: only requests matching ``analysis.match`` are weighted.
        by_user: an A/B experiment's split (``SetWeights.by_user``, issue 19):
            ``canary_weight`` percent of the users, each sticky to one version.
    """

    canary_weight: int = 0
    mirrored: bool = False
    matched: bool = False
    by_user: bool = False


@dataclass(frozen=True)
class Readiness:
    """Readiness of a workload as Kubernetes reports it.

    Attributes:
        ready: all the workload's pods are updated and available.
        unready_since: when the ``MinimumReplicasUnavailable`` condition was last
            updated (seconds since t=0), or None when ready. Flagger compares this
            with ``progressDeadlineSeconds`` (``pkg/canary/deployment_ready.go``).
        updated: pods of the current template when the rollout has created them all and
            no old pod is left (the Deployment's ``updatedReplicas`` once it equals
            ``spec.replicas`` and ``status.replicas``); None while a rolling update still
            replaces pods, or when the counts are not known (then only ``ready`` tells).
        available: how many pods are available (``availableReplicas``); None when not
            known (a replay's ``ready:`` rows). Flagger's ready thresholds compare it with
            ``updated``; Argo's canary steps wait for it (``ScaleUp.replicas``).
        startup_s: how long the workload's new pods take to become available, when the
            world counts them (0: at once, so pods scaled at a tick serve at that tick,
            as the reconcile their ReplicaSet's update triggers would see them).
    """

    ready: bool = True
    unready_since: float | None = None
    updated: int | None = None
    available: int | None = None
    startup_s: float | None = None


@dataclass(frozen=True)
class Judged:
    """A judge's answer for this run, computed by the world for a whole class of runs at
    once (class stepping with a ``Policy.batch_judge``): the policy takes it instead of
    judging ``versions`` itself, and leaves the judge's state to the world.

    Attributes:
        judgement: the run's judgement at this tick.
    """

    judgement: Judgement


class AskJudge:
    """``Observation.versions`` of class stepping's first try of a judged policy: a step
    that would consult its judge raises ``JudgementNeeded`` instead, and the world judges
    the class's runs in one pass and steps them again, each with its ``Judged`` answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ASK_JUDGE"


#: The one ``AskJudge``.
ASK_JUDGE = AskJudge()


class JudgementNeeded(Exception):
    """A step needs its judge's answer, and the observation is ``ASK_JUDGE``."""


#: The defaults of ``Observation``'s ``routes`` and readiness fields (frozen: shareable).
_NO_ROUTES, _READY = Routes(), Readiness()
#: Marks an ``Observation`` mapping argument left out (each gets its own new dict).
_NEW_DICT: Any = object()


@dataclass(frozen=True)
class BusinessData:
    """Cumulative business outcomes per arm of one run, for an A/B experiment (issue 19).

    Every field is a pair ``(primary, candidate)``: what the sessions served by each
    version produced from the rollout's start up to the tick (the world's ``business:``
    model, ``sim.world.business``). A session is served by one version (sticky by user
    under ``SetWeights.by_user``); its conversion, order value and engagement are that
    version's.

    Attributes:
        sessions: sessions started on each version.
        conversions: sessions that converted (at most one conversion per session).
        order_value_sum, order_value_sumsq: the sum and the sum of squares of the order
            values of those conversions (so revenue per session has the same sums).
        engagement_sum, engagement_sumsq: the sum and sum of squares of the per-session
            engagement counts.
        users: distinct users seen on each version (what an assignment log counts; the
            sample-ratio-mismatch check compares them with the split).
        requests, errors: live requests each version served and how many failed, over
            the same span (what a request-success-rate guardrail reads).
    """

    sessions: tuple[float, float] = (0.0, 0.0)
    conversions: tuple[float, float] = (0.0, 0.0)
    order_value_sum: tuple[float, float] = (0.0, 0.0)
    order_value_sumsq: tuple[float, float] = (0.0, 0.0)
    engagement_sum: tuple[float, float] = (0.0, 0.0)
    engagement_sumsq: tuple[float, float] = (0.0, 0.0)
    users: tuple[float, float] = (0.0, 0.0)
    requests: tuple[float, float] = (0.0, 0.0)
    errors: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, init=False)
class Observation:
    """Everything a policy may see at one tick.

    Attributes:
        t: seconds since the new revision was applied.
        tick: 1-based tick number.
        metrics: metric name -> what its query returned (``MetricValue``):

            * a ``float``: a value, NaN included (a replay CSV's number, a hand-bound
              signal), or a PromQL scalar result, then a ``ScalarResult``;
            * ``NO_DATA`` (None): no data (an empty result, a replay CSV's empty cell);
            * a tuple of floats: an instant vector's sample values, in the world's series
              order (``()``: an empty vector, no data as None is);
            * a ``QueryError``: the query failed.

            Each policy reads these as its controller does (Flagger: the last sample of
            a vector, NaN and empty are "no values found"; Argo: a vector is the list
            ``result``, an empty one makes ``result[0]`` an Error measurement, NaN is a
            value). The simulator passes a lazy mapping that evaluates a query only when
            the policy reads it; values never depend on whether they were read. Queries
            the policy declares trace-only (``PolicyTags.trace_only_queries``) are absent
            from an untraced run's metrics.
        routes: the router's current state.
        canary: canary workload readiness.
        primary: primary workload readiness.
        webhooks: scripted webhook outcomes by hook name or type (True = 2xx); a
            hook with no entry takes its type's default (see the policy).
        webhook_latency: how long such a call takes to answer, by the same keys (0 when
            absent); Argo job and web measurements stay Running that long.
        webhook_attempt: the outcome of another attempt of a scripted webhook call
            (a retry): ``webhook_attempt(key, k, at)`` for the ``k``-th retry (k >= 1) of
            a call to the hook scripted under ``key``, made at time ``at``; True = 2xx.
            The world evaluates the scenario's script again, as for a new call (each
            attempt counts for ``fail_first``); None (a replay, a test) when retries
            repeat the first attempt's outcome.
        versions: both versions' per-slot counters for a statistical judge (the world
            fills it only for policies with a ``judge``); None when not recorded, e.g.
            in ``pdsim replay`` of a metric-values CSV. Under class stepping, the world
            judges for the policy instead (``Policy.batch_judge``): ``ASK_JUDGE`` first,
            then the run's ``Judged`` answer.
        business: the run's cumulative business outcomes per version (``BusinessData``),
            filled by the world only for a policy whose tags declare ``reads_business``
            and a scenario with a ``business:`` block; None otherwise.
    """

    t: float
    tick: int
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    routes: Routes = _NO_ROUTES
    canary: Readiness = _READY
    primary: Readiness = _READY
    webhooks: Mapping[str, bool] = field(default_factory=dict)
    webhook_latency: Mapping[str, float] = field(default_factory=dict)
    versions: JudgeData | Judged | AskJudge | None = None
    webhook_attempt: Callable[[str, int, float], bool] | None = None
    business: BusinessData | None = None

    def __init__(
        self,
        t: float,
        tick: int,
        metrics: Mapping[str, MetricValue] = _NEW_DICT,
        routes: Routes = _NO_ROUTES,
        canary: Readiness = _READY,
        primary: Readiness = _READY,
        webhooks: Mapping[str, bool] = _NEW_DICT,
        webhook_latency: Mapping[str, float] = _NEW_DICT,
        versions: JudgeData | Judged | AskJudge | None = None,
        webhook_attempt: Callable[[str, int, float], bool] | None = None,
        business: BusinessData | None = None,
    ) -> None:
        # The frozen-state copy device (sim.policies.frozen), inlined: one write of the instance dict instead of a
        # frozen object.__setattr__ per field: the world builds one per tick of every rollout.
        object.__setattr__(
            self,
            "__dict__",
            {
                "t": t,
                "tick": tick,
                "metrics": {} if metrics is _NEW_DICT else metrics,
                "routes": routes,
                "canary": canary,
                "primary": primary,
                "webhooks": {} if webhooks is _NEW_DICT else webhooks,
                "webhook_latency": {} if webhook_latency is _NEW_DICT else webhook_latency,
                "versions": versions,
                "webhook_attempt": webhook_attempt,
                "business": business,
            },
        )


@dataclass(frozen=True, eq=False)
class BatchObservation:
    """One tick of many runs, column by column: what a class-stepping policy keys on.

    **Class stepping** (``PolicyTags.steps_by_class``) is the world's one speed device
    for policy steps: instead of calling ``step`` once per run, the world calls it once
    per *class* of runs that tick at the same time with

    * equal states (``==``: a state class may leave display-only fields, such as event
      text or the last measured values, out of its equality with ``field(compare=False)``),
    * equal routes, canary and primary readiness (the world compares those itself), and
    * equal rows of ``Policy.observation_keys(batch)``,

    and gives every run of the class the step's result: the same new state object and
    the same actions. The policy's promise is that ``step`` would return, for each run of
    a class, a state equal to the class's and the same actions: everything ``step`` reads
    from ``Observation.metrics`` (and ``versions``) that can change a decision, a counter
    or an action must show in the keys. Display-only fields are then those of the run the
    class was stepped with; the world steps traced runs one by one, so a trace always
    shows each run's own values. ``tick``, ``webhooks`` and ``webhook_attempt`` are not
    keyed: the world steps runs one by one when a scenario scripts webhooks, and a policy
    that reads ``tick`` must not declare the tag.

    Attributes:
        t: the tick's time (the same for every run of the batch).
        size: the number of runs n.
        metrics: metric name -> one ``MetricValue`` per run, as ``Observation.metrics``
            would hold them.
        values: metric name -> (n,) floats: each run's sample where its result is an
            instant vector holding exactly one sample (NaN included), or a plain float;
            NaN elsewhere (``metric_arrays``). With ``single`` it lets a policy key the
            common result without Python work per run.
        single: metric name -> (n,) bools: whether ``values`` holds the run's result.
        versions: both versions' counters of every run (a judge's batch data), or None.
    """

    t: float
    size: int
    metrics: Mapping[str, Sequence[MetricValue]]
    values: Mapping[str, np.ndarray]
    single: Mapping[str, np.ndarray]
    versions: Any = None

    @classmethod
    def of(cls, t: float, rows: Sequence[Mapping[str, MetricValue]]) -> BatchObservation:
        """The batch of runs whose metrics are ``rows`` (one mapping per run, as
        ``Observation.metrics``), its columns computed value by value (for tests, checks
        and replays; the world builds them from engine results, ``metric_arrays``)."""
        names = sorted({name for row in rows for name in row})
        metrics = {name: [row.get(name) for row in rows] for name in names}
        values, single = {}, {}
        for name, column in metrics.items():
            one = [(type(v) is tuple and len(v) == 1) or type(v) is float for v in column]  # NaN included
            single[name] = np.array(one, dtype=bool)
            values[name] = np.array(
                [(v[0] if type(v) is tuple else v) if o else math.nan for v, o in zip(column, one)], dtype=float
            )
        return cls(t, len(rows), metrics, values, single)


@dataclass(frozen=True)
class SetWeights:
    """Route ``canary_weight`` percent of live traffic to the canary (rest to primary).

    ``mirrored``: ``mirror_percent`` of the primary's traffic is also copied to the
    canary (responses discarded). ``matched``: A/B routing, the weight applies only to
    requests that match the policy's conditions; the others stay on the primary.
    ``header_route`` (Argo ``setHeaderRoute``): matching requests all go to the canary,
    the others by weight.

    Routing details (issue 16), each with a default that keeps the behaviour above:

    * ``header_match``: the name of the managed route whose match selects the requests of
      ``header_route`` (``Policy.route_matches``); "" selects with ``Policy.matches``.
    * ``mirror_match``: the name of the managed route whose match selects the mirrored
      requests (Argo ``setMirrorRoute.match``: method, path, headers); "" mirrors every
      live request (Flagger's ``mirror``). Istio mirrors a matching request whichever
      version serves it (``HTTPRoute.mirror``: "in addition to forwarding the requests to
      the intended destination").
    * ``once_primary_ready``: the router applies these weights only once the primary
      (Argo's stable ReplicaSet) is ready, keeping the current ones until then. Argo's
      abort under ``dynamicStableScale`` keeps the canary's weight until enough stable
      pods are available (``rollout/trafficrouting.go``
      ``calculateDesiredWeightOnAbortOrStableRollback``); live traffic reaching the
      canary meanwhile counts in the blast radius.
    * ``by_user`` (an A/B experiment's split, issue 19): ``canary_weight`` percent of the
      *users* go to the canary, each user's requests all to one version (assigned by a
      hash of the user id, sticky for the rollout, as experimentation platforms assign),
      instead of that percent of the requests.
    """

    canary_weight: int
    mirrored: bool = False
    matched: bool = False
    mirror_percent: float = 100.0
    header_route: bool = False
    header_match: str = ""
    mirror_match: str = ""
    once_primary_ready: bool = False
    by_user: bool = False


@dataclass(frozen=True)
class Promote:
    """Copy the canary's spec to the primary: from now on the new version serves all
    traffic that reaches the primary. This is the promotion *decision*."""


@dataclass(frozen=True)
class Rollback:
    """Abandon the release: all traffic back to the (unchanged) primary."""

    reason: str = ""


@dataclass(frozen=True)
class ScaleUp:
    """Scale the canary: its new pods start, readiness is measured from now.

    Attributes:
        replicas: the canary's pod count from now on (an Argo canary scaled step by
            step: pods added start now and are available after the release's start-up,
            pods removed go at once); None: the whole workload from zero (a Flagger
            canary, a blue/green preview), ready once all its pods have started.
    """

    replicas: int | None = None


@dataclass(frozen=True)
class HookCalled:
    """The policy called a webhook (for the trace, for scripts that fail the first N
    calls, and for load testers that start sending traffic to the canary).

    Attributes:
        name: the hook's name.
        type: its type (``rollout``, ``confirm-promotion``, ...).
        ok: the outcome the policy acted on.
        load_rps: a load tester's request rate towards the canary (0: none).
        load_s: for how long it sends.
    """

    name: str
    type: str
    ok: bool
    load_rps: float = 0.0
    load_s: float = 0.0


@dataclass(frozen=True)
class Finish:
    """The rollout reached a terminal phase (canary scaled to zero)."""

    phase: str


@dataclass(frozen=True)
class ExperimentEnded:
    """An A/B experiment's conclusion (issue 19), given with the ``Promote`` or
    ``Rollback`` that acts on it; the world writes it into the run record.

    Attributes:
        winner: ``candidate``, ``primary`` or ``none`` (inconclusive, or stopped).
        lift: the rule's estimate of the primary metric's relative lift (candidate /
            primary - 1), NaN when it has none.
        lift_low, lift_high: its interval at the rule's level.
        srm: the sample-ratio-mismatch check flagged the split.
        reason: why it ended, in words.
    """

    winner: Literal["candidate", "primary", "none"]
    lift: float = math.nan
    lift_low: float = math.nan
    lift_high: float = math.nan
    srm: bool = False
    reason: str = ""


Action = SetWeights | Promote | Rollback | ScaleUp | HookCalled | Finish | ExperimentEnded


@dataclass(frozen=True)
class MetricQuery:
    """A query the policy will read each tick.

    Attributes:
        name: the key under which the value appears in ``Observation.metrics``.
        signal: what is measured: ``request-success-rate`` (percent 0-100),
            ``request-duration`` (p99 in ms) or ``custom`` (a MetricTemplate or inline
            query, whose simulated signal the scenario binds by ``bindings``).
        window_s: the PromQL range (``[1m]``) in seconds.
        min: lower bound of the passing range (None: unbounded).
        max: upper bound of the passing range (None: unbounded).
        bindings: for ``custom``: names to look the binding up by, in order (the
            metric's name, then its template's).
        query: the query text, when known, exactly as the controller sends it (for a
            Prometheus source, the rendered PromQL): unbound queries of well-known shapes (a
            5xx success ratio, a histogram quantile) are recognised from it.
        provider: the metric source's type: ``prometheus`` (builtins and Prometheus
            templates, whose ``query`` the world can evaluate), or another provider's
            (``datadog``, ``cloudwatch``, ...), whose value only a binding can give.
        scale: what the controller multiplies the query's value by before comparing it
            with the bounds (Flagger's kubernetes/Gateway API ``request-duration`` reads
            seconds and compares milliseconds: 1000); 1 for most.
    """

    name: str
    signal: str
    window_s: float
    min: float | None = None
    max: float | None = None
    bindings: tuple[str, ...] = ()
    query: str = ""
    provider: str = "prometheus"
    scale: float = 1.0


@dataclass(frozen=True)
class PolicyTags:
    """What a policy declares about itself to whatever drives it (the world, a replay, the checks).

    All default to the plain threshold policy's answer, so a policy declares only what
    differs. The world reads them once per batch, never per tick.

    Attributes:
        reads_versions: the policy reads ``Observation.versions`` (a statistical judge, an
            Argo Kayenta metric): the world then draws the primary's counters too, and the
            checks feed it random per-version counters.
        versions_latency: those per-version counters must carry latency histograms (of
            both versions).
        trace_on_change: the trace gets a line only when the status changed or something
            other than a webhook call was done (Argo's resyncs), not at every tick.
        reads_vectors: the policy reads a Prometheus vector as a whole (Argo's Prometheus
            provider hands conditions a list, hence ``result[0]``): the trace shows it as a
            list, and ``pdsim replay`` hands a recorded vector as is. For other policies a
            recorded vector is replayed, and traced, as Flagger's provider reads one: its
            last sample.
        steps_by_class: the policy implements ``observation_keys`` (see ``BatchObservation``):
            the world may then step once for each class of runs that tick together with
            equal states and equal keys, instead of once per run.
        reads_business: the policy reads ``Observation.business`` (an A/B experiment): the
            world fills it at every tick (and draws both versions' requests).
        trace_only_queries: names of ``queries()`` whose values no decision reads (a
            Flagger check its statistical judge takes over: the judge reads both versions'
            counters instead). The world evaluates them only for a trace, which shows them;
            an untraced run's observations leave them out. A query draws no random number,
            so leaving one out changes no result (``check_trace_only_queries``).
    """

    reads_versions: bool = False
    versions_latency: bool = False
    trace_on_change: bool = False
    reads_vectors: bool = False
    steps_by_class: bool = False
    reads_business: bool = False
    trace_only_queries: frozenset[str] = frozenset()


#: The tags of a policy that declares none.
DEFAULT_TAGS = PolicyTags()


@dataclass(frozen=True)
class MeshRetries:
    """The mesh's retry policy on the routes to both versions: Flagger's
    ``spec.service.retries``, an Istio ``HTTPRetry`` written into the VirtualService's
    routes (fluxcd/flagger ``pkg/router/istio.go``, ``Retries: canary.Spec.Service.Retries``)
    or an App Mesh retry policy (``pkg/router/appmesh.go`` ``makeRetryPolicy``).

    Attributes:
        attempts: retries after the first try (Istio ``attempts``; 0: none).
        retry_on: the conditions, comma separated (Istio ``retryOn``); "" is Istio's
            default, ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes``
            with 503 retriable.
        per_try_timeout_s: Istio ``perTryTimeout`` (0: unset); recorded, not simulated.
    """

    attempts: int = 0
    retry_on: str = ""
    per_try_timeout_s: float = 0.0

    @property
    def tries_of_failures(self) -> int:
        """How many times a request the simulated service fails (HTTP 500) is tried in
        all: 1 + ``attempts`` when ``retry_on`` retries a 500 (``5xx``, or the status
        code ``500`` itself), else 1 (Istio's default conditions retry 503s and connection
        failures, not 500s)."""
        conditions = {c.strip().lower() for c in self.retry_on.split(",")}
        return 1 + max(self.attempts, 0) if conditions & {"5xx", "500"} else 1


@dataclass(frozen=True)
class MetricTargets:
    """What the series a policy's queries select are called, in the cluster it runs in.

    The world's exporters label their series from these names as the controller's routers
    name things (``sim.world.exporters``), so a query rendered from the policy's own names
    (Flagger's ``{{ target }}``, an Argo template's ``{{args.service-name}}``) selects the
    right version's series.

    Attributes:
        provider: whose exporter publishes the series (Flagger's ``provider``, an Argo
            ``trafficRouting`` kind; ``istio`` by default).
        controller: ``flagger`` (a primary Deployment beside the target) or ``argo`` (both
            versions are ReplicaSets of one Rollout).
        namespace: the workloads' namespace.
        target: Flagger's ``targetRef.name``; Argo's Rollout name.
        service: Flagger's ``service.name`` (default: the target); Argo's ``stableService``.
        canary_service: Argo's ``canaryService`` (Flagger derives ``<service>-canary``).
        ingress, route: Flagger's ``ingressRef`` and ``routeRef`` names.
        replicas: pods per version when the policy knows them (Argo ``replicas``).
        live_via_stable: live requests reach the canary through the stable Service (Argo
            blue-green: the active Service selects the new pods once switched).
        session_affinity_s: Flagger's ``analysis.sessionAffinity`` ``maxAge`` in seconds
            (0: no session affinity): while the canary's weight is not 0, a request the
            weighted route sends to the canary gets its cookie, and the user's requests
            go to the canary until it expires (``pkg/router/istio.go``
            ``getSessionAffinityRouteRules``; ``GetMaxAge`` defaults it to 86400).
        session_affinity_primary_s: with ``sessionAffinity.primaryCookieName``, the
            primary's cookie lifetime, the analysis interval in seconds (0: none): a
            request the weighted route sends to the primary gets that cookie, and the
            user's requests go to the primary until it expires.
        retries: the mesh's retry policy on the live routes (``MeshRetries``), or None.
            The destination's proxy reports every attempt (its metrics see each try), the
            user sees the last one.
    """

    provider: str = "istio"
    controller: Literal["flagger", "argo"] = "flagger"
    namespace: str = "default"
    target: str = "podinfo"
    service: str = ""
    canary_service: str = ""
    ingress: str = ""
    route: str = ""
    replicas: int | None = None
    live_via_stable: bool = False
    session_affinity_s: float = 0.0
    session_affinity_primary_s: float = 0.0
    retries: MeshRetries | None = None


#: The targets of a policy that names none: Flagger's own example, podinfo in ``default``.
DEFAULT_TARGETS = MetricTargets()


@runtime_checkable
class Policy(Protocol):
    """What the world, ``pdsim replay`` and the checks need from a policy.

    ``name``, ``terminal_phases``, ``initial_state``, ``step``, ``next_tick``,
    ``queries`` and ``status`` have no default. ``tags``, ``matches`` and ``describe``
    do: a policy class inherits them by subclassing ``Policy`` and overrides what it
    declares differently.
    """

    name: str
    terminal_phases: frozenset[str]

    def initial_state(self) -> Any: ...

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]: ...

    def next_tick(self, state: Any, t: float) -> float | None:
        """Time of the next tick after ``t``, or None when the policy is done."""
        ...

    def queries(self) -> Sequence[MetricQuery]: ...

    def status(self, state: Any) -> dict[str, Any]:
        """The controller's status fields for the trace (phase, canary_weight, ...)."""
        ...

    @property
    def tags(self) -> PolicyTags:
        """What the policy declares to its drivers; default ``DEFAULT_TAGS``."""
        return DEFAULT_TAGS

    def matches(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers matches the policy's A/B conditions
        (header names case-insensitive); default False: no request does."""
        return False

    def route_matches(self, route: str, request: dict[str, str]) -> bool:
        """Whether a request matches the managed route named ``route`` (``SetWeights``'s
        ``header_match`` and ``mirror_match``). ``request`` holds its headers (names
        lower-case, ``cookie`` among them) and the pseudo-headers ``:method`` and
        ``:path``, as Envoy presents a request to route matching. Default: ``matches``."""
        return self.matches(request)

    def describe(self) -> list[str]:
        """Human lines describing the strategy (for reports); default none."""
        return []

    def metric_targets(self) -> MetricTargets:
        """The names the series its queries select carry; default ``DEFAULT_TARGETS``."""
        return DEFAULT_TARGETS

    def event(self, state: Any) -> str:
        """What the step that made ``state`` did, in words, for the trace's ``event``
        (e.g. ``setWeight 20``); default "" (the policy says nothing)."""
        return ""

    def observation_keys(self, batch: BatchObservation) -> np.ndarray | None:
        """Integer keys (n, k) of a tick's runs for class stepping (``BatchObservation``):
        runs with equal states and equal rows get one step. None: step this batch's runs
        one by one. Called only for a policy whose tags declare ``steps_by_class``."""
        return None

    def business_metric(self) -> str:
        """The business metric whose true lift decides whether the rollout's outcome was
        right (the record's ``correct``, issue 19): ``conversion`` (default),
        ``order_value``, ``revenue`` or ``engagement``. An A/B experiment names its
        primary metric."""
        return "conversion"

    def batch_judge(self) -> Judge | None:
        """The judge the world runs for a class-stepping policy that reads both versions
        (``Observation.versions`` is then ``ASK_JUDGE`` or ``Judged``): the world keeps
        each run's judge state from its first judgement on, so such a policy must key
        every batch (``observation_keys`` never None). Default None: a policy that reads
        versions and has none is stepped run by run."""
        return None


class PolicyContractError(AssertionError):
    """A policy broke the contract that ``sim.policies.checks.check_policy`` verifies."""
