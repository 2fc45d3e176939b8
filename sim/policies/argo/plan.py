"""What one Argo reconcile needs that depends only on the spec, derived once per policy.

``ArgoRollout.step`` and ``next_tick`` run at every tick of every simulated rollout, so
the facts the controller reads off the Rollout spec at each reconcile (which kind each
canary step is, its pause duration and analysis run key, the weight a traffic router
holds before it, the resolved analyses, the canary and stable pods of each weight) are
worked out once, on first use, into an :class:`ArgoPlan` the policy caches. The plan
holds plain data and immutable actions only, so a policy stays picklable (joblib/loky,
Dask) with or without it, and the actions it hands out may be shared between ticks and
rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.analyses import resolve_analysis
from sim.policies.argo.experiment import run_kind as experiment_run_kind
from sim.policies.argo.spec import (
    ArgoPolicySpec,
    CanaryStep,
    CanaryStrategy,
    ReplicaProgressThreshold,
    SetCanaryScale,
)
from sim.policies.argo.templates import ArgoMetric, RolloutAnalysis
from sim.policies.base import Finish, HookCalled, Promote, ScaleUp
from sim.policies.flagger.plan import set_weights

MANUAL = "manual-promotion"
SCALE_UP, PROMOTE, NO_WEIGHT = ScaleUp(), Promote(), set_weights(0)
FINISH_HEALTHY, FINISH_DEGRADED = Finish("Healthy"), Finish("Degraded")
_MANUAL_CALLED = {True: HookCalled(MANUAL, "manual", True), False: HookCalled(MANUAL, "manual", False)}

Analyses = dict[str, tuple[tuple[ar.MetricSpec, ...], dict[str, ArgoMetric]]]


def manual_called(ok: object) -> HookCalled:
    """``HookCalled(manual-promotion, manual, ok)``, shared when ``ok`` is a bool."""
    if ok is True or ok is False:
        return _MANUAL_CALLED[ok]
    return HookCalled(MANUAL, "manual", ok)  # type: ignore[arg-type]  # recorded as given


class StepPlan(NamedTuple):
    """One canary step as ``completedCurrentCanaryStep`` and the reconcile read it."""

    step: CanaryStep
    key: str  # "step:<index>": the kind of its analysis run
    scales: bool  # completes as setWeight or setCanaryScale: at the desired pod counts
    pause: bool
    pause_s: float | None  # a timed pause's duration (None: none, or pause: {})
    manual: bool  # pause: {}: only a person lifts it
    analysis: bool  # completes as an analysis step: when its run is Successful
    has_run: bool  # holds an analysis with templates (a run is started, whatever it completes as)


class ArgoPlan(NamedTuple):
    """The spec-derived parameters of a reconcile, in the policy's own terms."""

    canary: bool
    steps: tuple[StepPlan, ...]
    reconciles: int  # reconciles at one instant at most
    background: tuple[ar.MetricSpec, ...] | None  # the background analysis' metrics, if any
    starting_step: int  # its startingStep
    traffic_routing: bool
    routed_before: tuple[int, ...]  # per step index (0..len(steps)): the last setWeight before it
    pods: tuple[tuple[int, int], ...]  # desired (canary, stable) pods for weights 0-100
    replicas: int
    max_surge: int
    analyses: Analyses
    #: Per step index (0..len(steps)): the setCanaryScale in force (``UseSetCanaryScale``:
    #: the last one at or before the index, unless it is matchTrafficWeight; routing only).
    canary_scale: tuple[SetCanaryScale | None, ...] = ()
    min_pods: int | None = None  # minPodsPerReplicaSet (routing only)
    dynamic_stable: bool = False  # dynamicStableScale (routing only)
    progress_threshold: ReplicaProgressThreshold | None = None
    #: Before 1.8.2 (argo-rollouts #3873) needsNewAnalysisRun replaced an Inconclusive run
    #: during a pause step instead of pausing the rollout.
    new_run_in_pause_step: bool = False


