"""``pdsim report RESULTS --html FILE``: a report page from stored run records.

RESULTS is a directory of Parquet chunks (``pdsim run --out DIR``, a sweep's output; read
recursively), or one Parquet or CSV file: a tidy table, one row per run, with the record
columns of docs/architecture.md section 5 and possibly parameter columns (``threshold``, a fault's
``severity``...). The page groups runs by (scenario, policy), and shows:

* what was simulated: per group, the runs, good/bad releases and, when the scenario file
  is given (``--scenario``), its description, faults and policy, plus the timeline of run 0
  re-simulated from its stored seed (a run's seed reproduces it alone);
* the headline table with intervals;
* figures across groups and parameter settings (detection-time CDFs, blast radius,
  false-rollback rates and the speed/harm frontier over parameter columns, a power curve
  when a ``severity`` column exists; for A/B runs with business outcomes, the chance of
  promoting the candidate by true lift and regret against time to decide,
  ``sim.report.experiments``);
* the command that reproduces the page.
"""

from __future__ import annotations

import io
import json
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from sim.errors import InputError
from sim.inputs.files import open_regular, read_bytes, read_text
from sim.limits import MAX_CSV_BYTES, MAX_CSV_ROWS, MAX_RESULTS_JSON_BYTES
from sim.outcomes import COLUMNS
from sim.report.experiments import experiment_figures
from sim.report.html import FigureBlock, ScenarioSection, build_section, figure_block
from sim.report.plots import (
    blast_radius_figure,
    detection_cdf_figure,
    false_rollback_figure,
    frontier_figure,
    power_curve_figure,
)
from sim.report.tradeoffs import bool_column
from sim.runs.store import MANIFEST, RUN_CHUNK_RE, SUMMARY, RecordOrigin, check_records, load_results
from sim.stats import format_summary_table, summarize_records

__all__ = ["read_results", "incomplete_folders", "parameter_columns", "overview_figures", "results_sections"]

#: Columns of a sweep's results that identify cells rather than settings.
_BOOKKEEPING = frozenset({"cell", "world", "kind", "stratum", "weight"})

