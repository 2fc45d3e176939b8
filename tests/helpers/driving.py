"""A policy stepped at its own ticks, without the world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sim.policies.base import MetricValue, Observation, Policy, Routes, SetWeights
from sim.policies.judges import JudgeData


def drive(
    policy: Policy,
    metrics: Sequence[Mapping[str, MetricValue]],
    webhooks: Mapping[str, bool] | None = None,
    versions: Sequence[JudgeData | None] | None = None,
) -> list[tuple[Any, tuple]]:
    """(state, actions) per tick, one tick per entry of ``metrics``.

    Ticks come at ``policy.next_tick``, and the run stops early when that is None (a
    terminal phase). The routes the policy sees are its last ``SetWeights`` read back.
    ``versions``, when given, is the judge data of each tick. Tests that need more of the
    world (readiness, rollbacks resetting the routes, ticks after the end) keep their own
    driver: see tests/policies/test_flagger.py.
    """
    state, routes, t, out = policy.initial_state(), Routes(), 0.0, []
    for n, m in enumerate(metrics, 1):
        nt = policy.next_tick(state, t)
        if nt is None:
            break
        t = nt
        obs = Observation(t, n, m, routes, webhooks=webhooks or {}, versions=versions[n - 1] if versions else None)
        state, actions = policy.step(state, obs)
        routes = next((Routes(a.canary_weight) for a in actions if isinstance(a, SetWeights)), routes)
        out.append((state, actions))
    return out
