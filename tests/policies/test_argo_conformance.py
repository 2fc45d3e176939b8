"""Table-driven conformance of ``ArgoRollout`` with argoproj/argo-rollouts.

Every case is a rollout spec, a scripted world (metric values over time, when the canary
or preview becomes available, when someone runs ``kubectl argo rollouts promote``) and
the timeline Argo Rollouts would produce: one row per moment something changes, with the
step index, the canary weight in the status, the weight the router holds, the rollout
phase, every AnalysisRun with its per-metric measurement counters, and what was done
(``scale-up``, ``abort``, ``promote``).

The expected rows were derived by reading argoproj/argo-rollouts at commit 9f8d111d
(``rollout/canary.go``, ``rollout/analysis.go``, ``rollout/pause.go``,
``rollout/bluegreen.go``, ``rollout/service.go``, ``rollout/sync.go``,
``rollout/trafficrouting.go``, ``analysis/analysis.go``, ``utils/evaluate/evaluate.go``,
``utils/replicaset/canary.go``, ``utils/rollout/rolloututil.go``,
``pkg/kubectl-argo-rollouts/cmd/promote/promote.go``), NOT by running the policy; each
case names its ``source`` and carries the derivation as a comment. Where the policy
disagrees, the case keeps the upstream expectation and is marked
``xfail(strict=True)`` with the upstream line and what the policy does instead.

Two things are checked separately, so that one disagreement does not hide the other:

* ``decisions``: the rows without the phase column (time, step index, status weight,
  router weight, AnalysisRuns, actions);
* ``phase``: the rollout phase timeline (``CalculateRolloutPhase``), as (time, phase)
  at every change.

Conventions shared by all the tables (what the upstream derivations assume):

* Time is seconds since the new revision was applied. The controllers react to events
  (a status patch, an AnalysisRun update, the requeue at a measurement's
  ``finishedAt + interval`` or at a pause's ``startTime + duration``), so a chain of
  reconciles triggered by one event happens at the same instant here: the row at time t
  is the state after the last of them. Argo completes at most one step per reconcile
  (``syncRolloutStatusCanary``), but each status patch re-enqueues the rollout at once.
* Pods are available the moment they are wanted unless the case says otherwise
  (``ready_at``): a ``setWeight`` step is at its desired replica counts at once.
* ``replicas: 1`` and Istio traffic routing unless the case says otherwise.
* An AnalysisRun takes its first measurement when it is created (the analysis
  controller reconciles it on its Add event); the next one when ``now`` passes
  ``finishedAt + interval`` (the requeue fires at that instant), or 10 s after an Error
  (``DefaultErrorRetryInterval``).
* ``promote at T``: ``kubectl argo rollouts promote`` at T, one-shot; its status patch
  makes the controller reconcile at T. All such times lie on the policy's 15 s resync
  grid, so the policy sees them at T too.
* ``runs``: the AnalysisRuns the rollout holds as current (for canary:
  ``currentBackgroundAnalysisRun`` and ``currentStepAnalysisRun``; for blue/green
  ``prePromotion``/``postPromotion``), keyed ``background``, ``step:<index>``, ``pre``,
  ``post``; on the row of an abort or a promotion, the runs it held when it decided (the
  ones it then cancels). A run reads ``<run phase> <metric>:<metric phase> c<count>
  s<successful> f<failed> i<inconclusive> e<error> ce<consecutiveError>``, one entry
  per metric that has taken a measurement (Argo has no MetricResult before that).
* ``weight``: the weight of the current step as the status reports it
  (``GetCurrentSetWeight``: the last ``setWeight`` at or before the step index, 0 after
  an abort, 100 once all steps are done); for blue/green 100 once the active Service
  points at the new ReplicaSet. ``router``: the percent of live traffic on the canary
  workload as the router holds it after the row's actions. Without trafficRouting that
  is the canary's share of the pods (kube-proxy balances over all endpoints). After the
  promotion the primary runs the new version, so it reads 0 again.
* ``Paused`` is the phase while any pause condition is set (``CalculateRolloutPhase``
  returns Paused for the first entry of ``status.pauseConditions``): a ``pause`` step
  with a duration adds ``CanaryPauseStep`` too (``reconcileCanaryPause``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from sim.policies.argo.rollout import ArgoRollout, ArgoState
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.base import (
    MetricValue,
    Observation,
    Promote,
    QueryError,
    Readiness,
    Rollback,
    Routes,
    ScalarResult,
    ScaleUp,
    SetWeights,
)
from sim.world.controller import Workload

NAN = float("nan")
MAX_TICKS = 2000
GOOD, BAD, MIDDLE = 0.99, 0.5, 0.92
QUERY = (
    'sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",'
    'response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total{reporter="source",'
    'destination_service=~"{{args.service-name}}"}[1m]))'
)

# -- spec helpers ----------------------------------------------------------------------------


def metric(
    name: str = "sr", *, success: str | None = "result[0] >= 0.95", failure: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A Prometheus metric of an AnalysisTemplate; ``fields`` are Argo's own keys."""
    m: dict[str, Any] = {
        "name": name,
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": QUERY}},
    }
    if success is not None:
        m["successCondition"] = success
    if failure is not None:
        m["failureCondition"] = failure
    m.update(fields)
    return m


def template(*metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"metrics": list(metrics), "args": [{"name": "service-name", "value": "rollouts-demo-canary"}], **fields}


def use(name: str, **fields: Any) -> dict[str, Any]:
    """An ``analysis`` block (step, background, pre/post) that references one template."""
    return {"templates": [{"templateName": name}], **fields}


def canary(
    steps: list[dict[str, Any]],
    templates: Mapping[str, dict[str, Any]] | None = None,
    *,
    analysis: dict[str, Any] | None = None,
    replicas: int = 1,
    traffic_routing: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "canaryService": "rollouts-demo-canary",
        "stableService": "rollouts-demo-stable",
        "steps": steps,
        **fields,
    }
    if traffic_routing:
        c["trafficRouting"] = {"istio": {"virtualService": {"name": "rollouts-demo-vsvc"}}}
    if analysis is not None:
        c["analysis"] = analysis
    return {"replicas": replicas, "strategy": {"canary": c}, "templates": dict(templates or {})}


def blue_green(templates: Mapping[str, dict[str, Any]], **fields: Any) -> dict[str, Any]:
    bg = {"activeService": "rollouts-demo-active", "previewService": "rollouts-demo-preview", **fields}
    return {"replicas": 1, "strategy": {"blueGreen": bg}, "templates": dict(templates)}


def sw(weight: int) -> dict[str, Any]:
    return {"setWeight": weight}


def pause(duration: str | None = None) -> dict[str, Any]:
    return {"pause": {} if duration is None else {"duration": duration}}


# -- table rows --------------------------------------------------------------------------------


class Row(NamedTuple):
    t: float
    step: int
    weight: int
    router: int
    phase: str
    runs: dict[str, str]
    did: str


def row(
    t: float, step: int, weight: int, router: int, phase: str, runs: Mapping[str, str] | None = None, did: str = ""
) -> Row:
    return Row(float(t), step, weight, router, phase, dict(runs or {}), did)


def run(phase: str, *metrics: str) -> str:
    """An AnalysisRun cell: ``run("Running", m("sr", "Running", c=1, s=1))``."""
    return " ".join([phase, ", ".join(metrics)]) if metrics else phase


def m(name: str, phase: str, c: int = 0, s: int = 0, f: int = 0, i: int = 0, e: int = 0, ce: int = 0) -> str:
    return f"{name}:{phase} c{c} s{s} f{f} i{i} e{e} ce{ce}"


# -- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What the controller sees over time.

    Attributes:
        metrics: metric name -> ``[(from_t, value), ...]``: piecewise constant, the
            latest point at or before t, as the world hands a query's result (None or ():
            an empty vector; a number: a one-sample vector; a tuple: a vector; a
            ``ScalarResult``: a scalar; a ``QueryError``: the query failed).
        ready_at: when the canary (blue/green: the preview) ReplicaSet is available.
        startup, unready: see the fields.
        promote_at: times of ``kubectl argo rollouts promote`` (one-shot each).
        until: the last time the policy is run.
    """

    metrics: Mapping[str, Sequence[tuple[float, MetricValue]]] = field(default_factory=dict)
    ready_at: float = 0.0
    promote_at: tuple[float, ...] = ()
    until: float = 400.0
    #: Counted pods (issue 16): each scale-up's pods become available ``startup`` s
    #: later and wake the controller then (``sim.world.controller.Workload``); None: the
    #: canary is available from ``ready_at`` whatever its size.
    startup: float | None = None
    #: (from, to) windows when the canary is unavailable (an outage).
    unready: tuple[tuple[float, float], ...] = ()

    def value(self, name: str, t: float) -> MetricValue:
        out: MetricValue = None
        for at, v in self.metrics.get(name, ()):
            if at <= t:
                out = v
        return out


def _render_runs(state: ArgoState) -> dict[str, str]:
    out = {}
    for r in state.runs:
        cells = [
            m(x.name, x.phase, x.count, x.successful, x.failed, x.inconclusive, x.error, x.consecutive_error)
            for x in r.state.metrics
            if x.started
        ]
        out[r.kind] = run(r.state.phase, *cells)
    return out


def _did(actions: Sequence[object]) -> str:
    names = {ScaleUp: "scale-up", Rollback: "abort", Promote: "promote"}
    return "+".join(names[type(a)] for a in actions if type(a) in names)


def play(case: dict[str, Any]) -> list[Row]:
    """Drive ArgoRollout through the case's world; one row per change."""
    policy = ArgoRollout(ArgoPolicySpec.model_validate(case["spec"]))
    world: World = case["world"]
    promotions = sorted(world.promote_at)
    state = policy.initial_state()
    routes = Routes()
    t, tick = 0.0, 0
    rows: list[Row] = []
    pods = Workload(ready=False) if world.startup is not None else None
    if pods is not None:
        for start, end in world.unready:
            pods.change(start, False)
            pods.change(end, True)
    while True:
        nt = policy.next_tick(state, t)
        wake = pods.next_available(t) if pods is not None else None
        if nt is not None and wake is not None:
            nt = min(nt, wake)
        if nt is None or nt > world.until:
            break
        t, tick = nt, tick + 1
        # A resync every 15 s plus the measurements: a few hundred ticks at most in these windows.
        assert tick <= MAX_TICKS, f"next_tick spins: tick {tick} at t={t!r}"
        promote = bool(promotions) and promotions[0] <= t
        if promote:
            assert promotions.pop(0) == t, f"the promote at {world.promote_at} fell between ticks (t={t})"
        ready = t >= world.ready_at and not any(a <= t < b for a, b in world.unready)
        obs = Observation(
            t=t,
            tick=tick,
            metrics={q.name: world.value(q.name, t) for q in policy.queries()},
            routes=routes,
            canary=pods.view(t) if pods is not None else Readiness(ready, None if ready else 0.0),
            webhooks={"manual-promotion": promote},
        )
        state, actions = policy.step(state, obs)
        for a in actions:
            if isinstance(a, ScaleUp) and pods is not None and a.replicas is not None:
                pods.scale(t, a.replicas, world.startup or 0.0)
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight, a.mirrored, a.matched)
            elif isinstance(a, Rollback):
                routes = Routes()
        status = policy.status(state)
        new = row(
            t,
            status["step_index"],
            status["canary_weight"],
            routes.canary_weight,
            status["phase"],
            _render_runs(state),
            _did(actions),
        )
        if not rows or new.did or new[1:6] != rows[-1][1:6]:
            rows.append(new)
    assert not promotions, f"promotions at {promotions} were never seen by a tick"
    return rows


