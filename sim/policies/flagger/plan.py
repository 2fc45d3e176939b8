"""What one Flagger tick needs that depends only on the spec, derived once per policy.

``FlaggerCanary.step`` runs at every tick of every simulated rollout, so the parameters
Flagger derives from the Canary (the strategy,
the hooks of each type, the metric checks with their bounds) are worked out once, on
first use, into a :class:`FlaggerPlan` the policy caches. The plan holds plain data and
immutable actions only, so a policy stays picklable (joblib/loky, Dask) with or without
it, and the actions it hands out may be shared between ticks and rollouts.
"""

from __future__ import annotations

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
    """One webhook, the records of calling it (``ok`` True or False), and how its HTTP
    client retries (``pkg/controller/webhook.go`` ``newHTTPClient``: go-retryablehttp with
    ``RetryMax = retries`` and a per-attempt ``Timeout``)."""

    name: str
    kind: str
    default: bool  # outcome when the observation scripts neither its name nor its type
    load: tuple[float, float]  # load tester's (requests/s, seconds); (0, 0) for none
    passed: HookCalled
    failed: HookCalled
    timeout_s: float  # per attempt; inf for "0s" (Go's http.Client: no timeout)
    retries: int
    retry_failures: bool  # a scripted failure is a 5xx (retried), not a gate's 403
    attempt_failed: HookCalled  # a failed attempt that is retried (no load test started)


#: Hooks whose failure is an answer, not an outage: Flagger's load tester closes a gate or
#: a rollback check with 403 Forbidden (``pkg/loadtester/server.go``), which
#: go-retryablehttp does not retry (``baseRetryPolicy``: only errors, 429 and 5xx but 501).
#: Other hooks fail with a server error (the load tester's 500 for a failed task): retried.
_GATES = frozenset({"confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"})
#: go-retryablehttp's ``defaultRetryWaitMin`` and ``defaultRetryWaitMax`` (seconds).
RETRY_WAIT_MIN_S, RETRY_WAIT_MAX_S = 1.0, 30.0


def retry_wait(attempt: int) -> float:
    """go-retryablehttp ``DefaultBackoff``: the wait before retry ``attempt + 1``,
    ``2**attempt`` times the minimum wait, at most the maximum (no Retry-After modelled)."""
    return min(RETRY_WAIT_MAX_S, RETRY_WAIT_MIN_S * 2.0**attempt)


class Check(NamedTuple):
    """One metric check in Flagger's order, its bounds as compared and its messages.

    For ``request-duration`` the value and the bounds are compared as Go durations in
    nanoseconds (``go_duration_ms``): the observer converts the value with
    ``time.Duration(int64(value)) * time.Millisecond`` (``int64(value*1000)`` for a
    query in seconds, ``unit_ms`` 1000) and the check its bounds with
    ``time.Duration(bound) * time.Millisecond`` (``scheduler_metrics.go``
    ``runBuiltinMetricChecks``): both truncated to whole milliseconds.
    """

    name: str
    judged: bool  # a builtin whose threshold check the judge takes over
    truncate: bool  # request-duration: compare Go durations (lo and hi in ns)
    lo: float | None
    hi: float | None
    lo_text: str  # the bound in the failure message (ms for a duration)
    hi_text: str
    no_values: str  # the message when the query returned nothing or NaN (ErrNoValuesFound)
    query_failed: str  # the message's start when the query failed (any other error)
    unit_ms: float = 1.0  # request-duration: milliseconds per unit of the query's value


class FlaggerPlan(NamedTuple):
    """The spec-derived parameters of ``advanceCanary``, in the policy's own terms."""

    skip_analysis: bool
    interval_s: float
    threshold: int
    kubernetes: bool
    mirror: bool
    mirror_routes: bool  # the provider's router mirrors and GetRoutes reports it (mirrors_traffic)
    mirror_weights: SetWeights  # the mirroring step's action
    strategy: str
    iterations: int
    max_weight: int
    fixed_step: int | None  # nextStepWeight when it does not depend on the weight
    step_weight_promotion: int
    deadline_s: float
    primary_ready_threshold: int  # percent of updated pods that must be available
    canary_ready_threshold: int
    suspended: bool  # spec.suspend: advanceCanary returns at once
    legacy_failed_promotion: bool  # before 1.44 a promotion whose primary fails rolls back
    skip_post_rollout: bool  # before 1.44 skipAnalysis ran no post-rollout hooks
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
        h.timeout if h.timeout > 0 else float("inf"),
        max(0, h.retries),
        kind not in _GATES,
        HookCalled(h.name, kind, False),
    )


def mirrors_traffic(provider: str, iterations: int) -> bool:
    """Whether Flagger's router for ``provider`` mirrors traffic when asked to and reports
    it back (``GetRoutes``' ``mirrored``), as ``pkg/router/factory.go`` ``MeshRouter``
    picks the router.

    Only two routers do: ``IstioRouter`` (``istio``, and any provider the factory does not
    know, which falls back to Istio) always; ``GatewayAPIRouter`` and
    ``GatewayAPIV1Beta1Router`` (``gatewayapi:v1...``) only for blue/green
    (``SetRoutes`` adds the mirror filter when ``mirrored && Iterations > 0``). Every other
    router ignores ``mirrored`` and ``GetRoutes`` returns false, so a canary with
    ``mirror: true`` repeats its first (mirroring) step forever at weight 0.
    """
    if provider.startswith("gatewayapi:v1"):
        return iterations > 0
    return provider not in _OTHER_ROUTERS and not provider.startswith(_OTHER_ROUTERS_PREFIX)


