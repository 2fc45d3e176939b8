"""Cost of one Kayenta judgement, printed as figures (not a timed test).

One judgement = building the error-percentage series of both versions from 15 s slots and
running NetflixACAJudge's rules on them (three Brent root searches of the Mann–Whitney
statistic). Printed: milliseconds per judgement as the window grows from 10 to 240
one-minute points, with and without a latency (p99) metric.

Run: ``.venv/bin/python benchmarks/bench_kayenta_judge.py [--judgements N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.policies.judges.base import JudgeData, VersionSeries  # noqa: E402
from sim.policies.judges.kayenta import KayentaJudge, KayentaSpec  # noqa: E402

SCRAPE_S = 15.0
BOUNDS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)


def _version(rng: np.random.Generator, minutes: int, rps: float) -> VersionSeries:
    k = int(minutes * 60 / SCRAPE_S) + 1
    requests = rng.poisson(rps * SCRAPE_S, k).astype(float)
    requests[0] = 0.0
    errors = rng.binomial(requests.astype(np.int64), 0.005).astype(float)
    probs = np.array([0.1, 0.3, 0.3, 0.15, 0.1, 0.03, 0.015, 0.004, 0.001])
    hist = rng.multinomial(requests.astype(np.int64), probs).astype(float)
    return VersionSeries(requests, errors, hist)


def ms_per_judgement(judge: KayentaJudge, minutes: int, n: int, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    data = [
        JudgeData(
            t=minutes * 60.0,
            scrape_s=SCRAPE_S,
            bounds_ms=BOUNDS_MS,
            canary=_version(rng, minutes, 100.0),
            primary=_version(rng, minutes, 900.0),
        )
        for _ in range(n)
    ]
    start = time.perf_counter()
    for d in data:
        judge.judge(judge.initial_state(), d)
    return (time.perf_counter() - start) / n * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgements", type=int, default=200)
    args = parser.parse_args()
    errors_only = KayentaJudge(KayentaSpec())
    with_latency = KayentaJudge(
        KayentaSpec.model_validate(
            {
                "metrics": [
                    {"name": "errors", "analysisConfigurations": {"canary": {"direction": "increase"}}},
                    {
                        "name": "p99",
                        "query": "request-duration",
                        "analysisConfigurations": {"canary": {"direction": "increase"}},
                    },
                ]
            }
        )
    )
    print(f"{'points':>6}  {'errors ms/judgement':>20}  {'errors+p99 ms/judgement':>24}")
    for minutes in (10, 30, 60, 120, 240):
        a = ms_per_judgement(errors_only, minutes, args.judgements)
        b = ms_per_judgement(with_latency, minutes, args.judgements)
        print(f"{minutes:>6}  {a:>20.2f}  {b:>24.2f}")


if __name__ == "__main__":
    main()
