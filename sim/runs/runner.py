"""Running many rollouts: seeds, batches, workers, tidy tables.

Run ``k`` of a scenario always gets ``run_seed(root, scenario_index, k)``, whatever the
batch it is simulated in and whatever the number of workers, so results are identical
across worker counts and every policy meets the same traffic and faults in run ``k``
(common random numbers).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sim.inputs.scenario import Scenario
from sim.outcomes import COLUMNS, RunRecord
from sim.policies.base import Policy
from sim.runs.seedseq import run_seeds
from sim.runs.store import record_schema
from sim.world.controller import RunResult, run_rollouts

if TYPE_CHECKING:  # pandas loads only for the tables asked for as DataFrames (lazy imports)
    import pandas as pd

#: Rollouts simulated together in lockstep (numpy work is shared across them).
BATCH = 500
#: Most bytes of scraped counters one lockstep batch may hold: each run keeps its series
#: of scrapes (requests, errors and latency buckets of both versions, the lost-scrape
#: mask), and judges read them from the rollout's start, so a long horizon means fewer
#: runs per batch (down to one), never more memory. Runs do not depend on their batch.
BATCH_TELEMETRY_BYTES = 256 * 1024 * 1024
#: Seconds between a worker's checks that the process that started it is alive.
_PARENT_POLL_S = 0.5


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)  # orphaned: nobody will read the result, and we hold the caller's pipes


def _worker_setup(parent: int) -> None:
    """Runs first in every loky worker: the parent owns Ctrl-C, and a worker dies with it.

    * SIGINT is ignored: Ctrl-C reaches the whole process group, and a worker interrupted
      in loky's queue code or in numba's compiler prints a traceback on the shared stderr
      (issue 13 item 12). The parent gets the KeyboardInterrupt, and joblib's abort kills
      the workers. Until this runs, SIGINT is blocked (``parallel_results``); setting
      SIG_IGN discards one already pending.
    * A daemon thread polls ``os.getppid()`` and ends the worker when its parent is gone,
      e.g. after SIGKILL (item 13): loky workers otherwise wait for work until their idle
      timeout (300 s), holding the parent's stdout and stderr open. Chosen over Linux's
      ``prctl(PR_SET_PDEATHSIG)``, which fires when the *thread* that forked the worker
      ends: loky also spawns workers from its executor-manager thread
      (``process_executor._ExecutorManagerThread`` calls ``_adjust_process_count``), which
      ends with each executor while the reusable workers live on. A short
      ``idle_worker_timeout`` would respawn workers between calls and does not stop a
      worker in the middle of a task. The poll is portable to every POSIX system.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_parent, args=(parent,), name="pdsim-parent-watch", daemon=True).start()


def parallel_results(workers: int, tasks: Iterable[Any], **options: Any) -> Iterator[Any]:
    """``joblib.Parallel(tasks)`` on ``workers`` loky processes that ignore Ctrl-C (this
    process stops them) and die with this process (see ``_worker_setup``).

    SIGINT is blocked in this thread while joblib starts: the workers, and loky's manager
    thread (which may start more), inherit the blocked mask, so no worker can be
    interrupted before its setup ignores SIGINT. This is how loky starts its own resource
    tracker (``joblib/externals/loky/backend/resource_tracker.py``). A Ctrl-C meanwhile is
    held back and raised here once joblib has started. The initializer and its argument are
    the same on every call, so loky keeps reusing one executor.

    Args:
        workers: worker processes.
        tasks: ``joblib.delayed`` calls.
        **options: more ``joblib.Parallel`` options (``return_as``, ``pre_dispatch``).

    Yields:
        The results, as ``return_as`` orders them.
    """
    from joblib import Parallel
    from joblib.parallel import LokyBackend

    backend = LokyBackend(initializer=_worker_setup, initargs=(os.getpid(),))
    parallel = Parallel(n_jobs=workers, backend=backend, **options)
    mask = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if mask else None
    try:
        results = parallel(tasks)
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    # Closed when this generator is (an interrupt, a consumer that stops): joblib then
    # aborts the tasks in flight and stops the workers.
    yield from results


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


def _simulate(
    scenario: Scenario, policy: Policy, runs: Sequence[int], seed: int, scenario_index: int, exact: bool
) -> list[RunRecord]:
    seeds = run_seeds(seed, scenario_index, list(runs)).tolist()
    if exact:
        return [run_one(scenario, policy, s, run_index=k, exact=True).record for s, k in zip(seeds, runs)]
    return [r.record for r in run_rollouts(scenario, policy, seeds, run_indexes=list(runs))]


