"""``check_policy``: Flagger passes it, and it catches policies that break the contract.

The contract (``sim/policies/base.py``, checked by ``sim/policies/checks.py``): the
policy declares the whole interface, ``step`` is pure (never mutates its state argument,
same inputs give the same result), every weight is 0-100, terminal phases are absorbing,
and ``next_tick`` moves time forward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from sim.policies.base import Finish, MetricQuery, Observation, Policy, PolicyContractError, SetWeights
from sim.policies.checks import check_policy
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from tests.helpers import LAT, SR

SPECS = {
    "step-weight": {
        "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 50, "metrics": [SR, LAT]}
    },
    "overshoot": {"analysis": {"threshold": 2, "stepWeight": 20, "maxWeight": 50, "metrics": [SR]}},
    "step-weights": {
        "analysis": {"interval": "30s", "threshold": 3, "stepWeights": [1, 5, 10, 25, 50, 80], "metrics": [SR, LAT]}
    },
    "promotion-steps": {"analysis": {"stepWeight": 25, "stepWeightPromotion": 30, "metrics": [LAT]}},
    "legacy-thresholds": {
        "analysis": {
            "stepWeight": 5,
            "maxWeight": 100,
            "metrics": [
                {"name": "request-success-rate", "threshold": 99},
                {"name": "request-duration", "threshold": 500},
            ],
        }
    },
    "clamped-interval-threshold-0": {"analysis": {"interval": "2s", "threshold": 0, "stepWeight": 50, "metrics": [SR]}},
    "short-deadline": {"analysis": {"stepWeight": 10, "metrics": [SR]}, "progressDeadlineSeconds": 0},
    "no-metrics": {"analysis": {"stepWeight": 33}},
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_flagger_canary_keeps_the_contract(spec):
    policy = FlaggerCanary(FlaggerPolicySpec.model_validate(spec))
    check_policy(policy, episodes=40, max_ticks=40, seed=7)


def test_flagger_canary_satisfies_the_protocol():
    policy = FlaggerCanary(FlaggerPolicySpec.model_validate(SPECS["step-weight"]))
    assert isinstance(policy, Policy)


# -- deliberately broken policies -----------------------------------------------------------


@dataclass(frozen=True)
class ToyState:
    phase: str = "Progressing"
    n: int = 0


class Toy(Policy):
    """A minimal well-behaved policy: steps the weight by 10 and succeeds at 50 (it
    inherits the defaults of ``tags``, ``matches`` and ``describe`` from ``Policy``).
    The broken policies below each change one thing."""

    name = "toy"
    terminal_phases = frozenset({"Done"})

    def initial_state(self) -> Any:
        return ToyState()

    def next_tick(self, state: Any, t: float) -> float | None:
        return None if state.phase == "Done" else t + 60.0

    def queries(self) -> list[MetricQuery]:
        return [MetricQuery(name="request-success-rate", signal="request-success-rate", window_s=60.0, min=99.0)]

    def status(self, state: Any) -> dict[str, Any]:
        return {"phase": state.phase, "canary_weight": 10 * state.n if state.phase != "Done" else 0}

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple]:
        if state.phase == "Done":
            return state, ()
        if state.n >= 5:
            return replace(state, phase="Done"), (SetWeights(0), Finish("Done"))
        new = replace(state, n=state.n + 1)
        return new, (SetWeights(10 * new.n),)


class Mutating(Toy):
    """Keeps its counter in a dict and bumps it in place."""

    def initial_state(self) -> Any:
        return {"phase": "Progressing", "n": 0}

    def next_tick(self, state: Any, t: float) -> float | None:
        return t + 60.0

    def status(self, state: Any) -> dict[str, Any]:
        return {"phase": state["phase"], "canary_weight": 0}

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple]:
        state["n"] += 1
        return state, ()


class Overweight(Toy):
    """Routes 120% of traffic to the canary on its third step."""

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple]:
        new = replace(state, n=state.n + 1)
        return new, (SetWeights(120 if new.n == 3 else 10),)


class LeakyTerminal(Toy):
    """Keeps acting after reaching its terminal phase."""

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple]:
        if state.phase == "Done":
            return state, (Finish("Done"),)
        return super().step(state, obs)


class Nondeterministic(Toy):
    """Decides from a call counter kept on the policy object, not in the state."""

    def __init__(self) -> None:
        self.calls = 0

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple]:
        self.calls += 1
        return state, (SetWeights(self.calls % 50),)


class Stalled(Toy):
    """Asks for its next tick at the current time."""

    def next_tick(self, state: Any, t: float) -> float | None:
        return t


class KeepsTicking(Toy):
    """Asks for more ticks after its terminal phase."""

    def next_tick(self, state: Any, t: float) -> float | None:
        return t + 60.0


def test_the_toy_policy_itself_passes():
    check_policy(Toy(), episodes=5)


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        (Mutating(), "step mutated its state argument"),
        (Overweight(), "weight 120 outside 0-100"),
        (LeakyTerminal(), "terminal phase Done is not absorbing"),
        (Nondeterministic(), "step is not deterministic"),
        (Stalled(), "does not move time forward"),
        (KeepsTicking(), "next_tick after terminal phase Done"),
    ],
    ids=[
        "mutates-state",
        "weight-120",
        "terminal-not-absorbing",
        "nondeterministic",
        "stalled-clock",
        "ticks-after-terminal",
    ],
)
def test_check_policy_catches_a_broken_policy(policy, rule):
    with pytest.raises(PolicyContractError, match=rule):
        check_policy(policy, episodes=3, max_ticks=20)


def test_error_names_episode_and_tick():
    with pytest.raises(PolicyContractError, match=r"episode 0 tick 3: weight 120"):
        check_policy(Overweight(), episodes=1)


class Undeclared:
    """The toy's members without subclassing ``Policy``: no ``tags``, ``matches`` or ``describe``."""

    name = Toy.name
    terminal_phases = Toy.terminal_phases
    initial_state = Toy.initial_state
    next_tick = Toy.next_tick
    queries = Toy.queries
    status = Toy.status
    step = Toy.step


