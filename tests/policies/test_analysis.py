"""Argo Rollouts' AnalysisRun semantics, timeline by timeline.

Each case pins one rule of argoproj/argo-rollouts (commit 9f8d111d) and names the file
and function it comes from: ``analysis/analysis.go`` (reconcileAnalysisRun,
generateMetricTasks, runMeasurements, assessRunStatus, assessMetricStatus,
assessMetricFailureInconclusiveOrError, calculateNextReconcileTime),
``utils/analysis/helpers.go`` (IsWorse, IsTerminating), ``utils/analysis/factory.go``
(ValidateMetric), ``utils/defaults/defaults.go`` (GetConsecutiveErrorLimitOrDefault)
and ``pkg/apis/rollouts/v1alpha1/analysis_types.go`` (Metric.EffectiveCount).

Measurement phases come from a stub evaluator: deciding a raw value against the
conditions (NaN, empty vectors, ...) is ``sim.policies.argo.expr``'s job, not this module's.
``play`` checks at every step that exactly the metrics given values are due, then
records them and checks the counters and phases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from sim.policies.argo import analysis_run as an
from sim.policies.argo.analysis_run import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    PENDING,
    RUNNING,
    SUCCESSFUL,
    AnalysisRunState,
    MetricResult,
    MetricSpec,
    ProviderError,
    ProviderPhase,
    due_metrics,
    effective_count,
    is_worse,
    next_due,
    record,
    start_run,
    terminate,
)

OUTCOMES = {"ok": SUCCESSFUL, "bad": FAILED, "meh": INCONCLUSIVE}


def stub(result: Any, success: str | None, failure: str | None) -> Any:
    """Stand-in for ``expr.measurement_phase``: "ok"/"bad"/"meh" name the phase, "err"
    is an evaluation error (returned with its message)."""
    if result == "err":
        return ERROR, "could not evaluate successCondition"
    return OUTCOMES[result]


def play(specs: Sequence[MetricSpec], steps: Sequence[tuple], *, start: float = 0.0) -> AnalysisRunState:
    """Drive a run: each step is ``(t, values, expected)``; ``values`` None means
    ``terminate``. ``expected`` maps a metric name to the MetricResult fields to check,
    and "run" to the run phase."""
    state = start_run("run", specs, start)
    for t, values, expected in steps:
        if values is None:
            state = terminate(specs, state, t)
        else:
            assert sorted(due_metrics(specs, state, t)) == sorted(values), f"due at t={t}"
            state = record(specs, state, t, values, decide=stub)
        check(state, expected, t)
    return state


def check(state: AnalysisRunState, expected: Mapping[str, Any], t: float) -> None:
    for name, want in expected.items():
        if name == "run":
            assert state.phase == want, f"run phase at t={t}: {state.phase} ({state.message})"
            continue
        got = state.result(name)
        for field, value in want.items():
            assert getattr(got, field) == value, f"{name}.{field} at t={t}: {getattr(got, field)} != {value}"


def counters(
    phase: str, count: int, s: int = 0, f: int = 0, i: int = 0, e: int = 0, ce: int = 0, cs: int = 0
) -> dict[str, Any]:
    return dict(
        phase=phase,
        count=count,
        successful=s,
        failed=f,
        inconclusive=i,
        error=e,
        consecutive_error=ce,
        consecutive_success=cs,
    )


M = "m"


# -- timelines ------------------------------------------------------------------------------

TIMELINES = [
    pytest.param(
        # runMeasurements: Successful -> successful+1, count+1, consecutiveSuccess+1;
        # assessMetricStatus: effective count reached -> Successful; assessRunStatus: all
        # metrics completed -> the worst of them.
        [MetricSpec(M, interval_s=60, count=3)],
        [
            (0, {M: "ok"}, {M: counters(RUNNING, 1, s=1, cs=1), "run": RUNNING}),
            (60, {M: "ok"}, {M: counters(RUNNING, 2, s=2, cs=2), "run": RUNNING}),
            (120, {M: "ok"}, {M: counters(SUCCESSFUL, 3, s=3, cs=3), "run": SUCCESSFUL}),
        ],
        id="count3-interval60-all-success",
    ),
    pytest.param(
        # assessMetricFailureInconclusiveOrError: Failed when failed > failureLimit, with
        # failed cumulative (runMeasurements never resets it): the 1st and 3rd fail.
        [MetricSpec(M, interval_s=60, count=5, failure_limit=1)],
        [
            (0, {M: "bad"}, {M: counters(RUNNING, 1, f=1), "run": RUNNING}),
            (60, {M: "ok"}, {M: counters(RUNNING, 2, s=1, f=1, cs=1), "run": RUNNING}),
            (120, {M: "bad"}, {M: counters(FAILED, 3, s=1, f=2), "run": FAILED}),
        ],
        id="failure-limit-cumulative",
    ),
    pytest.param(
        # runMeasurements: Error -> error+1, consecutiveError+1, count unchanged;
        # generateMetricTasks / calculateNextReconcileTime: after an Error the next
        # measurement is DefaultErrorRetryInterval (10s) later, not the interval.
        [MetricSpec(M, interval_s=60, count=2)],
        [
            (0, {M: ProviderError("connection refused")}, {M: counters(RUNNING, 0, e=1, ce=1)}),
            (10, {M: "ok"}, {M: counters(RUNNING, 1, s=1, e=1, cs=1)}),
            (70, {M: "err"}, {M: counters(RUNNING, 1, s=1, e=2, ce=1)}),
            (80, {M: "ok"}, {M: counters(SUCCESSFUL, 2, s=2, e=2, cs=1), "run": SUCCESSFUL}),
        ],
        id="errors-do-not-count-retry-10s",
    ),
    pytest.param(
        # GetConsecutiveErrorLimitOrDefault = 4; assessMetricFailureInconclusiveOrError:
        # Error when consecutiveError > limit, i.e. on the 5th consecutive error. A
        # count-1 metric keeps retrying because errors do not advance the count.
        [MetricSpec(M)],
        [
            (0, {M: ProviderError()}, {M: counters(RUNNING, 0, e=1, ce=1)}),
            (10, {M: ProviderError()}, {M: counters(RUNNING, 0, e=2, ce=2)}),
            (20, {M: ProviderError()}, {M: counters(RUNNING, 0, e=3, ce=3)}),
            (30, {M: ProviderError()}, {M: counters(RUNNING, 0, e=4, ce=4), "run": RUNNING}),
            (40, {M: ProviderError()}, {M: counters(ERROR, 0, e=5, ce=5), "run": ERROR}),
        ],
        id="consecutive-error-limit-4",
    ),
    pytest.param(
        # runMeasurements: an Error zeroes consecutiveSuccess; a Successful (or Failed,
        # Inconclusive) zeroes consecutiveError.
        [MetricSpec(M, interval_s=60, count=3)],
        [
            (0, {M: "ok"}, {M: counters(RUNNING, 1, s=1, cs=1)}),
            (60, {M: ProviderError()}, {M: counters(RUNNING, 1, s=1, e=1, ce=1, cs=0)}),
            (70, {M: "ok"}, {M: counters(RUNNING, 2, s=2, e=1, ce=0, cs=1)}),
            (130, {M: "ok"}, {M: counters(SUCCESSFUL, 3, s=3, e=1, cs=2)}),
        ],
        id="error-between-successes-resets",
    ),
    pytest.param(
        # assessMetricFailureInconclusiveOrError: inconclusive (1) > inconclusiveLimit (0)
        # -> Inconclusive; the run takes it (assessRunStatus).
        [MetricSpec(M, interval_s=60, count=3, success_condition="result > 1", failure_condition="result < 0")],
        [(0, {M: "meh"}, {M: counters(INCONCLUSIVE, 1, i=1), "run": INCONCLUSIVE})],
        id="inconclusive-limit-0",
    ),
    pytest.param(
        # inconclusiveLimit 1 tolerates one; the second is one too many.
        [MetricSpec(M, interval_s=60, count=3, inconclusive_limit=1)],
        [
            (0, {M: "meh"}, {M: counters(RUNNING, 1, i=1)}),
            (60, {M: "meh"}, {M: counters(INCONCLUSIVE, 2, i=2), "run": INCONCLUSIVE}),
        ],
        id="inconclusive-limit-1",
    ),
    pytest.param(
        # assessMetricStatus: consecutiveSuccess >= consecutiveSuccessLimit -> Successful
        # before count, once no failure/inconclusive/error limit is broken.
        [MetricSpec(M, interval_s=60, count=5, failure_limit=1, consecutive_success_limit=2)],
        [
            (0, {M: "bad"}, {M: counters(RUNNING, 1, f=1)}),
            (60, {M: "ok"}, {M: counters(RUNNING, 2, s=1, f=1, cs=1)}),
            (120, {M: "ok"}, {M: counters(SUCCESSFUL, 3, s=2, f=1, cs=2), "run": SUCCESSFUL}),
        ],
        id="consecutive-success-limit-reached",
    ),
    pytest.param(
        # assessMetricStatus: count reached, consecutiveSuccessLimit not, failureLimit
        # disabled (-1) -> Failed.
        [MetricSpec(M, interval_s=60, count=3, failure_limit=-1, consecutive_success_limit=2)],
        [
            (0, {M: "ok"}, {M: counters(RUNNING, 1, s=1, cs=1)}),
            (60, {M: "bad"}, {M: counters(RUNNING, 2, s=1, f=1)}),
            (120, {M: "ok"}, {M: counters(FAILED, 3, s=2, f=1, cs=1), "run": FAILED}),
        ],
        id="consecutive-success-limit-only-count-reached",
    ),
    pytest.param(
        # assessMetricStatus: count reached with both limits applicable and neither
        # reached -> Inconclusive.
        [MetricSpec(M, interval_s=60, count=3, failure_limit=1, consecutive_success_limit=2)],
        [
            (0, {M: "ok"}, {M: counters(RUNNING, 1, s=1, cs=1)}),
            (60, {M: "bad"}, {M: counters(RUNNING, 2, s=1, f=1)}),
            (120, {M: "ok"}, {M: counters(INCONCLUSIVE, 3, s=2, f=1, cs=1), "run": INCONCLUSIVE}),
        ],
        id="both-limits-count-reached",
    ),
    pytest.param(
        # Metric.EffectiveCount: interval without count -> unbounded, Running for ever;
        # terminate (spec.terminate): assessMetricStatus gives Successful to an unbounded
        # metric when terminating, and assessRunStatus completes the run.
        [MetricSpec(M, interval_s=60)],
        [
            *[
                (60.0 * k, {M: "ok"}, {M: counters(RUNNING, k + 1, s=k + 1, cs=k + 1), "run": RUNNING})
                for k in range(12)
            ],
            (700, None, {M: {"phase": SUCCESSFUL, "count": 12}, "run": SUCCESSFUL}),
        ],
        id="unbounded-until-terminate",
    ),
]


@pytest.mark.parametrize("specs, steps", TIMELINES)
def test_timeline(specs: list[MetricSpec], steps: list[tuple]) -> None:
    play(specs, steps)


# -- scheduling -------------------------------------------------------------------------------


def test_interval_due_at_finish_plus_interval() -> None:
    """generateMetricTasks takes a measurement when now.After(finishedAt + interval);
    calculateNextReconcileTime requeues for exactly finishedAt + interval and the worker
    runs an instant later, so the model measures at the due time (>=), not before."""
    specs = [MetricSpec(M, interval_s=60, count=3)]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {M: "ok"}, decide=stub)
    assert next_due(specs, state) == 60.0
    assert due_metrics(specs, state, 59.999) == []
    assert due_metrics(specs, state, 60.0) == [M]
    # nothing due: record is a no-op on the counters, the run stays Running
    same = record(specs, state, 30.0, {}, decide=stub)
    assert same == state


def test_initial_delay() -> None:
    """generateMetricTasks: no measurement before StartedAt + initialDelay;
    calculateNextReconcileTime: requeue at the end of the delay. The run itself is
    reconciled at creation (informer Add event) and goes Running with nothing measured
    (assessRunStatus: a metric without result keeps everythingCompleted false)."""
    specs = [MetricSpec(M, interval_s=60, count=2, initial_delay_s=30)]
    state = start_run("r", specs, 100.0)
    assert state.phase == PENDING and next_due(specs, state) == 100.0
    state = record(specs, state, 100.0, {}, decide=stub)
    assert state.phase == RUNNING and state.result(M).phase == PENDING
    assert next_due(specs, state) == 130.0
    assert due_metrics(specs, state, 129.0) == []
    assert due_metrics(specs, state, 130.0) == [M]
    state = record(specs, state, 130.0, {M: "ok"}, decide=stub)
    assert next_due(specs, state) == 190.0
    state = record(specs, state, 190.0, {M: "ok"}, decide=stub)
    assert state.phase == SUCCESSFUL and next_due(specs, state) is None


def test_first_measurement_at_start_and_next_due_earliest() -> None:
    """calculateNextReconcileTime takes the earliest metric; generateMetricTasks stops a
    metric at its effective count (no interval, no count -> 1)."""
    specs = [MetricSpec("a", interval_s=60, count=3), MetricSpec("b", interval_s=45, count=3), MetricSpec("c")]
    state = start_run("r", specs, 0.0)
    assert due_metrics(specs, state, 0.0) == ["a", "b", "c"]
    state = record(specs, state, 0.0, {"a": "ok", "b": "ok", "c": "ok"}, decide=stub)
    assert state.result("c").phase == SUCCESSFUL
    assert next_due(specs, state) == 45.0
    assert due_metrics(specs, state, 45.0) == ["b"]


@pytest.mark.parametrize(
    "count, interval, expected",
    [
        (None, None, 1),
        (0, None, 1),
        (1, None, 1),
        (None, 60.0, None),
        (0, 60.0, None),
        (3, 60.0, 3),
    ],
)
def test_effective_count(count: int | None, interval: float | None, expected: int | None) -> None:
    """Metric.EffectiveCount (analysis_types.go)."""
    assert effective_count(MetricSpec(M, interval_s=interval, count=count)) == expected


# -- dry run and fail fast ------------------------------------------------------------------


def test_dry_run_metric_fails_run_stays_successful() -> None:
    """GetDryRunMetrics / IsTerminating skip dry-run results; assessRunStatus does not
    let a dry-run metric's phase into the run's worst, only into its message."""
    specs = [MetricSpec("real", interval_s=60, count=2), MetricSpec("shadow", interval_s=60, count=2, dry_run=True)]
    state = play(
        specs,
        [
            (
                0,
                {"real": "ok", "shadow": "bad"},
                {"real": counters(RUNNING, 1, s=1, cs=1), "shadow": {"phase": FAILED, "dry_run": True}, "run": RUNNING},
            ),
            (60, {"real": "ok"}, {"real": counters(SUCCESSFUL, 2, s=2, cs=2), "run": SUCCESSFUL}),
        ],
    )
    assert state.result("shadow").message == "Metric assessed Failed due to failed (1) > failureLimit (0)"
    assert state.message == ""


def test_only_dry_run_metrics_complete_successful() -> None:
    """assessRunStatus: with only dry-run metrics the worst status defaults to Successful."""
    specs = [MetricSpec("shadow", dry_run=True)]
    play(specs, [(0, {"shadow": "bad"}, {"shadow": {"phase": FAILED}, "run": SUCCESSFUL})])


def test_fail_fast_sibling_stops() -> None:
    """IsTerminating: a non-dry-run metric Failed makes the run terminating, so
    generateMetricTasks schedules nothing more and assessMetricStatus gives the
    unfinished sibling Successful; the run takes the worst, Failed."""
    specs = [MetricSpec("a", interval_s=60, count=3), MetricSpec("b", interval_s=30, count=3)]
    state = play(
        specs,
        [
            (0, {"a": "ok", "b": "ok"}, {"run": RUNNING}),
            (
                30,
                {"b": "bad"},
                {"b": counters(FAILED, 2, s=1, f=1), "a": counters(SUCCESSFUL, 1, s=1, cs=1), "run": FAILED},
            ),
        ],
    )
    assert state.message == 'Metric "b" assessed Failed due to failed (1) > failureLimit (0)'
    assert due_metrics(specs, state, 60.0) == [] and next_due(specs, state) is None
    assert record(specs, state, 60.0, {"a": "ok"}, decide=stub) == state  # reconcileAnalysisRun: completed


def test_fail_fast_takes_a_second_reconcile() -> None:
    """assessRunStatus computes IsTerminating before it updates metric phases, so the
    reconcile in which "b" fails still assesses the unbounded "a" as Running and the run
    as Running; the status patch triggers the next reconcile at once (informer
    UpdateFunc -> enqueueAnalysis), which completes it. ``record`` runs both."""
    specs = [MetricSpec("a", interval_s=60), MetricSpec("b")]
    state = start_run("r", specs, 0.0)
    one = an._reconcile(specs, state, 0.0, {"a": "ok", "b": "bad"}, stub)
    assert (one.phase, one.result("a").phase, one.result("b").phase) == (RUNNING, RUNNING, FAILED)
    both = record(specs, state, 0.0, {"a": "ok", "b": "bad"}, decide=stub)
    assert (both.phase, both.result("a").phase) == (FAILED, SUCCESSFUL)
    assert both.completed_at == 0.0


def test_fail_fast_terminates_in_flight_job() -> None:
    """runMeasurements: when terminating, an in-flight measurement goes to the provider's
    Terminate; the job provider (metricproviders/job/job.go Terminate) deletes the Job
    and marks it Inconclusive, message "Metric Terminated" (as in
    TestReconcileAnalysisRunTerminateSiblingAfterFail). Failed is worse than
    Inconclusive (IsWorse), so the run is Failed."""
    specs = [MetricSpec("job", provider="job"), MetricSpec("prom", interval_s=30, count=3)]
    state = play(
        specs,
        [
            (0, {"job": ProviderPhase(RUNNING, resume_at=0.0), "prom": "ok"}, {"job": {"phase": RUNNING}}),
            (0, {"job": ProviderPhase(RUNNING, resume_at=50.0)}, {"job": {"phase": RUNNING}, "run": RUNNING}),
            (30, {"prom": "bad"}, {"prom": {"phase": FAILED}, "job": counters(INCONCLUSIVE, 1, i=1), "run": FAILED}),
        ],
    )
    m = state.result("job").measurements[-1]
    assert (m.phase, m.started_at, m.finished_at, m.message) == (INCONCLUSIVE, 0.0, 30.0, "Metric Terminated")
    assert state.result("job").message == "Metric Terminated"


def test_in_flight_resumes_at_resume_at() -> None:
    """generateMetricTasks skips an in-flight measurement until ResumeAt;
    calculateNextReconcileTime requeues at ResumeAt; the resumed measurement keeps its
    StartedAt and counts once it completes (Kayenta polls every 15s)."""
    specs = [MetricSpec("k", provider="kayenta")]
    state = start_run("r", specs, 0.0)
    state = record(specs, state, 0.0, {"k": ProviderPhase(RUNNING, resume_at=15.0)})
    assert next_due(specs, state) == 15.0 and due_metrics(specs, state, 14.0) == []
    assert state.result("k").count == 0 and state.phase == RUNNING
    state = record(specs, state, 15.0, {"k": ProviderPhase(RUNNING, resume_at=30.0)})
    state = record(specs, state, 30.0, {"k": ProviderPhase(SUCCESSFUL, value=95)})
    (m,) = state.result("k").measurements
    assert (m.phase, m.started_at, m.finished_at, m.value) == (SUCCESSFUL, 0.0, 30.0, 95)
    assert state.phase == SUCCESSFUL and state.result("k").count == 1


def test_terminate_with_kayenta_in_flight_completes_run() -> None:
    """Kayenta's Terminate returns the measurement unchanged, so the metric stays
    Running; assessRunStatus still completes a terminating run (worst completed, else
    Successful with "Run Terminated")."""
    specs = [MetricSpec("k", provider="kayenta")]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {"k": ProviderPhase(RUNNING, resume_at=15.0)})
    state = terminate(specs, state, 5.0)
    assert (state.phase, state.message, state.result("k").phase) == (SUCCESSFUL, "Run Terminated", RUNNING)


def test_terminate_before_anything_measured() -> None:
    """assessRunStatus: terminating with nothing completed -> Successful ("we have yet to
    take a single measurement"); the metric never got a MetricResult (Pending here)."""
    specs = [MetricSpec(M, interval_s=60, initial_delay_s=300)]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {})
    state = terminate(specs, state, 100.0)
    assert (state.phase, state.message, state.completed_at) == (SUCCESSFUL, "Run Terminated", 100.0)
    assert state.result(M).phase == PENDING and state.result(M).count == 0
    assert terminate(specs, state, 200.0) == state


