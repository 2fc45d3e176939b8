"""The policy contract: observations in, actions out, state passed through.

A policy is a pure state machine in the style of Gymnasium's ``FuncEnv``:
``step(state, observation) -> (new_state, actions)``. It never imports simpy, never
sees raw requests and never mutates its inputs, so the same object can be driven by the
simulator, by a recorded metric series (``pdsim replay``) or by a unit test with
hand-written observations. ``check_policy`` verifies that contract for any policy, the
way scikit-learn's ``check_estimator`` does for estimators.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.policies.judges.base import JudgeData, VersionSeries

#: Value of a metric query that returned nothing (Prometheus: empty vector or NaN).
NO_DATA = None


@dataclass(frozen=True)
class Routes:
    """What the router is doing now, as the controller reads it back (``GetRoutes``).

    Attributes:
        canary_weight: percent of live traffic sent to the canary (0-100); with
            ``matched``, percent of the requests that match the A/B conditions.
        mirrored: whether the canary receives a mirrored copy of primary traffic.
        matched: A/B routing: only requests matching ``analysis.match`` are weighted.
    """

    canary_weight: int = 0
    mirrored: bool = False
    matched: bool = False

    @property
    def primary_weight(self) -> int:
        return 100 - self.canary_weight


@dataclass(frozen=True)
class Readiness:
    """Readiness of a workload as Kubernetes reports it.

    Attributes:
        ready: available replicas meet the ready threshold.
        unready_since: when the ``MinimumReplicasUnavailable`` condition was last
            updated (seconds since t=0), or None when ready. Flagger compares this
            with ``progressDeadlineSeconds`` (``pkg/canary/deployment_ready.go``).
    """

    ready: bool = True
    unready_since: float | None = None


#: The defaults of ``Observation``'s ``routes`` and readiness fields (frozen: shareable).
_NO_ROUTES, _READY = Routes(), Readiness()
#: Marks an ``Observation`` mapping argument left out (each gets its own new dict).
_NEW_DICT: Any = object()


@dataclass(frozen=True, init=False)
class Observation:
    """Everything a policy may see at one tick.

    Attributes:
        t: seconds since the new revision was applied.
        tick: 1-based tick number.
        metrics: metric name -> value, or ``NO_DATA`` (None) when the query returned
            nothing. The simulator passes a lazy mapping that evaluates a query only
            when the policy reads it; values never depend on whether they were read.
        routes: the router's current state.
        canary: canary workload readiness.
        primary: primary workload readiness.
        webhooks: scripted webhook outcomes by hook name or type (True = 2xx); a
            hook with no entry takes its type's default (see the policy).
        webhook_latency: how long such a call takes to answer, by the same keys (0 when
            absent); Argo job and web measurements stay Running that long.
        versions: both versions' per-slot counters for a statistical judge (the world
            fills it only for policies with a ``judge``); None when not recorded, e.g.
            in ``pdsim replay`` of a metric-values CSV.
    """

    t: float
    tick: int
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    routes: Routes = _NO_ROUTES
    canary: Readiness = _READY
    primary: Readiness = _READY
    webhooks: Mapping[str, bool] = field(default_factory=dict)
    webhook_latency: Mapping[str, float] = field(default_factory=dict)
    versions: JudgeData | None = None

    def __init__(
        self,
        t: float,
        tick: int,
        metrics: Mapping[str, float | None] = _NEW_DICT,
        routes: Routes = _NO_ROUTES,
        canary: Readiness = _READY,
        primary: Readiness = _READY,
        webhooks: Mapping[str, bool] = _NEW_DICT,
        webhook_latency: Mapping[str, float] = _NEW_DICT,
        versions: JudgeData | None = None,
    ) -> None:
        # The frozen-state copy device (sim.policies.frozen), inlined: one write of the instance dict instead of a
        # frozen object.__setattr__ per field: the world builds one per tick of every rollout.
        object.__setattr__(
            self,
            "__dict__",
            {
                "t": t,
                "tick": tick,
                "metrics": {} if metrics is _NEW_DICT else metrics,
                "routes": routes,
                "canary": canary,
                "primary": primary,
                "webhooks": {} if webhooks is _NEW_DICT else webhooks,
                "webhook_latency": {} if webhook_latency is _NEW_DICT else webhook_latency,
                "versions": versions,
            },
        )


@dataclass(frozen=True)
class SetWeights:
    """Route ``canary_weight`` percent of live traffic to the canary (rest to primary).

    ``mirrored``: ``mirror_percent`` of the primary's traffic is also copied to the
    canary (responses discarded). ``matched``: A/B routing, the weight applies only to
    requests that match the policy's conditions; the others stay on the primary.
    ``header_route`` (Argo ``setHeaderRoute``): matching requests all go to the canary,
    the others by weight.
    """

    canary_weight: int
    mirrored: bool = False
    matched: bool = False
    mirror_percent: float = 100.0
    header_route: bool = False


@dataclass(frozen=True)
class Promote:
    """Copy the canary's spec to the primary: from now on the new version serves all
    traffic that reaches the primary. This is the promotion *decision*."""


@dataclass(frozen=True)
class Rollback:
    """Abandon the release: all traffic back to the (unchanged) primary."""

    reason: str = ""


@dataclass(frozen=True)
class ScaleUp:
    """Scale the canary from zero: its pods start, readiness is measured from now."""


@dataclass(frozen=True)
class HookCalled:
    """The policy called a webhook (for the trace, for scripts that fail the first N
    calls, and for load testers that start sending traffic to the canary).

    Attributes:
        name: the hook's name.
        type: its type (``rollout``, ``confirm-promotion``, ...).
        ok: the outcome the policy acted on.
        load_rps: a load tester's request rate towards the canary (0: none).
        load_s: for how long it sends.
    """

    name: str
    type: str
    ok: bool
    load_rps: float = 0.0
    load_s: float = 0.0


@dataclass(frozen=True)
class Finish:
    """The rollout reached a terminal phase (canary scaled to zero)."""

    phase: str


Action = SetWeights | Promote | Rollback | ScaleUp | HookCalled | Finish


@dataclass(frozen=True)
class MetricQuery:
    """A query the policy will read each tick.

    Attributes:
        name: the key under which the value appears in ``Observation.metrics``.
        signal: what is measured: ``request-success-rate`` (percent 0-100),
            ``request-duration`` (p99 in ms) or ``custom`` (a MetricTemplate or inline
            query, whose simulated signal the scenario binds by ``bindings``).
        window_s: the PromQL range (``[1m]``) in seconds.
        min: lower bound of the passing range (None: unbounded).
        max: upper bound of the passing range (None: unbounded).
        bindings: for ``custom``: names to look the binding up by, in order (the
            metric's name, then its template's).
        query: the PromQL text, when known: unbound queries of well-known shapes (a
            5xx success ratio, a histogram quantile) are recognised from it.
    """

    name: str
    signal: str
    window_s: float
    min: float | None = None
    max: float | None = None
    bindings: tuple[str, ...] = ()
    query: str = ""


@runtime_checkable
class Policy(Protocol):
    """What the world and ``pdsim replay`` need from a policy."""

    name: str
    terminal_phases: frozenset[str]

    def initial_state(self) -> Any: ...

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]: ...

    def next_tick(self, state: Any, t: float) -> float | None:
        """Time of the next tick after ``t``, or None when the policy is done."""
        ...

    def queries(self) -> Sequence[MetricQuery]: ...

    def status(self, state: Any) -> dict[str, Any]:
        """The controller's status fields for the trace (phase, canary_weight, ...)."""
        ...


