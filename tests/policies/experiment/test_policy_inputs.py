"""The experiment policy from inputs (issue 19): ``policy: {experiment: ...}`` in scenarios,
policy files with a top-level ``experiment:`` (``--policy FILE``, ``pdsim validate``), and
one-line errors with file, line and field (exit 2)."""

from __future__ import annotations

from sim.inputs.policy import load_policy, load_scenario_and_policy
from sim.policies.experiment import ExperimentPolicy
from tests.helpers import SCENARIOS, invoke, line_of, write

POLICY = """\
experiment:
  split: 50
  metric: conversion
  test: {kind: sequential, alpha: 0.05}
  guardrails: [{metric: request-success-rate, max_drop: 0.5}]
  max_duration: 14d
"""

BUSINESS = "business:\n  conversion: {rate: 0.03}\n"


def one_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def scenario_with(tmp_path, policy: str, business: bool = True):
    text = (SCENARIOS / "good-release.yaml").read_text()
    head = text.split("\npolicy:")[0].rstrip("\n") + "\n"
    return write(tmp_path, "ab.yaml", head + (BUSINESS if business else "") + policy)


def test_a_policy_file_builds_the_experiment(tmp_path):
    p = load_policy([write(tmp_path, "exp.yaml", POLICY)])
    assert isinstance(p, ExperimentPolicy) and p.name == "exp"
    assert p.spec.guardrails[0].max_drop == 0.5 and p.spec.max_duration == 14 * 86400


def test_validate_accepts_an_experiment_policy_file(tmp_path):
    result = invoke("validate", write(tmp_path, "exp.yaml", POLICY))
    assert result.exit_code == 0, result.stderr
    assert "ok (policy)" in result.stdout


def test_a_scenario_carries_an_experiment(tmp_path):
    path = scenario_with(tmp_path, "policy:\n" + "".join("  " + line + "\n" for line in POLICY.splitlines()))
    scenario, policy, warnings = load_scenario_and_policy(path)
    assert isinstance(policy, ExperimentPolicy) and policy.name == f"{scenario.name}/experiment"
    assert warnings == []


def test_bad_keys_are_one_line_with_file_line_and_field(tmp_path):
    text = POLICY.replace("  max_duration: 14d\n", "  max_duration: 14d\n  splitt: 20\n")
    path = write(tmp_path, "bad.yaml", text)
    for args in (("validate", path), ("run", SCENARIOS / "good-release.yaml", "--policy", path)):
        line = one_error(invoke(*args))
        assert line.startswith(f"{path}:{line_of(text, 'splitt')}: experiment.splitt:"), line


def test_a_bad_value_names_its_field(tmp_path):
    text = POLICY.replace("max_drop: 0.5", "max_drop: -1")
    path = write(tmp_path, "bad.yaml", text)
    line = one_error(invoke("validate", path))
    assert f"{path}:{line_of(text, 'max_drop')}: experiment.guardrails[0].max_drop" in line, line


def test_group_sequential_looks_must_line_up_with_the_experiments(tmp_path):
    text = POLICY.replace("{kind: sequential, alpha: 0.05}", "{kind: group-sequential, looks: 10}")
    path = write(tmp_path, "gs.yaml", text)
    line = one_error(invoke("validate", path))
    assert line.startswith(f"{path}:{line_of(text, 'group-sequential')}: experiment.test.looks: must equal")
    assert "= 14" in line and "(got 10)" in line
    good = write(tmp_path, "gs14.yaml", text.replace("looks: 10", "looks: 14"))
    assert invoke("validate", good).exit_code == 0


def test_an_experiment_needs_a_business_block(tmp_path):
    # --policy FILE on a scenario without business:
    path = write(tmp_path, "exp.yaml", POLICY)
    line = one_error(invoke("run", SCENARIOS / "good-release.yaml", "--policy", path, "--runs", "1"))
    assert line.startswith(f"{SCENARIOS / 'good-release.yaml'}:1: business:"), line
    # the scenario's own experiment, without business:
    own = scenario_with(tmp_path, "policy:\n" + "".join("  " + x + "\n" for x in POLICY.splitlines()), False)
    line = one_error(invoke("run", own, "--runs", "1"))
    assert line.startswith(f"{own}:{line_of(own.read_text(), 'policy:')}: business:"), line
