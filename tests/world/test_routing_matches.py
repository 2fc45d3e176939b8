"""Which requests a managed route selects: Argo's ``setHeaderRoute`` and ``setMirrorRoute``
matches on method, path and headers (issue 16, "Missing" 6, item 3).

Upstream (argoproj/argo-rollouts, ``rollout/trafficrouting/istio/istio.go``):

* ``createMirrorRoute`` writes an Istio route whose ``match`` is the step's ``match``
  (``method``, ``path`` as ``uri``, ``headers``), whose ``route`` keeps the last set
  weights (``getVirtualServiceSetWeightRoute``) and whose ``mirror`` is the canary with
  ``mirrorPercentage``: a matching request is served by weight as before *and*, that
  percentage of them, copied to the canary (Istio's ``HTTPRoute.mirror``: "in addition
  to forwarding the requests to the intended destination"); non-matching requests are
  not mirrored. ``reconcileVirtualServiceMirrorRoutes``: a route without ``match`` is
  removed ("a none listed match acts like a removal of the route");
* ``SetHeaderRoute`` (same file) routes the requests its header match selects 100% to the
  canary.

The scenario's cohorts carry what a match reads: ``header``, ``cookie``, and ``method``
(default ``GET``) and ``path`` (default ``/``), so a match on ``method: POST`` selects the
cohorts that send POSTs, a share of traffic. A scripted policy answers
``route_matches`` the way the Argo policy does; ``noise: false`` makes counts their
expectations.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim.errors import InputError
from sim.inputs.scenario import parse_scenario
from sim.policies.base import Action, Finish, Observation, SetWeights
from sim.world.controller import World, cohort_requests, prepare
from sim.world.telemetry import CANARY
from sim.yamlio import loads_yaml
from tests.world.minute_policy import MinutePolicy

RATE = 10.0


class Routed(MinutePolicy):
    """Sets ``action`` at tick 1 (t=60) and finishes at tick 11 (t=660) with weight 0.
    Its managed routes: ``posts`` (method POST), ``api`` (path prefix /api) and ``beta``
    (header x-beta: 1)."""

    name = "routed"

    def __init__(self, action: SetWeights) -> None:
        self.action = action

    def route_matches(self, route: str, request: dict[str, str]) -> bool:
        if route == "posts":
            return request[":method"] == "POST"
        if route == "api":
            return request[":path"].startswith("/api")
        if route == "beta":
            return request.get("x-beta") == "1"
        raise AssertionError(f"unknown route {route}")

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        tick = state.tick + 1
        if tick == 1:
            return replace(state, tick=tick), (self.action,)
        if tick >= 11:
            return replace(state, tick=tick, phase="Done"), (SetWeights(0), Finish("Done"))
        return replace(state, tick=tick), ()


COHORTS = """\
    - {name: writers, share: 0.3, method: POST}
    - {name: api, share: 0.2, path: /api/v1/items}
    - {name: beta, share: 0.1, header: "x-beta: 1"}
