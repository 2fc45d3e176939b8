"""Small parameter grids by plain loops: policy and scenario variants, one tidy frame.

For the demo and the notebooks, which sweep a handful of settings. Every variant is
re-validated from plain data (never ``model_copy(update=...)``, which skips validation), so
a bad setting raises like a bad file would. Every setting runs the same seeds: run k of
each setting meets the same traffic, faults and noise (common random numbers), so the
differences between settings are the settings', not the dice's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sim.inputs.policy import build_policy
from sim.inputs.scenario import PolicySpec, Scenario
from sim.policies.base import Policy
from sim.runs.runner import records_frame, run_batch

__all__ = ["flagger_variant", "fault_variant", "run_grid", "METRIC_KEYS"]

#: Grid keys that set a metric's threshold rather than an ``analysis`` field.
METRIC_KEYS = {"success_rate_min": ("request-success-rate", "min"), "latency_max_ms": ("request-duration", "max")}


def flagger_variant(spec: PolicySpec, *, name: str, **settings: Any) -> Policy:
    """A Flagger policy like ``spec`` with some settings changed.

    Args:
        spec: a policy with a ``flagger:`` analysis (e.g. ``scenario.policy``).
        name: the variant's name (the ``policy`` column of its records).
        **settings: ``analysis`` fields (``interval``, ``threshold``, ``stepWeight``,
            ``maxWeight``...; durations as ``"30s"`` or seconds) and the metric bounds
            ``success_rate_min`` (percent) and ``latency_max_ms``.

    Raises:
        ValueError: for a policy without a Flagger analysis, or an invalid setting
            (pydantic's ValidationError is a ValueError).
    """
    if spec.flagger is None or spec.flagger.analysis is None:
        raise ValueError("flagger_variant needs a policy with a flagger analysis")
    data = spec.model_dump(mode="json", exclude_none=True)
    analysis = data["flagger"]["analysis"]
    for key, value in settings.items():
        if key in METRIC_KEYS:
            metric, side = METRIC_KEYS[key]
            hits = [m for m in analysis.get("metrics", []) if m.get("name") == metric]
            if not hits:
                raise ValueError(f"{key}: the policy has no {metric} check")
            for m in hits:
                m["thresholdRange"] = {**m.get("thresholdRange", {}), side: value}
        else:
            analysis[key] = value
    return build_policy(PolicySpec.model_validate(data), name=name)


def fault_variant(scenario: Scenario, *, index: int = 0, name: str | None = None, **fields: Any) -> Scenario:
    """A scenario like ``scenario`` with fields of one release fault changed.

    Args:
        scenario: the scenario.
        index: which fault of ``release.faults``.
        name: the variant's name (default: unchanged, so seeds stay comparable).
        **fields: fault fields, e.g. ``rate=0.02`` for an ``error_rate`` fault.

    Raises:
        ValueError: for a missing fault or an invalid value.
    """
    data = scenario.model_dump(mode="json", exclude_none=True)
    faults = data["release"]["faults"]
    if index >= len(faults):
        raise ValueError(f"the scenario has no release fault number {index}")
    faults[index].update(fields)
    if name is not None:
        data["name"] = name
    return Scenario.model_validate(data)


def _label(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "base"


def run_grid(
    scenarios: Sequence[Scenario],
    spec: PolicySpec,
    grid: Mapping[str, Sequence[Any]],
    *,
    runs: int,
    workers: int = 1,
    seed: int | None = None,
) -> pd.DataFrame:
    """Every combination of ``grid`` against every scenario: one row per run.

    Args:
        scenarios: the release portfolio (good and bad releases).
        spec: the base Flagger policy.
        grid: setting name -> values (see :func:`flagger_variant`); all combinations run.
        runs: rollouts per (setting, scenario).
        workers: processes per batch.
        seed: root seed for every scenario (default: each scenario's own ``seed``).

    Returns:
        The run records plus one column per grid key; ``policy`` names the setting.
    """
    keys = list(grid)
    frames = []
    for values in itertools.product(*(grid[k] for k in keys)):
        settings = dict(zip(keys, values))
        policy = flagger_variant(spec, name=_label(settings), **settings)
        for scenario in scenarios:
            root = scenario.seed if seed is None else seed
            frame = records_frame(run_batch(scenario, policy, runs, root, workers=workers))
            for k, v in settings.items():
                frame[k] = v
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)
