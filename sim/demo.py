"""``python -m sim.demo``: simulate every bundled scenario and write one HTML report.

Run from the repository root (scenarios are read from ``./scenarios``). Each scenario
runs under its own policy and root seed, with ``min(scenario.runs, --runs)`` rollouts.
A scenario that fails to load or simulate becomes an error row in the page instead of
stopping the others: one broken file should not hide the results of the rest.

Exit status: 0 when every scenario was simulated; 2 when some scenario could not be
loaded or simulated (the page is still written, with error rows); 2 and no page when
there is no scenario directory or no scenario file in it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sim.errors import InputError
from sim.report import ScenarioSection, build_section, render_report, write_report

__all__ = ["main", "simulate_file", "scenario_files"]

DEFAULT_RUNS = 300


def scenario_files(directory: Path) -> list[Path]:
    """The scenario files of a directory, in name order (so the page order is stable)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def _rel(path: Path) -> str:
    """``path`` relative to the working directory when possible (for commands shown)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def simulate_file(path: Path, max_runs: int, *, workers: int = 1) -> ScenarioSection:
    """Load, simulate and summarise one scenario file.

    Args:
        path: the scenario file.
        max_runs: upper bound on rollouts (the file's ``runs`` may be lower).
        workers: processes for the batch.

    Returns:
        A report section; on failure an error section naming the problem.
    """
    # Imported here, not at module level: the simulator is heavy and a broken world
    # module should surface as an error row, not as an ImportError of the CLI itself.
    try:
        from sim.policyfile import scenario_policy
        from sim.rng import run_seed
        from sim.runner import run_batch, run_one
        from sim.scenario import load_scenario

        scenario = load_scenario(path)
        policy = scenario_policy(scenario)
        runs = min(scenario.runs, max_runs)
        records = run_batch(scenario, policy, runs, scenario.seed, workers=workers)
        # Run 0 again with tracing on: batches do not keep traces. Same seed, same run.
        trace = run_one(scenario, policy, run_seed(scenario.seed, 0, 0), trace=True).trace
        return build_section(scenario, policy, records, trace, source=_rel(path))
    except InputError as err:
        return ScenarioSection(name=path.name, error=str(err), source=_rel(path))
    except Exception as err:  # noqa: BLE001 - robustness is this function's contract
        # One line, never a traceback (DESIGN.md section 6), but keep the type: it
        # tells a simulator bug (KeyError...) from bad data.
        message = " ".join(f"{type(err).__name__}: {err}".split())
        return ScenarioSection(name=path.name, error=f"{_rel(path)}: {message}", source=_rel(path))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output directory (default: reports)")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                   help=f"at most this many rollouts per scenario (default: {DEFAULT_RUNS})")
    p.add_argument("--workers", type=int, default=1, help="processes per scenario batch (default: 1)")
    p.add_argument("--scenarios", default="scenarios", help="scenario directory (default: ./scenarios)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.runs < 1:
        print(f"python -m sim.demo: --runs must be at least 1 (got {args.runs})", file=sys.stderr)
        return 2
    directory = Path(args.scenarios)
    if not directory.is_dir():
        print(f"python -m sim.demo: no scenario directory {str(directory)!r} under {Path.cwd()}; "
              "run from the repository root or pass --scenarios DIR", file=sys.stderr)
        return 2
    files = scenario_files(directory)
    if not files:
        print(f"python -m sim.demo: no *.yaml scenario files in {directory}", file=sys.stderr)
        return 2

    sections = []
    for i, path in enumerate(files, 1):
        start = time.perf_counter()
        section = simulate_file(path, args.runs, workers=args.workers)
        took = time.perf_counter() - start
        status = f"ERROR {section.error}" if section.error else f"{section.runs} runs, run 0 {section.run0}"
        print(f"[{i}/{len(files)}] {path.name}: {status} ({took:.1f}s)", file=sys.stderr)
        sections.append(section)

    argv_shown = ["python", "-m", "sim.demo", "--out", args.out, "--runs", str(args.runs)]
    if args.scenarios != "scenarios":
        argv_shown += ["--scenarios", args.scenarios]
    html = render_report(sections, title="pdsim demo: bundled scenarios", command=shlex.join(argv_shown))
    out = write_report(Path(args.out) / "demo.html", html)
    print(out)
    return 2 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