def test_terminate_keeps_a_worse_completed_metric() -> None:
    """assessRunStatus when terminating: the worst completed non-dry-run metric."""
    specs = [MetricSpec("one", failure_limit=0, consecutive_error_limit=0), MetricSpec("u", interval_s=60)]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {"one": ProviderError("x"), "u": "ok"}, decide=stub)
    assert state.phase == ERROR  # consecutiveErrors (1) > consecutiveErrorLimit (0): fail fast
    assert (
        state.message == 'Metric "one" assessed Error due to consecutiveErrors (1) > '
        'consecutiveErrorLimit (0): "Error Message: x"'
    )


# -- assessment rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failed, inconclusive, cons_error, expected",
    [
        (0, 0, 0, ""),
        (1, 0, 0, FAILED),
        (0, 1, 0, INCONCLUSIVE),
        (0, 0, 5, ERROR),
        (1, 1, 0, INCONCLUSIVE),  # a later check overrides an earlier one
        (1, 0, 5, ERROR),
        (1, 1, 5, ERROR),
    ],
)
def test_failure_inconclusive_error_override_order(
    failed: int, inconclusive: int, cons_error: int, expected: str
) -> None:
    """assessMetricFailureInconclusiveOrError checks Failed, then Inconclusive, then
    Error, each assignment overriding the previous one."""
    res = MetricResult(
        M, RUNNING, count=failed + inconclusive, failed=failed, inconclusive=inconclusive, consecutive_error=cons_error
    )
    assert an.assess_failure_inconclusive_or_error(MetricSpec(M), res)[0] == expected


