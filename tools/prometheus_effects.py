"""The effects of evaluating queries as Prometheus does (issue 14), as a markdown table.

Usage: python tools/prometheus_effects.py [--runs N]

Each row simulates N rollouts of one case and prints the share of a decision with its
95% Wilson interval. The cases are those of tests/world/test_prometheus_effects.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.runs.runner import run_batch  # noqa: E402
from sim.stats import wilson_interval  # noqa: E402
from tests.world.effects import CASES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    print("| case | what is counted | share [95% CI] | k/n |")
    print("|---|---|---|---|")
    for case in CASES:
        records = run_batch(case.scenario, case.policy, args.runs, seed=case.seed)
        k = sum(case.counts(r) for r in records)
        lo, hi = wilson_interval(k, len(records))
        print(f"| {case.name} | {case.counted} | {k / len(records):.1%} [{lo:.1%}, {hi:.1%}] | {k}/{len(records)} |")


if __name__ == "__main__":
    main()
