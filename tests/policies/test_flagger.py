"""Flagger's canary analysis, rule by rule, on hand-written observations.

Each test pins one rule of fluxcd/flagger (commit 15bd6ad5) and names the file and
function it comes from. ``drive`` plays the part of the world: it asks the policy for
its tick times, feeds one observation per tick, and applies ``SetWeights``/``Rollback``
to a ``Routes`` value that the next observation reads back, as Flagger reads the mesh
weights with ``meshRouter.GetRoutes`` at the start of every ``advanceCanary`` run.

Tick 1 is always the tick that picks up the new revision (``checkCanaryStatus``), so
in the default setup (stepWeight 10, interval 60s) the canary gets weight 10 at tick 2
and the first metric check runs at tick 3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from sim.policies.base import NO_DATA, Finish, Observation, Promote, Readiness, Rollback, Routes, ScaleUp, SetWeights
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from tests.helpers import BAD_BOTH, BAD_SR, GOOD, NOTHING
from tests.helpers import REQUEST_DURATION as LAT
from tests.helpers import SUCCESS_RATE as SR

READY = Readiness()


# -- helpers ---------------------------------------------------------------------------


def flagger(progress_deadline: int | None = None, **analysis: Any) -> FlaggerCanary:
    """A Flagger canary policy; ``analysis`` overrides the defaults below."""
    a: dict[str, Any] = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "maxWeight": 50,
        "metrics": [
            {"name": SR, "thresholdRange": {"min": 99}, "interval": "1m"},
            {"name": LAT, "thresholdRange": {"max": 500}, "interval": "1m"},
        ],
    }
    a.update(analysis)
    spec: dict[str, Any] = {"analysis": a}
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return FlaggerCanary(FlaggerPolicySpec.model_validate(spec))


@dataclass(frozen=True)
class T:
    """What the world shows the policy at one tick (everything but time and routes)."""

    metrics: Mapping[str, float | None] = field(default_factory=lambda: dict(GOOD))
    canary: Readiness = READY
    primary: Readiness = READY


@dataclass(frozen=True)
class Tick:
    """What happened at one tick."""

    tick: int
    t: float
    status: dict[str, Any]
    actions: tuple
    routed: int  # the router's canary weight after the tick's actions

    @property
    def phase(self) -> str:
        return self.status["phase"]

    @property
    def weight(self) -> int:
        return self.status["canary_weight"]

    @property
    def failed(self) -> int:
        return self.status["failed_checks"]


def drive(policy: FlaggerCanary, ticks: Sequence[T | Mapping[str, float | None]]) -> list[Tick]:
    """Run one observation per tick through ``policy`` the way the world would.

    A plain mapping stands for ``T(metrics=mapping)``. Ticks come at
    ``policy.next_tick``; after a terminal phase (next_tick None) they keep coming every
    interval so absorption can be checked.
    """
    state = policy.initial_state()
    routes = Routes()
    t = 0.0
    out: list[Tick] = []
    for n, spec in enumerate(ticks, start=1):
        if not isinstance(spec, T):
            spec = T(metrics=spec)
        nt = policy.next_tick(state, t)
        t = nt if nt is not None else t + policy.analysis.analysis_interval
        obs = Observation(t=t, tick=n, metrics=spec.metrics, routes=routes, canary=spec.canary, primary=spec.primary)
        state, actions = policy.step(state, obs)
        for a in actions:
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight, a.mirrored)
            elif isinstance(a, Rollback):
                routes = Routes()
        out.append(Tick(n, t, policy.status(state), actions, routes.canary_weight))
    return out


def summary(run: list[Tick]) -> list[tuple[int, str, int, int]]:
    """(tick, phase, canary_weight, failed_checks) per tick."""
    return [(k.tick, k.phase, k.weight, k.failed) for k in run]


def status(phase: str, weight: int = 0, failed: int = 0, iterations: int = 0) -> dict[str, Any]:
    return {"phase": phase, "canary_weight": weight, "failed_checks": failed, "iterations": iterations}


def kinds(actions: tuple) -> list[type]:
    return [type(a) for a in actions]


# -- starting the analysis -------------------------------------------------------------


def test_first_tick_starts_progressing_scales_up_and_analyses_nothing():
    """pkg/controller/scheduler.go, checkCanaryStatus: a new revision scales the canary
    from zero and ``SyncStatus{Phase: Progressing}`` (weight, failedChecks and
    iterations written as 0), then returns false so advanceCanary analyses nothing
    that tick, even with failing metrics."""
    [first] = drive(flagger(), [BAD_BOTH])
    assert first.status == status("Progressing")
    assert first.actions == (ScaleUp(),)
    assert first.routed == 0


def test_first_progressing_tick_runs_pre_rollout_hooks_only_then_advances():
    """pkg/controller/scheduler.go, advanceCanary: with ``canaryWeight == 0 &&
    Iterations == 0`` only the pre-rollout hooks run (no metric check: failing or absent
    metrics count nothing), then runCanary steps the weight to stepWeight."""
    run = drive(flagger(), [BAD_BOTH, NOTHING])
    assert run[1].status == status("Progressing", weight=10)
    assert run[1].actions == (SetWeights(10),)
    assert run[1].routed == 10


def test_metric_checks_start_on_the_tick_after_the_first_step():
    """pkg/controller/scheduler.go, advanceCanary: once the canary has weight the
    else-branch runs runAnalysis; a failure adds one failed check and returns before
    runCanary, so the weight stays."""
    run = drive(flagger(), [GOOD, GOOD, BAD_SR])
    assert run[2].status == status("Progressing", weight=10, failed=1)
    assert run[2].actions == ()
    assert run[2].routed == 10


# -- failed-check accounting ---------------------------------------------------------------


def test_failed_checks_are_cumulative_and_never_decremented():
    """pkg/controller/scheduler.go, advanceCanary: a failing runAnalysis calls
    ``SetStatusFailedChecks(FailedChecks+1)``; no code path decrements it on a passing
    check (pkg/canary/status.go, setStatusFailedChecks is only called with +1). With
    threshold 3 and every other check failing, the rollback comes at the start of the
    tick after the 3rd failure; failing ticks do not advance the weight, passing ones do."""
    run = drive(flagger(threshold=3, maxWeight=100), [GOOD, GOOD, BAD_SR, GOOD, BAD_SR, GOOD, BAD_SR, GOOD])
    assert summary(run) == [
        (1, "Progressing", 0, 0),
        (2, "Progressing", 10, 0),
        (3, "Progressing", 10, 1),  # fail: no step
        (4, "Progressing", 20, 1),  # pass: step, count kept
        (5, "Progressing", 20, 2),
        (6, "Progressing", 30, 2),
        (7, "Progressing", 30, 3),  # 3rd failure: no rollback yet
        (8, "Failed", 0, 0),  # rollback at the start of the next tick
    ]


@pytest.mark.parametrize("value", [NO_DATA, math.nan], ids=["no-data", "NaN"])
@pytest.mark.parametrize("metric", [SR, LAT])
def test_no_data_and_nan_count_as_a_failed_check(metric, value):
    """pkg/metrics/providers/prometheus.go, RunQuery: an empty result vector or a NaN
    sample returns ErrNoValuesFound; pkg/controller/scheduler_metrics.go,
    runBuiltinMetricChecks returns false on it ("Halt advancement no values found"),
    which advanceCanary counts as a failed check."""
    metrics = dict(GOOD)
    metrics[metric] = value
    run = drive(flagger(), [GOOD, GOOD, metrics])
    assert run[2].status == status("Progressing", weight=10, failed=1)
    assert run[2].actions == ()


def test_missing_metric_key_counts_as_no_data():
    """A query that is not in ``obs.metrics`` at all is an empty result (prometheus.go,
    RunQuery: no series -> ErrNoValuesFound)."""
    run = drive(flagger(), [GOOD, GOOD, {}])
    assert run[2].failed == 1


def test_at_most_one_failed_check_per_tick():
    """pkg/controller/scheduler_metrics.go, runBuiltinMetricChecks returns false at the
    first failing metric; advanceCanary then adds exactly one to failedChecks, however
    many metrics fail."""
    run = drive(flagger(), [GOOD, GOOD, BAD_BOTH, BAD_BOTH])
    assert [k.failed for k in run] == [0, 0, 1, 2]


def test_rollback_at_the_start_of_the_tick_after_the_threshold_th_failure():
    """pkg/controller/scheduler.go, advanceCanary: the ``FailedChecks >=
    GetAnalysisThreshold()`` check runs before the analysis, so with interval 60s and
    threshold 2 the failures at t=180 and t=240 roll back at t=300, whatever that
    tick's metrics are."""
    run = drive(flagger(threshold=2), [GOOD, GOOD, BAD_SR, BAD_SR, GOOD])
    assert [(k.tick, k.t, k.phase, k.weight, k.failed) for k in run] == [
        (1, 60.0, "Progressing", 0, 0),
        (2, 120.0, "Progressing", 10, 0),
        (3, 180.0, "Progressing", 10, 1),
        (4, 240.0, "Progressing", 10, 2),
        (5, 300.0, "Failed", 0, 0),
    ]