def resolve_analyses(spec: ArgoPolicySpec, cluster: Mapping[str, str] | None = None) -> Analyses:
    """The spec's analyses that start runs, resolved (``resolve_analysis``, with what
    ``valueFrom`` arguments read from ``cluster``), by run kind: ``background`` and
    ``step:<index>`` for a canary, ``pre`` and ``post`` for blue/green."""
    s = spec.strategy
    out: Analyses = {}

    def add(kind: str, analysis: RolloutAnalysis | None) -> None:
        if analysis is not None and analysis.templates:
            out[kind] = resolve_analysis(analysis, spec.templates, spec.clusterTemplates, cluster)

    if s.canary is not None:
        add("background", s.canary.analysis)
        for i, st in enumerate(s.canary.steps):
            add(f"step:{i}", st.analysis)
            if st.experiment is not None:  # issue 16: an experiment's AnalysisRuns
                for a, analysis in zip(st.experiment.analyses, st.experiment.rollout_analyses(), strict=True):
                    add(experiment_run_kind(i, a.name), analysis)
    elif s.blueGreen is not None:
        add("pre", s.blueGreen.prePromotionAnalysis)
        add("post", s.blueGreen.postPromotionAnalysis)
    return out


def max_surge(c: CanaryStrategy, replicas: int) -> int:
    """``maxSurge`` in pods (default 25%, rounded up)."""
    v = (c.model_extra or {}).get("maxSurge", "25%")
    if isinstance(v, str) and v.endswith("%"):
        return math.ceil(replicas * float(v[:-1]) / 100)
    return int(v)


