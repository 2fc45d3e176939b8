"""Argo canary pods and readiness (issue 16, "Wrong today" 1 and 2).

Upstream (argoproj/argo-rollouts at 9f8d111d):

* ``rollout/sync.go`` ``shouldFullPromote``: after the last step the canary is scaled to
  ``spec.replicas`` (``GetCanaryReplicasOrWeight`` reads the full weight past the last
  step) and the stable becomes the new ReplicaSet only once its available replicas reach
  ``spec.replicas``;
* ``utils/replicaset/canary.go`` ``AtDesiredReplicaCountsForCanary``: a ``setWeight``
  step completes only when the canary's desired pods are all available;
* ``rollout/trafficrouting.go`` ``reconcileTrafficRouting``: until then the router holds
  the last setWeight before the current step ("Use the previous weight since the new RS
  is not ready for a new weight"), and 0 while the canary has no available pod.

The world counts the canary's pods (``sim.world.controller.Workload.scale``): each
scale-up starts pods that become available ``release.startup`` later, and their
ReplicaSet's update makes the controller reconcile then.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.importers.argo.rollout import import_argo
from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.outcomes import PROMOTED
from sim.policies.argo.plan import routed_pods
from sim.policies.argo.rollout import ArgoRollout
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.base import Observation, Promote, Readiness, ScaleUp, SetWeights
from sim.runs.runner import run_one
from sim.world.controller import Workload
from sim.yamlio import load_yaml_all
from tests.helpers import REPO

ISTIO = {"istio": {"virtualService": {"name": "vsvc"}}}
EXAMPLES = REPO / "tests" / "fixtures" / "argo-examples"


def _policy(steps: list[dict[str, Any]], replicas: int = 1, routing: bool = True) -> ArgoRollout:
    canary: dict[str, Any] = {"steps": steps}
    if routing:
        canary["trafficRouting"] = ISTIO
    return ArgoRollout(ArgoPolicySpec.model_validate({"replicas": replicas, "strategy": {"canary": canary}}))


def _drive(policy: ArgoRollout, readiness, until: float = 600.0) -> list[tuple[float, tuple]]:
    """Step the policy at its own ticks; ``readiness(t)`` is the canary's Readiness."""
    state, t, out, tick = policy.initial_state(), 0.0, [], 0
    while True:
        nt = policy.next_tick(state, t)
        if nt is None or nt > until:
            return out
        t, tick = nt, tick + 1
        state, actions = policy.step(state, Observation(t=t, tick=tick, canary=readiness(t)))
        if actions:
            out.append((t, actions))


def test_no_promotion_of_an_unready_canary_after_the_last_step():
    """Issue 16 "Wrong today" 1 (rollout/sync.go shouldFullPromote): ``ready:canary``
    false from t=30, steps [setWeight 20, pause 1m]: the pause ends at 60 but the canary
    is not available, so no promotion until it is again (at 120)."""
    policy = _policy([{"setWeight": 20}, {"pause": {"duration": "1m"}}])

    def ready(t: float) -> Readiness:
        return Readiness(not (30 <= t < 120), None if not (30 <= t < 120) else 30.0)

    events = _drive(policy, ready)
    promoted = [t for t, acts in events if any(isinstance(a, Promote) for a in acts)]
    assert promoted == [120.0]
    # The router kept the last setWeight (20) meanwhile.
    weights = [(t, a.canary_weight) for t, acts in events for a in acts if isinstance(a, SetWeights)]
    assert weights[0] == (0.0, 20) and all(w == 20 for t, w in weights if t < 120)


def test_counted_pods_hold_each_scale_up():
    """Issue 16 "Wrong today" 2, as the policy sees it (utils/replicaset/canary.go
    AtDesiredReplicaCountsForCanary; rollout/trafficrouting.go reconcileTrafficRouting):
    10 replicas, [setWeight 10, setWeight 50, pause 1m], pods available 60 s after each
    scale-up: 10% at 60, 50% only at 120, promotion at 240."""
    policy = _policy([{"setWeight": 10}, {"setWeight": 50}, {"pause": {"duration": "1m"}}], replicas=10)
    pods = Workload(ready=False)
    scaled: list[tuple[float, int]] = []
    state, t, tick, weights, promoted = policy.initial_state(), 0.0, 0, [], None
    while promoted is None and t < 600:
        nt = policy.next_tick(state, t)
        assert nt is not None
        nw = pods.next_available(t)  # the ReplicaSet's update reconciles the rollout
        t, tick = (min(nt, nw) if nw is not None else nt), tick + 1
        state, actions = policy.step(state, Observation(t=t, tick=tick, canary=pods.view(t)))
        for a in actions:
            if isinstance(a, ScaleUp):
                assert a.replicas is not None
                pods.scale(t, a.replicas, 60.0)
                scaled.append((t, a.replicas))
            elif isinstance(a, SetWeights):
                weights.append((t, a.canary_weight))
            elif isinstance(a, Promote):
                promoted = t
    assert scaled == [(0.0, 1), (60.0, 5), (180.0, 10)]
    assert weights[:2] == [(60.0, 10), (120.0, 50)]
    assert promoted == 240.0


