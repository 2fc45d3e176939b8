"""Pydantic models of Argo's AnalysisTemplates and of the ``analysis`` blocks that use them.

Keys are Argo's own (``pkg/apis/rollouts/v1alpha1/analysis_types.go``, ``types.go``
``RolloutAnalysis``). A metric's counts and limits may be ``{{args.x}}`` strings: they are
read once the arguments are substituted (``sim.policies.argo.analyses``). The Rollout's
strategy that references these is in ``sim.policies.argo.spec``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from sim.limits import MIN_INTERVAL_S
from sim.models import LooseModel, StrictModel, field_error
from sim.policies.argo.expr import ExprError, compile_expr
from sim.units import format_duration, parse_duration

IntOrString = int | str


def _literal_int(value: IntOrString | None) -> int | None:
    """A count's value when it is written out (``3`` or ``"3"``); None when it is unset, an
    ``{{args.x}}`` reference (checked once substituted) or not a number (reported by the
    importer's checks and by ``sim.policies.argo.analyses``)."""
    if isinstance(value, int):
        return value
    try:
        return int(value) if value is not None and "{{" not in value else None
    except ValueError:
        return None


class Arg(LooseModel):
    """An argument: a literal ``value`` or a ``valueFrom`` reference (kept symbolic)."""

    name: str
    value: str | None = None
    valueFrom: dict[str, Any] | None = None


class ArgoMetric(LooseModel):
    """One AnalysisTemplate metric. Counts and limits may be ``{{args.x}}`` strings."""

    name: str
    interval: str | None = None
    initialDelay: str | None = None
    count: IntOrString | None = None
    failureLimit: IntOrString | None = None
    inconclusiveLimit: IntOrString | None = None
    consecutiveErrorLimit: IntOrString | None = None
    consecutiveSuccessLimit: IntOrString | None = None
    successCondition: str | None = None
    failureCondition: str | None = None
    #: Each provider's settings are an object (``MetricProvider`` in argo-rollouts'
    #: ``pkg/apis/rollouts/v1alpha1/analysis_types.go``: one struct pointer per provider).
    provider: dict[str, dict[str, Any]] = {}

    @field_validator("count", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit")
    @classmethod
    def _not_negative(cls, v: IntOrString | None) -> IntOrString | None:
        """Counts and limits are not negative (``utils/analysis/factory.go``, ``ValidateMetric``;
        a negative ``count`` is not checked there and would end the metric after one
        measurement: refused as meaningless)."""
        n = _literal_int(v)
        if n is not None and n < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("failureLimit")
    @classmethod
    def _failure_limit(cls, v: IntOrString | None) -> IntOrString | None:
        """``ValidateMetric``: ``failureLimit must be >= 0, or -1 to be disabled``."""
        n = _literal_int(v)
        if n is not None and n < -1:
            raise ValueError("must be >= 0, or -1 to be disabled (as Argo's ValidateMetric)")
        return v

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        """A measurement interval of at least ``MIN_INTERVAL_S`` (Argo would take ``0s``
        and measure at every reconcile; a simulated controller has no reconcile loop to
        pace it)."""
        if v is not None and "{{" not in v:
            try:
                seconds = parse_duration(v)
            except ValueError:
                return v  # not a duration: reported by the importer's checks and the resolver
            if seconds < MIN_INTERVAL_S:
                raise ValueError(f"at least {format_duration(MIN_INTERVAL_S)}")
        return v

    @model_validator(mode="after")
    def _limits_apply(self) -> ArgoMetric:
        """``ValidateMetric``: ``failureLimit and consecutiveSuccessLimit cannot both be
        disabled`` (-1 and 0: nothing could ever fail or succeed the metric)."""
        csl = _literal_int(self.consecutiveSuccessLimit)
        if _literal_int(self.failureLimit) == -1 and (self.consecutiveSuccessLimit is None or csl == 0):
            raise field_error(
                "ArgoMetric",
                ("failureLimit",),
                "-1 disables failureLimit only with a consecutiveSuccessLimit above 0: failureLimit and "
                "consecutiveSuccessLimit cannot both be disabled (Argo's ValidateMetric)",
                self.failureLimit,
            )
        return self

    @field_validator("successCondition", "failureCondition")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        """A condition must parse (arguments stand in as a number while checking)."""
        if v is not None and v.strip():
            try:
                compile_expr(_ARG.sub("0", v))
            except ExprError as err:
                raise ValueError(f"not a valid condition: {err}") from None
        return v

    @property
    def provider_type(self) -> str:
        return next(iter(self.provider), "none")


class DryRun(StrictModel):
    metricName: str


class TemplateSpec(LooseModel):
    """An AnalysisTemplate's (or ClusterAnalysisTemplate's) ``spec``."""

    metrics: list[ArgoMetric] = []
    args: list[Arg] = []
    dryRun: list[DryRun] = []
    measurementRetention: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _flat(self) -> TemplateSpec:
        if (self.model_extra or {}).get("templates"):
            raise ValueError(
                "templates that reference other templates must be flattened (pdsim import argo does it for manifests)"
            )
        return self


class TemplateRef(LooseModel):
    templateName: str
    clusterScope: bool = False


class RolloutAnalysis(LooseModel):
    """``analysis`` of a step, of the background, or of blue/green pre/post promotion."""

    templates: list[TemplateRef] = []
    args: list[Arg] = []
    startingStep: Annotated[int, Field(ge=0)] | None = None
    dryRun: list[DryRun] = []


_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def substitute(text: str, args: dict[str, str]) -> str:
    """Replace ``{{args.name}}`` (Argo's template syntax) with the argument values."""
    return _ARG.sub(lambda m: args.get(m.group(1), m.group(0)), text)
