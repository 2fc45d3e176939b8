"""``check_policy``: the policy contract, verified on random observation sequences.

One function per rule, composed by one checker (as Gymnasium's ``utils/env_checker.py``
and scikit-learn's ``check_estimator``). The policy is driven by the same loop as
``pdsim replay`` (``sim.policies.driver.drive``), with random observations:

* ``check_interface``: the policy declares the whole ``Policy`` protocol;
* ``check_pure_step``: ``step`` does not mutate its state argument, and the same
  ``(state, observation)`` always gives the same result;
* ``check_class_keys``: a class-stepping policy keys alike only metrics it steps alike;
* ``check_trace_only_queries``: the queries it declares trace-only
  (``PolicyTags.trace_only_queries``) change nothing when left out of an observation;
* ``check_weights``: every ``SetWeights`` and the status route 0-100 percent;
* ``check_absorbing``: once the phase is terminal, ``next_tick`` returns None and later
  steps return an equal state and no actions;
* the driver's own rule: ``next_tick`` moves time forward, strictly except that the first
  tick may come at once, and returns None only in a terminal phase.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.policies.base import (
    NO_DATA,
    Action,
    BatchObservation,
    BusinessData,
    MetricQuery,
    MetricValue,
    Observation,
    Policy,
    PolicyContractError,
    QueryError,
    Readiness,
    Routes,
    ScalarResult,
    SetWeights,
)
from sim.policies.driver import Rollout, StepFunction, TickError, drive
from sim.policies.judges.base import JudgeData, VersionSeries

#: Histogram bounds of the random judge data (Istio's default buckets, ms).
_RANDOM_BOUNDS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: Time between the ticks the checks add after a terminal phase.
_AFTER_TERMINAL_S = 60.0
#: Other metrics ``check_class_keys`` tries at each tick of a class-stepping policy.
_ALTERNATIVES = 4


class _RandomBusiness:
    """Random but consistent cumulative business data per version (``BusinessData``):
    the counts only grow, tick by tick, as the world's do; sometimes a lopsided split (a
    sample-ratio mismatch), sometimes a large lift or loss or a burst of errors, and now
    and then none at all (a replay without business columns)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.totals = np.zeros((9, 2))  # BusinessData's fields in order, (primary, candidate)
        self.share = float(rng.choice([0.5, 0.5, 0.5, 0.3, 0.7]))  # of users on the candidate
        self.rates = rng.choice([0.02, 0.03, 0.05, 0.2], size=2)

    def next(self) -> BusinessData | None:
        rng = self.rng
        if rng.random() < 0.05:
            return None
        users = rng.integers(0, 3000, size=2).astype(float) * np.array([1.0 - self.share, self.share]) * 2.0
        sessions = users * rng.uniform(1.0, 3.0)
        sessions = np.floor(sessions)
        conversions = rng.binomial(sessions.astype(np.int64), self.rates).astype(float)
        values = [rng.lognormal(3.7, 1.1, size=int(c)) for c in conversions]
        engagement = [rng.poisson(3.0, size=int(n)) for n in sessions]
        requests = sessions * 4.0
        errors = rng.binomial(requests.astype(np.int64), rng.choice([0.0, 0.001, 0.05], size=2)).astype(float)
        step = np.array(
            [
                sessions,
                conversions,
                [v.sum() for v in values],
                [(v * v).sum() for v in values],
                [e.sum() for e in engagement],
                [(e * e).sum() for e in engagement],
                np.floor(users),
                requests,
                errors,
            ]
        )
        self.totals = self.totals + step
        pairs = [(float(a), float(b)) for a, b in self.totals.tolist()]
        return BusinessData(*pairs)


class _RandomVersions:
    """Random but consistent per-version counters: the series grow by a few slots each
    tick (a slot never changes once seen), as the world's do."""

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