def test_workload_counts_pods():
    """The world's pod model: new pods available after start-up, scale-downs drop the
    starting pods first (kubernetes controller/replicaset getPodsToDelete ranks
    not-ready pods first), an outage makes none available."""
    w = Workload(ready=False)
    assert w.view(0).available is None  # not counted until scaled to a count
    assert w.scale(0.0, 2, 30.0) is True
    assert w.view(0) == Readiness(False, 0.0, updated=2, available=0, startup_s=30.0)
    assert w.next_available(0) == 30.0
    assert w.view(30) == Readiness(True, None, updated=2, available=2, startup_s=30.0)
    assert w.scale(40.0, 5, 30.0) is False
    assert w.view(50).available == 2 and not w.view(50).ready and w.view(50).unready_since == 40.0
    w.scale(60.0, 3, 30.0)  # two of the three starting pods go
    assert w.view(60).available == 2 and w.next_available(60) == 70.0
    assert w.view(70) == Readiness(True, None, updated=3, available=3, startup_s=30.0)
    w.change(80.0, False)
    assert w.view(80) == Readiness(False, 80.0, updated=3, available=0, startup_s=30.0)


def _scenario(startup: str, steps: list[dict[str, Any]], replicas: int = 10) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "argo-startup",
            "horizon": "1h",
            "traffic": {"rate": "20/s", "users": 1000},
            "baseline": {"error_rate": 0.001, "latency": {"median": "40ms", "p99": "250ms"}},
            "release": {"startup": startup},
            "telemetry": {"noise": False},
            "policy": {
                "argo": {
                    "replicas": replicas,
                    "strategy": {"canary": {"steps": steps, "trafficRouting": ISTIO}},
                }
            },
            "runs": 1,
            "seed": 1,
        }
    )


def test_issue_example_in_the_world():
    """Issue 16 "Wrong today" 2, end to end: 10 replicas, steps [setWeight 10,
    setWeight 50, pause 1m], start-up 60 s: upstream holds 10% until 120 s and promotes at
    240 s (pdsim used to route 50% at 60 s and promote at 120 s)."""
    sc = _scenario("60s", [{"setWeight": 10}, {"setWeight": 50}, {"pause": {"duration": "1m"}}])
    result = run_one(sc, scenario_policy(sc), 1, trace=True)
    assert result.record.outcome == PROMOTED and result.record.decision_time_s == 240.0
    routed = [(line["t"], line["routed_weight"]) for line in result.trace]
    assert (60.0, 10) in routed and (120.0, 50) in routed
    assert all(w <= 10 for t, w in routed if t < 120)
    assert all(w == 50 for t, w in routed if 120 <= t < 240)


@pytest.mark.parametrize(("startup", "promoted"), [("0s", 75.0), ("30s", 150.0)])
def test_start_up_time_in_the_world(startup: str, promoted: float):
    """Pods that start at once cost nothing after the first resync (15 s, the first
    pods are seen then); 30 s each otherwise: 30 (1 pod) + 30 (5 pods) + 60 (pause) +
    30 (10 pods)."""
    sc = _scenario(startup, [{"setWeight": 10}, {"setWeight": 50}, {"pause": {"duration": "1m"}}])
    record = run_one(sc, scenario_policy(sc), 1).record
    assert record.decision_time_s == promoted