#: Columns every results table must have (the rest of the record is optional).
REQUIRED = ("scenario", "policy", "run", "outcome", "release_bad")


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The runs stored at ``path`` as one tidy frame, checked against the run record's contract.

    Args:
        path: a sweep's folder (read through :func:`sim.runs.store.load_results`, which joins
            each run to its cell's swept parameters), another directory (every ``*.parquet``
            below it, in path order), a ``.parquet`` file or a ``.csv`` file.

    Raises:
        InputError: when nothing can be read, a file is not run records (a required column
            missing, a truncated or foreign file), a value is out of its column's domain
            (:func:`sim.runs.store.check_records`: an unknown outcome, a flag that is not
            true or false, a time that is not a number...) or a run is stored twice. The
            message names the file, the line (a CSV file's row, else 1) and the column.
    """
    p = Path(path)
    name = os.fsdecode(path)
    if p.is_dir() and (p / MANIFEST).is_file():
        frame = load_results(p)
    elif p.is_dir():
        files = _parquet_files(p)
        if not files:
            raise InputError(
                name, 1, None, "no *.parquet result files in this directory (write some with pdsim run --out DIR)"
            )
        parts = [_read_table(f, _read_parquet) for f in files]
        origin = RecordOrigin.of([(os.fsdecode(f), len(part)) for f, part in zip(files, parts)])
        frame = check_records(pd.concat(parts, ignore_index=True), origin)
    elif p.suffix == ".csv":
        part = _read_table(p, _read_csv)
        frame = check_records(part, RecordOrigin.of([(name, len(part))], csv=True))
    elif p.suffix == ".parquet":
        part = _read_table(p, _read_parquet)
        frame = check_records(part, RecordOrigin.of([(name, len(part))]))
    elif not p.exists():
        raise InputError(name, 1, None, "no such file or directory")
    else:
        raise InputError(name, 1, None, "results must be a directory of Parquet files, a .parquet or a .csv file")
    if frame.empty:
        raise InputError(name, 1, None, "the results hold no runs")
    return frame


def _read_table(path: Path, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    """One file of run records, with the record's required columns.

    Raises:
        InputError: naming the file, when it cannot be read or lacks a required column.
    """
    name = os.fsdecode(path)
    try:
        frame = read(path)
    except (OSError, ValueError) as err:  # pyarrow's and pandas' errors subclass these
        raise InputError(name, 1, None, f"cannot read results: {' '.join(str(err).split())}") from None
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise InputError(
            name, 1, None, f"not run records: no column {missing[0]!r}", got=", ".join(map(str, frame.columns[:8]))
        )
    return frame


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet results file; a FIFO or device is refused (it would block or never end)."""
    with open_regular(path, what="results file") as fh:
        return pd.read_parquet(fh, columns=columns)


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV results file, refused beyond ``MAX_CSV_BYTES`` or ``MAX_CSV_ROWS``."""
    raw = read_bytes(path, what="results CSV", limit=MAX_CSV_BYTES)
    frame = pd.read_csv(io.BytesIO(raw), nrows=MAX_CSV_ROWS + 1)
    if len(frame) > MAX_CSV_ROWS:
        raise InputError(os.fsdecode(path), 1, None, f"too many rows (limit is {MAX_CSV_ROWS:,})")
    return frame


def _parquet_files(root: Path) -> list[Path]:
    """Every ``*.parquet`` below ``root``, in path order, but none under a dot-name: those are
    temporaries and the staging folder of a ``pdsim run --out --force`` in progress."""
    return sorted(
        f
        for f in root.rglob("*.parquet")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
    )


def _spans(numbers: Sequence[int]) -> str:
    """``0-9, 20, 31-40``: sorted integers as runs of consecutive ones (at most ten spans)."""
    spans: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(spans[:10]) + (f" and {len(spans) - 10} more spans" if len(spans) > 10 else "")


def incomplete_folders(path: str | os.PathLike[str]) -> list[str]:
    """What looks unfinished in the ``pdsim run --out`` folders at ``path`` (one line each).

    A folder with run chunks (``records-NNNNN.parquet``) is incomplete when it has no
    ``summary.json`` (the run was interrupted before the end) or when run numbers are
    missing (below the highest one, or below the ``runs`` its summary states) or repeated.
    A sweep folder (``manifest.json``) and a single file give no lines.

    Args:
        path: the RESULTS of ``pdsim report``.

    Returns:
        One line per incomplete folder, e.g. ``out/x looks incomplete: no summary.json (an
        interrupted run?); 20 runs in 2 chunks, runs 20-29 missing``; empty when all is well.
    """
    root = Path(path)
    if not root.is_dir() or (root / MANIFEST).is_file():
        return []
    folders: dict[Path, list[Path]] = {}
    for f in _parquet_files(root):
        if RUN_CHUNK_RE.fullmatch(f.name):
            folders.setdefault(f.parent, []).append(f)
    lines = []
    for folder, chunks in folders.items():
        try:
            runs = pd.concat([_read_parquet(f, columns=["run"]) for f in chunks])["run"].astype(int)
        except (InputError, OSError, ValueError, KeyError):
            continue  # read_results has already reported what it could not read
        problems = []
        stated = None
        summary = folder / SUMMARY
        if not summary.is_file():
            problems.append(f"no {SUMMARY} (an interrupted run?)")
        else:
            try:
                stated = int(json.loads(read_text(summary, what=SUMMARY, limit=MAX_RESULTS_JSON_BYTES))["runs"])
            except (InputError, OSError, ValueError, KeyError, TypeError):
                problems.append(f"unreadable {SUMMARY}")
        present = set(runs.tolist())
        expected = stated if stated is not None else (max(present) + 1 if present else 0)
        missing = sorted(set(range(expected)) - present)
        repeated = sorted(runs[runs.duplicated()].unique().tolist())
        counts = f"{len(runs)} runs in {len(chunks)} chunk{'s' if len(chunks) != 1 else ''}"
        if missing:
            counts += f", runs {_spans(missing)} missing"
        if repeated:
            counts += f", runs {_spans(repeated)} repeated (results of two runs mixed?)"
        beyond = sorted(n for n in present if n >= expected or n < 0)
        if beyond:
            counts += f", runs {_spans(beyond)} beyond the {expected} its {SUMMARY} states"
        if problems or missing or repeated or beyond:
            where = os.fsdecode(folder)
            lines.append(f"{where} looks incomplete: " + "; ".join([*problems, counts]))
    return lines


def parameter_columns(frame: pd.DataFrame) -> list[str]:
    """Columns beyond the run record that vary: the settings a sweep changed.

    The sweep engine's bookkeeping columns (cell, world, kind, stratum, weight) are not
    settings.
    """
    return [
        c for c in frame.columns if c not in COLUMNS and c not in _BOOKKEEPING and frame[c].nunique(dropna=False) > 1
    ]


def _grouping(frame: pd.DataFrame, by: list[str]) -> list[str]:
    """The columns of ``by`` that split the runs, without those that add no split.

    E.g. (scenario, policy) where each scenario ran its own policy is just ``scenario``:
    labels stay short.
    """
    cols: list[str] = []
    for c in by:
        if c in frame and frame[c].nunique() > 1:
            if not cols or frame.groupby(cols + [c]).ngroups > frame.groupby(cols).ngroups:
                cols.append(c)
    return cols or by[:1]


def _is_fault_size(column: str) -> bool:
    """A column that sizes the release's fault (a severity), not a policy setting."""
    return column == "severity" or column.startswith("release.")


def _short_names(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Columns renamed to their last path component (``policy.flagger.analysis.threshold`` ->
    ``threshold``) when that stays unique, so figure labels stay readable."""
    short = {c: c.rsplit(".", 1)[-1] for c in columns}
    if len(set(short.values())) < len(short) or set(short.values()) & (set(frame.columns) - set(short)):
        return frame, list(columns)
    return frame.rename(columns=short), [short[c] for c in columns]


def overview_figures(
    frame: pd.DataFrame, *, by: str | Sequence[str] = ("scenario", "policy"), params: Sequence[str] | None = None
) -> list[FigureBlock]:
    """The figures that the runs support, as report blocks.

    Args:
        frame: the runs.
        by: grouping of the detection and blast-radius figures when no policy setting
            varies (columns that split nothing are dropped).
        params: parameter columns (default: :func:`parameter_columns`). A ``severity``
            column, or a swept ``release.…`` path, sizes the fault and gives a power curve;
            the other parameters are policy settings: they group the detection and
            blast-radius figures and give the false-rollback and frontier figures.
    """
    full = parameter_columns(frame) if params is None else list(params)
    frame, short = _short_names(frame, full)
    severities = [s for f, s in zip(full, short) if _is_fault_size(f)]
    settings = [s for f, s in zip(full, short) if not _is_fault_size(f)]
    labels = dict(zip(short, full))
    cols = settings or _grouping(frame, [by] if isinstance(by, str) else list(by))
    bad = bool_column(frame, "release_bad")
    blocks = []
    if bad.any():
        blocks.append(
            figure_block(
                detection_cdf_figure(frame, by=cols),
                title="How fast bad releases are rolled back",
                alt="Cumulative share of bad-release runs rolled back against minutes since fault onset, one curve per "
                + " and ".join(cols),
                caption="Each curve rises at each rollback and levels off at the detection rate (legend, with its 95% "
                "interval); the shaded band (drawn for up to four curves) holds the whole true curve with 95% "
                "confidence.",
            )
        )
        blocks.append(
            figure_block(
                blast_radius_figure(frame, by=cols),
                title="Blast radius of bad releases",
                alt="Excess errors per bad-release run: box plots and means with intervals per " + " and ".join(cols),
                caption="Failures beyond what the stable version would have served, including the after_promotion "
                "damage of a missed bad release. Diamonds: means with 95% intervals.",
            )
        )
    sized = frame[bad & frame[severities[0]].notna().to_numpy()] if severities and bad.any() else frame.iloc[:0]
    if len(sized) and sized[severities[0]].nunique() > 1:
        severity = severities[0]
        blocks.append(
            figure_block(
                power_curve_figure(sized, severity=severity, by=settings or None, severity_label=labels[severity]),
                title="Detection probability by fault severity",
                alt=f"Share of bad releases rolled back against {labels[severity]}, with Wilson intervals",
                caption="Error bars: 95% Wilson intervals.",
            )
        )
    if settings and (~bad).any():
        x = settings[0]
        blocks.append(
            figure_block(
                false_rollback_figure(frame, x=x, by=settings[1:] or None),
                title=f"False rollbacks against {x}",
                alt=f"False-rollback rate of good releases against {x}, with Wilson intervals",
                caption="Good releases rolled back, in percent, with 95% Wilson intervals.",
            )
        )
    if settings and bad.any() and (~bad).any():
        # A sweep's portfolio weighs its releases: the expected harm is the weighted one.
        portfolio = {"weight", "world"} <= set(frame.columns)
        blocks.append(
            figure_block(
                frontier_figure(
                    frame,
                    settings,
                    weight="weight" if portfolio else None,
                    stratum="world" if portfolio else "scenario",
                ),
                title="Speed against harm over the settings",
                alt="Each setting's mean time to promote a good release against its mean blast radius; the Pareto "
                "frontier is highlighted",
                caption="Frontier settings: no other setting promotes good releases faster and also hurts fewer "
                "requests when the release is bad.",
            )
        )
    # A/B runs (issue 19): curves per policy, pooling scenarios (an A/A and a lift
    # scenario are two points of one power curve), or per policy setting swept.
    blocks += experiment_figures(frame, by=settings or _grouping(frame, ["policy"]))
    return blocks


def _group_lines(sub: pd.DataFrame) -> list[str]:
    bad = bool_column(sub, "release_bad")
    lines = [f"{int((~bad).sum())} good-release runs, {int(bad.sum())} bad-release runs (from the records)"]
    params = parameter_columns(sub)
    if params:
        lines.append("settings varied: " + ", ".join(f"{p} ({sub[p].nunique()} values)" for p in params))
    return lines


def results_sections(
    frame: pd.DataFrame,
    *,
    scenario_files: Sequence[str | os.PathLike[str]] = (),
    policy_paths: Sequence[str | os.PathLike[str]] = (),
) -> list[ScenarioSection]:
    """One section per (scenario, policy) group of the runs.

    A group whose scenario name matches a file in ``scenario_files`` is described from
    that file, and run 0's timeline is re-simulated from its stored seed under the
    scenario's own policy (or the one at ``policy_paths``) when the policy names match.

    Raises:
        InputError: for a bad scenario or policy file.
    """
    from sim.inputs.policy import load_policy, scenario_policy
    from sim.inputs.scenario import load_scenario
    from sim.runs.runner import run_one
    from sim.seeds import run_seed

    scenarios = {}
    for f in scenario_files:
        sc = load_scenario(f)
        scenarios[sc.name] = (sc, str(f))
    given_policy = load_policy(list(policy_paths)) if policy_paths else None
    sections = []
    for (scenario_name, policy_name), sub in frame.groupby(["scenario", "policy"], sort=False):
        sub = sub.sort_values("run")
        found = scenarios.get(str(scenario_name))
        if found is not None:
            sc, source = found
            policy = given_policy if given_policy is not None else scenario_policy(sc, source)
            if policy.name == policy_name:
                rec0 = sub.iloc[0]
                result = run_one(sc, policy, int(rec0["seed"]), run_index=int(rec0["run"]), trace=True)
                section = build_section(sc, policy, [result.record], result.trace or [], source=source)
                summary = summarize_records(sub)
                section.summary, section.runs = summary, len(sub)
                section.details = format_summary_table(summary)
                section.name = f"{scenario_name} / {policy_name}"
                # The root seed is known when the runs are runs 0..n-1 of the scenario's own
                # seed (as `pdsim run` numbers them); otherwise no command is claimed.
                head = sub.head(3)
                own = all(
                    int(seed) == run_seed(sc.seed, 0, int(run))
                    for seed, run in zip(head["seed"].tolist(), head["run"].tolist())
                )
                if own and list(sub["run"]) == list(range(len(sub))):
                    policy_args = [a for p in policy_paths for a in ("--policy", os.fspath(p))]
                    section.command = shlex.join(
                        [
                            "pdsim",
                            "run",
                            source,
                            *policy_args,
                            "--runs",
                            str(len(sub)),
                            "--seed",
                            str(sc.seed),
                            "--trace",
                            "run0.jsonl",
                        ]
                    )
                else:
                    section.seed, section.source = None, None
                sections.append(section)
                continue
        summary = summarize_records(sub)
        first = sub.iloc[0]
        run0 = f"{first['outcome']}".replace("_", " ")
        if pd.notna(first.get("decision_time_s")):
            run0 += f" at {float(first['decision_time_s']) / 60:.1f} min"
        sections.append(
            ScenarioSection(
                name=f"{scenario_name} / {policy_name}",
                policy=str(policy_name),
                faults=_group_lines(sub),
                runs=len(sub),
                summary=summary,
                run0=f"run {int(first['run'])}: {run0}",
                details=format_summary_table(summary),
                described=False,
            )
        )
    return sections
