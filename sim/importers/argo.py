"""Argo Rollouts manifests -> the pdsim ``argo:`` policy.

``import_argo`` reads the Kubernetes objects of one or more YAML files (as
``kubectl apply -f a -f b`` would see them): exactly one ``Rollout``
(``argoproj.io/v1alpha1``) and any number of ``AnalysisTemplate`` and
``ClusterAnalysisTemplate`` objects. It returns the pdsim policy mapping
``{"argo": {"strategy", "replicas", "templates", "clusterTemplates"}}``, validated with
the same models as a policy file, so every error names a line *in the manifest*
(``rollout.yaml:52: spec.strategy.canary.steps[2].setWeight: ...``).

Template references resolve as the controller resolves them (``rollout/analysis.go``
``getAnalysisTemplatesFromRefs``, ``utils/analysis/helpers.go``): ``clusterScope: true``
against ClusterAnalysisTemplates, otherwise against AnalysisTemplates of the Rollout's
namespace; nested ``templates`` of a template are followed and flattened into it
(metrics, args, dryRun, measurementRetention, each template once); arguments merge like
``MergeArgs`` (an argument left without a value is an error, as is one set twice with
different values, or two metrics of one analysis with the same name).

Every key of ``RolloutSpec``, ``RolloutStrategy``, ``CanaryStrategy``,
``BlueGreenStrategy``, ``CanaryStep``, ``RolloutTrafficRouting``, ``RolloutAnalysis``
(and ``RolloutAnalysisBackground``), ``AnalysisTemplateSpec``, ``Metric`` and
``MetricProvider`` (``pkg/apis/rollouts/v1alpha1/types.go``, ``analysis_types.go``) is
handled explicitly, in one of four ways:

* copied into the policy: ``replicas`` (default 1) and the whole ``strategy`` as written
  (the policy reads what it models from it, e.g. ``maxSurge`` for replica counts); the
  templates' ``spec``;
* kept or dropped quietly, because it only shapes Kubernetes objects (or pod counts,
  which size nothing here) and never changes a promote/abort decision or what users see:
  ``selector``, ``template``, ``workloadRef`` (the pod template is elsewhere),
  ``revisionHistoryLimit``, ``progressDeadlineSeconds`` (a status condition unless
  ``progressDeadlineAbort``), ``restartAt``, ``analysis`` (run history limits),
  ``rollbackWindow`` (pdsim always rolls out a new revision), services and pod metadata,
  ``maxSurge``/``maxUnavailable``, ``antiAffinity``, ``pingPong``,
  ``minPodsPerReplicaSet``, ``previewReplicaCount``, ``scaleDownDelayRevisionLimit``,
  ``abortScaleDownDelaySeconds`` and ``scaleDownDelaySeconds`` (old or aborted pods
  that get no traffic: until the post-promotion run succeeds the previous version is
  still ``status.stableRS``, which ``GetOtherRSs`` leaves out of the scale-down and
  ``reconcileBlueGreenStableReplicaSet`` keeps at full size, so a failed post-promotion
  analysis switches back to a full-size stable at once, whatever the delay), the router blocks of ``trafficRouting`` (they all route by
  weight), ``managedRoutes``, ``measurementRetention`` (counters are kept),
  ``analysisRunMetadata``, metric provider connection details;
* copied or ignored *with a warning* (``FILE:LINE: FIELD: not modelled: why``), because
  the real controller would decide differently with it: ``paused: true``,
  ``minReadySeconds``, ``progressDeadlineAbort``, ``dynamicStableScale``,
  ``replicaProgressThreshold``, ``maxTrafficWeight``, ALB stickiness, NGINX
  ``canary-by-*`` annotations, ``plugin`` steps (simulated as a step that completes at once),
  ``setMirrorRoute.match``, ``analysis.args[].valueFrom`` and template ``fieldRef``
  arguments (kept symbolic), every metric provider but Prometheus (outcome scripted as a
  webhook), Prometheus ``rangeQuery``, ``dryRun`` patterns that match part of a name;
* refused with an error: ``experiment`` steps (pdsim does not simulate Experiments), and
  steps Argo itself rejects (``setCanaryScale``/``setHeaderRoute``/``setMirrorRoute``
  without the traffic routing they need).

A key that is not a field of the Argo type at all is an error, as it is for
``kubectl apply`` (strict field validation).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import NOT_GIVEN, InputError, field_path
from sim.importers.flagger import ImportResult, _err, _metadata, _objects, _warning, _where
from sim.importers.flagger import policy_yaml as _policy_yaml
from sim.policies.argo_spec import ArgoPolicySpec, RolloutAnalysis, Strategy, TemplateSpec, substitute
from sim.scenario import PolicySpec, validation_to_input_error
from sim.units import parse_duration
from sim.yamlio import YamlDoc

GROUP = "argoproj.io/"
API_VERSION = "argoproj.io/v1alpha1"
ROLLOUT, TEMPLATE, CLUSTER_TEMPLATE = "Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"
KINDS = (ROLLOUT, TEMPLATE, CLUSTER_TEMPLATE)

# --- what each Argo type's keys become --------------------------------------------------------

#: ``RolloutSpec``. Copied: replicas, strategy. Warned: paused, minReadySeconds,
#: progressDeadlineAbort. The rest is quiet (see the module docstring).
_SPEC_KEYS = frozenset({
    "replicas", "strategy",
    "paused", "minReadySeconds", "progressDeadlineAbort",
    "selector", "template", "workloadRef", "revisionHistoryLimit", "progressDeadlineSeconds",
    "restartAt", "analysis", "rollbackWindow",
})
#: ``CanaryStrategy``. Modelled: steps, analysis, trafficRouting. Warned: dynamicStableScale,
#: replicaProgressThreshold. Quiet: the rest.
_CANARY_KEYS = frozenset({
    "steps", "analysis", "trafficRouting",
    "dynamicStableScale", "replicaProgressThreshold",
    "canaryService", "stableService", "maxUnavailable", "maxSurge", "antiAffinity",
    "canaryMetadata", "stableMetadata", "scaleDownDelaySeconds", "scaleDownDelayRevisionLimit",
    "abortScaleDownDelaySeconds", "pingPong", "minPodsPerReplicaSet",
})
#: ``BlueGreenStrategy``. Modelled: auto promotion, previewReplicaCount and the two analyses.
_BLUE_GREEN_KEYS = frozenset({
    "autoPromotionEnabled", "autoPromotionSeconds", "prePromotionAnalysis", "postPromotionAnalysis",
    "scaleDownDelaySeconds",
    "activeService", "previewService", "previewReplicaCount", "maxUnavailable",
    "scaleDownDelayRevisionLimit", "antiAffinity", "previewMetadata", "activeMetadata",
    "abortScaleDownDelaySeconds",
})
#: ``RolloutTrafficRouting``: the routers all set the canary weight pdsim routes by.
_ROUTERS = frozenset({"istio", "nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins"})
_ROUTING_KEYS = _ROUTERS | {"managedRoutes", "maxTrafficWeight"}
#: Routers Argo accepts for ``setHeaderRoute`` / ``setMirrorRoute`` (validation.go).
_HEADER_ROUTERS = ("istio", "alb", "apisix", "plugins")
_MIRROR_ROUTERS = ("istio", "plugins")
#: ``CanaryStep``: exactly one of these.
_STEP_KEYS = frozenset({"setWeight", "pause", "experiment", "analysis", "setCanaryScale", "setHeaderRoute",
                        "setMirrorRoute", "plugin"})
_HEADER_ROUTE_KEYS = frozenset({"name", "match"})
_HEADER_MATCH_KEYS = frozenset({"headerName", "headerValue"})
_STRING_MATCH_KEYS = frozenset({"exact", "prefix", "regex"})
_MIRROR_ROUTE_KEYS = frozenset({"name", "match", "percentage"})
_ROUTE_MATCH_KEYS = frozenset({"method", "path", "headers"})
#: ``RolloutAnalysis``; ``RolloutAnalysisBackground`` adds ``startingStep``.
_ANALYSIS_KEYS = frozenset({"templates", "args", "dryRun", "measurementRetention", "analysisRunMetadata"})
_BACKGROUND_KEYS = _ANALYSIS_KEYS | {"startingStep"}
_REF_KEYS = frozenset({"templateName", "clusterScope"})
_ARG_KEYS = frozenset({"name", "value", "valueFrom"})
_RUN_VALUE_FROM_KEYS = frozenset({"podTemplateHashValue", "fieldRef"})   # ArgumentValueFrom
_TEMPLATE_VALUE_FROM_KEYS = frozenset({"secretKeyRef", "fieldRef"})      # ValueFrom
#: ``AnalysisTemplateSpec``.
_TEMPLATE_KEYS = frozenset({"metrics", "args", "dryRun", "measurementRetention", "templates"})
#: ``Metric``: every key decides, every one is modelled.
_METRIC_KEYS = frozenset({"name", "interval", "initialDelay", "count", "successCondition", "failureCondition",
                          "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "provider",
                          "consecutiveSuccessLimit"})
_DURATION_FIELDS = ("interval", "initialDelay")
_COUNT_FIELDS = ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit")
#: ``MetricProvider``: exactly one. Only Prometheus is answered by the simulated telemetry.
_PROVIDERS = ("prometheus", "kayenta", "web", "datadog", "wavefront", "newRelic", "job", "cloudWatch",
              "graphite", "influxdb", "skywalking", "plugin")
_PROMETHEUS_KEYS = frozenset({"address", "query", "authentication", "timeout", "insecure", "headers", "rangeQuery"})

_GO_DURATION = re.compile(r"^(?:0|(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_SYMBOLIC = re.compile(r"\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}|<[A-Za-z0-9_.-]+>")

_WHY = {
    "paused": "a paused Rollout does not progress until it is resumed; pdsim simulates it as if resumed",
    "minReadySeconds": "pods count as available only this long after they are ready; pdsim's canary is "
                       "available as soon as it is ready (the scenario's startup time)",
    "progressDeadlineAbort": "Argo aborts an update that makes no progress for progressDeadlineSeconds; "
                             "pdsim never aborts for lack of progress (a stuck rollout ends unfinished)",
    "dynamicStableScale": "the stable ReplicaSet shrinks as canary traffic grows and, after an abort, gets "
                          "traffic back only as it scales up again; pdsim's stable keeps full capacity and "
                          "takes the traffic back at once",
    "replicaProgressThreshold": "pods are all-or-nothing ready in pdsim: a step waits for the whole canary",
    "maxTrafficWeight": "pdsim reads setWeight as a percentage of 100; with another maxTrafficWeight the "
                        "canary gets setWeight/maxTrafficWeight of the traffic",
    "stickiness": "ALB target group stickiness pins users to the version they reached; pdsim routes every "
                  "request by weight (more users exposed, each less often)",
    "nginx_canary_by": "NGINX sends requests with this header or cookie to the canary whatever the weight; "
                       "pdsim routes by weight only",
    "plugin": "what a step plugin does is unknown to pdsim: the step completes at once (simulated as "
              "pause: {duration: 0})",
    "mirror_match": "pdsim mirrors `percentage` of all requests; these match conditions are not evaluated",
    "valueFrom": "the value is read from the cluster at run time; pdsim keeps it symbolic ({value}) in "
                 "queries and conditions",
    "kayenta": "Kayenta judgements are not modelled yet: the outcome is scripted as a webhook "
               "(scenario webhooks: {{{name}: ...}}), default pass",
    "job": "the Job is not run: its outcome is scripted in the scenario by metric name "
           "(webhooks: {{{name}: ...}}), default pass",
    "provider": "pdsim has no {kind} data: the outcome is scripted in the scenario by metric name "
                "(webhooks: {{{name}: ...}}), default pass; successCondition/failureCondition are not evaluated",
    "rangeQuery": "a range query returns a series in Argo; pdsim answers with the current value only",
    "dryRun": "Argo matches the pattern anywhere in a metric name (Go regexp.MatchString); pdsim matches "
              "whole names, so here these metrics are not dry-run and decide: {names}",
}


def is_argo_object(data: Any) -> bool:
    """Whether a YAML document is an Argo Rollout, AnalysisTemplate or ClusterAnalysisTemplate."""
    return (isinstance(data, Mapping) and isinstance(data.get("apiVersion"), str)
            and data["apiVersion"].startswith(GROUP) and data.get("kind") in KINDS)


def argo_objects(docs: Iterable[YamlDoc]) -> list[YamlDoc]:
    """The Argo Rollouts objects among manifest documents (``kind: List`` items one by one).

    Raises:
        InputError: for a document that is not a Kubernetes object.
    """
    return [d for d in _objects(docs) if is_argo_object(d.data)]


def is_argo_bundle(docs: Sequence[YamlDoc]) -> bool:
    """Whether manifest documents are an Argo Rollouts bundle: a Rollout or analysis
    templates, and no Flagger Canary (Argo templates next to a Canary are left to it).

    Raises:
        InputError: for a document that is not a Kubernetes object, or an Argo Rollout
            next to a Flagger Canary (two policies).
    """
    objects = _objects(docs)
    argo = [d for d in objects if is_argo_object(d.data)]
    if not argo:
        return False
    canary = next((d for d in objects if str(d.data["apiVersion"]).startswith("flagger.app/")
                   and d.data["kind"] == "Canary"), None)
    if canary is None:
        return True
    rollout = next((d for d in argo if d.data["kind"] == ROLLOUT), None)
    if rollout is not None:
        raise _err(rollout, (), f"an Argo Rollout and a Flagger Canary (at {_where(canary)}) are two "
                   "policies; give the manifests of one of them")
    return False


# --- small helpers ----------------------------------------------------------------------------

def _keys(doc: YamlDoc, loc: tuple[Any, ...], node: Any, known: frozenset[str], what: str) -> None:
    """Unknown keys are errors, as for ``kubectl apply`` (strict field validation)."""
    if not isinstance(node, Mapping):
        return
    for key in node:
        if key not in known:
            raise _err(doc, loc + (key,), f"unknown key: not a field of Argo's {what} ({API_VERSION})")


def _list(node: Any) -> list[Any]:
    return node if isinstance(node, list) else []


def _at(doc: YamlDoc, loc: Sequence[Any]) -> str:
    """``FILE:LINE (FIELD)`` of a place, for messages that point at a second place."""
    return f"{doc.file}:{doc.line_of(loc)} ({field_path(loc)})"


class _Warnings:
    """Warnings in order, each once (a template used by several analyses warns once)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, doc: YamlDoc, loc: Sequence[Any], why: str) -> None:
        line = _warning(doc, tuple(loc), why)
        if line not in self.lines:
            self.lines.append(line)


