"""``load_scenario_and_policy``: a scenario with the policy it runs (``--policy`` or its own)."""

from __future__ import annotations

import pytest

from sim.errors import InputError
from sim.inputs.policy import load_policy_with_warnings, load_scenario_and_policy, scenario_policy_with_warnings
from sim.inputs.scenario import load_scenario
from tests.helpers import SCENARIOS

SCENARIO = SCENARIOS / "error-spike.yaml"
WARNED = """\
flagger:
  provider: linkerd
  analysis:
    interval: 1m
    threshold: 2
    stepWeight: 10
    maxWeight: 50
    sessionAffinity: {cookieName: canary}
"""


def test_the_scenarios_own_policy():
    scenario, policy, warnings = load_scenario_and_policy(SCENARIO)
    own, own_warnings = scenario_policy_with_warnings(load_scenario(SCENARIO), SCENARIO)
    assert scenario == load_scenario(SCENARIO)
    assert (policy.name, policy.spec, warnings) == (own.name, own.spec, own_warnings)


def test_a_given_policy_wins_with_its_warnings(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(WARNED)
    _, policy, warnings = load_scenario_and_policy(SCENARIO, [path])
    given, given_warnings = load_policy_with_warnings([path])
    assert (policy.name, policy.spec, warnings) == (given.name, given.spec, given_warnings)
    assert len(warnings) == 1 and "sessionAffinity: not modelled" in warnings[0]


def test_the_scenario_is_checked_first(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    with pytest.raises(InputError, match=r"bad\.yaml:1: traffic: Field required"):
        load_scenario_and_policy(bad, [tmp_path / "missing.yaml"])
