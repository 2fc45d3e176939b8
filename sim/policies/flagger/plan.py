"""What one Flagger tick needs that depends only on the spec, derived once per policy.

``FlaggerCanary.step`` runs at every tick of every simulated rollout, so the parameters
Flagger derives from the Canary (the strategy,
the hooks of each type, the metric checks with their bounds) are worked out once, on
first use, into a :class:`FlaggerPlan` the policy caches. The plan holds plain data and
immutable actions only, so a policy stays picklable (joblib/loky, Dask) with or without
it, and the actions it hands out may be shared between ticks and rollouts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from sim.policies.base import Finish, HookCalled, MetricQuery, Promote, Routes, ScaleUp, SetWeights
from sim.policies.flagger.spec import FlaggerAnalysis, FlaggerPolicySpec, FlaggerWebhook

TOTAL_WEIGHT = 100

#: ``SetWeights(w)`` for every weight 0-100 (frozen, so one instance serves every tick).
_SET_WEIGHTS = tuple(SetWeights(w) for w in range(TOTAL_WEIGHT + 1))
#: The kubernetes provider's ``NopRouter.GetRoutes``: 0/100 until iterations > 0.
NOP_ROUTES = (Routes(0), Routes(TOTAL_WEIGHT))
SCALE_UP, PROMOTE = ScaleUp(), Promote()
FINISH_SUCCEEDED, FINISH_FAILED = Finish("Succeeded"), Finish("Failed")
MATCHED_ALL = SetWeights(TOTAL_WEIGHT, matched=True)


def set_weights(weight: int) -> SetWeights:
    """``SetWeights(weight)``, shared for the usual 0-100 integer weights."""
    if type(weight) is int and 0 <= weight <= TOTAL_WEIGHT:
        return _SET_WEIGHTS[weight]
    return SetWeights(weight)


class Hook(NamedTuple):
    """One webhook and the two records of calling it (``ok`` True or False)."""

    name: str
    kind: str
    default: bool  # outcome when the observation scripts neither its name nor its type
    load: tuple[float, float]  # load tester's (requests/s, seconds); (0, 0) for none
    passed: HookCalled
    failed: HookCalled


class Check(NamedTuple):
    """One metric check in Flagger's order, its bounds as compared and its messages.

    For ``request-duration`` the bounds are already truncated to whole milliseconds, as
    Flagger's ``time.Duration(bound)`` conversion does (the value is truncated per tick).
    """

    name: str
    judged: bool  # a builtin whose threshold check the judge takes over
    truncate: bool  # request-duration: compare whole milliseconds
    lo: float | None
    hi: float | None
    lo_text: str  # f"{lo:g}", for the failure message
    hi_text: str
    no_values: str  # the message when the query returned nothing or NaN


class FlaggerPlan(NamedTuple):
    """The spec-derived parameters of ``advanceCanary``, in the policy's own terms."""

    skip_analysis: bool
    interval_s: float
    threshold: int
    kubernetes: bool
    mirror: bool
    mirror_weights: SetWeights  # the mirroring step's action
    strategy: str
    iterations: int
    max_weight: int
    fixed_step: int | None  # nextStepWeight when it does not depend on the weight
    step_weight_promotion: int
    deadline_s: float
    checks: tuple[Check, ...]
    confirm_rollout: tuple[Hook, ...]
    pre_rollout: tuple[Hook, ...]
    rollout: tuple[Hook, ...]
    confirm_traffic_increase: tuple[Hook, ...]
    confirm_promotion: tuple[Hook, ...]
    post_rollout: tuple[Hook, ...]
    rollback: tuple[Hook, ...]


def _hook(h: FlaggerWebhook) -> Hook:
    kind = h.kind
    load = h.load_test_rate() if kind in ("rollout", "pre-rollout") else None
    load = load or (0.0, 0.0)
    return Hook(
        h.name,
        kind,
        kind != "rollback",  # a rollback hook signals only when asked to
        load,
        HookCalled(h.name, kind, True, *load),
        HookCalled(h.name, kind, False, *load),
    )


def _check(q: MetricQuery, judged: bool) -> Check:
    lo, hi = q.min, q.max
    truncate = q.signal == "request-duration"
    if truncate:
        lo = None if lo is None else float(math.trunc(lo))
        hi = None if hi is None else float(math.trunc(hi))
    return Check(
        q.name,
        judged,
        truncate,
        lo,
        hi,
        "" if lo is None else f"{lo:g}",
        "" if hi is None else f"{hi:g}",
        f"Halt advancement no values found for metric {q.name}",
    )


def build_plan(
    spec: FlaggerPolicySpec,
    checks: tuple[tuple[str, MetricQuery], ...],
    judged: frozenset[str],
    max_weight: int,
    mirror_percent: float,
) -> FlaggerPlan:
    """The plan of a policy: its spec, its metric checks in order (``(kind, query)``), the
    signals its judge takes over, and its ``max_weight()`` and mirroring percentage."""
    a = spec.analysis or FlaggerAnalysis()
    by_kind: dict[str, list[Hook]] = {}
    for h in a.webhooks:
        by_kind.setdefault(h.kind, []).append(_hook(h))

    def hooks(kind: str) -> tuple[Hook, ...]:
        return tuple(by_kind.get(kind, ()))

    return FlaggerPlan(
        skip_analysis=spec.analysis is None or spec.skipAnalysis,
        interval_s=a.analysis_interval,
        threshold=a.analysis_threshold,
        kubernetes=spec.provider == "kubernetes",
        mirror=bool(a.mirror),
        mirror_weights=SetWeights(0, mirrored=True, mirror_percent=mirror_percent),
        strategy=spec.strategy(),
        iterations=spec.iterations(),
        max_weight=max_weight,
        fixed_step=a.stepWeight if a.stepWeight > 0 or not a.stepWeights else None,
        step_weight_promotion=a.stepWeightPromotion,
        deadline_s=spec.progressDeadlineSeconds,
        checks=tuple(_check(q, kind == "builtin" and q.signal in judged) for kind, q in checks),
        confirm_rollout=hooks("confirm-rollout"),
        pre_rollout=hooks("pre-rollout"),
        rollout=hooks("rollout"),
        confirm_traffic_increase=hooks("confirm-traffic-increase"),
        confirm_promotion=hooks("confirm-promotion"),
        post_rollout=hooks("post-rollout"),
        rollback=hooks("rollback"),
    )