class PolicyContractError(AssertionError):
    """A policy broke the contract that ``check_policy`` verifies."""


#: Histogram bounds of the random judge data (Istio's default buckets, ms).
_RANDOM_BOUNDS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class _RandomVersions:
    """Random but consistent per-version counters for ``check_policy``: the series grow
    by a few slots each tick (a slot never changes once seen), as the world's do."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        nb = len(_RANDOM_BOUNDS_MS) + 1
        self.req = np.zeros((1, 2))
        self.err = np.zeros((1, 2))
        self.hist = np.zeros((1, 2, nb))

    def next(self, t: float) -> JudgeData | None:
        rng = self.rng
        k = int(rng.integers(0, 5))
        nb = self.hist.shape[2]
        req = rng.integers(0, 3000, size=(k, 2)).astype(float) * (rng.random((k, 1)) > 0.1)
        p = rng.choice([0.0, 0.001, 0.01, 0.1, 0.5], size=(k, 2))
        err = rng.binomial(req.astype(np.int64), p).astype(float)
        probs = rng.dirichlet(np.ones(nb), size=(k, 2))
        hist = np.array(
            [[rng.multinomial(int(req[i, v]), probs[i, v]) for v in range(2)] for i in range(k)], dtype=float
        ).reshape(k, 2, nb)
        self.req, self.err = np.concatenate([self.req, req]), np.concatenate([self.err, err])
        self.hist = np.concatenate([self.hist, hist])
        if rng.random() < 0.1:
            return None  # not recorded (a replay): judges must cope
        return JudgeData(
            t,
            15.0,
            tuple(float(b) for b in _RANDOM_BOUNDS_MS),
            VersionSeries(self.req[:, 1].copy(), self.err[:, 1].copy(), self.hist[:, 1].copy()),
            VersionSeries(self.req[:, 0].copy(), self.err[:, 0].copy(), self.hist[:, 0].copy()),
        )


def _random_observation(
    rng: np.random.Generator,
    t: float,
    tick: int,
    queries: Sequence[MetricQuery],
    routes: Routes,
    versions: _RandomVersions | None = None,
) -> Observation:
    metrics: dict[str, float | None] = {}
    for q in queries:
        u = rng.random()
        if u < 0.15:
            metrics[q.name] = NO_DATA
        elif u < 0.2:
            metrics[q.name] = math.nan
        elif q.signal == "request-success-rate":
            metrics[q.name] = float(rng.choice([100.0, 99.9, 99.0, 95.0, 50.0, 0.0]))
        else:
            metrics[q.name] = float(rng.choice([1.0, 50.0, 300.0, 500.0, 5000.0]))
    canary_ready = bool(rng.random() > 0.1)
    hooks = {
        kind: bool(rng.random() > 0.2)
        for kind in ("confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion")
    }
    hooks["rollback"] = bool(rng.random() < 0.02)
    return Observation(
        t=t,
        tick=tick,
        metrics=metrics,
        routes=routes,
        canary=Readiness(canary_ready, None if canary_ready else max(0.0, t - float(rng.integers(0, 1200)))),
        primary=Readiness(bool(rng.random() > 0.05)),
        webhooks=hooks,
        versions=versions.next(t) if versions is not None else None,
    )


def check_policy(policy: Policy, *, episodes: int = 50, max_ticks: int = 60, seed: int = 0) -> None:
    """Verify the policy contract on random observation sequences.

    Checks, for every tick of every episode:

    * purity: ``step`` does not mutate its state argument, and the same
      ``(state, observation)`` always gives the same result;
    * weights: every ``SetWeights`` routes 0-100 percent;
    * terminal phases are absorbing: once ``status(state)["phase"]`` is terminal, later
      steps return an equal state and no actions, and ``next_tick`` returns None;
    * ``next_tick`` moves time forward: strictly, except that the first tick may come
      at once (Argo reconciles a spec change immediately).

    A policy with a ``judge`` also gets random, growing per-version counters
    (``Observation.versions``; sometimes None, as in a replay).

    Args:
        policy: the policy under test.
        episodes: random episodes to run.
        max_ticks: ticks per episode at most.
        seed: seed of the generator that draws observations.

    Raises:
        PolicyContractError: naming the broken rule, the episode and the tick.
    """
    rng = np.random.default_rng(seed)
    queries = list(policy.queries())
    judged = getattr(policy, "judge", None) is not None
    for episode in range(episodes):
        state = policy.initial_state()
        routes = Routes()
        versions = _RandomVersions(rng) if judged else None
        t = 0.0
        for tick in range(1, max_ticks + 1):
            nt = policy.next_tick(state, t)
            phase = policy.status(state)["phase"]
            if phase in policy.terminal_phases:
                if nt is not None:
                    raise PolicyContractError(f"episode {episode} tick {tick}: next_tick after terminal phase {phase}")
                nt = t + 60.0
            elif nt is None or nt < t or (nt == t and tick > 1):
                raise PolicyContractError(f"episode {episode} tick {tick}: next_tick({t}) = {nt} does not move forward")
            t = nt
            obs = _random_observation(rng, t, tick, queries, routes, versions)
            before = copy.deepcopy(state)
            new_state, actions = policy.step(state, obs)
            if state != before:
                raise PolicyContractError(f"episode {episode} tick {tick}: step mutated its state argument")
            again = policy.step(before, obs)
            if again != (new_state, actions):
                raise PolicyContractError(f"episode {episode} tick {tick}: step is not deterministic")
            if phase in policy.terminal_phases and (new_state != state or actions):
                raise PolicyContractError(f"episode {episode} tick {tick}: terminal phase {phase} is not absorbing")
            for a in actions:
                if isinstance(a, SetWeights):
                    if not 0 <= a.canary_weight <= 100:
                        raise PolicyContractError(
                            f"episode {episode} tick {tick}: weight {a.canary_weight} outside 0-100"
                        )
                    routes = Routes(a.canary_weight, a.mirrored, a.matched)
                elif isinstance(a, Rollback):
                    routes = Routes()
            status = policy.status(new_state)
            weight = status.get("canary_weight", 0)
            if not 0 <= weight <= 100:
                raise PolicyContractError(f"episode {episode} tick {tick}: status weight {weight} outside 0-100")
            state = new_state
