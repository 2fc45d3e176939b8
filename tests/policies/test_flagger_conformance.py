"""Table-driven conformance of ``FlaggerCanary`` with fluxcd/flagger's ``advanceCanary``.

Every case is a table, one row per tick: the inputs of that tick (metric values,
webhook outcomes, readiness) and the row Flagger would leave behind: ``status.phase``,
``status.canaryWeight``, ``status.failedChecks``, ``status.iterations`` exactly as
Flagger writes them, the routes the mesh holds after the tick, and whether the tick
promoted, rolled back or scaled the canary up. Some rows also pin which webhooks were
called (``hooks``) and which metric queries were run, in order (``reads``).

The expected rows were derived by reading fluxcd/flagger at commit 15bd6ad5 line by
line (``pkg/controller/scheduler.go``, ``scheduler_hooks.go``, ``scheduler_metrics.go``,
``pkg/canary/status.go``, ``pkg/canary/deployment_ready.go``, ``pkg/router/istio.go``,
``pkg/router/nop.go``, ``pkg/metrics/providers/prometheus.go``), NOT by running the
policy; each case carries its ``source`` and a short derivation comment. Where the policy
disagrees with the derivation, the case stays as derived and is marked
``xfail(strict=True)`` with the upstream line and what the policy does instead.

Conventions of the tables:

* interval 60s, so tick n runs at t = 60·n; the canary starts ``Initialized`` with a new
  revision waiting, so tick 1 is always ``checkCanaryStatus`` (confirm-rollout hooks,
  ``ScaleFromZero``, ``SyncStatus{Progressing}``).
* ``router``: the Istio VirtualService after the tick as ``GetRoutes`` would read it:
  the canary weight, `` mirrored`` when the route has a ``mirror`` (``@p`` when
  ``mirrorPercentage`` is p, i.e. ``mirrorWeight`` > 0), `` matched`` for the A/B
  match route (only shown when it carries weight: ``SetRoutes`` keeps the A/B shape
  even at 0, which routes nothing either way). For ``provider: kubernetes`` the
  router is ``NopRouter``: ``SetRoutes`` is a no-op and ``GetRoutes`` reports 0/100
  once ``status.iterations > 0`` (``pkg/router/nop.go``), so the column shows that.
* ``did``: ``scale-up`` (ScaleFromZero), ``promote`` (``canaryController.Promote``,
  copying the spec to the primary), ``rollback`` (``rollback()``), joined with ``+``.
* ``hooks``: webhooks called that tick, ``name:ok`` / ``name:fail``; ``reads``: metric
  queries run that tick, in order. ``None`` = not checked on that row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from sim.policies.base import (
    NO_DATA,
    HookCalled,
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
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from tests.helpers import BAD_BOTH, BAD_LAT, BAD_SR, GOOD, NOTHING
from tests.helpers import REQUEST_DURATION as LAT
from tests.helpers import SUCCESS_RATE as SR

NAN = float("nan")
#: GOOD as the kubernetes provider's queries return it: the duration in seconds.
GOOD_SECONDS = {**GOOD, LAT: GOOD[LAT] / 1000}

BOTH = (SR, LAT)  # the reads of a tick whose builtin checks all run

READY = Readiness()


def unready(since: float) -> Readiness:
    """Not available; ``MinimumReplicasUnavailable`` last updated at ``since``."""
    return Readiness(False, since)


def analysis(**over: Any) -> dict[str, Any]:
    """The default analysis block; ``over`` replaces keys (None removes one)."""
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
    a.update(over)
    return {k: v for k, v in a.items() if v is not None}


def hook(name: str, kind: str) -> dict[str, str]:
    return {"name": name, "type": kind, "url": f"http://hooks/{name}"}


# -- table rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """The world at one tick (besides time and routes)."""

    metrics: Mapping[str, MetricValue] = field(default_factory=lambda: dict(GOOD))
    webhooks: Mapping[str, bool] = field(default_factory=dict)
    canary: Readiness = READY
    primary: Readiness = READY
    latency: Mapping[str, float] = field(default_factory=dict)
    retries: Mapping[str, tuple[bool, ...]] = field(default_factory=dict)


class Row(NamedTuple):
    tick: int
    phase: str
    canaryWeight: int
    failedChecks: int
    iterations: int
    router: str
    did: str
    hooks: tuple[str, ...] | None
    reads: tuple[str, ...] | None
    t: float | None = None


def row(
    tick: int,
    phase: str,
    weight: int,
    failed: int,
    iterations: int,
    router: str,
    did: str = "",
    *,
    metrics: Mapping[str, MetricValue] = GOOD,
    webhooks: Mapping[str, bool] | None = None,
    canary: Readiness = READY,
    primary: Readiness = READY,
    hooks: tuple[str, ...] | list[str] | None = None,
    reads: tuple[str, ...] | list[str] | None = None,
    latency: Mapping[str, float] | None = None,
    retries: Mapping[str, tuple[bool, ...]] | None = None,
    t: float | None = None,
) -> tuple[Given, Row]:
    """One tick: the inputs (keywords) and the expected row (positional, plus hooks/reads).

    ``latency``: seconds a scripted hook takes to answer; ``retries``: the outcomes of the
    retries of a scripted hook's calls that tick, in order; ``t``: when the tick runs."""
    given = Given(dict(metrics), dict(webhooks or {}), canary, primary, dict(latency or {}), dict(retries or {}))
    return given, Row(
        tick,
        phase,
        weight,
        failed,
        iterations,
        router,
        did,
        None if hooks is None else tuple(hooks),
        None if reads is None else tuple(reads),
        t,
    )


# -- the cases -------------------------------------------------------------------------------

