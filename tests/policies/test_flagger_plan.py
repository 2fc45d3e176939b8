"""The speed devices of ``FlaggerCanary`` keep the policy contract.

The spec-derived plan (``sim/policies/flagger_plan.py``) is built on first use and
travels with the policy to worker processes; states copied without the dataclass
``__init__`` are ordinary ``FlaggerState`` values; shared action instances equal freshly
built ones; ``Observation``'s hand-written ``__init__`` behaves like the generated one.
Flagger's semantics themselves are pinned by test_flagger.py and test_flagger_conformance.py.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from sim.policies.base import HookCalled, Observation, Readiness, Routes, SetWeights
from sim.policies.flagger.canary import FlaggerCanary, FlaggerState
from sim.policies.flagger.plan import set_weights
from sim.policies.flagger.spec import FlaggerPolicySpec
from tests.helpers import SR, drive

LAT = {"name": "request-duration", "thresholdRange": {"max": 500.9}}
SPEC = {
    "analysis": {
        "interval": "1m",
        "threshold": 2,
        "stepWeight": 20,
        "maxWeight": 40,
        "metrics": [SR, LAT],
        "webhooks": [
            {"name": "gate", "type": "confirm-promotion"},
            {"name": "load", "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://canary"}},
        ],
    }
}


def policy() -> FlaggerCanary:
    return FlaggerCanary(FlaggerPolicySpec.model_validate(SPEC))


GOOD, BAD = {SR["name"]: 99.9, LAT["name"]: 100.0}, {SR["name"]: 90.0, LAT["name"]: 100.0}


def test_constructor_computes_nothing_and_the_plan_is_built_on_first_use():
    p = policy()
    assert "_plan" not in vars(p)
    p.next_tick(p.initial_state(), 0.0)
    assert "_plan" in vars(p)


def test_a_used_policy_pickles_and_its_copy_steps_identically():
    p = policy()
    ticks = drive(p, [GOOD, GOOD, BAD, GOOD, GOOD, GOOD, GOOD])
    q = pickle.loads(pickle.dumps(p))
    assert drive(q, [GOOD, GOOD, BAD, GOOD, GOOD, GOOD, GOOD]) == ticks
    assert ticks[-1][0].phase == "Succeeded" and ticks[2][0].failed_checks == 1


def test_request_duration_bounds_are_compared_in_whole_milliseconds():
    # 500.9 ms truncates to 500 for both bound and value (flagger pkg/metrics/observers):
    # 500.5 passes, 501.2 fails with the truncated figures in the event.
    ok = drive(policy(), [GOOD, GOOD, {SR["name"]: 99.9, LAT["name"]: 500.5}])
    bad = drive(policy(), [GOOD, GOOD, {SR["name"]: 99.9, LAT["name"]: 501.2}])
    assert ok[-1][0].failed_checks == 0
    assert bad[-1][0].event == "Halt advancement request-duration 501.00 > 500"


def test_states_built_by_the_fast_paths_are_ordinary_states():
    ticks = drive(policy(), [GOOD, GOOD, BAD, BAD, BAD])
    for state, _ in ticks:
        twin = FlaggerState(**{f.name: getattr(state, f.name) for f in dataclasses.fields(FlaggerState)})
        assert state == twin and hash(state) == hash(twin) and repr(state) == repr(twin)
        assert copy.deepcopy(state) == state and pickle.loads(pickle.dumps(state)) == state
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.phase = "Failed"  # type: ignore[misc]
    assert ticks[-1][0] == FlaggerState("Failed", event="Rolling back: failed checks threshold reached 2")


def test_hook_records_carry_the_outcome_and_the_load_testers_rate():
    ticks = drive(policy(), [GOOD, GOOD, GOOD, GOOD, GOOD], webhooks={"gate": False})
    calls = [a for _, actions in ticks for a in actions if isinstance(a, HookCalled)]
    assert HookCalled("load", "rollout", True, 20.0, 60.0) in calls
    assert calls[-1] == HookCalled("gate", "confirm-promotion", False)
    assert ticks[-1][0].phase == "WaitingPromotion"
    # A scripted outcome that is not a bool is recorded as given (and acted on by truth).
    odd = drive(policy(), [GOOD, GOOD, GOOD], webhooks={"load": 1})
    assert HookCalled("load", "rollout", 1, 20.0, 60.0) in odd[-1][1]  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [0, 1, 50, 100, 101, -1, 7.5, True])
def test_shared_set_weights_equal_fresh_ones(weight):
    a = set_weights(weight)
    assert a == SetWeights(weight) and type(a.canary_weight) is type(weight)


def test_observation_init_behaves_like_the_generated_one():
    a, b = Observation(1.0, 2), Observation(t=1.0, tick=2)
    assert a == b and a.metrics == {} and a.metrics is not b.metrics and a.webhooks is not b.webhooks
    assert (a.routes, a.canary, a.primary, a.versions) == (Routes(), Readiness(), Readiness(), None)
    c = Observation(3.0, 4, {"m": None}, Routes(10), Readiness(False, 1.0), Readiness(), {"h": True}, {"h": 2.0}, None)
    assert dataclasses.replace(c, tick=5) == Observation(
        3.0, 5, {"m": None}, Routes(10), Readiness(False, 1.0), webhooks={"h": True}, webhook_latency={"h": 2.0}
    )
    assert pickle.loads(pickle.dumps(c)) == c and "metrics={'m': None}" in repr(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.t = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Observation(1.0)  # type: ignore[call-arg]
