"""Cost of a run-judgement, scalar against batch, per judge (issue 17), printed as figures.

For each judge kind: n runs (default 5,000) of random counters (a ramp of the canary's
weight, 0.5 % errors, latency histograms) judged at ``--ticks`` ticks one minute apart,
once by calling the scalar ``judge`` per run and tick, once by ``judge_batch`` per tick
for all runs. Printed: microseconds per run-judgement of each, and their ratio. The
first batch call is made before timing (numba compiles or loads its cache); the
sequential judge's memory of prior weights is emptied before each way is timed (in a long
batch of one scenario, shares recur and it saves more than here).

Run: ``.venv/bin/python benchmarks/bench_judges_batch.py [--runs N] [--ticks T] [--kinds a,b]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.policies.judges import JudgeSpec, make_judge  # noqa: E402
from sim.policies.judges.base import JudgeBatch  # noqa: E402
from sim.policies.judges.sequential import forget_prior_weights  # noqa: E402

SCRAPE_S = 15.0
BOUNDS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
KINDS = ("sequential", "kayenta", "msprt", "group-sequential", "sprt", "naive", "bayes")


def counters(rng: np.random.Generator, runs: int, slots: int) -> list[np.ndarray]:
    """(runs, slots) requests and errors of canary and primary, (runs, slots, B) histograms."""
    weight = np.minimum(0.1 * (1 + np.arange(slots) // 4), 0.5)
    total = rng.poisson(200.0, (runs, slots)).astype(np.int64)
    total[:, 0] = 0
    canary = rng.binomial(total, weight)
    primary = total - canary
    probs = np.array([0.1, 0.3, 0.3, 0.15, 0.1, 0.03, 0.015, 0.004, 0.001])
    return [
        canary.astype(float),
        rng.binomial(canary, 0.005).astype(float),
        primary.astype(float),
        rng.binomial(primary, 0.005).astype(float),
        rng.multinomial(canary, probs).astype(float),
        rng.multinomial(primary, probs).astype(float),
    ]


def us_per_judgement(kind: str, runs: int, ticks: int, seed: int = 1) -> tuple[float, float]:
    """(scalar, batch) microseconds per run-judgement."""
    judge = make_judge(TypeAdapter(JudgeSpec).validate_python({"kind": kind}))
    per_tick = 4  # one-minute ticks of 15 s slots
    arrays = counters(np.random.default_rng(seed), runs, ticks * per_tick + 1)
    batches = []
    for tick in range(1, ticks + 1):
        k = tick * per_tick + 1
        cut = [a[:, :k] for a in arrays]
        batches.append(JudgeBatch(k * SCRAPE_S, SCRAPE_S, BOUNDS_MS, *cut))
    everyone = np.arange(runs)
    judge.judge_batch(judge.batch_state(runs), everyone, batches[0])  # compile / load the cache
    forget_prior_weights()  # each way starts with the sequential judge's prior weights unknown
    state = judge.batch_state(runs)
    start = time.perf_counter()
    for b in batches:
        judge.judge_batch(state, everyone, b)
    batch_s = time.perf_counter() - start
    states = [judge.initial_state() for _ in range(runs)]
    rows = [[b.row(i) for i in range(runs)] for b in batches]  # views, built before timing
    forget_prior_weights()
    start = time.perf_counter()
    for data in rows:
        for i in range(runs):
            states[i], _ = judge.judge(states[i], data[i])
    scalar_s = time.perf_counter() - start
    n = runs * ticks
    return scalar_s / n * 1e6, batch_s / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    print(f"{args.runs} runs, {args.ticks} ticks")
    print(f"{'judge':>18}  {'scalar µs':>10}  {'batch µs':>10}  {'speed-up':>8}")
    for kind in args.kinds.split(","):
        scalar, batch = us_per_judgement(kind, args.runs, args.ticks)
        print(f"{kind:>18}  {scalar:>10.1f}  {batch:>10.1f}  {scalar / batch:>7.1f}x")


if __name__ == "__main__":
    main()
