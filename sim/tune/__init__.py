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
* ``api``: ``tune(...)``, also ``sim.tune``.

The modules are listed, not imported: ``import sim.tune`` costs nothing. The package is
callable: ``sim.tune(TUNE_FILE, OUT, ...)`` is ``sim.tune.api.tune`` (``import sim.tune.x``
makes ``sim.tune`` this package, so the function cannot have the name to itself).
"""

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """This package, callable as ``sim.tune.api.tune``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from sim.tune.api import tune

        return tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["api", "metrics", "outputs", "portfolio", "report", "search", "sensitivity", "space", "spec", "writeback"]
