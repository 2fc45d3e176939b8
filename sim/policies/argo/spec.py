"""Pydantic models of the ``argo:`` policy: a Rollout's ``spec.strategy`` and its AnalysisTemplates.

Keys are Argo's own (``pkg/apis/rollouts/v1alpha1/types.go``, ``analysis_types.go``),
so the ``strategy:`` block of a real Rollout can be pasted. Only the fields that decide
are modelled; Kubernetes-side fields (services, selectors, surge) are accepted and
ignored (``LooseModel``), and the importer warns about decision-relevant ones it drops.
The AnalysisTemplate models are defined in ``sim.policies.argo.templates`` and exported
here too, so that this module is the one place to import the ``argo:`` block's models from.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from sim.limits import MAX_REPLICAS
from sim.models import LooseModel, StrictModel, at_most, field_error
from sim.policies.argo.analyses import resolve_analysis
from sim.policies.argo.experiment import ExperimentStep
from sim.policies.argo.templates import Arg, ArgoMetric, DryRun, RolloutAnalysis, TemplateRef, TemplateSpec, substitute
from sim.policies.judges import JudgeSpec
from sim.policies.judges.kayenta import KayentaSpec
from sim.units import parse_duration

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
    "ReplicaProgressThreshold",
    "RolloutAnalysis",
    "SetCanaryScale",
    "SetHeaderRoute",
    "SetMirrorRoute",
    "Strategy",
    "TemplateRef",
    "LATEST_VERSION",
    "TemplateSpec",
    "parse_version",
    "pause_seconds",
    "substitute",
]


#: The Argo Rollouts release pdsim simulates by default (argoproj/argo-rollouts at 9f8d111d,
#: after v1.10.0-rc1), and the oldest a policy may name.
LATEST_VERSION, OLDEST_VERSION = "1.10", "1.0"
_VERSION = re.compile(r"^v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``1.8`` or ``v1.8.2`` as (1, 8, 0) or (1, 8, 2).

    Raises:
        ValueError: not such a version.
    """
    m = _VERSION.match(text.strip())
    if m is None:
        raise ValueError(f"not an Argo Rollouts version such as 1.8 or 1.8.2 (got {text!r})")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _version_text(value: object) -> str:
    """A ``version`` as written, checked to be a release pdsim knows: from
    ``OLDEST_VERSION`` to ``LATEST_VERSION``. A YAML number is refused: 1.10 would read as 1.1."""
    if not isinstance(value, str):
        raise ValueError(
            'must be a quoted Argo Rollouts version such as "1.8" or "1.8.2" (a YAML number 1.10 reads as 1.1)'
        )
    text = value
    version = parse_version(text)
    if not parse_version(OLDEST_VERSION) <= version[:2] + (0,) <= parse_version(LATEST_VERSION):
        raise ValueError(f"pdsim simulates Argo Rollouts {OLDEST_VERSION} to {LATEST_VERSION} (got {text})")
    return text


#: Go's ``time.ParseDuration`` syntax: a unit on every part, no days.
_GO_DURATION = re.compile(r"^[+-]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$")
_INT32 = re.compile(r"^[+-]?\d{1,10}$")


