"""Flagger's canary analysis as a pure state machine.

One call of ``FlaggerCanary.step`` is one run of Flagger's ``advanceCanary``
(fluxcd/flagger ``pkg/controller/scheduler.go``), in the same order of work:

0. ``spec.suspend``: return at once;
1. primary readiness (``IsPrimaryReady`` with ``primaryReadyThreshold``, ``is_ready``;
   skipped with ``skipAnalysis``): retriable waits do nothing; a passed deadline rolls
   back, or in Promoting/Finalising hands all traffic to the canary and fails
   (``handleFailedPromotion``; before Flagger 1.44 it rolls back too);
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

Webhook calls block the run (``_call``: timeouts, retries with back-off), and a run that
blocks past the next tick of the analysis timer delays it (``FlaggerState.next_at``). The
provider's router decides whether a mirror is read back (``plan.mirrors_traffic``), and
``version`` the behaviours that changed between Flagger releases (``FlaggerPlan``).

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

Speed: ``step`` runs at every tick of every simulated rollout, so what depends only on the
spec is derived once into a cached plan (``sim.policies.flagger.plan``), and states are
copied by the frozen-state copy device (``sim.policies.frozen``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from math import floor, isnan

import numpy as np

from sim.policies.base import (
    ASK_JUDGE,
    Action,
    BatchObservation,
    HookCalled,
    Judged,
    JudgementNeeded,
    MeshRetries,
    MetricQuery,
    MetricTargets,
    MetricValue,
    Observation,
    Policy,
    PolicyTags,
    QueryError,
    Readiness,
    Rollback,
    Routes,
    ScalarResult,
    single_value,
)
from sim.policies.flagger.plan import (
    FINISH_FAILED,
    FINISH_SUCCEEDED,
    MATCHED_ALL,
    NOP_ROUTES,
    PROMOTE,
    SCALE_UP,
    TOTAL_WEIGHT,
    Check,
    FlaggerPlan,
    Hook,
    build_plan,
    go_duration_ms,
    istio_router,
    retry_wait,
    set_weights,
    sticky_sessions,
)
from sim.policies.flagger.queries import (
    DURATION,
    DURATION_TO_MS,
    builtin_query,
    observer_of,
    render_query,
    trim_query,
)
from sim.policies.flagger.spec import BUILTIN_METRICS, CanaryNames, FlaggerAnalysis, FlaggerPolicySpec
from sim.policies.frozen import build, replace
from sim.policies.judges import Judge, Judgement, Verdict, judged_signals, make_judge
from sim.policies.judges.base import JudgeData
from sim.units import format_duration

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
    # Display only (for the trace): left out of equality, so that runs whose states differ
    # only in them are stepped as one class (``BatchObservation``).
    event: str = field(default="", compare=False)
    judge: object = None  # the judge's own (immutable) state, when there is a judge
    judge_detail: tuple[tuple[str, object], ...] = field(default=(), compare=False)  # its last judgement
    next_at: float | None = None  # the next tick when webhook calls made this one late


def _fresh(
    phase: str, event: str, canary_weight: int = 0, judge_detail: tuple[tuple[str, object], ...] = ()
) -> FlaggerState:
    """``FlaggerState(phase, canary_weight, event=event, judge_detail=judge_detail)``."""
    return build(
        FlaggerState,
        {
            "phase": phase,
            "canary_weight": canary_weight,
            "failed_checks": 0,
            "iterations": 0,
            "event": event,
            "judge": None,
            "judge_detail": judge_detail,
            "next_at": None,
        },
    )


class _Tick(list[Action]):
    """The actions of one ``advanceCanary`` run, and the seconds its webhook calls have
    taken so far: the run blocks on each call (``CallWebhook`` is synchronous), its retries
    and their back-off included."""

    elapsed_s = 0.0


def _call(hook: Hook, obs: Observation, actions: list[Action]) -> bool:
    """``CallWebhook``: the scripted outcome, by hook name, then type, then default, with
    the HTTP client's timeout and retries (``pkg/controller/webhook.go`` ``callWebhook``,
    go-retryablehttp ``Client.Do``).

    An attempt whose answer takes longer than the hook's ``timeout`` fails (a client
    timeout, an error). Errors and server errors are retried up to ``retries`` times,
    after ``retry_wait`` each; a gate's closed answer is not. Each failed attempt that is
    retried is recorded as a call (a load test starts only with the last attempt), and
    the time all attempts take is added to the tick (``_Tick.elapsed_s``)."""
    webhooks = obs.webhooks
    key = hook.name if hook.name in webhooks else hook.kind if hook.kind in webhooks else None
    ok = webhooks[key] if key is not None else hook.default
    if ok is not True and ok is not False:  # a truthy or falsy non-bool, recorded as given
        actions.append(HookCalled(hook.name, hook.kind, ok, *hook.load))
        return ok
    latencies = obs.webhook_latency
    latency = latencies.get(hook.name, latencies.get(hook.kind, 0.0)) if latencies else 0.0
    timed_out = latency > hook.timeout_s
    spent = min(latency, hook.timeout_s)
    ok = ok and not timed_out
    attempt = 0
    elapsed = 0.0 if type(actions) is not _Tick else actions.elapsed_s
    elapsed += spent
    while not ok and (timed_out or hook.retry_failures) and attempt < hook.retries:
        actions.append(hook.attempt_failed)
        elapsed += retry_wait(attempt)
        attempt += 1
        again = obs.webhook_attempt
        ok = (again(key, attempt, obs.t + elapsed) if key is not None and again is not None else ok) and not timed_out
        elapsed += spent
    if type(actions) is _Tick:
        actions.elapsed_s = elapsed
    actions.append(hook.passed if ok else hook.failed)
    return ok


class FlaggerCanary(Policy):
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

    def describe(self) -> list[str]:
        """A short human summary of the strategy settings, one line per item, e.g.
        ``Flagger canary: every 1m, stepWeight 10% up to maxWeight 50%, rollback after 5
        failed checks``. The metric checks are not included (see ``queries``)."""
        spec, a = self.spec, self.spec.analysis
        if a is None:
            return ["Flagger: no analysis, the new revision is promoted at once"]
        strategy = spec.strategy()
        name = {"canary": "canary", "ab-testing": "A/B testing", "blue-green": "blue/green"}[strategy]
        if spec.provider == "kubernetes":
            name += " (kubernetes provider: no traffic shifting)"
        if spec.suspend:
            return [f"Flagger {name}: suspended, the new revision is never analysed"]
        if spec.skipAnalysis:
            return [f"Flagger {name}: skipAnalysis, promoted without analysis"]
        every = f"every {format_duration(a.interval)}"
        rollback = f"rollback after {a.analysis_threshold} failed checks"
        mirrored = f"mirroring {self._mirror_percent:g}% of requests"
        if strategy == "canary":
            steps = f"stepWeights {a.stepWeights}" if a.stepWeights else f"stepWeight {a.stepWeight}%"
            if a.mirror and not self._plan.mirror_routes:
                stuck = f"mirror on {spec.provider}, whose router cannot mirror: stuck at weight 0, never decides"
                return [f"Flagger canary: {every}, {stuck}"]
            first = f"one step {mirrored}, then " if a.mirror else ""
            return [f"Flagger canary: {every}, {first}{steps} up to maxWeight {self.max_weight()}%, {rollback}"]
        n = spec.iterations()
        if strategy == "ab-testing":
            rules = f"{len(a.match)} match rule" + ("s" if len(a.match) != 1 else "")
            routed = f"{n} iterations with matching requests ({rules}) on the canary"
            return [f"Flagger A/B testing: {every}, {routed}, {rollback}"]
        during = mirrored if a.mirror and self._plan.mirror_routes else "no live traffic"
        return [f"Flagger {name}: {every}, {n} iterations with {during}, then all traffic switched, {rollback}"]

    def queries(self) -> list[MetricQuery]:
        """The metric checks in Flagger's order, each with the query Flagger would run.

        A builtin carries its provider's builtin query (``pkg/metrics/observers``), an
        inline ``query`` its rendering, a ``templateRef`` its MetricTemplate's rendering
        and provider type; all rendered with the Canary's names (``toMetricModel``). For
        Prometheus the text is what Flagger's client sends (whitespace collapsed,
        ``trimQuery``)."""
        return [q for _, q in self._checks]

    def workload_names(self) -> CanaryNames:
        """The names the simulated series must carry for these queries to select them:
        namespace, target (canary workload), primary, services, ingress, route."""
        return self.spec.names()

    def metric_targets(self) -> MetricTargets:
        """The Canary's names and its provider's exporter (``Policy.metric_targets``)."""
        n = self.spec.names()
        provider = self.spec.provider
        analysis = self.spec.analysis
        affinity = analysis.sessionAffinity if analysis is not None else None
        sticky = affinity is not None and sticky_sessions(provider)
        retries = self.spec.service.retries
        return MetricTargets(
            provider=self.spec.metrics_provider(),
            namespace=n.namespace,
            target=n.target,
            service=n.service,
            ingress=n.ingress,
            route=n.route,
            # getSessionAffinityRouteRules: the canary cookie lives maxAge (a day unset), the
            # primary's one analysis interval.
            session_affinity_s=affinity.max_age_s if sticky and affinity is not None else 0.0,
            session_affinity_primary_s=(
                analysis.interval
                if sticky and analysis is not None and affinity is not None and affinity.primaryCookieName
                else 0.0
            ),
            # Istio's router writes spec.service.retries into every route (istio.go Retries).
            retries=(
                MeshRetries(retries.attempts, retries.retryOn, retries.perTryTimeout)
                if retries is not None and istio_router(provider)
                else None
            ),
        )

    def metrics_provider(self) -> str:
        """The provider string whose builtin queries the Canary's builtin checks run
        (``istio``, ``linkerd``, ..., ``linkerd:service`` for a Service target): the
        exporters to simulate for them."""
        return self.spec.metrics_provider()

    @cached_property
    def _checks(self) -> tuple[tuple[str, MetricQuery], ...]:
        """Metric checks in Flagger's order: ``runBuiltinMetricChecks`` (builtins and
        inline queries, in list order), then ``runMetricChecks`` (templateRef metrics).
        Derived lazily, not in ``__init__``: constructors only store parameters."""
        spec = self.spec
        provider = spec.metrics_provider()
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
                text = builtin_query(provider, m.name, spec.template_model(m))
                scale = DURATION_TO_MS[observer_of(provider)] if m.name == DURATION else 1.0
                first.append(("builtin", MetricQuery(m.name, m.name, m.interval, lo, hi, query=text, scale=scale)))
            if m.query is not None:
                # Inline PromQL goes to the metrics server, Prometheus (scheduler_metrics.go).
                text = trim_query(render_query(m.query, spec.template_model(m)))
                first.append(("query", MetricQuery(m.name, "custom", m.interval, lo, hi, (m.name,), query=text)))
            if m.templateRef is not None:
                key = m.name if m.name not in BUILTIN_METRICS else f"{m.name}#template"
                bindings = (m.name, m.templateRef.name)
                template = spec.metricTemplates.get(m.templateRef.name)
                if template is None:  # bound by the scenario only
                    q = MetricQuery(key, "custom", m.interval, lo, hi, bindings)
                else:
                    kind = template.provider_type
                    text = render_query(template.query, spec.template_model(m, template=True))
                    # Only the Prometheus client collapses whitespace (providers/prometheus.go).
                    text = trim_query(text) if kind == "prometheus" else text
                    q = MetricQuery(key, "custom", m.interval, lo, hi, bindings, query=text, provider=kind)
                second.append(("template", q))
        return tuple(first + second)

    @cached_property
    def _plan(self) -> FlaggerPlan:
        """Everything a tick needs that depends only on the spec (built on first use)."""
        return build_plan(self.spec, self._checks, self._judged, self.max_weight(), self._mirror_percent)

    def matches(self, headers: dict[str, str]) -> bool:
        """Whether a request with these headers matches ``analysis.match`` (A/B routing):
        any entry whose header conditions all hold. Header names are case-insensitive."""
        low = {k.lower(): v for k, v in headers.items()}
        return any(
            all(sm.matches(low.get(name.lower())) for name, sm in m.headers.items()) for m in self.analysis.match
        )

    # -- the policy protocol ----------------------------------------------------------

    def initial_state(self) -> FlaggerState:
        return FlaggerState()

    def next_tick(self, state: FlaggerState, t: float) -> float | None:
        if state.phase in TERMINAL:
            return None
        return t + self._plan.interval_s if state.next_at is None else state.next_at

    def event(self, state: FlaggerState) -> str:
        """The state's ``event``: what the step that made it did."""
        return state.event

    def status(self, state: FlaggerState) -> dict[str, object]:
        out: dict[str, object] = {
            "phase": state.phase,
            "canary_weight": state.canary_weight,
            "failed_checks": state.failed_checks,
            "iterations": state.iterations,
        }
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
    def tags(self) -> PolicyTags:
        """A statistical judge reads both versions' counters (and histograms, if it judges
        latency), and the checks it takes over read their queries' values no more."""
        judge = self.judge
        return PolicyTags(
            reads_versions=judge is not None,
            versions_latency=judge is not None and judge.needs_latency,
            steps_by_class=True,
            trace_only_queries=frozenset(c.name for c in self._plan.checks if c.judged),
        )

    def batch_judge(self) -> Judge | None:
        """The statistical judge, run by the world for a class of runs at once."""
        return self.judge

    def observation_keys(self, batch: BatchObservation) -> np.ndarray | None:
        """Class stepping's keys: what each threshold-range check makes of each run's value
        (``check_outcomes``); the values themselves show only in event text."""
        checks = [c for c in self._plan.checks if not c.judged]
        keys = np.zeros((batch.size, len(checks)), dtype=np.int64)
        for j, c in enumerate(checks):
            if c.name in batch.values:
                keys[:, j] = check_outcomes(c, batch.values[c.name], batch.single[c.name], batch.metrics[c.name])
            else:  # no such query: no values (``_run_metrics`` reads None)
                keys[:, j] = CHECK_NO_VALUES
        return keys

    @cached_property
    def _judged(self) -> frozenset[str]:
        return judged_signals(self.judge) if self.judge is not None else frozenset()

    def step(self, state: FlaggerState, obs: Observation) -> tuple[FlaggerState, tuple[Action, ...]]:
        """One ``advanceCanary`` run. See the module docstring for the order of work."""
        if state.phase in TERMINAL:
            return state, ()
        actions = _Tick()
        p = self._plan
        new = self._advance(p, state, obs, actions)
        next_at = _next_at(p.interval_s, obs.t, actions.elapsed_s) if actions.elapsed_s or state.next_at else None
        if next_at != new.next_at:
            new = replace(new, next_at=next_at)
        return new, tuple(actions)

    def _advance(self, p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action]) -> FlaggerState:
        if p.suspended:
            return replace(s, event="skipping canary run as object is suspended")
        phase = s.phase
        if not p.skip_analysis and not is_ready(obs.primary, p.primary_ready_threshold):
            if not _deadline_passed(p, obs.primary, obs.t):
                return replace(s, event="waiting for the primary to be ready")
            if phase in (PROMOTING, FINALISING) and not p.legacy_failed_promotion:
                # handleFailedPromotion: the canary is the only healthy copy.
                acts += (set_weights(TOTAL_WEIGHT), FINISH_FAILED)
                _post_rollout(p, obs, acts)
                return _fresh(FAILED, "Promotion failed, primary not ready", TOTAL_WEIGHT)
            return _rollback(p, s, obs, acts, "primary progress deadline exceeded")

        routes = NOP_ROUTES[s.iterations > 0] if p.kubernetes else obs.routes  # NopRouter.GetRoutes
        if routes.mirrored and not p.mirror_routes:
            routes = Routes(routes.canary_weight, False, routes.matched)  # this GetRoutes never reports it
        if phase in (INITIALIZED, WAITING):  # checkCanaryStatus
            for hook in p.confirm_rollout:
                if not _call(hook, obs, acts):
                    return _set_phase(p, s, WAITING, f"waiting for approval {hook.name}")
            acts.append(SCALE_UP)
            return _fresh(PROGRESSING, "New revision detected! Scaling up canary")

        if not is_ready(obs.canary, p.canary_ready_threshold):  # IsCanaryReady
            if _deadline_passed(p, obs.canary, obs.t):
                return _rollback(p, s, obs, acts, "canary progress deadline exceeded")
            return replace(s, event="waiting for the canary to be ready")

        if p.skip_analysis:  # shouldSkipAnalysis
            acts += (set_weights(0), PROMOTE, FINISH_SUCCEEDED)
            if not p.skip_post_rollout:
                _post_rollout(p, obs, acts)
            return _set_phase(p, s, SUCCEEDED, "Promotion completed! Canary analysis was skipped")
        if phase in (PROGRESSING, WAITING, WAITING_PROMOTION):
            for hook in p.rollback:
                if _call(hook, obs, acts):
                    return _rollback(p, s, obs, acts, f"rollback webhook {hook.name} invoked")
        if phase == PROMOTING:
            return _promotion_traffic_shift(p, s, routes, acts)
        if phase == FINALISING:
            acts.append(FINISH_SUCCEEDED)
            _post_rollout(p, obs, acts)
            return _set_phase(p, s, SUCCEEDED, "Promotion completed! Scaling down canary")
        if phase in (PROGRESSING, WAITING_PROMOTION) and s.failed_checks >= p.threshold:
            return _rollback(p, s, obs, acts, f"failed checks threshold reached {s.failed_checks}")

        why = ""
        if routes.canary_weight == 0 and s.iterations == 0 and not (p.mirror and routes.mirrored):
            for hook in p.pre_rollout:
                if not _call(hook, obs, acts):
                    why = f"Halt advancement pre-rollout check {hook.name} failed"
                    break
        else:
            for hook in p.rollout:
                if not _call(hook, obs, acts):
                    why = f"Halt advancement external check {hook.name} failed"
                    break
            else:
                why, s, verdict = self._run_metrics(p, s, obs)
                if verdict is not None:
                    if verdict.reject:
                        assert self.judge is not None  # a verdict comes from the judge
                        reason = f"judge {self.judge.kind} rejected the canary: {verdict.detail.get('statistic', '')}"
                        return _rollback(p, s, obs, acts, reason.rstrip(": "))
                    if not why and verdict.accept:
                        # Harm ruled out: promote now, through the confirm-promotion gates.
                        waiting = _confirm_promotion(p, s, obs, acts)
                        return waiting if waiting is not None else _promote(p, s, acts)
        if why:
            return replace(s, failed_checks=s.failed_checks + 1, event=why)

        strategy = p.strategy
        if strategy == "ab-testing":
            return _run_ab(p, s, obs, acts)
        if strategy == "blue-green":
            return _run_blue_green(p, s, obs, acts, routes)
        step = p.fixed_step if p.fixed_step is not None else self.next_step_weight(routes.canary_weight)
        if step > 0:
            if not routes.mirrored and s.phase not in (PROMOTING, WAITING_PROMOTION, FINALISING):
                for hook in p.confirm_traffic_increase:
                    if not _call(hook, obs, acts):
                        return replace(s, event=f"waiting for traffic increase approval {hook.name}")
            return self._run_canary(p, s, obs, acts, routes)
        return replace(s, event="")

    # -- pieces of advanceCanary ----------------------------------------------------------

    def _run_judge(self, s: FlaggerState, obs: Observation) -> tuple[FlaggerState, Judgement]:
        """Ask the judge (no data without per-version counters: it cannot look). Under
        class stepping the world judges (``batch_judge``) and keeps the judge's state."""
        versions = obs.versions
        if versions is None:
            return s, Judgement(Verdict.NO_DATA, detail={"statistic": "no per-version counters"})
        if type(versions) is Judged:
            verdict = versions.judgement
            return replace(s, judge_detail=tuple(sorted(verdict.detail.items()))), verdict
        if versions is ASK_JUDGE:
            raise JudgementNeeded
        assert isinstance(versions, JudgeData)
        # States built from scratch (a new revision starting Progressing) carry no judge state.
        judge = self.judge
        assert judge is not None  # called only for a policy with a judge
        prior = s.judge if s.judge is not None else judge.initial_state()
        state, verdict = judge.judge(prior, versions)
        return replace(s, judge=state, judge_detail=tuple(sorted(verdict.detail.items()))), verdict

    def _run_metrics(
        self, p: FlaggerPlan, s: FlaggerState, obs: Observation
    ) -> tuple[str, FlaggerState, Judgement | None]:
        """``runBuiltinMetricChecks`` then ``runMetricChecks``: stop at the first failure,
        whose message is returned ("" when all pass).

        The judge answers for the builtin metrics it judges, at the first one's place."""
        verdict = None
        metrics = obs.metrics
        for c in p.checks:
            if c.judged:
                if verdict is None:
                    s, verdict = self._run_judge(s, obs)
                    if verdict.reject:
                        return "", s, verdict
                    if verdict.verdict in (Verdict.NO_DATA, Verdict.FAIL):
                        assert self.judge is not None  # a check is judged only with a judge
                        what = "no values found for" if verdict.verdict == Verdict.NO_DATA else "failed"
                        return f"Halt advancement judge {self.judge.kind} {what} {c.name}", s, verdict
                continue
            # One threshold-range check. Both a failed query and no values fail the check:
            # runAnalysis returns false either way and failedChecks grows by one.
            outcome, why = check_outcome(c, metrics.get(c.name))
            if outcome != CHECK_PASSED:
                return why, s, verdict
        return "", s, verdict

    def _run_canary(
        self, p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action], routes: Routes
    ) -> FlaggerState:
        """``runCanary``: step the weight up (one mirroring step first), or promote at max."""
        weight = routes.canary_weight
        if weight < p.max_weight:
            step = p.fixed_step if p.fixed_step is not None else self.next_step_weight(weight)
            if p.mirror and weight == 0:
                if not routes.mirrored:
                    acts.append(p.mirror_weights)
                    return replace(s, canary_weight=0, event="Running mirror step 100/0")
                new = step
            else:
                new = min(TOTAL_WEIGHT, weight + step)
            acts.append(set_weights(new))
            return replace(s, canary_weight=new, event=f"Advance canary weight {new}")
        waiting = _confirm_promotion(p, s, obs, acts)
        return waiting if waiting is not None else _promote(p, s, acts)


