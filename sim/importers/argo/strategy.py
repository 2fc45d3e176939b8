"""The Rollout's strategy in an Argo bundle: strict keys of every step, router and
analysis block, the analyses it runs and the templates each one resolves to."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sim.importers.argo.fields import (
    ANALYSIS_KEYS,
    ARG_KEYS,
    BACKGROUND_KEYS,
    BLUE_GREEN_KEYS,
    CANARY_KEYS,
    COUNT_FIELDS,
    DURATION_FIELDS,
    HEADER_MATCH_KEYS,
    HEADER_ROUTE_KEYS,
    HEADER_ROUTERS,
    MIRROR_ROUTE_KEYS,
    MIRROR_ROUTERS,
    REF_KEYS,
    ROUTE_MATCH_KEYS,
    ROUTERS,
    ROUTING_KEYS,
    RUN_VALUE_FROM_KEYS,
    STEP_KEYS,
    STRING_MATCH_KEYS,
    SYMBOLIC,
    WHY,
    Warnings,
    as_list,
    check_keys,
    field_location,
    go_duration,
    whole_number,
)
from sim.importers.argo.templates import Template, Templates, flatten_args, flatten_order, template_warnings
from sim.importers.manifests import error_at
from sim.inputs.validation import validation_to_input_error
from sim.policies.argo.analyses import value_from_key
from sim.policies.argo.spec import RolloutAnalysis, Strategy, substitute
from sim.yamlio import YamlDoc

# --- the Rollout's strategy -----------------------------------------------------------------------


@dataclass
class _Analysis:
    """One ``analysis`` block of the strategy: where it is, as written, as validated."""

    doc: YamlDoc
    loc: tuple[Any, ...]
    raw: Mapping[str, Any]
    model: RolloutAnalysis


def _check_analysis_keys(doc: YamlDoc, loc: tuple[Any, ...], a: Any, background: bool, out: Warnings) -> None:
    if not isinstance(a, Mapping):
        return
    check_keys(
        doc,
        loc,
        a,
        BACKGROUND_KEYS if background else ANALYSIS_KEYS,
        "RolloutAnalysisBackground" if background else "RolloutAnalysis",
    )
    for i, ref in enumerate(as_list(a.get("templates"))):
        check_keys(doc, loc + ("templates", i), ref, REF_KEYS, "AnalysisTemplateRef")
    for i, arg in enumerate(as_list(a.get("args"))):
        check_keys(doc, loc + ("args", i), arg, ARG_KEYS, "AnalysisRunArgument")
        if not isinstance(arg, Mapping):
            continue
        vf = arg.get("valueFrom")
        check_keys(doc, loc + ("args", i, "valueFrom"), vf, RUN_VALUE_FROM_KEYS, "ArgumentValueFrom")
        # The Rollout's pod-template hashes, name and namespace are the simulated cluster's
        # (sim.policies.argo.analyses, value_from_key); anything else stays symbolic.
        if vf is not None and arg.get("value") is None and not value_from_key(vf if isinstance(vf, Mapping) else None):
            out.add(doc, loc + ("args", i, "valueFrom"), WHY["valueFrom"].format(value=f"<{arg.get('name')}>"))


def _check_string_match(doc: YamlDoc, loc: tuple[Any, ...], node: Any) -> None:
    check_keys(doc, loc, node, STRING_MATCH_KEYS, "StringMatch")
    if node is None or (isinstance(node, Mapping) and len([k for k in STRING_MATCH_KEYS if node.get(k)]) != 1):
        raise error_at(doc, loc, "a match value needs exactly one of exact, prefix or regex")


def _check_traffic_routing(doc: YamlDoc, loc: tuple[Any, ...], tr: Mapping[str, Any], out: Warnings) -> None:
    check_keys(doc, loc, tr, ROUTING_KEYS, "RolloutTrafficRouting")
    mtw = tr.get("maxTrafficWeight")
    if mtw is not None and mtw != 100:
        out.add(doc, loc + ("maxTrafficWeight",), WHY["maxTrafficWeight"])
    alb = tr.get("alb")
    sticky = alb.get("stickinessConfig") if isinstance(alb, Mapping) else None
    if isinstance(sticky, Mapping) and sticky.get("enabled") is True:
        out.add(doc, loc + ("alb", "stickinessConfig"), WHY["stickiness"])
    nginx = tr.get("nginx")
    if isinstance(nginx, Mapping):
        for key in ("additionalIngressAnnotations", "canaryIngressAnnotations"):
            annotations = nginx.get(key)
            for name in annotations if isinstance(annotations, Mapping) else ():
                if str(name).rsplit("/", 1)[-1].startswith("canary-by-"):
                    out.add(doc, loc + ("nginx", key, name), WHY["nginx_canary_by"])


def _check_canary(doc: YamlDoc, loc: tuple[Any, ...], canary: Any, out: Warnings) -> list[int]:
    """Keys, refused steps and warnings of a ``CanaryStrategy``; the indexes of plugin steps."""
    if not isinstance(canary, Mapping):
        return []
    check_keys(doc, loc, canary, CANARY_KEYS, "CanaryStrategy")
    tr = canary.get("trafficRouting")
    if isinstance(tr, Mapping):
        _check_traffic_routing(doc, loc + ("trafficRouting",), tr, out)
    else:
        tr = None
    if canary.get("dynamicStableScale") is True:
        out.add(doc, loc + ("dynamicStableScale",), WHY["dynamicStableScale"])
    threshold = canary.get("replicaProgressThreshold")
    if isinstance(threshold, Mapping) and not (threshold.get("type") == "Percent" and threshold.get("value") == 100):
        out.add(doc, loc + ("replicaProgressThreshold",), WHY["replicaProgressThreshold"])
    plugins = []
    for i, step in enumerate(as_list(canary.get("steps"))):
        here = loc + ("steps", i)
        check_keys(doc, here, step, STEP_KEYS, "CanaryStep")
        if not isinstance(step, Mapping):
            continue
        _check_experiment(doc, here + ("experiment",), step.get("experiment"), tr)  # issue 16
        if step.get("plugin") is not None and len(step) == 1:
            out.add(doc, here + ("plugin",), WHY["plugin"])
            plugins.append(i)
        routers = [k for k in ROUTERS if tr is not None and tr.get(k)]
        if step.get("setCanaryScale") is not None and tr is None:
            raise error_at(
                doc,
                here + ("setCanaryScale",),
                "setCanaryScale needs spec.strategy.canary.trafficRouting "
                "(Argo rejects the Rollout: SetCanaryScale requires TrafficRouting to be set)",
            )
        route = step.get("setHeaderRoute")
        if route is not None:
            if not any(r in routers for r in HEADER_ROUTERS):
                raise error_at(
                    doc,
                    here + ("setHeaderRoute",),
                    "setHeaderRoute needs trafficRouting with "
                    f"{', '.join(HEADER_ROUTERS)} (Argo rejects the Rollout otherwise)",
                )
            check_keys(doc, here + ("setHeaderRoute",), route, HEADER_ROUTE_KEYS, "SetHeaderRoute")
            for j, match in enumerate(as_list(route.get("match") if isinstance(route, Mapping) else None)):
                mloc = here + ("setHeaderRoute", "match", j)
                check_keys(doc, mloc, match, HEADER_MATCH_KEYS, "HeaderRoutingMatch")
                if isinstance(match, Mapping):
                    _check_string_match(doc, mloc + ("headerValue",), match.get("headerValue"))
        route = step.get("setMirrorRoute")
        if route is not None:
            if not any(r in routers for r in MIRROR_ROUTERS):
                raise error_at(
                    doc,
                    here + ("setMirrorRoute",),
                    "setMirrorRoute needs trafficRouting with "
                    f"{', '.join(MIRROR_ROUTERS)} (Argo rejects the Rollout otherwise)",
                )
            check_keys(doc, here + ("setMirrorRoute",), route, MIRROR_ROUTE_KEYS, "SetMirrorRoute")
            matches = as_list(route.get("match") if isinstance(route, Mapping) else None)
            for j, match in enumerate(matches):
                check_keys(doc, here + ("setMirrorRoute", "match", j), match, ROUTE_MATCH_KEYS, "RouteMatch")
            if any(isinstance(m, Mapping) and any(m.get(k) for k in ROUTE_MATCH_KEYS) for m in matches):
                out.add(doc, here + ("setMirrorRoute", "match"), WHY["mirror_match"])
        _check_analysis_keys(doc, here + ("analysis",), step.get("analysis"), False, out)
    _check_analysis_keys(doc, loc + ("analysis",), canary.get("analysis"), True, out)
    return plugins


#: ``RolloutExperimentStep``, ``RolloutExperimentTemplate``, ``RolloutExperimentStepAnalysisTemplateRef``.
EXPERIMENT_KEYS = frozenset(
    {"templates", "duration", "analyses", "dryRun", "analysisRunMetadata", "scaleDownDelaySeconds"}
)
EXPERIMENT_TEMPLATE_KEYS = frozenset({"name", "specRef", "replicas", "metadata", "selector", "weight", "service"})
EXPERIMENT_ANALYSIS_KEYS = frozenset({"name", "templateName", "clusterScope", "args", "requiredForCompletion"})
#: Routers that take an experiment template's weight (``validation.go``, ``ValidateRolloutStrategyCanary``).
EXPERIMENT_WEIGHT_ROUTERS = ("alb", "smi", "istio", "plugins")


def _check_experiment(doc: YamlDoc, loc: tuple[Any, ...], ex: Any, tr: Mapping[str, Any] | None) -> None:
    """Strict keys of an ``experiment`` step; a template ``weight`` only with a traffic
    router that takes one (Argo rejects the Rollout otherwise)."""
    if ex is None:
        return
    check_keys(doc, loc, ex, EXPERIMENT_KEYS, "RolloutExperimentStep")
    if not isinstance(ex, Mapping):
        return
    for j, t in enumerate(as_list(ex.get("templates"))):
        check_keys(doc, loc + ("templates", j), t, EXPERIMENT_TEMPLATE_KEYS, "RolloutExperimentTemplate")
        if isinstance(t, Mapping) and t.get("weight") is not None:
            if tr is None:
                raise error_at(
                    doc,
                    loc + ("templates", j, "weight"),
                    "Experiment template weight cannot be set unless TrafficRouting is enabled "
                    "(Argo rejects the Rollout)",
                )
            if not any(tr.get(k) for k in EXPERIMENT_WEIGHT_ROUTERS):
                raise error_at(
                    doc,
                    loc + ("templates", j, "weight"),
                    "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and "
                    "Plugins (Argo rejects the Rollout)",
                )
    for j, a in enumerate(as_list(ex.get("analyses"))):
        here = loc + ("analyses", j)
        check_keys(doc, here, a, EXPERIMENT_ANALYSIS_KEYS, "RolloutExperimentStepAnalysisTemplateRef")
        for k, arg in enumerate(as_list(a.get("args") if isinstance(a, Mapping) else None)):
            check_keys(doc, here + ("args", k), arg, ARG_KEYS, "AnalysisRunArgument")


def _check_blue_green(doc: YamlDoc, loc: tuple[Any, ...], bg: Any, out: Warnings) -> None:
    if not isinstance(bg, Mapping):
        return
    check_keys(doc, loc, bg, BLUE_GREEN_KEYS, "BlueGreenStrategy")
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        _check_analysis_keys(doc, loc + (key,), bg.get(key), False, out)


def _analyses(doc: YamlDoc, loc: tuple[Any, ...], raw: Mapping[str, Any], strategy: Strategy) -> list[_Analysis]:
    """Every analysis block of a validated strategy, with where it was written."""
    out = []
    if strategy.canary is not None:
        c, rc = strategy.canary, raw["canary"]
        if c.analysis is not None:
            out.append(_Analysis(doc, loc + ("canary", "analysis"), rc["analysis"], c.analysis))
        for i, st in enumerate(c.steps):
            if st.analysis is not None:
                out.append(
                    _Analysis(doc, loc + ("canary", "steps", i, "analysis"), rc["steps"][i]["analysis"], st.analysis)
                )
            if st.experiment is not None:  # issue 16: an Experiment's AnalysisRuns
                for j, model in enumerate(st.experiment.rollout_analyses()):
                    here = loc + ("canary", "steps", i, "experiment", "analyses", j)
                    out.append(_Analysis(doc, here, rc["steps"][i]["experiment"]["analyses"][j], model))
    else:
        bg, rbg = strategy.blueGreen, raw["blueGreen"]
        for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
            a = getattr(bg, key)
            if a is not None:
                out.append(_Analysis(doc, loc + ("blueGreen", key), rbg[key], a))
    return out


def _resolve_analysis(a: _Analysis, templates: Templates, out: Warnings) -> list[Template]:
    """Resolve an analysis as the controller creates its AnalysisRun; check what the
    controller would reject, or what pdsim could not compute; return its templates.

    Raises:
        InputError: a template that is not given; two metrics with one name; an
            argument without a value; a count or duration that is not one once the
            arguments are in; a dryRun rule that matches no metric.
    """
    used: list[Template] = []
    direct: list[Template] = []
    for i, ref in enumerate(a.model.templates):
        t = templates.lookup(ref.templateName, ref.clusterScope, a.doc, a.loc + ("templates", i, "templateName"))
        direct.append(t)
        used += templates.closure(t)
    if not used:
        return []
    ordered = flatten_order(used)
    where = field_location(a.doc, a.loc)
    # flattenMetrics: one name per metric in a run.
    seen: dict[str, Template] = {}
    for t in ordered:
        for j, m in enumerate(t.model.metrics):
            other = seen.setdefault(m.name, t)
            if other is not t:
                raise error_at(
                    t.doc,
                    t.loc + ("metrics", j, "name"),
                    f"metric {m.name!r} is also defined by "
                    f"{other.kind} {other.name!r} ({other.where}); the analysis at {where} combines both "
                    "and Argo refuses two metrics with the same name",
                    got=m.name,
                )
    # flattenArgs + MergeArgs: every argument needs a value.
    flat = flatten_args(ordered)
    incoming = {arg.name: arg for arg in a.model.args}
    for name, (t, i, arg) in flat.items():
        given = incoming.get(name)
        if (
            arg.get("value") is None
            and arg.get("valueFrom") is None
            and (given is None or (given.value is None and given.valueFrom is None))
        ):
            loc = a.loc + ("args",) if a.raw.get("args") else a.loc
            raise error_at(
                a.doc,
                loc,
                f"argument {name!r} of {t.kind} {t.name!r} ({field_location(t.doc, t.loc + ('args', i))}) "
                f"has no value: give it in this analysis's args (Argo: args.{name} was not resolved)",
            )
    # The values pdsim substitutes (ArgoRollout: template values, then the analysis's own;
    # valueFrom stays symbolic).
    values: dict[str, str] = {}
    for t in direct:
        for _, _, raw_arg in flatten_args(flatten_order(templates.closure(t))).values():
            if raw_arg.get("value") is not None:
                values[raw_arg["name"]] = raw_arg["value"]
    for run_arg in a.model.args:
        values[run_arg.name] = run_arg.value if run_arg.value is not None else f"<{run_arg.name}>"
    note = f" with the arguments of the analysis at {where}"
    for t in ordered:
        for j, m in enumerate(t.raw.get("metrics") or []):
            for key in DURATION_FIELDS + COUNT_FIELDS:
                value = m.get(key)
                if not isinstance(value, str) or "{{" not in value:
                    continue
                text = substitute(value, values)
                loc = t.loc + ("metrics", j, key)
                if SYMBOLIC.search(text):
                    raise error_at(
                        t.doc,
                        loc,
                        f"is {text!r}{note}: an argument from valueFrom is only known in "
                        "the cluster; pdsim needs a literal value here",
                        got=value,
                    )
                if key in DURATION_FIELDS:
                    go_duration(t.doc, loc, text, f" ({text!r}{note})")
                else:
                    whole_number(t.doc, loc, text, f" ({text!r}{note})")
    # dryRun rules (mergeDryRunMetrics, GetDryRunMetrics).
    names = [m.name for t in ordered for m in t.model.metrics]
    rules = [(a.doc, a.loc + ("dryRun", i), d.metricName) for i, d in enumerate(a.model.dryRun)]
    rules += [(t.doc, t.loc + ("dryRun", i), d.metricName) for t in ordered for i, d in enumerate(t.model.dryRun)]
    seen_rules: dict[str, str] = {}
    for doc, loc, pattern in rules:
        if pattern in seen_rules:
            raise error_at(
                doc,
                loc + ("metricName",),
                f"a second dryRun rule {pattern!r} (the first is at "
                f"{seen_rules[pattern]}); Argo refuses two rules with the same name",
                got=pattern,
            )
        seen_rules[pattern] = field_location(doc, loc)
        try:
            rx = re.compile(pattern)
        except re.error as err:
            raise error_at(doc, loc + ("metricName",), f"not a regular expression: {err}", got=pattern) from None
        # Go regexp.MatchString, as Argo matches (GetDryRunMetrics) and as the policy does
        # (resolve_analysis): "success" dry-runs "success-rate" too, so nothing to warn about.
        hits = [n for n in names if rx.search(n)]
        if not hits:
            raise error_at(
                doc,
                loc + ("metricName",),
                f"matches no metric of the analysis at {where} "
                f"({', '.join(names) or 'none'}); Argo ends every such AnalysisRun in Error",
                got=pattern,
            )
    return ordered


def check_strategy(doc: YamlDoc, loc: tuple[Any, ...], raw: Mapping[str, Any], out: Warnings) -> dict[str, Any]:
    """Strict keys, refused steps and warnings of a ``strategy``; the strategy for the
    policy (plugin steps become ``pause: {duration: 0}``, which keeps step indexes)."""
    check_keys(doc, loc, raw, frozenset({"canary", "blueGreen"}), "RolloutStrategy")
    plugins = _check_canary(doc, loc + ("canary",), raw.get("canary"), out)
    _check_blue_green(doc, loc + ("blueGreen",), raw.get("blueGreen"), out)
    strategy = copy.deepcopy(dict(raw))
    for i in plugins:
        strategy["canary"]["steps"][i] = {"pause": {"duration": 0}}
    return strategy


def validate_strategy(doc: YamlDoc, loc: tuple[Any, ...], strategy: dict[str, Any]) -> Strategy:
    """The checked strategy (``check_strategy``) as a model; an error at its line in ``doc``."""
    try:
        return Strategy.model_validate(strategy)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=loc) from None


def resolve_analyses(
    doc: YamlDoc,
    loc: tuple[Any, ...],
    raw: Mapping[str, Any],
    strategy: Strategy,
    templates: Templates,
    out: Warnings,
) -> list[Template]:
    """Resolve every analysis of the strategy; warn for the templates they use."""
    used: list[Template] = []
    for a in _analyses(doc, loc, raw, strategy):
        for t in _resolve_analysis(a, templates, out):
            if t not in used:
                used.append(t)
    for t in used:
        template_warnings(t, out)
    return used
