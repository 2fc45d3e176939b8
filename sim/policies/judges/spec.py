"""Pydantic models of ``judge:`` blocks (pdsim's extension beside a strategy).

``flagger: {analysis: {...}, judge: {kind: sequential, alpha: 0.01}}``. The ``kind``
picks the model; unknown keys are errors, reported ``FILE:LINE: FIELD.PATH`` by the
scenario and policy-file readers like every other key. ``metrics`` restricts which of the
strategy's builtin metrics the judge replaces (default: every one it can judge).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import Field

from sim.models import StrictModel

ERRORS, LATENCY = "request-success-rate", "request-duration"


def signals_to_judge(
    asked: Collection[str] | None, offered: frozenset[str] | set[str], supported: frozenset[str]
) -> frozenset[str]:
    """The builtin metrics a judge takes over: those its ``metrics:`` asks for (default: all
    it supports), that the strategy checks (``offered``) and that it can judge."""
    wanted = set(asked) if asked is not None else set(supported)
    return frozenset(wanted & set(offered) & supported)


Alpha = Annotated[float, Field(gt=0.0, lt=0.5)]
Signal = Literal["request-success-rate", "request-duration"]


class _Spec(StrictModel):
    """What every judge's spec has: its level and the builtin metrics it judges."""

    alpha: Alpha = 0.01
    metrics: list[Signal] | None = None


class SequentialSpec(_Spec):
    """``kind: sequential``: anytime-valid e-processes (``sequential.py``).

    Errors: the Lindon–Malek beta-binomial mixture on the canary's share of failures,
    one-sided. Latency: the same e-process on the share of requests slower than each bound
    of ``latency_bounds_ms``, averaged over bounds. Metrics combine by ``combine``:
    ``bonferroni`` (each of m metrics at alpha/m) or ``mean`` (mean of e-values >= 1/alpha).
    """

    kind: Literal["sequential"]
    concentration: Annotated[float, Field(gt=0.0)] = 100.0
    max_relative_risk: Annotated[float, Field(gt=1.0)] = 1000.0
    latency_bounds_ms: list[Annotated[float, Field(gt=0.0)]] = [100.0, 250.0, 500.0]
    combine: Literal["bonferroni", "mean"] = "bonferroni"


class MsprtSpec(_Spec):
    """``kind: msprt``: Johari–Pekelis–Walsh mixture SPRT (``msprt.py``): Bernoulli on
    errors, normal on log latency; ``tau_*`` are the mixing standard deviations."""

    kind: Literal["msprt"]
    tau_error_rate: Annotated[float, Field(gt=0.0)] = 0.001
    tau_log_latency: Annotated[float, Field(gt=0.0)] = 0.05
    one_sided: bool = True
    min_failures: Annotated[int, Field(ge=0)] = 5


class GroupSequentialSpec(_Spec):
    """``kind: group-sequential``: Lan–DeMets alpha spending at every tick (``classical.py``);
    information fraction = canary requests / ``max_canary_requests`` (the plan)."""

    kind: Literal["group-sequential"]
    spending: Literal["obrien-fleming", "pocock"] = "obrien-fleming"
    max_canary_requests: Annotated[float, Field(gt=0.0)] = 100_000.0


class SprtSpec(_Spec):
    """``kind: sprt``: Wald's SPRT of relative risk 1 against ``relative_risk``."""

    kind: Literal["sprt"]
    relative_risk: Annotated[float, Field(gt=1.0)] = 2.0
    beta: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05


class NaiveSpec(_Spec):
    """``kind: naive``: a fixed-horizon two-proportion z test repeated at every tick
    (peeking). Here to show what peeking costs: its error rate is NOT alpha."""

    kind: Literal["naive"]


class BayesSpec(_Spec):
    """``kind: bayes``: Beta-Binomial posterior P(p_canary > p_primary + delta) above
    ``probability``. No frequentist error guarantee (``alpha`` is not used)."""

    kind: Literal["bayes"]
    delta: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    probability: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    prior_a: Annotated[float, Field(gt=0.0)] = 1.0
    prior_b: Annotated[float, Field(gt=0.0)] = 1.0