# --- templates -----------------------------------------------------------------------------------

@dataclass
class _Template:
    """An AnalysisTemplate or ClusterAnalysisTemplate and where its spec was written."""

    doc: YamlDoc
    loc: tuple[Any, ...]       # where the spec mapping is in doc: ("spec",) in a manifest
    kind: str                  # AnalysisTemplate | ClusterAnalysisTemplate
    name: str
    namespace: str | None
    raw: Mapping[str, Any]     # the spec as written
    model: TemplateSpec

    @property
    def cluster(self) -> bool:
        return self.kind == CLUSTER_TEMPLATE

    @property
    def where(self) -> str:
        return f"{self.doc.file}:{self.doc.line_of(self.loc[:-1] if self.loc == ('spec',) else self.loc)}"

    def refs(self) -> list[tuple[int, Any]]:
        return list(enumerate(_list(self.raw.get("templates"))))


def _check_template_spec(doc: YamlDoc, loc: tuple[Any, ...], spec: Any, nested_ok: bool = True) -> TemplateSpec:
    """Strict keys and types of an ``AnalysisTemplateSpec``; literal durations and counts."""
    if not isinstance(spec, Mapping):
        raise _err(doc, loc, "an AnalysisTemplate spec must be a mapping with metrics", got=spec)
    _keys(doc, loc, spec, _TEMPLATE_KEYS, "AnalysisTemplateSpec")
    if not nested_ok and spec.get("templates"):
        raise _err(doc, loc + ("templates",), "nested templates are flattened by `pdsim import argo`; in a "
                   "pdsim policy file list the metrics of the nested templates in this template")
    for i, m in enumerate(_list(spec.get("metrics"))):
        here = loc + ("metrics", i)
        _keys(doc, here, m, _METRIC_KEYS, "Metric")
        if not isinstance(m, Mapping):
            continue
        provider = m.get("provider")
        if not isinstance(provider, Mapping) or not provider:
            raise _err(doc, here + ("provider",) if "provider" in m else here,
                       f"metric {m.get('name')!r} needs a provider ({', '.join(_PROVIDERS)})",
                       **({"got": provider} if "provider" in m and not isinstance(provider, Mapping) else {}))
        for key in provider:
            if key not in _PROVIDERS:
                raise _err(doc, here + ("provider", key), f"unknown key: not a metric provider of Argo's "
                           f"MetricProvider ({', '.join(_PROVIDERS)})")
        if len(provider) > 1:
            raise _err(doc, here + ("provider",), f"metric {m.get('name')!r} has {len(provider)} providers "
                       f"({', '.join(provider)}); give exactly one")
        _keys(doc, here + ("provider", "prometheus"), provider.get("prometheus"), _PROMETHEUS_KEYS,
              "PrometheusMetric")
        for key in _DURATION_FIELDS:
            value = m.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                raise _err(doc, here + (key,), "not a Go duration such as 30s, 5m or 1h30m (a unit is "
                           "required)", got=value)
            if isinstance(value, str) and "{{" not in value:
                _duration(doc, here + (key,), value)
        for key in _COUNT_FIELDS:
            value = m.get(key)
            if isinstance(value, str) and "{{" not in value:
                _count(doc, here + (key,), value)
    for i, arg in enumerate(_list(spec.get("args"))):
        _keys(doc, loc + ("args", i), arg, _ARG_KEYS, "Argument")
        if isinstance(arg, Mapping):
            _keys(doc, loc + ("args", i, "valueFrom"), arg.get("valueFrom"), _TEMPLATE_VALUE_FROM_KEYS, "ValueFrom")
    for i, ref in enumerate(_list(spec.get("templates"))):
        _keys(doc, loc + ("templates", i), ref, _REF_KEYS, "AnalysisTemplateRef")
    data = {k: v for k, v in spec.items() if k != "templates"}
    try:
        model = TemplateSpec.model_validate(data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=loc) from None
    for i, ref in enumerate(_list(spec.get("templates"))):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("templateName"), str) or not ref["templateName"]:
            raise _err(doc, loc + ("templates", i), "a template reference needs templateName", got=ref)
        if not isinstance(ref.get("clusterScope", False), bool):
            raise _err(doc, loc + ("templates", i, "clusterScope"), "must be true or false", got=ref["clusterScope"])
    return model


