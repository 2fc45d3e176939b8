"""``sim.tune(...)``: the search of ``pdsim tune`` from Python and notebooks."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.tuning.outputs import prepare, write_outputs, write_started
from sim.tuning.search import Progress, SearchState, run_search
from sim.tuning.spec import TuneFile, load_tune

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TuneResult:
    """What a search found (the same as its output folder holds).

    Attributes:
        out: the output folder.
        candidates: ``candidates.parquet``'s rows.
        frontier: ``frontier.parquet``'s rows.
        best: the recommendation's values (space PATH -> the value written into the policy;
            {} when the base is the recommendation), or None when no candidate met every
            constraint.
        best_policy: the recommended pdsim policy mapping (``best-policy.yaml``), or None.
        validation: ``validation.json``'s content.
        notes: outputs not written and why.
        state: the search itself.
    """

    out: Path
    candidates: pd.DataFrame
    frontier: pd.DataFrame
    best: dict[str, Any] | None
    best_policy: dict[str, Any] | None
    validation: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    state: SearchState | None = None


def tune(
    path_or_file: str | os.PathLike[str] | TuneFile,
    out: str | os.PathLike[str],
    *,
    budget: int | None = None,
    time_s: float | None = None,
    workers: int = 1,
    dask: Any = None,
    resume: bool = False,
    seed: int | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> TuneResult:
    """Search for the best policy of a TUNE file (``pdsim tune``) into ``out``.

    Args:
        path_or_file: a TUNE file (path or loaded with ``load_tune``).
        out: the output folder; it must be empty unless ``resume``.
        budget: candidate policies to try (default: the file's ``budget``).
        time_s: stop asking new candidates after this many seconds (racing then finishes
            with what it has).
        workers: loky worker processes; the results are identical for any count.
        dask: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
        resume: continue the search already in ``out`` (the same TUNE file and seed).
        seed: the root seed (default: the file's ``seed``).
        progress: called with a :class:`sim.tuning.search.Progress` as the work advances.

    Returns:
        The candidates, the frontier, the recommendation and its fresh-seed check.

    Raises:
        InputError: a bad TUNE file or a file it names.
        SearchError: ``out`` cannot take this search.
    """
    from sim.tuning.outputs import best_policy, candidates_frame, frontier_frame

    tf = path_or_file if isinstance(path_or_file, TuneFile) else load_tune(path_or_file)
    folder = Path(out)
    root_seed = tf.spec.seed if seed is None else seed
    prepare(folder, tf, root_seed, resume)
    client, own = dask, False
    if isinstance(dask, str):
        from distributed import Client

        client, own = Client(dask), True
    try:
        state = run_search(
            tf,
            folder,
            budget=budget,
            time_s=time_s,
            workers=workers,
            client=client,
            seed=root_seed,
            progress=progress,
            started=write_started,
        )
    finally:
        if own:
            client.close()
    notes = write_outputs(state)
    candidates = candidates_frame(state)
    best = state.candidate(state.best).values if state.best is not None else None
    return TuneResult(
        folder,
        candidates,
        frontier_frame(candidates, state),
        dict(best) if best is not None else None,
        best_policy(state),
        state.validation,
        notes,
        state,
    )


__all__ = ["TuneResult", "tune"]
