"""Flagger's canary analysis as a pure state machine.

One call of ``FlaggerCanary.step`` is one run of Flagger's ``advanceCanary``
(fluxcd/flagger ``pkg/controller/scheduler.go``), in the same order of work:

1. primary readiness (``IsPrimaryReady``): retriable waits do nothing; a passed
   progress deadline rolls back;
2. ``checkCanaryStatus``: a new revision scales the canary up and starts
   Progressing with weight, failed checks and iterations zeroed; no analysis that tick;
3. canary readiness (``IsCanaryReady``), as for the primary;
4. Promoting: ``runPromotionTrafficShift``; Finalising: scale down, Succeeded;
5. ``failedChecks >= threshold`` in Progressing: rollback, at the start of the tick
   *after* the threshold-th failure;
6. the first step (weight 0, iterations 0) runs pre-rollout hooks only; later steps run
   the analysis; a failure adds one to ``failedChecks`` (cumulative; nothing resets
   it but ``SyncStatus``) and the tick ends with no traffic step;
7. ``runCanary``: ``weight += nextStepWeight`` (can overshoot ``maxWeight``, capped at
   100); once ``weight >= maxWeight``: ``Promote`` and phase Promoting.

Status fields are written as Flagger writes them (``pkg/canary/status.go``):
``setStatusPhase`` zeroes ``canaryWeight`` and ``iterations`` for every phase but
Progressing, Waiting and Promoting; a rollback syncs ``{Failed, weight 0}``, which zeroes
``failedChecks`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

from sim.policies.base import (Action, Finish, MetricQuery, Observation, Promote, Readiness, Rollback,
                               ScaleUp, SetWeights)
from sim.policies.flagger_spec import FlaggerAnalysis, FlaggerPolicySpec

TOTAL_WEIGHT = 100
MIN_INTERVAL_S = 10.0  # Canary.GetAnalysisInterval clamps shorter intervals to 10s

INITIALIZED = "Initialized"
PROGRESSING = "Progressing"
PROMOTING = "Promoting"
FINALISING = "Finalising"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})


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


class FlaggerCanary:
    """Flagger's canary strategy (progressive traffic shifting) with builtin metrics.

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
        return self.spec.analysis

    @property
    def interval_s(self) -> float:
        return max(self.analysis.interval, MIN_INTERVAL_S)

    @property
    def threshold(self) -> int:
        return self.analysis.threshold if self.analysis.threshold > 0 else 1

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
        return list(self._queries)

    @cached_property
    def _queries(self) -> tuple[MetricQuery, ...]:
        # Derived lazily (not in __init__): constructors only store parameters.
        out = []
        for m in self.analysis.metrics:
            lo = hi = None
            if m.thresholdRange is not None:
                lo, hi = m.thresholdRange.min, m.thresholdRange.max
            elif m.name == "request-success-rate":
                lo = m.threshold  # legacy: fails when threshold > value
            else:
                hi = m.threshold  # legacy: fails when value > threshold (ms)
            out.append(MetricQuery(name=m.name, signal=m.name, window_s=m.interval, min=lo, max=hi))
        return tuple(out)

    # -- the policy protocol ----------------------------------------------------------

    def initial_state(self) -> FlaggerState:
        return FlaggerState()

    def next_tick(self, state: FlaggerState, t: float) -> float | None:
        if state.phase in TERMINAL:
            return None
        return t + self.interval_s

    def status(self, state: FlaggerState) -> dict[str, object]:
        return {"phase": state.phase, "canary_weight": state.canary_weight,
                "failed_checks": state.failed_checks, "iterations": state.iterations}

    def step(self, state: FlaggerState, obs: Observation) -> tuple[FlaggerState, tuple[Action, ...]]:
        """One ``advanceCanary`` run. See the module docstring for the order of work."""
        if state.phase in TERMINAL:
            return state, ()

        # IsPrimaryReady: a retriable wait does nothing; a passed deadline rolls back, or,
        # once the primary holds the new spec (Promoting/Finalising), handleFailedPromotion
        # sends all traffic to the canary, the only healthy copy, and fails.
        if not obs.primary.ready:
            if not self._deadline_passed(obs.primary, obs.t):
                return replace(state, event="waiting for the primary to be ready"), ()
            if state.phase in (PROMOTING, FINALISING):
                failed = FlaggerState(phase=FAILED, canary_weight=TOTAL_WEIGHT,
                                      event="Promotion failed, primary not ready")
                return failed, (SetWeights(TOTAL_WEIGHT), Finish(FAILED))
            return self._rollback(state, "primary progress deadline exceeded")

        # checkCanaryStatus: a new revision starts the analysis and returns.
        if state.phase == INITIALIZED:
            started = FlaggerState(phase=PROGRESSING, event="New revision detected! Scaling up canary")
            return started, (ScaleUp(),)

        # IsCanaryReady: retriable waits count nothing; a passed deadline rolls back.
        if not obs.canary.ready:
            if self._deadline_passed(obs.canary, obs.t):
                return self._rollback(state, "canary progress deadline exceeded")
            return replace(state, event="waiting for the canary to be ready"), ()

        if state.phase == PROMOTING:
            return self._promotion_traffic_shift(state, obs.routes.canary_weight)
        if state.phase == FINALISING:
            done = replace(state, phase=SUCCEEDED, canary_weight=0, iterations=0,
                           event="Promotion completed! Scaling down canary")
            return done, (Finish(SUCCEEDED),)

        if state.failed_checks >= self.threshold:
            return self._rollback(state, f"failed checks threshold reached {state.failed_checks}")

        weight = obs.routes.canary_weight
        if weight == 0 and state.iterations == 0:
            pass  # first step: pre-rollout hooks only (none are modelled: they pass)
        else:
            ok, why = self._run_analysis(obs)
            if not ok:
                return replace(state, failed_checks=state.failed_checks + 1, event=why), ()

        if self.next_step_weight(weight) > 0:
            return self._run_canary(state, weight)
        return replace(state, event=""), ()

    # -- pieces of advanceCanary ----------------------------------------------------------

    def _deadline_passed(self, r: Readiness, t: float) -> bool:
        # deployment_ready.go: retriable = !from.Add(deadline).Before(now)
        return r.unready_since is not None and r.unready_since + self.spec.progressDeadlineSeconds < t

    def _run_analysis(self, obs: Observation) -> tuple[bool, str]:
        """``runBuiltinMetricChecks``: stop at the first failing metric."""
        for q in self._queries:
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

    def _run_canary(self, state: FlaggerState, weight: int) -> tuple[FlaggerState, tuple[Action, ...]]:
        """``runCanary``: step the weight up, or promote once at ``maxWeight``."""
        if weight < self.max_weight():
            new = min(TOTAL_WEIGHT, weight + self.next_step_weight(weight))
            return (replace(state, canary_weight=new, event=f"Advance canary weight {new}"),
                    (SetWeights(new),))
        # Promote copies the canary spec to the primary; setStatusPhase(Promoting)
        # keeps canaryWeight and iterations.
        return replace(state, phase=PROMOTING, event="Copying canary spec to primary"), (Promote(),)

    def _promotion_traffic_shift(self, state: FlaggerState, weight: int) -> tuple[FlaggerState, tuple[Action, ...]]:
        """``runPromotionTrafficShift``."""
        step = self.analysis.stepWeightPromotion
        if step == 0:
            return (replace(state, phase=FINALISING, canary_weight=0, iterations=0,
                            event="Routing all traffic to primary"), (SetWeights(0),))
        if weight > 0:
            primary = min(TOTAL_WEIGHT, TOTAL_WEIGHT - weight + step)
            new = max(0, weight - step)
            if primary == TOTAL_WEIGHT:
                return (replace(state, phase=FINALISING, canary_weight=0, iterations=0,
                                event=f"Advance primary weight {primary}"), (SetWeights(new),))
            return (replace(state, canary_weight=new, event=f"Advance primary weight {primary}"),
                    (SetWeights(new),))
        # Flagger does nothing when the canary already has no traffic (and so never
        # reaches Finalising); reproduced as is.
        return replace(state, event=""), ()

    def _rollback(self, state: FlaggerState, reason: str) -> tuple[FlaggerState, tuple[Action, ...]]:
        """``rollback()``: all traffic to primary, SyncStatus{Failed, weight 0}."""
        failed = FlaggerState(phase=FAILED, event=f"Rolling back: {reason}")
        return failed, (SetWeights(0), Rollback(reason), Finish(FAILED))