def _duration(doc: YamlDoc, loc: tuple[Any, ...], text: str, note: str = "") -> float:
    """A Go duration (``time.ParseDuration``: a unit is required, except for 0)."""
    ok = bool(_GO_DURATION.match(text.strip()))
    try:
        seconds = parse_duration(text.strip()) if ok else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise _err(doc, loc, f"not a Go duration such as 30s, 5m or 1h30m{note}", got=text)
    return seconds


def _count(doc: YamlDoc, loc: tuple[Any, ...], text: str, note: str = "") -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _err(doc, loc, f"not a whole number{note}", got=text) from None


def _template(doc: YamlDoc) -> _Template:
    name, ns = _metadata(doc)
    kind = doc.data["kind"]
    if not name:
        raise _err(doc, ("metadata", "name") if "metadata" in doc.data else (),
                   f"an {kind} needs metadata.name (templateName refers to it)")
    if "spec" not in doc.data:
        raise _err(doc, (), f"an {kind} needs a spec with metrics")
    model = _check_template_spec(doc, ("spec",), doc.data["spec"])
    return _Template(doc, ("spec",), kind, name, None if kind == CLUSTER_TEMPLATE else ns,
                     doc.data["spec"], model)


class _Templates:
    """The templates of a bundle, looked up as the controller looks them up."""

    def __init__(self, templates: list[_Template], namespace: str | None, files: str) -> None:
        self.all = templates
        self.namespace = namespace
        self.files = files

    def lookup(self, name: str, cluster: bool, doc: YamlDoc, loc: tuple[Any, ...]) -> _Template:
        """The template a reference at ``doc``/``loc`` (its templateName) names.

        Raises:
            InputError: at the reference, naming the missing template.
        """
        kind = CLUSTER_TEMPLATE if cluster else TEMPLATE
        same = [t for t in self.all if t.name == name and t.cluster == cluster]
        fits = same if cluster else [t for t in same if t.namespace is None or self.namespace is None
                                     or t.namespace == self.namespace]
        if not fits:
            if same:
                where = ", ".join(sorted({t.namespace or "" for t in same}))
                raise _err(doc, loc, f"{kind} {name!r} is in namespace {where}, not in the Rollout's "
                           f"namespace {self.namespace!r}", got=name)
            other = [t for t in self.all if t.name == name]
            hint = ""
            if other:
                hint = (" (a ClusterAnalysisTemplate of that name is given: add clusterScope: true)" if not cluster
                        else " (an AnalysisTemplate of that name is given: drop clusterScope: true)")
            raise _err(doc, loc, f"no {kind} named {name!r} in {self.files}{hint}; pass the file that "
                       "defines it too (e.g. --policy templates.yaml)", got=name)
        if not cluster:
            exact = [t for t in fits if t.namespace == self.namespace]
            fits = exact or fits
        if len(fits) > 1:
            places = ", ".join(t.where for t in fits)
            raise _err(doc, loc, f"{kind} {name!r} is defined more than once ({places})", got=name)
        return fits[0]

    def closure(self, t: _Template, chain: tuple[_Template, ...] = ()) -> list[_Template]:
        """``t`` and the templates it nests, each once, in the controller's order."""
        if t in chain:
            cycle = " -> ".join(x.name for x in chain + (t,))
            raise _err(t.doc, t.loc + ("templates",), f"nested templates form a cycle ({cycle})")
        out = [t]
        for i, ref in t.refs():
            inner = self.lookup(ref["templateName"], bool(ref.get("clusterScope", False)), t.doc,
                                t.loc + ("templates", i, "templateName"))
            for x in self.closure(inner, chain + (t,)):
                if x not in out:
                    out.append(x)
        return out


