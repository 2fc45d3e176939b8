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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa

from sim.inputs.scenario import Scenario
from sim.outcomes import COLUMNS, RunRecord
from sim.policies.base import Policy
from sim.runs.pool import FIRST_PIECE, PieceSizes, parallel_results, piece_results
from sim.runs.seedseq import run_seeds
from sim.runs.store import record_schema
from sim.world.controller import RunResult, run_rollouts

if TYPE_CHECKING:  # pandas loads only for the tables asked for as DataFrames (lazy imports)
    import pandas as pd

#: Rollouts simulated together in lockstep (numpy work is shared across them). Measured
#: (CPU rollouts/s of ``run_batch`` at 500 / 1,000 / 2,000 / 4,000): argo-canary-steps 4,492 /
#: 4,836 / 4,919 / 5,034, good-release with the sequential judge 2,562 / 2,676 / 2,900 /
#: 3,212, the plain canary flat above 1,000; peak memory of ``pdsim run --runs 4000`` within
#: 8% of 500's. Per-tick costs (routing, series, queries, class keys) spread over more runs.
BATCH = 2000
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
) -> list[RunRecord]:
    """Runs ``start .. stop-1``, simulated in lockstep batches of ``batch_size(scenario)``:
    what this process does with a piece (a worker returns them as a table, ``worker_piece``).

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
    return records


def worker_piece(
    scenario: Scenario,
    policy: Policy,
    start: int,
    stop: int,
    *,
    seed: int,
    scenario_index: int = 0,
    exact: bool = False,
) -> RecordColumns:
    """``simulate_piece`` as numpy columns (``RecordColumns``): what a worker process hands
    back (a few arrays pickle in one go, records one by one)."""
    return RecordColumns.of(
        simulate_piece(scenario, policy, start, stop, seed=seed, scenario_index=scenario_index, exact=exact)
    )


#: A piece's or a chunk's records: run records (simulated in this process) or their numpy
#: columns (from a worker, ``RecordColumns``). Neither this process nor a worker builds
#: Arrow for them unless asked (``--out``, ``run_frame``): pyarrow imports pandas when it
#: builds an array (docs/architecture.md section 2, lazy imports), half a second a process.
Records: TypeAlias = "list[RunRecord] | RecordColumns"


def _part(records: Records, offset: int, size: int) -> Records:
    """``size`` records of ``records`` from ``offset``."""
    return records.part(offset, size) if isinstance(records, RecordColumns) else records[offset : offset + size]


def _joined(parts: list[Records]) -> Records:
    """Consecutive parts as one (columns or lists, never both: a run uses one kind)."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], RecordColumns):
        return RecordColumns.joined([p for p in parts if isinstance(p, RecordColumns)])
    return [r for part in parts if isinstance(part, list) for r in part]


