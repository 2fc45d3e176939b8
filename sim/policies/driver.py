"""The one tick loop: when a policy's next tick comes and what happens at it.

Three drivers move a policy through time: the world (many simulated rollouts in
lockstep), ``pdsim replay`` (a recorded metric series) and ``check_policy`` (random
observations). They share this module's rules, so they cannot drift apart:

* ``next_tick``: the first tick may come at once (Argo reconciles a spec change
  immediately), every later one strictly later; None, or a time at or past the horizon,
  ends the rollout. A driver whose horizon is inclusive (a replay runs a tick *at* its
  last row's time) passes ``math.nextafter(horizon, math.inf)``.
* ``Decision``: the first ``Promote`` or ``Rollback`` decides the rollout; later ones
  change nothing.
* ``routes_after``: what ``GetRoutes`` reads back after a ``SetWeights`` or ``Rollback``.
* ``wants_line``, ``trace_line`` and ``action_json``: one trace line per tick, or for
  change-only policies (``PolicyTags.trace_on_change``, Argo) only when the status
  changed or something other than a webhook call was done.

``drive`` is the loop itself, for one rollout; replay and the checks use it. The world
keeps its own vectorised loop (it serves every run that ticks at the same time in one
pass) but calls the same rules.

Pure: no simpy, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.limits import MAX_TICKS_PER_RUN
from sim.outcomes import PROMOTED, ROLLED_BACK, UNFINISHED
from sim.policies.base import (
    Action,
    ExperimentEnded,
    Finish,
    HookCalled,
    MetricValue,
    Observation,
    Policy,
    Promote,
    QueryError,
    Rollback,
    Routes,
    ScaleUp,
    SetWeights,
    single_value,
)

#: ``step``'s signature: (state, observation) -> (new state, actions).
StepFunction = Callable[[Any, Observation], tuple[Any, tuple[Action, ...]]]


class TickError(ValueError):
    """A policy's ``next_tick`` does not move time forward."""


class TickLimitError(TickError):
    """A rollout would tick more than ``limits.MAX_TICKS_PER_RUN`` times."""


def next_tick(policy: Policy, state: Any, now: float, horizon: float, *, first: bool = False) -> float | None:
    """The time of the policy's next tick after ``now``, or None when the rollout ends.

    Args:
        policy: the policy.
        state: its state after the tick at ``now`` (the initial state before the first).
        now: the current time (0 before the first tick).
        horizon: a tick at or past it ends the rollout.
        first: whether the tick asked for is the first, which may come at ``now``.

    Raises:
        TickError: the tick asked for is before ``now``, or at ``now`` after the first.
    """
    nt = policy.next_tick(state, now)
    if nt is None or nt >= horizon:
        return None
    if nt > now or (first and nt == now):
        return nt
    raise TickError(f"policy {policy.name!r}: next_tick({now}) = {nt} does not move time forward")


@dataclass
class Decision:
    """A rollout's decision: the first ``Promote`` or ``Rollback``, and when.

    Attributes:
        outcome: ``promoted``, ``rolled_back`` or ``unfinished``.
        time: when it was decided (None while unfinished).
        reason: the ``Rollback``'s reason ("" unless rolled back).
    """

    outcome: str = UNFINISHED
    time: float | None = None
    reason: str = ""

    def note(self, action: Promote | Rollback, t: float) -> bool:
        """Record ``action`` at ``t`` if nothing was decided yet; whether it decided."""
        if self.time is not None:
            return False
        if isinstance(action, Promote):
            self.outcome, self.time = PROMOTED, t
        else:
            self.outcome, self.time, self.reason = ROLLED_BACK, t, action.reason
        return True


def routes_after(routes: Routes, action: Action) -> Routes:
    """The router's state after ``action``: a ``SetWeights`` sets it, a ``Rollback``
    sends everything back to the primary, any other action leaves it."""
    if isinstance(action, SetWeights):
        return Routes(action.canary_weight, action.mirrored, action.matched, action.by_user)
    if isinstance(action, Rollback):
        return Routes()
    return routes


