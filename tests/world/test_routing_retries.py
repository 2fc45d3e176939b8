"""Mesh retries: failures the user never sees, tries the metrics do (issue 16, "Missing" 6,
item 2).

Flagger writes ``spec.service.retries`` into every route of the VirtualService it
generates (fluxcd/flagger ``pkg/router/istio.go``, ``Retries: canary.Spec.Service.Retries``
on the primary/canary routes; App Mesh: ``pkg/router/appmesh.go`` ``makeRetryPolicy``).
What that changes, from Istio and Envoy:

* Istio ``HTTPRetry.attempts`` is the number of *retries* allowed; ``retryOn`` the
  conditions. Envoy's ``5xx`` retries any 5xx response, a status code in the list
  (``500``) is a retriable status code; Istio's default conditions
  (``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` with
  503) do not retry a 500, which is what the simulated service returns;
* a retry goes to another pod (Istio's ``previous_hosts`` retry host predicate), so tries
  fail independently with the version's probability: a request fails for its user only
  when all 1 + attempts tries fail;
* the destination's proxy reports each try it serves, the source's proxy (the caller's)
  only the final response: "downstream proxy will record only 1 failure, while upstream
  proxy will record 2. Since every retry from downstream proxy is considered as a new
  request at upstream proxy" (Istio maintainers, quoted in kiali/kiali#3673). Flagger's
  builtin queries read ``reporter="destination"`` (``pkg/metrics/observers/istio.go``),
  so its success rate is a try's, while the blast radius is the users' final outcome.

``noise: false`` makes counts their expectations; the per-request mode is checked
against the fast path's law with Poisson bounds.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from sim.inputs.scenario import parse_scenario
from sim.policies.base import (
    Action,
    Finish,
    MeshRetries,
    MetricQuery,
    MetricTargets,
    Observation,
    Policy,
    Rollback,
    SetWeights,
)
from sim.world.controller import World
from sim.world.fast import attempts_seen, retried_outcomes
from sim.world.telemetry import CANARY, PRIMARY
from sim.yamlio import loads_yaml

RATE, WEIGHT, SERVED_S = 10.0, 0.5, 600.0  # 50% from t=60 to the rollback at t=660
P_CANARY, P_BASE = 0.3, 0.01


@pytest.mark.parametrize(
    ("retry_on", "attempts", "tries"),
    [
        ("", 3, 1),  # Istio's default conditions: 503s and connection failures only
        ("gateway-error,connect-failure,refused-stream", 3, 1),  # 502/503/504, not 500
        ("5xx", 3, 4),
        ("connect-failure,500", 2, 3),  # a status code in retryOn: retriable
        ("5xx", 0, 1),  # attempts 0: retries off
    ],
)
def test_which_failures_are_retried(retry_on, attempts, tries):
    assert MeshRetries(attempts=attempts, retry_on=retry_on).tries_of_failures == tries


def test_retried_outcomes_partition_each_request():
    """Canary tries fail with 0.3, primary ones with 0.01, 3 tries: final failures 0.027 and
    1e-6; ok after j failed tries 0.3^j × 0.7."""
    outcome = np.array([0.7, 0.01, 0.29])
    ok_fail = np.array([0.99, 0.01])
    c, p = retried_outcomes(outcome, ok_fail, 3)
    np.testing.assert_allclose(c, [0.7, 1e-6, 0.027 - 1e-6, 0.3 * 0.7, 0.09 * 0.7])
    np.testing.assert_allclose(p, [0.99, 1e-6, 0.01 * 0.99, 1e-4 * 0.99])
    assert c.sum() == pytest.approx(1.0) and p.sum() == pytest.approx(1.0)


def test_attempts_seen_counts_every_try():
    """10 ok at once, 2 failing both, 1 excess, 4 ok after one failure, 1 ok after two:
    users see 15 ok and 3 failures; the destination sees 15 ok tries and 4 + 2 + 3 × 3
    failed ones."""
    final, seen = attempts_seen(np.array([10.0, 2.0, 1.0, 4.0, 1.0]), (1, 2), 3)
    np.testing.assert_allclose(final, [15.0, 2.0, 1.0])
    np.testing.assert_allclose(seen, [15.0, 4.0 + 2.0 + 6.0, 3.0])


@dataclass(frozen=True)
class _State:
    tick: int = 0
    phase: str = "Progressing"
    read: tuple[Any, ...] = ()  # the success rate read at each tick


class Retried(Policy):
    """Weight 50 at t=60, rollback at t=660; the mesh retries per ``retries``."""

    name = "retried"
    terminal_phases = frozenset({"Done"})

    def __init__(self, retries: MeshRetries | None, query: bool = False) -> None:
        self.retries, self.query = retries, query

    def initial_state(self) -> Any:
        return _State()

    def next_tick(self, state: Any, t: float) -> float | None:
        return None if state.phase == "Done" else t + 60.0

    def queries(self) -> list[MetricQuery]:
        if not self.query:  # the per-version counters then hold what was served
            return []
        return [MetricQuery("request-success-rate", "request-success-rate", 60.0, query=SUCCESS_RATE)]

    def status(self, state: Any) -> dict[str, Any]:
        return {"phase": state.phase, "canary_weight": 0}

    def metric_targets(self) -> MetricTargets:
        return MetricTargets(retries=self.retries)

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        tick = state.tick + 1
        state = replace(state, read=(*state.read, obs.metrics.get("request-success-rate")))
        if tick == 1:
            return replace(state, tick=tick), (SetWeights(int(WEIGHT * 100)),)
        if tick >= 11:
            return replace(state, tick=tick, phase="Done"), (SetWeights(0), Rollback("x"), Finish("Done"))
        return replace(state, tick=tick), ()


#: Flagger's Istio request-success-rate (``pkg/metrics/observers/istio.go``), rendered for
#: podinfo in ``default`` with a 1m interval: it reads the destination reporter's series.
SUCCESS_RATE = (
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",'
    'destination_workload=~"podinfo",response_code!~"5.*"}[1m])) / '
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",'
    'destination_workload=~"podinfo"}[1m])) * 100'
)


def _scenario(noise: bool):
    text = textwrap.dedent(f"""\
        name: retries
        horizon: 15m
        traffic:
          rate: {RATE:g}/s
          users: 500
        baseline:
          error_rate: {P_BASE}
        release:
          faults:
            - {{kind: error_rate, rate: {P_CANARY}}}
        telemetry:
          noise: {str(noise).lower()}
        """)
    return parse_scenario(loads_yaml(text, file="retries.yaml"))


FIVE_XX = MeshRetries(attempts=2, retry_on="5xx")
N = RATE * WEIGHT * SERVED_S  # live canary requests


def _run(retries: MeshRetries | None, noise: bool = False, exact: bool = False, seed: int = 11):
    world = World(_scenario(noise), Retried(retries), [seed], exact=exact)
    return world, world.run()[0].record


def test_users_see_a_failure_only_when_every_try_fails():
    """attempts 2 on 5xx: a canary request fails for its user with 0.3³, against the
    primary's 0.01³ had it served it: excess N (0.027 − 1e-6)."""
    _, rec = _run(FIVE_XX)
    assert rec.canary_requests == pytest.approx(N)
    assert rec.canary_errors == pytest.approx(N * P_CANARY**3)
    assert rec.excess_errors == pytest.approx(N * (P_CANARY**3 - P_BASE**3))


