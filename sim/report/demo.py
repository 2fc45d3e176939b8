"""``python -m sim.report.demo``: simulate every bundled scenario and write one HTML report.

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
from typing import Any

from sim.errors import InputError
from sim.report.html import ScenarioSection, build_section, render_report, write_report

__all__ = ["main", "simulate_file", "scenario_files"]

DEFAULT_RUNS = 300
DEFAULT_SWEEP_RUNS = 100


def scenario_files(directory: Path) -> list[Path]:
    """The scenario files of a directory, in name order (so the page order is stable)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def _rel(path: Path) -> str:
    """``path`` relative to the working directory when possible (for commands shown)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def simulate_file(path: Path, max_runs: int, *, workers: int = 1, collect: list[Any] | None = None) -> ScenarioSection:
    """Load, simulate and summarise one scenario file.

    Args:
        path: the scenario file.
        max_runs: upper bound on rollouts (the file's ``runs`` may be lower).
        workers: processes for the batch.
        collect: when given, the runs' records frame is appended to it (for the
            overview figures across scenarios).

    Returns:
        A report section; on failure an error section naming the problem.
    """
    # Imported here, not at module level: the simulator is heavy and a broken world
    # module should surface as an error row, not as an ImportError of the CLI itself.
    try:
        from sim.inputs.policy import scenario_policy
        from sim.inputs.scenario import load_scenario
        from sim.runs.runner import run_batch, run_one
        from sim.seeds import run_seed

        scenario = load_scenario(path)
        policy = scenario_policy(scenario)
        runs = min(scenario.runs, max_runs)
        records = run_batch(scenario, policy, runs, scenario.seed, workers=workers)
        if collect is not None:
            from sim.runs.runner import records_frame

            collect.append(records_frame(records))
        # Run 0 again with tracing on: batches do not keep traces. Same seed, same run.
        trace = run_one(scenario, policy, run_seed(scenario.seed, 0, 0), trace=True).trace
        return build_section(scenario, policy, records, trace, source=_rel(path))
    except InputError as err:
        return ScenarioSection(name=path.name, error=str(err), source=_rel(path))
    except Exception as err:  # noqa: BLE001 - robustness is this function's contract
        # One line, never a traceback (docs/architecture.md section 6), but keep the type: it
        # tells a simulator bug (KeyError...) from bad data.
        message = " ".join(f"{type(err).__name__}: {err}".split())
        return ScenarioSection(name=path.name, error=f"{_rel(path)}: {message}", source=_rel(path))


def _figures(frames: list[Any], directory: Path, sweep_runs: int) -> list[Any]:
    """Overview figures; a failure here costs the figures, not the page."""
    import pandas as pd

    from sim.report.demo_figures import overview_blocks, sweep_blocks

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    blocks = overview_blocks(pd.concat(frames, ignore_index=True)) if frames else []
    if sweep_runs > 0:
        try:
            blocks += sweep_blocks(directory, sweep_runs, log=log)
        except (InputError, ValueError) as err:  # a bundled file changed under the sweeps
            log(f"sweeps left out: {' '.join(str(err).split())}")
    return blocks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.report.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output directory (default: reports)")
    p.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"at most this many rollouts per scenario (default: {DEFAULT_RUNS})",
    )
    p.add_argument("--workers", type=int, default=1, help="processes per scenario batch (default: 1)")
    p.add_argument("--scenarios", default="scenarios", help="scenario directory (default: ./scenarios)")
    p.add_argument(
        "--sweep-runs",
        type=int,
        default=DEFAULT_SWEEP_RUNS,
        help=f"rollouts per setting in the overview sweeps; 0 leaves them out (default: {DEFAULT_SWEEP_RUNS})",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.runs < 1:
        print(f"python -m sim.report.demo: --runs must be at least 1 (got {args.runs})", file=sys.stderr)
        return 2
    directory = Path(args.scenarios)
    if not directory.is_dir():
        print(
            f"python -m sim.report.demo: no scenario directory {str(directory)!r} under {Path.cwd()}; "
            "run from the repository root or pass --scenarios DIR",
            file=sys.stderr,
        )
        return 2
    files = scenario_files(directory)
    if not files:
        print(f"python -m sim.report.demo: no *.yaml scenario files in {directory}", file=sys.stderr)
        return 2

    sections = []
    frames: list[Any] = []
    for i, path in enumerate(files, 1):
        start = time.perf_counter()
        section = simulate_file(path, args.runs, workers=args.workers, collect=frames)
        took = time.perf_counter() - start
        status = f"ERROR {section.error}" if section.error else f"{section.runs} runs, run 0 {section.run0}"
        print(f"[{i}/{len(files)}] {path.name}: {status} ({took:.1f}s)", file=sys.stderr)
        sections.append(section)

    figures = _figures(frames, directory, args.sweep_runs)

    argv_shown = ["python", "-m", "sim.report.demo", "--out", args.out, "--runs", str(args.runs)]
    if args.scenarios != "scenarios":
        argv_shown += ["--scenarios", args.scenarios]
    if args.sweep_runs != DEFAULT_SWEEP_RUNS:
        argv_shown += ["--sweep-runs", str(args.sweep_runs)]
    html = render_report(
        sections, title="pdsim demo: bundled scenarios", command=shlex.join(argv_shown), figures=figures
    )
    out = write_report(Path(args.out) / "demo.html", html)
    print(out)
    return 2 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