#: ``check_outcome``'s codes: what a threshold-range check made of a value.
CHECK_PASSED, CHECK_BELOW, CHECK_ABOVE, CHECK_NO_VALUES, CHECK_QUERY_FAILED = range(5)


def check_outcome(c: Check, val: MetricValue) -> tuple[int, str]:
    """One threshold-range check of ``runBuiltinMetricChecks`` / ``runMetricChecks``
    (``scheduler_metrics.go``): its outcome code and, unless it passed, the event's message.
    A request-duration value is compared as a Go duration (``go_duration_ms``)."""
    if type(val) is tuple and len(val) == 1 and val[0] == val[0]:
        val = val[0]  # one series with a value (a sum, a ratio of sums): the common case
    elif type(val) is not float or val != val:  # anything but a plain number
        read = run_query(val)
        if read is None:
            return CHECK_NO_VALUES, c.no_values
        if isinstance(read, QueryError):
            return CHECK_QUERY_FAILED, c.query_failed + read.message
        val = read
    shown = val
    if c.truncate:
        val = float(go_duration_ms(val * c.unit_ms))
        shown = val / 1e6
    if c.lo is not None and val < c.lo:
        return CHECK_BELOW, f"Halt advancement {c.name} {shown:.2f} < {c.lo_text}"
    if c.hi is not None and val > c.hi:
        return CHECK_ABOVE, f"Halt advancement {c.name} {shown:.2f} > {c.hi_text}"
    return CHECK_PASSED, ""


