"""Pydantic models of an Argo Rollout's ``spec.strategy`` and its AnalysisTemplates.

Keys are Argo's own (``pkg/apis/rollouts/v1alpha1/types.go``, ``analysis_types.go``),
so the ``strategy:`` block of a real Rollout can be pasted. Only the fields that decide
are modelled; Kubernetes-side fields (services, selectors, surge) are accepted and
ignored (``LooseModel``), and the importer warns about decision-relevant ones it drops.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from sim.models import Duration, LooseModel, StrictModel
from sim.policies.judges import JudgeSpec
from sim.policies.judges.kayenta import KayentaSpec

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
            from sim.policies.argo.expr import ExprError, compile_expr

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


class Pause(StrictModel):
    duration: Duration | None = None


class SetCanaryScale(StrictModel):
    weight: int | None = None
    replicas: int | None = None
    matchTrafficWeight: bool = False


class HeaderMatch(LooseModel):
    headerName: str
    headerValue: dict[str, str] = {}


class SetHeaderRoute(LooseModel):
    name: str
    match: list[HeaderMatch] = []


class SetMirrorRoute(LooseModel):
    name: str
    percentage: int | None = None
    match: list[dict[str, Any]] = []


class CanaryStep(StrictModel):
    """One ``steps[]`` entry: exactly one kind."""

    setWeight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    setCanaryScale: SetCanaryScale | None = None
    setHeaderRoute: SetHeaderRoute | None = None
    setMirrorRoute: SetMirrorRoute | None = None
    experiment: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(type(self).model_fields)} (got {kinds or 'none'})")
        if kinds[0] in ("experiment", "plugin"):
            raise ValueError(f"{kinds[0]} steps are not modelled")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class CanaryStrategy(LooseModel):
    steps: list[CanaryStep] = []
    analysis: RolloutAnalysis | None = None
    trafficRouting: dict[str, Any] | None = None
    abortScaleDownDelaySeconds: int | None = None


class BlueGreenStrategy(LooseModel):
    autoPromotionEnabled: bool = True
    autoPromotionSeconds: int = 0
    prePromotionAnalysis: RolloutAnalysis | None = None
    postPromotionAnalysis: RolloutAnalysis | None = None
    previewReplicaCount: int | None = None
    scaleDownDelaySeconds: int | None = None
    abortScaleDownDelaySeconds: int | None = None


class Strategy(StrictModel):
    canary: CanaryStrategy | None = None
    blueGreen: BlueGreenStrategy | None = None

    @model_validator(mode="after")
    def _one(self) -> Strategy:
        if (self.canary is None) == (self.blueGreen is None):
            raise ValueError("give exactly one of canary or blueGreen")
        return self


class ArgoPolicySpec(StrictModel):
    """The ``argo:`` policy: a Rollout's ``strategy`` and ``replicas``, and the
    AnalysisTemplates it references by name (``templates``; ClusterAnalysisTemplates in
    ``clusterTemplates``). ``judge`` (pdsim's extension) is a statistical judge that acts as
    a background analysis of a canary (``sim.policies.argo.rollout``)."""

    strategy: Strategy
    replicas: Annotated[int, Field(ge=1)] = 1
    templates: dict[str, TemplateSpec] = {}
    clusterTemplates: dict[str, TemplateSpec] = {}
    #: pdsim's extension: Kayenta canary configs by ``canaryConfigName`` (they live in
    #: Kayenta, not in the manifest); a kayenta metric without one uses the default config.
    canaryConfigs: dict[str, KayentaSpec] = {}
    judge: JudgeSpec | None = None  # pdsim's extension: a judge beside the strategy (canary only)

    @model_validator(mode="after")
    def _refs(self) -> ArgoPolicySpec:
        for ref in self.template_refs():
            table = self.clusterTemplates if ref.clusterScope else self.templates
            if ref.templateName not in table:
                kind = "ClusterAnalysisTemplate" if ref.clusterScope else "AnalysisTemplate"
                raise ValueError(f"{kind} {ref.templateName!r} is referenced but not defined")
        for analysis in self.analyses():
            names: list[str] = []
            for ref in analysis.templates:
                table = self.clusterTemplates if ref.clusterScope else self.templates
                names += [m.name for m in table[ref.templateName].metrics]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:  # Argo refuses to flatten them (utils/analysis/helpers.go, flattenMetrics)
                raise ValueError(f"metric {dup[0]!r} is defined by two templates of one analysis")
        # Counts, limits and durations are read after argument substitution: check them
        # now, not halfway through a simulation.
        from sim.policies.argo.rollout import resolve_all

        resolve_all(self)
        return self

    def analyses(self) -> list[RolloutAnalysis]:
        s = self.strategy
        out: list[RolloutAnalysis | None] = []
        if s.canary is not None:
            out += [s.canary.analysis] + [st.analysis for st in s.canary.steps]
        else:
            out += [s.blueGreen.prePromotionAnalysis, s.blueGreen.postPromotionAnalysis]
        return [a for a in out if a is not None]

    def template_refs(self) -> list[TemplateRef]:
        return [t for a in self.analyses() for t in a.templates]


_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def substitute(text: str, args: dict[str, str]) -> str:
    """Replace ``{{args.name}}`` (Argo's template syntax) with the argument values."""
    return _ARG.sub(lambda m: args.get(m.group(1), m.group(0)), text)