def test_rollback_routes_to_primary_and_syncs_failed_with_zero_weight_and_checks():
    """pkg/controller/scheduler.go, rollback: ``SetRoutes(100, 0)``, scale the canary
    to zero, then ``SyncStatus{Phase: Failed, CanaryWeight: 0}``; pkg/canary/status.go,
    syncCanaryStatus writes every field of that status, so failedChecks and iterations
    become 0 too."""
    run = drive(flagger(threshold=2), [GOOD, GOOD, BAD_SR, BAD_SR, GOOD])
    last = run[-1]
    assert last.status == status("Failed")
    assert SetWeights(0) in last.actions
    assert kinds(last.actions).count(Rollback) == 1
    assert Finish("Failed") in last.actions
    assert last.routed == 0


# -- traffic arithmetic ------------------------------------------------------------------


def test_weight_can_overshoot_max_weight():
    """pkg/controller/scheduler.go, runCanary: ``if canaryWeight < maxWeight`` the
    weight grows by nextStepWeight (capped at totalWeight 100 only), so maxWeight 50 with
    stepWeight 20 routes 20, 40, 60 and then promotes."""
    run = drive(flagger(maxWeight=50, stepWeight=20), [GOOD] * 5)
    assert [(k.phase, k.weight, k.routed) for k in run] == [
        ("Progressing", 0, 0),
        ("Progressing", 20, 20),
        ("Progressing", 40, 40),
        ("Progressing", 60, 60),
        ("Promoting", 60, 60),
    ]
    assert run[4].actions == (Promote(),)


