"""How the world answers a policy's metric queries: PromQL over raw series, or a bound signal.

Every query with a Prometheus provider is evaluated as written (Flagger's builtins
rendered for the Canary's provider, MetricTemplates, Argo AnalysisTemplates) by the PromQL
engine over the series the provider's exporter publishes (``sim.world.exporters``), which
the traffic paths fill per version, response code and pod (``sim.world.series``). Nothing
is recognised or bound by shape.

A binding under the scenario's ``telemetry.metrics`` is what a metric of another provider
(Datadog, CloudWatch, ...) measures; on a Prometheus query it is the user's explicit
instruction and wins (a ``constant`` or ``series`` script, or a signal for a metric the
world does not export). A query that selects a metric name the exporter does not produce
reads no data, and is named in a load-time warning.

The plan is built once per (scenario, policy): queries are compiled once, and the universe
of series is cut to the ones some query selects (the others cannot change any result, so
the world does not simulate them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.inputs.scenario import MetricBinding, Scenario
from sim.policies.base import MetricTargets, Policy, QueryError
from sim.policies.names import rollout_hashes
from sim.promql import Labels, PromQLError, Query, compile_query
from sim.promql.parse import Selector
from sim.world import exporters
from sim.world.exporters import Universe, Workloads


@dataclass(frozen=True)
class MetricPlan:
    """What the world simulates and evaluates for a policy's metrics.

    Attributes:
        compiled: metric name -> its PromQL, compiled (evaluated over the series).
        bound: metric name -> the simulated signal a binding gives it.
        failing: metric name -> the error every evaluation of its query gives (a query
            Prometheus cannot parse).
        universe: the series to simulate (only those some query selects), or None when no
            query reads series.
        pods: pods of (primary, canary).
        warnings: load-time warnings (queries selecting metrics the world does not produce).
    """

    compiled: dict[str, Query]
    bound: dict[str, MetricBinding]
    failing: dict[str, QueryError]
    universe: Universe | None
    pods: tuple[int, int]
    warnings: tuple[str, ...]


_PLANS: dict[tuple[int, int], tuple[Scenario, Policy, MetricPlan]] = {}


def metric_plan(scenario: Scenario, policy: Policy, source: str | None = None) -> MetricPlan:
    """The plan of ``policy``'s metrics in ``scenario``, memoised by identity.

    Args:
        scenario: the world.
        policy: whose queries.
        source: the scenario's file, for error messages (default: the scenario's name).

    Raises:
        InputError: a metric of a provider other than Prometheus has no binding, or a query
            does not parse.
    """
    key = (id(scenario), id(policy))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is scenario and hit[1] is policy:
        return hit[2]
    plan = _build(scenario, policy, source or scenario.name)
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[key] = (scenario, policy, plan)
    return plan


def metric_warnings(scenario: Scenario, policy: Policy, source: str | None = None) -> list[str]:
    """Load-time warnings about ``policy``'s metrics in ``scenario`` (see the module doc).

    Raises:
        InputError: as ``metric_plan``, naming ``source``.
    """
    return list(metric_plan(scenario, policy, source).warnings)


def _build(scenario: Scenario, policy: Policy, source: str) -> MetricPlan:
    table = scenario.telemetry.metrics
    compiled: dict[str, Query] = {}
    bound: dict[str, MetricBinding] = {}
    failing: dict[str, QueryError] = {}
    for q in policy.queries():
        key = next((k for k in q.bindings if k in table), None)
        if key is not None:
            bound[q.name] = table[key]
        elif q.provider == "prometheus" and q.query:
            try:
                compiled[q.name] = compile_query(q.query)
            except PromQLError as e:
                # Prometheus answers such a query with bad_data at every evaluation: the
                # controller's check fails each time (Flagger), or errors (Argo).
                failing[q.name] = QueryError(f"bad_data: {e}")
        elif q.signal == "custom":
            raise InputError(
                source,
                None,
                "telemetry.metrics",
                f"metric {q.name!r} reads provider {q.provider!r}, which is not simulated: bind it to a "
                f"simulated signal under telemetry.metrics (by name: {' or '.join(q.bindings)})",
            )
    targets = policy.metric_targets()
    pods = _pods(scenario, targets)
    warnings = [
        f"metric {name!r}: its query is not valid PromQL, so every evaluation fails as Prometheus's would "
        f"({err.message})"
        for name, err in failing.items()
    ]
    if not compiled:
        return MetricPlan(compiled, bound, failing, None, pods, tuple(warnings))
    provider = _provider(scenario, targets, source)
    bounds = tuple(scenario.telemetry.buckets_ms) if "buckets_ms" in scenario.telemetry.model_fields_set else None
    # The application's business counters (issue 19) exist whatever the provider.
    full = exporters.universe(provider, _workloads(targets, provider), pods, bounds_ms=bounds, business=True)
    produced = exporters.produced_names(provider, business=True)
    for name, query in compiled.items():
        missing = sorted(query.metric_names - produced)
        if missing:
            warnings.append(
                f"metric {name!r}: its query selects {', '.join(missing)}, which the simulated {provider} "
                "exporter does not publish: those selectors read no series (bind the metric under "
                "telemetry.metrics to simulate it)"
            )
        empty = [
            _selector_text(sel)
            for sel in query.selectors
            if sel.name not in missing and not any(_matches(sel, labels) for labels in full.labels)
        ]
        if empty:
            warnings.append(
                f"metric {name!r}: {'; '.join(empty)} selects none of the series the simulated {provider} exporter "
                f"publishes for {targets.namespace}/{targets.target} (its labels name other workloads or "
                "services): it reads no data"
            )
    return MetricPlan(compiled, bound, failing, _selected(full, compiled.values()), pods, tuple(warnings))


def _matches(selector: Selector, labels: Labels) -> bool:
    """Whether a vector selector selects a series (a missing label is the empty value)."""
    have = dict(labels)
    return all(m.matches(have.get(m.name, "")) for m in selector.matchers)


def _selector_text(selector: Selector) -> str:
    inner = ",".join(f'{m.name}{m.op}"{m.value}"' for m in selector.matchers if m.name != "__name__")
    return f"{selector.name or ''}{{{inner}}}"


def _provider(scenario: Scenario, targets: MetricTargets, source: str) -> str:
    """The exporter whose series the queries read: the scenario's ``telemetry.provider``,
    else the policy's. Flagger falls back to Istio's observer for a provider it does not
    know (fluxcd/flagger ``pkg/metrics/observers/factory.go``, the default case), and so
    does the world for the policy's."""
    chosen = scenario.telemetry.provider
    if chosen is not None:
        try:
            exporters.exporter_of(chosen)
        except ValueError as e:
            raise InputError(source, None, "telemetry.provider", str(e), got=chosen) from None
        return chosen
    try:
        exporters.exporter_of(targets.provider)
    except ValueError:
        return "istio"
    return targets.provider


