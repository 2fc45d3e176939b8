"""Argo Rollouts (canary steps and blue/green) as a pure state machine.

One ``step`` is one reconcile of the rollout controller (argoproj/argo-rollouts
``rollout/canary.go``, ``rollout/bluegreen.go``, ``rollout/analysis.go``,
``rollout/pause.go``). AnalysisRuns follow ``sim.policies.analysis`` (``analysis/analysis.go``);
a run takes its first measurement when it is created. The controller reacts to events;
here the rollout reconciles when a measurement or a pause expiry is due, and otherwise
every ``RESYNC_S`` (workload readiness and manual promotion are seen then).

Canary: each step completes as ``completedCurrentCanaryStep`` says (``setWeight`` once
the canary is available; ``pause: {duration}`` after it; ``pause: {}`` on manual
promotion; an ``analysis`` step when its run is Successful; routes at once). A step or
background run that ends Failed or Error aborts (weight 0, Degraded); Inconclusive
pauses until a manual promotion, which starts a new run (``needsNewAnalysisRun``). When
all steps are done the rollout is fully promoted (Healthy).

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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import cached_property

from sim.policies import analysis as ar
from sim.policies.argo_spec import ArgoMetric, ArgoPolicySpec, RolloutAnalysis, substitute
from sim.policies.base import (Action, Finish, HookCalled, MetricQuery, Observation, Promote, Rollback,
                               ScaleUp, SetWeights)
from sim.policies.judges import Judge, make_judge

RESYNC_S = 15.0
PROGRESSING, PAUSED, DEGRADED, HEALTHY = "Progressing", "Paused", "Degraded", "Healthy"
TERMINAL = frozenset({DEGRADED, HEALTHY})
MANUAL = "manual-promotion"
_RANGE = re.compile(r"\[(\d+(?:\.\d+)?(?:ms|s|m|h|d))\]")


@dataclass(frozen=True)
class Run:
    """An AnalysisRun of the rollout: which analysis it runs and its state."""

    kind: str                      # background | step:<index> | pre | post
    state: ar.AnalysisRunState


@dataclass(frozen=True)
class ArgoState:
    """The rollout's status as the controller keeps it."""

    phase: str = PROGRESSING
    step_index: int = 0
    weight: int = 0                 # status.canary weight the steps ask for
    routed: int = 0                 # what the router holds (waits for an available canary)
    started: bool = False           # the new ReplicaSet was created
    step_entered_at: float | None = None
    pause_reason: str = ""          # CanaryPauseStep | InconclusiveAnalysis | BlueGreenPause
    pause_started: float | None = None
    runs: tuple[Run, ...] = ()
    switched: bool = False          # blue/green: active service points at the new RS
    full_scale: bool = False        # blue/green: gates passed, preview scaled to full size
    event: str = ""
    judge: object = None            # the judge's own (immutable) state
    judge_detail: tuple[tuple[str, object], ...] = ()  # its last statistics, for the trace

    def run(self, kind: str) -> Run | None:
        return next((r for r in self.runs if r.kind == kind), None)

    def without(self, kind: str) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.kind != kind)


