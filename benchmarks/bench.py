"""Every figure of issue 17, for this tree and the previous release, measured back to back.

``make bench`` runs this. Each figure is measured for THIS tree (the one holding this file)
and for the PREVIOUS RELEASE (a git ref: the commit in ``benchmarks/BASELINE`` unless
``--base REF``), checked out in a temporary ``git worktree`` that is removed afterwards, and
run with the same Python (this interpreter) through ``PYTHONPATH``. Every measurement is the
wall time of a whole ``python -m sim ...`` process, start-up included, taken in turns (this
tree, the previous one, this tree, ...; ``--repeats`` each, 3 by default) and reduced to the
median: on a shared machine only such back-to-back pairs are comparable.

The figures (targets from the issue):

* rollouts/s per worker = (N - 1) / (wall of ``run --runs N`` - wall of ``run --runs 1``),
  both on one worker: the simulation's rate with the start-up taken out. For the plain
  Flagger canary on good-release (>= 10,000/s), good-release with the sequential judge on both
  metrics (``gates/policies/flagger-sequential.yaml``: >= 5,000/s and at least half the plain
  rate), with Kayenta's judge at its defaults (>= 2,000/s) and ``argo-canary-steps`` with its
  own Argo canary (>= 5,000/s);
* speed-up from 1 to 2 workers = wall with ``--workers 1`` / wall with ``--workers 2`` at
  40,000 runs, for ``run`` (good-release), ``compare`` (good-release, the bundled canary
  against the threshold-2 one: 40,000 runs of each) and ``check`` (a gates file of
  good-release under the bundled canary, 40,000 runs): >= 1.8x each; for ``run``, a note
  gives the most two workers could gain with the measured start-up (``_ceiling``);
* start-up: ``run scenarios/good-release.yaml --runs 1`` (< 1 s), ``--help`` and
  ``validate scenarios/good-release.yaml`` (< 0.5 s).

Before timing, each tree is byte-compiled and each kind of command runs once per tree
untimed (small), so that ``.pyc`` files and compiled kernels cached on disk (numba's
``cache=True``) exist for both trees, as they do for anyone who has run pdsim before. Figures divided by one
another (N runs and 1 run; 1 worker and 2) are timed in the same rounds.

Run: ``.venv/bin/python benchmarks/bench.py [--base REF] [--quick] [--repeats N] [--readme]``.
``--readme`` rewrites the README's table between the ``bench:start`` and ``bench:end``
marker comments of its performance section.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "benchmarks" / "BASELINE"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

#: Columns of the table.
HEADER = ("figure", "now", "before", "now vs before", "target", "met")


@dataclass(frozen=True)
class Sizes:
    """Runs per command: the issue's figures (full) or a smoke test's (quick)."""

    plain: int
    judged: int
    kayenta: int
    argo: int
    scaling: int


FULL = Sizes(plain=20_000, judged=10_000, kayenta=5_000, argo=10_000, scaling=40_000)
QUICK = Sizes(plain=400, judged=200, kayenta=100, argo=200, scaling=400)


@dataclass(frozen=True)
class Tree:
    """A source tree the commands run from (its own scenarios, its own ``sim``)."""

    label: str
    root: Path
    files: Path  # where this tree's generated inputs (policy, gates file) are written


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    figure: str
    now: str
    before: str
    ratio: str
    target: str
    met: bool


# --- the trees -------------------------------------------------------------------------------


def baseline_ref() -> str:
    """The previous release's ref: the first word of ``benchmarks/BASELINE``."""
    return BASELINE.read_text().split()[0]


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """A temporary detached ``git worktree`` of ``ref``, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="pdsim-bench-base-"))
    path = parent / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


def write_inputs(tree: Tree, sizes: Sizes) -> None:
    """The inputs no bundled file provides, pointing at the tree's own files: a Kayenta
    policy (good-release's analysis judged by Kayenta at its defaults) and a gates file."""
    tree.files.mkdir(parents=True, exist_ok=True)
    (tree.files / "kayenta.yaml").write_text(
        "flagger:\n"
        "  analysis:\n"
        "    interval: 1m\n"
        "    threshold: 5\n"
        "    maxWeight: 50\n"
        "    stepWeight: 10\n"
        "    metrics:\n"
        "      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n"
        "      - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}\n"
        "  judge: {kind: kayenta}\n"
    )
    (tree.files / "gates.yaml").write_text(
        "name: bench-check\n"
        f"policy: {tree.root / 'gates' / 'policies' / 'flagger-canary.yaml'}\n"
        f"runs: {sizes.scaling}\n"
        "seed: 2026\n"
        "scenarios:\n"
        f"  - path: {tree.root / 'scenarios' / 'good-release.yaml'}\n"
        "    requirements:\n"
        "      false_rollback_rate: {max: 0.01}\n"
    )


# --- timing ----------------------------------------------------------------------------------


def wall(tree: Tree, args: Sequence[str], ok: tuple[int, ...] = (0,)) -> float:
    """Seconds of one ``python -m sim ARGS`` process run from the tree's root."""
    env = {**os.environ, "PYTHONPATH": str(tree.root)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sim", *args], cwd=tree.root, env=env, capture_output=True, text=True, timeout=3600
    )
    took = time.perf_counter() - started
    if done.returncode not in ok:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{tree.label}: python -m sim {' '.join(args)} exited {done.returncode}: {tail[0]}")
    return took


Command = Callable[[Tree], list[str]]


class Bench:
    """Measures commands on the trees in turns and keeps the medians."""

    def __init__(self, trees: Sequence[Tree], repeats: int, log: Callable[[str], None]) -> None:
        self.trees = trees
        self.repeats = repeats
        self.log = log

    def medians(self, name: str, *commands: Command, ok: tuple[int, ...] = (0,)) -> list[list[float]]:
        """Median wall of each command on each tree (``[command][tree]``). Each of the
        ``repeats`` rounds runs every command on every tree in turn, so that the figures
        divided by one another (N runs and 1 run, 1 worker and 2) are taken close in time."""
        times: list[list[list[float]]] = [[[] for _ in self.trees] for _ in commands]
        for _ in range(self.repeats):
            for c, command in enumerate(commands):
                for i, tree in enumerate(self.trees):
                    times[c][i].append(wall(tree, command(tree), ok))
        out = [[statistics.median(t) for t in per] for per in times]
        for c, per in enumerate(out):
            label = f"{name}[{c}]" if len(commands) > 1 else name
            self.log(f"{label}: " + ", ".join(f"{t.label} {m:.2f} s" for t, m in zip(self.trees, per)))
        return out


def byte_compile(tree: Tree) -> None:
    """Write the tree's ``.pyc`` files, as Python does on a first import.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (the machine of the README's table sets it),
    Python never writes them, and every process would compile pdsim's sources from text:
    about 0.15 s of each start-up there, which no installed copy pays (pip byte-compiles
    what it installs; elsewhere a checkout writes its caches on first use).
    ``compileall`` writes them whatever the variable says.
    """
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree.root / "sim")], check=True, capture_output=True, text=True
    )


