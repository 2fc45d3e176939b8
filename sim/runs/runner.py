"""Running many rollouts: seeds, batches, workers, tidy tables.

Run ``k`` of a scenario always gets ``run_seed(root, scenario_index, k)``, whatever the
batch it is simulated in and whatever the number of workers, so results are identical
across worker counts and every policy meets the same traffic and faults in run ``k``
(common random numbers).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sim.inputs.scenario import Scenario
from sim.outcomes import COLUMNS, RunRecord
from sim.policies.base import Policy
from sim.runs.pool import FIRST_PIECE, PieceSizes, parallel_results, piece_results
from sim.runs.seedseq import run_seeds
from sim.runs.store import records_table
from sim.world.controller import RunResult, run_rollouts

#: Rollouts simulated together in lockstep (numpy work is shared across them).
BATCH = 500
#: Most bytes of scraped counters one lockstep batch may hold: each run keeps its series
#: of scrapes (requests, errors and latency buckets of both versions, the lost-scrape
#: mask), and judges read them from the rollout's start, so a long horizon means fewer
#: runs per batch (down to one), never more memory. Runs do not depend on their batch.
BATCH_TELEMETRY_BYTES = 256 * 1024 * 1024


def run_one(
    scenario: Scenario,
    policy: Policy,
    seed: int,
    *,
    run_index: int = 0,
    exact: bool = False,
    trace: bool = False,
    series: bool = False,
) -> RunResult:
    """Simulate one rollout from its run seed (``RunRecord.seed`` reproduces a run).

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        seed: the run seed.
        run_index: the ``run`` field of the record.
        exact: serve requests one by one (validation mode).
        trace: also return the trace, one dict per policy tick (per change for a change-only
            policy; docs/architecture.md section 6).
        series: also return the run's raw series (``RunResult.series``), as Prometheus
            would hold them.
    """
    return run_rollouts(
        scenario, policy, [seed], run_indexes=[run_index], exact=exact, trace=trace, keep_series=series
    )[0]


def simulate_piece(
    scenario: Scenario,
    policy: Policy,
    start: int,
    stop: int,
    *,
    seed: int,
    scenario_index: int = 0,
    exact: bool = False,
) -> pa.Table:
    """Runs ``start .. stop-1`` as one table of records (``store.records_table``), simulated
    in lockstep batches of ``batch_size(scenario)``: what a worker does with a piece.

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        start: the first run.
        stop: one past the last run.
        seed: root seed.
        scenario_index: first component of every run's spawn key.
        exact: per-request mode.
    """
    records: list[RunRecord] = []
    batch = 1 if exact else batch_size(scenario)
    for a in range(start, stop, batch):
        runs = list(range(a, min(a + batch, stop)))
        seeds = run_seeds(seed, scenario_index, runs).tolist()
        records += [r.record for r in run_rollouts(scenario, policy, seeds, run_indexes=runs, exact=exact)]
    return records_table(records)


def batch_size(scenario: Scenario) -> int:
    """Rollouts per lockstep batch: ``BATCH``, fewer when a batch's scraped counters
    (``world.telemetry``) would pass ``BATCH_TELEMETRY_BYTES`` at the horizon."""
    tel = scenario.telemetry
    slots = math.ceil(scenario.horizon / tel.scrape_interval) + 2
    per_slot = 8 * (4 + 2 * (len(tel.buckets_ms) + 1)) + 1  # float64 counters, bool mask
    return max(1, min(BATCH, BATCH_TELEMETRY_BYTES // (slots * per_slot)))


def _in_process(work: Callable[[int, int], pa.Table], runs: int, sizes: PieceSizes) -> Iterator[tuple[range, pa.Table]]:
    """The pieces simulated here, one after another (``--workers 1``), sized as workers' are."""
    start = 0
    while start < runs:
        piece = range(start, start + sizes.next(runs - start))
        began = time.perf_counter()
        table = work(piece.start, piece.stop)
        sizes.observe(len(piece), time.perf_counter() - began)
        yield piece, table
        start = piece.stop