# -- item 5: partial readiness and pod counts -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pods"),
    [
        ({"weight": 10}, (1, 10)),
        ({"weight": 10, "min_pods": 2}, (2, 10)),  # CheckMinPodsPerReplicaSet
        ({"weight": 0, "min_pods": 2}, (0, 10)),  # a ReplicaSet with no pods stays at none
        ({"weight": 10, "min_pods": 30}, (10, 10)),  # capped at spec.replicas
        ({"weight": 0, "explicit": 3}, (3, 10)),  # setCanaryScale.replicas: as given
        ({"weight": 30, "dynamic": True}, (3, 7)),  # dynamicStableScale: stable from 100 - weight
        ({"weight": 30, "dynamic": True, "routed": 10}, (3, 9)),  # ... or from the traffic it still has
        ({"weight": 95, "dynamic": True, "min_pods": 2}, (10, 2)),
    ],
)
def test_traffic_routed_pod_counts(kwargs, pods):
    """utils/replicaset/canary.go CalculateReplicaCountsForTrafficRoutedCanary,
    trafficWeightToReplicas (ceil), CheckMinPodsPerReplicaSet; 10 replicas."""
    weight = kwargs.pop("weight")
    assert routed_pods(10, weight, **kwargs) == pods


def _pods_timeline(policy: ArgoRollout, startup: float, until: float = 900.0):
    """The policy against counted pods: (scale-ups, weights set, promotion time)."""
    pods = Workload(ready=False)
    scaled, weights, promoted = [], [], None
    state, t, tick = policy.initial_state(), 0.0, 0
    while promoted is None:
        nt = policy.next_tick(state, t)
        nw = pods.next_available(t)
        if nt is None or nt > until:
            break
        t, tick = (min(nt, nw) if nw is not None else nt), tick + 1
        state, actions = policy.step(state, Observation(t=t, tick=tick, canary=pods.view(t)))
        for a in actions:
            if isinstance(a, ScaleUp):
                pods.scale(t, a.replicas, startup)
                scaled.append((t, a.replicas))
            elif isinstance(a, SetWeights):
                weights.append((t, a.canary_weight))
            elif isinstance(a, Promote):
                promoted = t
    return scaled, weights, promoted


def test_set_canary_scale_holds_until_the_next_one():
    """utils/replicaset/canary.go UseSetCanaryScale: the last setCanaryScale at or before
    the step stays in force through later setWeight steps (matchTrafficWeight ends it),
    and GetCanaryReplicasOrWeight gives its replicas or weight; past the last step the full
    weight. 10 replicas, pods available 30 s after each scale-up."""
    policy = _policy(
        [
            {"setCanaryScale": {"replicas": 3}},
            {"setWeight": 10},
            {"setCanaryScale": {"weight": 50}},
            {"setCanaryScale": {"matchTrafficWeight": True}},
            {"pause": {"duration": "1m"}},
        ],
        replicas=10,
    )
    scaled, weights, promoted = _pods_timeline(policy, 30.0)
    # 0: 3 pods; 30: available -> setWeight 10 (still 3 pods: done at once) -> weight 50 -> 5 pods;
    # 60: available -> matchTrafficWeight: 1 pod (a scale-down, done at once) -> pause until 120;
    # 120: 10 pods; 150: promoted.
    assert scaled == [(0.0, 3), (30.0, 5), (60.0, 1), (120.0, 10)]
    assert weights[:1] == [(30.0, 10)]
    assert promoted == 150.0


def test_min_pods_per_replica_set_in_the_world():
    """CheckMinPodsPerReplicaSet: setWeight 10 of 10 replicas wants 1 pod, 3 with
    minPodsPerReplicaSet 3; the trace shows the scale-up's pod count."""
    sc = _scenario("30s", [{"setWeight": 10}, {"pause": {"duration": "1m"}}])
    data = sc.model_dump(exclude_unset=True)
    data["policy"]["argo"]["strategy"]["canary"]["minPodsPerReplicaSet"] = 3
    sc = Scenario.model_validate(data)
    result = run_one(sc, scenario_policy(sc), 1, trace=True)
    scale_ups = [a for line in result.trace for a in line["actions"] if a["action"] == "scale_up"]
    assert scale_ups == [{"action": "scale_up", "replicas": 3}, {"action": "scale_up", "replicas": 10}]
    assert result.record.decision_time_s == 30.0 + 60.0 + 30.0


