"""Argo Rollouts' AnalysisRun as pure functions.

One call of ``record`` (or ``terminate``) is one run of ``reconcileAnalysisRun``
(argoproj/argo-rollouts ``analysis/analysis.go``), in the same order of work:

1. a completed run is left alone;
2. the metrics are validated (``ValidateMetrics``, ``utils/analysis/factory.go``); an
   invalid spec puts the run in Error;
3. ``generateMetricTasks`` picks the metrics that take a measurement now
   (``due_metrics``);
4. ``runMeasurements`` takes them with the provider results the caller passes in,
   resuming or terminating in-flight measurements, and updates the counters;
5. ``assessRunStatus`` assesses every metric (``assessMetricStatus``) and the run;
6. ``garbageCollectMeasurements`` keeps the last 10 measurements per metric (counters
   are kept, so verdicts do not change);
7. ``calculateNextReconcileTime`` says when to come back (``next_due``).

Every status change the controller writes comes back to it as an informer update
event, which reconciles the run again straight away. That matters in one case: the
reconcile in which a metric fails assesses the other metrics with the run not yet
terminating (``IsTerminating`` reads the phases written by the previous reconcile),
so an unfinished sibling keeps the run Running; the next reconcile, a moment later,
sees the failed metric, terminates in-flight measurements and completes the run.
``record`` runs that follow-up reconcile at the same ``t``.

Nothing here talks to a metric provider. The caller passes, for each due metric, what
the provider returned: a raw value (decided by the metric's conditions through
``decide``, by default ``sim.policies.argo.expr.evaluate_result``), a ``ProviderError``,
or a ``ProviderPhase`` (job, web, Kayenta: in flight with a resume time, or an
outcome). Times are seconds on the simulation clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from sim.policies.base import MetricValue, QueryError, ScalarResult
from sim.policies.frozen import build, field_values, replace

PENDING, RUNNING = "Pending", "Running"
SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"
COMPLETED = frozenset({SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR})  # AnalysisPhase.Completed()

#: ``DefaultErrorRetryInterval``: after an Error measurement the next one comes 10s later.
ERROR_RETRY_INTERVAL_S = 10.0
#: ``DefaultMeasurementHistoryLimit``: measurements kept per metric.
MEASUREMENT_HISTORY_LIMIT = 10
#: ``defaults.DefaultConsecutiveErrorLimit``.
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
#: Message a terminated in-flight measurement gets when it ends Successful or Inconclusive.
METRIC_TERMINATED = "Metric Terminated"
RUN_TERMINATED = "Run Terminated"

#: ``analysisStatusOrder`` (``utils/analysis/helpers.go``), best to worst.
STATUS_ORDER = (SUCCESSFUL, RUNNING, PENDING, INCONCLUSIVE, ERROR, FAILED)
_RANK = {p: i for i, p in enumerate(STATUS_ORDER)}
_TERMINATING = frozenset({FAILED, ERROR, INCONCLUSIVE})

# -- spec and state ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """A resolved AnalysisTemplate metric (arguments already substituted).

    Attributes:
        name: metric name (unique within the run).
        interval_s: ``interval``; None when unset (a single measurement, retried only
            after errors). 0 counts as set, as ``"0s"`` does.
        initial_delay_s: ``initialDelay``: no measurement before ``started_at`` + this.
        count: ``count``; None or 0 with no interval -> 1 measurement, with an interval
            and no count -> unbounded (runs until the run is terminated).
        failure_limit: Failed measurements tolerated (cumulative); -1 disables.
        inconclusive_limit: Inconclusive measurements tolerated (cumulative).
        consecutive_error_limit: consecutive Error measurements tolerated.
        consecutive_success_limit: consecutive Successful measurements that make the
            metric Successful (0 disables).
        success_condition: expression on ``result`` (None: unset).
        failure_condition: expression on ``result`` (None: unset).
        dry_run: matched by ``spec.dryRun``: measured, never decides nor terminates the run.
        provider: prometheus, web, job, kayenta, ... (decides what Terminate does).
        measurement_retention: ``measurementRetention`` limit for this metric (0: the
            default of 10).
    """

    name: str
    interval_s: float | None = None
    initial_delay_s: float = 0.0
    count: int | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    consecutive_success_limit: int = 0
    success_condition: str | None = None
    failure_condition: str | None = None
    dry_run: bool = False
    provider: str = "prometheus"
    measurement_retention: int = 0


@dataclass(frozen=True)
class Measurement:
    """One measurement. ``finished_at`` is None while it is in flight (phase Running);
    ``resume_at`` is when the controller looks at an in-flight one again.

    ``value`` and ``message`` are display-only: they are left out of equality and
    hashing (``field(compare=False)``), so that runs whose measurements took the same
    phase at the same times have equal states (class stepping, ``BatchObservation``).
    No decision reads them: the counters and the phase decide (``runMeasurements``,
    ``assessMetricStatus``), and a message is only copied into the metric's and the
    run's messages, which are display-only too.
    """

    phase: str
    value: object = field(compare=False)
    started_at: float
    finished_at: float | None
    message: str = field(default="", compare=False)
    resume_at: float | None = None


@dataclass(frozen=True)
class MetricResult:
    """``MetricResult``: the metric's phase and counters.

    A metric that has never started a measurement has no MetricResult in Argo; here it
    is a result in phase Pending with no measurements, and stays so if the run ends
    before it starts. ``measurements`` keeps only the newest ones (see
    ``MetricSpec.measurement_retention``); the counters count all of them.

    ``message`` (the last measurement's, or why a dry-run metric was assessed so) is
    display-only, left out of equality; ``measurements`` is compared but not hashed
    (the counters and the phase already tell most states apart), which keeps a state's
    hash cheap for class stepping.
    """

    name: str
    phase: str = PENDING
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0
    measurements: tuple[Measurement, ...] = field(default=(), hash=False)
    dry_run: bool = False
    message: str = field(default="", compare=False)

    @property
    def started(self) -> bool:
        return bool(self.measurements)

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None


@dataclass(frozen=True)
class AnalysisRunState:
    """An AnalysisRun: ``spec.terminate`` and the status fields.

    ``phase`` is Pending until the first reconcile (Argo: empty), then Running until
    it completes as Successful, Failed, Inconclusive or Error. ``message`` (why it
    completed so) is display-only, left out of equality: the rollout reads the phase.
    """

    name: str
    phase: str
    started_at: float
    metrics: tuple[MetricResult, ...]
    terminate: bool = False
    message: str = field(default="", compare=False)
    completed_at: float | None = None

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED

    def result(self, name: str) -> MetricResult:
        for r in self.metrics:
            if r.name == name:
                return r
        raise KeyError(name)


# -- provider results ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderError:
    """The provider failed (query error, non-2xx, job could not be created): an Error
    measurement (``MarkMeasurementError``)."""

    message: str = "provider error"


@dataclass(frozen=True)
class ProviderPhase:
    """An explicit outcome: ``Running`` with ``resume_at`` for a measurement in flight
    (job: resume at once after Run, then after √(2·elapsed); Kayenta: every 15s), or
    the phase a job/Kayenta/web measurement ended in."""

    phase: str
    resume_at: float | None = None
    value: object = None
    message: str = ""


_PROVIDED = (ProviderError, ProviderPhase)


def prometheus_result(value: MetricValue) -> ProviderError | float | list[float]:
    """What Argo's Prometheus provider makes of a query's result
    (``metricproviders/prometheus/prometheus.go`` ``Run`` and ``processResponse``).

    * an instant vector (a tuple) -> the list of its sample values, ``result`` in the
      conditions (hence ``result[0]``); an empty vector (``()`` or None) -> ``[]``, on
      which ``result[0]`` is an evaluation error, an Error measurement;
    * a scalar result (``ScalarResult``) -> the number itself (``result >= 0.9``);
    * a failed query (``QueryError``) -> ``MarkMeasurementError``: an Error measurement;
    * a plain float (a replay CSV's number, a hand-bound signal) -> a vector of that one
      sample. NaN stays a value: ``NaN >= x`` is false (a Failed measurement with a
      success condition), not an error.
    """
    if isinstance(value, tuple):
        return [float(x) for x in value]
    if value is None:
        return []
    if isinstance(value, QueryError):
        return ProviderError(value.message)
    if isinstance(value, ScalarResult):
        return float(value)
    return [float(value)]


#: What the caller passes per due metric. A raw value (float, list of floats, dict, str)
#: is decided by the conditions; None stands for an empty Prometheus vector (``[]``).
ProviderResult = ProviderError | ProviderPhase | float | list | dict | str | None
#: ``decide(result, success_condition, failure_condition)`` -> phase, or (phase, message).
Decide = Callable[[Any, "str | None", "str | None"], Any]


def _default_decide() -> Decide:
    global _decide
    if _decide is None:
        from sim.policies.argo.expr import evaluate_result  # written alongside; imported lazily

        _decide = evaluate_result
    return _decide


_decide: Decide | None = None


# -- small helpers from utils/analysis/helpers.go and analysis_types.go -------------------


def effective_count(spec: MetricSpec) -> int | None:
    """``Metric.EffectiveCount``: None means unbounded."""
    if not spec.count:
        return 1 if spec.interval_s is None else None
    return spec.count


def is_worse(current: str, new: str) -> bool:
    """``IsWorse``: whether ``new`` is worse than ``current`` in ``STATUS_ORDER``
    (a phase not in the order ranks as Successful)."""
    return _RANK.get(new, 0) > _RANK.get(current, 0)


def worst(left: str, right: str) -> str:
    """``Worst``."""
    return right if is_worse(left, right) else left


def is_terminating(state: AnalysisRunState) -> bool:
    """``IsTerminating``: ``spec.terminate``, or a non-dry-run metric already Failed,
    Error or Inconclusive."""
    if state.terminate:
        return True
    for r in state.metrics:
        if not r.dry_run and r.phase in _TERMINATING:
            return True
    return False


def validate(specs: Sequence[MetricSpec]) -> str | None:
    """``ValidateMetrics`` / ``ValidateMetric`` (the rules this model can break): the
    error message, or None when the spec is valid."""
    if not specs:
        return "no metrics specified"
    seen: set[str] = set()
    for i, m in enumerate(specs):
        if m.name in seen:
            return f"metrics[{i}]: duplicate name '{m.name}'"
        seen.add(m.name)
        err = _validate_metric(m)
        if err:
            return f"metrics[{i}]: {err}"
    return None


def _validate_metric(m: MetricSpec) -> str | None:
    count = m.count or 0
    fl, csl, il = m.failure_limit, m.consecutive_success_limit, m.inconclusive_limit
    if csl < 0:
        return "consecutiveSuccessLimit must be >= 0"
    if fl < -1:
        return "failureLimit must be >= 0, or -1 to be disabled"
    if csl == 0 and fl == -1:
        return "failureLimit and consecutiveSuccessLimit cannot both be disabled"
    if il < 0:
        return "inconclusiveLimit must be >= 0"
    if m.consecutive_error_limit < 0:
        return "consecutiveErrorLimit must be >= 0"
    if count > 0:
        if fl >= 0 and count < fl + csl:
            return f"count ({count}) must be >= failureLimit + consecutiveSuccessLimit ({fl} + {csl}) if both >= 0"
        if fl < 0 and count < csl:
            return "count must be >= consecutiveSuccessLimit"
        if count < il:
            return "count must be >= inconclusiveLimit"
    if count > 1 and m.interval_s is None:
        return "interval must be specified when count > 1"
    return None


# -- metric assessment (assessMetricStatus, assessMetricFailureInconclusiveOrError) -------


def assess_failure_inconclusive_or_error(spec: MetricSpec, result: MetricResult) -> tuple[str, str]:
    """``assessMetricFailureInconclusiveOrError``: ("", "") or (phase, reason).

    The checks run in the order Failed, Inconclusive, Error and a later one that holds
    overrides an earlier one, so Error beats Inconclusive beats Failed.
    """
    phase, message = "", ""
    if spec.failure_limit >= 0 and result.failed > spec.failure_limit:
        phase, message = FAILED, f"failed ({result.failed}) > failureLimit ({spec.failure_limit})"
    if result.inconclusive > spec.inconclusive_limit:
        phase, message = (
            INCONCLUSIVE,
            (f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({spec.inconclusive_limit})"),
        )
    if result.consecutive_error > spec.consecutive_error_limit:
        phase, message = (
            ERROR,
            (
                f"consecutiveErrors ({result.consecutive_error}) > "
                f"consecutiveErrorLimit ({spec.consecutive_error_limit})"
            ),
        )
    return phase, message


def assess_metric_status(spec: MetricSpec, result: MetricResult, terminating: bool) -> str:
    """``assessMetricStatus``: the metric's phase from its counters and last measurement."""
    if result.phase in COMPLETED:
        return result.phase
    if not result.measurements:
        return SUCCESSFUL if terminating else PENDING
    if result.measurements[-1].phase not in COMPLETED:
        return RUNNING  # a measurement in flight
    phase, _ = assess_failure_inconclusive_or_error(spec, result)
    if phase:
        return phase
    csl = spec.consecutive_success_limit
    if csl > 0 and result.consecutive_success >= csl:
        return SUCCESSFUL
    n = effective_count(spec)
    if n is not None and result.count >= n:
        failure_applicable = spec.failure_limit >= 0
        success_applicable = csl > 0
        if failure_applicable and success_applicable:
            return INCONCLUSIVE  # neither limit reached within count
        if success_applicable:
            return FAILED  # consecutiveSuccessLimit not reached, failureLimit disabled
        return SUCCESSFUL
    return SUCCESSFUL if terminating else RUNNING  # an unbounded metric


# -- scheduling (generateMetricTasks, calculateNextReconcileTime) --------------------------


def _check(specs: Sequence[MetricSpec], state: AnalysisRunState) -> None:
    metrics = state.metrics
    if len(specs) == len(metrics):
        for s, r in zip(specs, metrics):
            if s.name != r.name:
                break
        else:
            return
    names = tuple(s.name for s in specs)
    if names != tuple(r.name for r in state.metrics):
        raise ValueError(f"specs {names} do not match the run's metrics {tuple(r.name for r in state.metrics)}")


def _retry_interval(spec: MetricSpec, last: Measurement) -> float | None:
    """The wait after a finished measurement: 10s after an Error, else the interval
    (None: no interval, no further measurement is scheduled)."""
    if last.phase == ERROR:
        return ERROR_RETRY_INTERVAL_S
    return spec.interval_s


def _tasks(
    specs: Sequence[MetricSpec], state: AnalysisRunState, t: float, terminating: bool | None = None
) -> list[tuple[int, MetricSpec, bool]]:
    """``generateMetricTasks``: (index in the run's metrics, spec, resumes an in-flight
    measurement) per task. ``terminating``: ``is_terminating(state)`` when the caller has
    it already."""
    if terminating is None:
        terminating = is_terminating(state)
    tasks: list[tuple[int, MetricSpec, bool]] = []
    for i, (spec, res) in enumerate(zip(specs, state.metrics)):
        if res.phase in COMPLETED:
            continue
        last = res.measurements[-1] if res.measurements else None
        if last is not None and last.finished_at is None:
            if not terminating and last.resume_at is not None and last.resume_at > t:
                continue
            tasks.append((i, spec, True))  # resume it, or terminate it when terminating
            continue
        if terminating:
            continue
        if last is None:
            if t < state.started_at + spec.initial_delay_s:
                continue
            tasks.append((i, spec, False))
            continue
        n = effective_count(spec)
        if n is not None and res.count >= n:
            continue
        wait = _retry_interval(spec, last)
        if wait is None:
            wait = ERROR_RETRY_INTERVAL_S  # generateMetricTasks' fallback (unreachable in practice)
        # Go: now.After(finishedAt + interval). The requeue set by calculateNextReconcileTime
        # fires at finishedAt + interval and the worker runs an instant later, so at the
        # due time itself the measurement is taken: >= here.
        if t >= last.finished_at + wait:  # type: ignore[operator]  # finished: in-flight ones continued above
            tasks.append((i, spec, False))
    return tasks


def due_metrics(specs: Sequence[MetricSpec], state: AnalysisRunState, t: float) -> list[str]:
    """Metrics that take a measurement (or resume/terminate an in-flight one) at ``t``.

    ``generateMetricTasks``: none once the run is completed; the first measurement at
    run start or ``initial_delay_s`` after it; then each when ``t`` reaches the last
    finish + interval, or + 10s after an Error; none past the effective count; in-flight
    measurements at their ``resume_at``; when terminating, only in-flight measurements
    (to terminate them).
    """
    _check(specs, state)
    if state.completed:
        return []
    return [spec.name for _, spec, _ in _tasks(specs, state, t)]


def next_due(specs: Sequence[MetricSpec], state: AnalysisRunState) -> float | None:
    """``calculateNextReconcileTime``: the earliest time a metric is due, or None.

    None once the run is completed. A run not reconciled yet is due at its start (Argo
    reconciles a new AnalysisRun on its Add event); so is a metric without initial
    delay that has not started. An in-flight measurement without ``resume_at`` is not
    factored in (Argo waits for the job informer).
    """
    _check(specs, state)
    if state.completed:
        return None
    if state.phase == PENDING:
        return state.started_at
    when: float | None = None
    for spec, res in zip(specs, state.metrics):
        if res.phase in COMPLETED:
            continue
        last = res.last
        due: float | None
        if last is None:
            due = state.started_at + spec.initial_delay_s
        elif last.finished_at is None:
            due = last.resume_at
        else:
            n = effective_count(spec)
            wait = _retry_interval(spec, last)
            if (n is not None and res.count >= n) or wait is None:
                continue
            due = last.finished_at + wait
        if due is not None and (when is None or due < when):
            when = due
    return when


# -- measurements (runMeasurements) --------------------------------------------------------


def _decided(value: Any, spec: MetricSpec, decide: Decide) -> tuple[str, str]:
    out = decide(value, spec.success_condition, spec.failure_condition)
    phase, message = out if isinstance(out, tuple) else (out, "")
    if phase not in COMPLETED:
        raise ValueError(f"decide returned {phase!r} for metric {spec.name!r}")
    if phase == ERROR and not message:
        message = "could not evaluate the metric's conditions on its result"
    return phase, message


def _measure(
    spec: MetricSpec, previous: Measurement | None, got: ProviderResult, t: float, decide: Decide | None
) -> Measurement:
    """Provider Run (previous None) or Resume: the new or updated measurement."""
    started = previous.started_at if previous is not None else t
    if isinstance(got, ProviderError):
        return _measurement(ERROR, None, started, t, got.message)
    if isinstance(got, ProviderPhase):
        if got.phase == RUNNING:
            return _measurement(RUNNING, got.value, started, None, got.message, got.resume_at)
        if got.phase not in COMPLETED:
            raise ValueError(f"metric {spec.name!r}: provider phase {got.phase!r}")
        return _measurement(got.phase, got.value, started, t, got.message)
    value = [] if got is None else got
    assert decide is not None  # _run_measurements sets it when a raw value is due
    phase, message = _decided(value, spec, decide)
    return _measurement(phase, value, started, t, message)


def _measurement(
    phase: str,
    value: object,
    started_at: float,
    finished_at: float | None,
    message: str = "",
    resume_at: float | None = None,
) -> Measurement:
    """``Measurement(...)``, built without its ``__init__`` (``sim.policies.frozen``)."""
    return build(
        Measurement,
        {
            "phase": phase,
            "value": value,
            "started_at": started_at,
            "finished_at": finished_at,
            "message": message,
            "resume_at": resume_at,
        },
    )


def _terminated(spec: MetricSpec, m: Measurement, t: float) -> Measurement:
    """Provider Terminate of an in-flight measurement: the job provider deletes the Job
    and marks it Inconclusive; the others (prometheus, web, kayenta) return it unchanged."""
    if spec.provider == "job":
        m = replace(m, phase=INCONCLUSIVE, finished_at=t, resume_at=None)
    if m.phase in (SUCCESSFUL, INCONCLUSIVE):
        m = replace(m, message=METRIC_TERMINATED)
    return m


def _count(attrs: dict[str, Any], phase: str) -> None:
    """Update a MetricResult's field values with the counters a completed measurement changes
    (``runMeasurements``)."""
    if phase == SUCCESSFUL:
        attrs["successful"] += 1
        attrs["count"] += 1
        attrs["consecutive_error"] = 0
        attrs["consecutive_success"] += 1
    elif phase == FAILED:
        attrs["failed"] += 1
        attrs["count"] += 1
        attrs["consecutive_error"] = attrs["consecutive_success"] = 0
    elif phase == INCONCLUSIVE:
        attrs["inconclusive"] += 1
        attrs["count"] += 1
        attrs["consecutive_error"] = attrs["consecutive_success"] = 0
    else:  # Error: the count does not advance
        attrs["error"] += 1
        attrs["consecutive_error"] += 1
        attrs["consecutive_success"] = 0


def _run_measurements(
    specs: Sequence[MetricSpec],
    state: AnalysisRunState,
    t: float,
    values: Mapping[str, ProviderResult],
    decide: Decide | None,
    known: tuple[list[tuple[int, MetricSpec, bool]], bool] | None = None,
) -> AnalysisRunState:
    # Called once the specs are valid: metric names are unique and in the specs' order.
    # ``known``: the tasks and is_terminating(state), when the caller has them already.
    if known is None:
        terminating = is_terminating(state)
        tasks = _tasks(specs, state, t, terminating)
    else:
        tasks, terminating = known
    for _, spec, resume in tasks:
        if not (resume and terminating):
            if spec.name not in values:
                missing = [s.name for _, s, r in tasks if not (r and terminating) and s.name not in values]
                raise ValueError(f"no provider result for due metric(s) {missing} at t={t}")
            if decide is None and not isinstance(values[spec.name], _PROVIDED):
                decide = _default_decide()
    results = list(state.metrics)
    for i, spec, resume in tasks:
        res = results[i]
        attrs = field_values(res)
        if resume:
            prev = res.measurements[-1]
            m = _terminated(spec, prev, t) if terminating else _measure(spec, prev, values[spec.name], t, decide)
            attrs["measurements"] = res.measurements[:-1] + (m,)
        else:
            m = _measure(spec, None, values[spec.name], t, decide)
            attrs["measurements"] = res.measurements + (m,)
        if not res.measurements:  # the metric's first measurement starts its MetricResult
            attrs["phase"] = RUNNING
            attrs["dry_run"] = spec.dry_run
        if m.phase in COMPLETED:
            _count(attrs, m.phase)
        results[i] = build(MetricResult, attrs)
    return replace(state, metrics=tuple(results))


# -- run assessment (assessRunStatus) -----------------------------------------------------


def _assess_run(specs: Sequence[MetricSpec], state: AnalysisRunState) -> tuple[AnalysisRunState, str, str]:
    """``assessRunStatus``: the state with metric phases updated, the run phase and message."""
    terminating = is_terminating(state)
    worst_phase, worst_message = "", (RUN_TERMINATED if state.terminate else "")
    everything_completed = True
    results = []
    changed = False
    for spec, res in zip(specs, state.metrics):
        if not res.measurements:  # Argo has no MetricResult yet (e.g. initialDelay)
            everything_completed = False
            results.append(res)
            continue
        status = assess_metric_status(spec, res, terminating)
        if status != res.phase:
            res = replace(res, phase=status, message=res.measurements[-1].message)
            changed = True
        if status not in COMPLETED:
            everything_completed = False
        else:
            _, why = assess_failure_inconclusive_or_error(spec, res)
            if not spec.dry_run:
                if worst_phase == "" or is_worse(worst_phase, status):
                    worst_phase = status
                    if why:
                        worst_message = f'Metric "{spec.name}" assessed {status} due to {why}'
                        if res.message:
                            worst_message += f': "Error Message: {res.message}"'
            else:
                if worst_phase == "":
                    worst_phase = SUCCESSFUL  # dry-run verdicts never count
                if why:
                    res = replace(res, message=f"Metric assessed {status} due to {why}")
                    changed = True
        results.append(res)
    if changed:
        state = replace(state, metrics=tuple(results))
    worst_message = worst_message.strip()
    if terminating:
        return state, (worst_phase or SUCCESSFUL), worst_message
    if not everything_completed or worst_phase == "":
        return state, RUNNING, ""
    return state, worst_phase, worst_message


def _trim(specs: Sequence[MetricSpec], state: AnalysisRunState) -> AnalysisRunState:
    """``garbageCollectMeasurements``: keep the newest measurements, counters untouched."""
    results = []
    trimmed = False
    for spec, res in zip(specs, state.metrics):
        limit = spec.measurement_retention if spec.measurement_retention > 0 else MEASUREMENT_HISTORY_LIMIT
        if len(res.measurements) > limit:
            res = replace(res, measurements=res.measurements[-limit:])
            trimmed = True
        results.append(res)
    return replace(state, metrics=tuple(results)) if trimmed else state


def _reconcile(
    specs: Sequence[MetricSpec],
    state: AnalysisRunState,
    t: float,
    values: Mapping[str, ProviderResult],
    decide: Decide | None,
    known: tuple[list[tuple[int, MetricSpec, bool]], bool] | None = None,
) -> AnalysisRunState:
    """One ``reconcileAnalysisRun`` (``known``: ``_tasks(specs, state, t)`` and
    ``is_terminating(state)``, when the caller has them already)."""
    if state.completed:
        return state
    invalid = validate(specs)
    if invalid:
        return replace(state, phase=ERROR, message=f"Analysis spec invalid: {invalid}", completed_at=t)
    state = _run_measurements(specs, state, t, values, decide, known)
    state, phase, message = _assess_run(specs, state)
    if phase != state.phase:
        if phase in COMPLETED and state.completed_at is None:
            state = replace(state, phase=phase, message=message, completed_at=t)
        else:
            state = replace(state, phase=phase, message=message)
    return _trim(specs, state)


# -- the API ---------------------------------------------------------------------------------


def start_run(name: str, specs: Sequence[MetricSpec], t: float) -> AnalysisRunState:
    """A new AnalysisRun created at ``t`` (not reconciled yet: ``next_due`` is ``t``)."""
    metrics = tuple([build(MetricResult, {**_NEW_RESULT, "name": s.name, "dry_run": s.dry_run}) for s in specs])
    return build(
        AnalysisRunState, {"name": name, "phase": PENDING, "started_at": t, "metrics": metrics, **_NEW_RUN_DEFAULTS}
    )


#: A MetricResult's fields before its first measurement, and an AnalysisRun's defaulted
#: fields: the dataclasses' own defaults, in field order (start_run builds instances from them).
_NEW_RESULT = field_values(MetricResult(""))
_NEW_RUN_DEFAULTS = {f.name: f.default for f in fields(AnalysisRunState) if f.default is not MISSING}


def record(
    specs: Sequence[MetricSpec],
    state: AnalysisRunState,
    t: float,
    values: Mapping[str, ProviderResult],
    *,
    decide: Decide | None = None,
) -> AnalysisRunState:
    """Reconcile the run at ``t`` with the provider results of the due metrics.

    Args:
        specs: the run's metrics, in the run's order.
        state: the run before this reconcile (not modified).
        t: the time of the reconcile.
        values: metric name -> what its provider returned; must cover every metric in
            ``due_metrics(specs, state, t)`` that is not being terminated. Entries for
            metrics that are not due are ignored (a provider is only queried when due).
        decide: ``decide(result, success_condition, failure_condition)`` -> phase (or
            (phase, message)) for raw values; by default
            ``sim.policies.argo.expr.evaluate_result``.

    Returns:
        The run after ``reconcileAnalysisRun``, plus the immediate follow-up reconcile
        when this one left the run terminating but not completed (fail fast: a
        non-dry-run metric Failed, Error or Inconclusive; the follow-up starts no
        measurement and terminates in-flight ones).

    Raises:
        ValueError: a due metric has no entry in ``values``, or specs and state disagree.
    """
    _check(specs, state)
    new = _reconcile(specs, state, t, values, decide)
    if not new.completed and is_terminating(new):
        new = _reconcile(specs, new, t, {}, decide)
    return new


def measure_due(
    specs: Sequence[MetricSpec],
    state: AnalysisRunState,
    t: float,
    provide: Callable[[str], ProviderResult],
    *,
    decide: Decide | None = None,
) -> AnalysisRunState:
    """``due_metrics`` and ``record`` in one pass: the provider of each metric due at
    ``t`` is asked, in the run's metric order, through ``provide(name)``, and the run is
    reconciled with the answers. The state itself comes back when nothing is due (or the
    run is completed): a rollout asks at every reconcile, and mostly nothing is due.

    Raises:
        ValueError: specs and state disagree.
    """
    _check(specs, state)
    if state.completed:
        return state
    terminating = is_terminating(state)
    tasks = _tasks(specs, state, t, terminating)
    if not tasks:
        return state
    values = {spec.name: provide(spec.name) for _, spec, _ in tasks}
    new = _reconcile(specs, state, t, values, decide, (tasks, terminating))
    if not new.completed and is_terminating(new):
        new = _reconcile(specs, new, t, {}, decide)
    return new


def terminate(specs: Sequence[MetricSpec], state: AnalysisRunState, t: float) -> AnalysisRunState:
    """Set ``spec.terminate`` (the rollout was promoted or aborted) and reconcile at ``t``:
    no new measurements, in-flight ones terminated (a job becomes Inconclusive), unbounded
    metrics Successful, the run completes with its worst completed metric, or Successful
    when nothing completed. A completed run is left as it is."""
    _check(specs, state)
    if state.completed:
        return state
    return _reconcile(specs, replace(state, terminate=True), t, {}, None)