CASES: list[dict[str, Any]] = [
    dict(
        id="01-cumulative-failed-checks-intermittent",
        source="pkg/controller/scheduler.go: advanceCanary (threshold check `FailedChecks >= "
        "GetAnalysisThreshold()` before runAnalysis; failing runAnalysis -> "
        "SetStatusFailedChecks(FailedChecks+1) and return), rollback (SetRoutes(100,0), "
        "SyncStatus{Failed, CanaryWeight: 0}); pkg/canary/status.go: setStatusFailedChecks, "
        "syncCanaryStatus",
        # t1 checkCanaryStatus -> Progressing/0/0/0. t2 weight 0 & iterations 0: pre-rollout only, then
        # runCanary 0 -> 10. Then fail/pass alternate: a failure adds one and returns before runCanary
        # (weight holds), a pass steps +10; nothing ever decrements failedChecks. After the 3rd failure
        # (t7) the next tick's threshold check (3 >= 3) rolls back: SyncStatus zeroes every field.
        spec={"analysis": analysis(threshold=3, maxWeight=100)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", metrics=BAD_BOTH, reads=()),
            row(2, "Progressing", 10, 0, 0, "10", metrics=BAD_BOTH, reads=()),
            row(3, "Progressing", 10, 1, 0, "10", metrics=BAD_SR, reads=(SR,)),
            row(4, "Progressing", 20, 1, 0, "20", reads=BOTH),
            row(5, "Progressing", 20, 2, 0, "20", metrics=BAD_LAT, reads=BOTH),
            row(6, "Progressing", 30, 2, 0, "30", reads=BOTH),
            row(7, "Progressing", 30, 3, 0, "30", metrics=BAD_SR, reads=(SR,)),
            row(8, "Failed", 0, 0, 0, "0", "rollback", reads=()),
        ],
    ),
    dict(
        id="02-no-data-and-nan-count",
        source="pkg/metrics/providers/prometheus.go: RunQuery (`value == nil || math.IsNaN(*value)` -> "
        "ErrNoValuesFound); pkg/metrics/observers/istio.go: GetRequestDuration (wraps with %w); "
        "pkg/controller/scheduler_metrics.go: runBuiltinMetricChecks (errors.Is ErrNoValuesFound "
        "-> return false); scheduler.go: advanceCanary",
        # t2 is the pre-rollout tick: no query runs, so missing data there counts nothing. t3: the
        # success-rate query returns no series -> runBuiltinMetricChecks returns false at the first
        # metric (duration never queried) -> failedChecks 1. t4: success rate passes, duration is NaN
        # -> ErrNoValuesFound -> 2. t5: 2 >= threshold 2 -> rollback before any query.
        spec={"analysis": analysis(threshold=2)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", metrics=NOTHING),
            row(2, "Progressing", 10, 0, 0, "10", metrics=NOTHING, reads=()),
            row(3, "Progressing", 10, 1, 0, "10", metrics={SR: NO_DATA, LAT: 100.0}, reads=(SR,)),
            row(4, "Progressing", 10, 2, 0, "10", metrics={SR: 99.9, LAT: NAN}, reads=BOTH),
            row(5, "Failed", 0, 0, 0, "0", "rollback", reads=()),
        ],
    ),
    dict(
        id="03-overshoot-max-weight",
        source="pkg/controller/scheduler.go: maxWeight, runCanary (`if canaryWeight < maxWeight` then "
        "canaryWeight += nextStepWeight, capped at totalWeight only; `if canaryWeight >= "
        "maxWeight` Promote + SetStatusPhase(Promoting)), runPromotionTrafficShift "
        "(StepWeightPromotion == 0: SetRoutes(100,0) + Finalising), Finalising branch; "
        "pkg/canary/status.go: setStatusPhase (keeps weight for Promoting, zeroes it for "
        "Finalising/Succeeded)",
        # maxWeight 50, stepWeight 20: 20, 40, and 40 < 50 -> 60. t5: 60 >= 50 -> Promote, Promoting keeps
        # canaryWeight 60. t6: Promoting -> all traffic to primary, Finalising (weight 0). t7: Succeeded,
        # then runPostRolloutHooks; its failure is only logged (scheduler_hooks.go: runPostRolloutHooks).
        spec={"analysis": analysis(maxWeight=50, stepWeight=20, webhooks=[hook("notify", "post-rollout")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 20, 0, 0, "20", hooks=()),
            row(3, "Progressing", 40, 0, 0, "40", hooks=()),
            row(4, "Progressing", 60, 0, 0, "60", hooks=()),
            row(5, "Promoting", 60, 0, 0, "60", "promote", hooks=()),
            row(6, "Finalising", 0, 0, 0, "0", hooks=(), reads=()),
            row(7, "Succeeded", 0, 0, 0, "0", webhooks={"notify": False}, hooks=["notify:fail"], reads=()),
        ],
    ),
    dict(
        id="04-step-weights",
        source="pkg/controller/scheduler.go: maxWeight (last stepWeights entry, min totalWeight; "
        "maxWeight ignored), nextStepWeight (weight 0: StepWeights[0]; else the gap to the next "
        "entry), runCanary",
        # stepWeights [10, 25, 60] with maxWeight 20 (ignored: stepWeights wins). t2: 0 -> 10; t3: 10 is
        # entry 0 -> +15 = 25; t4: 25 < 60 (it would promote were maxWeight 20 used) -> +35 = 60; t5:
        # 60 >= 60 -> promote, weight kept.
        spec={"analysis": analysis(stepWeight=0, maxWeight=20, stepWeights=[10, 25, 60])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10"),
            row(3, "Progressing", 25, 0, 0, "25"),
            row(4, "Progressing", 60, 0, 0, "60"),
            row(5, "Promoting", 60, 0, 0, "60", "promote"),
            row(6, "Finalising", 0, 0, 0, "0"),
            row(7, "Succeeded", 0, 0, 0, "0"),
        ],
    ),
    dict(
        id="05-step-weight-promotion",
        source="pkg/controller/scheduler.go: advanceCanary (IsPrimaryReady first; Promoting branch "
        "before the threshold check and runAnalysis), runPromotionTrafficShift (canaryWeight > 0: "
        "primary += step capped 100, canary -= step floored 0, SetRoutes; primary == 100 -> "
        "SetStatusPhase(Finalising) else SetStatusWeight(canaryWeight)); pkg/canary/status.go",
        # 25, 50, promote at t4 (Promoting 50). t5: the primary is rolling out the promoted spec
        # (retriable IsPrimaryReady) -> nothing. t6: routes 50/50 -> primary 80, canary 20, status weight
        # 20 (bad metrics are never queried: Promoting returns before the analysis). t7: 100/0 ->
        # Finalising (weight 0). t8: Succeeded.
        spec={"analysis": analysis(maxWeight=50, stepWeight=25, stepWeightPromotion=30)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 25, 0, 0, "25"),
            row(3, "Progressing", 50, 0, 0, "50"),
            row(4, "Promoting", 50, 0, 0, "50", "promote"),
            row(5, "Promoting", 50, 0, 0, "50", primary=unready(240.0), reads=()),
            row(6, "Promoting", 20, 0, 0, "20", metrics=BAD_BOTH, reads=()),
            row(7, "Finalising", 0, 0, 0, "0", metrics=BAD_BOTH, reads=()),
            row(8, "Succeeded", 0, 0, 0, "0"),
        ],
    ),
    dict(
        id="06-ab-iterations",
        source="pkg/controller/scheduler.go: advanceCanary (pre-rollout when canaryWeight == 0 && "
        "Iterations == 0), runAB (Iterations > Status.Iterations: SetRoutes(0,100) + "
        "SetStatusIterations(+1); else confirm-promotion, == -> Promote + Promoting); "
        "pkg/router/istio.go: SetRoutes (A/B: match route weighted, default route primary), "
        "GetRoutes (reads the route holding the canary); pkg/canary/status.go: setStatusPhase",
        # iterations 3 + match. t2: pre-rollout, match route -> 100% canary, iterations 1; status weight is
        # never written by runAB (stays 0). t3, t5: analysis passes -> 2, 3; t4 fails -> iterations hold.
        # t6: 3 == 3 -> Promote (3 passing analyses: t3, t5, t6). t7: Promoting -> SetRoutes(100,0)
        # (match route at 0) -> Finalising zeroes weight and iterations. t8: Succeeded.
        spec={
            "analysis": analysis(
                stepWeight=None,
                maxWeight=None,
                iterations=3,
                threshold=2,
                match=[{"headers": {"x-canary": {"exact": "insider"}}}],
            )
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 1, "100 matched", reads=()),
            row(3, "Progressing", 0, 0, 2, "100 matched", reads=BOTH),
            row(4, "Progressing", 0, 1, 2, "100 matched", metrics=BAD_SR, reads=(SR,)),
            row(5, "Progressing", 0, 1, 3, "100 matched", reads=BOTH),
            row(6, "Promoting", 0, 1, 3, "100 matched", "promote", reads=BOTH),
            row(7, "Finalising", 0, 1, 0, "0", reads=()),
            row(8, "Succeeded", 0, 1, 0, "0"),
        ],
    ),
    dict(
        id="07-blue-green-switch",
        source="pkg/controller/scheduler.go: runBlueGreen (Iterations > Status.Iterations: "
        "SetStatusIterations(+1), no routes; == : confirm-promotion, SetRoutes(0,100), "
        "SetStatusIterations(N+1); < : Promote + Promoting), advanceCanary",
        # iterations 3, no match. t2: pre-rollout, iterations 1, no live traffic. t3, t4: analysis
        # (iterations != 0) -> 2, 3. t5: 3 == 3 -> switch all traffic to the canary, iterations 4.
        # t6: analysis again, 3 < 4 -> Promote (N+1 = 4 analyses: t3..t6). Status weight is never
        # written (0 throughout); Promoting keeps iterations 4, Finalising zeroes it.
        spec={"analysis": analysis(stepWeight=None, maxWeight=None, iterations=3)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 1, "0", reads=()),
            row(3, "Progressing", 0, 0, 2, "0", reads=BOTH),
            row(4, "Progressing", 0, 0, 3, "0", reads=BOTH),
            row(5, "Progressing", 0, 0, 4, "100", reads=BOTH),
            row(6, "Promoting", 0, 0, 4, "100", "promote", reads=BOTH),
            row(7, "Finalising", 0, 0, 0, "0"),
            row(8, "Succeeded", 0, 0, 0, "0"),
        ],
    ),
    dict(
        id="08-blue-green-provider-kubernetes",
        source="pkg/controller/scheduler.go: advanceCanary (provider kubernetes: Match dropped, "
        "`Iterations < 1` -> Iterations = 10, after the analysis), runBlueGreen (`provider != "
        '"kubernetes"` guards every SetRoutes), runPromotionTrafficShift (kubernetes: '
        "SetStatusPhase(Finalising) directly); pkg/router/nop.go: GetRoutes (0/100 once "
        "Status.Iterations > 0), SetRoutes no-op",
        # iterations unset -> 10. t2: NopRouter reports 0 (iterations 0) -> pre-rollout; iterations 1.
        # t3..t11: NopRouter reports 100 -> analysis runs; iterations 2..10. t12: 10 == 10 -> no
        # SetRoutes, iterations 11. t13: 10 < 11 -> Promote. t14: Promoting -> Finalising (no traffic
        # shift). t15: Succeeded. Upstream calls SetRoutes nowhere in this trace.
        spec={
            "provider": "kubernetes",
            "analysis": analysis(stepWeight=None, maxWeight=None, match=[{"headers": {"x": {"exact": "y"}}}]),
        },
        set_routes=False,
        # The kubernetes provider's builtin request-duration query (observers/http.go) returns
        # seconds, which Flagger turns into ms (`* 1000`): a healthy 100 ms reads as 0.1.
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 1, "100", reads=()),
            *[row(n, "Progressing", 0, 0, n - 1, "100", metrics=GOOD_SECONDS, reads=BOTH) for n in range(3, 12)],
            row(12, "Progressing", 0, 0, 11, "100", metrics=GOOD_SECONDS, reads=BOTH),
            row(13, "Promoting", 0, 0, 11, "100", "promote", metrics=GOOD_SECONDS, reads=BOTH),
            row(14, "Finalising", 0, 0, 0, "0", reads=()),
            row(15, "Succeeded", 0, 0, 0, "0", reads=()),
        ],
    ),
    dict(
        id="09-confirm-promotion-closed-canary",
        source="pkg/controller/scheduler_hooks.go: runConfirmPromotionHooks (closed: phase != "
        "WaitingPromotion -> SetStatusPhase(WaitingPromotion), else SetStatusIterations("
        "Iterations-1)); pkg/canary/status.go: setStatusPhase (WaitingPromotion: CanaryWeight 0, "
        "Iterations = analysis.Iterations-1 = -1 for a canary); scheduler.go: advanceCanary "
        "(WaitingPromotion passes checkCanaryStatus, threshold check, runAnalysis; "
        "confirm-traffic-increase skipped in WaitingPromotion), runCanary",
        # maxWeight 20. t4: router at 20 >= 20 -> gate closed -> WaitingPromotion, status weight 0,
        # iterations 0-1 = -1 (router keeps 20). t5: analysis still runs (router weight 20) and fails ->
        # failedChecks 1, the gate is not reached. t6: passes, gate closed again -> iterations set to -1.
        # t7: gate open -> Promote; Promoting keeps weight 0 and iterations -1. t8: Finalising zeroes
        # iterations. failedChecks survives (setStatusPhase never touches it).
        spec={"analysis": analysis(maxWeight=20, threshold=3, webhooks=[hook("gate", "confirm-promotion")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", webhooks={"gate": False}, hooks=()),
            row(2, "Progressing", 10, 0, 0, "10", webhooks={"gate": False}, hooks=()),
            row(3, "Progressing", 20, 0, 0, "20", webhooks={"gate": False}, hooks=()),
            row(4, "WaitingPromotion", 0, 0, -1, "20", webhooks={"gate": False}, hooks=["gate:fail"]),
            row(5, "WaitingPromotion", 0, 1, -1, "20", webhooks={"gate": False}, metrics=BAD_SR, hooks=(), reads=(SR,)),
            row(6, "WaitingPromotion", 0, 1, -1, "20", webhooks={"gate": False}, hooks=["gate:fail"], reads=BOTH),
            row(7, "Promoting", 0, 1, -1, "20", "promote", webhooks={"gate": True}, hooks=["gate:ok"]),
            row(8, "Finalising", 0, 1, 0, "0", hooks=()),
            row(9, "Succeeded", 0, 1, 0, "0", hooks=()),
        ],
    ),
    dict(
        id="10-canary-not-ready-retriable",
        source="pkg/controller/scheduler.go: advanceCanary (IsCanaryReady err: `if !retriable "
        "rollback`; return, before the threshold check and runAnalysis); "
        "pkg/canary/deployment_ready.go: isDeploymentReady (retriable = "
        "!from.Add(deadline).Before(now), deadline 600s)",
        # threshold 2. t3 fails -> 1. t4, t5: the canary is unavailable since t=170 (170+600 > now) ->
        # retriable -> the tick returns: no query, no count, weight holds at 10. t6 ready -> 20. t7 fails
        # -> 2. t8: rollback.
        spec={"analysis": analysis(threshold=2)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10"),
            row(3, "Progressing", 10, 1, 0, "10", metrics=BAD_SR, reads=(SR,)),
            row(4, "Progressing", 10, 1, 0, "10", metrics=BAD_BOTH, canary=unready(170.0), reads=()),
            row(5, "Progressing", 10, 1, 0, "10", metrics=BAD_BOTH, canary=unready(170.0), reads=()),
            row(6, "Progressing", 20, 1, 0, "20", reads=BOTH),
            row(7, "Progressing", 20, 2, 0, "20", metrics=BAD_LAT, reads=BOTH),
            row(8, "Failed", 0, 0, 0, "0", "rollback", reads=()),
        ],
    ),
    dict(
        id="11-mirroring-first-step",
        source="pkg/controller/scheduler.go: advanceCanary (pre-rollout only when `canaryWeight == 0 && "
        "Iterations == 0 && !(Mirror && mirrored)`; confirm-traffic-increase skipped when "
        "mirrored), runCanary (Mirror && canaryWeight == 0: !mirrored -> SetRoutes(100, 0, true); "
        "mirrored -> SetRoutes(100-step, step, false)); pkg/router/istio.go: SetRoutes (mirror, "
        'MirrorPercentage = mirrorWeight when > 0), GetRoutes (mirrored = Mirror.Host != "")',
        # stepWeight 20, maxWeight 40, mirrorWeight 50. t2: pre-rollout branch, then the mirror step: 100/0
        # mirrored at 50%, SetStatusWeight(0). t3: weight 0 but mirrored -> runAnalysis, which fails ->
        # failedChecks 1, still mirrored. t4: passes -> mirroring off, 80/20. t5: 40. t6: promote.
        spec={"analysis": analysis(stepWeight=20, maxWeight=40, mirror=True, mirrorWeight=50)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 0, "0 mirrored@50", reads=()),
            row(3, "Progressing", 0, 1, 0, "0 mirrored@50", metrics=BAD_LAT, reads=BOTH),
            row(4, "Progressing", 20, 1, 0, "20", reads=BOTH),
            row(5, "Progressing", 40, 1, 0, "40", reads=BOTH),
            row(6, "Promoting", 40, 1, 0, "40", "promote", reads=BOTH),
            row(7, "Finalising", 0, 1, 0, "0"),
            row(8, "Succeeded", 0, 1, 0, "0"),
        ],
    ),
    dict(
        id="12-confirm-rollout-waiting",
        source="pkg/controller/scheduler.go: checkCanaryStatus (not Progressing/WaitingPromotion/"
        "Promoting/Finalising + shouldAdvance -> runConfirmRolloutHooks; approved -> "
        "ScaleFromZero + SyncStatus{Progressing}; returns false either way), shouldAdvance "
        "(Waiting advances); scheduler_hooks.go: runConfirmRolloutHooks (closed: phase != Waiting "
        "-> SetStatusPhase(Waiting)); pkg/canary/status.go: setStatusPhase (Waiting keeps fields)",
        # t1, t2 the gate is closed: Waiting, nothing scaled. t3 approved: scale up, Progressing. t4: the
        # confirm-rollout hook is no longer called (checkCanaryStatus returns true in Progressing);
        # pre-rollout tick -> 10.
        spec={"analysis": analysis(webhooks=[hook("approve", "confirm-rollout")])},
        ticks=[
            row(1, "Waiting", 0, 0, 0, "0", webhooks={"approve": False}, hooks=["approve:fail"]),
            row(2, "Waiting", 0, 0, 0, "0", webhooks={"approve": False}, hooks=["approve:fail"]),
            row(3, "Progressing", 0, 0, 0, "0", "scale-up", webhooks={"approve": True}, hooks=["approve:ok"]),
            row(4, "Progressing", 10, 0, 0, "10", webhooks={"approve": False}, hooks=()),
            row(5, "Progressing", 20, 0, 0, "20", webhooks={"approve": False}, hooks=(), reads=BOTH),
        ],
    ),
    dict(
        id="13-rollback-webhook",
        source="pkg/controller/scheduler.go: advanceCanary (runRollbackHooks in Progressing/Waiting/"
        "WaitingPromotion, after shouldSkipAnalysis and before the Promoting branch, threshold "
        "check and analysis); scheduler_hooks.go: runRollbackHooks (err -> not signalling; first "
        "2xx -> true), rollback",
        # t1: checkCanaryStatus returns before the rollback hooks. t2, t3: the hook answers non-2xx (not a
        # rollback signal) and the canary advances. t4: 2xx -> rollback at once, nothing queried, failed
        # checks 0 -> 0.
        # rollback() ends with runPostRolloutHooks(Failed): "notify" is called after "rb".
        spec={"analysis": analysis(webhooks=[hook("rb", "rollback"), hook("notify", "post-rollout")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 10, 0, 0, "10", webhooks={"rb": False}, hooks=["rb:fail"]),
            row(3, "Progressing", 20, 0, 0, "20", webhooks={"rb": False}, hooks=["rb:fail"], reads=BOTH),
            row(4, "Failed", 0, 0, 0, "0", "rollback", webhooks={"rb": True}, hooks=["rb:ok", "notify:ok"], reads=()),
        ],
    ),
    dict(
        id="14-rollout-webhook-fails",
        source='pkg/controller/scheduler.go: runAnalysis (webhooks with Type "" or rollout, before '
        "runBuiltinMetricChecks; err -> return false), advanceCanary (pre-rollout tick does not "
        "call rollout hooks; failure -> FailedChecks+1)",
        # The hook has type "". t2: pre-rollout branch: not called. t3: it fails -> failedChecks 1, no
        # metric is queried. t4: it passes, both metrics run -> 20. t5 fails -> 2. t6: rollback.
        spec={"analysis": analysis(threshold=2, webhooks=[hook("smoke", "")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 10, 0, 0, "10", webhooks={"smoke": False}, hooks=(), reads=()),
            row(3, "Progressing", 10, 1, 0, "10", webhooks={"smoke": False}, hooks=["smoke:fail"], reads=()),
            row(4, "Progressing", 20, 1, 0, "20", webhooks={"smoke": True}, hooks=["smoke:ok"], reads=BOTH),
            row(5, "Progressing", 20, 2, 0, "20", webhooks={"smoke": False}, hooks=["smoke:fail"], reads=()),
            row(6, "Failed", 0, 0, 0, "0", "rollback", webhooks={"smoke": False}, hooks=(), reads=()),
        ],
    ),
    dict(
        id="15-confirm-traffic-increase",
        source="pkg/controller/scheduler.go: advanceCanary (`if nextStepWeight > 0` and !mirrored and "
        "not Promoting/WaitingPromotion/Finalising -> runConfirmTrafficIncreaseHooks; closed -> "
        "return, nothing counted), runCanary; scheduler_hooks.go: runConfirmTrafficIncreaseHooks",
        # stepWeight 10, maxWeight 30. t2: pre-rollout passes, the gate is closed -> weight stays 0 (so t3
        # is a pre-rollout tick again, no query). t3: open -> 10. t4: metrics pass, gate closed -> hold,
        # nothing counted. t5, t6: 20, 30. t7: at max weight nextStepWeight is still 10 > 0, so the gate is
        # called before runCanary's promotion: closed -> no promotion. t8: open -> promote.
        spec={"analysis": analysis(maxWeight=30, webhooks=[hook("more", "confirm-traffic-increase")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", webhooks={"more": False}, hooks=()),
            row(2, "Progressing", 0, 0, 0, "0", webhooks={"more": False}, hooks=["more:fail"], reads=()),
            row(3, "Progressing", 10, 0, 0, "10", webhooks={"more": True}, hooks=["more:ok"], reads=()),
            row(4, "Progressing", 10, 0, 0, "10", webhooks={"more": False}, hooks=["more:fail"], reads=BOTH),
            row(5, "Progressing", 20, 0, 0, "20", webhooks={"more": True}, hooks=["more:ok"]),
            row(6, "Progressing", 30, 0, 0, "30", webhooks={"more": True}, hooks=["more:ok"]),
            row(7, "Progressing", 30, 0, 0, "30", webhooks={"more": False}, hooks=["more:fail"]),
            row(8, "Promoting", 30, 0, 0, "30", "promote", webhooks={"more": True}, hooks=["more:ok"]),
            row(9, "Finalising", 0, 0, 0, "0", webhooks={"more": False}, hooks=()),
        ],
    ),
    dict(
        id="16-canary-progress-deadline",
        source="pkg/canary/deployment_ready.go: isDeploymentReady (MinimumReplicasUnavailable: "
        "retriable = !from.Add(deadline).Before(now)); pkg/controller/scheduler.go: "
        "advanceCanary (IsCanaryReady non-retriable -> rollback), rollback",
        # progressDeadlineSeconds 60. The canary crashes at t=200. t4 (240): 260 is not before 240 ->
        # retriable, wait. t5 (300): 260 < 300 -> non-retriable -> rollback; SyncStatus zeroes the
        # failed check counted at t3.
        spec={"progressDeadlineSeconds": 60, "analysis": analysis()},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10"),
            row(3, "Progressing", 10, 1, 0, "10", metrics=BAD_SR),
            row(4, "Progressing", 10, 1, 0, "10", metrics=BAD_SR, canary=unready(200.0), reads=()),
            row(5, "Failed", 0, 0, 0, "0", "rollback", metrics=BAD_SR, canary=unready(200.0), reads=()),
        ],
    ),
    dict(
        id="17-skip-analysis",
        source="pkg/controller/scheduler.go: advanceCanary (`if !cd.SkipAnalysis()` around "
        "IsPrimaryReady; IsCanaryReady still runs), shouldSkipAnalysis (SetRoutes(100,0), Promote, "
        "ScaleToZero, SetStatusPhase(Succeeded)); pkg/apis/flagger/v1beta1/canary.go: SkipAnalysis",
        # t1: checkCanaryStatus -> Progressing. t2: the primary is not ready but IsPrimaryReady is skipped;
        # the canary is ready -> promoted and Succeeded at once, no query.
        # shouldSkipAnalysis ends with runPostRolloutHooks(Succeeded).
        spec={"skipAnalysis": True, "analysis": analysis(webhooks=[hook("notify", "post-rollout")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(
                2,
                "Succeeded",
                0,
                0,
                0,
                "0",
                "promote",
                metrics=BAD_BOTH,
                primary=unready(100.0),
                reads=(),
                hooks=["notify:ok"],
            ),
        ],
    ),
    dict(
        id="18-ab-confirm-promotion-closed-once",
        source="pkg/controller/scheduler_hooks.go: runConfirmPromotionHooks; pkg/canary/status.go: "
        "setStatusPhase (WaitingPromotion: weight 0, Iterations = analysis.Iterations-1); "
        "pkg/controller/scheduler.go: runAB (Iterations > Status.Iterations -> SetRoutes + "
        "SetStatusIterations(+1) and return, without the gate), checkCanaryStatus",
        # iterations 2. t4: 2 == 2 -> gate closed -> WaitingPromotion, iterations 2-1 = 1. t5 (gate open
        # now): analysis runs, runAB sees 2 > 1 -> iterations 2, phase stays WaitingPromotion, the gate
        # is NOT called. t6: 2 == 2 -> gate open -> Promote; Promoting keeps iterations 2.
        spec={
            "analysis": analysis(
                stepWeight=None,
                maxWeight=None,
                iterations=2,
                match=[{"headers": {"x-canary": {"exact": "insider"}}}],
                webhooks=[hook("gate", "confirm-promotion")],
            )
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 0, 0, 1, "100 matched", hooks=(), reads=()),
            row(3, "Progressing", 0, 0, 2, "100 matched", hooks=(), reads=BOTH),
            row(
                4, "WaitingPromotion", 0, 0, 1, "100 matched", webhooks={"gate": False}, hooks=["gate:fail"], reads=BOTH
            ),
            row(5, "WaitingPromotion", 0, 0, 2, "100 matched", hooks=(), reads=BOTH),
            row(6, "Promoting", 0, 0, 2, "100 matched", "promote", hooks=["gate:ok"], reads=BOTH),
            row(7, "Finalising", 0, 0, 0, "0", hooks=()),
            row(8, "Succeeded", 0, 0, 0, "0", hooks=()),
        ],
    ),
    dict(
        id="19-metric-template-after-builtins",
        source="pkg/controller/scheduler.go: runAnalysis (runBuiltinMetricChecks, then runMetricChecks); "
        "pkg/controller/scheduler_metrics.go: runBuiltinMetricChecks (builtins and inline `query` "
        "metrics in list order, first failure returns), runMetricChecks (templateRef metrics, "
        "thresholdRange)",
        # metrics listed [error-rate (templateRef, max 1), success rate, cpu (inline query, max 80)]. The
        # query order is success rate, cpu (runBuiltinMetricChecks), then error-rate (runMetricChecks),
        # whatever the list order. t3: builtins pass, the template's 5 > 1 -> failedChecks 1. t4: success
        # rate fails first -> the template is not queried. t5: all pass -> 20. threshold 3.
        spec={
            "analysis": analysis(
                threshold=3,
                metrics=[
                    {"name": "error-rate", "templateRef": {"name": "error-rate"}, "thresholdRange": {"max": 1}},
                    {"name": SR, "thresholdRange": {"min": 99}},
                    {"name": "cpu", "query": "sum(rate(cpu[1m]))", "thresholdRange": {"max": 80}},
                ],
            ),
            "metricTemplates": {
                "error-rate": {"query": "sum(rate(errors[{{ interval }}]))", "provider": {"type": "prometheus"}}
            },
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10", reads=()),
            row(
                3,
                "Progressing",
                10,
                1,
                0,
                "10",
                metrics={SR: 99.9, "cpu": 10.0, "error-rate": 5.0},
                reads=(SR, "cpu", "error-rate"),
            ),
            row(4, "Progressing", 10, 2, 0, "10", metrics={SR: 90.0, "cpu": 10.0, "error-rate": 5.0}, reads=(SR,)),
            row(
                5,
                "Progressing",
                20,
                2,
                0,
                "20",
                metrics={SR: 99.9, "cpu": 10.0, "error-rate": 0.5},
                reads=(SR, "cpu", "error-rate"),
            ),
        ],
    ),
    dict(
        id="20-primary-deadline-during-promotion",
        source="pkg/controller/scheduler.go: advanceCanary (IsPrimaryReady non-retriable in Promoting/"
        "Finalising -> handleFailedPromotion), handleFailedPromotion (SetRoutes(0,100), "
        "SyncStatus{Failed, CanaryWeight: 100}); pkg/canary/deployment_ready.go",
        # maxWeight 20, deadline 60. Promote at t5 (Promoting 20, failedChecks 1 from t3). The primary
        # rolls out the promoted spec from t=300 and never becomes available: t6 (360) 360 is not before
        # 360 -> retriable, wait; t7 (420) -> handleFailedPromotion: all traffic to the canary, Failed
        # with weight 100; SyncStatus writes failedChecks 0. No rollback() call.
        # handleFailedPromotion ends with runPostRolloutHooks(Failed).
        spec={
            "progressDeadlineSeconds": 60,
            "analysis": analysis(maxWeight=20, webhooks=[hook("notify", "post-rollout")]),
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10"),
            row(3, "Progressing", 10, 1, 0, "10", metrics=BAD_SR),
            row(4, "Progressing", 20, 1, 0, "20"),
            row(5, "Promoting", 20, 1, 0, "20", "promote"),
            row(6, "Promoting", 20, 1, 0, "20", primary=unready(300.0), hooks=()),
            row(7, "Failed", 100, 0, 0, "100", primary=unready(300.0), hooks=["notify:ok"]),
        ],
    ),
    dict(
        id="21-threshold-rollback-in-waiting-promotion",
        source="pkg/controller/scheduler.go: advanceCanary (threshold check in Progressing OR "
        "WaitingPromotion; runAnalysis keeps counting in WaitingPromotion), rollback; "
        "scheduler_hooks.go: runConfirmPromotionHooks",
        # maxWeight 10, threshold 2, the gate never opens. t3: 10 >= 10 -> gate closed -> WaitingPromotion
        # (weight 0, iterations -1). t4, t5 fail -> 1, 2 (gate not reached). t6: rollback from
        # WaitingPromotion.
        spec={"analysis": analysis(maxWeight=10, threshold=2, webhooks=[hook("gate", "confirm-promotion")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", webhooks={"gate": False}),
            row(2, "Progressing", 10, 0, 0, "10", webhooks={"gate": False}, hooks=()),
            row(3, "WaitingPromotion", 0, 0, -1, "10", webhooks={"gate": False}, hooks=["gate:fail"]),
            row(4, "WaitingPromotion", 0, 1, -1, "10", webhooks={"gate": False}, metrics=BAD_SR, hooks=()),
            row(5, "WaitingPromotion", 0, 2, -1, "10", webhooks={"gate": False}, metrics=BAD_SR, hooks=()),
            row(6, "Failed", 0, 0, 0, "0", "rollback", webhooks={"gate": False}, hooks=(), reads=()),
        ],
    ),
    dict(
        id="22-blue-green-mirroring",
        source="pkg/controller/scheduler.go: runBlueGreen (Mirror && !mirrored && provider != kubernetes "
        "-> SetRoutes(100, 0, true) while iterating; at Iterations == N SetRoutes(0, 100, false)), "
        "advanceCanary; pkg/router/istio.go: SetRoutes/GetRoutes (mirror)",
        # iterations 2, mirror. t2: pre-rollout; mirroring starts (100% mirrored, no mirrorWeight), iterations
        # 1. t3: already mirrored -> no SetRoutes, iterations 2. t4: 2 == 2 -> mirroring off, 0/100,
        # iterations 3. t5: promote.
        spec={"analysis": analysis(stepWeight=None, maxWeight=None, iterations=2, mirror=True)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 1, "0 mirrored", reads=()),
            row(3, "Progressing", 0, 0, 2, "0 mirrored", reads=BOTH),
            row(4, "Progressing", 0, 0, 3, "100", reads=BOTH),
            row(5, "Promoting", 0, 0, 3, "100", "promote", reads=BOTH),
            row(6, "Finalising", 0, 0, 0, "0"),
            row(7, "Succeeded", 0, 0, 0, "0"),
        ],
    ),
    dict(
        id="23-pre-rollout-hook-failing",
        source="pkg/controller/scheduler.go: advanceCanary (first step: runPreRolloutHooks; failure -> "
        "FailedChecks+1 and return, so weight and iterations stay 0 and the next tick is a "
        "pre-rollout tick again); scheduler_hooks.go: runPreRolloutHooks",
        # threshold 3. t2, t3: pre-rollout fails -> 1, 2 (no metric queried). t4: passes -> 10. t5: weight
        # 10 -> runAnalysis; the pre-rollout hook is not called any more.
        spec={"analysis": analysis(threshold=3, webhooks=[hook("db-migrate", "pre-rollout")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", webhooks={"db-migrate": False}, hooks=()),
            row(2, "Progressing", 0, 1, 0, "0", webhooks={"db-migrate": False}, hooks=["db-migrate:fail"], reads=()),
            row(3, "Progressing", 0, 2, 0, "0", webhooks={"db-migrate": False}, hooks=["db-migrate:fail"], reads=()),
            row(4, "Progressing", 10, 2, 0, "10", webhooks={"db-migrate": True}, hooks=["db-migrate:ok"], reads=()),
            row(5, "Progressing", 20, 2, 0, "20", webhooks={"db-migrate": False}, hooks=(), reads=BOTH),
        ],
    ),
    dict(
        id="24-metric-without-threshold-compares-with-zero",
        source="pkg/apis/flagger/v1beta1/canary.go: CanaryMetric.Threshold (float64, omitempty: 0 when "
        "unset); pkg/controller/scheduler_metrics.go: runBuiltinMetricChecks (`ThresholdRange == "
        "nil` -> `val > time.Duration(metric.Threshold)*time.Millisecond`), runMetricChecks "
        "(`ThresholdRange == nil` -> `val > metric.Threshold`); pkg/metrics/observers/istio.go: "
        "GetRequestDuration (int64 ms)",
        # Neither thresholdRange nor threshold: upstream still takes the legacy branch with Threshold 0, so
        # request-duration fails for any p99 >= 1ms (0.4ms truncates to 0ms: 0 > 0 is false) and a
        # template metric fails for any value > 0. t3: 100ms > 0 -> 1. t4: 0ms and 0 -> pass -> 20. t5:
        # errors 2 > 0 -> 2. t6: 100ms -> 3. t7: rollback (threshold 3).
        spec={
            "analysis": analysis(
                threshold=3, metrics=[{"name": LAT}, {"name": "errors", "templateRef": {"name": "errors"}}]
            )
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10", reads=()),
            row(3, "Progressing", 10, 1, 0, "10", metrics={LAT: 100.0, "errors": 0.0}, reads=(LAT,)),
            row(4, "Progressing", 20, 1, 0, "20", metrics={LAT: 0.4, "errors": 0.0}, reads=(LAT, "errors")),
            row(5, "Progressing", 20, 2, 0, "20", metrics={LAT: 0.4, "errors": 2.0}, reads=(LAT, "errors")),
            row(6, "Progressing", 20, 3, 0, "20", metrics={LAT: 100.0, "errors": 0.0}, reads=(LAT,)),
            row(7, "Failed", 0, 0, 0, "0", "rollback", reads=()),
        ],
    ),
    dict(
        id="25-blue-green-confirm-promotion-closed-after-switch",
        source="pkg/controller/scheduler.go: runBlueGreen (gate before both the switch at Iterations == N "
        "and the promotion at Iterations > N); scheduler_hooks.go: runConfirmPromotionHooks; "
        "pkg/canary/status.go: setStatusPhase (WaitingPromotion: Iterations = N-1)",
        # iterations 2. t4: gate open -> switch 0/100, iterations 3. t5: gate closed -> WaitingPromotion,
        # iterations 2-1 = 1 while the canary keeps 100% of the traffic. t6: runBlueGreen sees 2 > 1 ->
        # iterations 2 without calling the gate. t7: 2 == 2 -> gate open -> SetRoutes(0,100) again,
        # iterations 3 (still WaitingPromotion). t8: 2 < 3 -> gate -> Promote.
        spec={
            "analysis": analysis(
                stepWeight=None, maxWeight=None, iterations=2, webhooks=[hook("gate", "confirm-promotion")]
            )
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 0, 0, 1, "0", hooks=()),
            row(3, "Progressing", 0, 0, 2, "0", hooks=()),
            row(4, "Progressing", 0, 0, 3, "100", hooks=["gate:ok"]),
            row(5, "WaitingPromotion", 0, 0, 1, "100", webhooks={"gate": False}, hooks=["gate:fail"]),
            row(6, "WaitingPromotion", 0, 0, 2, "100", hooks=(), reads=BOTH),
            row(7, "WaitingPromotion", 0, 0, 3, "100", hooks=["gate:ok"]),
            row(8, "Promoting", 0, 0, 3, "100", "promote", hooks=["gate:ok"]),
            row(9, "Finalising", 0, 0, 0, "0", hooks=()),
            row(10, "Succeeded", 0, 0, 0, "0", hooks=()),
        ],
    ),
    dict(
        id="26-query-results-vectors-errors-and-scalars",
        source="pkg/metrics/providers/prometheus.go: RunQuery (every series overwrites the value: the "
        "last wins; `value == nil || math.IsNaN(*value)` -> ErrNoValuesFound; json.Unmarshal of a "
        "scalar's data.result into []struct fails -> error); pkg/controller/scheduler_metrics.go: "
        "runBuiltinMetricChecks (any error returns false; `val > time.Duration(*tr.Max)*time.Millisecond`); "
        "pkg/metrics/observers/istio.go: GetRequestDuration (time.Duration(int64(value)) ms); "
        "pkg/controller/scheduler.go: advanceCanary (runAnalysis false -> FailedChecks+1)",
        # Issue 14: the world hands each query's result as it comes. t3: success-rate vector [50, 99.9]:
        # the last series, 99.9, passes -> 20. t4: [99.9, NaN]: the last is NaN -> no values -> 1 (the
        # latency query is not run). t5: the query fails -> 2. t6: latency as a PromQL scalar: RunQuery
        # cannot unmarshal it -> 3. t7: 500.9 ms truncates to 500 ms, not > 500 -> 30. t8: an empty
        # vector -> 4. t9: 4 >= 4 -> rollback.
        spec={"analysis": analysis(threshold=4, maxWeight=100)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10", reads=()),
            row(3, "Progressing", 20, 0, 0, "20", metrics={SR: (50.0, 99.9), LAT: (100.0,)}, reads=BOTH),
            row(4, "Progressing", 20, 1, 0, "20", metrics={SR: (99.9, NAN), LAT: 100.0}, reads=(SR,)),
            row(5, "Progressing", 20, 2, 0, "20", metrics={SR: QueryError("timeout"), LAT: 100.0}, reads=(SR,)),
            row(6, "Progressing", 20, 3, 0, "20", metrics={SR: 99.9, LAT: ScalarResult(100.0)}, reads=BOTH),
            row(7, "Progressing", 30, 3, 0, "30", metrics={SR: (99.9,), LAT: 500.9}, reads=BOTH),
            row(8, "Progressing", 30, 4, 0, "30", metrics={SR: (), LAT: 100.0}, reads=(SR,)),
            row(9, "Failed", 0, 0, 0, "0", "rollback", reads=()),
        ],
    ),
    # -- issue 16 (helper "flagger"): mirroring on routers that cannot mirror, suspend, ready
    # -- thresholds, controller versions. Webhook retries and timeouts follow in their own block.
    dict(
        id="27-mirror-on-nginx-never-decides",
        source="pkg/router/factory.go: MeshRouter (nginx -> IngressRouter); pkg/router/ingress.go: "
        "GetRoutes (`mirrored = false`), SetRoutes (no mirror); pkg/controller/scheduler.go: advanceCanary "
        "(first step when `CanaryWeight == 0 && Iterations == 0 && !(Mirror && mirrored)`: pre-rollout "
        "hooks only), runCanary (Mirror && canaryWeight == 0 && !mirrored -> SetRoutes(100, 0, true))",
        # t2: pre-rollout, then the mirror step: the ingress sets 100/0 and drops `mirrored`. Every later
        # tick reads 100/0 unmirrored: the first step again (pre-rollout only, no query), mirror step
        # again. Weight 0 and iterations 0 forever: no metric is read, nothing is ever decided.
        spec={
            "provider": "nginx",
            "analysis": analysis(mirror=True, webhooks=[hook("pre", "pre-rollout")]),
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            *[row(n, "Progressing", 0, 0, 0, "0", metrics=BAD_BOTH, hooks=["pre:ok"], reads=()) for n in range(2, 9)],
        ],
    ),
    dict(
        id="28-suspended-canary",
        source="pkg/controller/scheduler.go: advanceCanary (`if cd.Spec.Suspend { ... return }` before anything else)",
        # A suspended Canary returns at the top of every run: the new revision is never picked up, no
        # hook is called, no query run, nothing scaled.
        spec={"suspend": True, "analysis": analysis(webhooks=[hook("gate", "confirm-rollout")])},
        ticks=[row(n, "Initialized", 0, 0, 0, "0", hooks=(), reads=()) for n in range(1, 5)],
        set_routes=False,
    ),
    dict(
        id="29-canary-ready-threshold",
        source="pkg/canary/deployment_ready.go: IsCanaryReady, isDeploymentReady (`readyThresholdUpdatedReplicas "
        ":= int32(float32(UpdatedReplicas) * float32(readyThreshold)/float32(100))`; `AvailableReplicas < "
        "readyThresholdUpdatedReplicas` -> retriable error); pkg/apis/flagger/v1beta1/canary.go: "
        "GetAnalysisCanaryReadyThreshold",
        # canaryReadyThreshold 50, 4 pods. t2: 1 of 4 available: int(4 * 0.5) = 2 > 1 -> wait (no
        # pre-rollout, weight 0). t3: 2 of 4 -> ready: the first step, 10. t4: 2 of 4 still: analysed, 20.
        spec={"analysis": analysis(canaryReadyThreshold=50)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 0, "0", canary=Readiness(False, 60.0, 4, 1), reads=()),
            row(3, "Progressing", 10, 0, 0, "10", canary=Readiness(False, 60.0, 4, 2), reads=()),
            row(4, "Progressing", 20, 0, 0, "20", canary=Readiness(False, 60.0, 4, 2), reads=BOTH),
        ],
    ),
    dict(
        id="30-primary-ready-threshold-float32",
        source="pkg/canary/deployment_ready.go: IsPrimaryReady, isDeploymentReady (float32 arithmetic: "
        "float32(100) * float32(0.29) rounds to 29.0, not 28.99...; a rolling update, `Status.Replicas > "
        "UpdatedReplicas`, is never ready whatever the threshold)",
        # primaryReadyThreshold 29, 100 pods. t2: 28 of 100 available: int32(float32(100)*0.29f) = 29 > 28
        # -> wait (float64's int(100 * 0.29) would be 28: ready). t3: 29 -> ready, first step. t5 promote;
        # t6: the primary's rolling update (no final count): wait however many pods are up.
        spec={"analysis": analysis(primaryReadyThreshold=29, maxWeight=20)},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 0, 0, 0, "0", primary=Readiness(False, 60.0, 100, 28), reads=()),
            row(3, "Progressing", 10, 0, 0, "10", primary=Readiness(False, 60.0, 100, 29), reads=()),
            row(4, "Progressing", 20, 0, 0, "20"),
            row(5, "Promoting", 20, 0, 0, "20", "promote"),
            row(6, "Promoting", 20, 0, 0, "20", primary=Readiness(False, 300.0, None, None), reads=()),
            row(7, "Finalising", 0, 0, 0, "0"),
        ],
    ),
    dict(
        id="31-primary-deadline-during-promotion-flagger-1.43",
        source="pkg/controller/scheduler.go at v1.43.0: advanceCanary (IsPrimaryReady non-retriable -> "
        "rollback, whatever the phase; handleFailedPromotion came with fluxcd/flagger #1931 in v1.44.0), "
        "rollback (SetRoutes(100, 0), SyncStatus{Failed, CanaryWeight: 0}, runPostRolloutHooks(Failed))",
        # Case 20 under Flagger 1.43: t7 rolls back, all traffic to the failing primary.
        spec={
            "version": "1.43",
            "progressDeadlineSeconds": 60,
            "analysis": analysis(maxWeight=20, webhooks=[hook("notify", "post-rollout")]),
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up"),
            row(2, "Progressing", 10, 0, 0, "10"),
            row(3, "Progressing", 10, 1, 0, "10", metrics=BAD_SR),
            row(4, "Progressing", 20, 1, 0, "20"),
            row(5, "Promoting", 20, 1, 0, "20", "promote"),
            row(6, "Promoting", 20, 1, 0, "20", primary=unready(300.0), hooks=()),
            row(7, "Failed", 0, 0, 0, "0", "rollback", primary=unready(300.0), hooks=["notify:ok"]),
        ],
    ),
    dict(
        id="32-skip-analysis-flagger-1.43",
        source="pkg/controller/scheduler.go at v1.43.0: shouldSkipAnalysis (no runPostRolloutHooks; "
        "added by fluxcd/flagger #1918 in v1.44.0)",
        # Case 17 under Flagger 1.43: promoted at t2, the post-rollout hook is not called.
        spec={"version": "1.43", "skipAnalysis": True, "analysis": analysis(webhooks=[hook("notify", "post-rollout")])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Succeeded", 0, 0, 0, "0", "promote", reads=(), hooks=()),
        ],
    ),
    # -- issue 16 (helper "flagger"): webhook retries and timeouts.
    dict(
        id="33-webhook-retries-server-errors",
        source="pkg/controller/webhook.go: newHTTPClient (go-retryablehttp, RetryMax = retries), callWebhook "
        "(status > 202 fails); go-retryablehttp v0.7.8 client.go: Client.Do (retry while CheckRetry says so "
        "and `RetryMax - i > 0`), baseRetryPolicy (5xx retried); scheduler.go: runAnalysis",
        # retries 2. t3: the call fails with a 5xx, the 1st retry too, the 2nd passes: the rollout hook
        # passes -> the metrics run, 20. t4: all three attempts fail -> failedChecks 1, weight holds.
        # Back-off 1s + 2s: far under the 60s interval, ticks keep their times.
        spec={"analysis": analysis(webhooks=[{**hook("check", "rollout"), "retries": 2}])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 10, 0, 0, "10", hooks=()),
            row(
                3,
                "Progressing",
                20,
                0,
                0,
                "20",
                webhooks={"check": False},
                retries={"check": (False, True)},
                hooks=["check:fail", "check:fail", "check:ok"],
                reads=BOTH,
                t=180.0,
            ),
            row(
                4,
                "Progressing",
                20,
                1,
                0,
                "20",
                webhooks={"check": False},
                retries={"check": (False, False)},
                hooks=["check:fail"] * 3,
                reads=(),
                t=240.0,
            ),
        ],
    ),
    dict(
        id="34-webhook-timeouts-retried-and-late-ticks",
        source="pkg/controller/webhook.go: newHTTPClient (HTTPClient.Timeout = timeout per attempt); "
        "go-retryablehttp v0.7.8 client.go: baseRetryPolicy (a client timeout is an error: retried), "
        "DefaultBackoff (2^i seconds); pkg/controller/job.go: CanaryJob.Start (advanceCanary runs in the "
        "ticker's goroutine: a blocked run delays the next, Go's Ticker keeps one tick waiting)",
        # timeout 20s, retries 2, the hook answers in 25s: every attempt times out. t3 (180): 20 + 1 + 20 +
        # 2 + 20 = 63s blocked -> failedChecks 1; the tick of 240 waited: the next run at 243. It blocks
        # 63s again -> 2; the 300 tick waited: next at 306, where 2 >= threshold 2 rolls back.
        spec={
            "analysis": analysis(threshold=2, webhooks=[{**hook("slow", "rollout"), "timeout": "20s", "retries": 2}])
        },
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=(), t=60.0),
            row(2, "Progressing", 10, 0, 0, "10", hooks=(), t=120.0),
            row(3, "Progressing", 10, 1, 0, "10", latency={"slow": 25.0}, hooks=["slow:fail"] * 3, t=180.0),
            row(4, "Progressing", 10, 2, 0, "10", latency={"slow": 25.0}, hooks=["slow:fail"] * 3, t=243.0),
            row(5, "Failed", 0, 0, 0, "0", "rollback", latency={"slow": 25.0}, hooks=(), t=306.0),
        ],
    ),
    dict(
        id="35-closed-gate-not-retried",
        source="pkg/loadtester/server.go: /gate/check (closed -> 403 Forbidden); go-retryablehttp v0.7.8 "
        "client.go: baseRetryPolicy (4xx is not retried); scheduler_hooks.go: runConfirmPromotionHooks",
        # retries 3 on a confirm-promotion gate: a closed gate answers 403, one attempt per tick.
        spec={"analysis": analysis(maxWeight=10, webhooks=[{**hook("gate", "confirm-promotion"), "retries": 3}])},
        ticks=[
            row(1, "Progressing", 0, 0, 0, "0", "scale-up", hooks=()),
            row(2, "Progressing", 10, 0, 0, "10", hooks=()),
            row(3, "WaitingPromotion", 0, 0, -1, "10", webhooks={"gate": False}, hooks=["gate:fail"]),
        ],
    ),
]


