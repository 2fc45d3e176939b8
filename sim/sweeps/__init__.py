"""Sweeps: policy grids over release portfolios, run in chunks that resume (``pdsim sweep``).

Parts:

* ``spec``: the sweep file's models (``load_sweep``);
* ``plan``: the sweep expanded into worlds and policies (``expand``);
* ``execute``: chunks on one process, joblib workers or a Dask cluster (``run_sweep``);
* ``costs``: per-cell summaries, per-policy expected costs, the frontier and paired
  comparisons, with intervals.

The modules are listed, not imported: ``import sim.sweeps`` costs nothing.
"""

__all__ = ["costs", "execute", "plan", "spec"]
