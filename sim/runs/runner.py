"""Running many rollouts: seeds, batches, workers, tidy tables.

Run ``k`` of a scenario always gets ``run_seed(root, scenario_index, k)``, whatever the
batch it is simulated in and whatever the number of workers, so results are identical
across worker counts and every policy meets the same traffic and faults in run ``k``
(common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from sim.inputs.scenario import Scenario
from sim.outcomes import COLUMNS, RunRecord
from sim.policies.base import Policy
from sim.runs.seedseq import run_seeds
from sim.world.controller import RunResult, run_rollouts

#: Rollouts simulated together in lockstep (numpy work is shared across them).
BATCH = 500


def run_one(
    scenario: Scenario, policy: Policy, seed: int, *, run_index: int = 0, exact: bool = False, trace: bool = False
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
    """
    return run_rollouts(scenario, policy, [seed], run_indexes=[run_index], exact=exact, trace=trace)[0]


def _simulate(
    scenario: Scenario, policy: Policy, runs: Sequence[int], seed: int, scenario_index: int, exact: bool
) -> list[RunRecord]:
    seeds = run_seeds(seed, scenario_index, list(runs)).tolist()
    if exact:
        return [run_one(scenario, policy, s, run_index=k, exact=True).record for s, k in zip(seeds, runs)]
    return [r.record for r in run_rollouts(scenario, policy, seeds, run_indexes=list(runs))]


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
    """Simulate ``runs`` rollouts of one scenario under one policy.

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
    chunks = [list(range(a, min(a + chunk_size, runs))) for a in range(0, runs, chunk_size)]
    # Within a chunk, lockstep batches of BATCH rollouts share numpy work.
    pieces = [c[i : i + BATCH] for c in chunks for i in range(0, len(c), BATCH)]
    out: list[RunRecord] = []
    pending: list[RunRecord] = []
    chunk_ends = {c[-1] for c in chunks}

    def collect(records: list[RunRecord]) -> None:
        out.extend(records)
        pending.extend(records)
        if progress is not None:
            progress(len(records))
        if records and records[-1].run in chunk_ends:
            if on_chunk is not None:
                on_chunk(list(pending))
            pending.clear()

    if workers <= 1:
        for piece in pieces:
            collect(_simulate(scenario, policy, piece, seed, scenario_index, exact))
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator")
        for records in parallel(
            delayed(_simulate)(scenario, policy, piece, seed, scenario_index, exact) for piece in pieces
        ):
            collect(records)
    return out


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """A tidy table: one row per run, the record fields as columns."""
    return pd.DataFrame([r.as_dict() for r in records], columns=COLUMNS)
