"""Running a sweep: chunks of replicates on one process, joblib workers or a Dask cluster.

Every chunk is a pure function of (world scenario, policy, world index, replicate range,
root seed): its rows do not depend on where, when or next to what it runs, so serial,
multi-worker and Dask sweeps write identical files, and a resumed sweep reruns only the
chunks that have no file yet. The parent process writes every file (workers only
simulate), so a Dask cluster needs no shared disk, and only the chunks in flight are
ever in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from sim.inputs.scenario import Scenario
from sim.outcomes import RunRecord
from sim.policies.base import Policy
from sim.runs.seedseq import run_seeds
from sim.runs.store import (
    FORMAT,
    LOCK,
    MANIFEST,
    RUN_CHUNK_RE,
    STAGING_PREFIX,
    SUMMARY,
    ResultsError,
    WriteFailed,
    finished_chunks,
    package_versions,
    read_manifest,
    records_table,
    remove_temporaries,
    resume_mismatch,
    write_chunk,
    write_json,
)
from sim.sweeps.plan import Chunk, Plan, expand
from sim.sweeps.spec import SweepFile, load_sweep

#: Chunks queued per worker ahead of the one it runs: keeps workers busy while bounding
#: the results held in memory.
_AHEAD = 2


@dataclass(frozen=True)
class SweepResult:
    """What a call of :func:`run_sweep` did.

    Attributes:
        out: the results folder.
        plan: the expanded sweep.
        chunks_run: chunks simulated by this call.
        chunks_skipped: chunks already finished (``resume``).
        rollouts_run: rollouts simulated by this call.
    """

    out: Path
    plan: Plan
    chunks_run: int
    chunks_skipped: int
    rollouts_run: int


def simulate_chunk(
    scenario: Scenario, policy: Policy, world: int, cell: int, start: int, stop: int, seed: int
) -> pa.Table:
    """Replicates ``start .. stop-1`` of a cell as a chunk table (runs in a worker).

    Replicate ``k`` has the seed ``run_seed(seed, world, k)``: the same for every policy.
    """
    return records_table(chunk_records(scenario, policy, world, start, stop, seed), cell=cell)


def chunk_records(scenario: Scenario, policy: Policy, world: int, start: int, stop: int, seed: int) -> list[RunRecord]:
    """The run records of replicates ``start .. stop-1`` of ``world`` (the seeds of
    ``simulate_chunk``), in run order."""
    from sim.runs.runner import batch_size
    from sim.world.controller import run_rollouts

    records = []
    batch = batch_size(scenario)
    for a in range(start, stop, batch):
        runs = list(range(a, min(a + batch, stop)))
        seeds = run_seeds(seed, world, runs).tolist()
        records += [r.record for r in run_rollouts(scenario, policy, seeds, run_indexes=runs)]
    return records


def _task(plan: Plan, chunk: Chunk) -> tuple:
    cell = plan.cells[chunk.cell]
    return (plan.worlds[cell.world].scenario, cell.policy, cell.world, cell.index, chunk.start, chunk.stop, plan.seed)


def _serial(plan: Plan, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, pa.Table]]:
    for chunk in chunks:
        yield chunk, simulate_chunk(*_task(plan, chunk))


def _joblib(plan: Plan, chunks: Iterable[Chunk], workers: int) -> Iterator[tuple[Chunk, pa.Table]]:
    from joblib import delayed

    from sim.runs.runner import parallel_results

    def job(chunk: Chunk, task: tuple) -> tuple[Chunk, pa.Table]:
        return chunk, simulate_chunk(*task)

    yield from parallel_results(
        workers,
        (delayed(job)(c, _task(plan, c)) for c in chunks),
        return_as="generator_unordered",
        pre_dispatch=f"{_AHEAD}*n_jobs",
    )


def _dask(plan: Plan, chunks: Iterable[Chunk], client: Any) -> Iterator[tuple[Chunk, pa.Table]]:
    from distributed import as_completed

    window = max(1, _AHEAD * sum(client.nthreads().values()))
    todo = iter(chunks)
    futures = as_completed()
    owner: dict[Any, Chunk] = {}

    def submit() -> None:
        chunk = next(todo, None)
        if chunk is not None:
            fut = client.submit(simulate_chunk, *_task(plan, chunk), pure=False)
            owner[fut] = chunk
            futures.add(fut)

    for _ in range(window):
        submit()
    for fut in futures:
        table = fut.result()
        chunk = owner.pop(fut)
        fut.release()
        submit()
        yield chunk, table


def _manifest(sweep_path: str, sweep_sha: str, plan: Plan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": plan.name,
        "sweep": {"file": sweep_path, "sha256": sweep_sha},
        "inputs": plan.inputs,
        "seed": plan.seed,
        "runs": plan.runs,
        "chunk_size": plan.chunk_size,
        "versions": package_versions(),
        "params": plan.params,
        "cells": plan.cells_table(),
    }


def _refuse_run_folder(out: Path) -> None:
    """A ``pdsim run --out`` folder (its chunks, summary, lock or staging folder) is not a
    sweep's: writing a manifest into it would mix two kinds of results, as ``run --out``
    refuses a sweep folder (``RunFolder``)."""
    names = [p.name for p in out.iterdir()]
    run = [n for n in names if n in (SUMMARY, LOCK) or RUN_CHUNK_RE.fullmatch(n) or n.startswith(STAGING_PREFIX)]
    if run:
        raise ResultsError(
            f"{out} holds results of a pdsim run ({', '.join(sorted(run)[:3])}); "
            "pdsim sweep --out would mix a sweep into them: choose another --out"
        )


def prepare_out(out: Path, manifest: dict[str, Any], resume: bool) -> set[str]:
    """Create or check the results folder; the names of the chunks already finished.

    Raises:
        ResultsError: the folder holds other results (without ``resume``), or results of
            a different sweep (with it); :class:`~sim.runs.store.WriteFailed` when it
            cannot be written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ResultsError(f"cannot use --out {out}: {err.strerror or err}") from None
    has = (out / MANIFEST).exists()
    if not has:
        _refuse_run_folder(out)
    if has and not resume:
        raise ResultsError(f"{out} already holds sweep results: pass --resume to finish them, or choose another --out")
    if not has and any(finished_chunks(out)):
        raise ResultsError(f"{out} holds chunk files but no {MANIFEST}: choose another --out")
    if has:
        why = resume_mismatch(read_manifest(out), manifest)
        if why is not None:
            raise ResultsError(f"cannot resume into {out}: {why}; use another --out")
        try:
            remove_temporaries(out)
        except OSError as err:
            raise WriteFailed(out, err) from None
        return finished_chunks(out)
    try:
        write_json(out / MANIFEST, manifest)
    except OSError as err:
        raise WriteFailed(out, err) from None
    return set()