def decisions(rows: Sequence[Row]) -> list[tuple]:
    """The rows without the phase, merging rows that then show no change."""
    out: list[tuple] = []
    for r in rows:
        key = (r.t, r.step, r.weight, r.router, r.runs, r.did)
        if not out or r.did or key[1:5] != out[-1][1:5]:
            out.append(key)
    return out


def phases(rows: Sequence[Row]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for r in rows:
        if not out or r.phase != out[-1][1]:
            out.append((r.t, r.phase))
    return out


# -- the templates ------------------------------------------------------------------------------

#: success >= 0.95 every minute, unbounded (a background run), failureLimit 2.
SR_BG_FL2 = template(metric(interval="60s", failureLimit=2))
#: success >= 0.95 every minute, unbounded, failureLimit 0 (the default).
SR_BG = template(metric(interval="60s"))
#: 3 measurements a minute apart, failureLimit 1.
SR_3_FL1 = template(metric(interval="60s", count=3, failureLimit=1))
#: 3 measurements a minute apart, failureLimit 0.
SR_3 = template(metric(interval="60s", count=3))
#: 2 measurements a minute apart.
SR_2 = template(metric(interval="60s", count=2))
#: one measurement (no interval: EffectiveCount 1).
SMOKE = template(metric())
#: success >= 0.95 and failure < 0.90: 0.92 is neither (Inconclusive).
SR_BOTH_BG = template(metric(interval="60s", failure="result[0] < 0.90"))
#: ... with inconclusiveLimit 1 (the second Inconclusive measurement ends the run).
SR_BOTH_BG_IL1 = template(metric(interval="60s", failure="result[0] < 0.90", inconclusiveLimit=1))
SR_BOTH_3 = template(metric(interval="60s", count=3, failure="result[0] < 0.90"))
#: failure-only condition.
SR_FAIL_ONLY = template(metric(interval="60s", success=None, failure="result[0] < 0.95"))
#: success rate plus a latency metric (meant to run as dry-run).
SR_AND_LATENCY = template(metric(interval="60s"), metric("latency", interval="60s", success="result[0] <= 500"))

RAMP = [sw(20), pause("2m"), sw(40), pause("2m"), sw(60), pause("2m"), sw(80), pause("2m")]


# -- the cases ----------------------------------------------------------------------------------

CASES: list[dict[str, Any]] = [
    dict(
        id="01-background-failure-limit-cumulative-abort",
        source="rollout/analysis.go: reconcileBackgroundAnalysisRun (Failed -> AddAbort); analysis/analysis.go: "
        "runMeasurements (Failed++ never reset), assessMetricFailureInconclusiveOrError (failed > "
        "failureLimit), generateMetricTasks (now.After(finishedAt + interval)); rollout/pause.go: "
        "CompletedCanaryPauseStep; rollout/trafficrouting.go: reconcileTrafficRouting (IsAborted -> "
        "weight 0); rollout/canary.go: syncRolloutStatusCanary (IsAborted -> currentStepIndex 0)",
        # The background run (no startingStep) is created in the first reconcile and measures at 0, 60, ...
        # Failures at 60, 180 and 300 alternate with passes: Failed is cumulative, so the third failure
        # (3 > failureLimit 2) fails the metric and the run at 300 although no two failures were adjacent.
        # The pauses of 2m expire at 120 and 240 (requeue at startTime + duration), each moving through the
        # next setWeight to the next pause in the same instant. At 300 the abort sets the weight to 0 and the
        # step index to 0; the phase is Degraded (RolloutAborted condition).
        spec=canary(RAMP, {"sr": SR_BG_FL2}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, BAD), (120, GOOD), (180, BAD), (240, GOOD), (300, BAD)]}),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=1, f=1))}),
            row(120, 3, 40, 40, "Paused", {"background": run("Running", m("sr", "Running", c=3, s=2, f=1))}),
            row(180, 3, 40, 40, "Paused", {"background": run("Running", m("sr", "Running", c=4, s=2, f=2))}),
            row(240, 5, 60, 60, "Paused", {"background": run("Running", m("sr", "Running", c=5, s=3, f=2))}),
            row(300, 0, 0, 0, "Degraded", {"background": run("Failed", m("sr", "Failed", c=6, s=3, f=3))}, "abort"),
        ],
    ),
    dict(
        id="02-inline-analysis-count-and-failure-limit",
        source="rollout/analysis.go: reconcileStepBasedAnalysisRun (creates the step's run; Failed -> AddAbort; "
        "a run of a previous step is cancelled); rollout/canary.go: completedCurrentCanaryStep "
        "(analysis step: run Successful); analysis/analysis.go: assessMetricStatus (count reached and "
        "failed <= failureLimit -> Successful; failed > failureLimit checked first)",
        # Step 1's run measures at 0 (pass), 60 (fail: 1 <= failureLimit 1, still Running), 120 (pass): count 3
        # reached with 1 failure -> Successful -> step 2 (setWeight 50) -> step 3, whose new run measures at
        # 120 too (0.99). It fails at 180 and 240: failed 2 > 1 -> Failed at 240 (the count of 3 is reached in
        # the same measurement, but the failure check comes first) -> abort.
        spec=canary(
            [sw(20), {"analysis": use("sr3")}, sw(50), {"analysis": use("sr3")}, sw(80), pause("2m")], {"sr3": SR_3_FL1}
        ),
        world=World({"sr": [(0, GOOD), (60, BAD), (120, GOOD), (180, BAD)]}),
        rows=[
            row(0, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=2, s=1, f=1))}),
            row(120, 3, 50, 50, "Progressing", {"step:3": run("Running", m("sr", "Running", c=1, s=1))}),
            row(180, 3, 50, 50, "Progressing", {"step:3": run("Running", m("sr", "Running", c=2, s=1, f=1))}),
            row(240, 0, 0, 0, "Degraded", {"step:3": run("Failed", m("sr", "Failed", c=3, s=1, f=2))}, "abort"),
        ],
    ),
    dict(
        id="03-background-inconclusive-pauses",
        source="utils/evaluate/evaluate.go: EvaluateResult (both conditions false -> Inconclusive); "
        "analysis/analysis.go: assessMetricFailureInconclusiveOrError (inconclusive > inconclusiveLimit 0); "
        "rollout/analysis.go: reconcileBackgroundAnalysisRun (Inconclusive -> "
        "AddPauseCondition(InconclusiveAnalysis); while that condition is set the run is neither "
        "replaced nor re-read)",
        # 0.92 at 60 is neither >= 0.95 nor < 0.90 -> Inconclusive -> the run is Inconclusive and the rollout
        # adds the InconclusiveAnalysis pause. Nothing is measured afterwards (the run is completed) and no
        # new run is made while the condition is set; the weight stays 20. (The window ends before the 10m
        # pause step would expire: see the report on what upstream does then.)
        spec=canary([sw(20), pause("10m"), sw(60), pause("10m")], {"sr": SR_BOTH_BG}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, until=300),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
        ],
    ),
    dict(
        id="04-promote-after-background-inconclusive-new-run",
        source="pkg/kubectl-argo-rollouts/cmd/promote/promote.go: getPatches (background run inconclusive: "
        "clearPauseConditionsPatch, every pause condition cleared, controllerPause kept); "
        "rollout/analysis.go: needsNewAnalysisRun (ControllerPause, no CanaryPauseStep/BlueGreenPause "
        "condition, run Inconclusive -> true), reconcileBackgroundAnalysisRun; rollout/pause.go: "
        "CompletedCanaryPauseStep (ControllerPause && no CanaryPauseStep condition -> completed); "
        "rollout/canary.go: reconcileCanaryPause",
        # As case 03 until the promote at 180. The patch clears both pause conditions (InconclusiveAnalysis
        # and the 10m step's CanaryPauseStep) and keeps controllerPause, so the reconcile at 180 creates a
        # new background run (measured at once: 0.99) AND completes the pause step (the rollout was
        # "unpaused"): step 2 sets weight 60 and step 3's 10m pause begins. The new run measures at 240, 300.
        spec=canary([sw(20), pause("10m"), sw(60), pause("10m")], {"sr": SR_BOTH_BG}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, promote_at=(180,), until=300),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
            row(180, 3, 60, 60, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}),
            row(240, 3, 60, 60, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2))}),
            row(300, 3, 60, 60, "Paused", {"background": run("Running", m("sr", "Running", c=3, s=3))}),
        ],
    ),
    dict(
        id="05-inline-analysis-inconclusive-pauses",
        source="utils/evaluate/evaluate.go: EvaluateResult; analysis/analysis.go: assessMetricStatus "
        "(Inconclusive before the count is reached); rollout/analysis.go: reconcileStepBasedAnalysisRun "
        "(Inconclusive -> AddPauseCondition(InconclusiveAnalysis)); rollout/canary.go: rolloutCanary "
        "(HasAddPause -> sync status and return); utils/rollout/rolloututil.go: CalculateRolloutPhase",
        # Step 1's run (count 3) measures 0.99 at 0 and 0.92 at 60: inconclusive 1 > 0 -> the metric and the
        # run are Inconclusive after 2 of 3 measurements; the rollout pauses (InconclusiveAnalysis) and
        # stays at step 1, weight 20. The run is completed: nothing more is measured.
        spec=canary([sw(20), {"analysis": use("sr3")}, sw(60), pause("10m")], {"sr3": SR_BOTH_3}),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, until=300),
        rows=[
            row(0, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"step:1": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
        ],
    ),
    dict(
        id="06-promote-after-inline-inconclusive-skips-the-step",
        source="pkg/kubectl-argo-rollouts/cmd/promote/promote.go: isInconclusive (the *step* run is "
        "Inconclusive), getPatches (clearPauseConditionsAndControllerPausePatch with currentStepIndex "
        "+ 1); rollout/analysis.go: reconcileStepBasedAnalysisRun (step without analysis -> the old "
        "run is cancelled, no new run)",
        # As case 05 until the promote at 120. With the step run Inconclusive, the promote patch clears the
        # pause conditions and controllerPause AND moves currentStepIndex past the analysis step (1 -> 2): no
        # new run is created for step 1. Step 2 sets weight 60, step 3 (10m pause) begins, paused.
        spec=canary([sw(20), {"analysis": use("sr3")}, sw(60), pause("10m")], {"sr3": SR_BOTH_3}),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, promote_at=(120,), until=300),
        rows=[
            row(0, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"step:1": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
            row(120, 3, 60, 60, "Paused"),
        ],
    ),
    dict(
        id="07-consecutive-errors-no-data",
        source="metricproviders/prometheus/prometheus.go: processResponse (an empty vector -> []float64{}); "
        "utils/evaluate/evaluate.go: EvalCondition (result[0] on [] -> runtime error), EvaluateResult "
        "(-> Error); analysis/analysis.go: runMeasurements (Error: Error++, ConsecutiveError++, Count "
        "unchanged; any other phase resets ConsecutiveError), generateMetricTasks and "
        "calculateNextReconcileTime (DefaultErrorRetryInterval 10s after an Error), "
        "assessMetricFailureInconclusiveOrError (consecutiveError > consecutiveErrorLimit, default 4 "
        "in utils/defaults); rollout/analysis.go: reconcileBackgroundAnalysisRun (Error -> AddAbort)",
        # Errors at 60 and 70 (retry 10 s after each), data again at 80: Successful, count 2, consecutive
        # errors back to 0, next measurement a full interval later (140). No data from 140: errors at 140,
        # 150, 160, 170, 180; the fifth consecutive one (5 > 4) makes the metric and the run Error -> abort
        # at 180. Count never moved past 2: errors do not count.
        spec=canary([sw(20), pause()], {"sr": SR_BG}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, None), (80, GOOD), (140, None)]}, until=300),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=1, ce=1))}),
            row(70, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=2, ce=2))}),
            row(80, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=2))}),
            row(140, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=3, ce=1))}),
            row(150, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=4, ce=2))}),
            row(160, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=5, ce=3))}),
            row(170, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=6, ce=4))}),
            row(180, 0, 0, 0, "Degraded", {"background": run("Error", m("sr", "Error", c=2, s=2, e=7, ce=5))}, "abort"),
        ],
    ),
    dict(
        id="08-nan-with-success-condition-only-fails",
        source="utils/evaluate/evaluate.go: EvaluateResult (success condition only: failCondition = "
        "!successCondition; NaN >= 0.95 is false in Go); rollout/analysis.go: "
        "reconcileBackgroundAnalysisRun",
        # The query returns [NaN] at 60: result[0] >= 0.95 is false -> Failed -> failed 1 > 0 -> run Failed
        # -> abort (even while paused at pause {}: AddAbort does not look at pause conditions).
        spec=canary([sw(20), pause()], {"sr": SR_BG}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, NAN)]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 0, 0, 0, "Degraded", {"background": run("Failed", m("sr", "Failed", c=2, s=1, f=1))}, "abort"),
        ],
    ),
    dict(
        id="09-nan-with-failure-condition-only-passes-then-full-promotion",
        source="utils/evaluate/evaluate.go: EvaluateResult (failure condition only: successCondition = "
        "!failCondition; NaN < 0.95 is false); rollout/sync.go: shouldFullPromote (all steps "
        "completed), promoteStable; rollout/analysis.go: reconcileAnalysisRuns (fully promoted -> "
        "cancelAnalysisRuns); analysis/analysis.go: assessMetricStatus (unbounded metric, terminating "
        "-> Successful)",
        # Every measurement is [NaN]; NaN < 0.95 is false, so each is Successful (0, 60, 120). The 150s pause
        # expires at 150: step index 2 == len(steps) -> full promotion (Healthy), and the background run is
        # terminated: its unbounded metric, and the run, end Successful.
        spec=canary([sw(50), pause("150s")], {"sr": SR_FAIL_ONLY}, analysis=use("sr")),
        world=World({"sr": [(0, NAN)]}, until=300),
        rows=[
            row(0, 1, 50, 50, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 50, 50, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2))}),
            row(120, 1, 50, 50, "Paused", {"background": run("Running", m("sr", "Running", c=3, s=3))}),
            row(
                150, 2, 100, 0, "Healthy", {"background": run("Successful", m("sr", "Successful", c=3, s=3))}, "promote"
            ),
        ],
    ),
    dict(
        id="10-dry-run-metric-fails-without-effect",
        source="analysis/analysis.go: assessRunStatus (dry-run metrics are left out of the worst status), "
        "generateMetricTasks (a completed metric takes no more measurements); "
        "utils/analysis/helpers.go: IsTerminating (dry-run metrics do not terminate the run), "
        "GetDryRunMetrics; rollout/sync.go: shouldFullPromote",
        # latency (dry-run) is 900 ms > 500 at 0: failed 1 > 0 -> the metric is Failed and measures no more,
        # but the run stays Running on sr and is not terminating. The rollout completes its steps at 150
        # and is promoted; the terminated run is Successful (sr unbounded -> Successful; the dry-run verdict
        # is ignored).
        spec=canary(
            [sw(50), pause("150s")],
            {"sr-latency": SR_AND_LATENCY},
            analysis=use("sr-latency", dryRun=[{"metricName": "latency"}]),
        ),
        world=World({"sr": [(0, GOOD)], "latency": [(0, 900.0)]}, until=300),
        rows=[
            row(
                0,
                1,
                50,
                50,
                "Paused",
                {"background": run("Running", m("sr", "Running", c=1, s=1), m("latency", "Failed", c=1, f=1))},
                "scale-up",
            ),
            row(
                60,
                1,
                50,
                50,
                "Paused",
                {"background": run("Running", m("sr", "Running", c=2, s=2), m("latency", "Failed", c=1, f=1))},
            ),
            row(
                120,
                1,
                50,
                50,
                "Paused",
                {"background": run("Running", m("sr", "Running", c=3, s=3), m("latency", "Failed", c=1, f=1))},
            ),
            row(
                150,
                2,
                100,
                0,
                "Healthy",
                {"background": run("Successful", m("sr", "Successful", c=3, s=3), m("latency", "Failed", c=1, f=1))},
                "promote",
            ),
        ],
    ),
    dict(
        id="11-pause-durations",
        source="rollout/canary.go: reconcileCanaryPause (pause condition with StartTime = now), "
        "checkEnqueueRolloutDuringWait (requeue at StartTime + duration); rollout/pause.go: "
        "CompletedCanaryPauseStep (now.After(StartTime + duration)); rollout/sync.go: shouldFullPromote",
        # Each pause starts when its step is reached (the setWeight before it completes at once) and expires
        # at start + duration: 0 + 30s, 30 + 1m, 90 + 45s. At 135 the step index reaches 6 == len(steps) ->
        # full promotion.
        spec=canary([sw(10), pause("30s"), sw(30), pause("1m"), sw(60), pause("45s")]),
        world=World(until=300),
        rows=[
            row(0, 1, 10, 10, "Paused", did="scale-up"),
            row(30, 3, 30, 30, "Paused"),
            row(90, 5, 60, 60, "Paused"),
            row(135, 6, 100, 0, "Healthy", did="promote"),
        ],
    ),
    dict(
        id="12-pause-without-duration-waits-for-promote",
        source="rollout/canary.go: reconcileCanaryPause; rollout/pause.go: CompletedCanaryPauseStep "
        "(ControllerPause && no CanaryPauseStep condition); pkg/kubectl-argo-rollouts/cmd/promote/"
        "promote.go: getPatches (clearPauseConditionsPatch)",
        # pause {} never expires: nothing happens from 0 until the promote at 300, which clears the condition;
        # the step completes (controllerPause still set, condition gone) -> setWeight 50 -> the next pause {}
        # (a new condition: the persisted controllerPause was reset when no condition remained). The second
        # promote at 420 completes it -> setWeight 80 -> all steps done -> full promotion.
        spec=canary([sw(20), pause(), sw(50), pause(), sw(80)]),
        world=World(promote_at=(300, 420), until=600),
        rows=[
            row(0, 1, 20, 20, "Paused", did="scale-up"),
            row(300, 3, 50, 50, "Paused"),
            row(420, 5, 100, 0, "Healthy", did="promote"),
        ],
    ),
    dict(
        id="13-setweight-without-traffic-routing-maxsurge-0",
        source="utils/replicaset/canary.go: CalculateReplicaCountsForBasicCanary, "
        "approximateWeightedCanaryStableReplicaCounts (ceil/floor options, floorCeilingTied, "
        "weightDelta), trafficWeightToReplicas; utils/replicaset/replicaset.go: MaxSurge",
        # No trafficRouting: the weight is the canary's share of the pods behind one Service. replicas 5,
        # maxSurge 0: setWeight 10 -> 0.5 pods: ceil 1, floor 0 tied (frac .5) -> only {1 canary, 5 total}
        # -> 20%; setWeight 30 -> 1.5: ceil 2, floor tied -> {2, 5} -> 40%.
        spec=canary([sw(10), pause(), sw(30), pause()], replicas=5, traffic_routing=False, maxSurge=0),
        world=World(promote_at=(60,), until=120),
        rows=[
            row(0, 1, 10, 20, "Paused", did="scale-up"),
            row(60, 3, 30, 40, "Paused", did="scale-up"),  # the canary ReplicaSet 1 -> 2 pods
        ],
    ),
    dict(
        id="14-setweight-without-traffic-routing-default-maxsurge",
        source="utils/replicaset/canary.go: approximateWeightedCanaryStableReplicaCounts (with maxSurge > 0 "
        "the options with specReplicas + 1 pods are considered too); utils/defaults/defaults.go: "
        'DefaultMaxSurge "25" (a string: intstr.GetValueFromIntOrPercent reads it as 25%); '
        "utils/replicaset/replicaset.go: MaxSurge, resolveFenceposts (round up: ceil(1.25) = 2)",
        # replicas 5 and the default maxSurge 25% -> 2 surge pods allowed. setWeight 10: options {1,5} (20%,
        # delta 10) and {1,6} (16.7%, delta 6.7; {0,6} not allowed) -> 1 canary + 5 stable = 16.7% (17 as an
        # integer weight). setWeight 30: {2,5} 40% (delta 10), {2,6} 33.3% (delta 3.3), {1,6} 16.7% (delta
        # 13.3) -> 2 canary + 4 stable = 33.3% (33). The naive ceil(30% x 5) / 5 = 40% is what maxSurge 0
        # gives (case 13).
        spec=canary([sw(10), pause(), sw(30), pause()], replicas=5, traffic_routing=False),
        world=World(promote_at=(60,), until=120),
        rows=[
            row(0, 1, 10, 17, "Paused", did="scale-up"),
            row(60, 3, 30, 33, "Paused", did="scale-up"),  # the canary ReplicaSet 1 -> 2 pods
        ],
    ),
    dict(
        id="15-starting-step-delays-background-run",
        source="utils/replicaset/canary.go: BeforeStartingStep (currentStepIndex < startingStep); "
        "rollout/analysis.go: reconcileBackgroundAnalysisRun (no run before the starting step)",
        # startingStep 2: no run exists at steps 0-1, so the failing metric (0.5 from t = 0) is not seen
        # until the 2m pause expires at 120 and step 2 (setWeight 40) is reached. The run created then fails
        # its first measurement (failureLimit 0) -> abort at 120, with the weight at 0.
        spec=canary(RAMP, {"sr": SR_BG}, analysis=use("sr", startingStep=2)),
        world=World({"sr": [(0, BAD)]}, until=400),
        rows=[
            row(0, 1, 20, 20, "Paused", did="scale-up"),
            row(120, 0, 0, 0, "Degraded", {"background": run("Failed", m("sr", "Failed", c=1, f=1))}, "abort"),
        ],
    ),
    dict(
        id="16-bluegreen-pre-promotion-failure-aborts-before-the-switch",
        source="rollout/analysis.go: reconcilePrePromotionAnalysisRun, skipPrePromotionAnalysisRun (no run "
        "before the new ReplicaSet is saturated), setPauseOrAbortForBlueGreen (Failed -> AddAbort); "
        "rollout/service.go: reconcileActiveService (switch only when CompletedBlueGreenPause && "
        "completedPrePromotionAnalysis; aborted -> stable); utils/rollout/rolloututil.go: "
        "CalculateRolloutPhase (active cutover pending -> Progressing)",
        # The preview is available at 30: the pre-promotion run starts then (0.99), measures again at 90
        # (0.5): failed 1 > 0 -> Failed -> abort. The active Service never left the stable ReplicaSet: no
        # live request reached the new version.
        spec=blue_green({"sr3": SR_3}, prePromotionAnalysis=use("sr3")),
        world=World({"sr": [(0, GOOD), (90, BAD)]}, ready_at=30, until=300),
        rows=[
            row(0, 0, 0, 0, "Progressing", did="scale-up"),
            row(30, 0, 0, 0, "Progressing", {"pre": run("Running", m("sr", "Running", c=1, s=1))}),
            row(90, 0, 0, 0, "Degraded", {"pre": run("Failed", m("sr", "Failed", c=2, s=1, f=1))}, "abort"),
        ],
    ),
    dict(
        id="17-bluegreen-post-promotion-failure-switches-back",
        source="rollout/service.go: reconcileActiveService (switch; Status.Abort -> back to StableRS); "
        "rollout/analysis.go: reconcilePostPromotionAnalysisRun, skipPostPromotionAnalysisRun (run "
        "once the active selector is the new ReplicaSet), setPauseOrAbortForBlueGreen; "
        "rollout/sync.go: shouldFullPromote (post-promotion run not Successful -> no promotion)",
        # The pre-promotion run (one measurement) succeeds at 0 -> with autoPromotionSeconds 0 the pause is
        # complete at once -> the active Service switches at 0 (100% of live traffic on the new version) and
        # the post-promotion run starts (0.99). At 60 it fails -> abort -> the active Service goes back to
        # the stable ReplicaSet.
        spec=blue_green(
            {"smoke": SMOKE, "sr3": SR_3}, prePromotionAnalysis=use("smoke"), postPromotionAnalysis=use("sr3")
        ),
        world=World({"sr": [(0, GOOD), (60, BAD)]}, until=300),
        rows=[
            row(
                0,
                0,
                100,
                100,
                "Progressing",
                {
                    "pre": run("Successful", m("sr", "Successful", c=1, s=1)),
                    "post": run("Running", m("sr", "Running", c=1, s=1)),
                },
                "scale-up",
            ),
            row(
                60,
                0,
                0,
                0,
                "Degraded",
                {
                    "pre": run("Successful", m("sr", "Successful", c=1, s=1)),
                    "post": run("Failed", m("sr", "Failed", c=2, s=1, f=1)),
                },
                "abort",
            ),
        ],
    ),
    dict(
        id="18-bluegreen-auto-promotion-seconds-count-from-pre-success",
        source="rollout/bluegreen.go: reconcileBlueGreenPause (the BlueGreenPause condition is added only "
        "after completedPrePromotionAnalysis), needsBlueGreenControllerPause; rollout/pause.go: "
        "CompletedBlueGreenPause (now.After(pauseCond.StartTime + autoPromotionSeconds)); "
        "rollout/service.go: reconcileActiveService; rollout/sync.go: shouldFullPromote",
        # The pre-promotion run measures at 0 and 60 and is Successful at 60. Only then is the pause added
        # (start 60), so autoPromotionSeconds 120 ends at 180, not at 120: the switch and, without a
        # post-promotion analysis, the promotion happen at 180.
        spec=blue_green({"sr2": SR_2}, prePromotionAnalysis=use("sr2"), autoPromotionSeconds=120),
        world=World({"sr": [(0, GOOD)]}, until=400),
        rows=[
            row(0, 0, 0, 0, "Progressing", {"pre": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 0, 0, 0, "Paused", {"pre": run("Successful", m("sr", "Successful", c=2, s=2))}),
            row(180, 0, 100, 0, "Healthy", {"pre": run("Successful", m("sr", "Successful", c=2, s=2))}, "promote"),
        ],
    ),
    dict(
        id="19-bluegreen-manual-promotion",
        source="rollout/bluegreen.go: reconcileBlueGreenPause (autoPromotionEnabled false -> controller "
        "pause after the pre-promotion run); rollout/pause.go: CompletedBlueGreenPause (disabled: "
        "ControllerPause && no BlueGreenPause condition); pkg/kubectl-argo-rollouts/cmd/promote/"
        "promote.go: getPatches (clearPauseConditionsPatch)",
        # The pre-promotion run (one measurement) succeeds at 0 -> BlueGreenPause added -> Paused. Nothing
        # happens until the promote at 300: the condition is cleared, controllerPause stays set, so the pause
        # counts as completed -> switch -> no post-promotion analysis -> promotion at 300.
        spec=blue_green({"smoke": SMOKE}, prePromotionAnalysis=use("smoke"), autoPromotionEnabled=False),
        world=World({"sr": [(0, GOOD)]}, promote_at=(300,), until=400),
        rows=[
            row(0, 0, 0, 0, "Paused", {"pre": run("Successful", m("sr", "Successful", c=1, s=1))}, "scale-up"),
            row(300, 0, 100, 0, "Healthy", {"pre": run("Successful", m("sr", "Successful", c=1, s=1))}, "promote"),
        ],
    ),
    dict(
        id="20-inline-count-excludes-errors",
        source="analysis/analysis.go: runMeasurements (Error does not advance Count), generateMetricTasks "
        "(10 s after an Error, the interval after any other phase), assessMetricStatus (count reached "
        "-> Successful); rollout/canary.go: completedCurrentCanaryStep",
        # count 2: the query is empty at 0 (Error, count 0), retried at 10 (pass, count 1), then a full
        # interval later at 70 (pass, count 2) -> Successful -> setWeight 60 -> pause {} (paused). Three
        # measurements were needed for a count of 2.
        spec=canary([sw(20), {"analysis": use("sr2")}, sw(60), pause()], {"sr2": SR_2}),
        world=World({"sr": [(0, None), (10, GOOD)]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", e=1, ce=1))}, "scale-up"),
            row(10, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=1, s=1, e=1))}),
            row(70, 3, 60, 60, "Paused"),
        ],
    ),
    dict(
        id="21-inconclusive-pause-does-not-hold-a-timed-pause",
        source="rollout/pause.go: CompletedCanaryPauseStep (expiry is checked whatever other pause conditions "
        "exist; ControllerPause && no CanaryPauseStep condition counts as unpaused), "
        "CalculatePauseConditions (ControllerPause stays true while the InconclusiveAnalysis condition "
        "remains); rollout/canary.go: reconcileCanaryPause (no new CanaryPauseStep condition while "
        "ControllerPause is set), completedCurrentCanaryStep (no check of InconclusiveAnalysis); "
        "rollout/context.go: haltProgress (halts only ReplicaSet scaling); rollout/trafficrouting.go: "
        "reconcileTrafficRouting; rollout/sync.go: shouldFullPromote, promoteStable (clears the pause "
        "conditions)",
        # As case 03, run on to the expiry of the first 10m pause at 600. The InconclusiveAnalysis condition
        # stops neither that expiry nor what follows: step 2 (setWeight 60) is at its desired replica counts
        # with replicas 1 (ceil(0.6) = 1 canary pod, already running; the halted ReplicaSet scaling is not
        # needed) so the router goes to 60 and the step completes; step 3 (pause 10m) adds no condition
        # because controllerPause is still set (the InconclusiveAnalysis condition keeps it), and
        # CompletedCanaryPauseStep reads "controllerPause and no CanaryPauseStep condition" as a manual
        # resume -> step 4 == len(steps) -> shouldFullPromote -> promoteStable clears every pause condition:
        # Healthy at 600 with the background run still Inconclusive. (With more replicas the cascade stops
        # at setWeight 60, which needs canary pods the halted scaling does not create; so does upstream's e2e
        # TestCanaryInconclusiveBackgroundAnalysis, replicas 2, which checks the pause before its 30s pause
        # step expires. argoproj/argo-rollouts#3850 reported promotion at the end of the pause; #3873 fixed
        # the new-run loop in needsNewAnalysisRun, not this path.)
        spec=canary([sw(20), pause("10m"), sw(60), pause("10m")], {"sr": SR_BOTH_BG}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, until=700),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
            row(
                600,
                4,
                100,
                0,
                "Healthy",
                {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))},
                "promote",
            ),
        ],
    ),
    dict(
        id="23-halted-scaling-stops-the-inconclusive-cascade",
        source="rollout/context.go: haltProgress (InconclusiveAnalysis condition -> no ReplicaSet scaling); "
        "rollout/canary.go: completedCurrentCanaryStep (setWeight: AtDesiredReplicaCountsForCanary); "
        "utils/replicaset/canary.go: AtDesiredReplicaCountsForCanary, CalculateReplicaCountsForTrafficRoutedCanary "
        "(trafficWeightToReplicas: ceil); rollout/trafficrouting.go: reconcileTrafficRouting (not at the "
        "desired replica counts -> the last setWeight before the current step)",
        # As case 21 with replicas 4: the 10m pause still expires at 600 despite the inconclusive pause, but
        # step 2 (setWeight 60) needs ceil(0.6 * 4) = 3 canary pods and the canary has the ceil(0.2 * 4) = 1
        # it was scaled to before the pause: scaling is halted, so the step never completes and the router
        # keeps step 0's 20 while the status reports 60. The rollout stays Paused (the inconclusive condition).
        spec=canary([sw(20), pause("10m"), sw(60), pause("10m")], {"sr": SR_BOTH_BG}, analysis=use("sr"), replicas=4),
        world=World({"sr": [(0, GOOD), (60, MIDDLE), (120, GOOD)]}, until=900),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
            row(600, 2, 60, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
        ],
    ),
    dict(
        id="22-setweight-waits-for-an-available-canary",
        source="rollout/trafficrouting.go: reconcileTrafficRouting (newRS with 0 available replicas -> never "
        "weight to the canary; not at the desired replica counts -> the previous setWeight); "
        "rollout/canary.go: completedCurrentCanaryStep (setWeight: AtDesiredReplicaCountsForCanary); "
        "utils/replicaset/canary.go: AtDesiredReplicaCountsForCanary",
        # The canary pods become available at 30. Until then the router keeps 0% on the canary (no available
        # replica; and the step before setWeight 20 had no weight), although the status already reports step
        # 0's setWeight 20. At 30 the route goes to 20 and the step completes -> pause {}.
        spec=canary([sw(20), pause()]),
        world=World(ready_at=30, until=100),
        rows=[
            row(0, 0, 20, 0, "Progressing", did="scale-up"),
            row(30, 1, 20, 20, "Paused"),
        ],
    ),
    dict(
        id="24-query-errors-and-empty-vectors-count-as-consecutive-errors",
        source="metricproviders/prometheus/prometheus.go: Run (executeQuery error -> "
        "metricutil.MarkMeasurementError), processResponse (model.Vector -> []float64 in the result's "
        "order, so result[0] is the first series; an empty vector -> []float64{}); utils/evaluate/evaluate.go: "
        "EvalCondition (result[0] on [] -> error), EvaluateResult (-> Error); analysis/analysis.go: "
        "runMeasurements (Error: ConsecutiveError++, Count unchanged; a success resets it), "
        "assessMetricFailureInconclusiveOrError (consecutiveError > consecutiveErrorLimit 4); "
        "rollout/analysis.go: reconcileBackgroundAnalysisRun (Error -> AddAbort)",
        # Issue 14: the world hands each query's result as it comes. t0: the vector [0.97, 0.5]: result[0]
        # = 0.97 passes. 60-90: the query fails (Error, retried 10 s later each time), four in a row (not
        # above the limit of 4). 100: [0.99] passes and resets the streak; next due 160. From 160 the query
        # returns an empty vector: errors at 160..200, the fifth in a row (5 > 4) makes the run Error:
        # abort at 200. Failed queries and empty vectors count alike.
        spec=canary([sw(20), pause()], {"sr": SR_BG}, analysis=use("sr")),
        world=World(
            {"sr": [(0, (0.97, 0.5)), (60, QueryError("connection refused")), (100, (0.99,)), (160, ())]}, until=300
        ),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=1, ce=1))}),
            row(70, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=2, ce=2))}),
            row(80, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=3, ce=3))}),
            row(90, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1, e=4, ce=4))}),
            row(100, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=4))}),
            row(160, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=5, ce=1))}),
            row(170, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=6, ce=2))}),
            row(180, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=7, ce=3))}),
            row(190, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2, e=8, ce=4))}),
            row(200, 0, 0, 0, "Degraded", {"background": run("Error", m("sr", "Error", c=2, s=2, e=9, ce=5))}, "abort"),
        ],
    ),
    dict(
        id="25-scalar-result-is-a-number",
        source="metricproviders/prometheus/prometheus.go: processResponse (*model.Scalar -> "
        "float64(value.Value), handed to the conditions as is); utils/evaluate/evaluate.go: "
        "EvaluateResult (success condition only: failCondition = !successCondition); "
        "rollout/analysis.go: reconcileBackgroundAnalysisRun",
        # A query returning a PromQL scalar: `result >= 0.95` compares the number. 0.99 passes at 0; 0.5 at 60
        # fails -> failed 1 > 0 -> run Failed -> abort.
        spec=canary(
            [sw(20), pause()], {"sr": template(metric(interval="60s", success="result >= 0.95"))}, analysis=use("sr")
        ),
        world=World({"sr": [(0, ScalarResult(0.99)), (60, ScalarResult(0.5))]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 0, 0, 0, "Degraded", {"background": run("Failed", m("sr", "Failed", c=2, s=1, f=1))}, "abort"),
        ],
    ),
    # -- issue 16, helper argo-rollout: canary pods, readiness, full promotion ------------------------
    dict(
        id="26-no-full-promotion-of-an-unavailable-canary",
        source="rollout/sync.go: shouldFullPromote (newRS.Status.AvailableReplicas < spec.replicas -> no "
        "promotion, checked before completedAllSteps); utils/replicaset/canary.go: GetCurrentSetWeight "
        "(past the last step: MaxTrafficWeight); rollout/trafficrouting.go: reconcileTrafficRouting "
        "(not AtDesiredReplicaCountsForCanary -> the last setWeight before the index)",
        # Issue 16 "Wrong today" 1. The canary is unavailable from 30 to 120. The 1m pause ends at 60: all
        # steps are done (index 2, weight 100) but the canary is not available, so shouldFullPromote waits;
        # the router keeps 20. At the resync at 120 it is available again: promoted.
        spec=canary([sw(20), pause("1m")]),
        world=World(unready=((30, 120),), until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", did="scale-up"),
            row(60, 2, 100, 20, "Progressing"),
            row(120, 2, 100, 0, "Healthy", did="promote"),
        ],
    ),
    dict(
        id="27-each-scale-up-waits-for-its-pods",
        source="utils/replicaset/canary.go: AtDesiredReplicaCountsForCanary (ReplicaProgressThresholdMet -> "
        "allDesiredAreAvailable), CalculateReplicaCountsForTrafficRoutedCanary, trafficWeightToReplicas; "
        "rollout/canary.go: completedCurrentCanaryStep (setWeight), reconcileCanaryReplicaSets; "
        "rollout/trafficrouting.go: reconcileTrafficRouting (newRS AvailableReplicas 0 -> weight 0; not at "
        "desired counts -> the previous setWeight); rollout/sync.go: shouldFullPromote",
        # Issue 16 "Wrong today" 2: 10 replicas, pods available 60 s after each scale-up, and a ReplicaSet
        # status update reconciles the rollout. 0: 1 canary pod (ceil(10% x 10)), no pod available -> 0%.
        # 60: available -> step 0 done -> setWeight 50 scales to 5 pods; the router holds 10%. 120: 5
        # available -> 50%, the 1m pause. 180: all steps done -> weight 100, 10 pods; the router holds 50%.
        # 240: 10 available -> promoted.
        spec=canary([sw(10), sw(50), pause("1m")], replicas=10),
        world=World(startup=60, until=300),
        rows=[
            row(0, 0, 10, 0, "Progressing", did="scale-up"),
            row(60, 1, 50, 10, "Progressing", did="scale-up"),
            row(120, 2, 50, 50, "Paused"),
            row(180, 3, 100, 50, "Progressing", did="scale-up"),
            row(240, 3, 100, 0, "Healthy", did="promote"),
        ],
    ),
    dict(
        id="28-progress-deadline-degraded-without-abort",
        source="rollout/sync.go: calculateRolloutConditions (RolloutTimedOut -> Progressing condition "
        "ProgressDeadlineExceeded), isIndefiniteStep (a setWeight step can time out), requeueStuckRollout "
        "(requeue at lastUpdate + progressDeadlineSeconds); utils/conditions/conditions.go: RolloutTimedOut; "
        "utils/rollout/rolloututil.go: CalculateRolloutPhase (TimedOutReason -> Degraded)",
        # The canary never becomes available: setWeight 20 waits for its pod. The Progressing condition was
        # last updated at 0 (the new ReplicaSet), so at 0 + 120 the rollout times out: Degraded, with no abort
        # (progressDeadlineAbort unset): the weight stays 20 and nothing is decided.
        spec={**canary([sw(20), pause("1m")]), "progressDeadlineSeconds": 120},
        world=World(ready_at=10_000, until=300),
        rows=[
            row(0, 0, 20, 0, "Progressing", did="scale-up"),
            row(120, 0, 20, 0, "Degraded"),
        ],
    ),
    dict(
        id="29-progress-deadline-abort",
        source="rollout/sync.go: evaluateProgressDeadlineAbort (spec.progressDeadlineAbort, not progressing, not "
        "an indefinite step, RolloutTimedOut -> AddAbort); rollout/trafficrouting.go: reconcileTrafficRouting "
        "(IsAborted -> weight 0)",
        # As case 28 with progressDeadlineAbort: at 120 the rollout is aborted (weight 0, step 0, Degraded).
        spec={**canary([sw(20), pause("1m")]), "progressDeadlineSeconds": 120, "progressDeadlineAbort": True},
        world=World(ready_at=10_000, until=300),
        rows=[
            row(0, 0, 20, 0, "Progressing", did="scale-up"),
            row(120, 0, 0, 0, "Degraded", did="abort"),
        ],
    ),
    dict(
        id="30-progress-deadline-counts-from-the-last-progress",
        source="rollout/sync.go: isIndefiniteStep (a pause step never times out), calculateRolloutConditions "
        "(RolloutProgressing: the step index changed -> lastUpdateTime now); rollout/sync.go: "
        "shouldFullPromote (waits for the available canary)",
        # The pause (0-60) cannot time out. At 60 all steps are done (progress: the step index moved) and the
        # full promotion waits for the canary, unavailable from 30: no progress from 60, so Degraded at
        # 60 + 120 = 180, the router still at the last setWeight.
        spec={**canary([sw(20), pause("1m")]), "progressDeadlineSeconds": 120},
        world=World(unready=((30, 10_000),), until=300),
        rows=[
            row(0, 1, 20, 20, "Paused", did="scale-up"),
            row(60, 2, 100, 20, "Progressing"),
            row(180, 2, 100, 20, "Degraded"),
        ],
    ),
    dict(
        id="31-inconclusive-background-run-in-a-pause-step-pauses",
        source="rollout/analysis.go: needsNewAnalysisRun (since v1.8.2, argo-rollouts #3873: not while a "
        "CanaryPauseStep condition is set), reconcileBackgroundAnalysisRun (Inconclusive -> "
        "AddPauseCondition(InconclusiveAnalysis)); analysis/analysis.go: assessMetricFailureInconclusiveOrError "
        "(inconclusive 2 > inconclusiveLimit 1)",
        # The latest release. 0.92 is neither >= 0.95 nor < 0.90: Inconclusive at 60 (1 <= limit 1, still
        # Running) and at 120 (2 > 1): the run is Inconclusive, and although the 10m pause step holds
        # controllerPause, the rollout adds the InconclusiveAnalysis pause instead of replacing the run.
        spec=canary([sw(20), pause("10m")], {"sr": SR_BOTH_BG_IL1}, analysis=use("sr")),
        world=World({"sr": [(0, GOOD), (60, MIDDLE)]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=1, i=1))}),
            row(120, 1, 20, 20, "Paused", {"background": run("Inconclusive", m("sr", "Inconclusive", c=3, s=1, i=2))}),
        ],
    ),
    dict(
        id="32-before-1.8.2-an-inconclusive-background-run-is-replaced",
        source="rollout/analysis.go at v1.8.1: needsNewAnalysisRun (ControllerPause and no BlueGreenPause "
        "condition -> a new run when the current one is Inconclusive, whatever the CanaryPauseStep), "
        "reconcileBackgroundAnalysisRun",
        # As case 31 with `version: "1.8.1"`: at 120 the Inconclusive run is replaced by a new one at once
        # (measured on creation: 0.92 -> inconclusive 1, Running), so no InconclusiveAnalysis pause; at 180 it
        # is Inconclusive in turn and replaced again (the same row).
        spec={**canary([sw(20), pause("10m")], {"sr": SR_BOTH_BG_IL1}, analysis=use("sr")), "version": "1.8.1"},
        world=World({"sr": [(0, GOOD), (60, MIDDLE)]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=1, i=1))}),
            row(120, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, i=1))}),
        ],
    ),
    dict(
        id="33-no-steps-promote-when-the-canary-is-available",
        source="rollout/sync.go: shouldFullPromote (stepCount == 0 -> completedAllSteps, after the available "
        "check); utils/replicaset/canary.go: GetCurrentSetWeight (no current step -> MaxTrafficWeight), "
        "CalculateReplicaCountsForTrafficRoutedCanary",
        # argo-rollouts examples/rollout-rolling-update.yaml has no steps. The weight is 100 at once, the canary
        # is scaled to full size and promoted when it is available (30); the router never gave it traffic.
        spec=canary([]),
        world=World(ready_at=30, until=100),
        rows=[
            row(0, 0, 100, 0, "Progressing", did="scale-up"),
            row(30, 0, 100, 0, "Healthy", did="promote"),
        ],
    ),
]


