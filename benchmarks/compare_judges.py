"""Judges compared on the bundled fault scenarios, paired on the same random traffic.

For each Flagger canary scenario of ``scenarios/`` and each policy — the scenario's own
Flagger threshold policy, and the same analysis (same ramp, hooks, threshold) with each
statistical judge — prints the false rollback rate (good releases) or the detection power
(bad releases), both with Wilson 95% intervals, the median detection time and the mean
excess errors (blast radius in requests). Every policy meets the same traffic and faults
in run k (``run_batch`` with the scenario's root seed: common random numbers).

The two ``kayenta`` rows are the Kayenta replica with its defaults and set up for a short
canary (see ``judges``).

``--speed`` prints instead the cost of judging: rollouts per second of each policy on
good-release (one worker, best of three), the plain threshold policy included.

Run: ``.venv/bin/python benchmarks/compare_judges.py [--runs N] [--workers W] [--markdown] [--speed]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import TypeAdapter  # noqa: E402

from sim.inputs.scenario import Scenario, load_scenario  # noqa: E402
from sim.policies.flagger.canary import FlaggerCanary  # noqa: E402
from sim.policies.flagger.spec import FlaggerPolicySpec  # noqa: E402
from sim.policies.judges import JudgeSpec  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402
from sim.stats import mean_interval, wilson_interval  # noqa: E402
from sim.world.traffic import RateFunction  # noqa: E402

SCENARIOS = (
    "good-release",
    "common-mode-outage",
    "small-regression",
    "error-spike",
    "latency-regression",
    "slow-leak",
    "low-traffic",
)
ALPHA = 0.01


def judges(scenario: Scenario) -> dict[str, dict | None]:
    """Judge blocks by row name (None: the scenario's threshold policy). The group-sequential
    plan is the canary requests the ramp serves up to promotion (its planned sample)."""
    a = scenario.policy.flagger.analysis
    weights, w = [], 0
    while w < (a.maxWeight or 100):
        w += a.stepWeight
        weights.append(w)
    # Expected requests in the analysis window of each step (ticks 3.. at k·interval).
    lam = RateFunction(scenario.traffic.rate)
    plan = sum(
        float(lam.cumulative((k + 3) * a.interval) - lam.cumulative((k + 2) * a.interval)) * w / 100.0
        for k, w in enumerate(weights)
    )
    plan = max(plan, 1.0)
    return {
        "flagger (thresholds)": None,
        "sequential (e-process)": {"kind": "sequential", "alpha": ALPHA},
        "msprt": {"kind": "msprt", "alpha": ALPHA},
        "group-sequential OBF": {"kind": "group-sequential", "alpha": ALPHA, "max_canary_requests": plan},
        "group-sequential Pocock": {
            "kind": "group-sequential",
            "alpha": ALPHA,
            "spending": "pocock",
            "max_canary_requests": plan,
        },
        "sprt": {"kind": "sprt", "alpha": ALPHA},
        "naive repeated z": {"kind": "naive", "alpha": ALPHA},
        "bayes (no guarantee)": {"kind": "bayes"},
        # Kayenta's defaults judge 1-minute points from t = 0, before the canary has any
        # traffic: the first judgements compare 1-3 points, and its Mann-Whitney interval
        # calls noise "High" (Kayenta itself warns below 50 points). The second row is
        # Kayenta set up for a short canary: points at the scrape interval, after the
        # 2-minute warm-up in which the canary gets no traffic.
        "kayenta (defaults: 1m points from t=0)": {"kind": "kayenta"},
        "kayenta (15s points after 2m)": {"kind": "kayenta", "step": "15s", "beginCanaryAnalysisAfter": "2m"},
    }


def policy(scenario: Scenario, name: str, block: dict | None) -> FlaggerCanary | str:
    """The policy of a row, or why the row is skipped."""
    spec = scenario.policy.flagger.model_dump(exclude_unset=True)
    if block is None:
        return FlaggerCanary(scenario.policy.flagger, name=name)
    if block["kind"] == "kayenta" and importlib.util.find_spec("sim.policies.judges.kayenta") is None:
        return "skipped: sim.policies.judges.kayenta is not importable"
    try:
        TypeAdapter(JudgeSpec).validate_python(block)
    except Exception as err:  # noqa: BLE001 - a row that cannot be built is reported, not fatal
        return f"skipped: {type(err).__name__} (judge kind {block['kind']!r} not registered?)"
    return FlaggerCanary(FlaggerPolicySpec.model_validate({**spec, "judge": block}), name=name)


def _pct(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]"


def row(records) -> tuple[str, str, str, str]:
    """(false rollbacks, detected, median detection s, mean excess errors) of one cell."""
    n = len(records)
    bad = records[0].release_bad
    rolled = sum(r.outcome == "rolled_back" for r in records)
    false_rb = "n/a" if bad else _pct(rolled, n)
    detected = _pct(rolled, n) if bad else "n/a"
    times = [r.detection_time_s for r in records if r.detection_time_s is not None]
    median = f"{float(np.median(times)):.0f}" if times else "-"
    m = mean_interval(np.array([r.excess_errors for r in records]))
    excess = f"{m['value']:.1f}" + (f" [{m['low']:.1f}, {m['high']:.1f}]" if m["low"] is not None else "")
    return false_rb, detected, median, excess


def speed(runs: int) -> None:
    """Rollouts per second of each policy on good-release (one worker, best of three)."""
    sc = load_scenario(ROOT / "scenarios" / "good-release.yaml")
    blocks = {
        **judges(sc),
        "sequential, errors only": {"kind": "sequential", "alpha": ALPHA, "metrics": ["request-success-rate"]},
    }
    for name, block in blocks.items():
        p = policy(sc, name, block)
        if isinstance(p, str):
            print(f"{name:26s} {p}")
            continue
        run_batch(sc, p, min(runs, 200), sc.seed + 1)  # warm caches
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            run_batch(sc, p, runs, sc.seed)
            best = min(best, time.perf_counter() - t)
        print(f"{name:26s} {runs / best:8.0f} rollouts/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="one markdown table (for the README)")
    ap.add_argument("--speed", action="store_true", help="rollouts per second of each policy instead")
    args = ap.parse_args()
    if args.speed:
        speed(args.runs)
        return
    header = (
        "scenario",
        "policy",
        "false rollbacks [95% CI]",
        "detected [95% CI]",
        "median detection s",
        "mean excess errors [95% CI]",
    )
    lines = []
    started = time.perf_counter()
    for stem in SCENARIOS:
        sc = load_scenario(ROOT / "scenarios" / f"{stem}.yaml")
        for name, block in judges(sc).items():
            p = policy(sc, name, block)
            if isinstance(p, str):
                lines.append((stem, name, p, "", "", ""))
                continue
            records = run_batch(sc, p, args.runs, sc.seed, workers=args.workers)
            lines.append((stem, name, *row(records)))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    print(
        f"\n{args.runs} runs per cell, alpha {ALPHA} (bayes: P > 0.99), paired on each scenario's seed; "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
