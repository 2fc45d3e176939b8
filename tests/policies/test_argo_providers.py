"""Job and web provider measurements: scripted outcomes that take time.

argoproj/argo-rollouts ``metricproviders/job/job.go`` (Run returns a Running measurement;
Resume reads the Job's outcome later) and ``analysis/analysis.go`` (``runMeasurements``: an
in-flight measurement is resumed, not restarted; the metric stays Running meanwhile).
"""

from __future__ import annotations

from sim.policyfile import scenario_policy
from sim.rng import run_seed
from sim.runner import run_one
from sim.scenario import parse_scenario
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