def warm_up(bench: Bench) -> None:
    """Run each kind of command once per tree, untimed: numba compiles what its on-disk
    cache lacks (a fresh worktree has none) before anything is timed; and byte-compile
    each tree first (``byte_compile``)."""
    good = "scenarios/good-release.yaml"
    for tree in bench.trees:
        byte_compile(tree)
        for args in (
            ["run", good, "--runs", "50"],
            ["run", good, "--runs", "20", "--policy", "gates/policies/flagger-sequential.yaml"],
            ["run", good, "--runs", "5", "--policy", str(tree.files / "kayenta.yaml")],
            ["run", "scenarios/argo-canary-steps.yaml", "--runs", "20"],
            ["compare", good, "gates/policies/flagger-canary.yaml", "sweeps/policies/threshold-2.yaml", "--runs", "20"],
            ["validate", good],
        ):
            wall(tree, args)
    bench.log("warmed up: " + ", ".join(t.label for t in bench.trees))


def per_worker_rate(bench: Bench, name: str, args: Command, runs: int) -> list[float]:
    """Rollouts/s per worker of ``run ARGS``, start-up taken out: (N - 1) / (wall N - wall 1)."""
    one, many = bench.medians(
        f"{name}, 1 and {runs} runs",
        lambda t: [*args(t), "--runs", "1", "--workers", "1"],
        lambda t: [*args(t), "--runs", str(runs), "--workers", "1"],
    )
    # NaN when N runs took no longer than one (too few runs to see past the noise).
    return [(runs - 1) / (m - o) if m > o else math.nan for m, o in zip(many, one)]


def speedup(bench: Bench, name: str, args: Command, ok: tuple[int, ...] = (0,)) -> list[float]:
    """Wall on one worker / wall on two workers."""
    w1, w2 = bench.medians(
        f"{name}, 1 and 2 workers",
        lambda t: [*args(t), "--workers", "1"],
        lambda t: [*args(t), "--workers", "2"],
        ok=ok,
    )
    return [a / b for a, b in zip(w1, w2)]