#: Below this magnitude ``go_duration_ms``'s product cannot wrap around, and a float
#: column can be truncated in one numpy pass (``check_outcomes``).
_NO_WRAP_MS = 2.0**63 / 1e6 / 2


def check_outcomes(c: Check, values: np.ndarray, single: np.ndarray, metrics: Sequence[MetricValue]) -> np.ndarray:
    """``check_outcome``'s codes for a column of runs (``BatchObservation``): the single
    numbers in one numpy pass, any other result run by run."""
    codes = np.full(len(values), CHECK_NO_VALUES, dtype=np.int64)
    v = values
    if c.truncate:
        v = v * c.unit_ms
        # Go's conversion truncates toward zero; the wrap-around cases go run by run.
        single = single & ~(np.abs(v) >= _NO_WRAP_MS)
        v = np.trunc(np.where(single, v, 0.0)) * 1e6
    plain = single & (values == values)
    if c.lo is not None:
        codes[plain & (v < c.lo)] = CHECK_BELOW
    below = codes == CHECK_BELOW
    if c.hi is not None:
        codes[plain & ~below & (v > c.hi)] = CHECK_ABOVE
    codes[plain & ~below & (codes != CHECK_ABOVE)] = CHECK_PASSED
    for i in np.flatnonzero(~single).tolist():
        m = metrics[i]
        # An empty result (no canary traffic yet: the common other case) is no values.
        codes[i] = CHECK_NO_VALUES if m == () or m is None else check_outcome(c, m)[0]
    return codes


