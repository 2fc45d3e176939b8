"""Harm is counted until live traffic leaves the candidate, not at the decision (issue 16,
"Missing" 6, item 4).

Upstream, the decision and the traffic's leaving are two things:

* Flagger's ``rollback`` (fluxcd/flagger ``pkg/controller/scheduler.go`` ``rollback``)
  calls ``meshRouter.SetRoutes(canary, primaryWeight, 0)`` first, then scales the canary
  to zero: traffic leaves in the very reconcile that decides;
* Argo's abort (argoproj/argo-rollouts ``rollout/trafficrouting.go``
  ``reconcileTrafficRouting``, aborted branch) sets the weight to
  ``calculateDesiredWeightOnAbortOrStableRollback``: 0 at once, except under
  ``dynamicStableScale``, where the canary keeps ``maxWeight - maxWeight * stable
  available / replicas`` until the stable ReplicaSet's pods are available again. The
  canary's pods stay ``abortScaleDownDelaySeconds`` longer, but get no traffic.

The world's ledger therefore follows the router: a rollback no longer stops the
accounting; the weights set with it (or later: ``SetWeights.once_primary_ready``) do.
A scripted policy drives the world with ``noise: false`` (every count its expectation), so
the counts below are written by hand.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

import pytest

from sim.inputs.scenario import parse_scenario
from sim.policies.base import Action, Finish, Observation, Policy, Rollback, SetWeights
from sim.world.controller import Workload, run_rollouts
from sim.yamlio import loads_yaml
from tests.world.minute_policy import MinutePolicy

RATE = 10.0  # requests/s
ERRORS = 0.05  # the candidate's error rate; the baseline's is 0


class Scripted(MinutePolicy):
    """Ticks every 60 s and does, at tick k (1-based), ``script[k]``; finishes after
    ``end`` ticks (``Finish`` with the last actions) or never (``end`` None)."""

    name = "scripted"

    def __init__(self, script: dict[int, tuple[Action, ...]], end: int | None) -> None:
        self.script, self.end = script, end

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        tick = state.tick + 1
        acts = self.script.get(tick, ())
        if self.end is not None and tick >= self.end:
            return replace(state, tick=tick, phase="Done"), (*acts, Finish("Done"))
        return replace(state, tick=tick), acts


def _scenario(extra_release: str = ""):
    text = textwrap.dedent(f"""\
        name: harm-follows-traffic
        horizon: 30m
        traffic:
          rate: {RATE:g}/s
          users: 1000
        baseline:
          error_rate: 0
        release:
          faults:
            - {{kind: error_rate, rate: {ERRORS}}}
        {extra_release}
        telemetry:
          noise: false
        """)
    return parse_scenario(loads_yaml(text, file="harm.yaml"))


def _record(policy: Policy, extra_release: str = ""):
    return run_rollouts(_scenario(extra_release), policy, [7])[0].record


def test_rollback_with_weight_zero_counts_up_to_the_decision():
    """Flagger's order (scheduler.go ``rollback``: SetRoutes(primary 100, canary 0) before
    anything else): weight 20 from t=60, rollback at t=240 with weight 0 at once:
    180 s × 10/s × 20% = 360 canary requests, 5% of them excess."""
    rec = _record(Scripted({1: (SetWeights(20),), 4: (SetWeights(0), Rollback("failed checks"))}, end=4))
    assert rec.outcome == "rolled_back" and rec.decision_time_s == 240.0
    assert rec.canary_requests == pytest.approx(360.0)
    assert rec.excess_errors == pytest.approx(360.0 * ERRORS)


def test_harm_goes_on_while_traffic_stays_after_the_decision():
    """The decision at t=240 does not stop the harm while the router still sends 20% to
    the candidate: the weight goes to 0 only at t=420 (three more ticks), so the ledger
    counts 360 s × 10/s × 20% = 720 requests."""
    rec = _record(
        Scripted({1: (SetWeights(20),), 4: (Rollback("abort"),), 7: (SetWeights(0),)}, end=7),
    )
    assert rec.decision_time_s == 240.0
    assert rec.canary_requests == pytest.approx(720.0)
    assert rec.excess_errors == pytest.approx(720.0 * ERRORS)


def test_a_policy_that_ends_with_traffic_on_the_candidate_hurts_until_the_horizon():
    """Rolled back but never routed away: the candidate serves its 20% to the horizon
    (30 min): (1800 − 60) s × 10/s × 20% = 3480 requests."""
    rec = _record(Scripted({1: (SetWeights(20),), 4: (Rollback("abort"),)}, end=4))
    assert rec.canary_requests == pytest.approx(3480.0)


def test_dynamic_stable_scale_abort_keeps_the_weight_until_the_stable_is_ready():
    """argo-rollouts ``rollout/trafficrouting.go`` ``calculateDesiredWeightOnAbortOrStableRollback``:
    under dynamicStableScale the canary keeps its weight until the stable's pods are
    available. The primary is unready from t=100 to t=400 (``release.unready``); the abort
    at t=240 emits ``SetWeights(0, once_primary_ready=True)``: the router holds 20% until
    t=400, so 340 s × 10/s × 20% = 680 requests reach the candidate."""
    policy = Scripted(
        {1: (SetWeights(20),), 4: (SetWeights(0, once_primary_ready=True), Rollback("abort"))},
        end=4,
    )
    rec = _record(policy, "  unready: [{workload: primary, at: 100s, duration: 300s}]")
    assert rec.decision_time_s == 240.0
    assert rec.canary_requests == pytest.approx(680.0)


def test_held_weights_apply_at_once_when_the_primary_is_ready():
    """A ready primary: ``once_primary_ready`` changes nothing (Argo's abort without a
    stable to scale back up: weight 0 at once)."""
    policy = Scripted(
        {1: (SetWeights(20),), 4: (SetWeights(0, once_primary_ready=True), Rollback("abort"))},
        end=4,
    )
    assert _record(policy).canary_requests == pytest.approx(360.0)


def test_held_weights_are_released_at_a_later_tick_of_a_running_policy():
    """The policy keeps ticking after the abort: the held weight-0 applies at t=400 (when
    the primary is ready), between ticks, and the ticks after see 0 routed."""
    policy = Scripted(
        {1: (SetWeights(20),), 4: (SetWeights(0, once_primary_ready=True), Rollback("abort"))},
        end=10,
    )
    rec = _record(policy, "  unready: [{workload: primary, at: 100s, duration: 300s}]")
    assert rec.canary_requests == pytest.approx(680.0)


def test_a_newer_weight_replaces_a_held_one():
    """Weights held for a primary that is ready only at t=400, then the policy sets 0 at
    t=300 itself: traffic leaves at t=300 (240 s × 10/s × 20% = 480)."""
    policy = Scripted(
        {
            1: (SetWeights(20),),
            4: (SetWeights(0, once_primary_ready=True), Rollback("abort")),
            5: (SetWeights(0),),
        },
        end=5,
    )
    rec = _record(policy, "  unready: [{workload: primary, at: 100s, duration: 300s}]")
    assert rec.canary_requests == pytest.approx(480.0)


def test_workload_ready_from_reads_the_timeline_without_consuming_it():
    w = Workload(ready=True)
    w.change(100.0, False)
    w.change(400.0, True)
    assert w.ready_from(50.0) == 50.0
    assert w.ready_from(100.0) == 400.0
    assert w.ready_from(250.0) == 400.0
    assert w.ready_from(500.0) == 500.0
    assert w.view(250.0).ready is False  # nothing was consumed by ready_from
    never = Workload(ready=False)
    assert never.ready_from(0.0) is None
    never.change(30.0, True)
    assert never.ready_from(0.0) == 30.0
