"""How long ``pdsim`` takes to start, printed as figures (not a timed test; issue 17 item 4).

Each command runs in a fresh process (``python -m sim ...``) ``--repeats`` times; the
median wall time is printed with the median CPU time (user + system) of the same runs:
on a machine shared with other work the wall time grows while the CPU time stays, so a
wall time far above its CPU time says the machine was busy.

With ``--baseline DIR`` (a source tree of an earlier version, e.g.
``git worktree add /tmp/pdsim-before v0.1.0`` or ``git archive REF | tar -x -C DIR``) every
command runs alternately in DIR and here, back to back, and the ratio is printed: the
figure to trust on a shared machine. The first run of each tree in a fresh copy compiles
its kernels into numba's cache and its modules' bytecode; one untimed warm-up run per tree
comes first (``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment).

Run: ``.venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--baseline DIR] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The commands of issue 17's targets, with the wall time each should stay under (seconds).
COMMANDS: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    ("pdsim --version", ("--version",), None),
    ("pdsim --help", ("--help",), 0.5),
    ("pdsim validate good-release", ("validate", "scenarios/good-release.yaml"), 0.5),
    # The Argo reconciler is imported only for an Argo policy: this one pays for it.
    ("pdsim validate argo-canary-steps", ("validate", "scenarios/argo-canary-steps.yaml"), None),
    ("pdsim run good-release --runs 1", ("run", "scenarios/good-release.yaml", "--runs", "1"), 1.0),
)


#: The children's environment: with bytecode caches, as an installed pdsim starts (without
#: them every start compiles sim/ from source again, a quarter of a second).
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(tree: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the child's) of ``python -m sim ARGS`` in ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=tree,
        env={**_ENV, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(trees: list[Path], repeats: int) -> dict[str, list[dict[str, float]]]:
    """For each command, each tree's median wall and CPU seconds, trees alternating."""
    for tree in trees:  # compile or load every kernel once, untimed
        timed(tree, COMMANDS[-1][1])
    out: dict[str, list[dict[str, float]]] = {}
    for name, args, _ in COMMANDS:
        samples: list[list[tuple[float, float]]] = [[] for _ in trees]
        for _ in range(repeats):
            for i, tree in enumerate(trees):
                samples[i].append(timed(tree, args))
        out[name] = [
            {"wall_s": statistics.median(w for w, _ in s), "cpu_s": statistics.median(c for _, c in s)} for s in samples
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command per tree (median)")
    parser.add_argument("--baseline", type=Path, help="source tree of an earlier version, measured alternately")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    trees = [ROOT] if args.baseline is None else [args.baseline.resolve(), ROOT]
    figures = measure(trees, args.repeats)
    if args.json:
        print(json.dumps({"trees": [str(t) for t in trees], "repeats": args.repeats, "figures": figures}, indent=2))
        return
    machine = f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"
    print(f"{machine}; median of {args.repeats}")
    if args.baseline is None:
        print(f"{'command':34} {'target':>8} {'wall s':>7} {'cpu s':>6}")
    else:
        print(f"{'command':34} {'target':>8} {'before':>7} {'cpu s':>6} {'now':>7} {'cpu s':>6} {'ratio':>6}")
    for name, _, target in COMMANDS:
        goal = f"< {target:g} s" if target else ""
        cells = " ".join(f"{f['wall_s']:>7.2f} {f['cpu_s']:>6.2f}" for f in figures[name])
        ratio = f" {figures[name][0]['wall_s'] / figures[name][-1]['wall_s']:>5.1f}x" if args.baseline else ""
        print(f"{name:34} {goal:>8} {cells}{ratio}")


if __name__ == "__main__":
    main()