def action_json(a: Action) -> dict[str, Any]:
    """An action as it appears in the trace."""
    if isinstance(a, SetWeights):
        out: dict[str, Any] = {"action": "set_weights", "canary_weight": a.canary_weight, "mirrored": a.mirrored}
        if a.matched:
            out["matched"] = True
        if a.by_user:
            out["by_user"] = True
        return out
    if isinstance(a, HookCalled):
        out = {"action": "webhook", "name": a.name, "type": a.type, "ok": a.ok}
        if a.load_rps:
            out["load_rps"], out["load_s"] = a.load_rps, a.load_s
        return out
    if isinstance(a, Promote):
        return {"action": "promote"}
    if isinstance(a, Rollback):
        return {"action": "rollback", "reason": a.reason}
    if isinstance(a, ScaleUp):
        return {"action": "scale_up"} if a.replicas is None else {"action": "scale_up", "replicas": a.replicas}
    if isinstance(a, Finish):
        return {"action": "finish", "phase": a.phase}
    if isinstance(a, ExperimentEnded):
        return {
            "action": "experiment_ended",
            "winner": a.winner,
            "lift": metric_json(a.lift),
            "lift_low": metric_json(a.lift_low),
            "lift_high": metric_json(a.lift_high),
            "srm": a.srm,
            "reason": a.reason,
        }
    return {"action": type(a).__name__}


def wants_line(
    on_change: bool, lines: list[dict[str, Any]], status: Mapping[str, Any], actions: tuple[Action, ...]
) -> bool:
    """Whether a tick gets a trace line: always, unless the policy traces on change only
    (``PolicyTags.trace_on_change``); then the first tick, a tick that did something other
    than call a webhook, and a tick whose status differs from the last line's."""
    if not on_change or not lines or any(not isinstance(a, HookCalled) for a in actions):
        return True
    last = lines[-1]
    return any(last.get(k) != v for k, v in status.items())


def metric_json(value: MetricValue, vectors: bool = False) -> Any:
    """A metric value as the trace shows it, valid JSON (no bare NaN): a number; ``null``
    for no data (an empty result, an empty vector included); ``"NaN"``, ``"+Inf"`` and
    ``"-Inf"`` as Prometheus writes them; ``{"error": message}`` for a failed query. A
    vector is shown as the policy reads it: a list for a policy that ``reads_vectors``
    (Argo's ``result``), else its last sample (what Flagger's ``RunQuery`` keeps)."""
    if isinstance(value, tuple):
        if vectors and value:
            return [metric_json(x) for x in value]
        value = single_value(value)  # an empty vector is an empty result: null
    if value is None:
        return None
    if isinstance(value, QueryError):
        return {"error": value.message}
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    return float(value)


def metric_queries(policy: Policy) -> dict[str, str]:
    """The PromQL each of the policy's metrics evaluates, by metric name, for the trace's
    ``queries`` (metrics without PromQL, hand-bound or of another provider, are left out)."""
    return {q.name: q.query for q in policy.queries() if q.query}


def trace_line(
    t: float,
    tick: int,
    status: Mapping[str, Any],
    routed_weight: float,
    actions: tuple[Action, ...],
    metrics: Mapping[str, MetricValue],
    event: str,
    queries: Mapping[str, str] | None = None,
    vectors: bool = False,
) -> dict[str, Any]:
    """One line of the trace: the tick, the policy's status, the canary's share of live
    traffic, what was done, the metric values read (``metric_json``; ``vectors``: the
    policy's ``PolicyTags.reads_vectors``), the PromQL of those that have one
    (``queries``: ``metric_queries(policy)``; the key is left out when none has) and
    the policy's ``event`` (``Policy.event``)."""
    line = {
        "t": t,
        "tick": tick,
        **status,
        "routed_weight": routed_weight,
        "actions": [action_json(a) for a in actions],
        "metrics": {name: metric_json(v, vectors) for name, v in metrics.items()},
    }
    if queries:
        shown = {name: queries[name] for name in metrics if name in queries}
        if shown:
            line["queries"] = shown
    line["event"] = event
    return line