def test_weight_is_capped_at_100():
    """pkg/controller/scheduler.go, runCanary: ``if canaryWeight > totalWeight`` it is
    set to totalWeight (100)."""
    run = drive(flagger(maxWeight=100, stepWeight=60), [GOOD] * 4)
    assert [k.weight for k in run] == [0, 60, 100, 100]
    assert run[3].phase == "Promoting"


def test_step_weights_follow_the_list_then_promote():
    """pkg/controller/scheduler.go, nextStepWeight: with stepWeights the step is the gap
    to the next entry; maxWeight is the last entry. [5, 10, 20, 40] routes 5, 10, 20, 40
    and promotes on the next tick."""
    run = drive(flagger(stepWeight=0, maxWeight=None, stepWeights=[5, 10, 20, 40]), [GOOD] * 6)
    assert [(k.phase, k.weight) for k in run] == [
        ("Progressing", 0),
        ("Progressing", 5),
        ("Progressing", 10),
        ("Progressing", 20),
        ("Progressing", 40),
        ("Promoting", 40),
    ]
    assert run[5].actions == (Promote(),)


def test_max_weight_defaults_to_100():
    """pkg/controller/scheduler.go, maxWeight: no stepWeights and no maxWeight gives
    totalWeight (100)."""
    run = drive(flagger(maxWeight=None, stepWeight=50), [GOOD] * 4)
    assert [(k.phase, k.weight) for k in run] == [
        ("Progressing", 0),
        ("Progressing", 50),
        ("Progressing", 100),
        ("Promoting", 100),
    ]