def pause_seconds(value: object) -> float:
    """A pause step's ``duration`` as Argo reads it (``RolloutPause.DurationSeconds``,
    ``pkg/apis/rollouts/v1alpha1/types.go``): an integer is seconds, a string of digits
    too, any other string a Go duration truncated to whole seconds (``500ms`` is 0, ``1.5s``
    is 1). A string Go cannot parse (``1d``: Go has no day unit) reads as -1, which
    ``validation.go`` rejects ("Duration needs to be greater than 0"), as it rejects
    negative ones.

    Raises:
        ValueError: a value Argo rejects (the message says why).
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a whole number written back as a float (a policy file pdsim wrote)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be a whole number of seconds or a Go duration string such as 30s or 1h (an IntOrString)")
    if isinstance(value, int):
        seconds = value
    else:
        text = value.strip()
        if _INT32.match(text):
            seconds = int(text)
        elif _GO_DURATION.match(text):
            magnitude = parse_duration(text.lstrip("+-"))
            seconds = -math.trunc(magnitude) if text.startswith("-") else math.trunc(magnitude)
        else:
            raise ValueError(
                "not a Go duration (units ns, us, ms, s, m, h; Go has no d): Argo reads it as -1 and rejects the "
                "Rollout (Duration needs to be greater than 0)"
            )
    if seconds < 0:
        raise ValueError("must not be negative: Argo rejects the Rollout (Duration needs to be greater than 0)")
    return float(seconds)


class Pause(StrictModel):
    """``pause``: ``duration`` in whole seconds (``pause_seconds``); none: until promoted."""

    duration: Annotated[float, BeforeValidator(pause_seconds)] | None = None


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


#: The step kinds of which a step holds at most one (``validation.go`` ``hasMultipleStepsType``);
#: ``setCanaryScale``, ``setHeaderRoute``, ``setMirrorRoute`` and ``plugin`` may join one of them.
EXCLUSIVE_STEP_KINDS = ("setWeight", "pause", "experiment", "analysis")
#: The order in which ``completedCurrentCanaryStep`` (``rollout/canary.go``) tests a step's
#: fields: a combined step completes as the first kind it holds.
COMPLETION_ORDER = (
    "pause",
    "setCanaryScale",
    "setWeight",
    "experiment",
    "analysis",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
)


class CanaryStep(StrictModel):
    """One ``steps[]`` entry: at least one kind, at most one of ``setWeight``, ``pause``,
    ``experiment``, ``analysis`` (``pkg/apis/rollouts/validation/validation.go``
    ``ValidateRolloutStrategyCanary``, ``hasMultipleStepsType``)."""

    setWeight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    setCanaryScale: SetCanaryScale | None = None
    setHeaderRoute: SetHeaderRoute | None = None
    setMirrorRoute: SetMirrorRoute | None = None
    experiment: ExperimentStep | None = None  # sim.policies.argo.experiment (issue 16)
    plugin: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _kinds(self) -> CanaryStep:
        kinds = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if not kinds:
            raise ValueError(f"a step needs one of {', '.join(type(self).model_fields)} (got none)")
        exclusive = [k for k in kinds if k in EXCLUSIVE_STEP_KINDS]
        if len(exclusive) > 1:
            raise ValueError(
                f"a step holds at most one of {', '.join(EXCLUSIVE_STEP_KINDS)} (got {', '.join(exclusive)}): "
                "Argo rejects the Rollout"
            )
        if "plugin" in kinds:
            raise ValueError("plugin steps are not modelled")
        return self

    @property
    def kind(self) -> str:
        """The kind the step completes as (``COMPLETION_ORDER``)."""
        return next(k for k in COMPLETION_ORDER if getattr(self, k) is not None)


class ReplicaProgressThreshold(StrictModel):
    """``replicaProgressThreshold``: how many of the canary's desired pods must be
    available for a step (and the full promotion) to proceed (``ReplicaProgressThresholdMet``,
    ``utils/replicaset/canary.go``): a percentage of them, or a pod count; a negative value
    means all of them."""

    type: Literal["Percent", "Pods"]
    value: int


class CanaryStrategy(LooseModel):
    """``strategy.canary``; the pod-count fields are those of ``utils/replicaset/canary.go``
    (``minPodsPerReplicaSet`` and ``dynamicStableScale`` apply with traffic routing only)."""

    steps: list[CanaryStep] = []
    analysis: RolloutAnalysis | None = None
    trafficRouting: dict[str, Any] | None = None
    abortScaleDownDelaySeconds: int | None = None
    minPodsPerReplicaSet: Annotated[Replicas, Field(ge=0)] | None = None
    dynamicStableScale: bool = False
    replicaProgressThreshold: ReplicaProgressThreshold | None = None

    @model_validator(mode="after")
    def _needs_routing(self) -> CanaryStrategy:
        """``validation.go`` ``ValidateRolloutStrategyCanary``: "SetCanaryScale requires
        TrafficRouting to be set"."""
        if self.trafficRouting is None:
            for i, st in enumerate(self.steps):
                if st.setCanaryScale is not None:
                    raise field_error(
                        "CanaryStrategy",
                        ("steps", i, "setCanaryScale"),
                        "needs trafficRouting (Argo rejects the Rollout: SetCanaryScale requires TrafficRouting "
                        "to be set)",
                        st.setCanaryScale.model_dump(exclude_none=True),
                    )
        return self

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
    #: The Rollout's ``progressDeadlineSeconds`` (default 600, ``utils/defaults``) and
    #: ``progressDeadlineAbort``: an update that makes no progress that long is Degraded
    #: (``ProgressDeadlineExceeded``), and aborted too with ``progressDeadlineAbort``.
    progressDeadlineSeconds: Annotated[int, Field(ge=1)] = 600
    progressDeadlineAbort: bool = False
    #: pdsim's extension: the Argo Rollouts release simulated, ``MAJOR.MINOR[.PATCH]``
    #: (default: the latest, ``LATEST_VERSION``); see ``controller_version``.
    version: Annotated[str, BeforeValidator(_version_text)] = LATEST_VERSION

    @property
    def controller_version(self) -> tuple[int, int, int]:
        """``version`` as (major, minor, patch). What changed between releases:

        * 1.8.2 (argo-rollouts #3873, ``rollout/analysis.go`` ``needsNewAnalysisRun``):
          a background run that turns Inconclusive during a pause step pauses the
          rollout (``InconclusiveAnalysis``); before, a new run replaced it and the
          rollout went on.
        * 1.10 (#4692, ``metricproviders/job/job.go``): a Job whose pods hit
          infrastructure errors is an Inconclusive measurement; pdsim's Jobs have no
          such errors (their outcome is scripted), so nothing differs here.
        """
        return parse_version(self.version)

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