#: ``RunQuery``'s error for a scalar result: it unmarshals ``data.result`` into a list of
#: series, and a scalar's ``[time, "value"]`` is not one.
SCALAR_UNREADABLE = QueryError(
    "error unmarshaling result: json: cannot unmarshal number into Go struct field .Data.Result"
)


def run_query(value: MetricValue) -> float | QueryError | None:
    """What Flagger's Prometheus client makes of a query's result
    (``pkg/metrics/providers/prometheus.go`` ``RunQuery``): the value of the *last* series
    of a vector (``single_value``); None for ``ErrNoValuesFound`` (an empty result, or a
    NaN last value); the error of a failed query; an unmarshaling error for a scalar
    result (``ScalarResult``); ``ErrMultipleValuesReturned`` for a range vector with series
    (``MatrixResult``). A plain float is a value (NaN: no values).
    """
    if isinstance(value, ScalarResult):
        return SCALAR_UNREADABLE
    read = single_value(value)
    if read is None or isinstance(read, QueryError):
        return read
    return None if isnan(read) else float(read)


def is_ready(r: Readiness, threshold: int) -> bool:
    """``isDeploymentReady`` (``pkg/canary/deployment_ready.go``) with a ready threshold:
    once every pod is updated, ready when ``availableReplicas >=
    int32(float32(updatedReplicas) * float32(threshold)/float32(100))`` (float32
    arithmetic, truncated); without pod counts, or during a rolling update, only ``ready``
    (all pods available) tells."""
    if r.ready or threshold >= 100 or r.updated is None or r.available is None:
        return r.ready
    need = int(np.float32(r.updated) * (np.float32(threshold) / np.float32(100)))
    return r.available >= need


