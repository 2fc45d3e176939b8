"""A judge beside an Argo canary: a background analysis that never stops.

argoproj/argo-rollouts ``rollout/analysis.go`` (``reconcileAnalysisRuns``): a background
run that fails aborts the rollout (weight 0, Degraded). The judge's ``reject`` does the
same at the reconcile it happens in; ``accept`` promotes fully.
"""

from __future__ import annotations

import pytest

from sim.errors import InputError
from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.policies.checks import check_policy
from sim.runs.runner import run_batch
from sim.yamlio import load_yaml, loads_yaml
from tests.helpers import SCENARIOS

SCENARIO = SCENARIOS / "argo-canary-steps.yaml"


def _with_judge(judge: str) -> str:
    text = SCENARIO.read_text()
    return text.replace("  argo:\n    replicas: 5\n", f"  argo:\n    judge: {judge}\n    replicas: 5\n")


def test_a_judged_argo_canary_keeps_the_policy_contract():
    sc = parse_scenario(loads_yaml(_with_judge("{kind: sequential, alpha: 0.01}"), "judged.yaml"))
    policy = scenario_policy(sc)
    assert policy.judge is not None and policy.judge.kind == "sequential"
    check_policy(policy, episodes=10, max_ticks=40)


def test_reject_aborts_before_the_background_analysis_would():
    plain = parse_scenario(load_yaml(SCENARIO))
    judged = parse_scenario(loads_yaml(_with_judge("{kind: sequential, alpha: 0.01}"), "judged.yaml"))
    base = run_batch(plain, scenario_policy(plain), 50, plain.seed)
    fast = run_batch(judged, scenario_policy(judged), 50, plain.seed)
    assert all(r.outcome == "rolled_back" for r in base + fast)
    assert all(r.rollback_reason.startswith("judge sequential rejected the canary") for r in fast)
    # The template's analysis needs failureLimit + 1 failed measurements a minute apart
    # (3m35s); the e-process needs a few hundred canary requests.
    assert max(r.decision_time_s for r in fast) < min(r.decision_time_s for r in base)
    assert sum(r.excess_errors for r in fast) < sum(r.excess_errors for r in base) / 3


def test_an_unknown_judge_key_in_an_inline_argo_policy_is_a_one_line_error():
    with pytest.raises(InputError) as err:
        parse_scenario(loads_yaml(_with_judge("{kind: sprt, alpah: 0.01}"), "judged.yaml"))
    assert str(err.value).startswith("judged.yaml:33: policy.argo.judge.alpah: unknown key")
