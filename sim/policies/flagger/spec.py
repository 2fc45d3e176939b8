"""Pydantic models of Flagger's ``spec.analysis`` (and the Canary fields beside it).

Keys are Flagger's own camelCase names so that a user can paste the ``analysis:`` block
of a real Canary (``pkg/apis/flagger/v1beta1/canary.go``: ``CanaryAnalysis``,
``CanaryMetric``, ``CanaryWebhook``). Validation is stricter than Flagger's (which falls
back to defaults on a bad duration): pdsim reports bad input instead of guessing.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidatorFunctionWrapHandler, field_validator, model_validator

from sim import limits
from sim.models import Duration, LooseModel, StrictModel, at_least
from sim.policies.flagger.queries import (
    MetricTemplateModel,
    QueryTemplateError,
    metrics_provider,
    render_query,
)
from sim.policies.judges import JudgeSpec
from sim.units import format_duration, parse_duration


class ThresholdRange(StrictModel):
    """``thresholdRange``: the check fails when the value is below ``min`` or above ``max``."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


BUILTIN_METRICS = ("request-success-rate", "request-duration")


class TemplateRef(StrictModel):
    name: str
    namespace: str | None = None


#: ``Canary.GetMetricInterval``: the interval of a builtin or inline-query metric without one.
METRIC_INTERVAL = "1m"


