"""Seeds and random streams.

No global RNG anywhere: every stochastic component takes its run's stream. A run's
seed is ``SeedSequence(root, spawn_key=(scenario_index, replicate))`` (``run_seed``;
``sim.runs.seedseq.run_seeds`` computes the same numbers for a whole batch) and never depends
on the policy or the worker, so every policy meets the same traffic and faults in
replicate *k* (common random numbers), whatever the worker count.

The run's named streams derive from its seed. The hot ones (``traffic``) are PCG64 state
rows of ``sim.world.draws`` (``stream_states(seeds, STREAMS[name])``), drawn for a whole
batch in compiled calls; the others are numpy Generators made on first use (``Streams``).
"""

from __future__ import annotations

import numpy as np

#: Named child streams of one run. Fixed indexes: adding a stream must not shift others.
#: A stream is either a numpy Generator (``Streams``) or a ``sim.world.draws`` state row,
#: never both.
STREAMS = {"traffic": 0, "faults": 1, "telemetry": 2, "users": 3, "exact": 4, "hooks": 5, "noise": 6, "business": 7}


def run_seed(root: int, scenario_index: int, replicate: int) -> int:
    """The seed of one run: reproduces that run alone (``run_one(..., seed=run_seed)``)."""
    ss = np.random.SeedSequence(root, spawn_key=(scenario_index, replicate))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))  # fits int64 for Parquet


class Streams:
    """Independent generators, one per named source, from a run seed.

    Created on first use: a run that never loses a scrape never pays for that stream,
    and no stream's values depend on whether another was used.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._made: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        g = self._made.get(name)
        if g is None:
            ss = np.random.SeedSequence(self.seed, spawn_key=(STREAMS[name],))
            g = self._made[name] = np.random.Generator(np.random.PCG64(ss))
        return g


def streams(seed: int) -> Streams:
    """The named streams of one run."""
    return Streams(seed)