def _random_metrics(rng: np.random.Generator, queries: Sequence[MetricQuery]) -> dict[str, MetricValue]:
    metrics: dict[str, MetricValue] = {}
    for q in queries:
        u = rng.random()
        if q.signal == "request-success-rate":
            value = float(rng.choice([100.0, 99.9, 99.0, 95.0, 50.0, 0.0]))
        else:
            value = float(rng.choice([1.0, 50.0, 300.0, 500.0, 5000.0]))
        # Every kind of query result (sim.policies.base.MetricValue), the plain number most often.
        if u < 0.15:
            metrics[q.name] = NO_DATA
        elif u < 0.2:
            metrics[q.name] = math.nan
        elif u < 0.23:
            metrics[q.name] = QueryError("query failed")
        elif u < 0.26:
            metrics[q.name] = ScalarResult(value)
        elif u < 0.32:
            metrics[q.name] = (value, math.nan, math.inf)[: int(rng.integers(0, 4))][::-1]
        else:
            metrics[q.name] = value
    return metrics


def _random_observation(
    rng: np.random.Generator,
    t: float,
    tick: int,
    queries: Sequence[MetricQuery],
    routes: Routes,
    versions: _RandomVersions | None = None,
    business: _RandomBusiness | None = None,
) -> Observation:
    metrics = _random_metrics(rng, queries)
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
        business=business.next() if business is not None else None,
    )


# -- the rules -----------------------------------------------------------------------------


def check_interface(policy: Any) -> None:
    """The policy has every member of the ``Policy`` protocol (those with defaults come
    from subclassing ``Policy``)."""
    missing = [m for m in _PROTOCOL_MEMBERS if not hasattr(policy, m)]
    if missing:
        raise PolicyContractError(
            f"{type(policy).__name__} lacks {', '.join(missing)} of the Policy protocol "
            "(subclass sim.policies.base.Policy to inherit the defaults of tags, matches, describe and event)"
        )


#: What ``check_interface`` asks for (``typing`` keeps no public list of a protocol's members).
_PROTOCOL_MEMBERS = (
    "name",
    "terminal_phases",
    "initial_state",
    "step",
    "next_tick",
    "queries",
    "status",
    "tags",
    "matches",
    "describe",
    "event",
)


