"""The releases a tuning candidate meets, simulated on common random numbers.

A portfolio is a list of scenario files with weights (how often such a release comes).
Run ``k`` of entry ``i`` has the seed ``run_seed(seed, world, k)`` with ``world = i`` for
the search (stream 0) and ``world = FRESH + i`` for the fresh-seed check (stream 1): the
seed never depends on the policy, so every candidate meets the same traffic and faults
(common random numbers: differences between candidates are the policies', not luck's),
and the check's runs are never runs the search saw.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import InputError
from sim.inputs.scenario import Scenario, load_scenario
from sim.yamlio import YamlDoc

if TYPE_CHECKING:
    import pandas as pd

    from sim.policies.base import Policy

#: First world index of the fresh-seed stream: beyond any portfolio's length, so the two
#: streams' seeds never meet.
FRESH = 2**32
#: Runs per task handed to a worker: large enough to amortise shipping the policy,
#: small enough to spread a rung's work over the workers.
TASK_RUNS = 2000
#: The run-record columns a tuning frame keeps (the metrics read no others).
FRAME_COLUMNS = (
    "scenario",
    "run",
    "seed",
    "release_bad",
    "outcome",
    "false_rollback",
    "missed",
    "detection_time_s",
    "decision_time_s",
    "excess_errors",
    "excess_errors_after_promotion",
    "canary_requests",
    "canary_errors",
    "users_affected",
    "users_exposed",
)


#: How each frame column is held (the run record's fields, ``sim.outcomes.RunRecord``).
_KINDS: dict[str, type] = {
    "run": np.int64,
    "seed": np.int64,
    "release_bad": bool,
    "outcome": str,
    "false_rollback": bool,
    "missed": bool,
    **dict.fromkeys(FRAME_COLUMNS[7:], float),
}


@dataclass(frozen=True)
class Entry:
    """One kind of release of a portfolio.

    Attributes:
        index: its position in the portfolio (the seed's world).
        name: ``name`` as given, else the scenario's name.
        path: the scenario file.
        weight: how often such a release comes (the portfolio's weights sum to 1).
        scenario: the loaded scenario.
    """

    index: int
    name: str
    path: str
    weight: float
    scenario: Scenario


@dataclass(frozen=True)
class Portfolio:
    """Scenarios with weights, and which seed stream their runs come from.

    Attributes:
        entries: the releases, in the file's order.
        stream: 0 for the search's seeds, 1 for the fresh-seed check's.
    """

    entries: tuple[Entry, ...]
    stream: int = 0

    @property
    def weights(self) -> dict[int, float]:
        """Entry index -> weight (what ``sim.tuning.metrics`` weights runs by)."""
        return {e.index: e.weight for e in self.entries}

    def world(self, entry: int) -> int:
        """The seed world of an entry's runs."""
        return entry + (FRESH if self.stream else 0)

    def describe(self, relative_to: Path | None = None) -> list[dict[str, Any]]:
        """JSON-safe ``[{name, scenario, weight}]``; scenario paths relative to the folder
        ``relative_to`` when given (an output folder that names its inputs from itself
        reads the same from any working directory)."""
        return [
            {
                "name": e.name,
                "scenario": e.path if relative_to is None else relative_path(e.path, relative_to),
                "weight": e.weight,
            }
            for e in self.entries
        ]


def relative_path(path: str, folder: Path) -> str:
    """``path`` as seen from ``folder`` (both taken from the working directory)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


def load_portfolio(
    items: Sequence[Mapping[str, Any]], base_dir: Path, doc: YamlDoc, loc: tuple, *, stream: int = 0
) -> Portfolio:
    """The portfolio a file lists: ``[{scenario: PATH, weight: W, name: N}]``.

    Args:
        items: the list as read (each item a mapping with ``scenario`` and ``weight``).
        base_dir: relative scenario paths are read from here (the listing file's folder).
        doc: the listing file, for error lines.
        loc: where the list is in ``doc`` (e.g. ``("portfolio",)``).
        stream: 0 search seeds, 1 fresh seeds.

    Raises:
        InputError: naming the listing file's line (a missing file, weights that do not
            sum to 1, two entries of one name), or the scenario file's own.
    """

    def error(where: tuple, message: str, **got: Any) -> InputError:
        return InputError(doc.file, doc.line_of(where), doc.field_path(where), message, **got)

    if not items:
        raise error(loc, "give at least one scenario")
    entries = []
    for i, item in enumerate(items):
        path = base_dir / str(item["scenario"])
        if not path.is_file():
            raise error((*loc, i, "scenario"), f"no such scenario file: {path}")
        scenario = load_scenario(path)
        name = str(item.get("name") or scenario.name)
        entries.append(Entry(i, name, str(path), float(item["weight"]), scenario))
    total = sum(e.weight for e in entries)
    if abs(total - 1.0) > 1e-6:
        raise error(loc, f"weights must sum to 1 (they sum to {total:g})")
    names = [e.name for e in entries]
    dup = next((i for i, n in enumerate(names) if names.index(n) != i), None)
    if dup is not None:
        raise error((*loc, dup), f"two releases named {names[dup]!r}: give each a distinct name")
    return Portfolio(tuple(entries), stream)


def simulate(policy: Policy, portfolio: Portfolio, entry: int, start: int, stop: int, seed: int) -> pd.DataFrame:
    """Runs ``start .. stop-1`` of one entry under ``policy`` (runs in a worker too).

    Returns:
        One row per run, the columns of ``FRAME_COLUMNS`` (``scenario`` is the entry index).
    """
    import pandas as pd

    from sim.sweeps.execute import chunk_records

    e = portfolio.entries[entry]
    records = chunk_records(e.scenario, policy, portfolio.world(entry), start, stop, seed)
    # Straight from the records' fields, only the columns the metrics read: through an
    # Arrow table of every field, as a sweep's chunk goes, a 500-run piece took 8 ms
    # instead of 2 (measured back to back), some 4% of simulating it.
    columns: dict[str, Any] = {"scenario": np.full(len(records), entry, dtype=np.int64)}
    for name in FRAME_COLUMNS[1:]:
        values = [getattr(r, name) for r in records]
        kind = _KINDS[name]
        if kind is float:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif kind is str:
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array(values, dtype=kind)
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class Task:
    """Runs ``start .. stop-1`` of one entry under one policy: the unit handed to workers."""

    policy: Policy
    entry: int
    start: int
    stop: int


def tasks(policy: Policy, portfolio: Portfolio, start: int, stop: int) -> list[Task]:
    """The tasks of runs ``start .. stop-1`` of every entry, at most ``TASK_RUNS`` each."""
    return [
        Task(policy, e.index, a, min(a + TASK_RUNS, stop))
        for e in portfolio.entries
        for a in range(start, stop, TASK_RUNS)
    ]


def run_tasks(
    todo: Iterable[Task], portfolio: Portfolio, seed: int, *, workers: int = 1, client: Any = None
) -> Iterator[tuple[Task, pd.DataFrame]]:
    """Each task (the object given) with its frame, as they finish (in order on one worker,
    else as they come): in this process, on ``workers`` local processes, or on a Dask
    ``client``."""
    if client is not None:
        from distributed import as_completed

        owner = {}
        for t in todo:
            owner[client.submit(simulate, t.policy, portfolio, t.entry, t.start, t.stop, seed, pure=False)] = t
        for fut in as_completed(list(owner)):
            yield owner[fut], fut.result()
            fut.release()
        return
    if workers <= 1:
        for t in todo:
            yield t, simulate(t.policy, portfolio, t.entry, t.start, t.stop, seed)
        return
    from joblib import delayed

    from sim.runs.pool import parallel_results

    tasks = list(todo)

    def job(i: int, t: Task) -> tuple[int, pd.DataFrame]:
        return i, simulate(t.policy, portfolio, t.entry, t.start, t.stop, seed)

    # The task object handed back is the caller's own (a worker's copy would be another object).
    jobs = (delayed(job)(i, t) for i, t in enumerate(tasks))
    for i, frame in parallel_results(workers, jobs, return_as="generator_unordered"):
        yield tasks[i], frame


def evaluate(
    policy: Policy, portfolio: Portfolio, start: int, stop: int, seed: int, *, workers: int = 1, client: Any = None
) -> pd.DataFrame:
    """Runs ``start .. stop-1`` of every entry under ``policy``, as one frame sorted by
    entry and run (the same frame for any worker count)."""
    import pandas as pd

    todo = tasks(policy, portfolio, start, stop)
    frames = [f for _, f in run_tasks(todo, portfolio, seed, workers=workers, client=client)]
    if not frames:
        return pd.DataFrame(columns=list(FRAME_COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values(["scenario", "run"], ignore_index=True)


def rung_runs(min_runs: int, max_runs: int, eta: int) -> list[int]:
    """Runs per entry at each racing rung: ``min_runs`` times ``eta`` per rung, the last
    rung ``max_runs`` (``rung_runs(40, 1000, 3)`` -> ``[40, 120, 360, 1000]``)."""
    if eta < 2 or min_runs >= max_runs:
        return [max_runs]
    steps = max(0, math.ceil(math.log(max_runs / min_runs, eta) - 1e-9))
    out = [min(max_runs, min_runs * eta**k) for k in range(steps)] + [max_runs]
    return sorted(set(out))


__all__ = [
    "FRAME_COLUMNS",
    "FRESH",
    "TASK_RUNS",
    "Entry",
    "Portfolio",
    "Task",
    "evaluate",
    "load_portfolio",
    "relative_path",
    "rung_runs",
    "run_tasks",
    "simulate",
    "tasks",
]