def test_failure_limit_disabled() -> None:
    """failureLimit -1: "If failureLimit is negative, that means it isn't applicable"."""
    spec = MetricSpec(M, failure_limit=-1, consecutive_success_limit=1)
    assert an.assess_failure_inconclusive_or_error(spec, MetricResult(M, RUNNING, count=9, failed=9))[0] == ""


def test_assess_metric_status_no_measurements_and_in_flight() -> None:
    """assessMetricStatus: no measurements -> Pending (Successful when terminating); the
    last measurement in flight -> Running; a completed phase is kept."""
    spec = MetricSpec(M)
    assert an.assess_metric_status(spec, MetricResult(M, RUNNING), False) == PENDING
    assert an.assess_metric_status(spec, MetricResult(M, RUNNING), True) == SUCCESSFUL
    in_flight = MetricResult(M, RUNNING, measurements=(an.Measurement(RUNNING, None, 0.0, None),))
    assert an.assess_metric_status(spec, in_flight, True) == RUNNING
    assert an.assess_metric_status(spec, MetricResult(M, FAILED), False) == FAILED


@pytest.mark.parametrize(
    "current, new, worse",
    [
        (SUCCESSFUL, RUNNING, True),
        (RUNNING, PENDING, True),
        (PENDING, INCONCLUSIVE, True),
        (INCONCLUSIVE, ERROR, True),
        (ERROR, FAILED, True),
        (FAILED, ERROR, False),
        (SUCCESSFUL, SUCCESSFUL, False),
        (INCONCLUSIVE, SUCCESSFUL, False),
    ],
)
def test_is_worse(current: str, new: str, worse: bool) -> None:
    """IsWorse: Successful < Running < Pending < Inconclusive < Error < Failed."""
    assert is_worse(current, new) is worse