def check_pure_step(policy: Policy, where: str) -> StepFunction:
    """``policy.step``, wrapped to check that it never mutates its state argument and
    gives the same result for the same inputs."""

    def step(state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        if policy.tags.steps_by_class and obs.versions is None:
            rng = np.random.default_rng(obs.tick)
            alternatives = [_random_metrics(rng, list(policy.queries())) for _ in range(_ALTERNATIVES)]
            check_class_keys(policy, state, obs, alternatives, f"{where} tick {obs.tick}")
        before = copy.deepcopy(state)
        new_state, actions = policy.step(state, obs)
        if state != before:
            raise PolicyContractError(f"{where} tick {obs.tick}: step mutated its state argument")
        if policy.step(before, obs) != (new_state, actions):
            raise PolicyContractError(f"{where} tick {obs.tick}: step is not deterministic")
        check_trace_only_queries(policy, before, obs, (new_state, actions), f"{where} tick {obs.tick}")
        return new_state, actions

    return step


def check_class_keys(
    policy: Policy, state: Any, obs: Observation, alternatives: Sequence[dict[str, MetricValue]], where: str
) -> None:
    """A class-stepping policy (``PolicyTags.steps_by_class``) gives equal keys only to
    observations it steps alike: ``obs`` and the same observation with each of the
    ``alternatives``' metrics, stepped from ``state``, give an equal state and the same
    actions wherever their ``observation_keys`` rows are equal."""
    observations = [obs] + [
        Observation(obs.t, obs.tick, m, obs.routes, obs.canary, obs.primary, obs.webhooks, obs.webhook_latency)
        for m in alternatives
    ]
    keys = policy.observation_keys(BatchObservation.of(obs.t, [o.metrics for o in observations]))
    if keys is None:
        return
    seen: dict[tuple[int, ...], tuple[Observation, Any]] = {}
    for o, row in zip(observations, np.asarray(keys).tolist()):
        result = policy.step(state, o)
        first = seen.setdefault(tuple(row), (o, result))
        if first[1] != result:
            raise PolicyContractError(
                f"{where}: observation_keys gives metrics {dict(first[0].metrics)} and {dict(o.metrics)} the same "
                f"key {row}, but step treats them differently"
            )


def check_trace_only_queries(
    policy: Policy, state: Any, obs: Observation, stepped: tuple[Any, tuple[Action, ...]], where: str
) -> None:
    """Leaving the values of ``PolicyTags.trace_only_queries`` out of ``obs`` (as the world
    does in an untraced run) gives the same state and actions as ``stepped``, the step
    from ``state`` with them."""
    unread = policy.tags.trace_only_queries
    if not unread or not unread & set(obs.metrics):
        return
    kept = {name: v for name, v in obs.metrics.items() if name not in unread}
    if policy.step(state, dataclasses.replace(obs, metrics=kept)) != stepped:
        raise PolicyContractError(
            f"{where}: step reads the values of {sorted(unread & set(obs.metrics))}, declared trace-only"
        )


def check_weights(actions: tuple[Action, ...], status: dict[str, Any], where: str) -> None:
    """Every ``SetWeights`` and the status weight are 0-100 percent."""
    for a in actions:
        if isinstance(a, SetWeights) and not 0 <= a.canary_weight <= 100:
            raise PolicyContractError(f"{where}: weight {a.canary_weight} outside 0-100")
    weight = status.get("canary_weight", 0)
    if not 0 <= weight <= 100:
        raise PolicyContractError(f"{where}: status weight {weight} outside 0-100")


def check_absorbing(
    policy: Policy, step: StepFunction, rollout: Rollout, obs: Observation, where: str
) -> tuple[Any, tuple[Action, ...]]:
    """In a terminal phase ``next_tick`` is None and a step changes nothing."""
    phase = rollout.status["phase"]
    if policy.next_tick(rollout.state, rollout.t) is not None:
        raise PolicyContractError(f"{where}: next_tick after terminal phase {phase}")
    new_state, actions = step(rollout.state, obs)
    if new_state != rollout.state or actions:
        raise PolicyContractError(f"{where}: terminal phase {phase} is not absorbing")
    return new_state, actions


# -- the checker ---------------------------------------------------------------------------


def check_policy(policy: Policy, *, episodes: int = 50, max_ticks: int = 60, seed: int = 0) -> None:
    """Verify the policy contract on random observation sequences (see the module docstring).

    A policy that reads both versions' counters (``PolicyTags.reads_versions``) also gets
    random, growing per-version counters (``Observation.versions``; sometimes None, as in
    a replay); one that reads business outcomes (``PolicyTags.reads_business``, an A/B
    experiment), random growing ``BusinessData`` (sometimes None).

    Args:
        policy: the policy under test.
        episodes: random episodes to run.
        max_ticks: ticks per episode at most.
        seed: seed of the generator that draws observations.

    Raises:
        PolicyContractError: naming the broken rule, the episode and the tick.
    """
    check_interface(policy)
    rng = np.random.default_rng(seed)
    queries = list(policy.queries())
    judged = policy.tags.reads_versions
    reads_business = policy.tags.reads_business
    for episode in range(episodes):
        where = f"episode {episode}"
        versions = _RandomVersions(rng) if judged else None
        business = _RandomBusiness(rng) if reads_business else None

        def observe(
            r: Rollout, versions: _RandomVersions | None = versions, business: _RandomBusiness | None = business
        ) -> Observation:
            return _random_observation(rng, r.t, r.ticks, queries, r.routes, versions, business)

        step = check_pure_step(policy, where)
        rollout = Rollout.start(policy)
        try:
            for tick in drive(policy, rollout, observe, math.inf, step=step):
                check_weights(tick.actions, rollout.status, f"{where} tick {rollout.ticks}")
                if rollout.ticks >= max_ticks:
                    break
        except TickError as err:
            raise PolicyContractError(f"{where} tick {rollout.ticks + 1}: {err}") from None
        if rollout.ticks >= max_ticks:
            continue
        if rollout.status["phase"] not in policy.terminal_phases:
            raise PolicyContractError(
                f"{where} tick {rollout.ticks + 1}: next_tick({rollout.t}) = None before a terminal phase"
            )
        # Terminal: the remaining ticks, each a step that must change nothing.
        for k in range(rollout.ticks + 1, max_ticks + 1):
            label = f"{where} tick {k}"
            new_state, _ = check_absorbing(
                policy,
                step,
                rollout,
                _random_observation(rng, rollout.t + _AFTER_TERMINAL_S, k, queries, rollout.routes, versions, business),
                label,
            )
            rollout.t += _AFTER_TERMINAL_S
            rollout.state = new_state
