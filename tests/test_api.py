"""The public API of ``import sim`` (docs/architecture.md section 2: explicit ``__all__``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sim
from tests.helpers import SCENARIOS


@pytest.mark.parametrize("name", sim.__all__)
def test_every_public_name_resolves(name):
    assert callable(getattr(sim, name))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sim.nope  # noqa: B018


def test_a_run_is_reproduced_from_its_seed_through_the_api():
    scenario = sim.load_scenario(SCENARIOS / "error-spike.yaml")
    policy = sim.scenario_policy(scenario)
    records = sim.run_batch(scenario, policy, 3, scenario.seed)
    assert sim.run_one(scenario, policy, records[2].seed, run_index=2).record == records[2]
    assert list(sim.records_frame(records).run) == [0, 1, 2]


def test_import_sim_stays_light():
    """``import sim`` alone loads none of the heavy modules (every command starts fast)."""
    code = "import sys, sim; print(sorted(m for m in ('simpy', 'pandas', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