# --- the table -------------------------------------------------------------------------------


def _rate(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.0f}/s"


def _seconds(x: float) -> str:
    return f"{x:.2f} s"


def _times(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}x"


def _ceiling(start_s: float, one_worker_s: float) -> float:
    """The most two workers can speed up a command whose one-worker wall is
    ``one_worker_s``, ``start_s`` of it start-up that each process pays (Amdahl's law:
    only the rest is shared)."""
    return one_worker_s / (start_s + (one_worker_s - start_s) / 2)


def measure(
    trees: Sequence[Tree], sizes: Sizes, repeats: int, log: Callable[[str], None]
) -> tuple[list[Row], list[str]]:
    """Every figure, for each tree (``trees[0]`` now, ``trees[1]`` before), and notes on
    them (what bounds a figure)."""
    bench = Bench(trees, repeats, log)
    warm_up(bench)
    good = "scenarios/good-release.yaml"
    rows: list[Row] = []
    notes: list[str] = []

    def higher(figure: str, values: Sequence[float], fmt: Callable[[float], str], target: float, label: str) -> None:
        now, before = values
        rows.append(Row(figure, fmt(now), fmt(before), _times(now / before), label, now >= target))

    def lower(figure: str, values: Sequence[float], target: float) -> None:
        now, before = values
        rows.append(Row(figure, _seconds(now), _seconds(before), _times(before / now), f"< {target:g} s", now < target))

    plain = per_worker_rate(bench, "plain canary", lambda t: ["run", good], sizes.plain)
    higher("plain canary, good-release: rollouts/s per worker", plain, _rate, 10_000, ">= 10,000/s")
    seq_args = ["run", good, "--policy", "gates/policies/flagger-sequential.yaml"]
    sequential = per_worker_rate(bench, "sequential judge", lambda t: seq_args, sizes.judged)
    higher(
        "sequential judge (both metrics), good-release: rollouts/s per worker", sequential, _rate, 5_000, ">= 5,000/s"
    )
    half = [s / p for s, p in zip(sequential, plain)]
    higher("sequential judge / plain canary", half, _times, 0.5, ">= 0.50x")
    kayenta = per_worker_rate(
        bench, "kayenta judge", lambda t: ["run", good, "--policy", str(t.files / "kayenta.yaml")], sizes.kayenta
    )
    higher("Kayenta judge (defaults), good-release: rollouts/s per worker", kayenta, _rate, 2_000, ">= 2,000/s")
    argo = per_worker_rate(bench, "argo canary", lambda t: ["run", "scenarios/argo-canary-steps.yaml"], sizes.argo)
    higher("argo-canary-steps: rollouts/s per worker", argo, _rate, 5_000, ">= 5,000/s")

    n = str(sizes.scaling)
    start, w1, w2 = bench.medians(
        "run, 1 run and 1 and 2 workers",
        lambda t: ["run", good, "--runs", "1", "--workers", "1"],
        lambda t: ["run", good, "--runs", n, "--workers", "1"],
        lambda t: ["run", good, "--runs", n, "--workers", "2"],
    )
    run2 = [a / b for a, b in zip(w1, w2)]
    higher(f"run --workers 2 vs 1, {sizes.scaling:,} runs: speed-up", run2, _times, 1.8, ">= 1.80x")
    notes.append(
        f"run --workers 2: the start-up (the wall of `run --runs 1`, {start[0]:.2f} s of this tree) is not shared "
        f"by two workers, so no two workers beat {w1[0]:.2f} / ({start[0]:.2f} + {w1[0] - start[0]:.2f} / 2) = "
        f"{_ceiling(start[0], w1[0]):.2f}x here (before: {_ceiling(start[1], w1[1]):.2f}x)"
    )
    compare_args = ["compare", good, "gates/policies/flagger-canary.yaml", "sweeps/policies/threshold-2.yaml"]
    compare2 = speedup(bench, "compare", lambda t: [*compare_args, "--runs", n, "--quiet"])
    higher(f"compare --workers 2 vs 1, {sizes.scaling:,} runs each: speed-up", compare2, _times, 1.8, ">= 1.80x")
    # check exits 1 when a requirement fails: a timing, not a verdict.
    check2 = speedup(bench, "check", lambda t: ["check", str(t.files / "gates.yaml")], ok=(0, 1))
    higher(f"check --workers 2 vs 1, {sizes.scaling:,} runs: speed-up", check2, _times, 1.8, ">= 1.80x")

    lower("run --runs 1 (whole process)", bench.medians("run --runs 1", lambda t: ["run", good, "--runs", "1"])[0], 1.0)
    lower("--help (whole process)", bench.medians("--help", lambda t: ["--help"])[0], 0.5)
    lower("validate good-release (whole process)", bench.medians("validate", lambda t: ["validate", good])[0], 0.5)
    return rows, notes