# -- the driver --------------------------------------------------------------------------------


class RecordedMetrics(Mapping[str, MetricValue]):
    """The tick's metric values; records which queries the policy ran, in order."""

    def __init__(self, values: Mapping[str, MetricValue]) -> None:
        self._values = dict(values)
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> MetricValue:
        self.reads.append(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Mesh:
    """The Istio VirtualService as GetRoutes reads it back."""

    canary_weight: int = 0
    mirrored: bool = False
    matched: bool = False
    mirror_percent: float = 100.0

    def routes(self) -> Routes:
        return Routes(self.canary_weight, self.mirrored, self.matched)

    def show(self) -> str:
        out = str(self.canary_weight)
        if self.matched and self.canary_weight > 0:
            out += " matched"
        if self.mirrored:
            out += " mirrored" + ("" if self.mirror_percent == 100 else f"@{self.mirror_percent:g}")
        return out


def _did(actions: tuple) -> str:
    names = {ScaleUp: "scale-up", Promote: "promote", Rollback: "rollback"}
    return "+".join(names[type(a)] for a in actions if type(a) in names)


def play(case: dict[str, Any]) -> tuple[list[Row], list[tuple]]:
    """Run the case's inputs through FlaggerCanary, playing the mesh router.

    Istio: every SetWeights replaces the routes the next tick reads back (rollback
    included: only the SetWeights the policy emits moves traffic). Kubernetes: Flagger's
    NopRouter ignores SetRoutes and its GetRoutes reports 0/100 from status.iterations.
    """
    spec = FlaggerPolicySpec.model_validate(case["spec"])
    policy = FlaggerCanary(spec)
    nop = spec.provider == "kubernetes"
    state = policy.initial_state()
    mesh = Mesh()
    t = 0.0
    rows: list[Row] = []
    all_actions: list[tuple] = []
    for n, (given, want) in enumerate(case["ticks"], start=1):
        nt = policy.next_tick(state, t)
        t = nt if nt is not None else t + policy.analysis.analysis_interval
        if nop:
            routes = Routes(100 if policy.status(state)["iterations"] > 0 else 0)
        else:
            routes = mesh.routes()
        metrics = RecordedMetrics(given.metrics)
        retried = {key: iter(outcomes) for key, outcomes in given.retries.items()}
        obs = Observation(
            t=t,
            tick=n,
            metrics=metrics,
            routes=routes,
            canary=given.canary,
            primary=given.primary,
            webhooks=given.webhooks,
            webhook_latency=given.latency,
            webhook_attempt=lambda key, k, at, retried=retried: next(retried[key]),
        )
        state, actions = policy.step(state, obs)
        all_actions.append(actions)
        for a in actions:
            if isinstance(a, SetWeights) and not nop:
                mesh = Mesh(a.canary_weight, a.mirrored, a.matched, a.mirror_percent)
        status = policy.status(state)
        if nop:
            router = "100" if status["iterations"] > 0 else "0"
        else:
            router = mesh.show()
        hooks = tuple(f"{a.name}:{'ok' if a.ok else 'fail'}" for a in actions if isinstance(a, HookCalled))
        rows.append(
            Row(
                n,
                status["phase"],
                status["canary_weight"],
                status["failed_checks"],
                status["iterations"],
                router,
                _did(actions),
                None if want.hooks is None else hooks,
                None if want.reads is None else tuple(metrics.reads),
                None if want.t is None else t,
            )
        )
    return rows, all_actions


def _param(case: dict[str, Any]):
    marks = []
    if "xfail" in case:
        marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
    return pytest.param(case, id=case["id"], marks=marks)


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    for c in CASES:
        assert c["source"] and c["ticks"]
        assert [want.tick for _, want in c["ticks"]] == list(range(1, len(c["ticks"]) + 1)), c["id"]


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_conformance(case):
    rows, actions = play(case)
    expected = [want for _, want in case["ticks"]]
    assert rows == expected
    if case.get("set_routes") is False:
        assert not [a for tick in actions for a in tick if isinstance(a, SetWeights)], (
            "upstream calls no SetRoutes in this trace"
        )


# -- routing details that change who is hurt (issue 16, "Missing" 6; helper "routing") --------------
#
# The world counts harm until live traffic leaves the canary (the ``SetWeights`` a policy
# emits, not the ``Rollback``), makes weighted routing sticky under session affinity
# (``MetricTargets.session_affinity_s``) and retries failing requests as the mesh does
# (``MetricTargets.retries``). These cases pin what the Flagger policy must declare and
# emit for that; the ones it does not yet are xfail(strict=True) with what upstream does.


def test_routing_rollback_routes_to_primary_before_anything_else():
    """pkg/controller/scheduler.go rollback: ``meshRouter.SetRoutes(canary, primaryWeight,
    0)`` first (and return on error), then scale to zero and SyncStatus{Failed}: traffic
    leaves the canary in the very tick that decides. The rollback tick's actions route 0
    before the Rollback."""
    spec = FlaggerPolicySpec.model_validate({"analysis": analysis(threshold=1)})
    policy = FlaggerCanary(spec)
    state, mesh = policy.initial_state(), Mesh()
    for n in range(1, 10):
        obs = Observation(t=60.0 * n, tick=n, metrics=dict(BAD_SR), routes=mesh.routes())
        state, actions = policy.step(state, obs)
        for a in actions:
            if isinstance(a, SetWeights):
                mesh = Mesh(a.canary_weight, a.mirrored, a.matched, a.mirror_percent)
        kinds = [type(a) for a in actions]
        if Rollback in kinds:
            first_zero = next(i for i, a in enumerate(actions) if isinstance(a, SetWeights) and a.canary_weight == 0)
            assert first_zero < kinds.index(Rollback)
            assert not any(isinstance(a, SetWeights) and a.once_primary_ready for a in actions)
            return
    raise AssertionError("no rollback")


@pytest.mark.parametrize(
    ("affinity", "ages"),
    [
        ({"cookieName": "canary"}, (86400.0, 0.0)),
        ({"cookieName": "c", "maxAge": 600}, (600.0, 0.0)),
        ({"cookieName": "c", "primaryCookieName": "p"}, (86400.0, 60.0)),
    ],
)
def test_routing_session_affinity_is_declared(affinity, ages):
    """pkg/apis/flagger/v1beta1/canary.go SessionAffinity.GetMaxAge: 0 -> 86400;
    pkg/router/istio.go getSessionAffinityRouteRules: the primary cookie's Max-Age is the
    analysis interval (here 1m)."""
    spec = FlaggerPolicySpec.model_validate({"analysis": analysis(sessionAffinity=affinity)})
    targets = FlaggerCanary(spec).metric_targets()
    assert (targets.session_affinity_s, targets.session_affinity_primary_s) == ages


def test_routing_service_retries_are_declared():
    """An Istio HTTPRetry: attempts 3, perTryTimeout 1s, retryOn "5xx" (pkg/router/istio.go:
    ``Retries: canary.Spec.Service.Retries`` on every route); routers other than Istio's do
    not take it here."""
    from sim.policies.base import MeshRetries

    spec = FlaggerPolicySpec.model_validate(
        {"service": {"retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"}}, "analysis": analysis()}
    )
    assert FlaggerCanary(spec).metric_targets().retries == MeshRetries(3, "5xx", 1.0)


def test_routing_is_declared_only_where_the_router_writes_it():
    """Session affinity on a router that writes no cookie routes (linkerd's TrafficSplit),
    and retries on one that takes no HTTPRetry: routed by weight, every try once."""
    spec = FlaggerPolicySpec.model_validate(
        {
            "provider": "linkerd",
            "service": {"retries": {"attempts": 3, "retryOn": "5xx"}},
            "analysis": analysis(sessionAffinity={"cookieName": "c"}),
        }
    )
    targets = FlaggerCanary(spec).metric_targets()
    assert (targets.session_affinity_s, targets.retries) == (0.0, None)
    gateway = FlaggerPolicySpec.model_validate(
        {"provider": "gatewayapi:v1", "analysis": analysis(sessionAffinity={"cookieName": "c", "maxAge": 60})}
    )
    assert FlaggerCanary(gateway).metric_targets().session_affinity_s == 60.0