def _next_at(interval_s: float, t: float, busy_s: float) -> float | None:
    """The next ``advanceCanary`` run after one that started at ``t`` and blocked
    ``busy_s`` seconds on webhook calls; None when it is simply ``t + interval``.

    Runs are fired by a ``time.Ticker`` of the analysis interval from the first one
    (``CanaryJob.Start``; ticks at multiples of the interval here); a Go ticker keeps one
    tick waiting for a late receiver and drops the rest, so the next run starts when the
    blocked one ends if a tick fell meanwhile, else at the next tick."""
    grid = (floor(t / interval_s + 1e-9) + 1) * interval_s
    if busy_s <= 0 and abs(grid - (t + interval_s)) <= 1e-9 * grid:
        return None
    return max(grid, t + busy_s)


def _deadline_passed(p: FlaggerPlan, r: Readiness, t: float) -> bool:
    # deployment_ready.go: retriable = !from.Add(deadline).Before(now)
    return r.unready_since is not None and r.unready_since + p.deadline_s < t


def _set_phase(p: FlaggerPlan, s: FlaggerState, phase: str, event: str) -> FlaggerState:
    """``setStatusPhase`` (status.go), and the event."""
    if phase in _KEEPS_WEIGHT:
        return replace(s, phase=phase, event=event)
    iterations = p.iterations - 1 if phase == WAITING_PROMOTION else 0
    return replace(s, phase=phase, canary_weight=0, iterations=iterations, event=event)