def _chunks(
    pieces: Iterable[tuple[range, pa.Table]], runs: int, chunk_size: int, progress: Callable[[int], None] | None
) -> Iterator[pa.Table]:
    """The pieces' tables, in run order, cut and joined into chunks of ``chunk_size`` runs
    (a chunk ends at a multiple of ``chunk_size`` or at the last run)."""
    parts: list[pa.Table] = []
    for piece, table in pieces:
        if progress is not None:
            progress(len(piece))
        offset = 0
        while offset < len(piece):
            run = piece.start + offset
            end = min((run // chunk_size + 1) * chunk_size, runs)
            take = min(end - run, len(piece) - offset)
            parts.append(table.slice(offset, take))
            offset += take
            if run + take == end:
                yield parts[0] if len(parts) == 1 else pa.concat_tables(parts).combine_chunks()
                parts = []


def iter_chunks(
    scenario: Scenario,
    policy: Policy,
    runs: int,
    seed: int,
    *,
    workers: int = 1,
    exact: bool = False,
    scenario_index: int = 0,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 1000,
) -> Iterator[pa.Table]:
    """Simulate ``runs`` rollouts, yielding each chunk's records, as a table, as it finishes.

    Only the pieces in flight are in memory: the caller decides what to keep of each chunk
    (a Parquet file, a compact table), so the number of runs does not bound memory here.
    With ``workers > 1`` the runs are cut into pieces of a few thousand for worker processes
    that are given the scenario and the policy once (``sim.runs.pool.piece_results``) and
    return each piece's records as one Arrow table.

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        runs: number of rollouts (runs 0 .. runs-1).
        seed: root seed.
        workers: processes; 1 runs in this process.
        exact: per-request mode (slow; for validation).
        scenario_index: first component of every run's spawn key.
        progress: called with the number of rollouts just finished.
        chunk_size: rollouts per chunk.

    Yields:
        Each chunk's records (``chunk_size`` runs, the last one fewer) as a table of
        ``store.record_schema()``, in run order; identical for any ``workers``.
    """
    work = functools.partial(simulate_piece, scenario, policy, seed=seed, scenario_index=scenario_index, exact=exact)
    # The first piece stays within a lockstep batch: a slow scenario (exact mode, a long
    # horizon) shows progress, and its first chunk, as soon as one batch is done.
    sizes = PieceSizes(workers, first=min(FIRST_PIECE, 1 if exact else batch_size(scenario)))
    if workers <= 1:
        pieces: Iterable[tuple[range, pa.Table]] = _in_process(work, runs, sizes)
    else:
        pieces = piece_results(work, runs, workers, sizes)
    yield from _chunks(pieces, runs, chunk_size, progress)


def records_of(table: pa.Table) -> list[RunRecord]:
    """The run records of a table of ``store.record_schema()`` (``records_table``'s inverse)."""
    return [RunRecord(**row) for row in table.select(COLUMNS).to_pylist()]


def run_batch(
    scenario: Scenario,
    policy: Policy,
    runs: int,
    seed: int,
    *,
    workers: int = 1,
    exact: bool = False,
    scenario_index: int = 0,
    progress: Callable[[int], None] | None = None,
    on_chunk: Callable[[list[RunRecord]], None] | None = None,
    chunk_size: int = 1000,
) -> list[RunRecord]:
    """Simulate ``runs`` rollouts of one scenario under one policy (``iter_chunks``, with
    every record kept: for many runs, iterate the chunks instead, or ``run_frame``).

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        runs: number of rollouts (runs 0 .. runs-1).
        seed: root seed.
        workers: processes; 1 runs in this process.
        exact: per-request mode (slow; for validation).
        scenario_index: first component of every run's spawn key.
        progress: called with the number of rollouts just finished.
        on_chunk: called with each finished chunk's records, in run order (for
            streaming them to disk as they finish).
        chunk_size: rollouts per chunk.

    Returns:
        The records in run order; identical for any ``workers``.
    """
    out: list[RunRecord] = []
    for table in iter_chunks(
        scenario,
        policy,
        runs,
        seed,
        workers=workers,
        exact=exact,
        scenario_index=scenario_index,
        progress=progress,
        chunk_size=chunk_size,
    ):
        chunk = records_of(table)
        out.extend(chunk)
        if on_chunk is not None:
            on_chunk(list(chunk))
    return out


def run_frame(
    scenario: Scenario,
    policy: Policy,
    runs: int,
    seed: int,
    *,
    workers: int = 1,
    exact: bool = False,
    scenario_index: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """``records_frame(run_batch(...))`` without a record object per run: the table
    ``pdsim compare`` and ``pdsim check`` decide on, built column by column from the
    workers' Arrow tables (the same frame, value for value and type for type).

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        runs: number of rollouts (runs 0 .. runs-1).
        seed: root seed.
        workers: processes; 1 runs in this process.
        exact: per-request mode (slow; for validation).
        scenario_index: first component of every run's spawn key.
        progress: called with the number of rollouts just finished.
    """
    tables = list(
        iter_chunks(
            scenario,
            policy,
            runs,
            seed,
            workers=workers,
            exact=exact,
            scenario_index=scenario_index,
            progress=progress,
            chunk_size=max(1, runs),
        )
    )
    return table_frame(pa.concat_tables(tables) if tables else records_table([]))


def table_frame(table: pa.Table) -> pd.DataFrame:
    """``records_frame`` of the records in ``table`` (of ``store.record_schema()``), built
    column by column: a number column with a missing value holds NaN, one with nothing but
    missing values holds None (object), as pandas makes them from the records' dicts."""
    if table.num_rows == 0:
        return records_frame([])
    out = {}
    for name in COLUMNS:
        column = table.column(name)
        if column.null_count == len(column):
            out[name] = pd.Series([None] * len(column), dtype=object)
        else:
            out[name] = column.to_pandas()
    return pd.DataFrame(out, columns=COLUMNS)


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """A tidy table: one row per run, the record fields as columns."""
    return pd.DataFrame([r.as_dict() for r in records], columns=COLUMNS)


class RecordsTable:
    """Many runs' records kept compactly, chunk by chunk, as Arrow columns.

    A ``RunRecord`` costs about 550 bytes as a Python object and as much again as a row
    of ``records_frame``; here a run costs the bytes of its numbers plus small dictionary
    indexes for its texts (names, outcome, phase, reason). ``pdsim run`` keeps its runs
    this way: see ``limits.MAX_RUNS`` for the memory this takes.
    """

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []
        self.runs = 0

    def add(self, records: pa.Table | Sequence[RunRecord]) -> None:
        """Keep a chunk of records (in run order, after those already added), as run
        records or as their table (``iter_chunks``)."""
        table = records if isinstance(records, pa.Table) else records_table(records)
        # Texts repeat from run to run: stored once per chunk, indexed per run.
        for i, name in enumerate(table.column_names):
            if pa.types.is_string(table.schema.field(i).type):
                table = table.set_column(i, name, table.column(i).dictionary_encode())
        self._tables.append(table)
        self.runs += table.num_rows

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The records as a table, one row per run (``columns``: only those), as
        ``records_frame`` has them but for a missing number, NaN rather than None.

        Built column by column: each text column holds one shared string per distinct
        value (8 bytes a run), never a string per run.
        """
        names = list(COLUMNS if columns is None else columns)
        if not self._tables:
            return pd.DataFrame(columns=names)
        out = {}
        for name in names:
            column = pa.chunked_array([t.column(name) for t in self._tables]).to_pandas()
            out[name] = column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column
        return pd.DataFrame(out, columns=names)

    def dicts(self, rows: int = 10_000) -> Iterator[dict[str, Any]]:
        """Each run's record as ``RunRecord.as_dict`` gives it, made ``rows`` at a time."""
        for table in self._tables:
            for start in range(0, table.num_rows, rows):
                yield from table.slice(start, rows).to_pylist()

    def outcome_counts(self) -> dict[str, int]:
        """How many runs ended with each outcome."""
        counts: dict[str, int] = {}
        for table in self._tables:
            for row in pc.value_counts(pc.cast(table.column("outcome"), pa.string())).to_pylist():
                counts[row["values"]] = counts.get(row["values"], 0) + int(row["counts"])
        return counts


__all__ = [
    "BATCH",
    "BATCH_TELEMETRY_BYTES",
    "RecordsTable",
    "batch_size",
    "iter_chunks",
    "parallel_results",
    "records_frame",
    "records_of",
    "run_batch",
    "run_frame",
    "run_one",
    "simulate_piece",
    "table_frame",
]
