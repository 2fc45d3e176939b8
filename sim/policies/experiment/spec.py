"""The ``policy: {experiment: ...}`` block: pdsim's own A/B experiment policy (issue 19).

```yaml
policy:
  experiment:
    split: 50                      # percent of users on the candidate (sticky by user)
    metric: conversion             # the primary metric; guardrails watch others
    test: {kind: sequential, alpha: 0.05}
    guardrails: [{metric: request-success-rate, max_drop: 0.5}]
    max_duration: 14d
    interval: 1d                   # how often the experiment looks at its data
```

The keys above are a contract (docs/architecture.md section 7); the policy that runs them
is ``sim.policies.experiment.policy.ExperimentPolicy``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.models import Duration, StrictModel, Text, field_error
from sim.policies.experiment.base import ExperimentTestSpec, GroupSequentialTestSpec, SequentialTestSpec
from sim.units import format_duration

#: The business metrics an experiment can decide on (``sim.world.business``):
#: ``conversion`` (a proportion of sessions), ``order_value`` (the mean value of an
#: order, over conversions), ``revenue`` (order value per session, zero when a session
#: does not convert) and ``engagement`` (the mean engagement count per session).
BusinessMetric = Literal["conversion", "order_value", "revenue", "engagement"]
BUSINESS_METRICS: tuple[str, ...] = ("conversion", "order_value", "revenue", "engagement")


class Guardrail(StrictModel):
    """A metric the candidate must not make worse by more than ``max_drop``.

    ``request-success-rate``: in percentage points of successful live requests (0.5:
    the candidate's success rate may be at most half a point below the primary's); a
    business metric: relative (0.02: at most 2% below the primary's mean).
    """

    metric: Literal["request-success-rate", "conversion", "order_value", "revenue", "engagement"]
    max_drop: Annotated[float, Field(ge=0.0)]


class ExperimentPolicySpec(StrictModel):
    """pdsim's own A/B experiment (issue 19): ``split`` percent of users on the candidate,
    a look at the data every ``interval``, a decision by ``test`` on ``metric``, stopped
    by a failing guardrail or a sample-ratio mismatch, inconclusive at ``max_duration``.

    ``srm_alpha``: the level of the sample-ratio-mismatch check on the users each version
    saw, over all looks together (each look tests at ``srm_alpha`` / looks; null: no
    check); a flagged split ends the experiment with no winner.
    """

    name: Text = "experiment"
    split: Annotated[float, Field(gt=0.0, lt=100.0)] = 50.0
    metric: BusinessMetric = "conversion"
    test: ExperimentTestSpec = SequentialTestSpec(kind="sequential")
    guardrails: list[Guardrail] = []
    max_duration: Annotated[Duration, Field(gt=0)] = 14 * 86400.0
    interval: Annotated[Duration, Field(gt=0)] = 86400.0
    srm_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] | None = 0.001

    @model_validator(mode="after")
    def _looks(self) -> ExperimentPolicySpec:
        if self.interval > self.max_duration:
            raise ValueError("interval must be at most max_duration (the last look is at max_duration)")
        problem = look_problem(self)
        if problem is not None:
            raise field_error("ExperimentPolicySpec", ("test", "looks"), problem, getattr(self.test, "looks", None))
        return self


def look_count(max_duration: float, interval: float) -> int:
    """Looks of an experiment: one every ``interval``, the last at ``max_duration``
    (a last gap shorter than ``interval`` when it does not divide ``max_duration``)."""
    return max(1, math.ceil(max_duration / interval - 1e-9))


def look_problem(spec: ExperimentPolicySpec) -> str | None:
    """Why a group-sequential test's plan does not line up with the experiment's looks,
    or None. Its boundaries assume ``test.looks`` equally spaced looks, the last at
    max_duration: the experiment must take exactly that many, equally spaced (``interval``
    dividing ``max_duration``)."""
    test = spec.test
    if not isinstance(test, GroupSequentialTestSpec):
        return None
    n = look_count(spec.max_duration, spec.interval)
    exact = abs(n * spec.interval - spec.max_duration) <= 1e-9 * spec.max_duration
    if not exact:
        return (
            f"a group-sequential plan needs equally spaced looks: interval {format_duration(spec.interval)} "
            f"does not divide max_duration {format_duration(spec.max_duration)}"
        )
    if test.looks != n:
        return (
            f"must equal max_duration / interval = {n} (the experiment looks every "
            f"{format_duration(spec.interval)} up to {format_duration(spec.max_duration)})"
        )
    return None
