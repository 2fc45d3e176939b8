"""Job and web provider measurements: scripted outcomes that take time.

argoproj/argo-rollouts ``metricproviders/job/job.go`` (Run returns a Running measurement;
Resume reads the Job's outcome later) and ``analysis/analysis.go`` (``runMeasurements``: an
in-flight measurement is resumed, not restarted; the metric stays Running meanwhile).
"""

from __future__ import annotations

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.runs.runner import run_one
from sim.seeds import run_seed
from sim.yamlio import loads_yaml

SCENARIO = """\
name: job-latency
horizon: 1h
after_promotion: 0s
traffic: {{rate: 50/s, users: 1000}}
release: {{startup: 0s}}
webhooks:
  pre/smoke: {{outcome: {outcome}, latency: 90s}}
policy:
  argo:
    strategy:
      blueGreen:
        prePromotionAnalysis: {{templates: [{{templateName: smoke}}]}}
    templates:
      smoke:
        metrics:
          - name: smoke
            provider: {{job: {{spec: {{}}}}}}
"""


def _run(outcome: str):
    sc = parse_scenario(loads_yaml(SCENARIO.format(outcome=outcome)))
    return run_one(sc, scenario_policy(sc), run_seed(1, 0, 0), trace=True)


def test_a_job_measurement_is_running_until_its_latency_has_passed():
    """The pre-promotion job answers 90 s after it starts: the run stays Running, and the
    switch (auto promotion) comes only after the job succeeded."""
    result = _run("pass")
    assert result.record.outcome == "promoted"
    starts = [line["t"] for line in result.trace if line["analysis_runs"].get("pre", {}).get("phase") == "Running"]
    assert starts and min(starts) < 90
    assert result.record.decision_time_s >= 90


def test_a_failing_job_aborts_when_it_answers_not_before():
    """A job that fails is known only when it completes: the abort comes at +90 s."""
    result = _run("fail")
    assert result.record.outcome == "rolled_back"
    assert 90 <= result.record.decision_time_s < 120


# -- load-time validation of hand-written argo: policies ----------------------------------

import pytest  # noqa: E402

from sim.errors import InputError  # noqa: E402

POLICY = """\
name: x
traffic: {{rate: 10/s}}
policy:
  argo:
    strategy: {{canary: {{steps: [{{setWeight: 20}}], analysis: {{templates: {refs}}}}}}}
    templates:
{templates}
"""


def _load(refs: str, templates: str):
    return parse_scenario(loads_yaml(POLICY.format(refs=refs, templates=templates), "p.yaml"))


def test_a_count_that_is_no_number_after_substitution_is_bad_input():
    """``count: "{{args.n}}"`` with no value for n: refused at load, naming the metric."""
    with pytest.raises(InputError, match=r"metric 'm': .* is not a whole number"):
        _load(
            "[{templateName: t}]",
            "      t:\n        metrics:\n          - name: m\n            count: '{{args.n}}'\n"
            "            interval: 1m\n            provider: {prometheus: {query: x}}",
        )


def test_two_templates_defining_one_metric_are_refused():
    """utils/analysis/helpers.go, flattenMetrics: duplicate metric names are an error."""
    one = "        metrics:\n          - name: m\n            provider: {prometheus: {query: x}}\n"
    with pytest.raises(InputError, match="metric 'm' is defined by two templates"):
        _load("[{templateName: a}, {templateName: b}]", "      a:\n" + one + "      b:\n" + one)


def test_nested_templates_must_be_flattened():
    with pytest.raises(InputError, match="must be flattened"):
        _load("[{templateName: a}]", "      a:\n        templates: [{templateName: b}]\n")


def test_a_small_preview_scales_to_full_size_before_the_switch():
    """rollout/service.go, reconcileActiveService: the active service moves only to a
    saturated ReplicaSet; with previewReplicaCount 1 of 4 the preview first scales up,
    which takes the pods' startup time (60 s here) after the promotion gates passed."""
    text = """\
name: preview
horizon: 1h
after_promotion: 0s
traffic: {rate: 50/s, users: 1000}
release: {startup: 60s}
policy:
  argo:
    replicas: 4
    strategy:
      blueGreen: {previewReplicaCount: %s}
"""

    def decided(preview: str) -> float:
        sc = parse_scenario(loads_yaml(text % preview))
        return run_one(sc, scenario_policy(sc), run_seed(1, 0, 0)).record.decision_time_s

    assert decided("1") >= decided("4") + 60


def test_a_typo_in_an_inline_argo_policy_is_an_unknown_key_at_its_line():
    """Scenario files reject unknown keys (docs/architecture.md section 7), also inside an inline
    ``argo:`` policy, whose models accept Argo's Kubernetes-side keys."""
    text = (
        "name: x\ntraffic: {rate: 10/s}\npolicy:\n  argo:\n    strategy:\n      canary:\n"
        "        canaryServce: app-canary\n        steps: [{setWeight: 20}]\n"
    )
    with pytest.raises(InputError) as err:
        parse_scenario(loads_yaml(text, "s.yaml"))
    assert str(err.value).startswith("s.yaml:7: policy.argo.strategy.canary.canaryServce: unknown key")