def test_run_takes_worst_metric() -> None:
    """assessRunStatus: once all metrics completed, the worst phase by IsWorse."""
    specs = [MetricSpec("i", inconclusive_limit=0), MetricSpec("e", consecutive_error_limit=0), MetricSpec("s")]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {"i": "meh", "e": ProviderError(), "s": "ok"}, decide=stub)
    assert [r.phase for r in state.metrics] == [INCONCLUSIVE, ERROR, SUCCESSFUL]
    assert state.phase == ERROR


# -- bookkeeping -------------------------------------------------------------------------------


def test_measurement_history_trimmed_counters_kept() -> None:
    """garbageCollectMeasurements keeps DefaultMeasurementHistoryLimit (10) measurements,
    newest last; counters keep counting (TestTrimMeasurementHistory)."""
    specs = [MetricSpec(M, interval_s=10)]
    state = start_run("r", specs, 0.0)
    for k in range(13):
        state = record(specs, state, 10.0 * k, {M: "ok"}, decide=stub)
    res = state.result(M)
    assert len(res.measurements) == 10 and res.count == 13 and res.successful == 13
    assert res.measurements[0].started_at == 30.0 and res.measurements[-1].started_at == 120.0
    short = [MetricSpec(M, interval_s=10, measurement_retention=3)]
    s2 = start_run("r", short, 0.0)
    for k in range(5):
        s2 = record(short, s2, 10.0 * k, {M: "ok"}, decide=stub)
    assert len(s2.result(M).measurements) == 3