def _confirm_promotion(p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action]) -> FlaggerState | None:
    """``runConfirmPromotionHooks``: None when approved, else the waiting state."""
    for hook in p.confirm_promotion:
        if not _call(hook, obs, acts):
            event = f"waiting for promotion approval {hook.name}"
            if s.phase != WAITING_PROMOTION:
                return _set_phase(p, s, WAITING_PROMOTION, event)
            return replace(s, iterations=p.iterations - 1, event=event)
    return None


def _promote(p: FlaggerPlan, s: FlaggerState, acts: list[Action]) -> FlaggerState:
    # Promote copies the canary spec to the primary; setStatusPhase(Promoting) keeps
    # canaryWeight and iterations.
    acts.append(PROMOTE)
    return _set_phase(p, s, PROMOTING, "Copying canary spec to primary")


def _run_ab(p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action]) -> FlaggerState:
    """``runAB``: matched requests to the canary, one iteration per passing tick."""
    n = p.iterations
    if n > s.iterations:
        acts.append(MATCHED_ALL)
        event = f"Advance canary iteration {s.iterations + 1}/{n}"
        return replace(s, iterations=s.iterations + 1, event=event)
    waiting = _confirm_promotion(p, s, obs, acts)
    if waiting is not None:
        return waiting
    return _promote(p, s, acts) if n == s.iterations else replace(s, event="")