def _param(case: dict[str, Any], aspect: str):
    reason = case.get("xfail") if aspect == "decisions" else case.get("phase_xfail")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 12
    for c in CASES:
        assert c["source"] and c["rows"], c["id"]
        times = [r.t for r in c["rows"]]
        assert times == sorted(times) and len(set(times)) == len(times), c["id"]
        assert all(r.t <= c["world"].until for r in c["rows"]), c["id"]
        ArgoPolicySpec.model_validate(c["spec"])


@pytest.mark.parametrize("case", [_param(c, "decisions") for c in CASES])
def test_decisions(case):
    assert decisions(play(case)) == decisions(case["rows"])


@pytest.mark.parametrize("case", [_param(c, "phase") for c in CASES])
def test_phase(case):
    assert phases(play(case)) == phases(case["rows"])


def test_the_driver_plays_the_world():
    """The driver itself: piecewise metrics, one-shot promotion, readiness."""
    w = World({"sr": [(0, 1.0), (60, None), (90, math.nan)]}, ready_at=30)
    assert w.value("sr", 59.9) == 1.0 and w.value("sr", 60) is None and math.isnan(w.value("sr", 100))
    assert w.value("other", 0) is None


# == issue 16, Missing 2: experiment steps (helper argo-experiment) ===========================
# Sources: rollout/experiment.go (GetExperimentFromTemplate, reconcileExperiments),
# rollout/canary.go (completedCurrentCanaryStep: the step's Experiment Successful),
# rollout/trafficrouting.go (calculateWeightDestinationsFromExperiment: a template's weight
# while the Experiment is Running; calculateWeightStatus: the stable keeps what is left),
# experiments/experiment.go (reconcileTemplate, reconcileAnalysisRun, calculateStatus,
# assessTemplates, assessAnalysisRuns, calculateEnqueueDuration), utils/experiment/experiment.go
# (IsTerminating, RequiredAnalysisRunsSuccessful, PassedDurations). An Experiment's AnalysisRun
# is keyed ``experiment:<step index>:<analysis name>`` in ``runs``. The Experiment is created by
# the reconcile that reaches its step; its first reconcile makes it Pending and creates the
# template ReplicaSets, the next (its pods available at once, as the conventions say) marks the
# templates Running, ``availableAt`` and the phase Running; the one after creates the analyses'
# runs, which take their first measurement at once: all at the same instant.


