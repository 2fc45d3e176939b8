"""Argo Rollouts analyses resolved for the policy, and the replica arithmetic of a
basic canary.

``resolve_analysis`` turns an ``analysis`` block (templates, args, dryRun) into the metric
specs ``sim.policies.argo.analysis_run`` runs; ``replica_counts`` is ``utils/replicaset/canary.go``
``approximateWeightedCanaryStableReplicaCounts``, which sets a canary's traffic share when
no traffic router does.
"""

from __future__ import annotations

import math
import re

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.spec import ArgoMetric, ArgoPolicySpec, RolloutAnalysis, substitute
from sim.units import parse_duration


def resolve_analysis(
    spec: ArgoPolicySpec, analysis: RolloutAnalysis
) -> tuple[tuple[ar.MetricSpec, ...], dict[str, ArgoMetric]]:
    """One ``analysis`` block of a rollout as AnalysisRun metric specs: its templates
    flattened, ``{{args.x}}`` substituted (an argument without a value stays symbolic,
    ``<x>``), counts and durations parsed, dry-run patterns matched as Go's
    ``regexp.MatchString`` does. Returns the specs and the metrics with their providers'
    arguments substituted.

    Raises:
        ValueError: naming the metric whose count, limit or duration is not valid.
    """
    metrics: dict[str, ArgoMetric] = {}
    args: dict[str, str] = {}
    dry = {d.metricName for d in analysis.dryRun}
    for ref in analysis.templates:
        t = (spec.clusterTemplates if ref.clusterScope else spec.templates)[ref.templateName]
        args.update({a.name: a.value for a in t.args if a.value is not None})
        dry |= {d.metricName for d in t.dryRun}
        for m in t.metrics:
            metrics[m.name] = m
    args.update({a.name: a.value if a.value is not None else f"<{a.name}>" for a in analysis.args})
    specs = []
    for name, m in metrics.items():

        def num(v: int | str | None, default: int) -> int:
            if v is None:
                return default
            text = substitute(str(v), args)
            try:
                return int(text)
            except ValueError:
                raise ValueError(
                    f"{v!r} is not a whole number once arguments are substituted "
                    f"(got {text!r}; is an argument missing a value?)"
                ) from None

        try:
            metric_spec = ar.MetricSpec(
                name=name,
                interval_s=_seconds(m.interval, args),
                initial_delay_s=_seconds(m.initialDelay, args) or 0.0,
                count=num(m.count, 0) or None,
                failure_limit=num(m.failureLimit, 0),
                inconclusive_limit=num(m.inconclusiveLimit, 0),
                consecutive_error_limit=num(m.consecutiveErrorLimit, ar.DEFAULT_CONSECUTIVE_ERROR_LIMIT),
                consecutive_success_limit=num(m.consecutiveSuccessLimit, 0),
                success_condition=substitute(m.successCondition, args) if m.successCondition else None,
                failure_condition=substitute(m.failureCondition, args) if m.failureCondition else None,
                dry_run=any(re.search(p, name) for p in dry),  # Go regexp.MatchString
                provider=m.provider_type,
            )
        except (ValueError, re.error) as err:
            raise ValueError(f"metric {name!r}: {err}") from None
        specs.append(metric_spec)
        metrics[name] = m.model_copy(update={"provider": _subst_tree(m.provider, args)})
    return tuple(specs), metrics


def max_surge(c, replicas: int) -> int:
    """``maxSurge`` in pods (default 25%, rounded up)."""
    v = (c.model_extra or {}).get("maxSurge", "25%")
    if isinstance(v, str) and v.endswith("%"):
        return math.ceil(replicas * float(v[:-1]) / 100)
    return int(v)


def replica_counts(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """Canary and stable pods approximating ``weight`` percent (utils/replicaset/canary.go,
    ``approximateWeightedCanaryStableReplicaCounts``): the candidates rounding the canary
    count up or down, with one surge pod when allowed, the closest to the weight wins."""

    def tied(total: int) -> bool:
        return math.modf(total * weight / 100)[0] == 0.5

    def delta(canary: int, total: int) -> float:
        return abs(canary * 100 / total - weight)

    ceil_c, floor_c = math.ceil(replicas * weight / 100), math.floor(replicas * weight / 100)
    zero_ok = weight in (0, 100) or (replicas == 1 and max_surge == 0)
    options = []
    if ceil_c < replicas or zero_ok:
        options.append((ceil_c, replicas))
    if not tied(replicas) and (floor_c != 0 or zero_ok):
        options.append((floor_c, replicas))
    if max_surge > 0:
        options.append((ceil_c, replicas + 1))
        if not tied(replicas + 1) and (floor_c != 0 or zero_ok):
            options.append((floor_c, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for opt in options[1:]:
        if delta(*opt) < delta(*best):
            best = opt
    return best[0], best[1] - best[0]


def _seconds(value: str | None, args: dict[str, str]) -> float | None:
    if value is None:
        return None
    return parse_duration(substitute(str(value), args))


def _subst_tree(node: object, args: dict[str, str]) -> object:
    if isinstance(node, str):
        return substitute(node, args)
    if isinstance(node, dict):
        return {k: _subst_tree(v, args) for k, v in node.items()}
    if isinstance(node, list):
        return [_subst_tree(v, args) for v in node]
    return node
