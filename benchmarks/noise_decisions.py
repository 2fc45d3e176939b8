"""What production-like noise does to rollout decisions (issue 15, item 4).

For each noise model of the scenario key ``noise:`` (``sim/inputs/scenario.py``), each traffic
level and each policy — the Flagger threshold analysis of ``scenarios/good-release.yaml``, the
same analysis judged by Kayenta and by every sequential judge — simulates good releases (A/A:
any rollback is false) and bad ones (the canary's error rate doubled from the first second)
and prints the false rollback rate and the detection rate, each with its Wilson 95% interval.
The policies of one cell meet the same traffic (common random numbers: the same root seed).

A second table says, per noise model and traffic level, which judges keep their guarantee:
the interval of their false rollback rate is not above their alpha (SPRT: alpha/(1-beta));
the thresholds, Kayenta and the Bayesian rule promise no error rate.

Judges are built as ``benchmarks/compare_judges.py`` builds them (alpha 0.01; the
group-sequential plan is the canary requests of the ramp at the cell's traffic; Kayenta with
points at the scrape interval after the 2-minute warm-up).

Run: ``.venv/bin/python benchmarks/noise_decisions.py [--runs N] [--workers W] [--csv FILE]``
(``--quick`` keeps one traffic level and three noise models, for a smoke test; ``--noise``
and ``--rates`` choose rows; ``--error-rate`` sets the baseline error rate). Cost: the full
table (9 noise models x 3 traffic levels x 7 policies x 2 releases) took 323 s at 300 runs
with the noise models on, one worker, on a loaded 2-core machine: the default 500 runs takes
about 9 minutes.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compare_judges import ALPHA, judges, policy  # noqa: E402
from sim.inputs.scenario import Scenario  # noqa: E402
from sim.runs.runner import run_batch  # noqa: E402
from sim.stats import wilson_interval  # noqa: E402

BASE_SCENARIO = ROOT / "scenarios" / "good-release.yaml"
RATES = (1.0, 10.0, 100.0)
#: Row name in compare_judges.judges -> short name here.
POLICIES = {
    "flagger (thresholds)": "thresholds",
    "kayenta (15s points after 2m)": "kayenta",
    "sequential (e-process)": "sequential",
    "msprt": "msprt",
    "sprt": "sprt",
    "group-sequential OBF": "group-sequential",
    "bayes (no guarantee)": "bayes",
}
#: What each policy reads, printed under the table: a judge of latency also sees what noise
#: does to latency (a slower canary pod, a cold start), a judge of errors does not.
READS = (
    "thresholds: the success rate (min 99%) and request duration (max 500 ms) checks; "
    "kayenta: the error percentage; sequential, msprt: errors and latency; "
    "sprt, group-sequential, bayes: errors"
)
SPRT_BETA = 0.05  # sim/policies/judges/spec.py SprtSpec.beta's default
#: The false rollback rate each judge guarantees (None: no guarantee).
GUARANTEE: dict[str, float | None] = {
    "thresholds": None,
    "kayenta": None,
    "sequential": ALPHA,
    "msprt": ALPHA,
    "sprt": ALPHA / (1.0 - SPRT_BETA),
    "group-sequential": ALPHA,
    "bayes": None,
}
#: The bad release: the canary's error rate doubled (good-release's 0.1% -> 0.2%, or twice
#: ``--error-rate``) from its first request.
BAD_RELEASE = {"faults": [{"kind": "error_rate", "factor": 2.0}]}
#: Latent-process correlation times and dispersion windows are set from what the bundled
#: NAB load-balancer recording shows (data/recordings/README.md: 5-minute request counts
#: about 50 times as variable as Poisson counts, most of it within an hour).
COMMON = {"dispersion": 10.0, "window": "1m"}
NOISE_MODELS: dict[str, dict[str, Any]] = {
    "none (Poisson)": {},
    "request dispersion 50 @5m": {"requests": {"dispersion": 50.0, "window": "5m"}},
    "error dispersion 10 @1m, shared": {"errors": {**COMMON, "shared": True}},
    "error dispersion 10 @1m, per version": {"errors": {**COMMON, "shared": False}},
    "run effects (rate 0.3, errors 0.5, latency 0.2)": {"run": {"rate": 0.3, "error_rate": 0.5, "latency": 0.2}},
    "pod heterogeneity (errors 0.5, latency 0.2)": {"pods": {"error_rate": 0.5, "latency": 0.2}},
    "OU on errors (sigma 0.5, tau 5m), per version": {
        "processes": [{"of": "error_rate", "sigma": 0.5, "tau": "5m", "shared": False}]
    },
    "cold start (errors 5x, latency 2x, decay 2m)": {
        "cold_start": {"error_factor": 5.0, "latency_factor": 2.0, "decay": "2m"}
    },
    "combination": {
        "requests": {"dispersion": 50.0, "window": "5m"},
        "errors": {**COMMON, "shared": True},
        "run": {"rate": 0.3, "error_rate": 0.5, "latency": 0.2},
        "pods": {"error_rate": 0.5, "latency": 0.2},
        "processes": [{"of": "error_rate", "sigma": 0.5, "tau": "5m", "shared": False}],
        "cold_start": {"error_factor": 5.0, "latency_factor": 2.0, "decay": "2m"},
    },
}
QUICK_NOISE = ("none (Poisson)", "error dispersion 10 @1m, per version", "cold start (errors 5x, latency 2x, decay 2m)")


def scenario(noise: dict[str, Any], rate: float, bad: bool, error_rate: float | None = None) -> Scenario:
    """good-release at ``rate`` requests/s with ``noise``, the release good or bad, its
    baseline error rate ``error_rate`` (None: good-release's 0.1%). The simulation stops at
    the decision (no ``after_promotion``: only decisions are counted)."""
    doc = yaml.safe_load(BASE_SCENARIO.read_text())
    doc["traffic"]["rate"] = rate
    if error_rate is not None:
        doc["baseline"]["error_rate"] = error_rate
    doc["noise"] = noise
    doc["after_promotion"] = 0
    if bad:
        doc["release"] = BAD_RELEASE
    return Scenario.model_validate(doc)


@dataclass(frozen=True)
class Cell:
    """Rollbacks of one policy under one noise model at one traffic level."""

    noise: str
    rate: float
    policy: str
    good_runs: int
    false_rollbacks: int
    bad_runs: int
    detected: int

    def false_rollback_interval(self) -> tuple[float, float]:
        return wilson_interval(self.false_rollbacks, self.good_runs)

    def detection_interval(self) -> tuple[float, float]:
        return wilson_interval(self.detected, self.bad_runs)

    def keeps_guarantee(self) -> bool | None:
        """Whether the false rollback rate's interval is not above the judge's guaranteed
        rate (None: the policy guarantees none)."""
        target = GUARANTEE[self.policy]
        return None if target is None else self.false_rollback_interval()[0] <= target


def measure(
    noise_models: Iterable[str],
    rates: Sequence[float],
    runs: int,
    workers: int,
    seed: int,
    error_rate: float | None = None,
) -> tuple[list[Cell], list[str]]:
    """Every cell, in table order; and the rows that could not be built (why)."""
    cells, skipped = [], []
    for noise in noise_models:
        for rate in rates:
            good = scenario(NOISE_MODELS[noise], rate, False, error_rate)
            bad = scenario(NOISE_MODELS[noise], rate, True, error_rate)
            blocks = judges(good)
            for row, name in POLICIES.items():
                p_good, p_bad = policy(good, row, blocks[row]), policy(bad, row, blocks[row])
                if isinstance(p_good, str) or isinstance(p_bad, str):
                    skipped.append(f"{noise} / {rate:g}/s / {name}: {p_good if isinstance(p_good, str) else p_bad}")
                    continue
                good_records = run_batch(good, p_good, runs, seed, workers=workers)
                bad_records = run_batch(bad, p_bad, runs, seed, workers=workers)
                cells.append(
                    Cell(
                        noise=noise,
                        rate=rate,
                        policy=name,
                        good_runs=len(good_records),
                        false_rollbacks=sum(r.outcome == "rolled_back" for r in good_records),
                        bad_runs=len(bad_records),
                        detected=sum(r.outcome == "rolled_back" for r in bad_records),
                    )
                )
    return cells, skipped


def _pct(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]"


def decisions_table(cells: Sequence[Cell]) -> list[str]:
    """Markdown: one row per noise model, traffic level and policy."""
    lines = [
        "| noise | requests/s | policy | A/A false rollbacks [95% CI] | detected 2x errors [95% CI] | guarantee |",
        "|---|---|---|---|---|---|",
    ]
    for c in cells:
        keeps = c.keeps_guarantee()
        verdict = "none promised" if keeps is None else ("kept" if keeps else "**lost**")
        lines.append(
            f"| {c.noise} | {c.rate:g} | {c.policy} | {_pct(c.false_rollbacks, c.good_runs)} "
            f"| {_pct(c.detected, c.bad_runs)} | {verdict} |"
        )
    return lines


def guarantee_table(cells: Sequence[Cell]) -> list[str]:
    """Markdown: per noise model and traffic level, the judges that keep their guarantee
    and those that lose it."""
    lines = ["| noise | requests/s | keep their guarantee | lose it |", "|---|---|---|---|"]
    keys: dict[tuple[str, float], list[Cell]] = {}
    for c in cells:
        keys.setdefault((c.noise, c.rate), []).append(c)
    for (noise, rate), group in keys.items():
        kept = [c.policy for c in group if c.keeps_guarantee() is True]
        lost = [c.policy for c in group if c.keeps_guarantee() is False]
        lines.append(f"| {noise} | {rate:g} | {', '.join(kept) or '-'} | {', '.join(lost) or '-'} |")
    return lines


def write_csv(cells: Sequence[Cell], path: Path) -> None:
    """One line per cell, rates and Wilson bounds as fractions."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "noise",
                "requests_per_s",
                "policy",
                "good_runs",
                "false_rollbacks",
                "false_rollback_rate",
                "false_rollback_low",
                "false_rollback_high",
                "bad_runs",
                "detected",
                "detection_rate",
                "detection_low",
                "detection_high",
                "guaranteed_rate",
                "keeps_guarantee",
            ]
        )
        for c in cells:
            flo, fhi = c.false_rollback_interval()
            dlo, dhi = c.detection_interval()
            target = GUARANTEE[c.policy]
            keeps = c.keeps_guarantee()
            w.writerow(
                [
                    c.noise,
                    c.rate,
                    c.policy,
                    c.good_runs,
                    c.false_rollbacks,
                    c.false_rollbacks / c.good_runs,
                    flo,
                    fhi,
                    c.bad_runs,
                    c.detected,
                    c.detected / c.bad_runs,
                    dlo,
                    dhi,
                    "" if target is None else target,
                    "" if keeps is None else keeps,
                ]
            )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs", type=int, default=500, help="rollouts per cell and release (default 500: under 15 minutes)"
    )
    ap.add_argument("--error-rate", type=float, help="the baseline error rate (default good-release's 0.001)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=101, help="root seed (good-release's)")
    ap.add_argument("--csv", type=Path, help="also write every cell as CSV")
    ap.add_argument("--quick", action="store_true", help="10 requests/s and three noise models only")
    ap.add_argument("--noise", action="append", choices=tuple(NOISE_MODELS), help="only these noise models")
    ap.add_argument("--rates", type=float, nargs="+", help=f"traffic levels, requests/s (default {RATES})")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    noise_models = args.noise or (QUICK_NOISE if args.quick else tuple(NOISE_MODELS))
    rates = args.rates or ((10.0,) if args.quick else RATES)
    cells, skipped = measure(noise_models, rates, args.runs, args.workers, args.seed, args.error_rate)
    print("\n".join(decisions_table(cells)))
    print(f"\nWhat each policy reads: {READS}.\n")
    print("\n".join(guarantee_table(cells)))
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if args.csv is not None:
        write_csv(cells, args.csv)
    print(
        f"\n{args.runs} good and {args.runs} bad rollouts per cell, alpha {ALPHA} (SPRT alpha/(1-beta)); "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