def _pods(scenario: Scenario, targets: MetricTargets) -> tuple[int, int]:
    """Pods of (primary, canary): the scenario's ``baseline.replicas``, else the policy's
    replicas, else one. The canary runs as many as the primary (Flagger scales the canary
    Deployment to the primary's replicas before analysing)."""
    n = scenario.baseline.replicas or targets.replicas or 1
    return n, n


def _workloads(t: MetricTargets, provider: str) -> Workloads:
    """The names the series carry, as the policy's controller names its objects."""
    if t.controller == "argo":
        stable, canary = rollout_hashes(t.target)
        return exporters.argo_workloads(
            t.target, t.namespace, t.canary_service, t.service, canary, stable, live_via_stable=t.live_via_stable
        )
    return exporters.flagger_workloads(
        t.target,
        t.namespace,
        service=t.service,
        ingress=t.ingress,
        route=t.route,
        knative=exporters.exporter_of(provider) == "knative",
    )


def _selected(u: Universe, queries: Iterable[Query]) -> Universe:
    """``u`` cut to the series some selector of ``queries`` selects."""
    selectors = [s for q in queries for s in q.selectors]
    keep = np.array([any(_matches(s, labels) for s in selectors) for labels in u.labels], dtype=bool)
    return u.take(np.flatnonzero(keep))