def _ordered(templates: Iterable[_Template]) -> list[_Template]:
    """``FilterUniqueTemplates`` then ``FlattenTemplates``: namespaced first, then cluster ones."""
    unique: list[_Template] = []
    for t in templates:
        if t not in unique:
            unique.append(t)
    return [t for t in unique if not t.cluster] + [t for t in unique if t.cluster]


def _flatten_args(templates: list[_Template]) -> dict[str, tuple[_Template, int, Mapping[str, Any]]]:
    """``flattenArgs``: the templates' arguments by name (a value wins over none; two
    different values are an error)."""
    out: dict[str, tuple[_Template, int, Mapping[str, Any]]] = {}
    for t in templates:
        for i, arg in enumerate(_list(t.raw.get("args"))):
            name = arg["name"]
            prev = out.get(name)
            if prev is None:
                out[name] = (t, i, arg)
                continue
            pt, pi, parg = prev
            if parg.get("value") is not None and arg.get("value") is not None and parg["value"] != arg["value"]:
                raise _err(t.doc, t.loc + ("args", i, "value"), f"argument {name!r} is also given with a "
                           f"different value ({parg['value']!r}) by {pt.kind} {pt.name!r} at "
                           f"{_at(pt.doc, pt.loc + ('args', pi, 'value'))}; Argo refuses to combine them",
                           got=arg["value"])
            if parg.get("value") is None:
                out[name] = (t, i, arg)
    return out


def _flattened_spec(templates: _Templates, t: _Template) -> dict[str, Any]:
    """The spec of ``t`` with its nested templates flattened into it (for the policy)."""
    spec = copy.deepcopy(dict(t.raw))
    if not t.raw.get("templates"):
        spec.pop("templates", None)
        return spec
    chain = _ordered(templates.closure(t))
    spec.pop("templates")
    metrics = [copy.deepcopy(m) for x in chain for m in _list(x.raw.get("metrics"))]
    args = [copy.deepcopy(dict(arg)) for _, _, arg in _flatten_args(chain).values()]
    for key, value in (("metrics", metrics), ("args", args)):
        if value:
            spec[key] = value
        else:
            spec.pop(key, None)
    for key in ("dryRun", "measurementRetention"):
        merged = [copy.deepcopy(e) for x in chain for e in _list(x.raw.get(key))]
        if merged:
            spec[key] = merged
    return spec