# -- promotion ---------------------------------------------------------------------------


def test_promotion_in_one_go_then_finalising_then_succeeded():
    """pkg/controller/scheduler.go, runCanary: at ``canaryWeight >= maxWeight``,
    Promote and ``SetStatusPhase(Promoting)``, which keeps canaryWeight
    (pkg/canary/status.go, setStatusPhase zeroes it only outside Progressing, Waiting and
    Promoting). Next tick, runPromotionTrafficShift with stepWeightPromotion 0 routes
    everything to the primary and sets Finalising (weight 0). Next tick advanceCanary's
    Finalising branch scales the canary down and sets Succeeded."""
    run = drive(flagger(maxWeight=30), [GOOD] * 7)
    assert [(k.phase, k.weight, k.routed) for k in run] == [
        ("Progressing", 0, 0),
        ("Progressing", 10, 10),
        ("Progressing", 20, 20),
        ("Progressing", 30, 30),
        ("Promoting", 30, 30),
        ("Finalising", 0, 0),
        ("Succeeded", 0, 0),
    ]
    assert run[4].actions == (Promote(),)
    assert run[5].actions == (SetWeights(0),)
    assert run[6].actions == (Finish("Succeeded"),)


def test_promotion_runs_no_analysis():
    """pkg/controller/scheduler.go, advanceCanary: the Promoting and Finalising branches
    return before the threshold check and runAnalysis, so bad metrics after the promotion
    decision count nothing."""
    run = drive(flagger(maxWeight=30), [GOOD] * 5 + [BAD_BOTH, NOTHING])
    assert [(k.phase, k.failed) for k in run[4:]] == [("Promoting", 0), ("Finalising", 0), ("Succeeded", 0)]


def test_failed_checks_survive_promotion_status_changes():
    """pkg/canary/status.go, setStatusPhase touches phase, canaryWeight and iterations
    only: a failed check counted before the promotion is still in the status after
    Promoting, Finalising and Succeeded."""
    run = drive(flagger(maxWeight=20), [GOOD, GOOD, BAD_SR, GOOD, GOOD, GOOD, GOOD])
    assert [(k.phase, k.weight, k.failed) for k in run] == [
        ("Progressing", 0, 0),
        ("Progressing", 10, 0),
        ("Progressing", 10, 1),
        ("Progressing", 20, 1),
        ("Promoting", 20, 1),
        ("Finalising", 0, 1),
        ("Succeeded", 0, 1),
    ]


def test_promotion_traffic_shift_steps_the_primary_weight():
    """pkg/controller/scheduler.go, runPromotionTrafficShift: with stepWeightPromotion
    20 the primary weight grows by 20 per tick from the routed weights (50/50 -> 70, 90,
    100, capped), the status weight follows (SetStatusWeight) and Finalising is set when
    the primary reaches 100 (SetStatusPhase zeroes the weight)."""
    run = drive(flagger(maxWeight=50, stepWeightPromotion=20), [GOOD] * 11)
    assert [(k.phase, k.weight, k.routed) for k in run] == [
        ("Progressing", 0, 0),
        ("Progressing", 10, 10),
        ("Progressing", 20, 20),
        ("Progressing", 30, 30),
        ("Progressing", 40, 40),
        ("Progressing", 50, 50),
        ("Promoting", 50, 50),
        ("Promoting", 30, 30),  # primary 70
        ("Promoting", 10, 10),  # primary 90
        ("Finalising", 0, 0),  # primary 100
        ("Succeeded", 0, 0),
    ]
    assert [k.actions for k in run[7:10]] == [(SetWeights(30),), (SetWeights(10),), (SetWeights(0),)]


