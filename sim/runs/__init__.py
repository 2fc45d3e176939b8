"""Runs: many rollouts of one scenario and policy, replays, and the results on disk.

Parts:

* ``runner``: ``run_one``, ``iter_chunks`` and ``run_batch`` (pieces of runs over worker
  processes), ``run_frame``, ``run_frames`` and ``records_frame`` (tidy tables),
  ``RecordColumns`` (a piece's records as numpy columns);
* ``pool``: the worker processes: ``piece_results`` (forked workers given the scenario and
  policy once, each piece's records back as numpy columns) and loky's ``parallel_results``;
* ``seedseq``: every run's seed for a whole batch in one compiled call (the runner's
  speed device; ``sim.seeds`` holds the rule);
* ``replay``: ``pdsim replay``, a policy against a recorded metric series;
* ``store``: the Parquet results folder (one schema, one writer, atomic chunks);
* ``atomic``: writes that are never seen half-done;
* ``variants``: small policy and scenario grids by plain loops (demo, notebooks).

The modules are listed, not imported: the runner pulls in the world (numba, simpy), which
``import sim.runs`` must not.
"""

__all__ = ["atomic", "pool", "replay", "runner", "seedseq", "store", "variants"]
