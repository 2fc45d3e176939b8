"""Every real Flagger manifest runs against every bundled scenario, and every policy the
project ships or imports keeps the policy contract (``check_policy``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.inputs.policy import load_policy, scenario_policy
from sim.inputs.scenario import load_scenario
from sim.outcomes import PROMOTED, ROLLED_BACK, UNFINISHED
from sim.policies.checks import check_policy
from sim.runs.runner import run_batch, run_one
from sim.seeds import run_seed
from tests.helpers import SCENARIO_FILES, UPSTREAM_FIXTURES

FIXTURES = UPSTREAM_FIXTURES / "flagger"
CANARIES = sorted(p for p in FIXTURES.glob("*.yaml") if "kind: Canary" in p.read_text()) if FIXTURES.is_dir() else []
needs_fixtures = pytest.mark.skipif(not CANARIES, reason=f"upstream fixtures not found at {FIXTURES}")


@needs_fixtures
@pytest.mark.parametrize("manifest", CANARIES, ids=lambda p: p.stem)
@pytest.mark.parametrize("scenario_path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_flagger_fixture_runs_against_every_bundled_scenario(manifest: Path, scenario_path: Path) -> None:
    scenario = load_scenario(scenario_path)
    policy = load_policy([manifest])
    records = run_batch(scenario, policy, 3, seed=5)
    assert [r.run for r in records] == [0, 1, 2]
    assert all(r.outcome in (PROMOTED, ROLLED_BACK, UNFINISHED) for r in records)
    trace = run_one(scenario, policy, run_seed(5, 0, 0), trace=True).trace
    assert trace and all(0 <= line["routed_weight"] <= 100 for line in trace)


@needs_fixtures
@pytest.mark.parametrize("manifest", CANARIES, ids=lambda p: p.stem)
def test_imported_fixture_policies_keep_the_contract(manifest: Path) -> None:
    check_policy(load_policy([manifest]), episodes=20)


@pytest.mark.parametrize("scenario_path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_bundled_scenario_policies_keep_the_contract(scenario_path: Path) -> None:
    check_policy(scenario_policy(load_scenario(scenario_path), scenario_path), episodes=20)
