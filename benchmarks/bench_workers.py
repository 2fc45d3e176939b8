"""How `pdsim run`, `compare` and `check` scale from one worker to two (issue 17 item 3).

Each command runs as a real process (``python -m sim ...``), with ``--workers 1`` and
``--workers 2`` alternating (1 2 1 2 ...), so that both meet the same load on a shared
machine; the best wall time of each is kept. Printed per command: both wall times, their
ratio (the target is at least 1.8), and the ratio net of start-up (the wall time of the
same command with a single run subtracted from both: what the workers changed), the CPU
seconds of both (the whole process tree: what workers cost beyond the simulation shows
whatever the load), and the ratio two free cores would give, computed from them.

* run: ``pdsim run scenarios/good-release.yaml --runs N``;
* compare: ``pdsim compare scenarios/good-release.yaml A B --runs N`` (2N rollouts: the
  scenario's canary against the same canary with threshold 1);
* check: ``pdsim check`` of a gates file with good-release at N runs.

Run: ``.venv/bin/python benchmarks/bench_workers.py [--runs 40000] [--repeats 2]``
(``--json`` prints the rows as JSON, for ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "good-release.yaml"

#: The canary of the bundled scenarios, as a policy file; compare's second policy rolls
#: back after one failed check.
POLICY = """\
flagger:
  analysis:
    interval: 1m
    threshold: {threshold}
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {{name: request-success-rate, thresholdRange: {{min: 99}}, interval: 1m}}
      - {{name: request-duration, thresholdRange: {{max: 500}}, interval: 1m}}
"""


@dataclass
class Row:
    """One command's figures.

    Attributes:
        command: run, compare or check.
        rollouts: rollouts simulated per measurement.
        one: best wall seconds with one worker.
        two: best wall seconds with two workers.
        ratio: one / two.
        start_up: wall seconds of the same command with a single run (one worker).
        net_ratio: (one - start_up) / (two - start_up).
        cpu_one: CPU seconds of the 1-worker run (its wall-time best).
        cpu_two: CPU seconds of the 2-worker run, workers included: what the workers cost
            beyond the simulation shows here, whatever the load.
        quiet_ratio: the ratio two free cores would give, from the CPU seconds: start-up
            plus the 1-worker run's work, over start-up plus half the 2-worker run's work.
        load: the 1-minute load average before and after the measurements.
    """

    command: str
    rollouts: int
    one: float
    two: float
    ratio: float
    start_up: float
    net_ratio: float
    cpu_one: float
    cpu_two: float
    quiet_ratio: float
    load: tuple[float, float]


def _cpu() -> float:
    """CPU seconds of every finished child process (pdsim and, reaped by it, its workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``pdsim ARGS`` (CPU of the whole process tree)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu = _cpu()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1):  # check exits 1 when a requirement fails: still a measurement
        raise SystemExit(f"pdsim {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return wall, _cpu() - cpu


def commands(runs: int, folder: Path) -> dict[str, tuple[list[str], list[str], int]]:
    """Each command's arguments at ``runs`` runs and with a single run, and its rollouts."""
    strict, plain = folder / "threshold-1.yaml", folder / "threshold-5.yaml"
    strict.write_text(POLICY.format(threshold=1))
    plain.write_text(POLICY.format(threshold=5))

    def gates(n: int) -> str:
        path = folder / f"gates-{n}.yaml"
        path.write_text(
            f"runs: {n}\nscenarios:\n  - path: {SCENARIO}\n    requirements: {{false_rollback_rate: {{max: 0.5}}}}\n"
        )
        return str(path)

    compare = ["compare", str(SCENARIO), str(plain), str(strict), "--quiet"]
    return {
        "run": (["run", str(SCENARIO), "--runs", str(runs)], ["run", str(SCENARIO), "--runs", "1"], runs),
        "compare": ([*compare, "--runs", str(runs)], [*compare, "--runs", "2"], 2 * runs),
        "check": (["check", gates(runs)], ["check", gates(1)], runs),
    }


def measure(runs: int = 40_000, repeats: int = 2, only: list[str] | None = None) -> list[Row]:
    """The figures of each command (``only``: those named)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (args, single, rollouts) in commands(runs, Path(tmp)).items():
            if only and name not in only:
                continue
            before = os.getloadavg()[0]
            start_up, start_cpu = min(_timed(single) for _ in range(repeats))
            one = two = (float("inf"), float("inf"))
            for _ in range(repeats):
                one = min(one, _timed([*args, "--workers", "1"]))
                two = min(two, _timed([*args, "--workers", "2"]))
            net = (one[0] - start_up) / max(two[0] - start_up, 1e-9)
            # Two free cores: start-up, then the work of the 2-worker run shared evenly.
            quiet = (start_up + one[1] - start_cpu) / (start_up + (two[1] - start_cpu) / 2)
            load = (before, os.getloadavg()[0])
            ratio = one[0] / two[0]
            rows.append(Row(name, rollouts, one[0], two[0], ratio, start_up, net, one[1], two[1], quiet, load))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40_000, help="runs per command (compare simulates twice as many)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating pairs per command; the best of each is kept")
    ap.add_argument("--only", action="append", choices=["run", "compare", "check"], help="measure only these")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    rows = measure(args.runs, args.repeats, args.only)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; shared with other work: compare ratios, not seconds"
    )
    head = f"{'command':8} {'rollouts':>9} {'1 worker':>9} {'2 workers':>10} {'ratio':>6} {'start-up':>9} {'net':>6}"
    print(f"{head} {'cpu 1':>7} {'cpu 2':>7} {'quiet':>6}  load")
    for r in rows:
        print(
            f"{r.command:8} {r.rollouts:9,d} {r.one:8.2f}s {r.two:9.2f}s {r.ratio:5.2f}x {r.start_up:8.2f}s "
            f"{r.net_ratio:5.2f}x {r.cpu_one:6.1f}s {r.cpu_two:6.1f}s {r.quiet_ratio:5.2f}x  "
            f"{r.load[0]:.1f} -> {r.load[1]:.1f}"
        )


if __name__ == "__main__":
    main()
