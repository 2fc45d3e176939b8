"""Pure decision engines: ``step(state, observation) -> (state, actions)``. No simpy here.

Parts:

* ``base``: the contract: ``Policy`` (with its declared capabilities, ``PolicyTags``),
  ``Observation`` (and ``BatchObservation``, what class stepping keys on), the actions,
  ``MetricQuery``; what a query's result is to a policy (``MetricValue``: a number, None,
  a vector tuple, ``ScalarResult``, ``MatrixResult``, ``QueryError``) and
  ``metric_values`` / ``metric_arrays``, which make them from a PromQL engine result;
* ``driver``: the one tick loop (next tick, decision, routes, trace lines) that the world,
  ``pdsim replay`` and the checks share;
* ``checks``: ``check_policy``, the contract verified on random observations;
* ``frozen``: the one fast copy device for frozen state classes;
* ``names``: pod-template hashes, shared with the world's exporters;
* ``flagger/``, ``argo/``: the controllers, tick for tick; ``judges/``: statistical judges;
  ``experiment/``: A/B experiment decision rules.

The modules are listed, not imported: importing one controller's spec (``pdsim validate``
of a Flagger scenario) must not load the other controller's reconciler
(docs/architecture.md section 2, "Lazy imports").
"""

__all__ = ["argo", "base", "checks", "driver", "experiment", "flagger", "frozen", "judges", "names"]
