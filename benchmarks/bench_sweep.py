"""Speed and memory of sweeps, printed as figures (not a timed test).

Measures, on scenarios/error-spike.yaml through the sweep path (``run_sweep``: chunks,
Parquet files, manifest):

1. rollouts per second on one worker, by the wall clock and per CPU-second (the CPU
   figure is what a worker does when the machine is shared: other processes do not
   inflate it);
2. the speed-up from 1 to 2 workers (``--workers 2``, joblib/loky), wall clock;
3. a large sweep (``--big N`` rollouts, default 1,000,000) run by ``pdsim sweep
   --workers 2`` in a subprocess: its time and the peak resident memory of the whole
   process tree (parent plus workers, sampled from /proc every 0.2 s), then its
   extrapolation to 1,000,000 rollouts when N is smaller.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--runs N] [--big N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.sweeps.execute import run_sweep  # noqa: E402

SWEEP = """\
name: bench
scenario: {scenario}
runs: {runs}
seed: 1
chunk_size: {chunk}
"""


def sweep_file(tmp: Path, runs: int, chunk: int = 1000) -> Path:
    path = tmp / f"bench-{runs}.yaml"
    path.write_text(SWEEP.format(scenario=ROOT / "scenarios" / "error-spike.yaml", runs=runs, chunk=chunk))
    return path


def timed_sweep(tmp: Path, runs: int, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one sweep into a fresh folder."""
    out = tmp / f"out-{runs}-{workers}-{time.monotonic_ns()}"
    wall, cpu = time.perf_counter(), time.process_time()
    run_sweep(sweep_file(tmp, runs), out, workers=workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(out)
    return wall, cpu


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, KiB (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += _rss_kib(pid)
    return total


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def big_sweep(tmp: Path, runs: int, workers: int) -> tuple[float, float, float]:
    """(wall seconds, peak tree RSS MiB, peak parent RSS MiB) of ``pdsim sweep`` on ``runs``."""
    sweep = sweep_file(tmp, runs, chunk=2000)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim",
            "sweep",
            str(sweep),
            "--out",
            str(tmp / "big"),
            "--workers",
            str(workers),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    peak = parent = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        parent = max(parent, _rss_kib(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"pdsim sweep failed with exit code {proc.returncode}")
    return wall, peak / 1024, parent / 1024


def cost_breakdown(runs: int) -> dict[str, float]:
    """CPU microseconds per rollout spent in each part of the simulator (1 worker), by
    wrapping the parts with timers: where a faster sweep would have to save."""
    import functools

    import sim.policies.flagger.canary as flagger
    import sim.world.controller as controller
    import sim.world.fast as fast
    import sim.world.telemetry as telemetry
    from sim.inputs.policy import scenario_policy
    from sim.inputs.scenario import load_scenario
    from sim.runs.runner import run_batch

    spent: dict[str, float] = {}
    undo = []

    def wrap(owner: object, name: str, label: str) -> None:
        f = getattr(owner, name)
        undo.append((owner, name, f))

        @functools.wraps(f)
        def timed(*a: object, **k: object) -> object:
            t = time.process_time()
            try:
                return f(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - t

        setattr(owner, name, timed)

    scenario = load_scenario(ROOT / "scenarios" / "error-spike.yaml")
    policy = scenario_policy(scenario)
    run_batch(scenario, policy, 200, 3)
    wrap(fast.FastTraffic, "_poisson", "traffic: Poisson draws (one compiled call per batch and tick)")
    wrap(fast.FastTraffic, "_histogram", "traffic: histogram draws (one compiled call per batch and tick)")
    wrap(fast.FastTraffic, "advance", "traffic: segments, Poisson, telemetry, ledger")
    wrap(telemetry.Telemetry, "query", "metric queries (vectorised over runs)")
    wrap(controller, "count_users", "users: distinct users exposed/affected")
    wrap(flagger.FlaggerCanary, "step", "policy: FlaggerCanary.step")
    wrap(controller.World, "__init__", "world set-up (streams, telemetry arrays)")
    try:
        t = time.process_time()
        run_batch(scenario, policy, runs, 1)
        total = time.process_time() - t
    finally:
        for owner, name, f in undo:
            setattr(owner, name, f)
    out = {"total": total / runs * 1e6}
    out.update({k: v / runs * 1e6 for k, v in spent.items()})
    # Disjoint top-level parts (the draws are part of the traffic's advance).
    counted = sum(v for k, v in spent.items() if not k.startswith(("traffic: Poisson", "traffic: histogram")))
    out["rest: driver loop, observations, actions, records"] = (total - counted) / runs * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20000, help="rollouts per speed measurement (0: skip)")
    ap.add_argument("--big", type=int, default=1_000_000, help="rollouts of the memory/time sweep (0: skip)")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print("scenario: error-spike (100/s, Flagger canary), one cell, chunks of 1,000 rollouts")
    with tempfile.TemporaryDirectory(prefix="pdsim-bench-") as d:
        tmp = Path(d)
        if args.runs:
            timed_sweep(tmp, 500, 1)  # warm caches and imports
            wall1, cpu1 = min(timed_sweep(tmp, args.runs, 1) for _ in range(2))
            print(
                f"1 worker: {args.runs / wall1:,.0f} rollouts/s wall, {args.runs / cpu1:,.0f} rollouts per "
                f"CPU-second ({args.runs:,} rollouts)"
            )
            wall2, _ = min(timed_sweep(tmp, args.runs, 2) for _ in range(2))
            print(f"2 workers: {args.runs / wall2:,.0f} rollouts/s wall; speed-up 1 -> 2 workers: {wall1 / wall2:.2f}x")
        if args.runs:
            print("CPU µs per rollout by part (1 worker, timers add a little):")
            for part, us in cost_breakdown(min(args.runs, 5000)).items():
                print(f"  {us:7.0f}  {part}")
        if args.big:
            wall, peak, parent = big_sweep(tmp, args.big, 2)
            print(
                f"pdsim sweep --workers 2, {args.big:,} rollouts: {wall:,.0f} s "
                f"({args.big / wall:,.0f} rollouts/s); peak RSS of the process tree {peak:,.0f} MiB "
                f"(parent {parent:,.0f} MiB)"
            )
            if args.big != 1_000_000:
                print(f"extrapolated to 1,000,000 rollouts at that rate: {1_000_000 / args.big * wall:,.0f} s")


if __name__ == "__main__":
    main()
