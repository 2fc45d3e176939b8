"""pdsim: simulate progressive-delivery policies before production does.

The public API, imported lazily (``import sim`` is what every command pays for, and it
must not pull in simpy, pandas or pyarrow)::

    scenario = sim.load_scenario("scenarios/error-spike.yaml")
    policy = sim.scenario_policy(scenario)          # or sim.load_policy(["canary.yaml"])
    record = sim.run_one(scenario, policy, seed).record
    frame = sim.records_frame(sim.run_batch(scenario, policy, 1000, scenario.seed, workers=2))
    sim.run_sweep("sweeps/flagger-thresholds.yaml", "results/x"); sim.load_results("results/x")
    result = sim.tune("tune/flagger-default.yaml", "results/tuned")   # pdsim tune: .frontier, .best_policy
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public name -> the module that defines it.
_API = {
    "load_scenario": "sim.inputs.scenario",
    "parse_scenario": "sim.inputs.scenario",
    "load_policy": "sim.inputs.policy",
    "scenario_policy": "sim.inputs.policy",
    "run_one": "sim.runs.runner",
    "run_batch": "sim.runs.runner",
    "records_frame": "sim.runs.runner",
    "summarize_records": "sim.stats",
    "run_sweep": "sim.sweeps.execute",
    "load_results": "sim.runs.store",
    "check_policy": "sim.policies.checks",
    "make_judge": "sim.policies.judges",
    "tune": "sim.tuning.api",
}

#: The distribution that installs ``sim`` and the ``pdsim`` command (``pdsim`` on PyPI is an
#: unrelated project); package metadata such as the version is read under this name.
DISTRIBUTION = "pdsim-rollouts"

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return __all__