class ArgoRollout:
    """An Argo Rollout with its AnalysisTemplates.

    Args:
        spec: the ``argo:`` policy (strategy, replicas, templates).
        name: label of the policy in results.
    """

    terminal_phases = TERMINAL
    #: The trace gets a line when the status changes or something was done, not at every
    #: resync (DESIGN.md section 6).
    trace_on_change = True

    def __init__(self, spec: ArgoPolicySpec, name: str = "argo") -> None:
        self.spec = spec
        self.name = name

    # -- analyses ----------------------------------------------------------------------------

    def _resolve(self, analysis: RolloutAnalysis) -> tuple[tuple[ar.MetricSpec, ...], dict[str, ArgoMetric]]:
        """Flatten the templates, substitute ``{{args.x}}``, build the metric specs."""
        metrics: dict[str, ArgoMetric] = {}
        args: dict[str, str] = {}
        dry = {d.metricName for d in analysis.dryRun}
        for ref in analysis.templates:
            t = (self.spec.clusterTemplates if ref.clusterScope else self.spec.templates)[ref.templateName]
            args.update({a.name: a.value for a in t.args if a.value is not None})
            dry |= {d.metricName for d in t.dryRun}
            for m in t.metrics:
                metrics[m.name] = m
        args.update({a.name: a.value if a.value is not None else f"<{a.name}>" for a in analysis.args})
        specs = []
        for name, m in metrics.items():
            def num(v: int | str | None, default: int) -> int:
                if v is None:
                    return default
                text = substitute(str(v), args)
                try:
                    return int(text)
                except ValueError:
                    raise ValueError(f"{v!r} is not a whole number once arguments are substituted "
                                     f"(got {text!r}; is an argument missing a value?)") from None
            try:
                metric_spec = ar.MetricSpec(
                    name=name,
                    interval_s=_seconds(m.interval, args),
                    initial_delay_s=_seconds(m.initialDelay, args) or 0.0,
                    count=num(m.count, 0) or None,
                    failure_limit=num(m.failureLimit, 0),
                    inconclusive_limit=num(m.inconclusiveLimit, 0),
                    consecutive_error_limit=num(m.consecutiveErrorLimit, ar.DEFAULT_CONSECUTIVE_ERROR_LIMIT),
                    consecutive_success_limit=num(m.consecutiveSuccessLimit, 0),
                    success_condition=substitute(m.successCondition, args) if m.successCondition else None,
                    failure_condition=substitute(m.failureCondition, args) if m.failureCondition else None,
                    dry_run=any(re.search(p, name) for p in dry),  # Go regexp.MatchString
                    provider=m.provider_type)
            except (ValueError, re.error) as err:
                raise ValueError(f"metric {name!r}: {err}") from None
            specs.append(metric_spec)
            metrics[name] = m.model_copy(update={"provider": _subst_tree(m.provider, args)})
        return tuple(specs), metrics

    @cached_property
    def _analyses(self) -> dict[str, tuple[tuple[ar.MetricSpec, ...], dict[str, ArgoMetric]]]:
        """Resolved analyses by kind (``step:<index>`` for inline steps)."""
        s = self.spec.strategy
        out = {}
        if s.canary is not None:
            if s.canary.analysis is not None and s.canary.analysis.templates:
                out["background"] = self._resolve(s.canary.analysis)
            for i, st in enumerate(s.canary.steps):
                if st.analysis is not None and st.analysis.templates:
                    out[f"step:{i}"] = self._resolve(st.analysis)
        else:
            bg = s.blueGreen
            if bg.prePromotionAnalysis is not None and bg.prePromotionAnalysis.templates:
                out["pre"] = self._resolve(bg.prePromotionAnalysis)
            if bg.postPromotionAnalysis is not None and bg.postPromotionAnalysis.templates:
                out["post"] = self._resolve(bg.postPromotionAnalysis)
        return out

    def queries(self) -> list[MetricQuery]:
        """Prometheus metrics, keyed by metric name (bound in the scenario, or recognised
        from the query by the world)."""
        seen: dict[str, MetricQuery] = {}
        for _, metrics in self._analyses.values():
            for m in metrics.values():
                if m.provider_type != "prometheus" or m.name in seen:
                    continue
                query = str(m.provider["prometheus"].get("query", ""))
                rng = _RANGE.search(query)
                window = _seconds(rng.group(1), {}) if rng else 60.0
                seen[m.name] = MetricQuery(m.name, "custom", window, bindings=(m.name,), query=query)
        return list(seen.values())

    def matches(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers matches a ``setHeaderRoute`` of the steps."""
        low = {k.lower(): v for k, v in headers.items()}
        for st in (self.spec.strategy.canary.steps if self.spec.strategy.canary else []):
            route = st.setHeaderRoute
            if route is None or not route.match:
                continue
            if all(_header_ok(low.get(h.headerName.lower()), h.headerValue) for h in route.match):
                return True
        return False

    # -- the policy protocol ----------------------------------------------------------

    def initial_state(self) -> ArgoState:
        return ArgoState()

    def next_tick(self, state: ArgoState, t: float) -> float | None:
        if state.phase in TERMINAL:
            return None
        if not state.started:
            return t  # the spec change is reconciled at once
        due = [t + RESYNC_S]
        for run in state.runs:
            nd = ar.next_due(self._analyses[run.kind][0], run.state)
            if nd is not None:
                due.append(nd)
        step = self._step(state)
        if step is not None and step.pause is not None and step.pause.duration is not None \
                and state.step_entered_at is not None:
            due.append(state.step_entered_at + step.pause.duration)
        bg = self.spec.strategy.blueGreen
        if bg is not None and state.pause_reason == "BlueGreenPause" and bg.autoPromotionSeconds > 0:
            due.append(state.pause_started + bg.autoPromotionSeconds)
        # Only what lies ahead: an expiry already past (e.g. a pause held by an
        # inconclusive run) must not pin the clock.
        return min(x for x in due if x > t)

    def status(self, state: ArgoState) -> dict[str, object]:
        runs = {r.kind: _run_status(r.state) for r in state.runs}
        out: dict[str, object] = {"phase": state.phase, "canary_weight": state.weight,
                                  "failed_checks": sum(m.failed for r in state.runs for m in r.state.metrics),
                                  "iterations": 0, "step_index": state.step_index, "analysis_runs": runs}
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
        if self.spec.strategy.canary is not None:
            new = self._canary(state, obs, acts)
        else:
            new = self._blue_green(state, obs, acts)
        return new, tuple(acts)

    # -- canary -----------------------------------------------------------------------------

    def _steps(self):
        return self.spec.strategy.canary.steps

    def _step(self, s: ArgoState):
        c = self.spec.strategy.canary
        return c.steps[s.step_index] if c is not None and s.step_index < len(c.steps) else None

    def _canary(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        if not s.started:
            acts.append(ScaleUp())
            s = replace(s, started=True, step_entered_at=obs.t)
            s = self._enter_step(s, obs, acts)
        step = self._step(s)
        held = s.phase == PAUSED and not (s.pause_reason == "CanaryPauseStep" and step is not None
                                          and step.pause is not None and step.pause.duration is not None)
        if held and self._manual(obs, acts):
            s = self._promote_pause(s, obs, acts)  # kubectl argo rollouts promote
        s = self._reconcile_runs(s, obs, acts)
        if self.judge is not None and s.phase not in TERMINAL:
            s = self._run_judge(s, obs, acts)
        while s.phase not in TERMINAL:
            step = self._step(s)
            timed = step is not None and step.pause is not None and step.pause.duration is not None
            if s.phase == PAUSED and not (timed and s.pause_reason == "CanaryPauseStep"):
                break  # held: pause {} or an inconclusive run
            if not self._step_completed(s, obs):
                break
            s = replace(s, phase=PROGRESSING, pause_reason="", pause_started=None)
            s = self._advance_step(s, obs, acts)
            s = self._reconcile_runs(s, obs, acts)
        return self._route(s, obs, acts)

    def _run_judge(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """The judge as a background analysis: reject aborts, accept promotes fully."""
        if obs.versions is None:
            return s
        prior = s.judge if s.judge is not None else self.judge.initial_state()
        state, verdict = self.judge.judge(prior, obs.versions)
        s = replace(s, judge=state, judge_detail=tuple(sorted(verdict.detail.items())))
        if verdict.reject:
            return self._abort(s, obs, acts, f"judge {self.judge.kind} rejected the canary: "
                                             f"{verdict.detail.get('statistic', '')}".rstrip(": "))
        if verdict.accept:
            return self._promote(s, obs, acts)
        return s

    def _promote_pause(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """``promote.go``: clear the pause. After an inconclusive step run the step is
        skipped (currentStepIndex+1, no new run); after an inconclusive background run
        the current pause step counts as completed and a new background run starts
        (``needsNewAnalysisRun``); a pause step completes."""
        reason = s.pause_reason
        s = replace(s, phase=PROGRESSING, pause_reason="", pause_started=None)
        if reason == "InconclusiveAnalysis":
            inconclusive = [r.kind for r in s.runs if r.state.phase == ar.INCONCLUSIVE]
            s = replace(s, runs=tuple(r for r in s.runs if r.kind not in inconclusive))
            step = self._step(s)
            if any(k.startswith("step:") for k in inconclusive) or (step is not None and step.pause is not None):
                return self._advance_step(s, obs, acts)
            return s
        return self._advance_step(s, obs, acts)

    def _route(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """``reconcileTrafficRouting``: the router follows the step weight only once the
        canary is available; until then it keeps what it had (0 at first)."""
        if s.phase in TERMINAL or not obs.canary.ready:
            return s
        want = self._traffic_weight(s.weight)
        if want != s.routed:
            acts.append(SetWeights(want))
            s = replace(s, routed=want)
        return s

    def _enter_step(self, s: ArgoState, obs: Observation, acts: list[Action], keep_weight: bool = False) -> ArgoState:
        """Apply the current step's entry effects (routes, pauses, step analysis)."""
        s = replace(s, step_entered_at=obs.t)
        step = self._step(s)
        if step is None:
            return s
        if step.setWeight is not None and not keep_weight:
            return replace(s, weight=step.setWeight, event=f"setWeight {step.setWeight}")
        if step.setCanaryScale is not None and self.spec.strategy.canary.trafficRouting is None:
            sc = step.setCanaryScale
            w = s.weight if sc.matchTrafficWeight else (sc.weight if sc.weight is not None
                                                        else round(100 * (sc.replicas or 0) / self.spec.replicas))
            return replace(s, weight=w, event="setCanaryScale")
        if step.setHeaderRoute is not None:
            acts.append(SetWeights(s.routed, header_route=bool(step.setHeaderRoute.match)))
            return replace(s, event=f"setHeaderRoute {step.setHeaderRoute.name}")
        if step.setMirrorRoute is not None:
            pct = float(step.setMirrorRoute.percentage or 100)
            acts.append(SetWeights(s.routed, mirrored=bool(step.setMirrorRoute.match), mirror_percent=pct))
            return replace(s, event=f"setMirrorRoute {step.setMirrorRoute.name}")
        if step.pause is not None:
            # reconcileCanaryPause adds the CanaryPauseStep condition for any pause step,
            # so the rollout reads Paused (CalculateRolloutPhase), timed or not.
            return replace(s, phase=PAUSED, pause_reason="CanaryPauseStep", pause_started=obs.t, event="paused")
        key = f"step:{s.step_index}"
        if step.analysis is not None and key in self._analyses:
            return replace(s, runs=s.without(key) + (Run(key, ar.start_run(key, self._analyses[key][0], obs.t)),))
        return s

    def _traffic_weight(self, weight: int) -> int:
        """Live traffic share for a weight: the router's, or without trafficRouting the
        canary's share of pods (``approximateWeightedCanaryStableReplicaCounts``)."""
        c = self.spec.strategy.canary
        if c is None or c.trafficRouting is not None:
            return weight
        canary, stable = replica_counts(self.spec.replicas, weight, _max_surge(c, self.spec.replicas))
        return round(100 * canary / max(canary + stable, 1))

    def _step_completed(self, s: ArgoState, obs: Observation) -> bool:
        step = self._step(s)
        if step is None:
            return False
        if step.setWeight is not None or step.setCanaryScale is not None:
            return obs.canary.ready  # AtDesiredReplicaCountsForCanary
        if step.pause is not None:
            return step.pause.duration is not None and obs.t >= s.step_entered_at + step.pause.duration
        if step.analysis is not None:
            run = s.run(f"step:{s.step_index}")
            return run is None or run.state.phase == ar.SUCCESSFUL
        return True  # setHeaderRoute, setMirrorRoute

    def _advance_step(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        # A run from a previous step is cancelled (reconcileStepBasedAnalysisRun).
        done = f"step:{s.step_index}"
        if s.run(done) is not None:
            s = replace(s, runs=s.without(done))
        s = replace(s, step_index=s.step_index + 1)
        if s.step_index >= len(self._steps()):
            return self._promote(s, obs, acts)
        return self._enter_step(s, obs, acts)

    def _reconcile_runs(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        """``reconcileAnalysisRuns`` for the canary: background from ``startingStep``, and
        the current step's run; Failed/Error abort, Inconclusive pauses."""
        bg = self.spec.strategy.canary.analysis
        if "background" in self._analyses and s.run("background") is None \
                and s.pause_reason != "InconclusiveAnalysis":
            start = bg.startingStep or 0
            if s.step_index >= start:
                run = ar.start_run("background", self._analyses["background"][0], obs.t)
                s = replace(s, runs=s.runs + (Run("background", run),))
        return self._measure_runs(s, obs, acts)

    def _measure_runs(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        runs = []
        for run in s.runs:
            specs, metrics = self._analyses[run.kind]
            if run.state.completed or not specs:
                runs.append(run)
                continue
            due = ar.due_metrics(specs, run.state, obs.t)
            values = {name: self._provide(metrics[name], obs, acts, run) for name in due}
            runs.append(Run(run.kind, ar.record(specs, run.state, obs.t, values)))
        s = replace(s, runs=tuple(runs))
        for run in s.runs:
            phase = run.state.phase
            if phase in (ar.FAILED, ar.ERROR):
                return self._abort(s, obs, acts, f"{run.kind} analysis phase {phase.lower()}")
            if phase == ar.INCONCLUSIVE and s.phase != PAUSED:
                return replace(s, phase=PAUSED, pause_reason="InconclusiveAnalysis", pause_started=obs.t,
                               event=f"{run.kind} analysis inconclusive: paused")
        return s

    def _provide(self, m: ArgoMetric, obs: Observation, acts: list[Action], run: Run) -> ar.ProviderResult:
        """What the metric's provider returns now. Job, web and Kayenta outcomes are
        scripted by ``<run>/<metric>`` (e.g. ``post/sleep-job``), metric name, or provider;
        with a scripted latency the measurement stays Running until it answers."""
        kind = m.provider_type
        if kind == "prometheus":
            v = obs.metrics.get(m.name)
            return [] if v is None else [float(v)]  # a vector: []float64, hence result[0]
        key = f"{run.kind.split(':')[0]}/{m.name}"
        keys = (key, m.name, kind)
        latency = next((obs.webhook_latency[k] for k in keys if k in obs.webhook_latency), 0.0)
        last = run.state.result(m.name).last
        if latency > 0 and (last is None or last.finished_at is not None):
            return ar.ProviderPhase(ar.RUNNING, resume_at=obs.t + latency)  # started, in flight
        ok = next((obs.webhooks[k] for k in keys if k in obs.webhooks), True)
        acts.append(HookCalled(key, kind, ok))
        return ar.ProviderPhase(ar.SUCCESSFUL if ok else ar.FAILED)

    def _manual(self, obs: Observation, acts: list[Action]) -> bool:
        ok = obs.webhooks.get(MANUAL, False)
        acts.append(HookCalled(MANUAL, "manual", ok))
        return ok

    def _terminate_runs(self, s: ArgoState, t: float) -> ArgoState:
        runs = [Run(run.kind, ar.terminate(self._analyses[run.kind][0], run.state, t)) for run in s.runs]
        return replace(s, runs=tuple(runs))

    def _abort(self, s: ArgoState, obs: Observation, acts: list[Action], reason: str) -> ArgoState:
        """``AddAbort``: canary weight 0 (blue/green: active back to stable), Degraded."""
        acts += [SetWeights(0), Rollback(reason), Finish(DEGRADED)]
        s = self._terminate_runs(s, obs.t)
        return replace(s, phase=DEGRADED, weight=0, routed=0, step_index=0, switched=False,
                       event=f"Aborted: {reason}")

    def _promote(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        acts += [Promote(), SetWeights(0), Finish(HEALTHY)]
        s = self._terminate_runs(s, obs.t)
        return replace(s, phase=HEALTHY, weight=100, event="fully promoted")

    # -- blue/green --------------------------------------------------------------------------

    def _blue_green(self, s: ArgoState, obs: Observation, acts: list[Action]) -> ArgoState:
        bg = self.spec.strategy.blueGreen
        if not s.started:
            acts.append(ScaleUp())
            s = replace(s, started=True, event="preview ReplicaSet created")
        if not obs.canary.ready and not s.switched:
            return s
        if not s.switched:
            if "pre" in self._analyses and s.run("pre") is None:
                s = replace(s, runs=s.runs + (Run("pre", ar.start_run("pre", self._analyses["pre"][0], obs.t)),))
            s = self._measure_runs(s, obs, acts)
            if s.phase in TERMINAL:
                return s
            pre = s.run("pre")
            if s.phase == PAUSED and s.pause_reason == "InconclusiveAnalysis":
                if not self._manual(obs, acts):
                    return s
                s = replace(s, phase=PROGRESSING, pause_reason="", runs=s.without("pre"))
                return s
            if pre is not None and pre.state.phase != ar.SUCCESSFUL:
                return s
            # The pause is added only once the pre-promotion run succeeded.
            if (not bg.autoPromotionEnabled or bg.autoPromotionSeconds > 0) and not s.pause_reason \
                    and not s.full_scale:
                s = replace(s, phase=PAUSED, pause_reason="BlueGreenPause", pause_started=obs.t, event="paused")
            if s.pause_reason == "BlueGreenPause":
                if bg.autoPromotionEnabled and bg.autoPromotionSeconds > 0:
                    if obs.t < s.pause_started + bg.autoPromotionSeconds:
                        return s
                elif not self._manual(obs, acts):
                    return s
            preview = bg.previewReplicaCount
            if preview is not None and preview < self.spec.replicas and not s.full_scale:
                # reconcileActiveService switches only a saturated ReplicaSet: a preview
                # of previewReplicaCount pods first scales to full size.
                acts.append(ScaleUp())
                return replace(s, phase=PROGRESSING, pause_reason="", full_scale=True,
                               event="scaling the preview to full size")
            acts.append(SetWeights(100))
            s = replace(s, phase=PROGRESSING, pause_reason="", switched=True, weight=100,
                        event="switched active service to the new ReplicaSet")
            if "post" in self._analyses:
                s = replace(s, runs=s.runs + (Run("post", ar.start_run("post", self._analyses["post"][0], obs.t)),))
            else:
                return self._promote(s, obs, acts)
        s = self._measure_runs(s, obs, acts)
        if s.phase in TERMINAL:
            return s
        post = s.run("post")
        if post is not None and post.state.phase == ar.SUCCESSFUL:
            return self._promote(s, obs, acts)
        return s


def _max_surge(c, replicas: int) -> int:
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


def resolve_all(spec: ArgoPolicySpec) -> None:
    """Resolve every analysis of a spec (arguments substituted, numbers and durations
    parsed, dry-run patterns compiled), raising ValueError naming the metric if one is bad."""
    ArgoRollout(spec)._analyses


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


def _seconds(value: str | None, args: dict[str, str]) -> float | None:
    if value is None:
        return None
    from sim.units import parse_duration
    return parse_duration(substitute(str(value), args))


def _subst_tree(node: object, args: dict[str, str]) -> object:
    if isinstance(node, str):
        return substitute(node, args)
    if isinstance(node, dict):
        return {k: _subst_tree(v, args) for k, v in node.items()}
    if isinstance(node, list):
        return [_subst_tree(v, args) for v in node]
    return node


def _run_status(state: ar.AnalysisRunState) -> dict[str, object]:
    tot = {"phase": state.phase, "successful": 0, "failed": 0, "inconclusive": 0, "error": 0,
           "consecutive_error": 0, "count": 0}
    for m in state.metrics:
        for k in ("successful", "failed", "inconclusive", "error", "consecutive_error", "count"):
            tot[k] += getattr(m, k)
    return tot
