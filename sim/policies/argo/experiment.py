"""Argo Rollouts Experiment steps: the step's model, the Experiment controller, and what
the rollout reads from it.

A canary ``experiment`` step (argo-rollouts ``pkg/apis/rollouts/v1alpha1/types.go``
``RolloutExperimentStep``) makes the rollout controller create an Experiment
(``rollout/experiment.go`` ``GetExperimentFromTemplate``, ``reconcileExperiments``): one
ReplicaSet per template, running the canary's pod spec (``specRef: canary``) or the
stable's (``specRef: stable``), with ``replicas`` pods (default 1), and one AnalysisRun per
``analyses`` entry. The Experiment controller (``experiments/experiment.go``
``reconcile``, ``reconcileTemplate``, ``reconcileAnalysisRun``, ``calculateStatus``,
``assessTemplates``, ``assessAnalysisRuns``; ``utils/experiment/experiment.go``) decides
its phase:

* a template is Progressing until its pods are available, then Running; Successful once
  ``duration`` has passed since the Experiment became available (``PassedDurations``) or
  when the Experiment is terminating; Failed when it stays unavailable past the progress
  deadline (the Rollout's ``progressDeadlineSeconds``, default 600 s);
* the analyses start once every template is available (``status.availableAt``);
* the Experiment is Pending, then Running once all templates are; it ends with the
  analyses' worst phase when one is Failed, Error or Inconclusive, Successful when the
  ``requiredForCompletion`` analyses all succeeded, or when the templates completed
  (the duration passed) and the analyses had completed or some are required; without a
  duration and without required analyses it runs until it is terminated.

The rollout (``reconcileExperiments``, ``completedCurrentCanaryStep``): the step completes
when the Experiment is Successful; Failed or Error aborts the rollout; Inconclusive adds
the ``InconclusiveExperiment`` pause condition. While the Experiment is Running, each
template with a ``weight`` takes that percentage of live traffic through the traffic
router (``rollout/trafficrouting.go`` ``calculateWeightDestinationsFromExperiment``,
``calculateWeightStatus``: the stable's weight is what the canary and the templates
leave). Without a traffic router (weights are then refused, ``validation.go``), a
template whose pods keep the Rollout's labels (no ``metadata.labels`` or ``selector`` of
its own, as in ``examples/rollout-experiment-step.yaml``) is behind the same Service
selector as the Rollout's pods and serves production traffic by its pod count
**[inferred from Kubernetes Service selection]**; ``examples/rollout-canary-preview.yaml``
relabels its template so that it serves none.

pdsim's world has two versions: a template with ``specRef: canary`` serves as the canary
(its requests count in the blast radius), one with ``specRef: stable`` as the primary. The
template pods are taken to be available when the canary's pods are (the world's readiness
of the canary version): the same pod spec, started by the same reconcile at a first step;
at a later step pdsim does not add their start-up time. Their requests are attributed to
the canary's (or the stable's) series, not to series of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, model_validator

from sim.limits import MAX_REPLICAS
from sim.models import Duration, LooseModel, at_most
from sim.policies.argo import analysis_run as ar
from sim.policies.argo.templates import Arg, DryRun, RolloutAnalysis, TemplateRef
from sim.policies.frozen import replace

__all__ = [
    "INCONCLUSIVE_EXPERIMENT",
    "ExperimentAnalysis",
    "ExperimentPlan",
    "ExperimentState",
    "ExperimentStep",
    "ExperimentTemplate",
    "build_plan",
    "next_due",
    "production_pods",
    "reconcile",
    "router_weight",
    "run_kind",
    "terminated",
]

#: The pause reason of an inconclusive Experiment (``PauseReasonInconclusiveExperiment``).
INCONCLUSIVE_EXPERIMENT = "InconclusiveExperiment"
#: ``DefaultProgressDeadlineSeconds`` (``utils/defaults/defaults.go``).
DEFAULT_PROGRESS_DEADLINE_S = 600.0
#: ``DefaultReplicas``: a template without ``replicas`` runs one pod.
DEFAULT_REPLICAS = 1

# Template status codes (``TemplateStatusCode``), best to worst (``templateStatusOrder``).
T_SUCCESSFUL, T_RUNNING, T_PROGRESSING, T_ERROR, T_FAILED = "Successful", "Running", "Progressing", "Error", "Failed"
_TEMPLATE_ORDER = (T_SUCCESSFUL, T_RUNNING, T_PROGRESSING, T_ERROR, T_FAILED)
_TEMPLATE_COMPLETED = frozenset({T_SUCCESSFUL, T_FAILED, T_ERROR})
#: ``assessTemplates``: the worst template status as an Experiment phase.
_TEMPLATE_PHASE = {
    T_PROGRESSING: ar.PENDING,
    T_FAILED: ar.FAILED,
    T_ERROR: ar.ERROR,
    T_SUCCESSFUL: ar.SUCCESSFUL,
    T_RUNNING: ar.RUNNING,
}

Replicas = Annotated[int, at_most(MAX_REPLICAS, f"{MAX_REPLICAS:,} pods"), Field(ge=0)]


# -- the step's model --------------------------------------------------------------------------


class ExperimentTemplate(LooseModel):
    """``RolloutExperimentTemplate``: a ReplicaSet of the canary's or the stable's pod spec."""

    name: str
    specRef: Literal["canary", "stable"]
    replicas: Replicas | None = None
    weight: Annotated[int, Field(ge=0, le=100)] | None = None
    metadata: dict[str, Any] = {}
    selector: dict[str, Any] | None = None
    service: dict[str, Any] | None = None

    @property
    def pods(self) -> int:
        """``GetReplicasOrDefault``."""
        return DEFAULT_REPLICAS if self.replicas is None else self.replicas

    @property
    def keeps_labels(self) -> bool:
        """Whether its pods keep the Rollout's labels (no labels or selector of its own)."""
        return self.selector is None and not (self.metadata or {}).get("labels")


