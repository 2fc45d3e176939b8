"""Pure decision engines: ``step(state, observation) -> (state, actions)``. No simpy here."""

from sim.policies.base import (
    Action,
    Finish,
    MetricQuery,
    Observation,
    Policy,
    PolicyContractError,
    PolicyTags,
    Promote,
    Readiness,
    Rollback,
    Routes,
    ScaleUp,
    SetWeights,
)
from sim.policies.checks import check_policy
from sim.policies.flagger.canary import FlaggerCanary, FlaggerState

__all__ = [
    "Action",
    "Finish",
    "FlaggerCanary",
    "FlaggerState",
    "MetricQuery",
    "Observation",
    "Policy",
    "PolicyContractError",
    "PolicyTags",
    "Promote",
    "Readiness",
    "Rollback",
    "Routes",
    "ScaleUp",
    "SetWeights",
    "check_policy",
]
