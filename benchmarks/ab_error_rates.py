"""What the A/B experiment rules do in the simulated world (issue 19's "done when").

On the bundled ``scenarios/ab-conversion-aa.yaml`` (no lift) and
``scenarios/ab-conversion-lift.yaml`` (at +5%, and at +2% for the fixed test's analytic
check), each rule at alpha 0.05 with 14 daily looks over at most 14 days, prints per rule:
false winners in the A/A runs, power at +5%, the median days to promote, the lift
interval's coverage, the mean regret in conversions, and for the fixed test planned for
200,000 sessions per arm its power and coverage at +2% against the analytic values. Every
rate with its Wilson 95% interval. The rules meet the same traffic (common random numbers:
the scenario's seed).

Run: ``.venv/bin/python benchmarks/ab_error_rates.py [--runs N] [--workers W]``
(default 4,000 runs per cell; about 6 minutes on 2 workers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.inputs.scenario import Scenario, load_scenario  # noqa: E402
from sim.policies.experiment import ExperimentPolicy  # noqa: E402
from sim.policies.experiment.plan import proportion_power  # noqa: E402
from sim.policies.experiment.spec import ExperimentPolicySpec  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402
from sim.stats import wilson_interval  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLANNED = 200_000
RULES: dict[str, dict[str, Any]] = {
    "mixture SPRT (sequential)": {"kind": "sequential", "alpha": 0.05},
    "group-sequential, O'Brien-Fleming": {"kind": "group-sequential", "alpha": 0.05, "looks": 14},
    f"fixed, analysed once at {PLANNED:,}/arm": {"kind": "fixed", "alpha": 0.05, "sample_size": PLANNED},
    "fixed, peeked daily": {"kind": "fixed", "alpha": 0.05, "sample_size": PLANNED, "peek": True},
    "Bayesian, expected loss < 0.001": {"kind": "bayes"},
}


def experiment(scenario: Scenario, test: dict[str, Any], name: str) -> ExperimentPolicy:
    assert scenario.policy is not None and scenario.policy.experiment is not None
    spec = scenario.policy.experiment.model_dump(exclude_unset=True)
    spec["test"] = test
    return ExperimentPolicy(ExperimentPolicySpec.model_validate(spec), name=name)


def with_lift(scenario: Scenario, lift: float) -> Scenario:
    effects = scenario.release.effects
    assert effects.conversion is not None
    conversion = effects.conversion.model_copy(update={"lift": lift})
    release = scenario.release.model_copy(update={"effects": effects.model_copy(update={"conversion": conversion})})
    return scenario.model_copy(update={"release": release})


def rate(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.2f}% [{100 * lo:.2f}%, {100 * hi:.2f}%]" if n else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    aa = load_scenario(ROOT / "scenarios" / "ab-conversion-aa.yaml")
    lift = load_scenario(ROOT / "scenarios" / "ab-conversion-lift.yaml")
    print(f"{args.runs:,} runs per cell; alpha 0.05; 14 daily looks; 50/50 split by user\n")
    print(
        "| rule | A/A false winners [95% CI] | power at +5% | median days to promote "
        "| CI coverage at +5% | mean regret (conversions) |"
    )
    print("|---|---|---|---|---|---|")
    for label, test in RULES.items():
        a = run_batch(aa, experiment(aa, test, label), args.runs, aa.seed, workers=args.workers)
        b = run_batch(lift, experiment(lift, test, label), args.runs, lift.seed, workers=args.workers)
        false = sum(r.winner != "none" for r in a)
        won = [r for r in b if r.winner == "candidate"]
        days = sorted(r.decision_time_s / 86400 for r in won if r.decision_time_s is not None)
        ci = [r for r in b if r.lift_ci_low is not None and r.lift_ci_high is not None]
        covered = sum(r.lift_ci_low <= r.true_lift <= r.lift_ci_high for r in ci)  # type: ignore[operator]
        regret = sum(r.regret_conversions or 0.0 for r in b) / len(b)
        median = f"{days[len(days) // 2]:.0f}" if days else "-"
        print(
            f"| {label} | {rate(false, len(a))} | {rate(len(won), len(b))} | {median} "
            f"| {rate(covered, len(ci))} | {regret:,.0f} |"
        )
    fixed = with_lift(lift, 0.02)
    test = next(t for t in RULES.values() if t["kind"] == "fixed" and not t.get("peek"))
    records = [
        r
        for r in run_batch(fixed, experiment(fixed, test, "fixed"), args.runs, fixed.seed, workers=args.workers)
        if not r.srm
    ]
    n = len(records)
    promoted = sum(r.winner == "candidate" for r in records)
    analytic = sum(proportion_power(0.03, 0.02, (r.sessions or 0.0) / 2, method="unpooled") for r in records) / n
    covered = sum(r.lift_ci_low <= r.true_lift <= r.lift_ci_high for r in records)  # type: ignore[operator]
    print(
        f"\nfixed test planned for {PLANNED:,}/arm at +2%: power {rate(promoted, n)} (analytic {100 * analytic:.2f}%), "
        f"CI coverage {rate(covered, n)} (nominal 95%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