def ex_step(templates: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"experiment": {"templates": templates, **fields}}


EX_CANARY_10 = {"name": "exp-canary", "specRef": "canary", "weight": 10}
EX_SR = {"name": "sr", "templateName": "sr"}
EX_SR_REQUIRED = {**EX_SR, "requiredForCompletion": True}

EXPERIMENT_CASES: list[dict[str, Any]] = [
    dict(
        id="ex1-template-weight-until-duration",
        source="rollout/trafficrouting.go: calculateWeightDestinationsFromExperiment, calculateWeightStatus; "
        "experiments/experiment.go: reconcileTemplate (PassedDurations -> Successful), calculateStatus; "
        "rollout/canary.go: completedCurrentCanaryStep",
        # t0: setWeight 20 completes, the experiment step creates the Experiment, Running at once: the
        # router sends 20% to the canary and 10% to the template (canary spec): 30% on the canary version.
        # 120 = availableAt + 2m: the templates are Successful, no analyses -> Experiment Successful, the
        # step completes, the pause {} holds; the template's weight is gone (20).
        spec=canary([sw(20), ex_step([EX_CANARY_10], duration="2m"), pause()]),
        world=World(until=300),
        rows=[row(0, 1, 20, 30, "Progressing", did="scale-up"), row(120, 2, 20, 20, "Paused")],
    ),
    dict(
        id="ex2-required-analysis-completes-the-experiment",
        source="experiments/experiment.go: calculateStatus (RequiredAnalysisRunsSuccessful -> the analyses' "
        "phase), assessAnalysisRuns; experiments/analysisrun_test.go: "
        "TestCompleteExperimentOnSuccessfulRequiredAnalysisRun",
        # No duration: the run (count 2, a minute apart) measures at 0 and 60 and is Successful at 60; it is
        # requiredForCompletion -> the Experiment is Successful at 60 and the step completes.
        spec=canary([sw(20), ex_step([EX_CANARY_10], analyses=[EX_SR_REQUIRED]), pause()], {"sr": SR_2}),
        world=World({"sr": [(0, GOOD)]}, until=300),
        rows=[
            row(
                0,
                1,
                20,
                30,
                "Progressing",
                {"experiment:1:sr": run("Running", m("sr", "Running", c=1, s=1))},
                "scale-up",
            ),
            row(60, 2, 20, 20, "Paused", {"experiment:1:sr": run("Successful", m("sr", "Successful", c=2, s=2))}),
        ],
    ),
    dict(
        id="ex3-failed-analysis-aborts-the-rollout",
        source="experiments/experiment.go: calculateStatus (templates Running, analyses Failed -> Failed); "
        "rollout/experiment.go: reconcileExperiments (Failed/Error -> AddAbort)",
        spec=canary([sw(20), ex_step([EX_CANARY_10], analyses=[EX_SR]), pause()], {"sr": SR_3}),
        world=World({"sr": [(0, GOOD), (60, BAD)]}, until=300),
        rows=[
            row(
                0,
                1,
                20,
                30,
                "Progressing",
                {"experiment:1:sr": run("Running", m("sr", "Running", c=1, s=1))},
                "scale-up",
            ),
            row(60, 0, 0, 0, "Degraded", {"experiment:1:sr": run("Failed", m("sr", "Failed", c=2, s=1, f=1))}, "abort"),
        ],
    ),
    dict(
        id="ex4-duration-ends-an-unbounded-analysis",
        source="experiments/experiment.go: calculateStatus (templates Successful, analyses still Running, none "
        "required -> the templates' Successful), reconcileAnalysisRun (terminating -> TerminateRun); "
        "experiments/analysisrun_test.go: TestCompleteExperimentWithNoRequiredAnalysis",
        # The run measures at 0, 60, 120; at 150 (availableAt + 150s) the Experiment is Successful and its
        # run terminated (an unbounded metric ends Successful).
        spec=canary([sw(20), ex_step([EX_CANARY_10], duration="150s", analyses=[EX_SR]), pause()], {"sr": SR_BG}),
        world=World({"sr": [(0, GOOD)]}, until=300),
        rows=[
            row(
                0,
                1,
                20,
                30,
                "Progressing",
                {"experiment:1:sr": run("Running", m("sr", "Running", c=1, s=1))},
                "scale-up",
            ),
            row(60, 1, 20, 30, "Progressing", {"experiment:1:sr": run("Running", m("sr", "Running", c=2, s=2))}),
            row(120, 1, 20, 30, "Progressing", {"experiment:1:sr": run("Running", m("sr", "Running", c=3, s=3))}),
            row(150, 2, 20, 20, "Paused", {"experiment:1:sr": run("Successful", m("sr", "Successful", c=3, s=3))}),
        ],
    ),
    dict(
        id="ex5-inconclusive-experiment-pauses",
        source="experiments/experiment.go: calculateStatus (analyses Inconclusive -> Inconclusive); "
        "rollout/experiment.go: reconcileExperiments (Inconclusive -> PauseReasonInconclusiveExperiment)",
        # 0.92 at 60 is neither success nor failure -> the run is Inconclusive, so is the Experiment: the
        # rollout pauses; the Experiment is no longer Running, so its template's weight is gone.
        spec=canary([sw(20), ex_step([EX_CANARY_10], analyses=[EX_SR]), pause()], {"sr": SR_BOTH_3}),
        world=World({"sr": [(0, GOOD), (60, MIDDLE)]}, until=300),
        rows=[
            row(
                0,
                1,
                20,
                30,
                "Progressing",
                {"experiment:1:sr": run("Running", m("sr", "Running", c=1, s=1))},
                "scale-up",
            ),
            row(
                60,
                1,
                20,
                20,
                "Paused",
                {"experiment:1:sr": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))},
            ),
        ],
    ),
    dict(
        id="ex6-without-a-router-the-template-pods-share-the-service",
        source="[inferred] experiments/replicaset.go (the template's pods keep the Rollout's labels when the "
        "step sets none) + Kubernetes Service endpoints; utils/replicaset/canary.go: "
        "CalculateReplicaCountsForBasicCanary; examples/rollout-experiment-step.yaml",
        # 4 replicas, setWeight 25 without a router: 1 canary pod, 3 stable; the Experiment's one canary-spec
        # pod is behind the same Service: 2 of 5 pods run the canary spec (40%). At 60 the Experiment is done
        # and the steps too: promoted.
        spec=canary(
            [sw(25), ex_step([{"name": "c", "specRef": "canary"}], duration="1m")], replicas=4, traffic_routing=False
        ),
        world=World(until=300),
        # After the last step the canary is scaled to full size, available at once here
        # (start-up 0), then promoted (rollout/sync.go shouldFullPromote).
        rows=[row(0, 1, 25, 40, "Progressing", did="scale-up"), row(60, 2, 100, 0, "Healthy", did="scale-up+promote")],
    ),
    dict(
        id="ex7-template-never-available-fails-at-the-progress-deadline",
        source="experiments/experiment.go: reconcileTemplate (not available past lastTransitionTime + "
        "progressDeadlineSeconds, default 600 -> Failed), calculateEnqueueDuration, assessTemplates; "
        "rollout/experiment.go: reconcileExperiments (Failed -> AddAbort)",
        spec=canary([ex_step([{"name": "c", "specRef": "canary"}]), pause()]),
        world=World(ready_at=10_000, until=700),
        rows=[row(0, 0, 0, 0, "Progressing", did="scale-up"), row(600, 0, 0, 0, "Degraded", did="abort")],
    ),
    dict(
        id="ex8-baseline-and-canary-templates",
        source="rollout/trafficrouting.go: calculateWeightDestinationsFromExperiment (one destination per "
        "weighted template), calculateWeightStatus; examples/rollout-baseline-vs-canary.yaml",
        # A stable-spec baseline at 10% and a canary-spec template at 10%: the canary version serves 20 + 10
        # (the baseline runs the stable's pod spec: it behaves as the primary).
        spec=canary(
            [sw(20), ex_step([{"name": "baseline", "specRef": "stable", "weight": 10}, EX_CANARY_10], duration="1m")]
        ),
        world=World(until=300),
        rows=[row(0, 1, 20, 30, "Progressing", did="scale-up"), row(60, 2, 100, 0, "Healthy", did="promote")],
    ),
]