@pytest.mark.parametrize(
    ("threshold", "available", "met"),
    [
        (None, 4, False),
        (None, 5, True),
        ({"type": "Percent", "value": 80}, 4, True),
        ({"type": "Percent", "value": 81}, 4, False),
        ({"type": "Pods", "value": 2}, 2, True),
        ({"type": "Pods", "value": 2}, 1, False),
        ({"type": "Pods", "value": -1}, 4, False),  # a negative value: all pods
    ],
)
def test_replica_progress_threshold(threshold, available, met):
    """utils/replicaset/canary.go ReplicaProgressThresholdMet, read by
    AtDesiredReplicaCountsForCanary: setWeight 50 of 10 replicas wants 5 pods."""
    canary: dict[str, Any] = {"steps": [{"setWeight": 50}, {"pause": {}}], "trafficRouting": ISTIO}
    if threshold is not None:
        canary["replicaProgressThreshold"] = threshold
    policy = ArgoRollout(ArgoPolicySpec.model_validate({"replicas": 10, "strategy": {"canary": canary}}))
    state, _ = policy.step(policy.initial_state(), Observation(t=0.0, tick=1, canary=Readiness(False, None)))
    obs = Observation(t=15.0, tick=2, canary=Readiness(False, 0.0, available=available, startup_s=30.0))
    state, _ = policy.step(state, obs)
    assert (state.step_index == 1) is met


def test_set_canary_scale_needs_traffic_routing():
    """validation.go: "SetCanaryScale requires TrafficRouting to be set"."""
    with pytest.raises(ValueError, match="SetCanaryScale requires TrafficRouting"):
        _policy([{"setCanaryScale": {"replicas": 1}}], routing=False)


# -- item 4: the progress deadline ------------------------------------------------------------


def test_default_progress_deadline_in_the_world():
    """utils/defaults/defaults.go DefaultProgressDeadlineSeconds (600); rollout/sync.go
    calculateRolloutConditions; utils/rollout/rolloututil.go CalculateRolloutPhase: a
    canary whose pods never get ready makes no progress after its scale-up at 0, so the
    rollout is Degraded at 600 s and, without progressDeadlineAbort, nothing is decided."""
    sc = _scenario("30s", [{"setWeight": 20}, {"pause": {"duration": "1m"}}])
    data = sc.model_dump(exclude_unset=True)
    data["release"]["faults"] = [{"kind": "never_ready"}]
    sc = Scenario.model_validate(data)
    result = run_one(sc, scenario_policy(sc), 1, trace=True)
    assert result.record.outcome == "unfinished"
    assert result.trace[-1]["phase"] == "Degraded" and result.trace[-1]["t"] == 600.0
    data["policy"]["argo"]["progressDeadlineAbort"] = True
    data["policy"]["argo"]["progressDeadlineSeconds"] = 300
    sc = Scenario.model_validate(data)
    record = run_one(sc, scenario_policy(sc), 1).record
    assert record.outcome == "rolled_back" and record.decision_time_s == 300.0
    assert record.rollback_reason.startswith("ProgressDeadlineExceeded")


def test_importer_copies_the_progress_deadline(tmp_path):
    """RolloutSpec progressDeadlineSeconds / progressDeadlineAbort
    (pkg/apis/rollouts/v1alpha1/types.go) reach the policy, without a warning now."""
    text = (
        (EXAMPLES / "rollout-canary.yaml")
        .read_text()
        .replace(
            "spec:\n  replicas:", "spec:\n  progressDeadlineSeconds: 90\n  progressDeadlineAbort: true\n  replicas:", 1
        )
    )
    path = tmp_path / "r.yaml"
    path.write_text(text)
    result = import_argo(load_yaml_all(path))
    assert result.spec.progressDeadlineSeconds == 90 and result.spec.progressDeadlineAbort is True
    assert not [w for w in result.warnings if "progressDeadline" in w]


def test_blue_green_progress_deadline():
    """rollout/sync.go calculateRolloutConditions: a preview that never becomes available
    makes no progress after its ReplicaSet is created, so the rollout times out (here
    after 120 s)."""
    spec = {
        "replicas": 1,
        "progressDeadlineSeconds": 120,
        "strategy": {"blueGreen": {"activeService": "a", "previewService": "p"}},
    }
    policy = ArgoRollout(ArgoPolicySpec.model_validate(spec))
    phases = [(t, policy.status(st)["phase"]) for t, st in _states(policy, lambda t: Readiness(False, 0.0), 300)]
    assert phases[-1] == (120.0, "Degraded") and all(ph != "Degraded" for t, ph in phases if t < 120)


def _states(policy: ArgoRollout, readiness, until: float):
    state, t, tick, out = policy.initial_state(), 0.0, 0, []
    while True:
        nt = policy.next_tick(state, t)
        if nt is None or nt > until:
            return out
        t, tick = nt, tick + 1
        state, _ = policy.step(state, Observation(t=t, tick=tick, canary=readiness(t)))
        out.append((t, state))
