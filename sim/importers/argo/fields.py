"""What each key of Argo Rollouts' types becomes on import, and the checks shared by the
importer's parts (``sim.importers.argo.rollout`` explains the four ways a key is handled).

The key tables (``SPEC_KEYS``, ``CANARY_KEYS``, ...) list every field of an Argo type, so
a key outside them is an error (``check_keys``); ``WHY`` holds the reason of each warning
(``Warnings`` keeps them in order, each once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sim.importers.manifests import error_at, warning_at
from sim.units import parse_duration
from sim.yamlio import YamlDoc

GROUP = "argoproj.io/"
API_VERSION = "argoproj.io/v1alpha1"
ROLLOUT, TEMPLATE, CLUSTER_TEMPLATE = "Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"
KINDS = (ROLLOUT, TEMPLATE, CLUSTER_TEMPLATE)

# --- what each Argo type's keys become --------------------------------------------------------

#: ``RolloutSpec``. Copied: replicas, strategy, progressDeadlineSeconds, progressDeadlineAbort.
#: Warned: paused, minReadySeconds. The rest is quiet (see the module docstring).
SPEC_KEYS = frozenset(
    {
        "replicas",
        "strategy",
        "paused",
        "minReadySeconds",
        "progressDeadlineAbort",
        "selector",
        "template",
        "workloadRef",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "restartAt",
        "analysis",
        "rollbackWindow",
    }
)
#: ``CanaryStrategy``. Modelled: steps, analysis, trafficRouting. Warned: dynamicStableScale,
#: replicaProgressThreshold. Quiet: the rest.
CANARY_KEYS = frozenset(
    {
        "steps",
        "analysis",
        "trafficRouting",
        "dynamicStableScale",
        "replicaProgressThreshold",
        "canaryService",
        "stableService",
        "maxUnavailable",
        "maxSurge",
        "antiAffinity",
        "canaryMetadata",
        "stableMetadata",
        "scaleDownDelaySeconds",
        "scaleDownDelayRevisionLimit",
        "abortScaleDownDelaySeconds",
        "pingPong",
        "minPodsPerReplicaSet",
    }
)
#: ``BlueGreenStrategy``. Modelled: auto promotion, previewReplicaCount and the two analyses.
BLUE_GREEN_KEYS = frozenset(
    {
        "autoPromotionEnabled",
        "autoPromotionSeconds",
        "prePromotionAnalysis",
        "postPromotionAnalysis",
        "scaleDownDelaySeconds",
        "activeService",
        "previewService",
        "previewReplicaCount",
        "maxUnavailable",
        "scaleDownDelayRevisionLimit",
        "antiAffinity",
        "previewMetadata",
        "activeMetadata",
        "abortScaleDownDelaySeconds",
    }
)
#: ``RolloutTrafficRouting``: the routers all set the canary weight pdsim routes by.
ROUTERS = frozenset({"istio", "nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins"})
ROUTING_KEYS = ROUTERS | {"managedRoutes", "maxTrafficWeight"}
#: Routers Argo accepts for ``setHeaderRoute`` / ``setMirrorRoute`` (validation.go).
HEADER_ROUTERS = ("istio", "alb", "apisix", "plugins")
MIRROR_ROUTERS = ("istio", "plugins")
#: ``CanaryStep``: exactly one of these.
STEP_KEYS = frozenset(
    {"setWeight", "pause", "experiment", "analysis", "setCanaryScale", "setHeaderRoute", "setMirrorRoute", "plugin"}
)
HEADER_ROUTE_KEYS = frozenset({"name", "match"})
HEADER_MATCH_KEYS = frozenset({"headerName", "headerValue"})
STRING_MATCH_KEYS = frozenset({"exact", "prefix", "regex"})
MIRROR_ROUTE_KEYS = frozenset({"name", "match", "percentage"})
ROUTE_MATCH_KEYS = frozenset({"method", "path", "headers"})
#: ``RolloutAnalysis``; ``RolloutAnalysisBackground`` adds ``startingStep``.
ANALYSIS_KEYS = frozenset({"templates", "args", "dryRun", "measurementRetention", "analysisRunMetadata"})
BACKGROUND_KEYS = ANALYSIS_KEYS | {"startingStep"}
REF_KEYS = frozenset({"templateName", "clusterScope"})
ARG_KEYS = frozenset({"name", "value", "valueFrom"})
RUN_VALUE_FROM_KEYS = frozenset({"podTemplateHashValue", "fieldRef"})  # ArgumentValueFrom
TEMPLATE_VALUE_FROM_KEYS = frozenset({"secretKeyRef", "fieldRef"})  # ValueFrom
#: ``AnalysisTemplateSpec``.
TEMPLATE_KEYS = frozenset({"metrics", "args", "dryRun", "measurementRetention", "templates"})
#: ``Metric``: every key decides, every one is modelled.
METRIC_KEYS = frozenset(
    {
        "name",
        "interval",
        "initialDelay",
        "count",
        "successCondition",
        "failureCondition",
        "failureLimit",
        "inconclusiveLimit",
        "consecutiveErrorLimit",
        "provider",
        "consecutiveSuccessLimit",
    }
)
DURATION_FIELDS = ("interval", "initialDelay")
COUNT_FIELDS = ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit")
#: ``MetricProvider``: exactly one. Only Prometheus is answered by the simulated telemetry.
PROVIDERS = (
    "prometheus",
    "kayenta",
    "web",
    "datadog",
    "wavefront",
    "newRelic",
    "job",
    "cloudWatch",
    "graphite",
    "influxdb",
    "skywalking",
    "plugin",
)
PROMETHEUS_KEYS = frozenset({"address", "query", "authentication", "timeout", "insecure", "headers", "rangeQuery"})

_GO_DURATION = re.compile(r"^(?:0|(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
SYMBOLIC = re.compile(r"\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}|<[A-Za-z0-9_.-]+>")

WHY = {
    "paused": "a paused Rollout does not progress until it is resumed; pdsim simulates it as if resumed",
    "minReadySeconds": "pods count as available only this long after they are ready; pdsim's canary is "
    "available as soon as it is ready (the scenario's startup time)",
    "dynamicStableScale": "pdsim shrinks the stable ReplicaSet as canary traffic grows, as Argo does, but "
    "after an abort Argo gives it traffic back only as it scales up again; pdsim's stable takes the traffic "
    "back at once",
    "replicaProgressThreshold": "pdsim applies the threshold, but the pods of one scale-up become available "
    "together there, so a step still waits for the whole canary unless some pods never get ready",
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
    "kayenta": "the canary config lives in Kayenta: pdsim's Kayenta replica judges {name} with the "
    "policy's canaryConfigs entry of that canaryConfigName, else its default config (error "
    "percentage, direction increase)",
    "job": "the Job is not run: its outcome is scripted in the scenario by metric name "
    "(webhooks: {{{name}: ...}}), default pass",
    "provider": "pdsim has no {kind} data: the outcome is scripted in the scenario by metric name "
    "(webhooks: {{{name}: ...}}), default pass; successCondition/failureCondition are not evaluated",
    "rangeQuery": "a range query returns a series in Argo; pdsim answers with the current value only",
}


# --- small helpers ----------------------------------------------------------------------------


def check_keys(doc: YamlDoc, loc: tuple[Any, ...], node: Any, known: frozenset[str], what: str) -> None:
    """Unknown keys are errors, as for ``kubectl apply`` (strict field validation)."""
    if not isinstance(node, Mapping):
        return
    for key in node:
        if key not in known:
            raise error_at(doc, loc + (key,), f"unknown key: not a field of Argo's {what} ({API_VERSION})")


def as_list(node: Any) -> list[Any]:
    """``node`` when it is a list, else an empty list (validation reports a wrong type)."""
    return node if isinstance(node, list) else []


def field_location(doc: YamlDoc, loc: Sequence[Any]) -> str:
    """``FILE:LINE (FIELD)`` of a place, for messages that point at a second place."""
    return f"{doc.file}:{doc.line_of(loc)} ({doc.field_path(loc)})"


class Warnings:
    """Warnings in order, each once (a template used by several analyses warns once)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, doc: YamlDoc, loc: Sequence[Any], why: str) -> None:
        """Warn that the field at ``loc`` in ``doc`` is not modelled, unless already warned."""
        line = warning_at(doc, tuple(loc), why)
        if line not in self.lines:
            self.lines.append(line)


def go_duration(doc: YamlDoc, loc: tuple[Any, ...], text: str, note: str = "") -> float:
    """A Go duration (``time.ParseDuration``: a unit is required, except for 0)."""
    ok = bool(_GO_DURATION.match(text.strip()))
    try:
        seconds = parse_duration(text.strip()) if ok else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise error_at(doc, loc, f"not a Go duration such as 30s, 5m or 1h30m{note}", got=text)
    return seconds


def whole_number(doc: YamlDoc, loc: tuple[Any, ...], text: str, note: str = "") -> int:
    """A count written as text (``"3"``, e.g. once ``{{args.count}}`` is substituted)."""
    try:
        return int(text.strip())
    except ValueError:
        raise error_at(doc, loc, f"not a whole number{note}", got=text) from None