def machine() -> str:
    """CPU model, cores, Python, load average: which machine the figures are from."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}{load}"


def table(rows: Sequence[Row]) -> str:
    """The rows as one markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r.figure} | {r.now} | {r.before} | {r.ratio} | {r.target} | {'yes' if r.met else 'no'} |")
    return "\n".join(lines)


def report(
    rows: Sequence[Row], *, now: str, before: str, host: str, sizes: Sizes, repeats: int, notes: Sequence[str] = ()
) -> str:
    """The table with what it was measured on and how, and the notes."""
    met = sum(r.met for r in rows)
    return "\n".join(
        [
            f"machine: {host}",
            f"now: {now}; before: {before}; {datetime.date.today().isoformat()}",
            f"whole-process walls of `python -m sim ...`, the two trees in turns, medians of {repeats}; "
            f"rollouts/s per worker = (N - 1) / (wall of N runs - wall of 1 run) on one worker "
            f"(N = {sizes.plain:,} plain, {sizes.judged:,} sequential, "
            f"{sizes.kayenta:,} Kayenta, {sizes.argo:,} Argo); "
            "speed-up = wall on 1 worker / wall on 2; now vs before > 1 means now is faster",
            "",
            table(rows),
            "",
            f"targets met: {met} of {len(rows)}",
            *notes,
        ]
    )


def rewrite_readme(text: str, path: Path = README) -> None:
    """Replace what lies between the README's bench markers with ``text``."""
    readme = path.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"{path}: no {START} ... {END} markers in its performance section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n```\n{text}\n```\n{END}{tail}")


def describe(ref: str) -> str:
    """``ref`` as a short commit and its subject's start."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", ref], capture_output=True, text=True, check=False
    )
    line = done.stdout.strip() or ref
    return line if len(line) <= 60 else line[:57] + "..."


def resolve(ref: str) -> str:
    """The commit ``ref`` names now."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"--base/--now: {ref!r} is not a commit of {ROOT}")
    return done.stdout.strip()


def now_label(ref: str | None) -> str:
    """What "now" was: a ref, or this working tree (said when it has uncommitted changes)."""
    if ref:
        return describe(ref)
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return describe("HEAD") + (" with uncommitted changes" if changed else "")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", metavar="REF", help="the previous release (default: benchmarks/BASELINE)")
    ap.add_argument("--now", metavar="REF", help="measure this ref as now (default: this working tree)")
    ap.add_argument("--runs", type=int, help="every N of the table set to this (for a smoke test)")
    ap.add_argument("--quick", action="store_true", help="few runs, one repeat: a smoke test, not figures")
    ap.add_argument("--repeats", type=int, help="timings per tree and command (default 3; 1 with --quick)")
    ap.add_argument("--readme", action="store_true", help="rewrite the README's table between its bench markers")
    args = ap.parse_args(argv)
    # Commits, not names: a branch that moves during the run must not change what is labelled.
    ref = resolve(args.base or baseline_ref())
    args.now = resolve(args.now) if args.now else None
    sizes = QUICK if args.quick else FULL
    if args.runs is not None:
        if args.runs < 2:
            ap.error("--runs must be at least 2 (compare needs two runs)")
        sizes = Sizes(*[args.runs] * 5)
    repeats = args.repeats or (1 if args.quick else 3)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    host = machine()
    # A terminated benchmark still removes its worktrees (the with-blocks' exits run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with ExitStack() as stack:
        base = stack.enter_context(worktree(ref))
        now = stack.enter_context(worktree(args.now)) if args.now else ROOT
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pdsim-bench-")))
        trees = [Tree("now", now, tmp / "now"), Tree("before", base, tmp / "before")]
        for tree in trees:
            write_inputs(tree, sizes)
        rows, notes = measure(trees, sizes, repeats, log)
    text = report(
        rows, now=now_label(args.now), before=describe(ref), host=host, sizes=sizes, repeats=repeats, notes=notes
    )
    print(text)
    if args.readme:
        rewrite_readme(text)
        log(f"rewrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