@dataclass
class Rollout:
    """What a driver knows of one rollout between its ticks.

    Attributes:
        state: the policy's state after the last tick.
        status: ``policy.status(state)``.
        t: time of the last tick (0 before the first).
        ticks: ticks run.
        routes: the router's state, as the next tick's observation reads it back.
        canary_started: when the canary's pods were last started (``ScaleUp``).
        primary_started: when the primary's rolling update to the new spec began (``Promote``).
        decision: the first ``Promote`` or ``Rollback``.
    """

    state: Any
    status: dict[str, Any]
    t: float = 0.0
    ticks: int = 0
    routes: Routes = field(default_factory=Routes)
    canary_started: float | None = None
    primary_started: float | None = None
    decision: Decision = field(default_factory=Decision)

    @classmethod
    def start(cls, policy: Policy) -> Rollout:
        """A rollout before its first tick."""
        state = policy.initial_state()
        return cls(state, policy.status(state))

    def apply(self, action: Action) -> None:
        """What ``action``, done at the current tick, leaves for the next ones."""
        self.routes = routes_after(self.routes, action)
        if isinstance(action, (Promote, Rollback)):
            self.decision.note(action, self.t)
        if isinstance(action, Promote):
            self.primary_started = self.t
        elif isinstance(action, ScaleUp):
            self.canary_started = self.t


@dataclass(frozen=True)
class Tick:
    """One tick of ``drive``: what the policy saw and what it did.

    Attributes:
        obs: the observation served.
        actions: the actions of the step.
        rollout: the rollout after the tick (the same object every tick).
    """

    obs: Observation
    actions: tuple[Action, ...]
    rollout: Rollout


def drive(
    policy: Policy,
    rollout: Rollout,
    observe: Callable[[Rollout], Observation],
    horizon: float,
    *,
    step: StepFunction | None = None,
) -> Iterator[Tick]:
    """Tick ``policy`` until a terminal phase, the end of its ticks or the horizon.

    Before each tick ``rollout`` holds the tick's time and number; ``observe`` makes the
    observation from it, the policy steps, and its actions are applied to ``rollout``.

    Args:
        policy: the decision maker.
        rollout: the rollout to advance (``Rollout.start(policy)``); updated in place.
        observe: the observation at the rollout's current tick.
        horizon: a tick at or past it ends the rollout (see ``next_tick``).
        step: stands in for ``policy.step`` (the checks wrap it).

    Yields:
        Each tick, after its actions were applied.

    Raises:
        TickError: the policy's ``next_tick`` does not move time forward.
        TickLimitError: it would tick more than ``limits.MAX_TICKS_PER_RUN`` times (work
            without a useful end).
    """
    step_fn = policy.step if step is None else step
    terminal = policy.terminal_phases
    while rollout.status["phase"] not in terminal:
        nt = next_tick(policy, rollout.state, rollout.t, horizon, first=rollout.ticks == 0)
        if nt is None:
            return
        if rollout.ticks >= MAX_TICKS_PER_RUN:
            raise TickLimitError(
                f"policy {policy.name!r} ticks more than {MAX_TICKS_PER_RUN:,} times before the horizon "
                f"({horizon:g} s) without deciding"
            )
        rollout.t, rollout.ticks = float(nt), rollout.ticks + 1
        obs = observe(rollout)
        rollout.state, actions = step_fn(rollout.state, obs)
        for a in actions:
            rollout.apply(a)
        rollout.status = policy.status(rollout.state)
        yield Tick(obs, actions, rollout)