def replica_counts(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """Canary and stable pods approximating ``weight`` percent (utils/replicaset/canary.go,
    ``approximateWeightedCanaryStableReplicaCounts``): the candidates rounding the canary
    count up or down, with one surge pod when allowed, the closest to the weight wins."""

    def tied(total: int) -> bool:
        return math.modf(total * weight / 100)[0] == 0.5

    def delta(canary: int, total: int) -> float:
        return abs(canary * 100 / total - weight)

    ceil_c, floor_c = math.ceil(replicas * weight / 100), math.floor(replicas * weight / 100)
    zero_ok = weight in (0, 100) or (replicas == 1 and max_surge == 0)
    options = []
    if ceil_c < replicas or zero_ok:
        options.append((ceil_c, replicas))
    if not tied(replicas) and (floor_c != 0 or zero_ok):
        options.append((floor_c, replicas))
    if max_surge > 0:
        options.append((ceil_c, replicas + 1))
        if not tied(replicas + 1) and (floor_c != 0 or zero_ok):
            options.append((floor_c, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for opt in options[1:]:
        if delta(*opt) < delta(*best):
            best = opt
    return best[0], best[1] - best[0]


def _at_least(count: int, min_pods: int | None, replicas: int) -> int:
    """``CheckMinPodsPerReplicaSet``: a ReplicaSet that has pods has at least
    ``minPodsPerReplicaSet`` of them (capped at ``spec.replicas``)."""
    if count == 0 or min_pods is None:
        return count
    return max(count, min(min_pods, replicas))


def routed_pods(
    replicas: int,
    weight: int,
    *,
    min_pods: int | None = None,
    dynamic: bool = False,
    explicit: int | None = None,
    routed: int | None = None,
) -> tuple[int, int]:
    """Canary and stable pods with a traffic router (``CalculateReplicaCountsForTrafficRoutedCanary``,
    ``utils/replicaset/canary.go``): the canary ``trafficWeightToReplicas`` (ceil) of the
    weight, or the ``explicit`` count of a ``setCanaryScale.replicas``; the stable at full
    size, or with ``dynamic`` (dynamicStableScale) the larger of the pods its desired and
    its ``routed`` (current) share need; both at least ``min_pods`` when they have pods."""
    if explicit is not None:
        canary = explicit
    else:
        canary = _at_least(math.ceil(weight * replicas / 100), min_pods, replicas)
    if not dynamic:
        return canary, replicas
    stable = math.ceil((100 - weight) * replicas / 100)
    if routed is not None:
        stable = max(stable, math.ceil((100 - routed) * replicas / 100))
    return _at_least(canary, min_pods, replicas), _at_least(stable, min_pods, replicas)


def desired_pods(p: ArgoPlan, weight: int, step_index: int | None = None, routed: int | None = None) -> tuple[int, int]:
    """Canary and stable pods for a weight at a step (``GetCanaryReplicasOrWeight``): with a
    traffic router ``routed_pods``, a ``setCanaryScale`` in force at ``step_index`` setting
    the canary's count or weight; else ``CalculateReplicaCountsForBasicCanary``
    (``utils/replicaset/canary.go``). ``routed``: the router's current weight (read by
    dynamicStableScale only)."""
    explicit = None
    if p.canary_scale and step_index is not None:
        sc = p.canary_scale[min(step_index, len(p.canary_scale) - 1)]
        if sc is not None:
            if sc.replicas is not None:
                explicit, weight = sc.replicas, 0
            elif sc.weight is not None:
                weight = sc.weight
    if explicit is None and not p.dynamic_stable and type(weight) is int and 0 <= weight <= 100:
        return p.pods[weight]
    if not p.traffic_routing:
        return replica_counts(p.replicas, weight, p.max_surge)
    return routed_pods(
        p.replicas, weight, min_pods=p.min_pods, dynamic=p.dynamic_stable, explicit=explicit, routed=routed
    )


def progress_met(p: ArgoPlan, available: int, desired: int) -> bool:
    """``ReplicaProgressThresholdMet`` (``utils/replicaset/canary.go``): all ``desired``
    pods available, or, with ``replicaProgressThreshold``, that percentage of them
    (0 desired: met) or that many pods."""
    th = p.progress_threshold
    if th is None or th.value < 0:
        return available >= desired
    if th.type == "Percent":
        return desired == 0 or available * 100 / desired >= th.value - 1e-10
    return available >= th.value


def _canary_scales(c: CanaryStrategy) -> tuple[SetCanaryScale | None, ...]:
    """``UseSetCanaryScale`` at each step index (None past the last step)."""
    out: list[SetCanaryScale | None] = []
    current: SetCanaryScale | None = None
    for st in c.steps:
        if st.setCanaryScale is not None:
            current = None if st.setCanaryScale.matchTrafficWeight else st.setCanaryScale
        out.append(current)
    return (*out, None)


def build_plan(spec: ArgoPolicySpec, analyses: Analyses, max_reconciles: int) -> ArgoPlan:
    """The plan of a policy: its spec, its resolved analyses (by run kind) and the
    reconciles allowed at one instant before the steps are counted."""
    c = spec.strategy.canary
    steps: list[StepPlan] = []
    routed_before = [0]
    for i, st in enumerate(c.steps if c is not None else ()):
        key = f"step:{i}"
        pause_s = st.pause.duration if st.pause is not None else None
        kind = st.kind  # a combined step completes as its first kind (completedCurrentCanaryStep)
        steps.append(
            StepPlan(
                st,
                key,
                kind in ("setWeight", "setCanaryScale"),
                kind == "pause",
                pause_s,
                st.pause is not None and pause_s is None,
                kind == "analysis",
                key in analyses,
            )
        )
        routed_before.append(st.setWeight if st.setWeight is not None else routed_before[-1])
    routing = c is not None and c.trafficRouting is not None
    surge = max_surge(c, spec.replicas) if c is not None and not routing else 0
    min_pods = c.minPodsPerReplicaSet if c is not None and routing else None
    bg = c.analysis if c is not None else None
    return ArgoPlan(
        canary=c is not None,
        steps=tuple(steps),
        reconciles=max_reconciles + 2 * len(steps),
        background=analyses["background"][0] if "background" in analyses else None,
        starting_step=(bg.startingStep or 0) if bg is not None else 0,
        traffic_routing=routing,
        routed_before=tuple(routed_before),
        pods=tuple(
            routed_pods(spec.replicas, w, min_pods=min_pods) if routing else replica_counts(spec.replicas, w, surge)
            for w in range(101)
        )
        if c is not None
        else (),
        replicas=spec.replicas,
        max_surge=surge,
        analyses=analyses,
        canary_scale=_canary_scales(c) if c is not None and routing else (),
        min_pods=min_pods,
        dynamic_stable=c is not None and routing and c.dynamicStableScale,
        progress_threshold=c.replicaProgressThreshold if c is not None else None,
        new_run_in_pause_step=spec.controller_version < (1, 8, 2),
    )