def _template_warnings(t: _Template, out: _Warnings) -> None:
    """Warnings for a template an analysis uses."""
    for i, m in enumerate(_list(t.raw.get("metrics"))):
        here = t.loc + ("metrics", i, "provider")
        kind = next(iter(m["provider"]))
        name = m.get("name")
        if kind == "prometheus":
            if isinstance(m["provider"]["prometheus"], Mapping) and m["provider"]["prometheus"].get("rangeQuery"):
                out.add(t.doc, here + ("prometheus", "rangeQuery"), _WHY["rangeQuery"])
        elif kind == "kayenta":
            out.add(t.doc, here + (kind,), _WHY["kayenta"].format(name=name))
        elif kind == "job":
            out.add(t.doc, here + (kind,), _WHY["job"].format(name=name))
        else:
            out.add(t.doc, here + (kind,), _WHY["provider"].format(kind=kind, name=name))
    for i, arg in enumerate(_list(t.raw.get("args"))):
        vf = arg.get("valueFrom")
        # A secretKeyRef carries credentials: it never decides. A fieldRef may feed a query.
        if isinstance(vf, Mapping) and vf.get("fieldRef") is not None and arg.get("value") is None:
            out.add(t.doc, t.loc + ("args", i, "valueFrom"),
                    _WHY["valueFrom"].format(value="{{args." + arg["name"] + "}}"))


# --- the Rollout's strategy -----------------------------------------------------------------------

@dataclass
class _Analysis:
    """One ``analysis`` block of the strategy: where it is, as written, as validated."""

    doc: YamlDoc
    loc: tuple[Any, ...]
    raw: Mapping[str, Any]
    model: RolloutAnalysis


def _check_analysis_keys(doc: YamlDoc, loc: tuple[Any, ...], a: Any, background: bool, out: _Warnings) -> None:
    if not isinstance(a, Mapping):
        return
    _keys(doc, loc, a, _BACKGROUND_KEYS if background else _ANALYSIS_KEYS,
          "RolloutAnalysisBackground" if background else "RolloutAnalysis")
    for i, ref in enumerate(_list(a.get("templates"))):
        _keys(doc, loc + ("templates", i), ref, _REF_KEYS, "AnalysisTemplateRef")
    for i, arg in enumerate(_list(a.get("args"))):
        _keys(doc, loc + ("args", i), arg, _ARG_KEYS, "AnalysisRunArgument")
        if not isinstance(arg, Mapping):
            continue
        vf = arg.get("valueFrom")
        _keys(doc, loc + ("args", i, "valueFrom"), vf, _RUN_VALUE_FROM_KEYS, "ArgumentValueFrom")
        if vf is not None and arg.get("value") is None:
            out.add(doc, loc + ("args", i, "valueFrom"), _WHY["valueFrom"].format(value=f"<{arg.get('name')}>"))


def _check_string_match(doc: YamlDoc, loc: tuple[Any, ...], node: Any) -> None:
    _keys(doc, loc, node, _STRING_MATCH_KEYS, "StringMatch")
    if node is None or (isinstance(node, Mapping) and len([k for k in _STRING_MATCH_KEYS if node.get(k)]) != 1):
        raise _err(doc, loc, "a match value needs exactly one of exact, prefix or regex")


def _check_traffic_routing(doc: YamlDoc, loc: tuple[Any, ...], tr: Mapping[str, Any], out: _Warnings) -> None:
    _keys(doc, loc, tr, _ROUTING_KEYS, "RolloutTrafficRouting")
    mtw = tr.get("maxTrafficWeight")
    if mtw is not None and mtw != 100:
        out.add(doc, loc + ("maxTrafficWeight",), _WHY["maxTrafficWeight"])
    alb = tr.get("alb")
    sticky = alb.get("stickinessConfig") if isinstance(alb, Mapping) else None
    if isinstance(sticky, Mapping) and sticky.get("enabled") is True:
        out.add(doc, loc + ("alb", "stickinessConfig"), _WHY["stickiness"])
    nginx = tr.get("nginx")
    if isinstance(nginx, Mapping):
        for key in ("additionalIngressAnnotations", "canaryIngressAnnotations"):
            annotations = nginx.get(key)
            for name in annotations if isinstance(annotations, Mapping) else ():
                if str(name).rsplit("/", 1)[-1].startswith("canary-by-"):
                    out.add(doc, loc + ("nginx", key, name), _WHY["nginx_canary_by"])