def test_promotion_waits_for_the_primary_rolling_update():
    """pkg/controller/scheduler.go, advanceCanary: IsPrimaryReady runs before the
    Promoting branch; a retriable error (the primary is rolling out the promoted spec)
    makes the tick return, so the traffic shift waits for the primary."""
    rolling = Readiness(False, 300.0)
    run = drive(flagger(maxWeight=30), [GOOD] * 5 + [T(primary=rolling), T(primary=rolling), GOOD, GOOD])
    assert [(k.phase, k.weight, k.routed, k.actions) for k in run[4:]] == [
        ("Promoting", 30, 30, (Promote(),)),
        ("Promoting", 30, 30, ()),
        ("Promoting", 30, 30, ()),
        ("Finalising", 0, 0, (SetWeights(0),)),
        ("Succeeded", 0, 0, (Finish("Succeeded"),)),
    ]


# -- metric thresholds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "threshold", "value", "fails"),
    [
        (SR, 99, 98.9, True),  # threshold > value
        (SR, 99, 99.0, False),  # equal passes
        (SR, 99, 100.0, False),
        (LAT, 500, 501.0, True),  # value > threshold
        (LAT, 500, 500.0, False),
        (LAT, 500, 10.0, False),
    ],
)
def test_legacy_threshold(metric, threshold, value, fails):
    """pkg/controller/scheduler_metrics.go, runBuiltinMetricChecks: without
    thresholdRange, request-success-rate fails when ``metric.Threshold > val`` and
    request-duration fails when ``val > Threshold ms``."""
    policy = flagger(metrics=[{"name": metric, "threshold": threshold}])
    run = drive(policy, [{}, {}, {metric: value}])
    assert run[2].failed == int(fails)
    assert run[2].weight == (10 if fails else 20)


@pytest.mark.parametrize(
    ("metric", "bounds", "value", "fails"),
    [
        (SR, {"min": 99}, 98.99, True),
        (SR, {"min": 99}, 99.0, False),
        (SR, {"min": 99}, 100.0, False),
        (LAT, {"max": 500}, 501.0, True),
        (LAT, {"max": 500}, 500.0, False),
        (LAT, {"max": 500}, 0.0, False),
        (SR, {"min": 90, "max": 95}, 99.0, True),
        (LAT, {"min": 10, "max": 500}, 5.0, True),
    ],
)
def test_threshold_range(metric, bounds, value, fails):
    """pkg/controller/scheduler_metrics.go, runBuiltinMetricChecks: with thresholdRange
    the check fails when ``val < *tr.Min`` or ``val > *tr.Max`` (request-duration in ms);
    the bounds themselves pass."""
    policy = flagger(metrics=[{"name": metric, "thresholdRange": bounds}])
    run = drive(policy, [{}, {}, {metric: value}])
    assert run[2].failed == int(fails)


@pytest.mark.parametrize(
    "metric_spec",
    [
        {"name": LAT, "thresholdRange": {"max": 500}},
        {"name": LAT, "threshold": 500},
    ],
    ids=["thresholdRange", "legacy"],
)
def test_request_duration_is_compared_in_whole_milliseconds(metric_spec):
    """pkg/metrics/observers/istio.go, GetRequestDuration: ``ms :=
    time.Duration(int64(value)) * time.Millisecond``; a p99 of 500.9ms is 500ms, which is
    not above a max of 500ms (pkg/controller/scheduler_metrics.go,
    runBuiltinMetricChecks)."""
    run = drive(flagger(metrics=[metric_spec]), [{}, {}, {LAT: 500.9}])
    assert run[2].failed == 0


def test_metrics_are_checked_in_spec_order_and_stop_at_the_first_failure():
    """pkg/controller/scheduler_metrics.go, runBuiltinMetricChecks loops over
    ``analysis.metrics`` in order and returns at the first failure: with the duration
    metric first, a duration failure is what the event reports."""
    policy = flagger(
        metrics=[{"name": LAT, "thresholdRange": {"max": 500}}, {"name": SR, "thresholdRange": {"min": 99}}]
    )
    state = policy.initial_state()
    routes = Routes()
    for n, m in enumerate([GOOD, GOOD, BAD_BOTH], start=1):
        state, actions = policy.step(state, Observation(t=60.0 * n, tick=n, metrics=m, routes=routes))
        for a in actions:
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight)
    assert state.failed_checks == 1
    assert LAT in state.event and SR not in state.event


