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
* ``flagger/``, ``argo/``: the controllers, tick for tick; ``judges/``: statistical judges.
"""

from sim.policies.argo import ArgoPolicySpec, ArgoRollout, ArgoState
from sim.policies.base import (
    Action,
    BatchObservation,
    BusinessData,
    ExperimentEnded,
    Finish,
    MatrixResult,
    MetricQuery,
    MetricValue,
    Observation,
    Policy,
    PolicyContractError,
    PolicyTags,
    Promote,
    QueryError,
    Readiness,
    Rollback,
    Routes,
    ScalarResult,
    ScaleUp,
    SetWeights,
    metric_arrays,
    metric_values,
)
from sim.policies.checks import check_policy
from sim.policies.flagger import FlaggerCanary, FlaggerPolicySpec, FlaggerState

__all__ = [
    "Action",
    "ArgoPolicySpec",
    "ArgoRollout",
    "ArgoState",
    "BatchObservation",
    "BusinessData",
    "ExperimentEnded",
    "Finish",
    "FlaggerCanary",
    "FlaggerPolicySpec",
    "FlaggerState",
    "MatrixResult",
    "MetricQuery",
    "MetricValue",
    "Observation",
    "Policy",
    "PolicyContractError",
    "PolicyTags",
    "Promote",
    "QueryError",
    "Readiness",
    "Rollback",
    "Routes",
    "ScalarResult",
    "ScaleUp",
    "SetWeights",
    "check_policy",
    "metric_arrays",
    "metric_values",
]
