"""Argo Rollouts experiment steps (issue 16): the Experiment controller of
``sim.policies.argo.experiment`` against argoproj/argo-rollouts at 9f8d111d, the step's
model and importer, and the upstream examples run end to end. The rollout's timelines are
in ``test_argo_conformance.py`` (the experiment block)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from sim.policies.argo import analysis_run as ar
from sim.policies.argo import experiment as ex
from sim.policies.argo.spec import CanaryStep
from tests.helpers import TEST_FIXTURES, invoke, write

EXAMPLES = TEST_FIXTURES / "argo-examples"
SPEC = ar.MetricSpec(name="sr", interval_s=60.0, initial_delay_s=0.0, count=None, failure_limit=0,
                     inconclusive_limit=0, consecutive_error_limit=4, consecutive_success_limit=0,
                     success_condition="result >= 0.95", failure_condition=None, dry_run=False,
                     provider="prometheus")  # fmt: skip


def plan(duration: float | None = None, required: tuple[bool, ...] = ()) -> ex.ExperimentPlan:
    step = ex.ExperimentStep.model_validate(
        {
            "templates": [{"name": "canary", "specRef": "canary", "weight": 10}],
            "duration": duration,
            "analyses": [
                {"name": f"a{i}", "templateName": "t", "requiredForCompletion": r} for i, r in enumerate(required)
            ],
        }
    )
    return ex.build_plan(1, step, {ex.run_kind(1, f"a{i}"): (SPEC,) for i in range(len(required))})


def running(p: ex.ExperimentPlan, phases: tuple[str, ...]) -> ex.ExperimentState:
    """A Running Experiment, available since 0, whose analyses' runs exist in ``phases``."""
    n = len(phases)
    return ex.ExperimentState(1, 0.0, ar.RUNNING, 0.0, False, (ex.T_RUNNING,), (0.0,), True, phases, (True,) * n)


def runs_in(p: ex.ExperimentPlan, phases: tuple[str, ...]) -> dict[str, ar.AnalysisRunState]:
    out = {}
    for (_, kind, _specs, _), phase in zip(p.analyses, phases, strict=True):
        out[kind] = ar.AnalysisRunState(kind, phase, 0.0, (ar.MetricResult("sr", phase=phase),))
    return out


def test_a_new_experiment_is_pending_then_running_then_starts_its_analyses():
    """experiments/experiment.go calculateStatus ("" -> Pending; templates Running -> availableAt,
    Running) and reconcileAnalysisRun (no run before availableAt; created after)."""
    p = plan(required=(False,))
    s, changed = ex.reconcile(p, None, 0.0, True, {})
    assert (s.phase, s.available_at, changed) == (ar.PENDING, None, {})
    s, changed = ex.reconcile(p, s, 0.0, True, {})
    assert (s.phase, s.available_at, changed) == (ar.RUNNING, 0.0, {})
    s, changed = ex.reconcile(p, s, 0.0, True, {})
    assert list(changed) == [ex.run_kind(1, "a0")] and s.analyses == (ar.PENDING,)


def test_unavailable_templates_keep_it_pending_until_the_progress_deadline():
    """experiments/experiment.go reconcileTemplate: Progressing until lastTransitionTime +
    progressDeadlineSeconds (600), then Failed; assessTemplates: Failed -> Failed."""
    p = plan()
    s, _ = ex.reconcile(p, None, 0.0, False, {})
    s, _ = ex.reconcile(p, s, 300.0, False, {})
    assert (s.phase, s.templates) == (ar.PENDING, (ex.T_PROGRESSING,))
    assert ex.next_due(p, s) == 600.0  # calculateEnqueueDuration
    s, _ = ex.reconcile(p, s, 600.0, False, {})
    assert (s.phase, s.templates) == (ar.FAILED, (ex.T_FAILED,))


def test_the_duration_counts_from_available_at():
    """utils/experiment/experiment.go PassedDurations: availableAt + duration."""
    p = plan(duration=120.0)
    s = running(p, ())
    assert ex.next_due(p, s) == 120.0
    assert ex.reconcile(p, s, 119.0, True, {})[0].phase == ar.RUNNING
    assert ex.reconcile(p, s, 120.0, True, {})[0].phase == ar.SUCCESSFUL


@pytest.mark.parametrize(
    "phases, expected",
    [
        # TestCompleteExperimentOnSuccessfulRequiredAnalysisRun
        ((ar.SUCCESSFUL,), ar.SUCCESSFUL),
        # TestDoNotCompleteExperimentWithRemainingRequiredAnalysisRun
        ((ar.SUCCESSFUL, ar.RUNNING), ar.RUNNING),
        # a failed run ends it whatever is required (calculateStatus: completed, not Successful)
        ((ar.FAILED, ar.RUNNING), ar.FAILED),
        ((ar.INCONCLUSIVE, ar.RUNNING), ar.INCONCLUSIVE),
    ],
)
def test_required_analyses_complete_the_experiment(phases, expected):
    """experiments/experiment.go calculateStatus and assessAnalysisRuns;
    utils/experiment/experiment.go RequiredAnalysisRunsSuccessful (experiments/analysisrun_test.go)."""
    p = plan(required=(True,) * len(phases))
    s = running(p, (ar.RUNNING,) * len(phases))
    new, _ = ex.reconcile(p, s, 30.0, True, runs_in(p, phases))
    assert new.phase == expected


