"""Argo class stepping (issue 17): one step per class of runs vs one per run, as figures.

Records every ``(state, observation)`` pair the world hands ``ArgoRollout.step`` while
simulating rollouts of ``scenarios/argo-canary-steps.yaml`` (one batch, stepped run by run:
the runs of a tick tick together), then replays each tick two ways, CPU time, best of
several repeats:

* one by one: ``step`` and ``next_tick`` for every run (what the world does today);
* by class: ``observation_keys`` of the tick's batch, the runs grouped in a dict by
  (state, routes, readiness, key row), one ``step`` per class, ``next_tick`` per run.

The batches (``BatchObservation``) are built before timing: the world makes their columns
from the PromQL engine's arrays (``metric_arrays``), not per run. The recorded states come
from stepping one by one, so equal states are distinct objects here and every run's state
is hashed: the world, which hands a class one state object, pays less.

Run: ``.venv/bin/python benchmarks/bench_argo_class_step.py [--runs N] [--repeat K]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_policy_step import record as record_pairs  # noqa: E402

from sim.policies.base import BatchObservation, Observation  # noqa: E402

Tick = tuple[list[tuple[Any, Observation]], BatchObservation]


def record(runs: int) -> tuple[Any, list[Tick]]:
    """The scenario's policy and its ticks: the pairs of each, and their batch."""
    policy, seen = record_pairs("argo-canary-steps", runs)
    ticks: list[Tick] = []
    start = 0
    for i in range(1, len(seen) + 1):  # consecutive pairs at one time: one tick of a chunk
        if i == len(seen) or seen[i][1].t != seen[start][1].t:
            pairs = seen[start:i]
            ticks.append((pairs, BatchObservation.of(pairs[0][1].t, [o.metrics for _, o in pairs])))
            start = i
    return policy, ticks


def one_by_one(policy: Any, ticks: list[Tick]) -> int:
    step, next_tick = policy.step, policy.next_tick
    for pairs, _ in ticks:
        for state, obs in pairs:
            new, _ = step(state, obs)
            next_tick(new, obs.t)
    return sum(len(p) for p, _ in ticks)


def by_class(policy: Any, ticks: list[Tick], state_key: Callable[[Any], Any] = lambda state: state) -> int:
    """One step per class of (state, routes, readiness, key row); ``state_key`` names the
    state in the class (the state itself: hashed; ``id``: the object, as the world does)."""
    step, next_tick, keys_of = policy.step, policy.next_tick, policy.observation_keys
    steps = 0
    for pairs, batch in ticks:
        keys = keys_of(batch)
        rows = [r.tobytes() for r in keys] if keys.shape[1] else [b""] * len(pairs)
        done: dict[Any, tuple[Any, tuple]] = {}
        for (state, obs), row in zip(pairs, rows):
            cls = (state_key(state), obs.routes, obs.canary, obs.primary, row)
            got = done.get(cls)
            if got is None:
                got = done[cls] = step(state, obs)
                steps += 1
            next_tick(got[0], obs.t)
    return steps


def by_identity(policy: Any, ticks: list[Tick]) -> int:
    """By class, grouping by the state object (``id``) rather than by hash: what the world
    can do when its runs share state objects; no state is hashed."""
    return by_class(policy, ticks, id)


def shared(ticks: list[Tick]) -> list[Tick]:
    """The ticks with equal states made one object, as the world leaves them once it
    steps by class (a class's runs all get the step's one new state)."""
    one: dict[Any, Any] = {}
    return [([(one.setdefault(st, st), obs) for st, obs in pairs], batch) for pairs, batch in ticks]


def best(fn: Any, policy: Any, ticks: list[Tick], repeat: int) -> tuple[float, int]:
    out = fn(policy, ticks)  # warm lazily built caches
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn(policy, ticks)
        times.append(time.process_time() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000, help="rollouts recorded")
    ap.add_argument("--repeat", type=int, default=5, help="replays (best is printed)")
    args = ap.parse_args()
    policy, ticks = record(args.runs)
    pairs = sum(len(p) for p, _ in ticks)
    interned = shared(ticks)
    ways = {
        "one by one": (one_by_one, ticks),
        "by class (hash)": (by_class, ticks),
        "by class (shared states, by id)": (by_identity, interned),
    }
    # Alternate them, so that a busy machine slows each alike.
    times: dict[str, list[float]] = {name: [] for name in ways}
    steps: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, (fn, data) in ways.items():
            t, steps[name] = best(fn, policy, data, 1)
            times[name].append(t)
    print(f"argo-canary-steps, {args.runs} rollouts: {pairs} run-ticks in {len(ticks)} ticks")
    base = min(times["one by one"])
    for name, ts in times.items():
        t = min(ts)
        print(
            f"  {name:<32} {t:.3f} s CPU, {t / pairs * 1e6:5.1f} us per run-tick, {steps[name]} steps, {base / t:.1f}x"
        )


if __name__ == "__main__":
    main()