def batch_size(scenario: Scenario) -> int:
    """Rollouts per lockstep batch: ``BATCH``, fewer when a batch's scraped counters
    (``world.telemetry``) would pass ``BATCH_TELEMETRY_BYTES`` at the horizon."""
    tel = scenario.telemetry
    slots = math.ceil(scenario.horizon / tel.scrape_interval) + 2
    per_slot = 8 * (4 + 2 * (len(tel.buckets_ms) + 1)) + 1  # float64 counters, bool mask
    return max(1, min(BATCH, BATCH_TELEMETRY_BYTES // (slots * per_slot)))


def _pieces(runs: int, chunk_size: int, batch: int = BATCH) -> Iterator[range]:
    """The lockstep batches (at most ``batch`` rollouts, never across a chunk's end) of
    runs 0 .. runs-1, made as they are needed: a list of every run index up front would
    fill memory before anything is simulated (issue 13 item 8)."""
    for a in range(0, runs, chunk_size):
        stop = min(a + chunk_size, runs)
        for b in range(a, stop, batch):
            yield range(b, min(b + batch, stop))


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
) -> Iterator[list[RunRecord]]:
    """Simulate ``runs`` rollouts, yielding each chunk's records as it finishes.

    Only the chunks in flight are in memory: the caller decides what to keep of each (a
    Parquet file, a compact table), so the number of runs does not bound memory here.

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        runs: number of rollouts (runs 0 .. runs-1).
        seed: root seed.
        workers: processes (joblib/loky); 1 runs in this process.
        exact: per-request mode (slow; for validation).
        scenario_index: first component of every run's spawn key.
        progress: called with the number of rollouts just finished.
        chunk_size: rollouts per chunk.

    Yields:
        Each chunk's records (``chunk_size`` runs, the last one fewer), in run order;
        identical for any ``workers``.
    """
    pieces = _pieces(runs, chunk_size, batch_size(scenario))
    if workers <= 1:
        results: Iterable[list[RunRecord]] = (
            _simulate(scenario, policy, piece, seed, scenario_index, exact) for piece in pieces
        )
    else:
        from joblib import delayed

        results = parallel_results(
            workers,
            (delayed(_simulate)(scenario, policy, piece, seed, scenario_index, exact) for piece in pieces),
            return_as="generator",
        )
    pending: list[RunRecord] = []
    for records in results:
        pending.extend(records)
        if progress is not None:
            progress(len(records))
        # A chunk ends at a multiple of chunk_size or at the last run.
        end = records[-1].run + 1 if records else 0
        if records and (end % chunk_size == 0 or end == runs):
            yield pending
            pending = []


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
    every record kept: for many runs, iterate the chunks instead).

    Args:
        scenario: what is simulated.
        policy: the decision maker.
        runs: number of rollouts (runs 0 .. runs-1).
        seed: root seed.
        workers: processes (joblib/loky); 1 runs in this process.
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
    for chunk in iter_chunks(
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
        out.extend(chunk)
        if on_chunk is not None:
            on_chunk(list(chunk))
    return out


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
        self._chunks: list[dict[str, _Column]] = []
        self.runs = 0

    def add(self, records: Sequence[RunRecord]) -> None:
        """Keep a chunk of records (in run order, after those already added)."""
        self._chunks.append({name: _Column.of([getattr(r, name) for r in records], _KINDS[name]) for name in COLUMNS})
        self.runs += len(records)

    def columns(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The records' columns as numpy arrays, one value per run (``names``: only those),
        without pandas: numbers as ``frame`` has them (a missing number as NaN; a flag
        with a missing value as objects, None there), texts as objects (one shared string
        per distinct value).
        """
        out = {}
        for name in COLUMNS if names is None else names:
            parts = [chunk[name] for chunk in self._chunks]
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
            values = [chunk[name].python() for name in COLUMNS]
            for start in range(0, len(values[0]) if values else 0, rows):
                for row in zip(*(column[start : start + rows] for column in values)):
                    yield dict(zip(COLUMNS, row))

    def outcome_counts(self) -> dict[str, int]:
        """How many runs ended with each outcome."""
        counts: dict[str, int] = {}
        for chunk in self._chunks:
            column = chunk["outcome"]
            assert column.texts is not None
            for text, count in zip(column.texts, np.bincount(column.values, minlength=len(column.texts)).tolist()):
                counts[str(text)] = counts.get(str(text), 0) + count
        return counts