def run_sweep(
    sweep: str | os.PathLike[str] | SweepFile,
    out: str | os.PathLike[str],
    *,
    runs: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    workers: int = 1,
    dask: Any = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    plan: Plan | None = None,
) -> SweepResult:
    """Simulate a sweep into a results folder (``pdsim sweep``).

    Args:
        sweep: a sweep file (path or loaded).
        out: the results folder.
        runs: replicates per cell (default: the file's).
        seed: root seed (default: the file's).
        chunk_size: replicates per chunk file (default: the file's).
        workers: joblib (loky) processes; 1 simulates in this process.
        dask: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
        resume: continue the results already in ``out`` (the same sweep only).
        progress: called with the number of rollouts of each finished chunk (including,
            once at the start, those already finished).
        plan: the already expanded plan of ``sweep`` (saves expanding it twice).

    Returns:
        What was done; read the rows with :func:`sim.load_results`.

    Raises:
        InputError: a bad sweep file (or a file it names).
        ResultsError: ``out`` cannot take these results; :class:`~sim.runs.store.WriteFailed`
            when writing it failed (the chunks finished before stay intact: resume).
    """
    sweep = sweep if isinstance(sweep, SweepFile) else load_sweep(sweep)
    plan = plan if plan is not None else expand(sweep, runs=runs, seed=seed, chunk_size=chunk_size)
    out = Path(out)
    done = prepare_out(out, _manifest(sweep.path, sweep.sha256, plan), resume)
    # Chunks are made as they are dispatched: a plan may hold millions.
    finished = [c for c in plan.iter_chunks() if c.name in done] if done else []
    skipped = len(finished)
    if progress is not None and skipped:
        progress(sum(c.stop - c.start for c in finished))
    todo = (c for c in plan.iter_chunks() if c.name not in done)

    client, own_client = dask, False
    if isinstance(dask, str):
        from distributed import Client

        client, own_client = Client(dask), True
    try:
        if client is not None:
            stream = _dask(plan, todo, client)
        elif workers > 1:
            stream = _joblib(plan, todo, workers)
        else:
            stream = _serial(plan, todo)
        rollouts = 0
        for chunk, table in stream:
            try:
                write_chunk(out, chunk.name, table)
            except OSError as err:  # disk full, read-only: the chunks already written stay whole
                raise WriteFailed(out, err) from None
            rollouts += chunk.stop - chunk.start
            if progress is not None:
                progress(chunk.stop - chunk.start)
    finally:
        if own_client:
            client.close()
    return SweepResult(out, plan, plan.n_chunks - skipped, skipped, rollouts)


__all__ = ["SweepResult", "chunk_records", "prepare_out", "run_sweep", "simulate_chunk"]