def test_experiment_cases_are_well_formed():
    ids = [c["id"] for c in EXPERIMENT_CASES]
    assert len(ids) == len(set(ids)) and not set(ids) & {c["id"] for c in CASES}
    for c in EXPERIMENT_CASES:
        assert c["source"] and c["rows"], c["id"]
        times = [r.t for r in c["rows"]]
        assert times == sorted(times) and len(set(times)) == len(times), c["id"]
        ArgoPolicySpec.model_validate(c["spec"])


@pytest.mark.parametrize("case", [_param(c, "decisions") for c in EXPERIMENT_CASES])
def test_experiment_decisions(case):
    assert decisions(play(case)) == decisions(case["rows"])


@pytest.mark.parametrize("case", [_param(c, "phase") for c in EXPERIMENT_CASES])
def test_experiment_phase(case):
    assert phases(play(case)) == phases(case["rows"])


# -- issue 16, Missing 1: the whole expr-lang condition language (helper argo-expr) ---------------
# Conditions written with expr's predicates, as Argo's own Prometheus docs do
# (``all(result, # < 0.01)``). Prometheus hands a vector to the conditions as a []float64
# (metricproviders/prometheus/prometheus.go processResponse: sampleValuesToFloatSlice), a
# scalar as a float64; utils/evaluate/evaluate.go EvalCondition runs expr over it.

