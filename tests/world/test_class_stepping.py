"""Class stepping (``World._serve_classes``; contract in ``sim.policies.base.BatchObservation``)
gives every run the record that stepping it alone gives.

The world steps a policy once per class of runs alike (equal states, routes, readiness and
``observation_keys`` rows) instead of once per run. These tests run the same batches both
ways, run for run, and show the comparison can fail: a policy whose keys leave out what a
decision depends on changes the records.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.inputs.policy import load_policy, scenario_policy
from sim.inputs.scenario import load_scenario
from sim.policies.base import QueryError, ScalarResult
from sim.policies.flagger.canary import (
    CHECK_PASSED,
    FlaggerCanary,
    check_outcome,
    check_outcomes,
)
from sim.policies.flagger.plan import Check
from sim.runs.seedseq import run_seeds
from sim.world.controller import World, row_classes
from tests.helpers import REPO, SCENARIO_FILES

RUNS = 300


def _records(scenario, policy, by_class: bool, runs: int = RUNS) -> list[tuple]:
    seeds = run_seeds(scenario.seed, 0, range(runs))
    world = World(scenario, policy, seeds)
    assert world.by_class or not by_class, "the policy does not class-step here"
    world.by_class = by_class
    return [tuple(vars(r.record).values()) for r in world.run()]


def _class_stepped(path: Path) -> bool:
    scenario = load_scenario(path)
    world = World(scenario, scenario_policy(scenario), [1])
    return world.by_class


CLASS_STEPPED = [p for p in SCENARIO_FILES if _class_stepped(p)]


def test_some_bundled_scenarios_are_class_stepped() -> None:
    """The device is in use (the plain Flagger canary declares it)."""
    names = {p.stem for p in CLASS_STEPPED}
    assert {"good-release", "error-spike", "ab-cohort-bug", "bluegreen-error-spike"} <= names


@pytest.mark.parametrize("path", CLASS_STEPPED, ids=lambda p: p.stem)
def test_bundled_scenario_records_are_the_same_stepped_by_class(path: Path) -> None:
    scenario = load_scenario(path)
    policy = scenario_policy(scenario)
    assert _records(scenario, policy, True) == _records(scenario, policy, False)


@pytest.mark.parametrize(
    "scenario_name,policy_file",
    [("good-release", "sweeps/policies/threshold-2.yaml"), ("error-spike", "sweeps/policies/threshold-10.yaml")],
)
def test_sweep_policies_are_the_same_stepped_by_class(scenario_name: str, policy_file: str) -> None:
    scenario = load_scenario(REPO / "scenarios" / f"{scenario_name}.yaml")
    policy = load_policy([REPO / policy_file])
    assert _records(scenario, policy, True) == _records(scenario, policy, False)


def test_keys_that_leave_out_a_check_change_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys without the checks' outcomes put failing and passing runs in one class: the
    records differ from stepping run by run, so the comparison above can fail (on
    low-traffic, where some good runs fail checks and others do not)."""
    scenario = load_scenario(REPO / "scenarios" / "low-traffic.yaml")
    policy = scenario_policy(scenario)
    honest = _records(scenario, policy, False, runs=100)
    monkeypatch.setattr(FlaggerCanary, "observation_keys", lambda self, batch: np.zeros((batch.size, 1)))
    assert _records(scenario, policy, True, runs=100) != honest


def _check(truncate: bool, unit_ms: float = 1.0) -> Check:
    lo, hi = (None, 500e6) if truncate else (99.0, None)
    return Check("m", False, truncate, lo, hi, "lo", "hi", "no values", "failed: ", unit_ms)


@pytest.mark.parametrize("truncate,unit_ms", [(False, 1.0), (True, 1.0), (True, 1000.0)])
def test_check_outcomes_agree_with_check_outcome_value_by_value(truncate: bool, unit_ms: float) -> None:
    """The column pass (numpy over single samples, one by one for the rest) gives each
    value the code the scalar check gives it: bounds, NaN, infinities, Go's wrap-around."""
    rng = np.random.default_rng(5)
    c = _check(truncate, unit_ms)
    centre = 500.0 / unit_ms if truncate else 99.0
    numbers = list(centre + rng.normal(0, centre / 50, 400)) + [
        centre,
        math.nextafter(centre, 0),
        math.nan,
        math.inf,
        -math.inf,
        1e300,
        -1e300,
        9.3e12,
        -0.4,
    ]
    metrics: list = [(x,) for x in numbers]
    metrics += [(), None, (1.0, 2.0), QueryError("boom"), ScalarResult(1.0), 98.0, math.nan]
    values = np.array([m[0] if type(m) is tuple and len(m) == 1 else np.nan for m in metrics], dtype=float)
    single = np.array([type(m) is tuple and len(m) == 1 for m in metrics])
    values[-2], single[-2] = 98.0, True  # a plain float (a bound signal) is single
    codes = check_outcomes(c, values, single, metrics)
    assert codes.tolist() == [check_outcome(c, m)[0] for m in metrics]
    assert (codes == CHECK_PASSED).any() and (codes != CHECK_PASSED).any()


@pytest.mark.parametrize("seed", range(4))
def test_classes_of_rows_are_numpys_unique_rows(seed: int) -> None:
    """Issue 17: class stepping groups runs with ``row_classes``: the classes, their
    order (the rows' sorted order) and each class's first run are ``np.unique``'s, for
    negative, repeated and identity-sized keys."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n, k = int(rng.integers(1, 50)), int(rng.integers(1, 9))
        table = rng.integers(-3, 3, (n, k)) * int(rng.choice([1, 2**40]))
        _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        got_first, got_inverse = row_classes(table)
        assert got_first.tolist() == first.tolist()
        assert got_inverse.tolist() == inverse.reshape(-1).tolist()
