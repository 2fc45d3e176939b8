"""Cost of counting users (``sim.world.users.count_users``), printed as figures.

At the end of every batch the world turns each run's candidate request and excess counts
into users exposed and affected. This script runs a few scenarios through
``sim.runs.runner.run_batch``, captures the very ``(requests, excess)`` arrays the world hands
to ``count_users`` (one batch of 500 runs each), and times ``count_users`` on them alone
with one fresh Generator per run, as the world does:

* error-spike: ~3,600 canary requests and ~180 excess failures per run (the speed target);
* near-good: error-spike with a 0.15% fault (a good-looking release: tiny excess, promoted,
  so the after-promotion requests count too);
* high-rate: error-spike at 10,000 requests/s (large excess counts in every group);
* small-regression: 1,000/s, 200,000 users, promoted;
* low-rate-severe: error-spike at 30 requests/s with a 30% fault (few fresh requests per
  group on top of many affected users: the most distinct small counts to tabulate).

Run: ``.venv/bin/python benchmarks/bench_users.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sim.world.controller as controller  # noqa: E402
from sim.inputs.policy import scenario_policy  # noqa: E402
from sim.inputs.scenario import Scenario, load_scenario  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402
from sim.seeds import STREAMS  # noqa: E402
from sim.world.draws import stream_states  # noqa: E402
from sim.world.users import count_users  # noqa: E402

RUNS = 500  # one batch of the runner


def variant(scenario: Scenario, rate: float | None = None, fault_rate: float | None = None) -> Scenario:
    data = scenario.model_dump()
    if rate is not None:
        data["traffic"]["rate"] = {"constant": rate}
    if fault_rate is not None:
        data["release"]["faults"][0]["rate"] = fault_rate
    return type(scenario).model_validate(data)


def capture(scenario: Scenario, seed: int = 1):
    """The (population, requests, excess) of ``count_users``'s calls in one batch."""
    calls = []
    real = controller.count_users

    def spy(population, requests, excess, states):
        calls.append((population, requests.copy(), excess.copy()))
        return real(population, requests, excess, states)

    controller.count_users = spy
    try:
        run_batch(scenario, scenario_policy(scenario), RUNS, seed)
    finally:
        controller.count_users = real
    if not calls:
        raise SystemExit("count_users was not called: has the world's call site moved?")
    return calls[0]


def cost_us(population, requests: np.ndarray, excess: np.ndarray, repeats: int) -> float:
    """Best of ``repeats``: µs per rollout of ``count_users`` on one batch."""
    best = float("inf")
    for r in range(repeats):
        states = stream_states([r * len(requests) + i for i in range(len(requests))], STREAMS["users"])
        t = time.perf_counter()
        count_users(population, requests, excess, states)
        best = min(best, time.perf_counter() - t)
    return best / len(requests) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timings per case (best is kept)")
    args = ap.parse_args()

    spike = load_scenario(ROOT / "scenarios" / "error-spike.yaml")
    cases = {
        "error-spike": spike,
        "near-good": variant(spike, fault_rate=0.0015),
        "high-rate": variant(spike, rate=10000),
        "small-regression": load_scenario(ROOT / "scenarios" / "small-regression.yaml"),
        "low-rate-severe": variant(spike, rate=30, fault_rate=0.3),
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"count_users on one captured batch of {RUNS} runs (best of {args.repeats}):")
    for name, scenario in cases.items():
        population, requests, excess = capture(scenario)
        k, x = requests.sum(axis=1), excess.sum(axis=1)
        us = cost_us(population, requests, excess, args.repeats)
        print(
            f"  {name:<17} requests ~{np.median(k):>9,.0f}  excess ~{np.median(x):>7,.0f}  "
            f"groups {len(population.users):>3}: {us:6.1f} µs/rollout"
        )


if __name__ == "__main__":
    main()
