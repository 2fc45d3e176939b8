"""Pydantic models of Argo's AnalysisTemplates and of the ``analysis`` blocks that use them.

Keys are Argo's own (``pkg/apis/rollouts/v1alpha1/analysis_types.go``, ``types.go``
``RolloutAnalysis``). A metric's counts and limits may be ``{{args.x}}`` strings: they are
read once the arguments are substituted (``sim.policies.argo.analyses``). The Rollout's
strategy that references these is in ``sim.policies.argo.spec``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator, model_validator

from sim.models import LooseModel, StrictModel
from sim.policies.argo.expr import ExprError, compile_expr

IntOrString = int | str


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
    provider: dict[str, Any] = {}

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
    startingStep: int | None = None
    dryRun: list[DryRun] = []


_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def substitute(text: str, args: dict[str, str]) -> str:
    """Replace ``{{args.name}}`` (Argo's template syntax) with the argument values."""
    return _ARG.sub(lambda m: args.get(m.group(1), m.group(0)), text)