def _check_canary(doc: YamlDoc, loc: tuple[Any, ...], canary: Any, out: _Warnings) -> list[int]:
    """Keys, refused steps and warnings of a ``CanaryStrategy``; the indexes of plugin steps."""
    if not isinstance(canary, Mapping):
        return []
    _keys(doc, loc, canary, _CANARY_KEYS, "CanaryStrategy")
    tr = canary.get("trafficRouting")
    if isinstance(tr, Mapping):
        _check_traffic_routing(doc, loc + ("trafficRouting",), tr, out)
    else:
        tr = None
    if canary.get("dynamicStableScale") is True:
        out.add(doc, loc + ("dynamicStableScale",), _WHY["dynamicStableScale"])
    threshold = canary.get("replicaProgressThreshold")
    if isinstance(threshold, Mapping) and not (threshold.get("type") == "Percent" and threshold.get("value") == 100):
        out.add(doc, loc + ("replicaProgressThreshold",), _WHY["replicaProgressThreshold"])
    plugins = []
    for i, step in enumerate(_list(canary.get("steps"))):
        here = loc + ("steps", i)
        _keys(doc, here, step, _STEP_KEYS, "CanaryStep")
        if not isinstance(step, Mapping):
            continue
        if step.get("experiment") is not None:
            raise _err(doc, here + ("experiment",), "experiment steps are not supported: pdsim does not simulate "
                       "Experiments (extra ReplicaSets and their analyses); replace the step with an `analysis` "
                       "step running the same templates, or remove it")
        if step.get("plugin") is not None and len(step) == 1:
            out.add(doc, here + ("plugin",), _WHY["plugin"])
            plugins.append(i)
        routers = [k for k in _ROUTERS if tr is not None and tr.get(k)]
        if step.get("setCanaryScale") is not None and tr is None:
            raise _err(doc, here + ("setCanaryScale",), "setCanaryScale needs spec.strategy.canary.trafficRouting "
                       "(Argo rejects the Rollout: SetCanaryScale requires TrafficRouting to be set)")
        route = step.get("setHeaderRoute")
        if route is not None:
            if not any(r in routers for r in _HEADER_ROUTERS):
                raise _err(doc, here + ("setHeaderRoute",), "setHeaderRoute needs trafficRouting with "
                           f"{', '.join(_HEADER_ROUTERS)} (Argo rejects the Rollout otherwise)")
            _keys(doc, here + ("setHeaderRoute",), route, _HEADER_ROUTE_KEYS, "SetHeaderRoute")
            for j, match in enumerate(_list(route.get("match") if isinstance(route, Mapping) else None)):
                mloc = here + ("setHeaderRoute", "match", j)
                _keys(doc, mloc, match, _HEADER_MATCH_KEYS, "HeaderRoutingMatch")
                if isinstance(match, Mapping):
                    _check_string_match(doc, mloc + ("headerValue",), match.get("headerValue"))
        route = step.get("setMirrorRoute")
        if route is not None:
            if not any(r in routers for r in _MIRROR_ROUTERS):
                raise _err(doc, here + ("setMirrorRoute",), "setMirrorRoute needs trafficRouting with "
                           f"{', '.join(_MIRROR_ROUTERS)} (Argo rejects the Rollout otherwise)")
            _keys(doc, here + ("setMirrorRoute",), route, _MIRROR_ROUTE_KEYS, "SetMirrorRoute")
            matches = _list(route.get("match") if isinstance(route, Mapping) else None)
            for j, match in enumerate(matches):
                _keys(doc, here + ("setMirrorRoute", "match", j), match, _ROUTE_MATCH_KEYS, "RouteMatch")
            if any(isinstance(m, Mapping) and any(m.get(k) for k in _ROUTE_MATCH_KEYS) for m in matches):
                out.add(doc, here + ("setMirrorRoute", "match"), _WHY["mirror_match"])
        _check_analysis_keys(doc, here + ("analysis",), step.get("analysis"), False, out)
    _check_analysis_keys(doc, loc + ("analysis",), canary.get("analysis"), True, out)
    return plugins


def _check_blue_green(doc: YamlDoc, loc: tuple[Any, ...], bg: Any, out: _Warnings) -> None:
    if not isinstance(bg, Mapping):
        return
    _keys(doc, loc, bg, _BLUE_GREEN_KEYS, "BlueGreenStrategy")
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
                out.append(_Analysis(doc, loc + ("canary", "steps", i, "analysis"), rc["steps"][i]["analysis"],
                                     st.analysis))
    else:
        bg, rbg = strategy.blueGreen, raw["blueGreen"]
        for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
            a = getattr(bg, key)
            if a is not None:
                out.append(_Analysis(doc, loc + ("blueGreen", key), rbg[key], a))
    return out


def _resolve_analysis(a: _Analysis, templates: _Templates, out: _Warnings) -> list[_Template]:
    """Resolve an analysis as the controller creates its AnalysisRun; check what the
    controller would reject, or what pdsim could not compute; return its templates.

    Raises:
        InputError: a template that is not given; two metrics with one name; an
            argument without a value; a count or duration that is not one once the
            arguments are in; a dryRun rule that matches no metric.
    """
    used: list[_Template] = []
    direct: list[_Template] = []
    for i, ref in enumerate(a.model.templates):
        t = templates.lookup(ref.templateName, ref.clusterScope, a.doc, a.loc + ("templates", i, "templateName"))
        direct.append(t)
        used += templates.closure(t)
    if not used:
        return []
    ordered = _ordered(used)
    where = _at(a.doc, a.loc)
    # flattenMetrics: one name per metric in a run.
    seen: dict[str, _Template] = {}
    for t in ordered:
        for j, m in enumerate(t.model.metrics):
            other = seen.setdefault(m.name, t)
            if other is not t:
                raise _err(t.doc, t.loc + ("metrics", j, "name"), f"metric {m.name!r} is also defined by "
                           f"{other.kind} {other.name!r} ({other.where}); the analysis at {where} combines both "
                           "and Argo refuses two metrics with the same name", got=m.name)
    # flattenArgs + MergeArgs: every argument needs a value.
    flat = _flatten_args(ordered)
    incoming = {arg.name: arg for arg in a.model.args}
    for name, (t, i, arg) in flat.items():
        given = incoming.get(name)
        if arg.get("value") is None and arg.get("valueFrom") is None and (
                given is None or (given.value is None and given.valueFrom is None)):
            loc = a.loc + ("args",) if a.raw.get("args") else a.loc
            raise _err(a.doc, loc, f"argument {name!r} of {t.kind} {t.name!r} ({_at(t.doc, t.loc + ('args', i))}) "
                       f"has no value: give it in this analysis's args (Argo: args.{name} was not resolved)")
    # The values pdsim substitutes (ArgoRollout: template values, then the analysis's own;
    # valueFrom stays symbolic).
    values: dict[str, str] = {}
    for t in direct:
        for arg in _flatten_args(_ordered(templates.closure(t))).values():
            if arg[2].get("value") is not None:
                values[arg[2]["name"]] = arg[2]["value"]
    for arg in a.model.args:
        values[arg.name] = arg.value if arg.value is not None else f"<{arg.name}>"
    note = f" with the arguments of the analysis at {where}"
    for t in ordered:
        for j, m in enumerate(t.raw.get("metrics") or []):
            for key in _DURATION_FIELDS + _COUNT_FIELDS:
                value = m.get(key)
                if not isinstance(value, str) or "{{" not in value:
                    continue
                text = substitute(value, values)
                loc = t.loc + ("metrics", j, key)
                if _SYMBOLIC.search(text):
                    raise _err(t.doc, loc, f"is {text!r}{note}: an argument from valueFrom is only known in "
                               "the cluster; pdsim needs a literal value here", got=value)
                if key in _DURATION_FIELDS:
                    _duration(t.doc, loc, text, f" ({text!r}{note})")
                else:
                    _count(t.doc, loc, text, f" ({text!r}{note})")
    # dryRun rules (mergeDryRunMetrics, GetDryRunMetrics).
    names = [m.name for t in ordered for m in t.model.metrics]
    rules = [(a.doc, a.loc + ("dryRun", i), d.metricName) for i, d in enumerate(a.model.dryRun)]
    rules += [(t.doc, t.loc + ("dryRun", i), d.metricName) for t in ordered for i, d in enumerate(t.model.dryRun)]
    seen_rules: dict[str, str] = {}
    for doc, loc, pattern in rules:
        if pattern in seen_rules:
            raise _err(doc, loc + ("metricName",), f"a second dryRun rule {pattern!r} (the first is at "
                       f"{seen_rules[pattern]}); Argo refuses two rules with the same name", got=pattern)
        seen_rules[pattern] = _at(doc, loc)
        try:
            rx = re.compile(pattern)
        except re.error as err:
            raise _err(doc, loc + ("metricName",), f"not a regular expression: {err}", got=pattern) from None
        hits = [n for n in names if rx.search(n)]
        if not hits:
            raise _err(doc, loc + ("metricName",), f"matches no metric of the analysis at {where} "
                       f"({', '.join(names) or 'none'}); Argo ends every such AnalysisRun in Error", got=pattern)
        partial = [n for n in hits if not rx.fullmatch(n)]
        if partial:
            out.add(doc, loc + ("metricName",), _WHY["dryRun"].format(names=", ".join(map(repr, partial))))
    return ordered


