"""CPU cost of one rollout per policy, in one process, printed as figures (issue 17).

``make bench`` times whole processes, which a shared machine makes noisy; this times only
the simulation: ``simulate_piece`` (lockstep batches, records built, as one worker does)
of ``--runs`` runs of a scenario under each policy, as CPU time (``time.process_time``),
the policies in turns for ``--repeats`` rounds, medians. Printed per policy: microseconds
of CPU per rollout, rollouts per CPU second, and the ratio to the first policy's rate
(issue 17's "sequential judge at least half the plain canary's rate" reads on that column).
A first piece of each policy runs untimed (numba's kernels load, caches fill).

Run: ``.venv/bin/python benchmarks/bench_per_run.py [--scenario S] [--runs N] [--repeats R]
[POLICY ...]`` (default: the scenario's own policy, then
``gates/policies/flagger-sequential.yaml``; ``-`` names the scenario's own).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.inputs.policy import load_scenario_and_policy  # noqa: E402
from sim.runs.runner import simulate_piece  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", nargs="*", default=["-", "gates/policies/flagger-sequential.yaml"])
    ap.add_argument("--scenario", default="scenarios/good-release.yaml")
    ap.add_argument("--runs", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = str(ROOT / args.scenario)
    loaded = [load_scenario_and_policy(path, () if name == "-" else (str(ROOT / name),)) for name in args.policies]
    scenario = loaded[0][0]
    chosen = [(name, policy) for name, (_, policy, _) in zip(args.policies, loaded)]
    for _, policy in chosen:
        simulate_piece(scenario, policy, 0, min(args.runs, 2000), seed=2)
    seconds: dict[str, list[float]] = {name: [] for name, _ in chosen}
    for _ in range(args.repeats):
        for name, policy in chosen:
            began = time.process_time()
            simulate_piece(scenario, policy, 0, args.runs, seed=1)
            seconds[name].append(time.process_time() - began)
    print(f"{args.scenario}, {args.runs:,} runs, CPU time, medians of {args.repeats} alternated rounds")
    first = None
    for name, _ in chosen:
        rate = args.runs / statistics.median(seconds[name])
        first = first or rate
        label = "(the scenario's policy)" if name == "-" else name
        print(f"  {label:45s} {1e6 / rate:7.1f} us/rollout  {rate:9,.0f} rollouts/s  {rate / first:5.2f}x")


if __name__ == "__main__":
    main()
