"""Speed of ``pdsim tune`` on the bundled example, printed as figures (not a timed test).

Runs the search of ``tune/flagger-default.yaml`` (issue 18: a Flagger default-like base,
nine releases at 10 to 1,000 requests/s, seven other releases for the fresh-seed check)
through ``sim.tuning.api.tune`` into a temporary folder, and prints:

1. the wall time, CPU time of this process, rollouts simulated and rollouts per second
   (wall; with ``--workers`` above 1 the CPU figure leaves out the workers');
2. the candidates evaluated, and how many reached each racing rung;
3. the wall time of each stage the progress callback reports (``rung R/N``,
   ``validation``), with the rollouts each took;
4. the recommendation against the base on the validation releases with fresh seeds
   (``validation.json``): each objective and constraint, and the ratio base / best of the
   objectives (the issue's target: at least 10x fewer excess errors, 3x faster detection,
   false rollbacks at most 1%).

Run: ``.venv/bin/python benchmarks/bench_tune.py [--budget N] [--time S] [--workers W]
[--seed S] [--keep DIR]``. ``--keep`` writes the output folder there instead of a
temporary one (it must not exist or be empty).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "tune" / "flagger-default.yaml"


@dataclass
class StageClock:
    """Wall time and rollouts of each stage, from the search's progress reports."""

    start: float = field(default_factory=time.perf_counter)
    stage: str | None = None
    since: float = 0.0
    done_at_start: int = 0
    last_done: int = 0
    stages: list[tuple[str, float, int]] = field(default_factory=list)

    def __call__(self, progress: Any) -> None:
        # Progress (sim.tuning.search): done, total, stage, candidates, budget, best.
        now = time.perf_counter()
        if progress.stage != self.stage:
            self.close(now)
            self.stage, self.since, self.done_at_start = progress.stage, now, self.last_done
        self.last_done = progress.done

    def close(self, now: float | None = None) -> None:
        if self.stage is not None:
            now = time.perf_counter() if now is None else now
            self.stages.append((self.stage, now - self.since, self.last_done - self.done_at_start))
            self.stage = None


def _figure(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    value, low, high = (entry.get(k, math.nan) for k in ("value", "low", "high"))
    return f"{value:.4g} [{low:.4g}, {high:.4g}]"


def _ratio(base: float, best: float) -> str:
    if not (math.isfinite(base) and math.isfinite(best)) or best <= 0:
        return "-"
    return f"{base / best:.1f}x"


def report(out: Path, wall: float, cpu: float, clock: StageClock, workers: int) -> None:
    """Print the figures of the search in ``out``."""
    import pandas as pd

    meta = json.loads((out / "tune.json").read_text())
    candidates = pd.read_parquet(out / "candidates.parquet")
    rollouts = int(meta.get("rollouts") or 0)
    print(f"tune file: {meta.get('tune_file')}  seed {meta.get('seed')}  budget {meta.get('budget')}")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"machine: {machine}, workers {workers}")
    print(f"wall time: {wall:.1f} s  (CPU of this process {cpu:.1f} s)")
    print(f"rollouts: {rollouts:,}  ({rollouts / wall:,.0f} rollouts/s wall)")
    searched = candidates[~candidates["base"]]
    feasible, frontier = int(searched["feasible"].sum()), int(searched["frontier"].sum())
    print(f"candidates: {len(searched)}  (feasible {feasible}, frontier {frontier})")
    rungs = meta.get("rungs", [])
    for r, runs in enumerate(rungs):
        reached = int((searched["rung"] >= r).sum())
        print(f"  rung {r}: {runs} runs per scenario, {reached} candidates")
    print("stages (wall time, rollouts):")
    for stage, seconds, done in clock.stages:
        rate = f"{done / seconds:,.0f}/s" if seconds > 0 else "-"
        print(f"  {stage:<12} {seconds:7.1f} s  {done:>9,}  {rate}")
    validation_path = out / "validation.json"
    if not validation_path.exists():
        print("validation: none (no candidate met every constraint)")
        return
    validation = json.loads(validation_path.read_text())
    print(f"validation on fresh seeds ({validation.get('runs')} runs per scenario), base -> best:")
    objectives = set(meta.get("objectives", []))
    for metric, entry in validation.get("fresh", {}).items():
        base, best = entry.get("base", {}), entry.get("best", {})
        ratio = _ratio(base.get("value", math.nan), best.get("value", math.nan)) if metric in objectives else ""
        print(f"  {metric:<28} {_figure(base):>30}  ->  {_figure(best):<30} {ratio}")
    for metric, ok in validation.get("constraints_ok", {}).items():
        print(f"  constraint {metric}: {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=None, help="candidates (default: the file's budget, 200)")
    parser.add_argument("--time", type=float, default=None, help="stop asking candidates after S seconds")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tune-file", type=Path, default=EXAMPLE)
    parser.add_argument("--keep", type=Path, default=None, help="write the output folder here")
    args = parser.parse_args()

    from sim.tuning.api import tune

    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        out = args.keep if args.keep is not None else Path(tmp) / "out"
        clock = StageClock()
        wall, cpu = time.perf_counter(), time.process_time()
        tune(
            args.tune_file,
            out,
            budget=args.budget,
            time_s=args.time,
            workers=args.workers,
            seed=args.seed,
            progress=clock,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        clock.close()
        report(out, wall, cpu, clock, args.workers)


if __name__ == "__main__":
    main()
