"""Argo Rollouts (canary steps and blue/green) as a pure state machine.

One ``step`` is one reconcile of the rollout controller (argoproj/argo-rollouts
``rollout/canary.go``, ``rollout/bluegreen.go``, ``rollout/analysis.go``,
``rollout/pause.go``). AnalysisRuns follow ``sim.policies.argo.analysis_run`` (``analysis/analysis.go``);
a run takes its first measurement when it is created. The controller reacts to events;
here the rollout reconciles when a measurement or a pause expiry is due, and otherwise
every ``RESYNC_S`` (workload readiness and manual promotion are seen then).

Canary: each step completes as ``completedCurrentCanaryStep`` says (``setWeight`` once
the canary is available; ``pause: {duration}`` after it; ``pause: {}`` on manual
promotion; an ``analysis`` step when its run is Successful; routes at once). A step or
background run that ends Failed or Error aborts (weight 0, Degraded); Inconclusive
adds the ``InconclusiveAnalysis`` pause condition and halts ReplicaSet scaling until a
manual promotion, which starts a new run (``needsNewAnalysisRun``). When all steps are
done the rollout is fully promoted (Healthy). Pauses are kept as upstream keeps them:
``status.pauseConditions`` plus ``status.controllerPause``; so, as upstream does, a timed
pause still expires while an inconclusive pause holds, and with ``controllerPause`` set
the pause steps after it count as resumed (``CompletedCanaryPauseStep``); only a step
that needs pods the halted scaling does not create stops that cascade.

Blue/green: no live traffic reaches the new version while it is previewed; the
pre-promotion run starts when it is available; the controller pause is added only after
that run succeeds (when auto promotion is off or delayed); the active switch sends all
live traffic to it; a post-promotion run that fails switches back (Degraded).

Manual promotion (``kubectl argo rollouts promote``) is the webhook outcome
``manual-promotion`` (scripted in the scenario; default: nobody promotes).

A ``judge`` (pdsim's extension, ``sim.policies.judges``) works as a background analysis of
a canary that never stops: at every reconcile after the canary started it looks at both
versions' counters; ``reject`` aborts like a failed background run, ``accept`` promotes
fully (as ``kubectl argo rollouts promote --full``). Its other verdicts change nothing:
an Argo rollout has no failed-check counter for them to feed. Blue/green previews get no
live traffic, so a judge is not consulted there.

Speed: ``step`` and ``next_tick`` run at every tick of every simulated rollout, so what
depends only on the spec is derived once into a cached plan (``sim.policies.argo.plan``),
states are copied by the frozen-state copy device (``sim.policies.frozen``), a reconcile
that changes nothing hands back the state it was given, and constant actions are shared.
Without a judge or a Kayenta metric the policy is stepped by class (``steps_by_class``,
``observation_keys``: runs with equal states and equal measurement outcomes share one
step, ``sim.policies.argo.class_keys``); ``next_tick`` remembers the due times of the last
state it was asked about, which a class's runs share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from sim.policies.argo import analysis_run as ar
from sim.policies.argo import experiment as argo_experiment
from sim.policies.argo import kayenta as argo_kayenta
from sim.policies.argo.class_keys import MetricOutcomes
from sim.policies.argo.plan import (
    FINISH_DEGRADED,
    FINISH_HEALTHY,
    MANUAL,
    NO_WEIGHT,
    PROMOTE,
    SCALE_UP,
    Analyses,
    ArgoPlan,
    StepPlan,
    build_plan,
    desired_pods,
    manual_called,
    progress_met,
    resolve_analyses,
)
from sim.policies.argo.spec import COMPLETION_ORDER, ArgoPolicySpec, CanaryStep
from sim.policies.argo.templates import ArgoMetric, RolloutAnalysis
from sim.policies.base import (
    DEFAULT_TARGETS,
    Action,
    BatchObservation,
    HookCalled,
    MetricQuery,
    MetricTargets,
    Observation,
    Policy,
    PolicyTags,
    Rollback,
    ScaleUp,
    SetWeights,
)
from sim.policies.flagger.plan import set_weights
from sim.policies.frozen import build, replace
from sim.policies.judges import Judge, JudgeData, make_judge
from sim.policies.judges.kayenta import KayentaJudge
from sim.policies.names import rollout_hashes
from sim.units import format_duration, parse_duration

RESYNC_S = 15.0
PROGRESSING, PAUSED, DEGRADED, HEALTHY = "Progressing", "Paused", "Degraded", "Healthy"
TERMINAL = frozenset({DEGRADED, HEALTHY})
STEP_PAUSE, INCONCLUSIVE_PAUSE, BLUE_GREEN_PAUSE = "CanaryPauseStep", "InconclusiveAnalysis", "BlueGreenPause"
#: Reconciles at one instant at most: each status update triggers the next reconcile
#: at once upstream; a rollout settles after a few per step.
_MAX_RECONCILES = 8
_RANGE = re.compile(r"\[(\d+(?:\.\d+)?(?:ms|s|m|h|d))\]")


@dataclass(frozen=True)
class Run:
    """An AnalysisRun of the rollout: which analysis it runs and its state."""

    kind: str  # background | step:<index> | pre | post
    state: ar.AnalysisRunState


@dataclass(frozen=True)
class ArgoState:
    """The rollout's status as the controller keeps it.

    Pausing follows ``status.pauseConditions`` and ``status.controllerPause`` exactly
    (``rollout/pause.go``): several conditions can hold at once, ``controllerPause``
    outlives a condition removed while another remains, and a pause step whose condition
    is absent while ``controllerPause`` is set counts as resumed (``CompletedCanaryPauseStep``).

    Equality (class stepping, ``BatchObservation``) leaves out the display-only fields:
    ``event`` (the trace's text of the last reconcile that did something; decisions never
    read it) and ``judge_detail`` (the judge's last statistics, for the trace; the judge's
    own ``judge`` state is compared). The AnalysisRuns leave out their measured values and
    messages (``sim.policies.argo.analysis_run``).
    """

    phase: str = PROGRESSING
    step_index: int = 0
    weight: int = 0  # status.canary weight the steps ask for
    routed: int = 0  # what the router holds (waits for an available canary)
    started: bool = False  # the new ReplicaSet was created
    conditions: tuple[tuple[str, float], ...] = ()  # status.pauseConditions: (reason, startTime)
    controller_pause: bool = False  # status.controllerPause
    canary_pods: tuple[int, int] = (0, 0)  # canary and stable pods as last scaled (halted while inconclusive)
    runs: tuple[Run, ...] = ()
    switched: bool = False  # blue/green: active service points at the new RS
    full_scale: bool = False  # blue/green: gates passed, preview scaled to full size
    event: str = field(default="", compare=False)
    judge: object = None  # the judge's own (immutable) state
    judge_detail: tuple[tuple[str, object], ...] = field(default=(), compare=False)  # for the trace
    experiment: argo_experiment.ExperimentState | None = None  # the current experiment step's (issue 16)
    #: The managed routes in place (``setHeaderRoute``/``setMirrorRoute`` names; "" for
    #: none) and the mirror's percentage: every weight change carries them, as the
    #: router keeps them across ``SetWeight`` calls (issue 16).
    header_route: str = ""
    mirror_route: str = ""
    mirror_percent: float = 100.0
    #: The Progressing condition's last update (``RolloutProgressing``): when the update last
    #: made progress, and what it had then (the progress key, and the available canary pods).
    progress_at: float = 0.0
    progress_key: tuple[object, ...] = ()
    progress_available: int = 0

    # Plain loops, not generator expressions: these run several times per tick.
    def run(self, kind: str) -> Run | None:
        for r in self.runs:
            if r.kind == kind:
                return r
        return None

    def without(self, kind: str) -> tuple[Run, ...]:
        return tuple([r for r in self.runs if r.kind != kind])

    def condition(self, reason: str) -> float | None:
        """Start time of the pause condition ``reason`` (``getPauseCondition``), or None."""
        for r, start in self.conditions:
            if r == reason:
                return start
        return None


#: Argo ``trafficRouting`` kinds -> the exporter whose series their metrics come from
#: (``sim.world.exporters``). SMI's reference implementations are Linkerd and OSM; ALB and
#: Ambassador publish no per-version Prometheus series pdsim simulates, so their templates
#: need bindings.
ARGO_ROUTERS = {
    "istio": "istio",
    "nginx": "nginx",
    "smi": "linkerd",
    "apisix": "apisix",
    "traefik": "traefik",
    "plugins": "istio",
}


class ArgoRollout(Policy):
    """An Argo Rollout with its AnalysisTemplates.

    Args:
        spec: the ``argo:`` policy (strategy, replicas, templates).
        name: label of the policy in results.
    """

    terminal_phases = TERMINAL
    #: The trace gets a line when the status changes or something was done, not at every
    #: resync (docs/architecture.md section 6).
    trace_on_change = True

    def __init__(self, spec: ArgoPolicySpec, name: str = "argo") -> None:
        self.spec = spec
        self.name = name

    # -- analyses ----------------------------------------------------------------------------

    @cached_property
    def _analyses(self) -> Analyses:
        """Resolved analyses by kind (``step:<index>`` for inline steps)."""
        targets = self.metric_targets()
        stable, canary = rollout_hashes(targets.target)
        # What the Rollout's valueFrom arguments read from the cluster: the world's names
        # (argo-rollouts utils/analysis/factory.go BuildArgumentsForRolloutAnalysisRun).
        cluster = {
            "podTemplateHashValue/Latest": canary,
            "podTemplateHashValue/Stable": stable,
            "fieldRef/metadata.name": targets.target,
            "fieldRef/metadata.namespace": targets.namespace,
        }
        return resolve_analyses(self.spec, cluster)

    @cached_property
    def _plan(self) -> ArgoPlan:
        """Everything a reconcile needs that depends only on the spec (built on first use)."""
        return build_plan(self.spec, self._analyses, _MAX_RECONCILES)

    def describe(self) -> list[str]:
        """A short human summary of the strategy settings, one line per item, e.g.
        ``Argo canary: steps setWeight 20, pause 5m; background analysis success-rate from
        step 1; 5 replicas``. The metric checks are not included (see ``queries``)."""
        spec = self.spec
        c, bg = spec.strategy.canary, spec.strategy.blueGreen
        parts: list[str] = []
        if c is not None:
            kind = "Argo canary"
            parts.append("steps " + (", ".join(_describe_step(st) for st in c.steps) or "none"))
            if c.analysis is not None and c.analysis.templates:
                start = f" from step {c.analysis.startingStep}" if c.analysis.startingStep else ""
                parts.append(f"background analysis {_templates(c.analysis)}{start}")
            if c.trafficRouting is None:
                parts.append("no traffic router (weights by pod counts)")
        elif bg is not None:
            kind = "Argo blue/green"
            if bg.prePromotionAnalysis is not None and bg.prePromotionAnalysis.templates:
                parts.append(f"pre-promotion analysis {_templates(bg.prePromotionAnalysis)}")
            if not bg.autoPromotionEnabled:
                parts.append("promoted by hand")
            elif bg.autoPromotionSeconds > 0:
                parts.append(f"promoted automatically after {format_duration(bg.autoPromotionSeconds)}")
            else:
                parts.append("promoted automatically")
            if bg.postPromotionAnalysis is not None and bg.postPromotionAnalysis.templates:
                parts.append(f"post-promotion analysis {_templates(bg.postPromotionAnalysis)}")
        preview = bg.previewReplicaCount if bg is not None else None
        parts.append(
            f"{spec.replicas} replica{'s' if spec.replicas != 1 else ''}"
            + (f" (preview {preview})" if preview is not None else "")
        )
        return [f"{kind}: {'; '.join(parts)}"]

    def metric_targets(self) -> MetricTargets:
        """The names its queries select: both ReplicaSets of the one Rollout, the stable's
        and the canary's Services (``stableService``/``canaryService``; blue-green:
        ``activeService``/``previewService``), the exporter of the first ``trafficRouting``
        kind (none, a replica-based canary: Istio's sidecars, the default)."""
        s = self.spec.strategy
        strategy = s.canary if s.canary is not None else s.blueGreen
        extra = (strategy.model_extra or {}) if strategy is not None else {}
        routing = list((s.canary.trafficRouting or {}) if s.canary is not None else {})
        provider = next((ARGO_ROUTERS[k] for k in routing if k in ARGO_ROUTERS), DEFAULT_TARGETS.provider)
        stable = extra.get("stableService") or extra.get("activeService") or ""
        canary = extra.get("canaryService") or extra.get("previewService") or ""
        return MetricTargets(
            provider=provider,
            controller="argo",
            target=self.name or DEFAULT_TARGETS.target,
            service=str(stable),
            canary_service=str(canary),
            replicas=self.spec.replicas,
            live_via_stable=s.blueGreen is not None,
        )

    def queries(self) -> list[MetricQuery]:
        """Prometheus metrics, keyed by metric name; an analysis whose arguments make a
        metric's query differ from an earlier analysis's (pre- and post-promotion runs of
        one template on the preview and the active Service) reads it under
        ``<run kind>/<metric name>``."""
        return list(self._queries[0].values())

    @cached_property
    def _queries(self) -> tuple[dict[str, MetricQuery], dict[tuple[str, str], str]]:
        """The queries by key, and the key each (run kind, metric name) reads."""
        by_key: dict[str, MetricQuery] = {}
        keys: dict[tuple[str, str], str] = {}
        for kind, (_, metrics) in self._analyses.items():
            for m in metrics.values():
                if m.provider_type != "prometheus":
                    continue
                query = str(m.provider["prometheus"].get("query", ""))
                key = next((k for k, q in by_key.items() if q.bindings == (m.name,) and q.query == query), None)
                if key is None:
                    key = m.name if m.name not in by_key else f"{kind}/{m.name}"
                    rng = _RANGE.search(query)
                    window = parse_duration(rng.group(1)) if rng else 60.0
                    by_key[key] = MetricQuery(key, "custom", window, bindings=(m.name,), query=query)
                keys[(kind, m.name)] = key
        return by_key, keys

    def matches(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers matches a ``setHeaderRoute`` of the steps."""
        low = {k.lower(): v for k, v in headers.items()}
        for st in self.spec.strategy.canary.steps if self.spec.strategy.canary else []:
            route = st.setHeaderRoute
            if route is None or not route.match:
                continue
            if all(_header_ok(low.get(h.headerName.lower()), h.headerValue) for h in route.match):
                return True
        return False

    def route_matches(self, route: str, request: dict[str, str]) -> bool:
        """Whether a request matches the managed route named ``route``: a
        ``setHeaderRoute``'s header matches all hold, or one entry of a
        ``setMirrorRoute``'s ``match`` holds entirely (method, path, headers; Istio's
        ``HTTPMatchRequest`` from ``trafficrouting/istio/istio.go`` ``createMirrorRoute``)."""
        low = {k.lower(): v for k, v in request.items()}
        for st in self.spec.strategy.canary.steps if self.spec.strategy.canary else []:
            if st.setHeaderRoute is not None and st.setHeaderRoute.name == route and st.setHeaderRoute.match:
                return all(_header_ok(low.get(h.headerName.lower()), h.headerValue) for h in st.setHeaderRoute.match)
            if st.setMirrorRoute is not None and st.setMirrorRoute.name == route and st.setMirrorRoute.match:
                return any(_route_match_ok(m, low) for m in st.setMirrorRoute.match)
        return False

    # -- the policy protocol ----------------------------------------------------------

    def initial_state(self) -> ArgoState:
        return ArgoState()

    def next_tick(self, state: ArgoState, t: float) -> float | None:
        if state.phase in TERMINAL:
            return None
        if not state.started:
            return t  # the spec change is reconciled at once
        memo = self._due_memo
        if memo is not None and memo[0] is state:  # a class's runs share their state object
            dues = memo[1]
        else:
            dues = self._dues(state)
            self._due_memo = (state, dues)
        # The resync, or what comes before it. Only what lies ahead: an expiry already
        # past (e.g. a pause held by an inconclusive run) must not pin the clock.
        best = t + RESYNC_S
        for due in dues:
            if t < due < best:
                best = due
        return best

    #: The last state ``next_tick`` was asked about and its ``_dues`` (the world asks for
    #: every run of a class, all holding one state object).
    _due_memo: tuple[ArgoState, tuple[float, ...]] | None = None

    def _dues(self, state: ArgoState) -> tuple[float, ...]:
        """When a started, unfinished rollout asks to be reconciled, besides the resync:
        measurements due, the Experiment's requeue, the progress deadline, pause expiries.
        Depends on the state only (``next_tick`` keeps those after its ``t``)."""
        p = self._plan
        due: list[float] = []
        for run in state.runs:
            if not run.state.completed:  # next_due: None once the run is completed
                nd = ar.next_due(p.analyses[run.kind][0], run.state)
                if nd is not None:
                    due.append(nd)
        if state.experiment is not None:  # issue 16: the Experiment's requeue (duration, deadline)
            nd = argo_experiment.next_due(self._experiments[state.experiment.step_index], state.experiment)
            if nd is not None:
                due.append(nd)
        if not _waits_indefinitely(p, state):  # the progress deadline (requeueStuckRollout)
            due.append(state.progress_at + self.spec.progressDeadlineSeconds)
        if state.conditions:  # a pause expiry (none without a pause condition)
            step = _step(p, state)
            paused_at = state.condition(STEP_PAUSE)
            if step is not None and step.pause_s is not None and paused_at is not None:
                due.append(paused_at + step.pause_s)  # checkEnqueueRolloutDuringWait
            bg = self.spec.strategy.blueGreen
            paused_at = state.condition(BLUE_GREEN_PAUSE)
            if bg is not None and paused_at is not None and bg.autoPromotionSeconds > 0:
                due.append(paused_at + bg.autoPromotionSeconds)
        return tuple(due)

    def event(self, state: ArgoState) -> str:
        """The state's ``event``: what the reconcile that made it did."""
        return state.event

    def status(self, state: ArgoState) -> dict[str, object]:
        runs = {r.kind: _run_status(r.state) for r in state.runs}
        out: dict[str, object] = {
            "phase": state.phase,
            "canary_weight": state.weight,
            "failed_checks": sum(m.failed for r in state.runs for m in r.state.metrics),
            "iterations": 0,
            "step_index": state.step_index,
            "analysis_runs": runs,
        }
        if self.judge is not None:
            out["judge"] = dict(state.judge_detail)
        return out

    @cached_property
    def judge(self) -> Judge | None:
        """The judge of ``spec.judge`` for a canary strategy (None otherwise)."""
        if self.spec.judge is None or self.spec.strategy.canary is None:
            return None
        return make_judge(self.spec.judge)

    def step(self, state: ArgoState, obs: Observation) -> tuple[ArgoState, tuple[Action, ...]]:
        if state.phase in TERMINAL:
            return state, ()
        acts: list[Action] = []
        p = self._plan
        if p.canary:
            new = self._canary(p, state, obs, acts)
        else:
            new = self._blue_green(p, state, obs, acts)
        if new.phase not in TERMINAL:
            new = self._progress_deadline(p, new, obs, acts)
        return new, tuple(acts)

    # -- the progress deadline --------------------------------------------------------------

    def _progress_deadline(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """``progressDeadlineSeconds`` (``rollout/sync.go`` ``calculateRolloutConditions``,
        ``evaluateProgressDeadlineAbort``; ``utils/conditions/conditions.go``
        ``RolloutProgressing``, ``RolloutTimedOut``): the Progressing condition is updated
        whenever the update progresses (a step completes, pods are scaled or switched,
        more canary pods are available); while the rollout is paused or on a step that
        waits indefinitely (``isIndefiniteStep``: pause, analysis, experiment) it cannot
        time out, and resuming counts as progress. An update without progress for the
        deadline is Degraded (``ProgressDeadlineExceeded``, ``CalculateRolloutPhase``);
        with ``progressDeadlineAbort`` it is aborted too. pdsim ends a run that times out
        without abort there (unfinished): upstream stays Degraded until it progresses again."""
        waits = _waits_indefinitely(p, s)
        key = (s.step_index, s.canary_pods, s.started, s.full_scale, s.switched, waits)
        ready = obs.canary
        available = ready.available if ready.available is not None else int(ready.ready)
        if key != s.progress_key or available > s.progress_available:
            return replace(s, progress_at=obs.t, progress_key=key, progress_available=available)
        if available < s.progress_available:  # fewer pods is no progress, but the next increase is
            s = replace(s, progress_available=available)
        # The requeue at lastUpdate + deadline (requeueStuckRollout) is processed a moment after it.
        if waits or obs.t < s.progress_at + self.spec.progressDeadlineSeconds:
            return s
        reason = f"ProgressDeadlineExceeded: no progress for {format_duration(self.spec.progressDeadlineSeconds)}"
        if self.spec.progressDeadlineAbort:
            return self._abort(p, s, obs, acts, reason)
        return replace(s, phase=DEGRADED, event=f"{reason} (Degraded; no progressDeadlineAbort, so it stays stuck)")

    # -- canary -----------------------------------------------------------------------------

    def _canary(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """One instant of the rollout controller: the CLI's promote if someone runs it,
        then ``rolloutCanary`` reconciles until the status stops changing (each status
        update re-queues the rollout at once upstream)."""
        if not s.started:  # the new ReplicaSet: the first reconcile scales it (_scale)
            s = self._enter_step(p, replace(s, started=True), obs, acts)
        if s.conditions:  # no pause condition, no pause for a person to lift
            since = _human_pause(p, s)
            if since is not None and self._manual(obs, acts, since):
                s = self._promote_cli(p, s, obs, acts)  # kubectl argo rollouts promote
        if self.judge is not None:
            s = self._run_judge(p, s, obs, acts)
            if s.phase in TERMINAL:
                return s
        for _ in range(p.reconciles):
            s = self._measure(p, s, obs, acts)  # the AnalysisRun controller, between reconciles
            new = self._reconcile_canary(p, s, obs, acts)
            # Settled: nothing changed, not even the event text (equality leaves it out, and
            # a reconcile that changed only the event was followed by another one).
            if new is s or (new == s and new.event == s.event) or new.phase in TERMINAL:
                s = new
                break
            s = new
        return self._route(p, s, obs, acts)

    def _promote_cli(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """``kubectl argo rollouts promote`` (``promote.go`` ``getPatches``, default case):
        with the current step's run inconclusive, clear the pause conditions and
        ``controllerPause`` and skip the step; otherwise clear the pause conditions only,
        keeping ``controllerPause`` (so a pause step then counts as resumed and a
        background run that was inconclusive is replaced, ``needsNewAnalysisRun``)."""
        step_run = s.run(f"step:{s.step_index}")
        if step_run is not None and step_run.state.phase == ar.INCONCLUSIVE and s.controller_pause:
            s = replace(s, conditions=(), controller_pause=False, phase=PROGRESSING, event="promoted: step skipped")
            return self._advance_step(p, s, obs, acts)
        return replace(s, conditions=(), phase=PROGRESSING, event="promoted: pause conditions cleared")

    def _run_judge(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """The judge as a background analysis: reject aborts, accept promotes fully."""
        versions = obs.versions
        if versions is None:
            return s
        assert isinstance(versions, JudgeData)  # Argo is not class-stepped with a judge (no batch_judge)
        judge = self.judge
        assert judge is not None  # called only for a policy with a judge
        prior = s.judge if s.judge is not None else judge.initial_state()
        state, verdict = judge.judge(prior, versions)
        s = replace(s, judge=state, judge_detail=tuple(sorted(verdict.detail.items())))
        if verdict.reject:
            return self._abort(
                p,
                s,
                obs,
                acts,
                f"judge {judge.kind} rejected the canary: {verdict.detail.get('statistic', '')}".rstrip(": "),
            )
        if verdict.accept:
            return self._promote(p, s, obs, acts)
        return s

    def _route(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """Live traffic to the canary. With a traffic router, ``reconcileTrafficRouting``
        (``rollout/trafficrouting.go``): 0 while the canary has no available pod; the
        current step's weight once the canary is at its desired counts
        (``AtDesiredReplicaCountsForCanary``); else the last setWeight before the current
        step (past the last step: the last setWeight, until the full-size canary is
        available). Without one, the canary's share of the available pods (kube-proxy
        balances over the ready endpoints). When only ``ready`` is known and the canary
        is not ready, the router keeps what it holds."""
        if s.phase in TERMINAL:
            return s
        canary, stable = s.canary_pods
        available = _available(obs, canary)
        if available is None:
            return s
        # -- issue 16: an Experiment's canary-spec pods serve as the canary (its pods behind
        # the Rollout's Service without a router; its templates' weights with one) --
        ex = self._experiments.get(s.step_index)
        if not p.traffic_routing:
            live = min(available, canary)
            ex_canary, ex_stable = argo_experiment.production_pods(ex, s.experiment, s.step_index) if ex else (0, 0)
            want = round(100 * (live + ex_canary) / max(live + stable + ex_canary + ex_stable, 1))
        elif available == 0:
            want = 0  # "when newRS is not available or replicas num is 0. never weight to canary"
        elif self._at_desired(p, s, obs):
            want = s.weight
        else:  # "Use the previous weight since the new RS is not ready for a new weight"
            want = p.routed_before[min(s.step_index, len(p.steps))]
        if p.traffic_routing and ex is not None:
            want = min(100, want + argo_experiment.router_weight(ex, s.experiment, s.step_index)[0])
        # -- end issue 16 --
        if want != s.routed:
            acts.append(_weights(s, want))
            s = replace(s, routed=want)
        return s

    def _at_desired(self, p: ArgoPlan, s: ArgoState, obs: Observation) -> bool:
        """``AtDesiredReplicaCountsForCanary`` (``utils/replicaset/canary.go``): the canary
        scaled to the pods its step wants and all of them available
        (``ReplicaProgressThresholdMet`` without a threshold: ``allDesiredAreAvailable``);
        the stable is scaled at once here, so it is always at its count."""
        want = desired_pods(p, s.weight, s.step_index, s.routed)
        if s.canary_pods != want:
            return False
        available = _available(obs, want[0])
        return available is not None and progress_met(p, available, want[0])

    def _scale(self, p: ArgoPlan, s: ArgoState, acts: list[Action]) -> ArgoState:
        """``reconcileCanaryReplicaSets``: scale the canary (and stable) to the pods the
        current weight wants; the world starts the canary's new pods (``ScaleUp``)."""
        pods = desired_pods(p, s.weight, s.step_index, s.routed)
        if pods == s.canary_pods:
            return s
        if pods[0] != s.canary_pods[0] or not any(s.canary_pods):  # the first scale, even to 0 pods
            acts.append(ScaleUp(replicas=pods[0]))
        return replace(s, canary_pods=pods)

    def _enter_step(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """What the status and the router take from the current step (the weight and
        routes of ``reconcileTrafficRouting``). Pause conditions and step runs come from
        the reconcile that follows."""
        current = _step(p, s)
        if current is None:  # no steps: GetCurrentSetWeight reads the full weight
            return s if s.weight == 100 else replace(s, weight=100)
        step = current.step
        # A step may combine setCanaryScale/setHeaderRoute/setMirrorRoute with one of
        # setWeight/pause/analysis (validation.go hasMultipleStepsType): each applies.
        events: list[str] = []
        if step.setWeight is not None:
            s = replace(s, weight=step.setWeight)
            events.append(f"setWeight {step.setWeight}")
        if step.setCanaryScale is not None:  # the pods it sets: desired_pods at this step index
            events.append(_describe_kind(step, "setCanaryScale"))
        # A managed route with no match is removed (trafficrouting/istio.go
        # SetHeaderRoute/SetMirrorRoute: an empty match deletes the route); the router keeps
        # the others and the weights.
        if step.setHeaderRoute is not None:
            route = step.setHeaderRoute
            s = replace(s, header_route=route.name if route.match else "")
            acts.append(_weights(s, s.routed))
            events.append(f"setHeaderRoute {route.name}")
        if step.setMirrorRoute is not None:
            mirror = step.setMirrorRoute
            s = replace(
                s, mirror_route=mirror.name if mirror.match else "", mirror_percent=float(mirror.percentage or 100)
            )
            acts.append(_weights(s, s.routed))
            events.append(f"setMirrorRoute {mirror.name}")
        return replace(s, event=", ".join(events)) if events else s

    def _step_completed(self, p: ArgoPlan, s: ArgoState, obs: Observation, step: StepPlan, start: float | None) -> bool:
        """``completedCurrentCanaryStep`` of the current ``step``, read from the status
        before this reconcile (``start``: its ``CanaryPauseStep`` condition's start)."""
        if step.pause:
            # CompletedCanaryPauseStep: controllerPause without a CanaryPauseStep condition
            # reads as a resume; a timed pause expires after its duration, whatever other
            # conditions hold (the requeue at the expiry, checkEnqueueRolloutDuringWait, is
            # processed a moment after it: hence >= at the tick scheduled for it).
            if s.controller_pause and start is None:
                return True
            return step.pause_s is not None and start is not None and obs.t >= start + step.pause_s
        if step.scales:
            # AtDesiredReplicaCountsForCanary: the pods as last scaled (scaling halts while
            # an inconclusive pause holds, haltProgress) and available.
            return self._at_desired(p, s, obs)
        if step.analysis:
            run = s.run(step.key)
            return (run is None and not step.has_run) or (run is not None and run.state.phase == ar.SUCCESSFUL)
        if step.step.experiment is not None:  # issue 16: the step's Experiment is Successful
            ex = s.experiment
            return ex is not None and ex.step_index == s.step_index and ex.phase == ar.SUCCESSFUL
        return True  # setHeaderRoute, setMirrorRoute

    def _advance_step(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        # A run from a previous step is cancelled (reconcileStepBasedAnalysisRun).
        done = f"step:{s.step_index}"
        runs = s.without(done) if s.run(done) is not None else s.runs
        s = replace(s, runs=runs, step_index=s.step_index + 1)
        if s.step_index >= len(p.steps):
            # GetCurrentSetWeight past the last step: the full weight, so the canary is
            # scaled to full size; shouldFullPromote at the next reconcile.
            return replace(s, weight=100)
        return self._enter_step(p, s, obs, acts)

    def _needs_new_run(self, p: ArgoPlan, s: ArgoState, current: Run) -> bool:
        """``needsNewAnalysisRun`` (``rollout/analysis.go``) for an existing run (a missing
        one is always needed); ``AbortedAt`` is never set while the rollout still runs here
        (an abort is terminal). Since 1.8.2 (#3873) not during a pause step either."""
        in_pause_step = s.condition(STEP_PAUSE) is not None and not p.new_run_in_pause_step
        if s.controller_pause and not in_pause_step and s.condition(BLUE_GREEN_PAUSE) is None:
            return current.state.phase == ar.INCONCLUSIVE
        return False

    def _reconcile_canary(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """One ``rolloutCanary`` reconcile: analysis runs, ReplicaSets, pause step, then
        ``syncRolloutStatusCanary`` (full promotion, abort, step completion) and the pause
        conditions it persists (``CalculatePauseConditions``)."""
        if s.step_index >= len(p.steps):
            # shouldFullPromote (rollout/sync.go): all steps done, and only once the new
            # ReplicaSet's available pods reach spec.replicas (the router meanwhile holds
            # the last setWeight, _route).
            s = self._scale(p, s, acts)
            available = _available(obs, s.canary_pods[0])
            if available is not None and (available >= p.replicas or progress_met(p, available, p.replicas)):
                return self._promote(p, s, obs, acts)
            return s
        step = p.steps[s.step_index]
        # The pause conditions hold still until the status is synced at the end.
        inconclusive = s.condition(INCONCLUSIVE_PAUSE) is not None
        paused_at = s.condition(STEP_PAUSE)
        adds: list[str] = []
        # -- issue 16: reconcileExperiments, before the analysis runs as in rolloutCanary --
        s, ex_phase = self._experiment(s, obs)
        if ex_phase in (ar.FAILED, ar.ERROR):
            return self._abort(p, s, obs, acts, f"experiment phase {ex_phase.lower()}")
        # -- end issue 16 --
        s, verdicts = self._canary_runs(p, s, obs, step, inconclusive)
        for kind, phase in verdicts:
            if phase in (ar.FAILED, ar.ERROR):
                return self._abort(p, s, obs, acts, f"{kind} analysis phase {phase.lower()}")
            if phase == ar.INCONCLUSIVE:
                adds.append(INCONCLUSIVE_PAUSE)
        if ex_phase == ar.INCONCLUSIVE:  # issue 16: PauseReasonInconclusiveExperiment
            adds.append(argo_experiment.INCONCLUSIVE_EXPERIMENT)
            verdicts.append(("experiment", ex_phase))
        if adds:  # HasAddPause: sync the status and return
            return _sync_pauses(s, obs.t, adds, (), f"{verdicts[-1][0]} analysis inconclusive: paused")
        if not inconclusive:  # haltProgress: no scaling while an inconclusive pause holds
            s = self._scale(p, s, acts)
        if step.pause and not s.controller_pause and paused_at is None:
            adds.append(STEP_PAUSE)  # reconcileCanaryPause
        if self._step_completed(p, s, obs, step, paused_at):
            s = self._advance_step(p, replace(s, event=f"step {s.step_index} completed"), obs, acts)
            return _sync_pauses(s, obs.t, adds, (STEP_PAUSE,))
        return _sync_pauses(s, obs.t, adds, (), "paused" if adds else s.event)

    # -- issue 16: experiment steps (sim.policies.argo.experiment) --------------------------------

    @cached_property
    def _experiments(self) -> dict[int, argo_experiment.ExperimentPlan]:
        """The plans of the experiment steps, by step index."""
        c = self.spec.strategy.canary
        specs = {kind: specs for kind, (specs, _) in self._analyses.items()}
        deadline = getattr(self.spec, "progressDeadlineSeconds", None)  # the Experiment's is the Rollout's
        return {
            i: argo_experiment.build_plan(i, st.experiment, specs, deadline)
            for i, st in enumerate(c.steps if c is not None else ())
            if st.experiment is not None
        }

    def _experiment(self, s: ArgoState, obs: Observation) -> tuple[ArgoState, str | None]:
        """The Experiment controller, then what ``reconcileExperiments`` reads: the phase
        of the current step's Experiment (None: no experiment step, or held by an
        inconclusive analysis pause, under which no Experiment is created or read)."""
        plan = self._experiments.get(s.step_index)
        if plan is None:
            return s, None
        held = s.condition(INCONCLUSIVE_PAUSE) is not None
        current = s.experiment if s.experiment is not None and s.experiment.step_index == s.step_index else None
        if current is None and held:
            return s, None
        runs = {r.kind: r.state for r in s.runs}
        ex, changed = argo_experiment.reconcile(plan, current, obs.t, obs.canary.ready, runs)
        if ex is not s.experiment:
            s = replace(s, experiment=ex)
        if changed:
            kept = tuple(Run(r.kind, changed.pop(r.kind)) if r.kind in changed else r for r in s.runs)
            s = replace(s, runs=kept + tuple(Run(k, v) for k, v in changed.items()))
        return s, None if held else ex.phase

    # -- end issue 16 ----------------------------------------------------------------------------

    def _canary_runs(
        self, p: ArgoPlan, s: ArgoState, obs: Observation, step: StepPlan, inconclusive: bool
    ) -> tuple[ArgoState, list[tuple[str, str]]]:
        """``reconcileBackgroundAnalysisRun`` and ``reconcileStepBasedAnalysisRun``: start
        the runs that are needed, and the phases of those the rollout reacts to
        (``step``: the current step; ``inconclusive``: the InconclusiveAnalysis pause holds)."""
        verdicts: list[tuple[str, str]] = []
        if p.background is not None and s.step_index >= p.starting_step and not inconclusive:
            current = s.run("background")
            if current is None or self._needs_new_run(p, s, current):
                run = Run("background", ar.start_run("background", p.background, obs.t))
                s = replace(s, runs=s.without("background") + (run,))
            else:
                verdicts.append(("background", current.state.phase))
        if not s.conditions and step.has_run:  # an analysis step with templates
            key = step.key
            current = s.run(key)
            if current is None or self._needs_new_run(p, s, current):
                s = replace(s, runs=s.without(key) + (Run(key, ar.start_run(key, p.analyses[key][0], obs.t)),))
            else:
                verdicts.append((key, current.state.phase))
        return s, verdicts

    def _measure(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """Take the measurements due now in every run that is still running (the state
        itself when none is due)."""
        runs: list[Run] | None = None
        for i, run in enumerate(s.runs):
            specs, metrics = p.analyses[run.kind]
            if run.state.completed or not specs:
                continue
            new = ar.measure_due(specs, run.state, obs.t, lambda name: self._provide(metrics[name], obs, acts, run))  # noqa: B023 (called at once)
            if new is not run.state:
                if runs is None:
                    runs = list(s.runs)
                runs[i] = build(Run, {"kind": run.kind, "state": new})
        return s if runs is None else replace(s, runs=tuple(runs))

    def _measure_runs(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """Blue/green: measure, then react as ``reconcilePre/PostPromotionAnalysisRun``
        do: Failed or Error aborts, Inconclusive pauses."""
        s = self._measure(p, s, obs, acts)
        for run in s.runs:
            phase = run.state.phase
            if phase in (ar.FAILED, ar.ERROR):
                return self._abort(p, s, obs, acts, f"{run.kind} analysis phase {phase.lower()}")
            if phase == ar.INCONCLUSIVE and s.condition(INCONCLUSIVE_PAUSE) is None:
                return _sync_pauses(s, obs.t, (INCONCLUSIVE_PAUSE,), (), f"{run.kind} analysis inconclusive: paused")
        return s

    def _provide(self, m: ArgoMetric, obs: Observation, acts: list[Action], run: Run) -> ar.ProviderResult:
        """What the metric's provider returns now. Prometheus reads the simulated metric;
        Kayenta is judged by the replica (or scripted like a job when only a script can
        answer, as in a replay without counters). Job and web outcomes are scripted by
        ``<run>/<metric>`` (e.g. ``post/sleep-job``), metric name, or provider; with a
        scripted latency the measurement stays Running until it answers."""
        kind = m.provider_type
        if kind == "prometheus":
            return ar.prometheus_result(obs.metrics.get(self._queries[1].get((run.kind, m.name), m.name)))
        key = f"{run.kind.split(':')[0]}/{m.name}"
        keys = (key, m.name, kind)
        if kind == "kayenta" and (obs.versions is not None or not any(k in obs.webhooks for k in keys)):
            # Argo is not class-stepped with versions (no batch_judge): they are counters.
            assert obs.versions is None or isinstance(obs.versions, JudgeData)
            return self._kayenta(m, obs, run, obs.versions)
        latency = next((obs.webhook_latency[k] for k in keys if k in obs.webhook_latency), 0.0)
        last = run.state.result(m.name).last
        if latency > 0 and (last is None or last.finished_at is not None):
            return ar.ProviderPhase(ar.RUNNING, resume_at=obs.t + latency)  # started, in flight
        ok = next((obs.webhooks[k] for k in keys if k in obs.webhooks), True)
        acts.append(HookCalled(key, kind, ok))
        return ar.ProviderPhase(ar.SUCCESSFUL if ok else ar.FAILED)

    def _kayenta(self, m: ArgoMetric, obs: Observation, run: Run, versions: JudgeData | None) -> ar.ProviderResult:
        """A Kayenta judgement by the replica (``sim.policies.argo.kayenta``): ``Run``
        starts it (Running, polled after 15 s); the poll reads the score of the scope that
        ended when it started."""
        last = run.state.result(m.name).last
        if last is None or last.finished_at is not None:
            return ar.ProviderPhase(ar.RUNNING, resume_at=obs.t + argo_kayenta.RESUME_DELAY_S)
        provider = m.provider["kayenta"]
        interval = next(x.interval_s for x in self._plan.analyses[run.kind][0] if x.name == m.name)
        config = argo_kayenta.config_for(provider, self.spec.canaryConfigs)
        return argo_kayenta.judge_measurement(
            provider, config, versions, run.state.started_at, last.started_at, interval
        )

    @cached_property
    def tags(self) -> PolicyTags:
        """A judge or a Kayenta metric reads both versions' counters; the trace gets a line
        when the status changed or something was done, not at every resync. Without
        those, runs are stepped by class (``observation_keys``)."""
        judge = self.judge
        return PolicyTags(
            reads_versions=judge is not None or self.reads_versions,
            versions_latency=(judge is not None and judge.needs_latency) or self.versions_latency,
            trace_on_change=True,
            reads_vectors=True,
            steps_by_class=self._outcomes is not None,
        )

    @cached_property
    def _outcomes(self) -> tuple[tuple[str, MetricOutcomes], ...] | None:
        """What a run's key holds: per query key and distinct pair of conditions its
        metrics judge it with, the measurement's outcome (``class_keys``). None when the
        step reads more than the metrics' outcomes: a judge or a Kayenta metric reads both
        versions' counters (``Observation.versions``). Job and web metrics read only the
        scripted webhooks, which the world does not key (it steps runs one by one when a
        scenario scripts them)."""
        if self.judge is not None or self.reads_versions:
            return None
        keys = self._queries[1]
        seen: dict[tuple[str, str | None, str | None], MetricOutcomes] = {}
        for kind, (specs, metrics) in self._analyses.items():
            for spec in specs:
                if metrics[spec.name].provider_type != "prometheus":
                    continue
                pair = (keys.get((kind, spec.name), spec.name), spec.success_condition, spec.failure_condition)
                if pair not in seen:
                    seen[pair] = MetricOutcomes(spec.success_condition, spec.failure_condition)
        return tuple((query, outcomes) for (query, _, _), outcomes in seen.items())

    def observation_keys(self, batch: BatchObservation) -> np.ndarray | None:
        """Each run's key (``BatchObservation``): one column per query key and pair of
        conditions of the metrics reading it, the code (``class_keys.OUTCOME_CODES``) of the
        phase a measurement of the run's result would get. Runs with equal states and keys
        take the same measurements, so the same step. None when the policy cannot be keyed
        (``_outcomes``)."""
        outcomes = self._outcomes
        if outcomes is None:
            return None
        if not outcomes:  # no Prometheus metric: nothing read from the metrics
            return np.zeros((batch.size, 0), dtype=np.int8)
        columns = []
        for query, judged in outcomes:
            results = batch.metrics.get(query)
            if results is None:  # a query the batch does not hold: the runs' own reads are unknown
                return None
            columns.append(judged.codes(results, batch.values.get(query), batch.single.get(query)))
        return np.stack(columns, axis=1)

    @cached_property
    def reads_versions(self) -> bool:
        """Whether a metric is judged on both versions' counters (a Kayenta provider):
        the world then records them (``Observation.versions``)."""
        return any(m.provider_type == "kayenta" for _, metrics in self._analyses.values() for m in metrics.values())

    @cached_property
    def versions_latency(self) -> bool:
        """Whether such a judgement reads latency histograms (of both versions)."""
        return any(
            KayentaJudge(argo_kayenta.config_for(m.provider["kayenta"], self.spec.canaryConfigs)).needs_latency
            for _, metrics in self._analyses.values()
            for m in metrics.values()
            if m.provider_type == "kayenta"
        )

    def _manual(self, obs: Observation, acts: list[Action], since: float) -> bool:
        """Whether someone runs ``kubectl argo rollouts promote`` now, for a pause that
        began at ``since``: the ``manual-promotion`` script says whether they would (default:
        nobody does), and its ``latency`` how long after the pause they answer."""
        ok = obs.webhooks.get(MANUAL, False) and obs.t >= since + obs.webhook_latency.get(MANUAL, 0.0)
        acts.append(manual_called(ok))
        return ok

    def _terminate_runs(self, p: ArgoPlan, s: ArgoState, t: float) -> ArgoState:
        runs = [Run(run.kind, ar.terminate(p.analyses[run.kind][0], run.state, t)) for run in s.runs]
        return replace(s, runs=tuple(runs))

    def _abort(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action], reason: str) -> ArgoState:
        """``AddAbort``: canary weight 0 (blue/green: active back to stable), Degraded;
        under ``dynamicStableScale`` the router moves the weight only as the stable's pods
        are available again (``calculateDesiredWeightOnAbortOrStableRollback``)."""
        leave = SetWeights(0, once_primary_ready=True) if p.dynamic_stable and p.traffic_routing else NO_WEIGHT
        acts += (leave, Rollback(reason), FINISH_DEGRADED)
        s = self._terminate_runs(p, s, obs.t)
        return replace(
            s,
            phase=DEGRADED,
            weight=0,
            routed=0,
            step_index=0,
            switched=False,
            conditions=(),
            controller_pause=False,
            header_route="",
            mirror_route="",
            event=f"Aborted: {reason}",
        )

    def _promote(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        acts += (PROMOTE, NO_WEIGHT, FINISH_HEALTHY)
        s = self._terminate_runs(p, s, obs.t)
        return replace(
            s,
            phase=HEALTHY,
            weight=100,
            conditions=(),
            controller_pause=False,
            header_route="",
            mirror_route="",
            event="fully promoted",
        )  # promoteStable clears the pause conditions (and the managed routes go)

    # -- blue/green --------------------------------------------------------------------------

    def _blue_green(self, p: ArgoPlan, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        bg = self.spec.strategy.blueGreen
        assert bg is not None  # the plan is not a canary's
        if not s.started:
            acts.append(SCALE_UP)
            s = replace(s, started=True, event="preview ReplicaSet created")
        if not obs.canary.ready and not s.switched:
            return s
        if not s.switched:
            if "pre" in p.analyses and s.run("pre") is None:
                s = replace(s, runs=s.runs + (Run("pre", ar.start_run("pre", p.analyses["pre"][0], obs.t)),))
            s = self._measure_runs(p, s, obs, acts)
            if s.phase in TERMINAL:
                return s
            pre = s.run("pre")
            inconclusive = s.condition(INCONCLUSIVE_PAUSE)
            if inconclusive is not None:
                if not self._manual(obs, acts, inconclusive):
                    return s
                s = replace(s, phase=PROGRESSING, conditions=(), runs=s.without("pre"))
                return s
            if pre is not None and pre.state.phase != ar.SUCCESSFUL:
                return s
            # The pause is added only once the pre-promotion run succeeded.
            if (not bg.autoPromotionEnabled or bg.autoPromotionSeconds > 0) and not s.conditions and not s.full_scale:
                s = _sync_pauses(s, obs.t, (BLUE_GREEN_PAUSE,), (), "paused")
            paused_at = s.condition(BLUE_GREEN_PAUSE)
            if paused_at is not None:
                if bg.autoPromotionEnabled and bg.autoPromotionSeconds > 0:
                    if obs.t < paused_at + bg.autoPromotionSeconds:
                        return s
                elif not self._manual(obs, acts, paused_at):
                    return s
            preview = bg.previewReplicaCount
            if preview is not None and preview < self.spec.replicas and not s.full_scale:
                # reconcileActiveService switches only a saturated ReplicaSet: a preview
                # of previewReplicaCount pods first scales to full size.
                acts.append(SCALE_UP)
                return replace(
                    s,
                    phase=PROGRESSING,
                    conditions=(),
                    controller_pause=False,
                    full_scale=True,
                    event="scaling the preview to full size",
                )
            acts.append(set_weights(100))
            s = replace(
                s,
                phase=PROGRESSING,
                conditions=(),
                controller_pause=False,
                switched=True,
                weight=100,
                event="switched active service to the new ReplicaSet",
            )
            if "post" in p.analyses:
                s = replace(s, runs=s.runs + (Run("post", ar.start_run("post", p.analyses["post"][0], obs.t)),))
            else:
                return self._promote(p, s, obs, acts)
        inconclusive = s.condition(INCONCLUSIVE_PAUSE)
        if inconclusive is not None:
            if not self._manual(obs, acts, inconclusive):
                return s
            # promote clears the pause; needsNewAnalysisRun then starts a new post run.
            run = Run("post", ar.start_run("post", p.analyses["post"][0], obs.t))
            s = replace(s, phase=PROGRESSING, conditions=(), runs=s.without("post") + (run,))
        s = self._measure_runs(p, s, obs, acts)
        if s.phase in TERMINAL:
            return s
        post = s.run("post")
        if post is not None and post.state.phase == ar.SUCCESSFUL:
            return self._promote(p, s, obs, acts)
        return s


def _step(p: ArgoPlan, s: ArgoState) -> StepPlan | None:
    """The current canary step, or None past the last one (and for blue/green)."""
    return p.steps[s.step_index] if s.step_index < len(p.steps) else None


def _waits_indefinitely(p: ArgoPlan, s: ArgoState) -> bool:
    """No progress deadline now: the rollout is paused (a pause condition; resuming counts
    as progress), its current step waits indefinitely (``isIndefiniteStep``,
    ``rollout/sync.go``: pause, analysis or experiment), or a blue/green rollout has
    switched its active Service (``RolloutHealthy``: its post-promotion run cannot time out)."""
    if s.conditions or s.switched:
        return True
    step = _step(p, s)
    return step is not None and (
        step.step.pause is not None or step.step.analysis is not None or step.step.experiment is not None
    )


def _available(obs: Observation, scaled: int) -> int | None:
    """The canary's available pods: as the world counts them (all ``scaled`` pods when
    they start at once, as the reconcile their ReplicaSet's update triggers sees them),
    else (only ``ready`` known, e.g. a replay) all ``scaled`` pods when ready; None when
    unready and uncounted."""
    ready = obs.canary
    if ready.available is not None:
        return scaled if ready.ready and ready.startup_s == 0 else ready.available
    return scaled if ready.ready else None


def _human_pause(p: ArgoPlan, s: ArgoState) -> float | None:
    """Since when the rollout waits in a pause only a person lifts
    (``requiresManualAction``, ``rollout/pause.go``: an inconclusive analysis or a
    ``pause: {}`` step), or None. The scripted ``manual-promotion`` is that person."""
    step = _step(p, s)
    if step is not None and step.manual:
        waits = [t for r, t in s.conditions if r == INCONCLUSIVE_PAUSE or r == STEP_PAUSE]
    else:
        waits = [t for r, t in s.conditions if r == INCONCLUSIVE_PAUSE]
    return min(waits) if waits else None


def _sync_pauses(
    s: ArgoState, t: float, adds: Sequence[str], removes: Sequence[str], event: str | None = None
) -> ArgoState:
    """``CalculatePauseConditions``: drop ``removes``, add new ``adds`` (start now,
    ``controllerPause`` set); with no condition left, ``controllerPause`` is not
    carried over. The phase is Paused while any condition holds (``CalculateRolloutPhase``).
    The state itself when nothing changes."""
    if event is None:
        event = s.event
    if not adds and not removes:  # only the phase and controllerPause may follow
        conditions = s.conditions
        pause = s.controller_pause and bool(conditions)
        phase = PAUSED if conditions else PROGRESSING
        if pause == s.controller_pause and phase == s.phase and event == s.event:
            return s
        return replace(s, controller_pause=pause, phase=phase, event=event)
    conds = [c for c in s.conditions if c[0] not in removes]
    pause = s.controller_pause
    if adds:
        have = {r for r, _ in s.conditions}
        for reason in adds:
            if reason not in have:
                conds.append((reason, t))
                have.add(reason)
                pause = True
    if not conds:
        pause = False
    phase = PAUSED if conds else PROGRESSING
    conditions = tuple(conds)
    if conditions == s.conditions and pause == s.controller_pause and phase == s.phase and event == s.event:
        return s
    return replace(s, conditions=conditions, controller_pause=pause, phase=phase, event=event)


def _describe_step(st: CanaryStep) -> str:
    """One canary step as ``describe`` shows it, e.g. ``setWeight 20`` or ``pause 5m``; a
    combined step joins its kinds, e.g. ``setCanaryScale replicas 1 + setHeaderRoute h``."""
    return " + ".join(_describe_kind(st, k) for k in COMPLETION_ORDER if getattr(st, k) is not None)


def _describe_kind(st: CanaryStep, kind: str) -> str:
    if kind == "setWeight":
        return f"setWeight {st.setWeight}"
    if kind == "pause" and st.pause is not None:
        return (
            f"pause {format_duration(st.pause.duration)}" if st.pause.duration is not None else "pause (until promoted)"
        )
    if kind == "analysis" and st.analysis is not None:
        return f"analysis {_templates(st.analysis)}"
    if kind == "setCanaryScale" and st.setCanaryScale is not None:
        sc = st.setCanaryScale
        if sc.matchTrafficWeight:
            return "setCanaryScale matchTrafficWeight"
        return (
            f"setCanaryScale weight {sc.weight}" if sc.weight is not None else f"setCanaryScale replicas {sc.replicas}"
        )
    if kind == "setHeaderRoute" and st.setHeaderRoute is not None:
        return f"setHeaderRoute {st.setHeaderRoute.name}"
    if kind == "setMirrorRoute" and st.setMirrorRoute is not None:
        return f"setMirrorRoute {st.setMirrorRoute.name} {st.setMirrorRoute.percentage or 100}%"
    return kind


def _templates(analysis: RolloutAnalysis) -> str:
    return "+".join(ref.templateName for ref in analysis.templates)


def _weights(s: ArgoState, weight: int) -> SetWeights:
    """The router's state: ``weight`` with the managed routes in place."""
    if not s.header_route and not s.mirror_route:
        return set_weights(weight)
    return SetWeights(
        weight,
        header_route=bool(s.header_route),
        header_match=s.header_route,
        mirrored=bool(s.mirror_route),
        mirror_percent=s.mirror_percent,
        mirror_match=s.mirror_route,
    )


def _route_match_ok(match: Mapping[str, Any], request: Mapping[str, str]) -> bool:
    """One ``RouteMatch`` (``method``, ``path``, ``headers``, each a StringMatch): all hold."""
    method, path, headers = match.get("method"), match.get("path"), match.get("headers") or {}
    if method is not None and not _header_ok(request.get(":method"), method):
        return False
    if path is not None and not _header_ok(request.get(":path"), path):
        return False
    return all(_header_ok(request.get(str(name).lower()), value) for name, value in headers.items())


def _header_ok(value: str | None, match: dict[str, str]) -> bool:
    if value is None:
        return False
    if "exact" in match:
        return value == match["exact"]
    if "prefix" in match:
        return value.startswith(match["prefix"])
    if "regex" in match:
        return re.fullmatch(match["regex"], value) is not None
    return False


def _run_status(state: ar.AnalysisRunState) -> dict[str, object]:
    tot = {
        "phase": state.phase,
        "successful": 0,
        "failed": 0,
        "inconclusive": 0,
        "error": 0,
        "consecutive_error": 0,
        "count": 0,
    }
    for m in state.metrics:
        for k in ("successful", "failed", "inconclusive", "error", "consecutive_error", "count"):
            tot[k] += getattr(m, k)
    return tot