# -- readiness ----------------------------------------------------------------------------


def test_canary_not_ready_is_retriable_and_counts_nothing():
    """pkg/controller/scheduler.go, advanceCanary: IsCanaryReady's retriable error makes
    the tick return before the threshold check, the analysis and runCanary: no failed
    check, no weight change; the analysis resumes once the canary is ready
    (pkg/canary/deployment_ready.go, isDeploymentReady: retriable while
    ``!from.Add(deadline).Before(now)``)."""
    unready = Readiness(False, 130.0)
    run = drive(flagger(), [GOOD, GOOD, T(BAD_BOTH, canary=unready), T(BAD_BOTH, canary=unready), GOOD])
    assert [(k.phase, k.weight, k.failed, k.actions) for k in run[1:]] == [
        ("Progressing", 10, 0, (SetWeights(10),)),
        ("Progressing", 10, 0, ()),
        ("Progressing", 10, 0, ()),
        ("Progressing", 20, 0, (SetWeights(20),)),
    ]


def test_canary_readiness_wait_comes_before_the_threshold_rollback():
    """pkg/controller/scheduler.go, advanceCanary: IsCanaryReady (retriable: return)
    runs before the ``FailedChecks >= threshold`` rollback, so a canary that is not ready
    postpones the rollback."""
    unready = Readiness(False, 170.0)
    run = drive(flagger(threshold=1), [GOOD, GOOD, BAD_SR, T(canary=unready), GOOD])
    assert [(k.phase, k.failed) for k in run[2:]] == [("Progressing", 1), ("Progressing", 1), ("Failed", 0)]


def test_canary_readiness_is_not_checked_on_the_start_tick():
    """pkg/controller/scheduler.go, advanceCanary: checkCanaryStatus returns (after
    ScaleFromZero) before IsCanaryReady, so the canary, still at zero replicas, does not
    block the start."""
    [first] = drive(flagger(), [T(canary=Readiness(False, 0.0))])
    assert first.status == status("Progressing")
    assert first.actions == (ScaleUp(),)


def test_canary_progress_deadline_rolls_back():
    """pkg/canary/deployment_ready.go, isDeploymentReady: ``retriable =
    !from.Add(deadline).Before(now)``, i.e. non-retriable once unready_since + deadline <
    now (strictly); pkg/controller/scheduler.go, advanceCanary: a non-retriable
    IsCanaryReady error rolls back. Scaled up at t=60 with a 120s deadline: waits at
    t=120 and t=180 (180 is not before 180), rolls back at t=240."""
    crashing = Readiness(False, 60.0)
    run = drive(flagger(progress_deadline=120), [T(canary=crashing)] * 4)
    assert [(k.t, k.phase, k.weight, k.failed) for k in run] == [
        (60.0, "Progressing", 0, 0),
        (120.0, "Progressing", 0, 0),
        (180.0, "Progressing", 0, 0),
        (240.0, "Failed", 0, 0),
    ]
    assert kinds(run[3].actions).count(Rollback) == 1
    assert SetWeights(0) in run[3].actions


def test_primary_not_ready_does_nothing():
    """pkg/controller/scheduler.go, advanceCanary: IsPrimaryReady runs first; a
    retriable error returns before anything else, in Progressing (no analysis, no step)
    and before a new revision is picked up (no ScaleUp)."""
    rolling = Readiness(False, 0.0)
    run = drive(flagger(), [T(primary=rolling), GOOD, GOOD, T(BAD_BOTH, primary=rolling), GOOD])
    assert [(k.phase, k.weight, k.failed, k.actions) for k in run] == [
        ("Initialized", 0, 0, ()),
        ("Progressing", 0, 0, (ScaleUp(),)),
        ("Progressing", 10, 0, (SetWeights(10),)),
        ("Progressing", 10, 0, ()),
        ("Progressing", 20, 0, (SetWeights(20),)),
    ]