class ExperimentAnalysis(LooseModel):
    """``RolloutExperimentStepAnalysisTemplateRef``: one AnalysisRun of the Experiment."""

    name: str
    templateName: str
    clusterScope: bool = False
    args: list[Arg] = []
    requiredForCompletion: bool = False


class ExperimentStep(LooseModel):
    """``RolloutExperimentStep``: templates, an optional ``duration``, analyses."""

    templates: list[ExperimentTemplate] = Field(min_length=1)
    duration: Duration | None = None
    analyses: list[ExperimentAnalysis] = []
    dryRun: list[DryRun] = []

    @model_validator(mode="after")
    def _names(self) -> ExperimentStep:
        """Template and analysis names are the Experiment's merge keys: one of each name."""
        for what, names in (
            ("template", [t.name for t in self.templates]),
            ("analysis", [a.name for a in self.analyses]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"two experiment {what}s are named {dup[0]!r}")
        if self.duration is not None and self.duration < 0:
            raise ValueError("experiment duration must not be negative")
        return self

    def rollout_analyses(self) -> list[RolloutAnalysis]:
        """Each analysis as the ``analysis`` block its AnalysisRun is made from (one
        template, its args, the step's dryRun rules)."""
        return [
            RolloutAnalysis(
                templates=[TemplateRef(templateName=a.templateName, clusterScope=a.clusterScope)],
                args=a.args,
                dryRun=self.dryRun,
            )
            for a in self.analyses
        ]


def run_kind(step_index: int, analysis: str) -> str:
    """The run kind (``ArgoRollout``'s key of an AnalysisRun) of an Experiment analysis."""
    return f"experiment:{step_index}:{analysis}"


# -- the plan ------------------------------------------------------------------------------------


class ExperimentPlan(NamedTuple):
    """One experiment step, as the controllers read it: derived once per policy."""

    step_index: int
    templates: tuple[ExperimentTemplate, ...]
    duration_s: float | None
    #: (analysis name, run kind, metric specs, requiredForCompletion), in spec order
    analyses: tuple[tuple[str, str, tuple[ar.MetricSpec, ...], bool], ...]
    progress_deadline_s: float


def build_plan(
    step_index: int,
    step: ExperimentStep,
    specs: Mapping[str, tuple[ar.MetricSpec, ...]],
    progress_deadline_s: float | None = None,
) -> ExperimentPlan:
    """The plan of the experiment step at ``step_index``; ``specs`` holds the resolved
    metrics of its analyses by run kind (``run_kind``)."""
    analyses = []
    for a in step.analyses:
        kind = run_kind(step_index, a.name)
        analyses.append((a.name, kind, tuple(specs.get(kind, ())), a.requiredForCompletion))
    return ExperimentPlan(
        step_index,
        tuple(step.templates),
        step.duration,
        tuple(analyses),
        DEFAULT_PROGRESS_DEADLINE_S if progress_deadline_s is None else float(progress_deadline_s),
    )


# -- the Experiment's status -----------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentState:
    """The Experiment's ``spec.terminate`` and status, as the controller keeps them.

    ``templates`` holds each template's status code and ``since`` its last transition
    (``lastTransitionTime``), in the plan's order; ``analyses`` each analysis' phase as
    the Experiment recorded it ("" before its run exists) and ``created`` whether its
    AnalysisRun was created. The runs themselves are the rollout's (by ``run_kind``).
    """

    step_index: int
    created_at: float
    phase: str = ""
    available_at: float | None = None
    terminate: bool = False
    templates: tuple[str, ...] = ()
    since: tuple[float, ...] = ()
    ready: bool = False  # the template pods were available at the last reconcile
    analyses: tuple[str, ...] = ()
    created: tuple[bool, ...] = ()
    message: str = ""

    @property
    def completed(self) -> bool:
        return self.phase in ar.COMPLETED


def _passed_duration(plan: ExperimentPlan, s: ExperimentState, t: float) -> bool:
    """``PassedDurations``: now is after ``availableAt + duration``. The requeue at that
    instant (``calculateEnqueueDuration``) is processed a moment after it: hence >= at the
    tick scheduled for it, as for a timed pause."""
    if plan.duration_s is None or s.available_at is None:
        return False
    return t >= s.available_at + plan.duration_s


def _required_successful(plan: ExperimentPlan, phases: tuple[str, ...]) -> bool:
    """``RequiredAnalysisRunsSuccessful``: at least one analysis is required for
    completion, and every required one is Successful."""
    required = [p for (_, _, _, req), p in zip(plan.analyses, phases, strict=True) if req]
    return bool(required) and all(p == ar.SUCCESSFUL for p in required)


def _is_terminating(plan: ExperimentPlan, s: ExperimentState) -> bool:
    """``IsTerminating`` of the Experiment as it was before this reconcile."""
    if s.terminate or s.completed:
        return True
    if any(code in (T_FAILED, T_ERROR) for code in s.templates):
        return True
    if any(p in (ar.FAILED, ar.ERROR, ar.INCONCLUSIVE) for p in s.analyses):
        return True
    return _required_successful(plan, s.analyses)


def _template_status(
    plan: ExperimentPlan, s: ExperimentState, code: str, since: float, t: float, available: bool, terminating: bool
) -> str:
    """``reconcileTemplate``'s status of one template (completed ones stay as they are)."""
    if code in _TEMPLATE_COMPLETED:
        return code
    if terminating:
        # Scaled to zero; whether or not its pods are gone yet, the template is Successful
        # (the progress deadline runs from the scaling, which is now).
        return T_SUCCESSFUL
    if available:  # desiredReplicaCount == availableReplicas
        return T_SUCCESSFUL if _passed_duration(plan, s, t) else T_RUNNING
    if t >= since + plan.progress_deadline_s:  # at its requeue (calculateEnqueueDuration), as a pause's expiry
        return T_FAILED  # "exceeded its progressDeadlineSeconds"
    return T_PROGRESSING


def _assess_templates(codes: tuple[str, ...]) -> str:
    """``assessTemplates``: the worst template status, as an Experiment phase."""
    worst = T_SUCCESSFUL
    for code in codes:
        if _TEMPLATE_ORDER.index(code) > _TEMPLATE_ORDER.index(worst):
            worst = code
    return _TEMPLATE_PHASE[worst]


def _assess_analyses(plan: ExperimentPlan, phases: tuple[str, ...]) -> str:
    """``assessAnalysisRuns``: the worst analysis phase ("" ranks as Successful, as in
    ``IsWorse``); Successful when the required runs succeeded and every phase is
    Successful; Pending reads as Running."""
    worst = ar.SUCCESSFUL
    for p in phases:
        if p and ar.is_worse(worst, p):
            worst = p
    if _required_successful(plan, phases) and ar.is_worse(worst, ar.RUNNING):
        return ar.SUCCESSFUL
    return ar.RUNNING if worst == ar.PENDING else worst


def _calculate_status(
    plan: ExperimentPlan, phase: str, codes: tuple[str, ...], phases: tuple[str, ...]
) -> tuple[str, bool]:
    """``calculateStatus``: the Experiment's new phase, and whether it became available
    (the templates Running: ``availableAt`` is marked)."""
    if phase == "":
        return ar.PENDING, False
    if phase not in (ar.PENDING, ar.RUNNING):
        return phase, False
    templates = _assess_templates(codes)
    analyses = _assess_analyses(plan, phases)
    available = templates == ar.RUNNING
    if templates in ar.COMPLETED:
        has_required = any(req for *_, req in plan.analyses)
        if templates == ar.SUCCESSFUL and (analyses in ar.COMPLETED or has_required):
            return analyses, available  # deferred to the analyses' results
        return templates, available
    if analyses in ar.COMPLETED and analyses != ar.SUCCESSFUL:
        return analyses, available  # an analysis failed, errored or was inconclusive
    if _required_successful(plan, phases):
        return analyses, available
    return templates, available


def reconcile(
    plan: ExperimentPlan,
    state: ExperimentState | None,
    t: float,
    available: bool,
    runs: Mapping[str, ar.AnalysisRunState],
) -> tuple[ExperimentState, dict[str, ar.AnalysisRunState]]:
    """One reconcile of the Experiment controller (``experimentContext.reconcile``).

    Args:
        plan: the experiment step.
        state: the Experiment before (None: it does not exist yet and is created now).
        t: the time.
        available: whether the template pods are available.
        runs: the AnalysisRuns by run kind (those of this Experiment that exist).

    Returns:
        The Experiment after the reconcile, and the runs it created or terminated, by
        run kind. When it completes, its runs still in progress are terminated at once
        (the reconcile that follows a status change, where it is terminating).
    """
    n, m = len(plan.templates), len(plan.analyses)
    if state is None:
        state = ExperimentState(
            step_index=plan.step_index,
            created_at=t,
            templates=(T_PROGRESSING,) * n,
            since=(t,) * n,
            analyses=("",) * m,
            created=(False,) * m,
        )
    if state.completed:
        return state, _terminate_runs(plan, state, t, runs)
    terminating = _is_terminating(plan, state)
    # reconcileTemplate: a change of the available pods is a transition.
    since = state.since if available == state.ready else (t,) * n
    codes = tuple(
        _template_status(plan, state, code, at, t, available, terminating)
        for code, at in zip(state.templates, since, strict=True)
    )
    # reconcileAnalysisRun, with the availability as it was before this reconcile.
    changed: dict[str, ar.AnalysisRunState] = {}
    phases, created = list(state.analyses), list(state.created)
    if state.available_at is not None:
        for i, (_, kind, specs, _) in enumerate(plan.analyses):
            run = runs.get(kind)
            if not created[i] or run is None:
                if terminating:
                    continue  # "Skipping AnalysisRun creation: experiment is terminating"
                changed[kind] = ar.start_run(kind, specs, t)
                created[i], phases[i] = True, ar.PENDING
            elif phases[i] in ar.COMPLETED:
                continue
            elif terminating:
                if not run.completed and not run.terminate:
                    changed[kind] = ar.terminate(specs, run, t)
            else:
                phases[i] = run.phase
    phase, became_available = _calculate_status(plan, state.phase, codes, tuple(phases))
    new = replace(
        state,
        phase=phase,
        templates=codes,
        since=since,
        ready=available,
        analyses=tuple(phases),
        created=tuple(created),
        available_at=t if became_available and state.available_at is None else state.available_at,
    )
    if new == state:
        return state, changed
    if new.completed:
        changed.update(_terminate_runs(plan, new, t, {**runs, **changed}))
    return new, changed


def _terminate_runs(
    plan: ExperimentPlan, state: ExperimentState, t: float, runs: Mapping[str, ar.AnalysisRunState]
) -> dict[str, ar.AnalysisRunState]:
    """The Experiment's runs still in progress, terminated (``TerminateRun``)."""
    out: dict[str, ar.AnalysisRunState] = {}
    for _, kind, specs, _ in plan.analyses:
        run = runs.get(kind)
        if run is not None and not run.completed and not run.terminate:
            out[kind] = ar.terminate(specs, run, t)
    return out


def terminated(state: ExperimentState) -> ExperimentState:
    """The Experiment with ``spec.terminate`` set (``cancelExperiments``)."""
    return state if state.terminate else replace(state, terminate=True)


def next_due(plan: ExperimentPlan, state: ExperimentState | None) -> float | None:
    """When the Experiment asks to be reconciled again (``calculateEnqueueDuration``):
    at ``availableAt + duration``, or at a template's progress deadline; None when it is
    completed or waits for nothing."""
    if state is None or state.completed or _is_terminating(plan, state):
        return None
    due: list[float] = []
    if plan.duration_s is not None and state.available_at is not None:
        due.append(state.available_at + plan.duration_s)
    if not state.ready:
        waiting = zip(state.templates, state.since, strict=True)
        due += [at + plan.progress_deadline_s for code, at in waiting if code in (T_PROGRESSING, T_RUNNING)]
    return min(due) if due else None


def _serving(plan: ExperimentPlan, state: ExperimentState | None, step_index: int) -> bool:
    """Whether the Experiment of the current step has its templates serving (Running)."""
    return state is not None and state.step_index == step_index == plan.step_index and state.phase == ar.RUNNING


def router_weight(plan: ExperimentPlan, state: ExperimentState | None, step_index: int) -> tuple[int, int]:
    """Percent of live traffic the traffic router sends to the Experiment's templates
    (``calculateWeightDestinationsFromExperiment``: only while it is Running), as
    (canary-spec templates, stable-spec templates)."""
    if not _serving(plan, state, step_index):
        return 0, 0
    canary = sum(tm.weight or 0 for tm in plan.templates if tm.specRef == "canary")
    stable = sum(tm.weight or 0 for tm in plan.templates if tm.specRef == "stable")
    return canary, stable


def production_pods(plan: ExperimentPlan, state: ExperimentState | None, step_index: int) -> tuple[int, int]:
    """Without a traffic router: the Experiment's pods behind the Rollout's Service
    selector (templates that keep the Rollout's labels), as (canary-spec, stable-spec)
    pods, while the Experiment is Running."""
    if not _serving(plan, state, step_index):
        return 0, 0
    canary = sum(tm.pods for tm in plan.templates if tm.specRef == "canary" and tm.keeps_labels)
    stable = sum(tm.pods for tm in plan.templates if tm.specRef == "stable" and tm.keeps_labels)
    return canary, stable