def istio_router(provider: str) -> bool:
    """Whether ``pkg/router/factory.go`` ``MeshRouter`` gives ``provider`` Istio's router
    (``istio``, and any provider it does not know)."""
    return (
        provider not in _OTHER_ROUTERS
        and not provider.startswith(_OTHER_ROUTERS_PREFIX)
        and not provider.startswith("gatewayapi")
    )


def sticky_sessions(provider: str) -> bool:
    """Whether the router writes ``analysis.sessionAffinity``'s cookie routes: Istio's
    (``pkg/router/istio.go`` ``getSessionAffinityRouteRules``) and the Gateway API ones
    (``gateway_api.go``, ``gateway_api_v1beta1.go``); the others route by weight only."""
    return istio_router(provider) or provider.startswith("gatewayapi")


#: Providers whose router (``MeshRouter``) is not Istio's and never mirrors: by name...
_OTHER_ROUTERS = frozenset(
    {"appmesh", "linkerd", "contour", "knative", "nginx", "skipper", "traefik", "apisix", "osm", "kuma", "kubernetes"}
)
#: ... and by prefix (``appmesh:v1beta2``, ``smi:v1alpha1:<mesh>``, ``gloo``...).
_OTHER_ROUTERS_PREFIX = ("appmesh:v1beta2", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "gloo")


def go_duration_ms(value: float) -> int:
    """``time.Duration(int64(value)) * time.Millisecond`` in nanoseconds, as Go computes it
    on amd64: the conversion truncates toward zero, and a NaN, an infinity or a value out
    of int64's range converts to the "integer indefinite" -2**63 (CVTTSD2SQ); the product
    wraps around in 64 bits (so +Inf reads as 0 ns)."""
    if -(2.0**63) <= value < 2.0**63:  # False for NaN
        whole = int(value)
    else:
        whole = -(2**63)
    return (whole * 1_000_000 + 2**63) % 2**64 - 2**63


def duration_unit_ms(provider: str) -> float:
    """Milliseconds per unit of the ``request-duration`` builtin's value for ``provider``.

    ``pkg/metrics/observers/factory.go`` ``Observer`` picks ``HttpObserver`` for
    ``kubernetes`` and ``gatewayapi*``: its query returns seconds and it converts with
    ``int64(value*1000)`` (``http.go`` ``GetRequestDuration``); every other observer's
    query returns milliseconds (``int64(value)``).
    """
    return 1000.0 if provider == "kubernetes" or provider.startswith("gatewayapi") else 1.0


def unit_ms(provider: str, q: MetricQuery) -> float:
    """Milliseconds per unit of a ``request-duration`` check's value: the observer's
    (``duration_unit_ms``) when the builtin's PromQL is evaluated (``q.query`` set); a
    builtin without PromQL is a hand-bound p99, in milliseconds whatever the provider."""
    return duration_unit_ms(provider) if q.query else 1.0


#: The start of the event when a query fails (not "no values"), by kind of check
#: (``scheduler_metrics.go``: ``runBuiltinMetricChecks`` for builtins and inline queries,
#: ``runMetricChecks`` for templates).
_QUERY_FAILED = {
    "builtin": "Prometheus query failed: running query failed: ",
    "query": "Prometheus query failed for {name}: ",
    "template": "Metric query failed for {name}: ",
}


def _check(kind: str, q: MetricQuery, judged: bool, unit_ms: float) -> Check:
    lo, hi = q.min, q.max
    truncate = q.signal == "request-duration"
    if truncate:
        lo = None if lo is None else float(go_duration_ms(lo))
        hi = None if hi is None else float(go_duration_ms(hi))
    scale = 1e6 if truncate else 1.0  # the message shows milliseconds
    return Check(
        q.name,
        judged,
        truncate,
        lo,
        hi,
        "" if lo is None else f"{lo / scale:g}",
        "" if hi is None else f"{hi / scale:g}",
        f"Halt advancement no values found for metric {q.name}",
        _QUERY_FAILED[kind].format(name=q.name.removesuffix("#template")),
        unit_ms if truncate else 1.0,
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

    mirrors = mirrors_traffic(spec.provider, spec.iterations())

    return FlaggerPlan(
        skip_analysis=spec.analysis is None or spec.skipAnalysis,
        interval_s=a.analysis_interval,
        threshold=a.analysis_threshold,
        kubernetes=spec.provider == "kubernetes",
        mirror=bool(a.mirror),
        mirror_routes=mirrors,
        # A router that cannot mirror sets the weights it is given: 100/0.
        mirror_weights=SetWeights(0, mirrored=True, mirror_percent=mirror_percent) if mirrors else set_weights(0),
        strategy=spec.strategy(),
        iterations=spec.iterations(),
        max_weight=max_weight,
        fixed_step=a.stepWeight if a.stepWeight > 0 or not a.stepWeights else None,
        step_weight_promotion=a.stepWeightPromotion,
        deadline_s=spec.progressDeadlineSeconds,
        primary_ready_threshold=a.primary_ready_threshold,
        canary_ready_threshold=a.canary_ready_threshold,
        suspended=spec.suspend,
        legacy_failed_promotion=spec.controller_version() < (1, 44),
        skip_post_rollout=spec.controller_version() < (1, 44),
        checks=tuple(
            _check(kind, q, kind == "builtin" and q.signal in judged, unit_ms(spec.provider, q)) for kind, q in checks
        ),
        confirm_rollout=hooks("confirm-rollout"),
        pre_rollout=hooks("pre-rollout"),
        rollout=hooks("rollout"),
        confirm_traffic_increase=hooks("confirm-traffic-increase"),
        confirm_promotion=hooks("confirm-promotion"),
        post_rollout=hooks("post-rollout"),
        rollback=hooks("rollback"),
    )