def test_primary_progress_deadline_in_progressing_rolls_back():
    """pkg/controller/scheduler.go, advanceCanary: a non-retriable IsPrimaryReady error
    outside Promoting/Finalising calls rollback."""
    stuck = Readiness(False, 0.0)
    run = drive(flagger(progress_deadline=60), [GOOD, GOOD, T(primary=stuck)])
    assert run[2].status == status("Failed")
    assert kinds(run[2].actions).count(Rollback) == 1


def test_primary_progress_deadline_during_promotion_routes_to_the_canary():
    """pkg/controller/scheduler.go, handleFailedPromotion: the promoted primary is stuck,
    the canary is the only healthy copy of the new revision, so traffic goes 0/100 to the
    canary and the status is Failed with canaryWeight 100; no rollback to the primary."""
    stuck = Readiness(False, 300.0)  # rolling out the promoted spec since t=300
    run = drive(flagger(maxWeight=30, progress_deadline=30), [GOOD] * 5 + [T(primary=stuck)])
    assert run[4].phase == "Promoting"
    last = run[5]
    assert last.status["phase"] == "Failed"
    assert last.weight == 100
    assert SetWeights(100) in last.actions
    assert Rollback not in kinds(last.actions)


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "expected"), [("1s", 10.0), ("5s", 10.0), ("0s", 10.0), ("10s", 10.0), ("15s", 15.0), ("1m", 60.0)]
)
def test_analysis_interval_is_clamped_to_10s(interval, expected):
    """pkg/apis/flagger/v1beta1/canary.go, GetAnalysisInterval: intervals under 10s
    return 10s; the scheduler's ticker uses that value."""
    policy = flagger(interval=interval)
    state = policy.initial_state()
    assert policy.next_tick(state, 0.0) == expected
    assert policy.next_tick(state, 100.0) == 100.0 + expected


@pytest.mark.parametrize("threshold", [0, -3])
def test_threshold_not_above_zero_means_one(threshold):
    """pkg/apis/flagger/v1beta1/canary.go, GetAnalysisThreshold: ``Threshold > 0`` or
    else 1, so the first failure rolls back on the next tick."""
    run = drive(flagger(threshold=threshold), [GOOD, GOOD, BAD_SR, GOOD])
    assert summary(run) == [
        (1, "Progressing", 0, 0),
        (2, "Progressing", 10, 0),
        (3, "Progressing", 10, 1),
        (4, "Failed", 0, 0),
    ]


# -- terminal phases --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ticks",
    [
        [GOOD, GOOD, BAD_SR, BAD_SR],  # threshold 1: Failed at tick 4
        [GOOD] * 6,  # maxWeight 20: Succeeded at tick 6
    ],
    ids=["Failed", "Succeeded"],
)
def test_terminal_phases_are_absorbing(ticks):
    """Failed and Succeeded end the analysis: Flagger only leaves them when a new
    revision is detected (pkg/controller/scheduler.go, shouldAdvance and
    checkCanaryStatus), which a policy run never sees. Further steps return the same
    state and no actions, whatever they observe, and next_tick is None."""
    policy = flagger(threshold=1, maxWeight=20)
    state = policy.initial_state()
    routes = Routes()
    for n, m in enumerate(ticks, start=1):
        state, actions = policy.step(state, Observation(t=60.0 * n, tick=n, metrics=m, routes=routes))
        for a in actions:
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight)
    assert state.phase in policy.terminal_phases
    assert policy.next_tick(state, 600.0) is None
    for obs in [
        Observation(t=900.0, tick=9, metrics=BAD_BOTH, routes=Routes(50)),
        Observation(t=960.0, tick=10, metrics=GOOD, canary=Readiness(False, 0.0), primary=Readiness(False, 0.0)),
    ]:
        again, actions = policy.step(state, obs)
        assert again == state
        assert actions == ()
