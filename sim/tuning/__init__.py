"""Tuning: ``pdsim tune``, a search for the best rollout policy for a portfolio of releases.

Parts:

* ``spec``: the TUNE file's models (``load_tune``): base policy, search space, portfolio,
  objectives, constraints, budget, racing;
* ``space``: search-space distributions, and a candidate's values set into the base policy;
* ``portfolio``: the releases a candidate meets, simulated on common random numbers
  (``load_portfolio``, ``simulate``, ``evaluate``);
* ``metrics``: objective and constraint names (``excess_errors.mean``,
  ``decision_time_s.mean.good``, ``false_rollback_rate``) estimated from run records with
  intervals, and paired comparisons;
* ``search``: the multi-objective search (optuna) with racing by successive halving,
  resumable from its output folder;
* ``outputs``: the output folder's files; ``writeback``: the user's manifest with the
  tuned fields changed; ``report`` and ``sensitivity``: the HTML page;
* ``api``: ``tune(...)``, the search from Python (also ``sim.tune``).

The modules are listed, not imported: ``import sim.tuning`` costs nothing. The package is
``tuning``, not ``tune``, so that ``sim.tune`` can be the function: importing a
subpackage binds its name on ``sim``, which would hide a function of the same name.
"""

__all__ = ["api", "metrics", "outputs", "portfolio", "report", "search", "sensitivity", "space", "spec", "writeback"]