"""


def _scenario(cohorts: str = COHORTS):
    text = (
        textwrap.dedent("""\
        name: route-matches
        horizon: 20m
        traffic:
          rate: 10/s
          users: 2000
          cohorts:
        """)
        + textwrap.indent(textwrap.dedent(cohorts), "    ")
        + textwrap.dedent("""\
        baseline:
          error_rate: 0.001
        telemetry:
          noise: false
        """)
    )
    return parse_scenario(loads_yaml(text, file="routes.yaml"))


def _world(action: SetWeights, exact: bool = False, seed: int = 3) -> tuple[World, Any]:
    world = World(_scenario(), Routed(action), [seed], exact=exact)
    return world, world.run()[0].record


SERVED_S = 600.0  # the route holds from t=60 to t=660


def _shares() -> np.ndarray:
    """The cohorts' shares of traffic as the population holds them (users in whole
    numbers per activity tier: 0.3005 for the 30% of writers, ...)."""
    return prepare(_scenario()).population.cohort_share


def test_cohort_requests_carry_method_path_and_headers():
    reqs = cohort_requests(_scenario())
    assert reqs[0] == {":method": "GET", ":path": "/"}
    assert reqs[1] == {":method": "POST", ":path": "/"}
    assert reqs[2] == {":method": "GET", ":path": "/api/v1/items"}
    assert reqs[3] == {":method": "GET", ":path": "/", "x-beta": "1"}


@pytest.mark.parametrize(
    "bad",
    ["{name: x, share: 0.1, method: post}", "{name: x, share: 0.1, path: api}"],
)
def test_method_and_path_are_checked(bad):
    with pytest.raises(InputError):
        _scenario(f"- {bad}\n")


def test_mirror_route_on_method_copies_that_share_of_traffic():
    """``setMirrorRoute {match: [{method: {exact: POST}}], percentage: 50}`` at weight 20:
    users see only the weighted 20% (ledger), the canary serves its live 20% plus a copy
    of half of the POSTs (30% of traffic), whichever version served them."""
    world, rec = _world(SetWeights(20, mirrored=True, mirror_percent=50.0, mirror_match="posts"))
    assert rec.canary_requests == pytest.approx(RATE * 0.2 * SERVED_S)
    served = world.telemetry.n[0, :, CANARY].sum()
    assert served == pytest.approx(RATE * SERVED_S * (0.2 + _shares()[1] * 0.5))


def test_mirror_route_on_path_selects_the_path_cohort():
    world, rec = _world(SetWeights(0, mirrored=True, mirror_match="api"))
    assert rec.canary_requests == 0.0
    assert world.telemetry.n[0, :, CANARY].sum() == pytest.approx(RATE * SERVED_S * _shares()[2])


def test_mirror_without_a_route_copies_every_request():
    """Flagger's ``mirror`` (no named route): every live request is copied."""
    world, _ = _world(SetWeights(0, mirrored=True))
    assert world.telemetry.n[0, :, CANARY].sum() == pytest.approx(RATE * SERVED_S)


def test_header_route_sends_its_cohort_to_the_canary():
    """``setHeaderRoute`` on x-beta at weight 10: the beta cohort (10%) all to the canary,
    the other 90% by weight: 10% + 90% × 10% = 19% of live traffic."""
    world, rec = _world(SetWeights(10, header_route=True, header_match="beta"))
    beta = _shares()[3]
    assert rec.canary_requests == pytest.approx(RATE * SERVED_S * (beta + (1 - beta) * 0.1))


def test_router_state_per_route():
    world, _ = _world(SetWeights(10, header_route=True, header_match="beta"))
    router = world.router
    router.set(0, SetWeights(10, header_route=True, header_match="posts"))
    share = router.canary_share(np.array([0]))[0]
    np.testing.assert_allclose(share, [0.1, 1.0, 0.1, 0.1])
    writers = _shares()[1]
    assert router.routed_percent(0) == pytest.approx(100 * (writers + (1 - writers) * 0.1))
    router.set(0, SetWeights(10))  # a plain setWeight: no header route
    assert router.routed_percent(0) == 10.0


def test_exact_mode_mirrors_the_same_share():
    """Per request: each request of a selected cohort is copied with probability 50%; the
    count over 600 s of 10/s (30% POSTs) is Poisson-like around 900 copies + 1200 live."""
    world, rec = _world(SetWeights(20, mirrored=True, mirror_percent=50.0, mirror_match="posts"), exact=True)
    served = world.telemetry.n[0, :, CANARY].sum()
    expected = RATE * SERVED_S * (0.2 + 0.15)
    assert abs(served - expected) < 5 * np.sqrt(expected)
    assert abs(rec.canary_requests - RATE * SERVED_S * 0.2) < 5 * np.sqrt(RATE * SERVED_S * 0.2)