def test_a_successful_analysis_that_is_not_required_does_not_end_it():
    """calculateStatus: templates Running and analyses Successful, none required -> Running
    (docs/features/experiment.md: without duration nor requiredForCompletion it runs until terminated)."""
    p = plan(required=(False,))
    new, _ = ex.reconcile(p, running(p, (ar.RUNNING,)), 30.0, True, runs_in(p, (ar.SUCCESSFUL,)))
    assert new.phase == ar.RUNNING


def test_the_duration_ends_it_and_terminates_running_analyses():
    """calculateStatus: templates Successful, analyses Running and not required -> Successful;
    reconcileAnalysisRun when terminating: TerminateRun (experiments/analysisrun_test.go
    TestCompleteExperimentWithNoRequiredAnalysis)."""
    p = plan(duration=60.0, required=(False,))
    runs = {ex.run_kind(1, "a0"): ar.start_run(ex.run_kind(1, "a0"), (SPEC,), 0.0)}
    new, changed = ex.reconcile(p, running(p, (ar.PENDING,)), 60.0, True, runs)
    assert new.phase == ar.SUCCESSFUL
    assert changed[ex.run_kind(1, "a0")].terminate


def test_weights_and_pods_serve_only_while_running():
    """rollout/trafficrouting.go calculateWeightDestinationsFromExperiment: only a Running
    Experiment's templates get their weight."""
    p = plan()
    assert ex.router_weight(p, running(p, ()), 1) == (10, 0)
    assert ex.router_weight(p, ex.ExperimentState(1, 0.0, ar.PENDING), 1) == (0, 0)
    assert ex.router_weight(p, running(p, ()), 2) == (0, 0)  # another step's


@pytest.mark.parametrize(
    "step, needle",
    [
        ({"templates": [{"name": "a", "specRef": "latest"}]}, "specRef"),
        ({"templates": []}, "templates"),
        ({"templates": [{"name": "a", "specRef": "canary"}, {"name": "a", "specRef": "stable"}]}, "named 'a'"),
        ({"templates": [{"name": "a", "specRef": "canary", "weight": 101}]}, "weight"),
    ],
)
def test_bad_experiment_steps_are_refused(step, needle):
    """pkg/apis/rollouts/v1alpha1/types.go RolloutExperimentStep (specRef canary|stable,
    templates merged by name)."""
    with pytest.raises(ValidationError, match=needle):
        CanaryStep.model_validate({"experiment": step})


def test_a_template_weight_without_a_router_is_one_line_exit_2(tmp_path):
    """pkg/apis/rollouts/validation/validation.go: InvalidCanaryExperimentTemplateWeightWithoutTrafficRouting."""
    text = (EXAMPLES / "rollout-baseline-vs-canary.yaml").read_text()
    bad = write(tmp_path, "r.yaml", text.replace("specRef: canary", "specRef: canary\n            weight: 10"))
    result = invoke("import", "argo", bad)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "weight" in result.output and "TrafficRouting" in result.output


@pytest.mark.parametrize(
    "files",
    [
        ["rollout-canary-preview.yaml"],
        ["rollout-baseline-vs-canary.yaml"],
        ["traffic-routing-experiment-step/istio-host-split-experiment-step.yaml"],
        ["rollout-experiment-step.yaml", "analysis-templates.yaml"],
    ],
)
def test_upstream_examples_import(files):
    result = invoke("import", "argo", *[EXAMPLES / f for f in files])
    assert result.exit_code == 0, result.output
    assert "experiment:" in result.output


def run_json(policy: str, runs: int = 3) -> dict:
    result = invoke("run", "scenarios/error-spike.yaml", "--policy", EXAMPLES / policy, "--runs", runs, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_canary_preview_example_runs_and_serves_no_production_traffic():
    """examples/rollout-canary-preview.yaml: the template relabels its pods, so they get no
    production traffic; no duration, no required analysis: the Experiment runs until
    terminated, so the rollout never finishes (docs/features/experiment.md, item 7)."""
    out = run_json("rollout-canary-preview.yaml")
    assert out["outcomes"]["unfinished"] == out["runs"] == 3
    assert all(r["canary_requests"] == 0 for r in out["records"])


def test_weighted_experiment_pods_count_in_the_blast_radius():
    """The istio example: setWeight 10 plus the canary-spec template's weight 20 -> 30% of live
    traffic reaches the canary version, and its failures count as excess errors."""
    out = run_json("traffic-routing-experiment-step/istio-host-split-experiment-step.yaml", runs=2)
    for r in out["records"]:
        total = 100 * 7200  # error-spike: 100/s over its 2h horizon
        assert 0.28 < r["canary_requests"] / total < 0.32
        assert r["excess_errors"] > 0
