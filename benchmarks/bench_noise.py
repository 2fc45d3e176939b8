"""What the noise models cost: rollouts per second on scenarios/error-spike.yaml with each
noise model of ``benchmarks/noise_decisions.py`` (and all of them at once), against the
plain Poisson world, on one worker (issue 15: at most 1.5x).

Run: ``.venv/bin/python benchmarks/bench_noise.py [--runs N] [--repeats K]``. The models
are timed in turns, ``repeats`` rounds, and each figure is the best of its rounds (the
least disturbed by other work on a shared machine); the ratio is Poisson's rate over the
model's. Noise also changes what is simulated (a noisier world takes longer to convince
a policy, so its rollouts last longer): the last column divides the time by the simulated
minutes (each rollout up to its decision), the cost of the world itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from noise_decisions import NOISE_MODELS  # noqa: E402

from sim.inputs.policy import scenario_policy  # noqa: E402
from sim.inputs.scenario import Scenario  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402


def error_spike(noise: dict) -> Scenario:
    doc = yaml.safe_load((ROOT / "scenarios" / "error-spike.yaml").read_text())
    doc["noise"] = noise
    return Scenario.model_validate(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5000, help="rollouts per timing")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of timings (best kept)")
    args = ap.parse_args()
    cases = {name: error_spike(noise) for name, noise in NOISE_MODELS.items()}
    policies = {name: scenario_policy(sc) for name, sc in cases.items()}
    for name, sc in cases.items():  # compile and warm every path first
        run_batch(sc, policies[name], 200, 2)
    best = {name: float("inf") for name in cases}
    minutes = {}
    for _ in range(args.repeats):
        for name, sc in cases.items():
            t = time.perf_counter()
            records = run_batch(sc, policies[name], args.runs, 1)
            best[name] = min(best[name], time.perf_counter() - t)
            minutes[name] = sum(sc.horizon if r.decision_time_s is None else r.decision_time_s for r in records) / 60
    base = args.runs / best["none (Poisson)"]
    base_minute = best["none (Poisson)"] / minutes["none (Poisson)"]
    print(f"error-spike, 1 worker, {args.runs} rollouts per timing, best of {args.repeats}")
    print(
        "| noise model | rollouts/s | cost per rollout vs Poisson | minutes simulated per rollout "
        "| cost per simulated minute vs Poisson |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in cases:
        rate = args.runs / best[name]
        per_minute = best[name] / minutes[name]
        print(
            f"| {name} | {rate:,.0f} | {base / rate:.2f}x | {minutes[name] / args.runs:.1f} | "
            f"{per_minute / base_minute:.2f}x |"
        )


if __name__ == "__main__":
    main()