def _check_strategy(doc: YamlDoc, loc: tuple[Any, ...], raw: Mapping[str, Any], out: _Warnings) -> dict[str, Any]:
    """Strict keys, refused steps and warnings of a ``strategy``; the strategy for the
    policy (plugin steps become ``pause: {duration: 0}``, which keeps step indexes)."""
    _keys(doc, loc, raw, frozenset({"canary", "blueGreen"}), "RolloutStrategy")
    plugins = _check_canary(doc, loc + ("canary",), raw.get("canary"), out)
    _check_blue_green(doc, loc + ("blueGreen",), raw.get("blueGreen"), out)
    strategy = copy.deepcopy(dict(raw))
    for i in plugins:
        strategy["canary"]["steps"][i] = {"pause": {"duration": 0}}
    return strategy


def _validate_strategy(doc: YamlDoc, loc: tuple[Any, ...], strategy: dict[str, Any]) -> Strategy:
    try:
        return Strategy.model_validate(strategy)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=loc) from None


def _resolve_all(doc: YamlDoc, loc: tuple[Any, ...], raw: Mapping[str, Any], strategy: Strategy,
                 templates: _Templates, out: _Warnings) -> list[_Template]:
    """Resolve every analysis of the strategy; warn for the templates they use."""
    used: list[_Template] = []
    for a in _analyses(doc, loc, raw, strategy):
        for t in _resolve_analysis(a, templates, out):
            if t not in used:
                used.append(t)
    for t in used:
        _template_warnings(t, out)
    return used


# --- the Rollout ------------------------------------------------------------------------------------

def _split_objects(docs: Sequence[YamlDoc]) -> tuple[list[YamlDoc], list[YamlDoc]]:
    """(Rollouts, AnalysisTemplates and ClusterAnalysisTemplates) among the documents."""
    rollouts, templates = [], []
    for obj in argo_objects(docs):
        if obj.data["apiVersion"] != API_VERSION:
            raise _err(obj, ("apiVersion",), f"pdsim reads {API_VERSION} objects", got=obj.data["apiVersion"])
        (rollouts if obj.data["kind"] == ROLLOUT else templates).append(obj)
    return rollouts, templates


def _rollout_spec(doc: YamlDoc, out: _Warnings) -> Mapping[str, Any]:
    spec = doc.data.get("spec")
    if not isinstance(spec, Mapping):
        raise _err(doc, ("spec",) if "spec" in doc.data else (), "a Rollout needs a spec mapping",
                   **({"got": spec} if "spec" in doc.data else {}))
    _keys(doc, ("spec",), spec, _SPEC_KEYS, "RolloutSpec")
    strategy = spec.get("strategy")
    if not isinstance(strategy, Mapping) or (strategy.get("canary") is None and strategy.get("blueGreen") is None):
        raise _err(doc, ("spec", "strategy") if "strategy" in spec else ("spec",),
                   "a Rollout needs spec.strategy.canary or spec.strategy.blueGreen")
    if spec.get("paused") is True:
        out.add(doc, ("spec", "paused"), _WHY["paused"])
    if isinstance(spec.get("minReadySeconds"), int) and spec["minReadySeconds"] > 0:
        out.add(doc, ("spec", "minReadySeconds"), _WHY["minReadySeconds"])
    if spec.get("progressDeadlineAbort") is True:
        out.add(doc, ("spec", "progressDeadlineAbort"), _WHY["progressDeadlineAbort"])
    return spec


def _policy_error(err: ValidationError, doc: YamlDoc) -> InputError:
    """An ArgoPolicySpec error on strategy/replicas as a line of the Rollout (``spec.*``)."""
    spec = doc.data["spec"]
    view = YamlDoc({"argo": {k: spec[k] for k in ("strategy", "replicas") if k in spec}}, doc.file,
                   {("argo",) + loc[1:]: line for loc, line in doc.lines.items() if loc[:1] == ("spec",)})
    e = validation_to_input_error(err, view)
    fld = e.field or ""
    if fld == "argo" or fld.startswith(("argo.", "argo[")):
        fld = "spec" + fld[len("argo"):]
    kwargs = {} if e.got is NOT_GIVEN else {"got": e.got}
    return InputError(e.file, e.line, fld or None, e.message, **kwargs)