EXPR_CASES: list[dict[str, Any]] = [
    dict(
        id="expr-01-all-over-every-series",
        source="metricproviders/prometheus/prometheus.go: processResponse (model.Vector -> []float64 of every "
        "sample); utils/evaluate/evaluate.go: EvalCondition; expr builtin all (compiler.go BuiltinNode: "
        "true on an empty array); analysis/analysis.go: assessMetricFailureInconclusiveOrError",
        # `all(result, # >= 0.95)` judges every series of the vector. At 0 both pass. At 60 the vector is
        # empty: all() over no elements is true, so the measurement is Successful (unlike result[0], which
        # errs). At 120 one series is 0.5: Failed, failed 1 > failureLimit 0 -> run Failed -> abort.
        spec=canary(
            [sw(20), pause()],
            {"sr": template(metric(interval="60s", success="all(result, # >= 0.95)"))},
            analysis=use("sr"),
        ),
        world=World({"sr": [(0, (0.99, 0.97)), (60, ()), (120, (0.99, 0.5))]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", c=2, s=2))}),
            row(120, 0, 0, 0, "Degraded", {"background": run("Failed", m("sr", "Failed", c=3, s=2, f=1))}, "abort"),
        ],
    ),
    dict(
        id="expr-02-all-and-any-inconclusive",
        source="utils/evaluate/evaluate.go: EvaluateResult (both conditions false -> Inconclusive); expr "
        "builtins all/any, len; analysis/analysis.go: assessMetricStatus; rollout/analysis.go: "
        "reconcileStepBasedAnalysisRun (Inconclusive -> AddPauseCondition(InconclusiveAnalysis))",
        # As case 05 with predicates: success `len(result) > 0 && all(result, # >= 0.95)`, failure
        # `any(result, # < 0.90)`. At 60 one series reads 0.92: not all >= 0.95, none < 0.90 -> Inconclusive
        # -> the step run is Inconclusive after 2 of 3 measurements and the rollout pauses at step 1.
        spec=canary(
            [sw(20), {"analysis": use("sr3")}, sw(60), pause("10m")],
            {
                "sr3": template(
                    metric(
                        interval="60s",
                        count=3,
                        success="len(result) > 0 && all(result, # >= 0.95)",
                        failure="any(result, # < 0.90)",
                    )
                )
            },
        ),
        world=World({"sr": [(0, (0.99, 0.97)), (60, (0.99, 0.92)), (120, (0.99, 0.99))]}, until=300),
        rows=[
            row(0, 1, 20, 20, "Progressing", {"step:1": run("Running", m("sr", "Running", c=1, s=1))}, "scale-up"),
            row(60, 1, 20, 20, "Paused", {"step:1": run("Inconclusive", m("sr", "Inconclusive", c=2, s=1, i=1))}),
        ],
    ),
    dict(
        id="expr-03-predicate-over-a-scalar-is-an-error",
        source="expr checker/checker.go builtinNode ('builtin all takes only array (got float64)'); "
        "utils/evaluate/evaluate.go: EvaluateResult (an evaluation error -> AnalysisPhaseError); "
        "analysis/analysis.go: runMeasurements (Error: retried after DefaultErrorRetryInterval 10s, count "
        "not advanced), assessMetricFailureInconclusiveOrError (consecutiveError > 4 -> Error)",
        # A scalar query (a float64 result) under `all(result, ...)`: expr's checker refuses to iterate a
        # float64, so every measurement is an Error. Errors are retried every 10 s; the 5th consecutive one
        # (> consecutiveErrorLimit 4) errs the run at 40 and the rollout aborts.
        spec=canary(
            [sw(20), pause()],
            {"sr": template(metric(interval="60s", success="all(result, # >= 0.95)"))},
            analysis=use("sr"),
        ),
        world=World({"sr": [(0, ScalarResult(0.99))]}, until=200),
        rows=[
            row(0, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", e=1, ce=1))}, "scale-up"),
            row(10, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", e=2, ce=2))}),
            row(20, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", e=3, ce=3))}),
            row(30, 1, 20, 20, "Paused", {"background": run("Running", m("sr", "Running", e=4, ce=4))}),
            row(40, 0, 0, 0, "Degraded", {"background": run("Error", m("sr", "Error", e=5, ce=5))}, "abort"),
        ],
    ),
]
CASES.extend(EXPR_CASES)  # test_cases_are_well_formed reads CASES when it runs


@pytest.mark.parametrize("case", [_param(c, "decisions") for c in EXPR_CASES])
def test_expr_decisions(case):
    assert decisions(play(case)) == decisions(case["rows"])


@pytest.mark.parametrize("case", [_param(c, "phase") for c in EXPR_CASES])
def test_expr_phase(case):
    assert phases(play(case)) == phases(case["rows"])


# -- routing details that change who is hurt (issue 16, "Missing" 6; helper "routing") --------------
#
# The world counts harm until live traffic leaves the canary (``SetWeights``), not at the
# abort, and routes managed routes by name (``SetWeights.header_match``/``mirror_match``,
# ``Policy.route_matches``). These cases pin what the Argo policy must emit for that;
# the ones the policy does not do yet are xfail(strict=True) with what upstream does.


def _actions(spec: dict[str, Any], world: World) -> list[tuple[float, tuple]]:
    """(t, actions) of every tick of ``spec`` in ``world`` (the conformance driver's loop)."""
    policy = ArgoRollout(ArgoPolicySpec.model_validate(spec))
    state, t, tick, out = policy.initial_state(), 0.0, 0, []
    routes = Routes()
    while True:
        nt = policy.next_tick(state, t)
        if nt is None or nt > world.until:
            return out
        t, tick = nt, tick + 1
        ready = t >= world.ready_at
        obs = Observation(
            t=t,
            tick=tick,
            metrics={q.name: world.value(q.name, t) for q in policy.queries()},
            routes=routes,
            canary=Readiness(ready, None if ready else 0.0),
        )
        state, actions = policy.step(state, obs)
        for a in actions:
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight, a.mirrored, a.matched)
        out.append((t, actions))


def _abort_tick(spec: dict[str, Any]) -> tuple:
    world = World({"sr": [(0, GOOD), (60, BAD)]}, until=200)
    return next(acts for _, acts in _actions(spec, world) if any(isinstance(a, Rollback) for a in acts))


def test_routing_abort_routes_to_stable_in_the_aborting_reconcile():
    """rollout/trafficrouting.go reconcileTrafficRouting, aborted branch: desiredWeight =
    calculateDesiredWeightOnAbortOrStableRollback, 0 without dynamicStableScale, set in the
    same reconcile as the abort; the canary pods stay abortScaleDownDelaySeconds but get no
    traffic. So the abort's actions carry weight 0, applied at once."""
    acts = _abort_tick(canary([sw(20), pause()], {"sr": SR_BG}, analysis=use("sr")))
    weights = [a for a in acts if isinstance(a, SetWeights)]
    assert weights and weights[-1].canary_weight == 0 and not weights[-1].once_primary_ready


def test_routing_dynamic_stable_scale_abort_holds_the_weight_until_the_stable_is_ready():
    """rollout/trafficrouting.go calculateDesiredWeightOnAbortOrStableRollback: under
    dynamicStableScale, weight = maxWeight − maxWeight × stable available / replicas, so
    live traffic leaves the canary only as the stable scales back up."""
    spec = canary([sw(20), pause()], {"sr": SR_BG}, analysis=use("sr"), dynamicStableScale=True)
    weights = [a for a in _abort_tick(spec) if isinstance(a, SetWeights)]
    assert weights and weights[-1].canary_weight == 0 and weights[-1].once_primary_ready


def _mirror_spec() -> dict[str, Any]:
    step = {
        "setMirrorRoute": {
            "name": "mirror-posts",
            "percentage": 50,
            "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/api"}}],
        }
    }
    spec = canary([sw(20), step, pause()])
    spec["strategy"]["canary"]["trafficRouting"]["managedRoutes"] = [{"name": "mirror-posts"}]
    return spec


def test_routing_mirror_route_matches_method_and_path():
    """rollout/trafficrouting/istio/istio.go createMirrorRoute: RouteMatch{Method, Uri: Path,
    Headers} of the step's match, the last set weights kept, ``mirrorPercentage`` of the
    matching requests copied to the canary. A request is selected when every condition of
    one match entry holds."""
    spec = _mirror_spec()
    policy = ArgoRollout(ArgoPolicySpec.model_validate(spec))
    acts = [a for _, tick in _actions(spec, World(until=60)) for a in tick if isinstance(a, SetWeights)]
    mirror = acts[-1]  # the routes the router holds after the step
    assert mirror.mirrored
    assert (mirror.canary_weight, mirror.mirror_percent, mirror.mirror_match) == (20, 50.0, "mirror-posts")
    assert policy.route_matches("mirror-posts", {":method": "POST", ":path": "/api/items"})
    assert not policy.route_matches("mirror-posts", {":method": "GET", ":path": "/api/items"})
    assert not policy.route_matches("mirror-posts", {":method": "POST", ":path": "/"})
