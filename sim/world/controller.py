"""The simpy glue: one rollout of one policy in one simulated world.

The environment schedules only the events that matter: policy ticks, the canary (and,
after promotion, the primary) becoming ready, and the horizon. Traffic between events is
drawn in bulk by the fast path, or request by request in the exact mode; both write the
same telemetry and ledger. At each tick the controller brings traffic up to now, builds
the observation (metrics evaluated lazily), calls ``policy.step`` and applies the
actions to the router. It is the only place where world and policy meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import simpy

from sim.outcomes import PROMOTED, ROLLED_BACK, UNFINISHED, RunRecord, decide
from sim.policies.base import (Finish, Observation, Policy, Promote, Readiness, Rollback, ScaleUp,
                               SetWeights)
from sim.rng import streams
from sim.scenario import Scenario
from sim.world.faults import ReleaseModel
from sim.world.fast import FastTraffic
from sim.world.router import Router
from sim.world.telemetry import LazyMetrics, Telemetry
from sim.world.traffic import Population, RateFunction, build_population
from sim.world.users import count_users


@dataclass(frozen=True)
class Prepared:
    """What a scenario implies before any random draw: built once, shared by its runs."""

    population: Population
    release: ReleaseModel
    rate: RateFunction


_PREPARED: dict[int, tuple[Scenario, Prepared]] = {}


def prepare(scenario: Scenario) -> Prepared:
    """The scenario's static model, memoised by identity (scenarios are immutable)."""
    hit = _PREPARED.get(id(scenario))
    if hit is not None and hit[0] is scenario:
        return hit[1]
    if len(_PREPARED) > 64:
        _PREPARED.clear()
    prepared = Prepared(build_population(scenario.traffic), ReleaseModel(scenario),
                        RateFunction(scenario.traffic.rate))
    _PREPARED[id(scenario)] = (scenario, prepared)
    return prepared


@dataclass
class Workload:
    """Readiness of one workload, driven by simpy events."""

    ready: bool = True
    unready_since: float | None = None

    def view(self) -> Readiness:
        return Readiness(self.ready, self.unready_since)


@dataclass
class RunResult:
    """A run's record and, when asked for, its trace (one dict per tick)."""

    record: RunRecord
    trace: list[dict[str, Any]] = field(default_factory=list)


def action_json(a: Any) -> dict[str, Any]:
    """An action as it appears in the trace."""
    if isinstance(a, SetWeights):
        return {"action": "set_weights", "canary_weight": a.canary_weight, "mirrored": a.mirrored}
    if isinstance(a, Promote):
        return {"action": "promote"}
    if isinstance(a, Rollback):
        return {"action": "rollback", "reason": a.reason}
    if isinstance(a, ScaleUp):
        return {"action": "scale_up"}
    if isinstance(a, Finish):
        return {"action": "finish", "phase": a.phase}
    return {"action": type(a).__name__}