def test_a_policy_must_declare_the_whole_interface():
    with pytest.raises(
        PolicyContractError, match="Undeclared lacks tags, matches, describe, event of the Policy protocol"
    ):
        check_policy(Undeclared(), episodes=1)  # type: ignore[arg-type]  # the very mistake under test


class _CarelessKeys(FlaggerCanary):
    """A class-stepping canary whose keys ignore its checks' outcomes."""

    def observation_keys(self, batch: Any) -> Any:
        return np.zeros((batch.size, 1), dtype=np.int64)


def test_check_policy_catches_keys_that_merge_what_step_tells_apart():
    """``check_class_keys``: metrics that pass and fail a check must not share a key."""
    policy = _CarelessKeys(FlaggerPolicySpec.model_validate(SPECS["step-weight"]))
    assert policy.tags.steps_by_class
    with pytest.raises(PolicyContractError, match="observation_keys gives metrics"):
        check_policy(policy, episodes=10, max_ticks=30, seed=7)


class _ReadsWhatItCallsTraceOnly(FlaggerCanary):
    """A canary that declares its success-rate check's query trace-only, yet checks it."""

    @property
    def tags(self) -> Any:
        return replace(super().tags, trace_only_queries=frozenset({"request-success-rate"}))


def test_check_policy_catches_a_trace_only_query_that_step_reads():
    """``check_trace_only_queries``: leaving a trace-only query out must change nothing."""
    policy = _ReadsWhatItCallsTraceOnly(FlaggerPolicySpec.model_validate(SPECS["step-weight"]))
    with pytest.raises(PolicyContractError, match=r"reads the values of \['request-success-rate'\]"):
        check_policy(policy, episodes=10, max_ticks=30, seed=7)


BOTH = frozenset({"request-success-rate", "request-duration"})


@pytest.mark.parametrize(
    ("kind", "judged"), [("sequential", BOTH), ("msprt", BOTH), ("naive", frozenset({"request-success-rate"}))]
)
def test_a_judged_canary_declares_its_judged_checks_trace_only_and_keeps_the_contract(kind, judged):
    """The checks a judge takes over (naive judges error rates only) are the trace-only
    queries (``FlaggerCanary.tags``), and the contract holds with them left out."""
    spec = {**SPECS["step-weight"], "judge": {"kind": kind}}
    policy = FlaggerCanary(FlaggerPolicySpec.model_validate(spec))
    assert policy.tags.trace_only_queries == judged
    check_policy(policy, episodes=20, max_ticks=30, seed=7)


def test_a_canary_without_a_judge_reads_every_query():
    policy = FlaggerCanary(FlaggerPolicySpec.model_validate(SPECS["step-weight"]))
    assert policy.tags.trace_only_queries == frozenset()
