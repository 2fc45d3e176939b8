"""Pydantic models of the ``argo:`` policy: a Rollout's ``spec.strategy`` and its AnalysisTemplates.

Keys are Argo's own (``pkg/apis/rollouts/v1alpha1/types.go``, ``analysis_types.go``),
so the ``strategy:`` block of a real Rollout can be pasted. Only the fields that decide
are modelled; Kubernetes-side fields (services, selectors, surge) are accepted and
ignored (``LooseModel``), and the importer warns about decision-relevant ones it drops.
The AnalysisTemplate models are defined in ``sim.policies.argo.templates`` and exported
here too, so that this module is the one place to import the ``argo:`` block's models from.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from sim.limits import MAX_REPLICAS
from sim.models import Duration, LooseModel, StrictModel, at_most, field_error
from sim.policies.argo.analyses import resolve_analysis
from sim.policies.argo.experiment import ExperimentStep
from sim.policies.argo.templates import Arg, ArgoMetric, DryRun, RolloutAnalysis, TemplateRef, TemplateSpec, substitute
from sim.policies.judges import JudgeSpec
from sim.policies.judges.kayenta import KayentaSpec

__all__ = [
    "Arg",
    "ArgoMetric",
    "ArgoPolicySpec",
    "BlueGreenStrategy",
    "CanaryStep",
    "CanaryStrategy",
    "DryRun",
    "HeaderMatch",
    "Pause",
    "RolloutAnalysis",
    "SetCanaryScale",
    "SetHeaderRoute",
    "SetMirrorRoute",
    "Strategy",
    "TemplateRef",
    "TemplateSpec",
    "substitute",
]


class Pause(StrictModel):
    duration: Duration | None = None


#: A pod count: at most ``MAX_REPLICAS``.
Replicas = Annotated[int, at_most(MAX_REPLICAS, f"{MAX_REPLICAS:,} pods")]
#: A percentage, 0 to 100.
Percent = Annotated[int, Field(ge=0, le=100)]


class SetCanaryScale(StrictModel):
    """``setCanaryScale``: ``weight`` is a percentage of ``replicas`` (``GetCanaryReplicasOrWeight``)."""

    weight: Percent | None = None
    replicas: Annotated[Replicas, Field(ge=0)] | None = None
    matchTrafficWeight: bool = False


class HeaderMatch(LooseModel):
    headerName: str
    headerValue: dict[str, str] = {}


class SetHeaderRoute(LooseModel):
    name: str
    match: list[HeaderMatch] = []


class SetMirrorRoute(LooseModel):
    name: str
    percentage: Percent | None = None
    match: list[dict[str, Any]] = []


class CanaryStep(StrictModel):
    """One ``steps[]`` entry: exactly one kind."""

    setWeight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    setCanaryScale: SetCanaryScale | None = None
    setHeaderRoute: SetHeaderRoute | None = None
    setMirrorRoute: SetMirrorRoute | None = None
    experiment: ExperimentStep | None = None  # sim.policies.argo.experiment (issue 16)
    plugin: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(type(self).model_fields)} (got {kinds or 'none'})")
        if kinds[0] == "plugin":
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

    @model_validator(mode="after")
    def _starting_step(self) -> CanaryStrategy:
        """The background analysis starts at ``startingStep`` (``BeforeStartingStep`` in
        ``utils/replicaset/canary.go``: step index < startingStep holds it back). Argo takes
        any int32 and, past the last step, the analysis never runs: refused here."""
        first = self.analysis.startingStep if self.analysis is not None else None
        if first is not None and self.steps and first >= len(self.steps):
            raise field_error(
                "CanaryStrategy",
                ("analysis", "startingStep"),
                f"must be less than the number of steps ({len(self.steps)}): from step {first} on the "
                "background analysis would never run",
                first,
            )
        return self


class BlueGreenStrategy(LooseModel):
    autoPromotionEnabled: bool = True
    autoPromotionSeconds: int = 0
    prePromotionAnalysis: RolloutAnalysis | None = None
    postPromotionAnalysis: RolloutAnalysis | None = None
    previewReplicaCount: Annotated[Replicas, Field(ge=0)] | None = None
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
    replicas: Annotated[Replicas, Field(ge=1)] = 1
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
        for analysis in self.analyses():
            if analysis.templates:
                resolve_analysis(analysis, self.templates, self.clusterTemplates)
        return self

    def analyses(self) -> list[RolloutAnalysis]:
        """Every ``analysis`` block of the strategy: background then steps, or pre- then
        post-promotion."""
        s = self.strategy
        out: list[RolloutAnalysis | None] = []
        if s.canary is not None:
            out += [s.canary.analysis] + [st.analysis for st in s.canary.steps]
            # The AnalysisRuns of experiment steps (issue 16, sim.policies.argo.experiment).
            out += [a for st in s.canary.steps if st.experiment is not None for a in st.experiment.rollout_analyses()]
        elif s.blueGreen is not None:
            out += [s.blueGreen.prePromotionAnalysis, s.blueGreen.postPromotionAnalysis]
        return [a for a in out if a is not None]

    def template_refs(self) -> list[TemplateRef]:
        """The AnalysisTemplate references of every analysis block, in order."""
        return [t for a in self.analyses() for t in a.templates]
