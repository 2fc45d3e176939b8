"""Flagger rules of issue 16 beyond the conformance tables: which routers mirror, ready
thresholds (on observations and in the world), ``suspend`` and the controller version.

Each test cites the fluxcd/flagger file and function it pins (commit 15bd6ad5, v1.44.0;
v1.43.0 for the older behaviour).
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from pydantic import ValidationError

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.policies.base import Observation, Readiness, Routes, SetWeights
from sim.policies.flagger.canary import FlaggerCanary, is_ready
from sim.policies.flagger.plan import mirrors_traffic
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.runs.runner import run_one
from sim.yamlio import loads_yaml
from tests.helpers import GOOD
from tests.helpers import SUCCESS_RATE as SR


def policy(**spec: Any) -> FlaggerCanary:
    analysis = {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 20}
    analysis.update(spec.pop("analysis", {}))
    return FlaggerCanary(FlaggerPolicySpec.model_validate({"analysis": analysis, **spec}))


# -- which routers mirror -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "iterations", "mirrors"),
    [
        ("istio", 0, True),  # IstioRouter.SetRoutes sets Mirror; GetRoutes: mirrored = Mirror.Host != ""
        ("no-such-mesh", 0, True),  # MeshRouter's default: "unknown mesh router provider, using istio"
        ("gatewayapi", 0, True),  # no ":v1": not a Gateway API router, the Istio default
        ("gatewayapi:v1", 0, False),  # gateway_api.go SetRoutes: mirror filter only when Iterations > 0
        ("gatewayapi:v1", 5, True),  # ... GetRoutes: mirrored when a RequestMirror filter names the canary
        ("gatewayapi:v1beta1", 5, True),  # gateway_api_v1beta1.go, the same
        ("linkerd", 0, False),  # smi.go GetRoutes: mirrored = false
        ("nginx", 5, False),  # ingress.go GetRoutes: mirrored = false
        ("appmesh:v1beta2", 0, False),  # appmesh_v1beta2.go GetRoutes: mirrored = false
        ("smi:v1alpha3:osm", 0, False),  # smi_v1alpha3.go
        ("gloo:v2", 0, False),  # HasPrefix(provider, "gloo"): gloo.go
        ("contour", 0, False),
        ("traefik", 0, False),
        ("apisix", 0, False),
        ("kuma", 0, False),
        ("skipper", 0, False),
        ("knative", 0, False),
        ("osm", 0, False),
    ],
)
def test_only_istio_and_gateway_api_blue_green_mirror(provider, iterations, mirrors):
    """pkg/router/factory.go MeshRouter picks the router; each router's GetRoutes decides
    whether the mirror is reported (pkg/router/*.go)."""
    assert mirrors_traffic(provider, iterations) is mirrors


def test_a_router_that_cannot_mirror_keeps_the_canary_at_its_first_step_forever():
    """scheduler.go runCanary: `Mirror && canaryWeight == 0 && !mirrored` -> SetRoutes(100, 0,
    true); nginx's IngressRouter sets 100/0 and GetRoutes reports mirrored false, so every tick
    is the first step again (pre-rollout hooks, no analysis). Even a world whose router did
    mirror is read through this provider's GetRoutes, which never reports it."""
    p = policy(provider="nginx", analysis={"mirror": True})
    state = p.initial_state()
    state, _ = p.step(state, Observation(60.0, 1))
    for tick in range(2, 30):
        obs = Observation(60.0 * tick, tick, {SR: 0.0}, Routes(0, mirrored=True))
        state, actions = p.step(state, obs)
        assert actions == (SetWeights(0),)  # 100/0, no mirror: what IngressRouter.SetRoutes does
        assert (state.phase, state.canary_weight, state.failed_checks) == ("Progressing", 0, 0)


def test_blue_green_with_gateway_api_mirrors_and_with_linkerd_does_not():
    """scheduler.go runBlueGreen: `Mirror && !mirrored` -> SetRoutes(100, 0, true) each
    iteration: gateway_api.go adds a RequestMirror filter for iterations > 0, smi.go none."""
    for provider, mirrored in (("gatewayapi:v1", True), ("linkerd", False)):
        p = policy(provider=provider, analysis={"mirror": True, "iterations": 3, "stepWeight": 0})
        state, _ = p.step(p.initial_state(), Observation(60.0, 1))
        state, actions = p.step(state, Observation(120.0, 2, dict(GOOD)))
        weights = [a for a in actions if isinstance(a, SetWeights)]
        assert [a.mirrored for a in weights] == [mirrored]
        assert state.iterations == 1


# -- ready thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updated", "available", "threshold", "ready"),
    [
        (100, 28, 29, False),  # float32(100) * float32(0.29) = 29.0 (float64: 28.999999999999996)
        (100, 29, 29, True),
        (4, 1, 50, False),
        (4, 2, 50, True),
        (1, 0, 50, True),  # int32(0.5) = 0: one pod, none available, yet "ready"
        (10, 6, 70, False),  # float32(10) * float32(0.7) rounds to 7.0
        (10, 9, 100, False),  # the default: every updated pod available
    ],
)
def test_ready_threshold_is_computed_in_float32_and_truncated(updated, available, threshold, ready):
    """pkg/canary/deployment_ready.go isDeploymentReady: `readyThresholdRatio :=
    float32(readyThreshold) / float32(100)`; `int32(float32(UpdatedReplicas) *
    readyThresholdRatio)`; not ready when `AvailableReplicas <` it."""
    assert is_ready(Readiness(available == updated, None, updated, available), threshold) is ready


def test_a_rolling_update_is_never_ready_whatever_the_threshold():
    """isDeploymentReady: `Status.Replicas > UpdatedReplicas` (old pods pending) or
    `UpdatedReplicas < Spec.Replicas` wait before the threshold is looked at."""
    assert is_ready(Readiness(False, 10.0, None, None), 1) is False
    assert is_ready(Readiness(False, 10.0), 0) is False  # no counts known: only `ready` tells


SLOW_START = textwrap.dedent("""\
    name: slow-canary
    horizon: 1h
    traffic: {rate: 20/s}
    baseline: {error_rate: 0.001, replicas: 1}
    release: {startup: 10m}
    telemetry: {noise: false}
    policy:
      flagger:
        analysis:
          interval: 1m
          threshold: 50
          stepWeight: 50
          maxWeight: 50
          canaryReadyThreshold: THRESHOLD
          metrics: [{name: request-success-rate, thresholdRange: {min: 0}, interval: 1m}]
    """)


def test_the_world_reports_pod_counts_so_a_low_canary_threshold_skips_the_wait():
    """isDeploymentReady with one pod and canaryReadyThreshold 50: int32(1 * 0.5) = 0
    available pods are enough, so Flagger analyses (and promotes) a canary none of whose pods
    has started; at 100 it waits the 10 minutes of start-up first."""
    times = {}
    for threshold in (50, 100):
        text = SLOW_START.replace("THRESHOLD", str(threshold))
        scenario = parse_scenario(loads_yaml(text, file="slow.yaml"))
        result = run_one(scenario, scenario_policy(scenario), 7, trace=True)
        assert result.record.outcome == "promoted"
        times[threshold] = result.record.decision_time_s
    # 50: scale-up at 60, first step at 120, promote at 180. 100: ready at 660 (60 + 10m),
    # the first step at that tick, promotion a tick later.
    assert times == {50: 180.0, 100: 720.0}


# -- suspend and versions -------------------------------------------------------------------


def test_a_suspended_canary_does_nothing_at_any_tick():
    """scheduler.go advanceCanary: `if cd.Spec.Suspend { ... return }` first."""
    p = policy(suspend=True)
    state = p.initial_state()
    for tick in range(1, 5):
        state, actions = p.step(state, Observation(60.0 * tick, tick, {SR: 0.0}))
        assert actions == ()
        assert state.phase == "Initialized"
    assert p.next_tick(state, 240.0) == 300.0  # the ticker keeps running


@pytest.mark.parametrize("version", ["1.44", "v1.43.0", "1.0", "1.43.2"])
def test_named_flagger_versions(version):
    spec = FlaggerPolicySpec.model_validate({"version": version})
    assert spec.controller_version() <= (1, 44)


@pytest.mark.parametrize("version", ["1.45", "2.0", "0.9", "latest", "1"])
def test_unknown_flagger_versions_are_refused(version):
    with pytest.raises(ValidationError, match="Flagger release"):
        FlaggerPolicySpec.model_validate({"version": version})


def test_default_version_is_the_latest_release():
    """The failed-promotion rule of v1.44.0 (fluxcd/flagger #1931) is the default."""
    assert FlaggerPolicySpec().controller_version() == (1, 44)


def test_describe_says_what_the_router_and_suspend_do():
    """The one-line summaries follow the rules above (a stuck mirror, a suspended Canary)."""
    stuck = policy(provider="nginx", analysis={"mirror": True}).describe()
    assert stuck == [
        "Flagger canary: every 1m, mirror on nginx, whose router cannot mirror: stuck at weight 0, never decides"
    ]
    assert "one step mirroring 100% of requests" in policy(analysis={"mirror": True}).describe()[0]
    assert policy(suspend=True).describe() == ["Flagger canary: suspended, the new revision is never analysed"]
    bg = policy(provider="linkerd", analysis={"mirror": True, "iterations": 3, "stepWeight": 0}).describe()[0]
    assert "3 iterations with no live traffic" in bg