def _tables(templates: _Templates, used: list[_Template]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``templates`` and ``clusterTemplates`` of the policy: the used ones, then the others
    (as ``kubectl apply`` would create them) unless their name is taken."""
    ns: dict[str, Any] = {}
    cluster: dict[str, Any] = {}
    for t in used + [t for t in templates.all if t not in used]:
        table = cluster if t.cluster else ns
        if t.name not in table:
            table[t.name] = _flattened_spec(templates, t)
    return ns, cluster


def import_argo(docs: Sequence[YamlDoc]) -> ImportResult:
    """Turn the documents of Argo Rollouts manifests into a pdsim ``argo:`` policy.

    Args:
        docs: every document of every file (``sim.yamlio.load_yaml_all``), in order.
            Objects that are not a Rollout or an analysis template (Services,
            Experiments, ...) are ignored.

    Returns:
        The policy mapping, its validated spec, the Rollout's name and the warnings.

    Raises:
        InputError: no Rollout or several; an unresolved template reference; a field
            Argo does not have or a value pdsim rejects, at its line in the manifest.
    """
    docs = list(docs)
    sources = list(dict.fromkeys(d.file for d in docs))
    files = ", ".join(sources) or "(no files)"
    rollouts, template_docs = _split_objects(docs)
    if not rollouts:
        raise InputError(sources[0] if sources else files, 1, None,
                         f"no Argo Rollout (apiVersion: {API_VERSION}, kind: Rollout) in {files}")
    if len(rollouts) > 1:
        first, second = rollouts[0], rollouts[1]
        raise _err(second, (), f"a second Rollout ({_metadata(second)[0]}); pdsim simulates one Rollout at a "
                   f"time (the first one, {_metadata(first)[0]}, is at {_where(first)})")
    rollout = rollouts[0]
    name, namespace = _metadata(rollout)
    name = name or Path(rollout.file).stem
    out = _Warnings()
    spec = _rollout_spec(rollout, out)
    loc = ("spec", "strategy")
    strategy = _check_strategy(rollout, loc, spec["strategy"], out)
    templates = _Templates([_template(d) for d in template_docs], namespace, files)
    model = _validate_strategy(rollout, loc, strategy)
    used = _resolve_all(rollout, loc, spec["strategy"], model, templates, out)
    ns_tables, cluster_tables = _tables(templates, used)

    argo: dict[str, Any] = {"strategy": strategy,
                            "replicas": spec["replicas"] if spec.get("replicas") is not None else 1}
    if ns_tables:
        argo["templates"] = ns_tables
    if cluster_tables:
        argo["clusterTemplates"] = cluster_tables
    try:
        policy_spec = PolicySpec.model_validate({"argo": argo})
    except ValidationError as err:
        raise _policy_error(err, rollout) from None
    return ImportResult(policy={"argo": argo}, spec=policy_spec.argo, name=name, warnings=out.lines,
                        sources=sources)


# --- pdsim policy files combined with template manifests ---------------------------------------------

def analysis_templates(docs: Sequence[YamlDoc]) -> list[_Template]:
    """The AnalysisTemplates and ClusterAnalysisTemplates among manifest documents (for a
    pdsim policy file combined with them).

    Raises:
        InputError: for a Rollout among them (it would be a second policy) or a bad template.
    """
    rollouts, template_docs = _split_objects(docs)
    if rollouts:
        raise _err(rollouts[0], (), "a Rollout cannot be combined with a pdsim policy file; give one of them")
    return [_template(d) for d in template_docs]


def combine_policy_file(doc: YamlDoc, data: Mapping[str, Any], manifests: Sequence[YamlDoc]) -> dict[str, Any]:
    """The policy file's mapping with the templates of the manifests added to ``argo:``.

    Raises:
        InputError: a template given both ways or twice, or a bad template manifest.
    """
    extra = analysis_templates(manifests)
    argo = data.get("argo")
    if not extra or not isinstance(argo, Mapping):
        return dict(data)
    templates = _Templates(extra, None, ", ".join(dict.fromkeys(t.doc.file for t in extra)))
    argo = dict(argo)
    added: dict[tuple[str, str], _Template] = {}
    for t in extra:
        key = "clusterTemplates" if t.cluster else "templates"
        own = argo.get(key)
        table = dict(own) if isinstance(own, Mapping) else {}
        if (key, t.name) in added:
            raise _err(t.doc, ("metadata", "name"), f"{t.kind} {t.name!r} is defined more than once (also at "
                       f"{added[key, t.name].where}); pdsim keys templates by name")
        if t.name in table:
            raise InputError(doc.file, doc.line_of(("argo", key, t.name)), f"argo.{key}.{t.name}",
                             f"also defined by the {t.kind} at {t.where}; keep one")
        table[t.name] = _flattened_spec(templates, t)
        added[key, t.name] = t
        argo[key] = table
    return {**data, "argo": argo}


def policy_file_warnings(doc: YamlDoc, data: Mapping[str, Any], spec: ArgoPolicySpec,
                         manifests: Sequence[YamlDoc] = ()) -> list[str]:
    """Check the ``argo:`` block of a (validated) pdsim policy file as a Rollout's strategy
    is checked, and return the warnings for what is not modelled.

    Args:
        doc: the policy file.
        data: the policy mapping validated as ``spec`` (templates of manifests merged in).
        spec: the validated ``argo:`` policy.
        manifests: the template manifests combined with the file (their templates'
            warnings and errors point into them).

    Raises:
        InputError: as ``import_argo`` does, at the line of the policy file.
    """
    argo = data["argo"]
    out = _Warnings()
    loc = ("argo", "strategy")
    _check_strategy(doc, loc, argo["strategy"], out)
    from_manifests = {(t.cluster, t.name): t for t in analysis_templates(manifests)}
    own: list[_Template] = []
    for key, kind in (("templates", TEMPLATE), ("clusterTemplates", CLUSTER_TEMPLATE)):
        for name, raw in (argo.get(key) or {}).items():
            t = from_manifests.get((kind == CLUSTER_TEMPLATE, name))
            if t is None:
                here = ("argo", key, name)
                t = _Template(doc, here, kind, name, None, raw,
                              _check_template_spec(doc, here, raw, nested_ok=False))
            own.append(t)
    files = ", ".join(dict.fromkeys([doc.file] + [t.doc.file for t in own]))
    templates = _Templates(own, None, files)
    _resolve_all(doc, loc, argo["strategy"], spec.strategy, templates, out)
    return out.lines


# --- writing the policy file --------------------------------------------------------------------

def policy_yaml(result: ImportResult) -> str:
    """The pdsim policy file of an import (see ``sim.importers.flagger.policy_yaml``)."""
    return _policy_yaml(result, "Argo Rollouts", "Rollout")


__all__ = ["API_VERSION", "ImportResult", "analysis_templates", "argo_objects", "combine_policy_file",
           "import_argo", "is_argo_bundle", "is_argo_object", "policy_file_warnings", "policy_yaml"]