def test_the_destination_metrics_see_every_try():
    """Tries per request 1 + 0.3 + 0.09; failed tries 0.3 + 0.09 + 0.027 per request: the
    success rate Flagger reads stays a try's (70%), not the users' (97.3%)."""
    world, _ = _run(FIVE_XX)
    n = world.telemetry.n[0, :, CANARY].sum()
    err = world.telemetry.err[0, :, CANARY].sum()
    assert n == pytest.approx(N * (1 + 0.3 + 0.09))
    assert err == pytest.approx(N * (0.3 + 0.09 + 0.027))
    assert 1 - err / n == pytest.approx(1 - P_CANARY)


def test_flaggers_success_rate_query_reads_tries():
    """The same through the series and the PromQL Flagger sends: at t=600 the last minute's
    canary tries succeeded 70% of the time (1 − 0.3), whatever the retries."""
    world = World(_scenario(False), Retried(FIVE_XX, query=True), [11])
    world.run()
    assert world.series is not None
    state = world.states[0]
    assert float(np.ravel(state.read[9])[-1]) == pytest.approx(100 * (1 - P_CANARY))


def test_the_primary_is_retried_too():
    """The same route retries the primary's requests: its tries are 1 + 0.01 + 1e-4 per
    request (counted when something reads the primary, here the judge's counters; the
    world simulates a run's traffic up to its rollback)."""
    world = World(_scenario(False), Retried(FIVE_XX), [11])
    world.traffic.primary_counts = True  # as a judge reading both versions would
    world.run()
    primary_requests = RATE * 60.0 + RATE * (1 - WEIGHT) * SERVED_S  # up to the rollback
    assert world.telemetry.n[0, :, PRIMARY].sum() == pytest.approx(primary_requests * (1 + P_BASE + P_BASE**2))


def test_without_retries_nothing_changes():
    _, rec = _run(None)
    assert rec.canary_errors == pytest.approx(N * P_CANARY)
    _, default_on = _run(MeshRetries(attempts=3))  # Istio's default retryOn: no 500s
    assert default_on.canary_errors == pytest.approx(N * P_CANARY)


def test_per_request_mode_agrees_with_the_fast_law():
    """Every try a simpy request: 4 exact runs pooled (12000 live canary requests) against
    the fast path's expectations, within 5 standard deviations (counts are Poisson-like)."""
    runs = [_run(FIVE_XX, noise=True, exact=True, seed=s) for s in (1, 2, 3, 4)]
    errors = sum(rec.canary_errors for _, rec in runs)
    excess = sum(rec.excess_errors for _, rec in runs)
    tries = sum(w.telemetry.n[0, :, CANARY].sum() for w, _ in runs)
    failed = sum(w.telemetry.err[0, :, CANARY].sum() for w, _ in runs)
    n = 4 * N
    for got, want in (
        (errors, n * P_CANARY**3),
        (excess, n * (P_CANARY**3 - P_BASE**3)),
        (tries, n * (1 + 0.3 + 0.09)),
        (failed, n * (0.3 + 0.09 + 0.027)),
    ):
        assert abs(got - want) < 5 * np.sqrt(want), (got, want)
