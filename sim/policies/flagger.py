"""Flagger's canary analysis as a pure state machine.

One call of ``FlaggerCanary.step`` is one run of Flagger's ``advanceCanary``
(fluxcd/flagger ``pkg/controller/scheduler.go``), in the same order of work:

1. primary readiness (``IsPrimaryReady``, skipped with ``skipAnalysis``): retriable
   waits do nothing; a passed deadline rolls back, or in Promoting/Finalising hands all
   traffic to the canary and fails (``handleFailedPromotion``);
2. ``GetRoutes``: the router's weights (the kubernetes provider's ``NopRouter`` reports
   0/100 once iterations > 0);
3. ``checkCanaryStatus``: from Initialized/Waiting, confirm-rollout hooks; on approval
   the canary scales up and Progressing starts with weight, failed checks and
   iterations zeroed; no analysis that tick;
4. canary readiness (``IsCanaryReady``), as for the primary;
5. ``skipAnalysis``: promote at once; rollback hooks (first 2xx rolls back);
   Promoting: ``runPromotionTrafficShift``; Finalising: scale down, Succeeded;
6. ``failedChecks >= threshold`` in Progressing/WaitingPromotion: rollback, at the start
   of the tick *after* the threshold-th failure;
7. the first step (weight 0, iterations 0, not mirrored) runs pre-rollout hooks only;
   later steps run the analysis (rollout hooks, builtin and inline-query metrics, then
   MetricTemplates); a failure adds one to ``failedChecks`` (cumulative) and ends the tick;
8. the strategy: ``runAB``, ``runBlueGreen``, or confirm-traffic-increase + ``runCanary``.

A ``judge`` (pdsim's extension, ``sim.policies.judges``) takes the place of the threshold
checks of the builtin metrics it judges, at the position of the first of them in the
metrics list: its NO_DATA or FAIL verdict is a failed check like a metric's; ``reject``
rolls back in the same tick (no waiting for ``threshold``); ``accept`` ends the analysis
early and goes to promotion, through the confirm-promotion gates. Its state lives in
``FlaggerState.judge``. Without per-version data (``Observation.versions`` is None, as in
``pdsim replay`` of a metric-values CSV) the judge cannot look: its verdict is no data.

Status fields are written as Flagger writes them (``pkg/canary/status.go``):
``setStatusPhase`` zeroes ``canaryWeight`` and ``iterations`` for every phase but
Progressing, Waiting and Promoting (WaitingPromotion sets iterations to N−1); a rollback
syncs ``{Failed, weight 0}``, which zeroes ``failedChecks`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from sim.policies.base import (Action, Finish, HookCalled, MetricQuery, Observation, Promote, Readiness,
                               Rollback, Routes, ScaleUp, SetWeights)
from sim.policies.flagger_spec import BUILTIN_METRICS, FlaggerAnalysis, FlaggerPolicySpec, FlaggerWebhook
from sim.policies.judges import Judge, Judgement, Verdict, judged_signals, make_judge

TOTAL_WEIGHT = 100
MIN_INTERVAL_S = 10.0  # Canary.GetAnalysisInterval clamps shorter intervals to 10s

INITIALIZED, WAITING, PROGRESSING = "Initialized", "Waiting", "Progressing"
WAITING_PROMOTION, PROMOTING, FINALISING = "WaitingPromotion", "Promoting", "Finalising"
SUCCEEDED, FAILED = "Succeeded", "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})
_KEEPS_WEIGHT = (PROGRESSING, WAITING, PROMOTING)  # setStatusPhase leaves weight/iterations


@dataclass(frozen=True)
class FlaggerState:
    """Flagger's ``status`` fields, plus the last event for the trace.

    The canary starts Initialized with a new revision waiting: the previous release is
    the primary, and Flagger picks the change up at its next tick.
    """

    phase: str = INITIALIZED
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    event: str = ""
    judge: object = None  # the judge's own (immutable) state, when there is a judge
    judge_detail: tuple[tuple[str, object], ...] = ()  # its last judgement, for the trace

    def evolve(self, **changes: object) -> "FlaggerState":
        """A copy with some fields changed (``dataclasses.replace``, without its
        introspection: this runs at every tick of every simulated rollout)."""
        fields = dict(self.__dict__)
        fields.update(changes)
        return FlaggerState(**fields)  # type: ignore[arg-type]


class _Tick:
    """The actions of one tick, in the order Flagger takes them."""

    def __init__(self) -> None:
        self.actions: list[Action] = []

    def call(self, hook: FlaggerWebhook, obs: Observation) -> bool:
        """``CallWebhook``: the scripted outcome, by hook name, then type, then default."""
        default = hook.kind != "rollback"  # a rollback hook signals only when asked to
        ok = obs.webhooks.get(hook.name, obs.webhooks.get(hook.kind, default))
        load = hook.load_test_rate() if hook.kind in ("rollout", "pre-rollout") else None
        self.actions.append(HookCalled(hook.name, hook.kind, ok, *(load or (0.0, 0.0))))
        return ok


class FlaggerCanary:
    """Flagger's analysis: canary, A/B testing, blue/green and mirroring strategies.

    Args:
        spec: the ``flagger:`` policy (``analysis`` plus Canary fields).
        name: label of the policy in results.
    """

    terminal_phases = TERMINAL

    def __init__(self, spec: FlaggerPolicySpec, name: str = "flagger") -> None:
        self.spec = spec
        self.name = name

    # -- parameters, derived the way Flagger derives them ---------------------------

    @property
    def analysis(self) -> FlaggerAnalysis:
        return self.spec.analysis or FlaggerAnalysis()

    @property
    def skip_analysis(self) -> bool:
        return self.spec.analysis is None or self.spec.skipAnalysis  # Canary.SkipAnalysis

    @property
    def interval_s(self) -> float:
        return max(self.analysis.interval, MIN_INTERVAL_S)

    @property
    def threshold(self) -> int:
        return self.analysis.threshold if self.analysis.threshold > 0 else 1

    @property
    def kubernetes(self) -> bool:
        return self.spec.provider == "kubernetes"

    @property
    def _mirror_percent(self) -> float:
        # Istio mirrorPercentage is set only when mirrorWeight > 0 (pkg/router/istio.go);
        # unset, Istio mirrors everything.
        return float(self.analysis.mirrorWeight or TOTAL_WEIGHT)

    def max_weight(self) -> int:
        """``maxWeight()``: last stepWeights entry (capped at 100), else maxWeight, else 100."""
        a = self.analysis
        if a.stepWeights:
            return min(TOTAL_WEIGHT, a.stepWeights[-1])
        if a.maxWeight:
            return a.maxWeight
        return TOTAL_WEIGHT

    def next_step_weight(self, canary_weight: int) -> int:
        """``nextStepWeight()``: stepWeight, or the gap to the next stepWeights entry."""
        a = self.analysis
        if a.stepWeight > 0 or not a.stepWeights:
            return a.stepWeight
        max_step = TOTAL_WEIGHT - canary_weight
        if max_step == 0:
            return 1
        if canary_weight == 0:
            return min(max_step, a.stepWeights[0])
        for here, nxt in zip(a.stepWeights, a.stepWeights[1:]):
            if here == canary_weight:
                return min(max_step, nxt - canary_weight)
        return max_step

    def queries(self) -> list[MetricQuery]:
        return [q for _, q in self._checks]

    @cached_property
    def _checks(self) -> tuple[tuple[str, MetricQuery], ...]:
        """Metric checks in Flagger's order: ``runBuiltinMetricChecks`` (builtins and
        inline queries, in list order), then ``runMetricChecks`` (templateRef metrics).
        Derived lazily, not in ``__init__``: constructors only store parameters."""
        first, second = [], []
        for m in self.analysis.metrics:
            if m.thresholdRange is not None:
                lo, hi = m.thresholdRange.min, m.thresholdRange.max
            else:
                # Legacy: success rate fails when threshold > value, the rest when value >
                # threshold; an unset threshold is Go's zero value, 0 (CanaryMetric.Threshold).
                t = m.threshold if m.threshold is not None else 0.0
                lo, hi = (t, None) if m.name == "request-success-rate" and not m.custom else (None, t)
            if m.name in BUILTIN_METRICS:
                first.append(("builtin", MetricQuery(m.name, m.name, m.interval, lo, hi)))
            if m.query is not None:
                first.append(("query", MetricQuery(m.name, "custom", m.interval, lo, hi, (m.name,))))
            if m.templateRef is not None:
                key = m.name if m.name not in BUILTIN_METRICS else f"{m.name}#template"
                second.append(("template", MetricQuery(key, "custom", m.interval, lo, hi,
                                                       (m.name, m.templateRef.name))))
        return tuple(first + second)

    def matches(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers matches ``analysis.match`` (A/B routing):
        any entry whose header conditions all hold. Header names are case-insensitive."""
        low = {k.lower(): v for k, v in headers.items()}
        return any(all(sm.matches(low.get(name.lower())) for name, sm in m.headers.items())
                   for m in self.analysis.match)

    def _hooks(self, *kinds: str) -> tuple[FlaggerWebhook, ...]:
        return tuple(h for k in kinds for h in self._hooks_by_kind.get(k, ()))

    @cached_property
    def _hooks_by_kind(self) -> dict[str, tuple[FlaggerWebhook, ...]]:
        out: dict[str, list[FlaggerWebhook]] = {}
        for h in self.analysis.webhooks:
            out.setdefault(h.kind, []).append(h)
        return {k: tuple(v) for k, v in out.items()}

    # -- the policy protocol ----------------------------------------------------------

    def initial_state(self) -> FlaggerState:
        return FlaggerState()

    def next_tick(self, state: FlaggerState, t: float) -> float | None:
        return None if state.phase in TERMINAL else t + self.interval_s

    def status(self, state: FlaggerState) -> dict[str, object]:
        out: dict[str, object] = {"phase": state.phase, "canary_weight": state.canary_weight,
                                  "failed_checks": state.failed_checks, "iterations": state.iterations}
        if self.judge is not None:
            out["judge"] = dict(state.judge_detail)
        return out

    @cached_property
    def judge(self) -> Judge | None:
        """The statistical judge of ``spec.judge`` (None without one), judging the builtin
        metrics of the analysis it can judge."""
        if self.spec.judge is None:
            return None
        return make_judge(self.spec.judge, {q.signal for kind, q in self._checks if kind == "builtin"})

    @cached_property
    def _judged(self) -> frozenset[str]:
        return judged_signals(self.judge) if self.judge is not None else frozenset()

    def step(self, state: FlaggerState, obs: Observation) -> tuple[FlaggerState, tuple[Action, ...]]:
        """One ``advanceCanary`` run. See the module docstring for the order of work."""
        if state.phase in TERMINAL:
            return state, ()
        tick = _Tick()
        new = self._advance(state, obs, tick)
        return new, tuple(tick.actions)

    def _advance(self, s: FlaggerState, obs: Observation, tick: _Tick) -> FlaggerState:
        if not self.skip_analysis and not obs.primary.ready:
            if not self._deadline_passed(obs.primary, obs.t):
                return s.evolve(event="waiting for the primary to be ready")
            if s.phase in (PROMOTING, FINALISING):
                # handleFailedPromotion: the canary is the only healthy copy.
                tick.actions += [SetWeights(TOTAL_WEIGHT), Finish(FAILED)]
                self._post_rollout(obs, tick)
                return FlaggerState(FAILED, TOTAL_WEIGHT, event="Promotion failed, primary not ready")
            return self._rollback(s, obs, tick, "primary progress deadline exceeded")

        routes = self._routes(s, obs)
        if s.phase in (INITIALIZED, WAITING):  # checkCanaryStatus
            for hook in self._hooks("confirm-rollout"):
                if not tick.call(hook, obs):
                    return self._set_phase(s, WAITING).evolve(event=f"waiting for approval {hook.name}")
            tick.actions.append(ScaleUp())
            return FlaggerState(PROGRESSING, event="New revision detected! Scaling up canary")

        if not obs.canary.ready:  # IsCanaryReady
            if self._deadline_passed(obs.canary, obs.t):
                return self._rollback(s, obs, tick, "canary progress deadline exceeded")
            return s.evolve(event="waiting for the canary to be ready")

        if self.skip_analysis:  # shouldSkipAnalysis
            tick.actions += [SetWeights(0), Promote(), Finish(SUCCEEDED)]
            self._post_rollout(obs, tick)
            return self._set_phase(s, SUCCEEDED).evolve(event="Promotion completed! Canary analysis was skipped")
        if s.phase in (PROGRESSING, WAITING, WAITING_PROMOTION):
            for hook in self._hooks("rollback"):
                if tick.call(hook, obs):
                    return self._rollback(s, obs, tick, f"rollback webhook {hook.name} invoked")
        if s.phase == PROMOTING:
            return self._promotion_traffic_shift(s, routes, tick)
        if s.phase == FINALISING:
            tick.actions.append(Finish(SUCCEEDED))
            self._post_rollout(obs, tick)
            return self._set_phase(s, SUCCEEDED).evolve(event="Promotion completed! Scaling down canary")
        if s.phase in (PROGRESSING, WAITING_PROMOTION) and s.failed_checks >= self.threshold:
            return self._rollback(s, obs, tick, f"failed checks threshold reached {s.failed_checks}")

        if routes.canary_weight == 0 and s.iterations == 0 and not (self.analysis.mirror and routes.mirrored):
            ok, why = self._run_hooks(("pre-rollout",), obs, tick, "pre-rollout check")
        else:
            ok, why = self._run_hooks(("rollout",), obs, tick, "external check")
            if ok:
                ok, why, s, verdict = self._run_metrics(s, obs)
                if verdict is not None and verdict.reject:
                    reason = f"judge {self.judge.kind} rejected the canary: {verdict.detail.get('statistic', '')}"
                    return self._rollback(s, obs, tick, reason.rstrip(": "))
                if ok and verdict is not None and verdict.accept:
                    # Harm ruled out: promote now, through the confirm-promotion gates.
                    waiting = self._confirm_promotion(s, obs, tick)
                    return waiting if waiting is not None else self._promote(s, tick)
        if not ok:
            return s.evolve(failed_checks=s.failed_checks + 1, event=why)

        strategy = self.spec.strategy()
        if strategy == "ab-testing":
            return self._run_ab(s, obs, tick)
        if strategy == "blue-green":
            return self._run_blue_green(s, obs, tick, routes)
        if self.next_step_weight(routes.canary_weight) > 0:
            if not routes.mirrored and s.phase not in (PROMOTING, WAITING_PROMOTION, FINALISING):
                for hook in self._hooks("confirm-traffic-increase"):
                    if not tick.call(hook, obs):
                        return s.evolve(event=f"waiting for traffic increase approval {hook.name}")
            return self._run_canary(s, obs, tick, routes)
        return s.evolve(event="")

    # -- pieces of advanceCanary ----------------------------------------------------------

    def _routes(self, s: FlaggerState, obs: Observation) -> Routes:
        if self.kubernetes:  # NopRouter.GetRoutes
            return Routes(TOTAL_WEIGHT if s.iterations > 0 else 0)
        return obs.routes

    def _set_phase(self, s: FlaggerState, phase: str) -> FlaggerState:
        """``setStatusPhase`` (status.go)."""
        if phase in _KEEPS_WEIGHT:
            return s.evolve(phase=phase)
        iterations = self.spec.iterations() - 1 if phase == WAITING_PROMOTION else 0
        return s.evolve(phase=phase, canary_weight=0, iterations=iterations)

    def _deadline_passed(self, r: Readiness, t: float) -> bool:
        # deployment_ready.go: retriable = !from.Add(deadline).Before(now)
        return r.unready_since is not None and r.unready_since + self.spec.progressDeadlineSeconds < t

    def _run_hooks(self, kinds: tuple[str, ...], obs: Observation, tick: _Tick, what: str) -> tuple[bool, str]:
        for hook in self._hooks(*kinds):
            if not tick.call(hook, obs):
                return False, f"Halt advancement {what} {hook.name} failed"
        return True, ""

    def _run_judge(self, s: FlaggerState, obs: Observation) -> tuple[FlaggerState, Judgement]:
        """Ask the judge (no data without per-version counters: it cannot look)."""
        if obs.versions is None:
            return s, Judgement(Verdict.NO_DATA, detail={"statistic": "no per-version counters"})
        # States built from scratch (a new revision starting Progressing) carry no judge state.
        prior = s.judge if s.judge is not None else self.judge.initial_state()
        state, verdict = self.judge.judge(prior, obs.versions)
        return s.evolve(judge=state, judge_detail=tuple(sorted(verdict.detail.items()))), verdict

    def _run_metrics(self, s: FlaggerState, obs: Observation
                     ) -> tuple[bool, str, FlaggerState, Judgement | None]:
        """``runBuiltinMetricChecks`` then ``runMetricChecks``: stop at the first failure.

        The judge answers for the builtin metrics it judges, at the first one's place."""
        verdict = None
        for kind, q in self._checks:
            if kind == "builtin" and q.signal in self._judged:
                if verdict is None:
                    s, verdict = self._run_judge(s, obs)
                    if verdict.reject:
                        return False, "", s, verdict
                    if verdict.verdict in (Verdict.NO_DATA, Verdict.FAIL):
                        what = "no values found for" if verdict.verdict == Verdict.NO_DATA else "failed"
                        return False, f"Halt advancement judge {self.judge.kind} {what} {q.name}", s, verdict
                continue
            ok, why = self._check_metric(q, obs)
            if not ok:
                return False, why, s, verdict
        return True, "", s, verdict

    def _check_metric(self, q: MetricQuery, obs: Observation) -> tuple[bool, str]:
        """One threshold-range check."""
        val = obs.metrics.get(q.name)
        if val is None or math.isnan(val):
            # prometheus.go: empty result or NaN -> ErrNoValuesFound -> check fails
            return False, f"Halt advancement no values found for metric {q.name}"
        lo, hi = q.min, q.max
        if q.signal == "request-duration":
            # Observers return time.Duration(int64(value)) ms and the bounds are
            # converted with time.Duration(bound): both truncated to whole ms.
            val = float(math.trunc(val))
            lo = None if lo is None else float(math.trunc(lo))
            hi = None if hi is None else float(math.trunc(hi))
        if lo is not None and val < lo:
            return False, f"Halt advancement {q.name} {val:.2f} < {lo:g}"
        if hi is not None and val > hi:
            return False, f"Halt advancement {q.name} {val:.2f} > {hi:g}"
        return True, ""

    def _confirm_promotion(self, s: FlaggerState, obs: Observation, tick: _Tick) -> FlaggerState | None:
        """``runConfirmPromotionHooks``: None when approved, else the waiting state."""
        for hook in self._hooks("confirm-promotion"):
            if not tick.call(hook, obs):
                if s.phase != WAITING_PROMOTION:
                    s = self._set_phase(s, WAITING_PROMOTION)
                else:
                    s = s.evolve(iterations=self.spec.iterations() - 1)
                return s.evolve(event=f"waiting for promotion approval {hook.name}")
        return None

    def _promote(self, s: FlaggerState, tick: _Tick) -> FlaggerState:
        # Promote copies the canary spec to the primary; setStatusPhase(Promoting) keeps
        # canaryWeight and iterations.
        tick.actions.append(Promote())
        return self._set_phase(s, PROMOTING).evolve(event="Copying canary spec to primary")

    def _run_canary(self, s: FlaggerState, obs: Observation, tick: _Tick, routes: Routes) -> FlaggerState:
        """``runCanary``: step the weight up (one mirroring step first), or promote at max."""
        weight = routes.canary_weight
        if weight < self.max_weight():
            step = self.next_step_weight(weight)
            if self.analysis.mirror and weight == 0:
                if not routes.mirrored:
                    tick.actions.append(SetWeights(0, mirrored=True, mirror_percent=self._mirror_percent))
                    return s.evolve(canary_weight=0, event="Running mirror step 100/0")
                new = step
            else:
                new = min(TOTAL_WEIGHT, weight + step)
            tick.actions.append(SetWeights(new))
            return s.evolve(canary_weight=new, event=f"Advance canary weight {new}")
        waiting = self._confirm_promotion(s, obs, tick)
        return waiting if waiting is not None else self._promote(s, tick)

    def _run_ab(self, s: FlaggerState, obs: Observation, tick: _Tick) -> FlaggerState:
        """``runAB``: matched requests to the canary, one iteration per passing tick."""
        n = self.spec.iterations()
        if n > s.iterations:
            tick.actions.append(SetWeights(TOTAL_WEIGHT, matched=True))
            return s.evolve(iterations=s.iterations + 1, event=f"Advance canary iteration {s.iterations + 1}/{n}")
        waiting = self._confirm_promotion(s, obs, tick)
        if waiting is not None:
            return waiting
        return self._promote(s, tick) if n == s.iterations else s.evolve(event="")

    def _run_blue_green(self, s: FlaggerState, obs: Observation, tick: _Tick, routes: Routes) -> FlaggerState:
        """``runBlueGreen``: iterate with no live traffic, switch all of it, then promote."""
        n = self.spec.iterations()
        if n > s.iterations:
            if not self.kubernetes and self.analysis.mirror and not routes.mirrored:
                tick.actions.append(SetWeights(0, mirrored=True, mirror_percent=self._mirror_percent))
            return s.evolve(iterations=s.iterations + 1, event=f"Advance canary iteration {s.iterations + 1}/{n}")
        waiting = self._confirm_promotion(s, obs, tick)
        if waiting is not None:
            return waiting
        if n == s.iterations:
            if not self.kubernetes:
                tick.actions.append(SetWeights(TOTAL_WEIGHT))
            return s.evolve(iterations=s.iterations + 1, event="Routing all traffic to canary")
        return self._promote(s, tick)

    def _promotion_traffic_shift(self, s: FlaggerState, routes: Routes, tick: _Tick) -> FlaggerState:
        """``runPromotionTrafficShift``."""
        step = self.analysis.stepWeightPromotion
        if self.kubernetes:
            return self._set_phase(s, FINALISING).evolve(event="Finalising")
        if step == 0:
            tick.actions.append(SetWeights(0))
            return self._set_phase(s, FINALISING).evolve(event="Routing all traffic to primary")
        weight = routes.canary_weight
        if weight > 0:
            primary = min(TOTAL_WEIGHT, TOTAL_WEIGHT - weight + step)
            new = max(0, weight - step)
            tick.actions.append(SetWeights(new))
            if primary == TOTAL_WEIGHT:
                return self._set_phase(s, FINALISING).evolve(event=f"Advance primary weight {primary}")
            return s.evolve(canary_weight=new, event=f"Advance primary weight {primary}")
        # Flagger does nothing when the canary already has no traffic (and so never
        # reaches Finalising); reproduced as is.
        return s.evolve(event="")

    def _post_rollout(self, obs: Observation, tick: _Tick) -> None:
        # Outcomes of post-rollout hooks are only logged (runPostRolloutHooks).
        for hook in self._hooks("post-rollout"):
            tick.call(hook, obs)

    def _rollback(self, s: FlaggerState, obs: Observation, tick: _Tick, reason: str) -> FlaggerState:
        """``rollback()``: all traffic to primary, SyncStatus{Failed, weight 0}."""
        tick.actions += [SetWeights(0), Rollback(reason), Finish(FAILED)]
        self._post_rollout(obs, tick)
        # The judge's last statistics stay in the status: the trace shows what rejected.
        return FlaggerState(FAILED, event=f"Rolling back: {reason}", judge_detail=s.judge_detail)