def _run_blue_green(
    p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action], routes: Routes
) -> FlaggerState:
    """``runBlueGreen``: iterate with no live traffic, switch all of it, then promote."""
    n = p.iterations
    if n > s.iterations:
        if not p.kubernetes and p.mirror and not routes.mirrored:
            acts.append(p.mirror_weights)
        event = f"Advance canary iteration {s.iterations + 1}/{n}"
        return replace(s, iterations=s.iterations + 1, event=event)
    waiting = _confirm_promotion(p, s, obs, acts)
    if waiting is not None:
        return waiting
    if n == s.iterations:
        if not p.kubernetes:
            acts.append(set_weights(TOTAL_WEIGHT))
        return replace(s, iterations=s.iterations + 1, event="Routing all traffic to canary")
    return _promote(p, s, acts)


def _promotion_traffic_shift(p: FlaggerPlan, s: FlaggerState, routes: Routes, acts: list[Action]) -> FlaggerState:
    """``runPromotionTrafficShift``."""
    step = p.step_weight_promotion
    if p.kubernetes:
        return _set_phase(p, s, FINALISING, "Finalising")
    if step == 0:
        acts.append(set_weights(0))
        return _set_phase(p, s, FINALISING, "Routing all traffic to primary")
    weight = routes.canary_weight
    if weight > 0:
        primary = min(TOTAL_WEIGHT, TOTAL_WEIGHT - weight + step)
        new = max(0, weight - step)
        acts.append(set_weights(new))
        if primary == TOTAL_WEIGHT:
            return _set_phase(p, s, FINALISING, f"Advance primary weight {primary}")
        return replace(s, canary_weight=new, event=f"Advance primary weight {primary}")
    # Flagger does nothing when the canary already has no traffic (and so never
    # reaches Finalising); reproduced as is.
    return replace(s, event="")


def _post_rollout(p: FlaggerPlan, obs: Observation, acts: list[Action]) -> None:
    # Outcomes of post-rollout hooks are only logged (runPostRolloutHooks).
    for hook in p.post_rollout:
        _call(hook, obs, acts)


def _rollback(p: FlaggerPlan, s: FlaggerState, obs: Observation, acts: list[Action], reason: str) -> FlaggerState:
    """``rollback()``: all traffic to primary, SyncStatus{Failed, weight 0}."""
    acts += (set_weights(0), Rollback(reason), FINISH_FAILED)
    _post_rollout(p, obs, acts)
    # The judge's last statistics stay in the status: the trace shows what rejected.
    return _fresh(FAILED, f"Rolling back: {reason}", judge_detail=s.judge_detail)
