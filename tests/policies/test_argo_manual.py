"""Manual promotion of an Argo Rollout: a person who answers a pause after a delay.

``kubectl argo rollouts promote`` (``pkg/kubectl-argo-rollouts/cmd/promote/promote.go``
``getPatches``) lifts the pauses that ``rollout/pause.go`` ``requiresManualAction`` says need a
person: a ``pause: {}`` step, an inconclusive analysis, a blue/green pause with
``autoPromotionEnabled: false``. The scenario scripts that person as the ``manual-promotion``
webhook: whether they promote at all (default: nobody does) and, with ``latency``, how long
after the pause they do (the rollout controller sees it at its next reconcile).
"""

from __future__ import annotations

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.policies.argo.rollout import RESYNC_S
from sim.runs.runner import run_one
from sim.seeds import run_seed
from sim.yamlio import loads_yaml

CANARY = """\
name: manual
horizon: 2h
after_promotion: 0s
traffic: {{rate: 50/s, users: 1000}}
release: {{startup: 0s}}
{webhooks}
policy:
  argo:
    strategy:
      canary:
        trafficRouting: {{istio: {{virtualService: {{name: vs}}}}}}
        steps:
          - setWeight: 20
          - pause: {{}}
          - setWeight: 50
          - pause: {{duration: 5m}}
"""


def _canary(webhooks: str):
    sc = parse_scenario(loads_yaml(CANARY.format(webhooks=webhooks)))
    return run_one(sc, scenario_policy(sc), run_seed(3, 0, 0), trace=True)


def test_nobody_promotes_by_default():
    result = _canary("")
    assert result.record.outcome == "unfinished"
    assert result.trace[-1]["phase"] == "Paused" and result.trace[-1]["step_index"] == 1


def test_a_person_promotes_the_indefinite_pause_after_their_latency():
    """Paused at step 1 from the first reconcile (t=0); the person answers 10 minutes later,
    seen at the next resync; then setWeight 50 and the 5m timed pause, then full promotion."""
    result = _canary("webhooks: {manual-promotion: {latency: 10m}}")
    paused = next(line["t"] for line in result.trace if line["phase"] == "Paused")
    resumed = next(line for line in result.trace if line["step_index"] == 3)
    assert paused + 600 <= resumed["t"] < paused + 600 + RESYNC_S
    assert result.record.outcome == "promoted"
    assert result.record.decision_time_s == resumed["t"] + 300


def test_a_person_who_never_answers_leaves_it_paused():
    result = _canary("webhooks: {manual-promotion: {outcome: fail, latency: 1m}}")
    assert result.record.outcome == "unfinished"


BLUE_GREEN = """\
name: manual-bg
horizon: 2h
after_promotion: 0s
traffic: {rate: 50/s, users: 1000}
release: {startup: 0s}
telemetry: {noise: false, metrics: {sr: {signal: success-rate, scale: 0.01}}}
webhooks: {manual-promotion: {latency: 3m}}
policy:
  argo:
    strategy:
      blueGreen:
        autoPromotionEnabled: true
        postPromotionAnalysis: {templates: [{templateName: sr}]}
    templates:
      sr:
        metrics:
          - name: sr
            interval: 1m
            count: 2
            successCondition: result[0] > 2
            failureCondition: result[0] < 0
            provider: {prometheus: {query: "sr"}}
"""


def test_an_inconclusive_post_promotion_run_waits_for_a_person_then_runs_again():
    """A success rate (a fraction) is neither > 2 nor < 0: each measurement is Inconclusive,
    the post-promotion run is Inconclusive and the rollout pauses; the person promotes 3
    minutes later, which clears the pause, and ``needsNewAnalysisRun`` starts a new post run
    (``rollout/analysis.go``): measured at once, inconclusive again, paused again."""
    sc = parse_scenario(loads_yaml(BLUE_GREEN))
    result = run_one(sc, scenario_policy(sc), run_seed(3, 0, 0), trace=True)
    first = next(line for line in result.trace if line["phase"] == "Paused")
    assert first["analysis_runs"]["post"]["error"] > 0  # the first run met empty windows first
    promoted = next(
        line for line in result.trace if any(a.get("name") == "manual-promotion" and a["ok"] for a in line["actions"])
    )
    assert first["t"] + 180 <= promoted["t"] < first["t"] + 180 + RESYNC_S
    fresh = promoted["analysis_runs"]["post"]
    assert (fresh["phase"], fresh["count"], fresh["inconclusive"], fresh["error"]) == ("Inconclusive", 1, 1, 0)
    assert promoted["phase"] == "Paused" and result.record.outcome == "unfinished"
