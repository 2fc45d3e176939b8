"""CPU cost of one policy step, printed as figures (not a timed test).

Records every ``(state, observation)`` pair that the world hands to the policy while
simulating a few hundred rollouts of a scenario, then replays the recorded pairs through
``policy.step`` alone and prints microseconds per call (best of several repeats, CPU
time). Policies are pure, so replaying recorded pairs asks exactly the questions the
simulator asked. Metric values are copied into plain dicts when recorded, so the figure
is the policy's own cost, not that of evaluating the world's metric queries.

Scenarios: ``error-spike`` (a Flagger canary, the sweep benchmark's scenario) and
``argo-canary-steps`` (an Argo Rollouts canary).

Run: ``.venv/bin/python benchmarks/bench_policy_step.py [--runs N] [--repeat K]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.inputs.policy import scenario_policy  # noqa: E402
from sim.inputs.scenario import load_scenario  # noqa: E402
from sim.policies.base import Observation  # noqa: E402
from sim.runs.seedseq import run_seeds  # noqa: E402
from sim.world.controller import World  # noqa: E402

SCENARIOS = ("error-spike", "argo-canary-steps")


def record(name: str, runs: int) -> tuple[Any, list[tuple[Any, Observation]]]:
    """The scenario's policy and the (state, observation) pairs its steps received."""
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    policy = scenario_policy(scenario)
    cls = type(policy)
    real = cls.step
    seen: list[tuple[Any, Observation]] = []

    def recording(self: Any, state: Any, obs: Observation) -> tuple[Any, tuple]:
        # Freeze the (possibly lazy) metrics into a dict: every query the policy may read.
        metrics = {q.name: obs.metrics.get(q.name) for q in self.queries()}
        seen.append((state, dataclasses.replace(obs, metrics=metrics)))
        return real(self, state, obs)

    # Every run's own step: class stepping would hand the policy one pair per class.
    world = World(scenario, policy, run_seeds(7, 0, range(runs)).tolist())
    world.by_class = False
    cls.step = recording  # type: ignore[method-assign]
    try:
        world.run()
    finally:
        cls.step = real  # type: ignore[method-assign]
    return policy, seen


def us_per_step(policy: Any, pairs: list[tuple[Any, Observation]], repeat: int) -> float:
    """Best-of-``repeat`` CPU microseconds per ``policy.step`` call over ``pairs``."""
    step = policy.step
    for state, obs in pairs:  # warm lazily built caches
        step(state, obs)
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        for state, obs in pairs:
            step(state, obs)
        best = min(best, time.process_time() - t)
    return best / len(pairs) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="rollouts recorded per scenario")
    ap.add_argument("--repeat", type=int, default=7, help="replays of the recorded steps (best is printed)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    for name in SCENARIOS:
        policy, pairs = record(name, args.runs)
        us = us_per_step(policy, pairs, args.repeat)
        print(
            f"{name}: {type(policy).__name__}.step {us:5.2f} µs per call, "
            f"{len(pairs) / args.runs:.1f} calls per rollout = {us * len(pairs) / args.runs:5.1f} µs per rollout "
            f"({len(pairs):,} recorded calls, best of {args.repeat})"
        )


if __name__ == "__main__":
    main()
