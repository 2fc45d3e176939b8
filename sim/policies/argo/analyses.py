"""Argo Rollouts analyses resolved for the policy.

``resolve_analysis`` turns an ``analysis`` block (templates, args, dryRun) into the metric
specs ``sim.policies.argo.analysis_run`` runs. It reads only the AnalysisTemplate models
(``sim.policies.argo.templates``), so the spec can check, when it is validated, that every
analysis resolves, without knowing the reconciler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.templates import ArgoMetric, RolloutAnalysis, TemplateSpec, substitute
from sim.units import parse_duration


def resolve_analysis(
    analysis: RolloutAnalysis,
    templates: Mapping[str, TemplateSpec],
    cluster_templates: Mapping[str, TemplateSpec],
    cluster: Mapping[str, str] | None = None,
) -> tuple[tuple[ar.MetricSpec, ...], dict[str, ArgoMetric]]:
    """One ``analysis`` block of a rollout as AnalysisRun metric specs: its templates
    flattened, ``{{args.x}}`` substituted (an argument without a value stays symbolic,
    ``<x>``), counts and durations parsed, dry-run patterns matched as Go's
    ``regexp.MatchString`` does. Returns the specs and the metrics with their providers'
    arguments substituted. ``templates`` and ``cluster_templates`` are the policy's
    AnalysisTemplates and ClusterAnalysisTemplates by name. ``cluster`` gives what a
    ``valueFrom`` reads from the cluster, keyed as ``value_from_key`` keys it (the rollout's
    pod-template hashes, name and namespace); others stay symbolic.

    Raises:
        ValueError: naming the metric whose count, limit or duration is not valid.
    """
    metrics: dict[str, ArgoMetric] = {}
    args: dict[str, str] = {}
    dry = {d.metricName for d in analysis.dryRun}
    for ref in analysis.templates:
        t = (cluster_templates if ref.clusterScope else templates)[ref.templateName]
        args.update({a.name: a.value for a in t.args if a.value is not None})
        dry |= {d.metricName for d in t.dryRun}
        for m in t.metrics:
            metrics[m.name] = m
    known = cluster or {}
    args.update(
        {
            a.name: a.value if a.value is not None else known.get(value_from_key(a.valueFrom), f"<{a.name}>")
            for a in analysis.args
        }
    )
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


def value_from_key(value_from: Mapping[str, object] | None) -> str:
    """The key of a Rollout argument's ``valueFrom`` in ``resolve_analysis``'s ``cluster``:
    ``podTemplateHashValue/Latest`` (the canary's ReplicaSet), ``podTemplateHashValue/Stable``,
    ``fieldRef/<fieldPath>`` (``metadata.name``, ``metadata.namespace``); "" for others
    (argo-rollouts ``utils/analysis/factory.go``, ``BuildArgumentsForRolloutAnalysisRun``)."""
    if not value_from:
        return ""
    if value_from.get("podTemplateHashValue") in ("Latest", "Stable"):
        return f"podTemplateHashValue/{value_from['podTemplateHashValue']}"
    ref = value_from.get("fieldRef")
    if isinstance(ref, Mapping) and ref.get("fieldPath") in ("metadata.name", "metadata.namespace"):
        return f"fieldRef/{ref['fieldPath']}"
    return ""
