"""Pydantic models of Flagger's ``spec.analysis`` (and the Canary fields beside it).

Keys are Flagger's own camelCase names so that a user can paste the ``analysis:`` block
of a real Canary. Validation is stricter than Flagger's (which silently falls back to
defaults on a bad duration): pdsim reports bad input instead of guessing.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sim.units import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ThresholdRange(_Model):
    """``thresholdRange``: the check fails when the value is below ``min`` or above ``max``."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "ThresholdRange":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


BUILTIN_METRICS = ("request-success-rate", "request-duration")


class FlaggerMetric(_Model):
    """One entry of ``analysis.metrics``.

    ``interval`` is the PromQL range of the query (Flagger default ``1m``,
    ``Canary.GetMetricInterval``). ``threshold`` is the legacy single bound:
    success rate fails when ``threshold > value``, duration when ``value > threshold``
    (``pkg/controller/scheduler_metrics.go``, ``runBuiltinMetricChecks``).
    """

    name: str
    thresholdRange: ThresholdRange | None = None
    threshold: float | None = None
    interval: Duration = 60.0

    @model_validator(mode="after")
    def _builtin(self) -> "FlaggerMetric":
        if self.name not in BUILTIN_METRICS:
            raise ValueError(
                f"metric {self.name!r} is not a builtin ({', '.join(BUILTIN_METRICS)}); "
                "custom metrics (templateRef/query) are not modelled yet")
        if self.thresholdRange is None and self.threshold is None:
            raise ValueError("needs thresholdRange (or the legacy threshold)")
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        return self


class FlaggerAnalysis(_Model):
    """Flagger ``spec.analysis`` for the canary (progressive traffic) strategy.

    Defaults are Flagger's: ``interval`` 60s (values under 10s run every 10s,
    ``Canary.GetAnalysisInterval``); ``threshold`` <= 0 means 1
    (``Canary.GetAnalysisThreshold``); ``maxWeight`` unset means 100
    (``scheduler.go``, ``maxWeight``).
    """

    interval: Duration = 60.0
    threshold: int = 0
    maxWeight: Annotated[int, Field(ge=0, le=100)] | None = None
    stepWeight: Annotated[int, Field(ge=0, le=100)] = 0
    stepWeights: list[Annotated[int, Field(ge=0, le=100)]] = []
    stepWeightPromotion: Annotated[int, Field(ge=0, le=100)] = 0
    metrics: list[FlaggerMetric] = []

    @model_validator(mode="after")
    def _steps(self) -> "FlaggerAnalysis":
        if self.stepWeight == 0 and not self.stepWeights:
            raise ValueError("stepWeight or stepWeights must be set: with neither the canary never advances")
        if any(b <= a for a, b in zip(self.stepWeights, self.stepWeights[1:])):
            raise ValueError(f"stepWeights must increase (got {self.stepWeights})")
        return self


class FlaggerPolicySpec(_Model):
    """The ``flagger:`` policy: an ``analysis`` block plus the Canary fields that decide.

    ``progressDeadlineSeconds`` (default 600) bounds how long a workload may stay
    unavailable before Flagger rolls back (``pkg/canary/deployment_ready.go``).
    """

    analysis: FlaggerAnalysis
    progressDeadlineSeconds: Annotated[int, Field(ge=0)] = 600