class FlaggerMetric(StrictModel):
    """One entry of ``analysis.metrics``.

    A builtin (``request-success-rate``, ``request-duration``), a MetricTemplate
    (``templateRef``) or an inline PromQL ``query``. ``interval`` is the query range
    (default ``1m``, ``Canary.GetMetricInterval``). ``threshold`` is the legacy bound:
    success rate fails when ``threshold > value``, anything else when ``value >
    threshold`` (``pkg/controller/scheduler_metrics.go``).
    """

    name: str
    thresholdRange: ThresholdRange | None = None
    threshold: float | None = None
    interval: Annotated[Duration, at_least(limits.MIN_INTERVAL_S, format_duration(limits.MIN_INTERVAL_S))] = 60.0
    templateRef: TemplateRef | None = None
    query: str | None = None
    templateVariables: dict[str, str] = {}
    # The interval as written ("1m", "60s"): what {{ interval }} renders; None when unset.
    _interval_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_interval_text(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> FlaggerMetric:
        metric: FlaggerMetric = handler(data)
        raw = data.get("interval") if isinstance(data, dict) else None
        if isinstance(raw, str):
            metric._interval_text = raw
        elif raw is not None:  # a bare number of seconds in a pdsim policy file
            metric._interval_text = format_duration(metric.interval)
        elif isinstance(data, FlaggerMetric):
            metric._interval_text = data._interval_text
        return metric

    @model_validator(mode="after")
    def _kind(self) -> FlaggerMetric:
        if self.templateRef is None and self.query is None and self.name not in BUILTIN_METRICS:
            raise ValueError(
                f"metric {self.name!r} is not a builtin ({', '.join(BUILTIN_METRICS)}) "
                "and has neither templateRef nor query"
            )
        if self.query is not None:
            # Whether a template renders depends on its text and the variables, not on
            # the Canary's names: checked here, where the error can point at the query.
            check_template(self.query, self.templateVariables, "query")
        return self

    @property
    def custom(self) -> bool:
        return self.templateRef is not None or self.query is not None

    def interval_text(self, template: bool = False) -> str:
        """What ``{{ interval }}`` renders for this metric: the interval as written;
        unset, ``1m`` for builtins and inline queries (``runBuiltinMetricChecks`` sets
        ``Canary.GetMetricInterval()``) but "" for a ``templateRef`` (``runMetricChecks``
        passes ``metric.Interval`` as it is)."""
        if self._interval_text is not None:
            return self._interval_text
        return "" if template else METRIC_INTERVAL


def check_template(template: str, variables: dict[str, str], what: str) -> None:
    """Raise ValueError when Flagger could not render ``template`` (``RenderQuery``) with
    these ``templateVariables``: Flagger would fail the metric's check at every analysis."""
    try:
        render_query(template, MetricTemplateModel(variables=variables))
    except QueryTemplateError as err:
        raise ValueError(f"{what}: Flagger cannot render this query template ({err})") from None


class WebhookMetadata(LooseModel):
    """A webhook's ``metadata``: free-form strings; ``cmd`` is what the Flagger load
    tester runs (a ``hey`` command there becomes canary traffic in the simulation)."""

    cmd: str | None = None

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, v: str | None) -> str | None:
        if v:
            try:
                load = hey_load(v)
            except (ValueError, ArithmeticError) as err:
                raise ValueError(f"cannot read this load test command: {err}") from None
            if load is not None and load[0] > limits.MAX_RATE_PER_S:
                raise ValueError(
                    f"this load test sends {load[0]:.10g} requests/s, "
                    f"above the limit of {limits.MAX_RATE_PER_S:g} requests/s"
                )
        return v

    def get(self, key: str, default: str | None = None) -> str | None:
        """Dict-style access to any metadata key."""
        if key == "cmd":
            return self.cmd if self.cmd is not None else default
        return (self.model_extra or {}).get(key, default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value


HookType = Literal[
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
]


class FlaggerWebhook(StrictModel):
    """``analysis.webhooks[]``. An empty ``type`` is a rollout hook (``runAnalysis``)."""

    name: str
    type: HookType | Literal[""] = "rollout"
    url: str = ""
    timeout: Duration = 10.0
    muteAlert: bool = False
    retries: int = 0
    disableTLS: bool = False
    metadata: WebhookMetadata | None = None

    @property
    def kind(self) -> str:
        return self.type or "rollout"

    def load_test_rate(self) -> tuple[float, float] | None:
        """Requests/s and duration (s) of a Flagger load-tester ``hey`` command, if any."""
        return hey_load(self.metadata.cmd or "") if self.metadata is not None else None


def hey_load(cmd: str) -> tuple[float, float] | None:
    """Requests/s and duration (s) of a ``hey`` command; None when it is not one.

    ``hey -z 1m -q 10 -c 2 URL`` sends ``q`` queries per second from each of ``c``
    workers for ``z``; ``-n N`` without ``-z`` sends N requests in total. Unthrottled
    for a duration (no ``-q``), the rate depends on latency: not modelled (None).

    Raises:
        ValueError: on options hey would reject.
    """
    if not cmd.strip().startswith("hey"):
        return None
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    opts: dict[str, str] = {}
    for flag, value in zip(words, words[1:]):
        if re.fullmatch(r"-[a-zA-Z]+", flag):
            opts[flag] = value
    workers = int(opts.get("-c", "50"))
    qps = float(opts.get("-q", "0"))
    if workers < 1 or not qps >= 0 or math.isinf(qps):
        raise ValueError("-c must be at least 1 and -q a finite number, not negative")
    duration = parse_duration(opts["-z"]) if "-z" in opts else None
    if duration is not None and duration <= 0:
        raise ValueError("-z must be a positive duration")
    if duration is None:
        n = int(opts.get("-n", "200"))
        if n < 1:
            raise ValueError("-n must be at least 1")
        rate = workers * qps if qps > 0 else float(n)  # unthrottled: all in about a second
        return rate, max(n / rate, 1.0)
    if qps <= 0:
        return None
    return workers * qps, duration


class StringMatch(StrictModel):
    """An Istio ``StringMatch``: exactly one of exact, prefix, suffix, regex."""

    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: str | None = None

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.exact is not None:
            return value == self.exact
        if self.prefix is not None:
            return value.startswith(self.prefix)
        if self.suffix is not None:
            return value.endswith(self.suffix)
        if self.regex is not None:
            return re.fullmatch(self.regex, value) is not None  # Envoy: full-string RE2 match
        return False


class HTTPMatch(LooseModel):
    """An Istio ``HTTPMatchRequest`` of ``analysis.match``: headers must all match."""

    headers: dict[str, StringMatch] = {}


#: ``Canary.GetAnalysisInterval`` runs intervals under 10s every 10s.
MIN_INTERVAL_S = 10.0


class FlaggerAnalysis(StrictModel):
    """Flagger ``spec.analysis``.

    Defaults are Flagger's: ``interval`` 60s (values under 10s run every 10s,
    ``Canary.GetAnalysisInterval``); ``threshold`` <= 0 means 1
    (``Canary.GetAnalysisThreshold``); ``maxWeight`` unset means 100
    (``scheduler.go``, ``maxWeight``). The strategy follows ``DeploymentStrategy()``:
    ``match`` with ``iterations`` is A/B testing, ``iterations`` alone blue/green,
    anything else a canary.
    """

    interval: Duration = 60.0
    threshold: int = 0
    iterations: Annotated[int, Field(ge=0)] = 0
    mirror: bool = False
    mirrorWeight: Annotated[int, Field(ge=0, le=100)] = 0
    maxWeight: Annotated[int, Field(ge=0, le=100)] | None = None
    stepWeight: Annotated[int, Field(ge=0, le=100)] = 0
    stepWeights: list[Annotated[int, Field(ge=0, le=100)]] = []
    stepWeightPromotion: Annotated[int, Field(ge=0, le=100)] = 0
    primaryReadyThreshold: Annotated[int, Field(ge=0, le=100)] | None = None
    canaryReadyThreshold: Annotated[int, Field(ge=0, le=100)] | None = None
    metrics: list[FlaggerMetric] = []
    webhooks: list[FlaggerWebhook] = []
    match: list[HTTPMatch] = []
    alerts: list[dict[str, Any]] = []
    sessionAffinity: SessionAffinity | None = None

    @model_validator(mode="after")
    def _steps(self) -> FlaggerAnalysis:
        if any(b <= a for a, b in zip(self.stepWeights, self.stepWeights[1:])):
            raise ValueError(f"stepWeights must increase (got {self.stepWeights})")
        return self

    @property
    def analysis_threshold(self) -> int:
        """Failed checks that roll the canary back: ``threshold``, and 1 when it is 0 or
        less (``pkg/apis/flagger/v1beta1/canary.go``, ``GetAnalysisThreshold``)."""
        return self.threshold if self.threshold > 0 else 1

    @property
    def primary_ready_threshold(self) -> int:
        """Percent of the primary's updated pods that must be available for it to count
        as ready: ``primaryReadyThreshold``, 100 when unset
        (``Canary.GetAnalysisPrimaryReadyThreshold``)."""
        return 100 if self.primaryReadyThreshold is None else self.primaryReadyThreshold

    @property
    def canary_ready_threshold(self) -> int:
        """The same for the canary: ``canaryReadyThreshold``, 100 when unset
        (``Canary.GetAnalysisCanaryReadyThreshold``)."""
        return 100 if self.canaryReadyThreshold is None else self.canaryReadyThreshold

    @property
    def analysis_interval(self) -> float:
        """Seconds between two analysis runs: ``interval``, at least 10s
        (``pkg/apis/flagger/v1beta1/canary.go``, ``GetAnalysisInterval``)."""
        return max(self.interval, MIN_INTERVAL_S)


class MetricTemplateSpec(StrictModel):
    """The parts of a Flagger ``MetricTemplate`` that matter here: its query and provider
    (``type``: ``prometheus`` when unset). Prometheus queries are evaluated on the
    simulated series; which simulated signal another provider's query measures is bound in
    the scenario (``telemetry.metrics``)."""

    query: str = ""
    provider: dict[str, Any] = {}

    @property
    def provider_type(self) -> str:
        """The metric source: ``providers/factory.go`` ``Factory.Provider`` falls back to
        Prometheus for a type it does not know (or none)."""
        kind = self.provider.get("type")
        return kind if isinstance(kind, str) and kind in PROVIDER_TYPES else "prometheus"


#: MetricTemplate provider types (``pkg/metrics/providers/factory.go``, the CRD's enum).
PROVIDER_TYPES = frozenset(
    {
        "prometheus",
        "influxdb",
        "datadog",
        "externalmetrics",
        "stackdriver",
        "cloudwatch",
        "newrelic",
        "graphite",
        "dynatrace",
        "keptn",
        "splunk",
    }
)

#: The Flagger release simulated when a policy names none: the latest, whose behaviour is
#: read from fluxcd/flagger at the commit docs/architecture.md names.
LATEST_VERSION = "1.44"
#: The oldest release pdsim accepts: its scheduler is the one simulated, with the changes
#: listed at ``FlaggerPolicySpec.version`` undone.
OLDEST_VERSION = (1, 0)
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?")

#: Defaults of the Canary's names in a pdsim policy file (Flagger's documentation's podinfo).
DEFAULT_NAMESPACE, DEFAULT_TARGET = "default", "podinfo"


class CanaryMetadata(StrictModel):
    """The Canary's ``metadata``: its name (default: the target's name) and namespace."""

    name: str | None = None
    namespace: str = DEFAULT_NAMESPACE


class TargetRef(StrictModel):
    """``spec.targetRef``: the workload under test (``LocalObjectReference``)."""

    apiVersion: str = "apps/v1"
    kind: Literal["Deployment", "DaemonSet", "Service"] = "Deployment"
    name: str = DEFAULT_TARGET


class HTTPRetry(StrictModel):
    """``spec.service.retries``: Istio's ``HTTPRetry``, written into every route of the
    VirtualService (fluxcd/flagger ``pkg/router/istio.go``, ``Retries: canary.Spec.Service.Retries``)."""

    attempts: Annotated[int, Field(ge=0, le=100)] = 0
    perTryTimeout: Duration = 0.0
    retryOn: str = ""
    retryRemoteLocalities: bool | None = None


class SessionAffinity(LooseModel):
    """``analysis.sessionAffinity`` (``pkg/apis/flagger/v1beta1/canary.go``): the cookie
    attributes other than the names and ``maxAge`` do not change routing."""

    cookieName: str = ""
    maxAge: Annotated[int, Field(ge=0)] = 0
    primaryCookieName: str = ""

    @property
    def max_age_s(self) -> float:
        """``GetMaxAge``: 0 means a day."""
        return float(self.maxAge or 86400)


class ServiceName(StrictModel):
    """``spec.service``: its ``name`` names series (default: the target's name), its
    ``retries`` are the mesh's on the live routes; the other Service keys do not change
    decisions."""

    name: str | None = None
    retries: HTTPRetry | None = None


class ObjectRef(StrictModel):
    """``spec.ingressRef`` / ``spec.routeRef``: the ingress or route Flagger manages."""

    apiVersion: str = ""
    kind: str = ""
    name: str


@dataclass(frozen=True)
class CanaryNames:
    """The names Flagger derives from a Canary, which the simulated series must carry.

    Attributes:
        name: the Canary's name.
        namespace: its namespace.
        target: ``targetRef.name``: the canary workload.
        primary: the primary workload, ``<target>-primary``
            (``pkg/canary/deployment_controller.go``).
        service: the apex service, ``service.name`` or the target's name
            (``Canary.GetServiceNames``).
        canary_service: ``<service>-canary``.
        primary_service: ``<service>-primary``.
        ingress: ``ingressRef.name``, or the target's name (``toMetricModel``).
        route: ``routeRef.name``, or the target's name (``toMetricModel``; for Knative,
            Flagger uses the latest created revision's name, which pdsim does not know).
    """

    name: str
    namespace: str
    target: str
    primary: str
    service: str
    canary_service: str
    primary_service: str
    ingress: str
    route: str


class FlaggerPolicySpec(StrictModel):
    """The ``flagger:`` policy: an ``analysis`` block plus the Canary fields that decide.

    ``progressDeadlineSeconds`` (default 600) bounds how long a workload may stay
    unavailable before Flagger rolls back (``pkg/canary/deployment_ready.go``).
    ``provider: kubernetes`` has no traffic shifting: blue/green only, with
    ``iterations`` forced to 10 when unset (``advanceCanary``). ``metricTemplates``
    holds the MetricTemplates referenced by ``templateRef`` (imported manifests fill it).
    ``judge`` (pdsim's extension, not Flagger's) is a statistical judge that replaces the
    threshold checks of the builtin metrics it judges (``sim.policies.judges``).
    ``metadata``, ``targetRef``, ``service``, ``ingressRef`` and ``routeRef`` are the
    Canary's names the metric queries render (``{{ namespace }}``, ``{{ target }}``, ...):
    see :meth:`names`.

    ``suspend`` is the Canary's ``spec.suspend``: ``advanceCanary`` returns at every tick
    before doing anything, so the new revision is never analysed. ``version`` (pdsim's,
    not a Canary field) names the Flagger release simulated, ``"1.44"`` (the latest) by
    default; before 1.44 a promotion whose primary never becomes ready rolls back (all
    traffic to the failing primary, canary scaled to zero) instead of keeping the canary
    serving (fluxcd/flagger #1931), and ``skipAnalysis`` calls no post-rollout hooks
    (fluxcd/flagger #1918).
    """

    analysis: FlaggerAnalysis | None = None
    suspend: bool = False
    version: str = LATEST_VERSION
    progressDeadlineSeconds: Annotated[int, Field(ge=0)] = 600
    provider: str = "istio"
    skipAnalysis: bool = False
    metricTemplates: dict[str, MetricTemplateSpec] = {}
    judge: JudgeSpec | None = None
    metadata: CanaryMetadata = CanaryMetadata()
    targetRef: TargetRef = TargetRef()
    service: ServiceName = ServiceName()
    ingressRef: ObjectRef | None = None
    routeRef: ObjectRef | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        m = _VERSION.fullmatch(v.strip())
        latest = tuple(int(x) for x in LATEST_VERSION.split("."))
        if m is None:
            raise ValueError(f"a Flagger release like {LATEST_VERSION!r} or 'v1.43.0'")
        got = (int(m.group(1)), int(m.group(2)))
        if not OLDEST_VERSION <= got <= latest:
            raise ValueError(
                f"pdsim simulates Flagger releases {OLDEST_VERSION[0]}.{OLDEST_VERSION[1]} to {LATEST_VERSION}"
            )
        return v

    def controller_version(self) -> tuple[int, int]:
        """``version`` as (major, minor)."""
        m = _VERSION.fullmatch(self.version.strip())
        assert m is not None  # validated
        return int(m.group(1)), int(m.group(2))

    def names(self) -> CanaryNames:
        """The Canary's names (``toMetricModel`` and ``GetServiceNames`` in Flagger)."""
        target = self.targetRef.name
        service = self.service.name or target
        return CanaryNames(
            name=self.metadata.name or target,
            namespace=self.metadata.namespace,
            target=target,
            primary=f"{target}-primary",
            service=service,
            canary_service=f"{service}-canary",
            primary_service=f"{service}-primary",
            ingress=self.ingressRef.name if self.ingressRef is not None else target,
            route=self.routeRef.name if self.routeRef is not None else target,
        )

    def template_model(self, metric: FlaggerMetric, template: bool = False) -> MetricTemplateModel:
        """``toMetricModel`` (``scheduler_metrics.go``) for one metric: the Canary's names,
        the metric's interval text and its ``templateVariables``."""
        n = self.names()
        return MetricTemplateModel(
            name=n.name,
            namespace=n.namespace,
            target=n.target,
            service=n.service,
            ingress=n.ingress,
            route=n.route,
            interval=metric.interval_text(template),
            variables=dict(metric.templateVariables),
        )

    def metrics_provider(self) -> str:
        """The provider whose observer runs the builtin queries (``runBuiltinMetricChecks``)."""
        return metrics_provider(self.provider, self.targetRef.kind, self.targetRef.apiVersion)

    @model_validator(mode="after")
    def _check(self) -> FlaggerPolicySpec:
        a = self.analysis
        for m in a.metrics if a is not None else ():
            ref = m.templateRef.name if m.templateRef is not None else None
            t = self.metricTemplates.get(ref) if ref is not None else None
            if t is not None:
                check_template(t.query, m.templateVariables, f"metric {m.name!r}: MetricTemplate {ref!r}")
        if a is None or self.skipAnalysis:
            return self
        canary = a.iterations == 0 and self.provider != "kubernetes"
        if canary and a.stepWeight == 0 and not a.stepWeights:
            raise ValueError(
                "analysis: stepWeight or stepWeights must be set for a canary "
                "(with neither the canary never advances), or iterations for A/B and blue/green"
            )
        return self

    def strategy(self) -> str:
        """``Canary.DeploymentStrategy()``, after the kubernetes-provider overrides."""
        a = self.analysis
        if a is None:
            return "canary"
        if self.provider == "kubernetes":
            return "blue-green"
        if a.match and a.iterations > 0:
            return "ab-testing"
        if a.iterations > 0:
            return "blue-green"
        return "canary"

    def iterations(self) -> int:
        """Iterations the strategy runs (kubernetes: at least 10, ``advanceCanary``)."""
        n = self.analysis.iterations if self.analysis is not None else 0
        return 10 if self.provider == "kubernetes" and n < 1 else n