class World:
    """One simulated rollout.

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        seed: the run seed (see ``sim.rng``).
        exact: serve requests one by one as simpy events (validation mode).
        trace: record one line per tick.
    """

    def __init__(self, scenario: Scenario, policy: Policy, seed: int, *, exact: bool = False,
                 trace: bool = False) -> None:
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.trace_on = trace
        self.rngs = streams(seed)
        self.env = simpy.Environment()
        prepared = prepare(scenario)
        self.population = prepared.population
        self.release = prepared.release
        self.router = Router(self.population.n_cohorts)
        tel = scenario.telemetry
        missing = None
        if tel.missing_scrapes > 0:
            n = int(scenario.horizon / tel.scrape_interval) + 2
            missing = self.rngs["telemetry"].random(n) < tel.missing_scrapes
        self.telemetry = Telemetry(scenario.horizon, tel.scrape_interval, tel.lag, missing, tel.buckets_ms)
        rate = prepared.rate
        if exact:
            from sim.world.exact import ExactTraffic
            self.traffic: FastTraffic = ExactTraffic(self.env, rate, self.population, self.release, self.router,
                                                     self.telemetry, self.rngs["exact"], tel.noise)
        else:
            self.traffic = FastTraffic(rate, self.population, self.release, self.router, self.telemetry,
                                       self.rngs["traffic"], tel.noise)
        self.canary = Workload(ready=False)   # scaled to zero until the policy starts it
        self.primary = Workload()
        self.queries = list(policy.queries())
        self.outcome = UNFINISHED
        self.decision_time: float | None = None
        self.rollback_reason = ""
        self.ticks = 0
        self.final_phase = ""
        self.lines: list[dict[str, Any]] = []

    # -- simpy processes ------------------------------------------------------------

    def _become_ready(self, w: Workload, after_s: float):
        yield self.env.timeout(after_s)
        w.ready, w.unready_since = True, None

    def _start(self, w: Workload, startup_s: float, never: bool = False) -> None:
        w.ready, w.unready_since = False, self.env.now
        if not never:
            self.env.process(self._become_ready(w, startup_s))

    def _controller(self):
        state = self.policy.initial_state()
        while True:
            nt = self.policy.next_tick(state, self.env.now)
            if nt is None or nt > self.scenario.horizon:
                break
            yield self.env.timeout(nt - self.env.now)
            now = self.env.now
            self.ticks += 1
            self.traffic.advance(now, account=self.decision_time is None)
            metrics = LazyMetrics(self.telemetry, self.queries, now)
            obs = Observation(t=now, tick=self.ticks, metrics=metrics, routes=self.router.routes,
                              canary=self.canary.view(), primary=self.primary.view())
            state, actions = self.policy.step(state, obs)
            for a in actions:
                self._apply(a, now)
            status = self.policy.status(state)
            self.final_phase = status["phase"]
            if self.trace_on:
                self.lines.append({"t": now, "tick": self.ticks, **status,
                                   "routed_weight": self.router.routes.canary_weight,
                                   "actions": [action_json(a) for a in actions],
                                   "metrics": {k: metrics[k] for k in metrics},
                                   "event": getattr(state, "event", "")})

    def _apply(self, a: Any, now: float) -> None:
        if isinstance(a, SetWeights):
            self.router.set(a.canary_weight, a.mirrored)
        elif isinstance(a, ScaleUp):
            self._start(self.canary, self.scenario.release.startup, never=self.release.never_ready)
        elif isinstance(a, Promote) and self.decision_time is None:
            self.outcome, self.decision_time = PROMOTED, now
            # The primary's rolling update to the new spec; its pods need startup time.
            self._start(self.primary, self.scenario.release.startup)
            self.traffic.after_promotion(now, self.scenario.after_promotion)
        elif isinstance(a, Rollback) and self.decision_time is None:
            self.outcome, self.decision_time, self.rollback_reason = ROLLED_BACK, now, a.reason

    # -- the run ------------------------------------------------------------------------

    def run(self, run_index: int = 0) -> RunResult:
        """Simulate until the policy finishes or the horizon, and summarise."""
        self.env.process(self._controller())
        self.env.run(until=self.scenario.horizon)
        if self.decision_time is None:
            self.traffic.advance(self.scenario.horizon)
        led = self.traffic.ledger
        noise = self.scenario.telemetry.noise
        exposed, affected = count_users(self.population, led.requests + led.after_requests,
                                        led.excess + led.after_excess,
                                        self.rngs["users"] if noise else None)
        if hasattr(self.traffic, "users_counts"):
            exposed, affected = self.traffic.users_counts()  # the exact mode knows its users
        bad = self.scenario.release_bad
        onset = self.release.onset_s()
        record = RunRecord(
            scenario=self.scenario.name, policy=self.policy.name, run=run_index, seed=self.seed,
            outcome=self.outcome, release_bad=bad, decision_time_s=self.decision_time,
            canary_requests=float(led.requests.sum()), canary_errors=float(led.errors.sum()),
            excess_errors=float(led.excess.sum() + led.after_excess.sum()),
            users_exposed=float(exposed), users_affected=float(affected),
            excess_errors_after_promotion=float(led.after_excess.sum()), fault_onset_s=onset,
            final_phase=self.final_phase, ticks=self.ticks, rollback_reason=self.rollback_reason,
            **decide(self.outcome, bad, self.decision_time, onset),
        )
        return RunResult(record, self.lines)


def run_rollout(scenario: Scenario, policy: Policy, seed: int, *, run_index: int = 0, exact: bool = False,
                trace: bool = False) -> RunResult:
    """Simulate one rollout. Same seed, same result."""
    return World(scenario, policy, seed, exact=exact, trace=trace).run(run_index)


def run_rollouts(scenario: Scenario, policy: Policy, seeds: list[int], *, run_indexes: list[int] | None = None,
                 exact: bool = False, trace: bool = False) -> list[RunResult]:
    """Simulate several rollouts (one per seed); each result depends on its seed only."""
    idx = run_indexes if run_indexes is not None else list(range(len(seeds)))
    return [run_rollout(scenario, policy, s, run_index=k, exact=exact, trace=trace) for s, k in zip(seeds, idx)]