def test_values_reach_decide_with_conditions() -> None:
    """The provider's raw value goes to the evaluator with both conditions; None stands
    for an empty Prometheus vector ([]). NaN is passed through as is: what it means is
    the evaluator's business (utils/evaluate/evaluate.go)."""
    seen: list[tuple] = []

    def spy(result: Any, success: str | None, failure: str | None) -> str:
        seen.append((result, success, failure))
        return SUCCESSFUL

    specs = [MetricSpec("a", success_condition="result[0] >= 0.95"), MetricSpec("b", failure_condition="result > 1")]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {"a": None, "b": math.nan}, decide=spy)
    assert seen[0] == ([], "result[0] >= 0.95", None)
    assert math.isnan(seen[1][0]) and seen[1][1:] == (None, "result > 1")
    assert state.result("a").measurements[0].value == []


def test_missing_value_for_due_metric_raises() -> None:
    specs = [MetricSpec("a"), MetricSpec("b")]
    with pytest.raises(ValueError, match="b"):
        record(specs, start_run("r", specs, 0.0), 0.0, {"a": "ok"}, decide=stub)


@pytest.mark.parametrize(
    "spec, reason",
    [
        (MetricSpec(M, count=3), "interval must be specified when count > 1"),
        (MetricSpec(M, failure_limit=-1), "cannot both be disabled"),
        (
            MetricSpec(M, interval_s=60, count=2, failure_limit=1, consecutive_success_limit=2),
            "count (2) must be >= failureLimit",
        ),
        (MetricSpec(M, consecutive_error_limit=-1), "consecutiveErrorLimit must be >= 0"),
    ],
)
def test_invalid_spec_errors_the_run(spec: MetricSpec, reason: str) -> None:
    """reconcileAnalysisRun: ValidateMetrics (utils/analysis/factory.go) failing puts the
    run in Error with "Analysis spec invalid: ..." before any measurement."""
    state = record([spec], start_run("r", [spec], 0.0), 0.0, {}, decide=stub)
    assert state.phase == ERROR and reason in state.message and state.result(M).count == 0


def test_pure_and_deterministic() -> None:
    specs = [MetricSpec(M, interval_s=60, count=3)]
    state = start_run("r", specs, 0.0)
    a = record(specs, state, 0.0, {M: "ok"}, decide=stub)
    assert a == record(specs, state, 0.0, {M: "ok"}, decide=stub)
    assert state.result(M).count == 0 and state.phase == PENDING
    with pytest.raises(FrozenInstanceError):
        a.phase = FAILED  # type: ignore[misc]


def test_with_real_evaluator() -> None:
    """The default evaluator, once sim.policies.argo.expr exists."""
    pytest.importorskip("sim.policies.argo.expr")
    specs = [MetricSpec(M, interval_s=60, count=2, success_condition="result[0] >= 0.95")]
    state = record(specs, start_run("r", specs, 0.0), 0.0, {M: [0.99]})
    state = record(specs, state, 60.0, {M: [0.5]})
    assert state.result(M).successful == 1 and state.phase == FAILED
