"""Speed of the simulator, printed as figures (not a timed test).

Measures, on scenarios/error-spike.yaml:

1. fast-path rollouts per second on one worker (``run_batch``, workers=1);
2. the per-request (exact) mode's seconds per rollout, and the fast path's speed-up;
3. fast-path cost per rollout as the request rate goes from 10/s to 100,000/s.

Run: ``.venv/bin/python benchmarks/bench_fast_path.py [--runs N] [--exact-runs N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.inputs.policy import scenario_policy  # noqa: E402
from sim.inputs.scenario import load_scenario  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402


def rollouts_per_second(scenario, policy, runs: int, seed: int = 1, repeats: int = 3) -> float:
    """Best of ``repeats`` timings: the least disturbed by other work on the machine."""
    run_batch(scenario, policy, min(runs, 200), seed + 1)  # warm caches
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run_batch(scenario, policy, runs, seed)
        best = min(best, time.perf_counter() - t)
    return runs / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10000, help="fast-path rollouts per measurement")
    ap.add_argument("--exact-runs", type=int, default=3, help="per-request rollouts")
    args = ap.parse_args()

    scenario = load_scenario(ROOT / "scenarios" / "error-spike.yaml")
    policy = scenario_policy(scenario)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"scenario: error-spike ({scenario.traffic.rate.constant:g}/s, Flagger canary)")

    fast = rollouts_per_second(scenario, policy, args.runs)
    print(f"fast path, 1 worker: {fast:,.0f} rollouts/s ({args.runs} rollouts)")

    t = time.perf_counter()
    run_batch(scenario, policy, args.exact_runs, 7, exact=True)
    exact_s = (time.perf_counter() - t) / args.exact_runs
    print(f"per-request mode: {exact_s:.2f} s/rollout; fast path is {fast * exact_s:,.0f}x faster")

    print("cost per rollout by request rate (fast path):")
    costs = {}
    for rate in (10, 100, 1000, 10000, 100000):
        data = scenario.model_dump()
        data["traffic"]["rate"] = {"constant": rate}
        sc = type(scenario).model_validate(data)
        rps = rollouts_per_second(sc, policy, max(args.runs // 4, 500))
        costs[rate] = 1e6 / rps
        print(f"  {rate:>7,}/s: {costs[rate]:7.0f} µs/rollout ({rps:,.0f} rollouts/s)")
    spread = max(costs.values()) / min(costs.values())
    print(f"cost spread from 10/s to 100,000/s: {spread:.2f}x (target: within 1.5x)")


if __name__ == "__main__":
    main()