def batch_size(scenario: Scenario) -> int:
    """Rollouts per lockstep batch: ``BATCH``, fewer when a batch's scraped counters
    (``world.telemetry``) would pass ``BATCH_TELEMETRY_BYTES`` at the horizon."""
    tel = scenario.telemetry
    slots = math.ceil(scenario.horizon / tel.scrape_interval) + 2
    per_slot = 8 * (4 + 2 * (len(tel.buckets_ms) + 1)) + 1  # float64 counters, bool mask
    return max(1, min(BATCH, BATCH_TELEMETRY_BYTES // (slots * per_slot)))


def _in_process(work: Callable[[int, int], Records], runs: int, sizes: PieceSizes) -> Iterator[tuple[range, Records]]:
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
    pieces: Iterable[tuple[range, Records]], runs: int, chunk_size: int, progress: Callable[[int], None] | None
) -> Iterator[Records]:
    """The pieces' records, in run order, cut and joined into chunks of ``chunk_size`` runs
    (a chunk ends at a multiple of ``chunk_size`` or at the last run)."""
    parts: list[Records] = []
    for piece, table in pieces:
        if progress is not None:
            progress(len(piece))
        offset = 0
        while offset < len(piece):
            run = piece.start + offset
            end = min((run // chunk_size + 1) * chunk_size, runs)
            take = min(end - run, len(piece) - offset)
            parts.append(_part(table, offset, take))
            offset += take
            if run + take == end:
                yield _joined(parts)
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
) -> Iterator[Records]:
    """Simulate ``runs`` rollouts, yielding each chunk's records as it finishes: run records
    with one worker, their columns (``RecordColumns``) from worker processes.

    Only the pieces in flight are in memory: the caller decides what to keep of each chunk
    (a Parquet file, a compact table), so the number of runs does not bound memory here.
    With ``workers > 1`` the runs are cut into pieces of a few thousand for worker processes
    that are given the scenario and the policy once (``sim.runs.pool.piece_results``) and
    return each piece's records as numpy columns.

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
        Each chunk's records (``chunk_size`` runs, the last one fewer), in run order; the
        same records for any ``workers``.
    """
    pieces = _pieces(scenario, [policy], runs, seed, workers, exact, scenario_index)
    yield from _chunks(pieces, runs, chunk_size, progress)


def _policies_piece(
    piece: Callable[..., Records],
    scenario: Scenario,
    policies: Sequence[Policy],
    runs: int,
    start: int,
    stop: int,
    **options: Any,
) -> Records:
    """Items ``start .. stop-1`` of the policies' runs laid end to end (item ``i`` is run
    ``i % runs`` of policy ``i // runs``), each policy's part simulated by ``piece``."""
    parts = []
    while start < stop:
        k, run = divmod(start, runs)
        end = min(stop, (k + 1) * runs)
        parts.append(piece(scenario, policies[k], run, run + end - start, **options))
        start = end
    return _joined(parts)


def _pieces(
    scenario: Scenario,
    policies: Sequence[Policy],
    runs: int,
    seed: int,
    workers: int,
    exact: bool,
    scenario_index: int,
) -> Iterator[tuple[range, Records]]:
    """Runs ``0 .. runs-1`` of each policy, the policies' runs end to end, in pieces (in
    this process, or on ``workers`` processes started once for all the policies): one pool
    and one stream of pieces, so that workers start, warm up and finish together once,
    not once per policy."""
    piece: Callable[..., Records] = simulate_piece if workers <= 1 else worker_piece
    options: dict[str, Any] = {"seed": seed, "scenario_index": scenario_index, "exact": exact}
    work: Callable[[int, int], Records]
    if len(policies) == 1:  # the plain piece: nothing to split, nothing to join
        work = functools.partial(piece, scenario, policies[0], **options)
    else:
        work = functools.partial(_policies_piece, piece, scenario, list(policies), runs, **options)
    # The first piece stays within a lockstep batch: a slow scenario (exact mode, a long
    # horizon) shows progress, and its first chunk, as soon as one batch is done.
    sizes = PieceSizes(workers, first=min(FIRST_PIECE, 1 if exact else batch_size(scenario)))
    total = runs * len(policies)
    if workers <= 1:
        return _in_process(work, total, sizes)
    return piece_results(work, total, workers, sizes)


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
        chunk = table.records() if isinstance(table, RecordColumns) else table
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
    workers' record columns (the same frame, value for value and type for type).

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
    return run_frames(
        scenario, [policy], runs, seed, workers=workers, exact=exact, scenario_index=scenario_index, progress=progress
    )[0]


def run_frames(
    scenario: Scenario,
    policies: Sequence[Policy],
    runs: int,
    seed: int,
    *,
    workers: int = 1,
    exact: bool = False,
    scenario_index: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[pd.DataFrame]:
    """``run_frame`` of each policy on the same runs (``pdsim compare``), the policies' runs
    handed to one set of workers as one stream of pieces: the frames are those of
    ``run_frame`` policy by policy, but the workers start once and never idle between
    policies (one policy's last pieces overlap the next one's first).

    Args:
        scenario: what is simulated.
        policies: the decision makers, each over runs 0 .. runs-1.
        runs: number of rollouts per policy.
        seed: root seed.
        workers: processes; 1 runs in this process.
        exact: per-request mode (slow; for validation).
        scenario_index: first component of every run's spawn key.
        progress: called with the number of rollouts just finished (of all policies).
    """
    if runs <= 0:
        return [records_frame([]) for _ in policies]
    frames = []
    # One chunk per policy: chunks end at multiples of ``runs``.
    for chunk in _chunks(
        _pieces(scenario, policies, runs, seed, workers, exact, scenario_index), len(policies) * runs, runs, progress
    ):
        if isinstance(chunk, RecordColumns):
            frames.append(table_frame(chunk.table()))
        else:
            frames.append(records_frame(chunk))
    return frames


def table_frame(table: pa.Table) -> pd.DataFrame:
    """``records_frame`` of the records in ``table`` (of ``store.record_schema()``), built
    column by column: a number column with a missing value holds NaN, one with nothing but
    missing values holds None (object), as pandas makes them from the records' dicts."""
    import pandas as pd

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
    import pandas as pd

    return pd.DataFrame([r.as_dict() for r in records], columns=COLUMNS)


@dataclass(frozen=True)
class _Column:
    """One record field of a chunk: numbers as a numpy array (``missing`` marks the runs
    whose value is None, held as 0 or NaN), or texts as codes into ``texts``."""

    values: np.ndarray
    missing: np.ndarray | None = None
    texts: tuple[str | None, ...] | None = None

    @classmethod
    def of(cls, values: list[Any], kind: str) -> _Column:
        if kind == "text":
            # Texts repeat from run to run: each distinct one kept once, indexed per run.
            index: dict[str | None, int] = {}
            codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int32, count=len(values))
            return cls(codes, texts=tuple(index))
        missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        fill = np.nan if kind == "float" else 0
        dtype = {"float": np.float64, "int": np.int64, "bool": np.bool_}[kind]
        if not missing.any():
            return cls(np.array(values, dtype=dtype))
        return cls(np.array([fill if v is None else v for v in values], dtype=dtype), missing)

    def part(self, offset: int, size: int) -> _Column:
        """Values ``offset .. offset+size-1`` (views; texts keep their codes)."""
        end = offset + size
        missing = None if self.missing is None else self.missing[offset:end]
        return _Column(self.values[offset:end], missing, self.texts)

    @classmethod
    def joined(cls, parts: Sequence[_Column]) -> _Column:
        """Consecutive parts as one column: texts recoded into one table of texts, in the
        order they first appear, as ``of`` would code the values of all parts."""
        if parts[0].texts is not None:
            index: dict[str | None, int] = {}
            codes = []
            for p in parts:
                assert p.texts is not None  # a text column's parts are all text
                # The part's texts as they first appear in its values (a part cut from a
                # piece may not hold all of the piece's texts, nor in the piece's order).
                _, first = np.unique(p.values, return_index=True)
                for code in p.values[np.sort(first)].tolist():
                    index.setdefault(p.texts[code], len(index))
                recode = np.array([index.get(t, -1) for t in p.texts], dtype=np.int32)
                codes.append(recode[p.values])
            return cls(np.concatenate(codes), texts=tuple(index))
        values = np.concatenate([p.values for p in parts])
        if all(p.missing is None for p in parts):
            return cls(values)
        missing = [np.zeros(len(p.values), dtype=bool) if p.missing is None else p.missing for p in parts]
        return cls(values, np.concatenate(missing))

    def arrow(self, kind: pa.DataType) -> pa.Array:
        """The values as an Arrow array of type ``kind`` (None where missing), as
        ``store.records_table`` builds it from the records."""
        if self.texts is not None:
            return pa.array(list(self.texts), type=kind).take(pa.array(self.values))
        return pa.array(self.values, type=kind, mask=self.missing)

    def decoded(self) -> np.ndarray:
        """The values as ``RecordsTable.columns`` gives them (one chunk)."""
        if self.texts is not None:
            return np.array(self.texts, dtype=object)[self.values]
        if self.missing is None:
            return self.values
        if self.values.dtype.kind == "b":
            out = self.values.astype(object)
            out[self.missing] = None
            return out
        return np.where(self.missing, np.nan, self.values.astype(np.float64))

    def python(self) -> list[Any]:
        """The values as Python objects (None where missing), as ``RunRecord.as_dict`` has them."""
        if self.texts is not None:
            return [self.texts[i] for i in self.values.tolist()]
        out = self.values.tolist()
        if self.missing is not None:
            for i in np.flatnonzero(self.missing).tolist():
                out[i] = None
        return out


#: How each record field is kept: by the run record's annotations (``store.record_schema``).
_KINDS = {
    field.name: {pa.bool_(): "bool", pa.int64(): "int", pa.float64(): "float"}.get(field.type, "text")
    for field in record_schema()
}


#: Each record field's Arrow type (``store.record_schema``).
_TYPES = {field.name: field.type for field in record_schema()}


@dataclass(frozen=True)
class RecordColumns:
    """Consecutive runs' records as numpy columns: what a worker hands back for a piece, and
    what ``RecordsTable`` keeps of a chunk.

    A worker builds them from its run records as ``RecordsTable.add`` would, so that neither
    the worker nor this process imports pandas for them (pyarrow does, half a second in
    each process, the first time it builds an array: it made two workers pay a second of
    start-up that one process never paid); Arrow is built from them only when asked for
    (``table``: ``--out`` chunks, ``run_frame``).

    Attributes:
        fields: one column per record field (``COLUMNS``).
        runs: how many runs.
    """

    fields: dict[str, _Column]
    runs: int

    @classmethod
    def of(cls, records: Sequence[RunRecord]) -> RecordColumns:
        """The columns of ``records``."""
        return cls(
            {name: _Column.of([getattr(r, name) for r in records], _KINDS[name]) for name in COLUMNS}, len(records)
        )

    def part(self, offset: int, size: int) -> RecordColumns:
        """Runs ``offset .. offset+size-1`` of these (``size`` clipped to the runs there are)."""
        size = max(0, min(size, self.runs - offset))
        return RecordColumns({name: c.part(offset, size) for name, c in self.fields.items()}, size)

    @classmethod
    def joined(cls, parts: Sequence[RecordColumns]) -> RecordColumns:
        """Consecutive parts as one."""
        return cls(
            {name: _Column.joined([p.fields[name] for p in parts]) for name in COLUMNS}, sum(p.runs for p in parts)
        )

    def table(self) -> pa.Table:
        """The records' table, equal to ``store.records_table`` of the records."""
        return pa.Table.from_arrays([self.fields[n].arrow(_TYPES[n]) for n in COLUMNS], schema=record_schema())

    def dicts(self, rows: int = 10_000) -> Iterator[dict[str, Any]]:
        """Each run's record as ``RunRecord.as_dict`` gives it, made ``rows`` at a time."""
        values = [self.fields[name].python() for name in COLUMNS]
        for start in range(0, self.runs, rows):
            for row in zip(*(column[start : start + rows] for column in values)):
                yield dict(zip(COLUMNS, row))

    def records(self) -> list[RunRecord]:
        """The run records (``of``'s inverse)."""
        return [RunRecord(**row) for row in self.dicts()]


class RecordsTable:
    """Many runs' records kept compactly, chunk by chunk, as numpy columns.

    A ``RunRecord`` costs about 550 bytes as a Python object and as much again as a row
    of ``records_frame``; here a run costs the bytes of its numbers plus small codes for
    its texts (names, outcome, phase, reason). ``pdsim run`` keeps its runs this way: see
    ``limits.MAX_RUNS`` for the memory this takes. Numpy, not Arrow: pyarrow imports
    pandas (half a second) the first time it builds an array from Python or numpy data,
    and a plain ``pdsim run`` needs neither (docs/architecture.md section 2, lazy imports).
    """

    def __init__(self) -> None:
        self._chunks: list[RecordColumns] = []
        self.runs = 0

    def add(self, records: Records) -> None:
        """Keep a chunk of records (in run order, after those already added): run records
        (this process's), or their columns (a worker's, ``iter_chunks``)."""
        chunk = records if isinstance(records, RecordColumns) else RecordColumns.of(records)
        self._chunks.append(chunk)
        self.runs += chunk.runs

    def columns(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The records' columns as numpy arrays, one value per run (``names``: only those),
        without pandas: numbers as ``frame`` has them (a missing number as NaN; a flag
        with a missing value as objects, None there), texts as objects (one shared string
        per distinct value).
        """
        out = {}
        for name in COLUMNS if names is None else names:
            parts = [chunk.fields[name] for chunk in self._chunks]
            if any(part.missing is not None for part in parts) and _KINDS[name] == "int":
                out[name] = np.concatenate([part.decoded().astype(np.float64) for part in parts])
            elif parts:
                out[name] = np.concatenate([part.decoded() for part in parts])
            else:
                out[name] = np.array([], dtype=object if _KINDS[name] == "text" else _KINDS[name])
        return out

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The records as a table, one row per run (``columns``: only those), as
        ``records_frame`` has them but for a missing number, NaN rather than None.

        Each text column holds one shared string per distinct value (8 bytes a run),
        never a string per run.
        """
        import pandas as pd

        names = list(COLUMNS if columns is None else columns)
        if not self._chunks:
            return pd.DataFrame(columns=names)
        return pd.DataFrame(self.columns(names), columns=names)

    def dicts(self, rows: int = 10_000) -> Iterator[dict[str, Any]]:
        """Each run's record as ``RunRecord.as_dict`` gives it, made ``rows`` at a time."""
        for chunk in self._chunks:
            yield from chunk.dicts(rows)

    def outcome_counts(self) -> dict[str, int]:
        """How many runs ended with each outcome."""
        counts: dict[str, int] = {}
        for chunk in self._chunks:
            column = chunk.fields["outcome"]
            assert column.texts is not None
            for text, count in zip(column.texts, np.bincount(column.values, minlength=len(column.texts)).tolist()):
                if count:  # a chunk cut from a worker's piece may name outcomes it does not hold
                    counts[str(text)] = counts.get(str(text), 0) + count
        return counts


__all__ = [
    "BATCH",
    "BATCH_TELEMETRY_BYTES",
    "RecordColumns",
    "RecordsTable",
    "batch_size",
    "iter_chunks",
    "parallel_results",
    "records_frame",
    "records_of",
    "run_batch",
    "run_frame",
    "run_frames",
    "run_one",
    "simulate_piece",
    "table_frame",
]
