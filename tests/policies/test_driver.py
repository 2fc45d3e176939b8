"""The one tick loop (``sim/policies/driver.py``): its rules, and the world and ``pdsim
replay`` driving a policy the same way.

The equivalence test runs a bundled scenario in the world with a trace, records every
observation the policy was served (metric values, readiness, webhooks), writes them as
replay observations, replays them, and expects the very same trace lines. Scenarios with
A/B ``matched`` routes are left out: their ``routed_weight`` differs by design (a
recording does not know the matching cohorts' share of traffic).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import load_scenario
from sim.outcomes import PROMOTED, ROLLED_BACK
from sim.policies.base import (
    Action,
    HookCalled,
    MetricQuery,
    Observation,
    Policy,
    PolicyTags,
    Promote,
    Rollback,
    Routes,
    SetWeights,
)
from sim.policies.driver import Decision, Rollout, TickError, drive, next_tick, routes_after, wants_line
from sim.runs.replay import Observations, replay
from sim.world.controller import World

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


class Recording(Policy):
    """Another policy, unchanged, that keeps every observation it is served."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.terminal_phases = inner.terminal_phases
        self.seen: list[Observation] = []

    @property
    def tags(self) -> PolicyTags:
        return self.inner.tags

    def matches(self, headers: dict[str, str]) -> bool:
        return self.inner.matches(headers)

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def next_tick(self, state: Any, t: float) -> float | None:
        return self.inner.next_tick(state, t)

    def queries(self) -> list[MetricQuery]:
        return list(self.inner.queries())

    def status(self, state: Any) -> dict[str, Any]:
        return self.inner.status(state)

    def event(self, state: Any) -> str:
        return self.inner.event(state)

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        self.seen.append(obs)
        return self.inner.step(state, obs)


def _rows(seen: list[Observation]) -> list[tuple[float, str, Any]]:
    """The observations as replay rows: every value at the tick it was served. Readiness
    is written where its streak began, so the replay's ``unready_since`` agrees."""
    rows: list[tuple[float, str, Any]] = []
    for obs in seen:
        rows += [(obs.t, name, value) for name, value in obs.metrics.items()]
        rows += [(obs.t, f"webhook:{key}", ok) for key, ok in obs.webhooks.items()]
        for workload, ready in (("canary", obs.canary), ("primary", obs.primary)):
            since = ready.unready_since if not ready.ready and ready.unready_since is not None else obs.t
            rows.append((min(since, obs.t), f"ready:{workload}", ready.ready))
    return rows


@pytest.mark.parametrize(
    ("scenario", "seed"),
    [("error-spike.yaml", 3), ("good-release.yaml", 5), ("argo-canary-steps.yaml", 3), ("argo-bluegreen.yaml", 8)],
)
def test_world_and_replay_write_the_same_trace(scenario, seed):
    path = SCENARIOS / scenario
    sc = load_scenario(path)
    policy = Recording(scenario_policy(sc, path))
    result = World(sc, policy, [seed], trace=True).run()[0]
    assert result.trace and policy.seen
    observations = Observations.from_rows(_rows(policy.seen))
    replayed = replay(policy.inner, observations, horizon_s=policy.seen[-1].t)
    assert replayed.trace == result.trace
    assert replayed.decision == result.record.outcome
    assert replayed.decision_time_s == result.record.decision_time_s
    assert replayed.ticks == result.record.ticks
    assert replayed.final_phase == result.record.final_phase


# -- the rules ----------------------------------------------------------------------------------


class Clock(Policy):
    """Ticks at the times it is given, then stops."""

    name = "clock"
    terminal_phases = frozenset({"Done"})

    def __init__(self, *times: float) -> None:
        self.times = times

    def initial_state(self) -> int:
        return 0

    def next_tick(self, state: int, t: float) -> float | None:
        return self.times[state] if state < len(self.times) else None

    def queries(self) -> list[MetricQuery]:
        return []

    def status(self, state: int) -> dict[str, Any]:
        return {"phase": "Progressing", "canary_weight": 0}

    def step(self, state: int, obs: Observation) -> tuple[int, tuple[Action, ...]]:
        return state + 1, ()


def _times(policy: Policy, horizon: float) -> list[float]:
    rollout = Rollout.start(policy)
    return [tick.rollout.t for tick in drive(policy, rollout, lambda r: Observation(r.t, r.ticks), horizon)]


def test_the_first_tick_may_come_at_once_later_ones_strictly_later():
    assert _times(Clock(0.0, 15.0, 30.0), math.inf) == [0.0, 15.0, 30.0]
    with pytest.raises(TickError, match=r"policy 'clock': next_tick\(15.0\) = 15.0 does not move time forward"):
        _times(Clock(15.0, 15.0), math.inf)
    with pytest.raises(TickError, match="does not move time forward"):
        _times(Clock(10.0, 5.0), math.inf)


def test_a_tick_at_or_past_the_horizon_ends_the_rollout():
    assert _times(Clock(10.0, 20.0, 30.0), 20.0) == [10.0]
    # An inclusive horizon (a replay's last row) is the next float after it.
    assert _times(Clock(10.0, 20.0, 30.0), math.nextafter(20.0, math.inf)) == [10.0, 20.0]
    assert next_tick(Clock(), 0, 0.0, math.inf, first=True) is None


def test_the_first_promote_or_rollback_decides():
    d = Decision()
    assert d.note(Rollback("bad"), 30.0)
    assert not d.note(Promote(), 60.0)
    assert (d.outcome, d.time, d.reason) == (ROLLED_BACK, 30.0, "bad")
    d = Decision()
    assert d.note(Promote(), 60.0) and d.outcome == PROMOTED


def test_routes_after_actions():
    r = routes_after(Routes(), SetWeights(20, mirrored=True))
    assert r == Routes(20, True, False)
    assert routes_after(r, HookCalled("h", "rollout", True)) is r
    assert routes_after(r, Rollback("x")) == Routes()


def test_change_only_trace_rule():
    status = {"phase": "Progressing", "canary_weight": 20}
    hook = (HookCalled("h", "rollout", True),)
    assert wants_line(False, [dict(status)], status, hook)  # every tick by default
    assert wants_line(True, [], status, hook)  # the first line
    assert not wants_line(True, [dict(status)], status, hook)  # nothing changed, only a webhook
    assert wants_line(True, [dict(status)], status, (SetWeights(20),))  # did something
    assert wants_line(True, [dict(status)], {**status, "canary_weight": 40}, ())  # status changed


def test_a_policy_inherits_the_declared_defaults():
    policy = Clock()
    assert policy.tags == PolicyTags()
    assert not policy.matches({"x-canary": "insider"})
    assert policy.describe() == []
    assert isinstance(policy, Policy)
