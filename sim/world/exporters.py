"""Which series each provider's exporter publishes, with which labels (issue 14, item 1).

The world counts requests and latencies per version, per pod and per response code. This
module decides, per provider, how those counts appear in Prometheus: the metric names,
the label sets (what the exporter writes plus what the usual scrape configuration adds),
whether a series is per application pod or summed over them by a proxy, whether a
histogram is split by response code, the exporter's default buckets and how it writes
their ``le``. The label values are chosen so that Flagger's builtin queries
(fluxcd/flagger ``pkg/metrics/observers/*.go``) and real templates select the canary's
series exactly as they would in a cluster set up by Flagger's or Argo's routers
(fluxcd/flagger ``pkg/router/*.go``).

Per provider (``pod``: per application pod, or one proxy series summed over the pods;
``by code``: whether the histogram carries the response code):

============  ===============================================  ========  =======  =========
provider      series                                           pod       by code  buckets
============  ===============================================  ========  =======  =========
istio         istio_requests_total, istio_request_duration_    per pod   yes      Envoy, ms
              milliseconds_*; reporter destination (per pod)   (source:
              and source (the ingress gateway's)               summed)
linkerd       response_total, response_latency_ms_*            per pod   yes      Linkerd, ms
nginx         nginx_ingress_controller_requests,               summed    yes      client_golang, s
              ..._request_duration_seconds_*,
              ..._response_duration_seconds_*
contour       envoy_cluster_upstream_rq(_total),               summed    no       Envoy, ms
gloo          envoy_cluster_upstream_rq_time_*                 summed    no       Envoy, ms
ambassador    (the Envoy of each gateway)                      summed    no       Envoy, ms
knative       (the same, Kourier's Envoy) and queue-proxy's    summed /  no       Envoy, ms
              revision_app_request_count (per pod)             per pod
appmesh       the same Envoy families, from each pod's sidecar per pod   no       Envoy, ms
kuma          the same Envoy families, from each pod's sidecar per pod   no       Envoy, ms
osm           osm_request_total, osm_request_duration_ms_*     per pod   yes      Envoy, ms
traefik       traefik_service_requests_total,                  summed    yes      Traefik, s
              traefik_service_request_duration_seconds_*
skipper       skipper_serve_route_duration_seconds_*,          summed    yes      client_golang, s
              skipper_response_duration_seconds_*
apisix        apisix_http_status, apisix_http_latency_*        per pod   no       APISIX, ms
                                                               (node)
kubernetes,   the application's own http_requests_total,      per pod   yes      client_golang, s
gatewayapi,   http_request_duration_seconds_* (podinfo's)
alb
============  ===============================================  ========  =======  =========

How each provider's labels tell the versions apart (F: Flagger's builtin selects it):

* istio: ``destination_workload`` (F: ``=~"<target>"``, anchored, so the primary's
  ``<target>-primary`` is not selected); ``destination_service`` is the FQDN of the service
  the request was routed to (Argo's templates select the canary service by it).
* linkerd: ``deployment`` (F); nginx: ``canary`` is the canary backend
  (``<namespace>-<canary service>-<port>``, ingress-nginx's upstream name) on requests the
  canary served and ``""`` on the primary's, ``ingress`` is the main ingress (F:
  ``canary!=""``); contour: ``envoy_cluster_name`` ``<ns>_<service>_<port>`` (F:
  ``<ns>_<svc>-canary_...``); gloo: ``<ns>-<apex>-{canary,primary}upstream-<port>_<ns>``;
  kuma: ``service`` (the kuma.io/service tag ``<svc>_<ns>_svc_<port>``); appmesh and
  kubernetes: ``kubernetes_pod_name`` (F: ``<target>-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)``, which
  a ``<target>-primary-<hash>-<id>`` pod does not match); osm: ``destination_name``;
  traefik: ``service`` ``<ns>-<svc>-<port>@kubernetescrd``; skipper: ``route``, the
  route id of the canary ingress's backend; knative: ``envoy_cluster_name``
  ``<ns>/<revision>`` (F selects the latest created revision).
* apisix: Flagger's router sends both versions through one ApisixRoute
  ``<route>-<apex>-canary`` (fluxcd/flagger ``pkg/router/apisix.go`` Reconcile), so its
  builtin, which selects on ``route``, reads both versions' traffic; only ``node`` (the
  upstream pod's address) tells them apart.

Argo Rollouts (``argo_workloads``): both versions are pods of the one Rollout, told apart
by their ``rollouts-pod-template-hash`` and by the canary and stable services that select
them. Which labels of an AnalysisTemplate select which version, per trafficRouting kind:

==============  ============================================================================
trafficRouting  canary selected by
==============  ============================================================================
istio           ``destination_service="<canary svc>.<ns>.svc.cluster.local"`` (or
                ``destination_service_name``), reporter source or destination; pod names
                ``<rollout>-<canary hash>-...``; ``destination_workload`` is the Rollout
                for both versions (Istio strips the ReplicaSet's hash)
nginx           ``canary!=""`` / ``service="<canary svc>"`` with ``ingress="<stable ingress>"``
alb             the application's own series: ``kubernetes_pod_name=~"<rollout>-<canary
                hash>-.*"`` (ALB's own metrics are CloudWatch's, not Prometheus's)
smi             Linkerd's ``response_total``: ``rollouts_pod_template_hash="<canary hash>"``
                or ``pod=~"<rollout>-<canary hash>-.*"`` (``deployment`` is absent)
apisix          ``node`` only (one route carries both versions)
traefik         ``service="<ns>-<canary svc>-<port>@kubernetescrd"``
ambassador      ``envoy_cluster_name`` ``cluster_<canary svc>_<ns>`` (Emissary's cluster
                names; the exact suffix varies, select with ``=~``)
appmesh         ``kubernetes_pod_name`` (the canary's hash), or ``envoy_cluster_name`` of
                the canary virtual node's inbound cluster
kubernetes      (plain replica-based canary) ``kubernetes_pod_name=~"<rollout>-<canary
                hash>-.*"``: nothing else differs, so a template that selects by app or
                namespace reads both versions, as it would in a cluster
==============  ============================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

from sim.policies.names import k8s_token, pod_template_hash
from sim.promql.series import Labels

REQUESTS, BUCKET, SUM, COUNT = 0, 1, 2, 3
#: The application's business counters (issue 19, ``sim.world.business``): a series of
#: one of these kinds counts that quantity of the sessions its pod served.
SESSIONS, CONVERSIONS, ORDER_VALUE, ENGAGEMENT = 4, 5, 6, 7
BUSINESS_KINDS = (SESSIONS, CONVERSIONS, ORDER_VALUE, ENGAGEMENT)
#: Their names, in the style of a shop's own exporter (client_golang counters, ``_total``):
#: sessions started, sessions that converted (orders), the sum of the orders' values in
#: the shop's currency, and engagement events (clicks, items viewed).
BUSINESS_SERIES = {
    SESSIONS: "pdsim_sessions_total",
    CONVERSIONS: "pdsim_conversions_total",
    ORDER_VALUE: "pdsim_order_value_total",
    ENGAGEMENT: "pdsim_engagement_total",
}
PRIMARY, CANARY = 0, 1
#: A series both versions' requests count in (``Universe.version``).
BOTH = 2
#: The canary's requests addressed to the stable Service (Argo blue-green after the
#: switch: the active Service selects the new pods), and all of the canary's requests, and
#: every request addressed to the stable Service whichever version served it.
CANARY_VIA_STABLE, CANARY_ALL, STABLE_ROUTE = 3, 4, 5
#: Both versions' requests through their own Services (a series that cannot tell them
#: apart, where no request of the canary addresses the stable Service).
OWN_ROUTES = 6
#: Which of the world's cell versions (0 primary, 1 canary through its own Service, 2
#: canary through the stable Service) each ``Universe.version`` counts.
CELL_VERSIONS: dict[int, frozenset[int]] = {
    PRIMARY: frozenset({0}),
    CANARY: frozenset({1}),
    BOTH: frozenset({0, 1, 2}),
    CANARY_VIA_STABLE: frozenset({2}),
    CANARY_ALL: frozenset({1, 2}),
    STABLE_ROUTE: frozenset({0, 2}),
    OWN_ROUTES: frozenset({0, 1}),
}


@dataclass(frozen=True)
class Workloads:
    """The names the series of a rollout carry.

    Attributes:
        namespace: the workloads' namespace.
        canary: the canary workload (Flagger: ``targetRef.name``; Argo: the Rollout's
            name; Knative: the latest created revision).
        primary: the primary workload (Flagger: target + ``-primary``; Argo: the Rollout's
            name; Knative: the primary revision).
        canary_service, primary_service, apex_service: the Kubernetes services.
        ingress: the ingress the proxy providers route through (Flagger's ``{{ ingress }}``;
            Argo: the stable ingress).
        route: Flagger's ``{{ route }}`` (routeRef, or the latest revision for Knative).
        canary_hash, primary_hash: pod-template hashes ("" derives one from the name).
        port: the service port.
        kind: the workload kind: ``Deployment`` (Flagger) or ``Rollout`` (Argo).
        live_via_stable: live requests reach the canary through the stable Service (Argo
            blue-green: the active Service selects the new pods once switched); its
            smoke-test and mirrored requests still address its own (preview) Service.
    """

    namespace: str
    canary: str
    primary: str
    canary_service: str
    primary_service: str
    apex_service: str
    ingress: str = ""
    route: str = ""
    canary_hash: str = ""
    primary_hash: str = ""
    port: int = 80
    kind: str = "Deployment"
    live_via_stable: bool = False


@dataclass(frozen=True)
class Universe:
    """The series an exporter publishes for a rollout, and what each one counts.

    Attributes:
        labels: the K series (with ``__name__``).
        version: (K,) whose requests a series counts, a key of ``CELL_VERSIONS``.
        pod: (K,) index of the version's pod, or -1 for a series summed over its pods.
        code: (K,) index into the response codes, or -1 for a series summed over codes.
        kind: (K,) ``REQUESTS``, ``BUCKET``, ``SUM`` or ``COUNT``.
        bucket: (K,) for ``BUCKET``: index into ``bounds_ms`` (``len(bounds_ms)`` for
            ``+Inf``); else -1.
        bounds_ms: finite bucket bounds in ms, the world draws latencies into them.
        sum_scale: a latency sum in ms times this is the ``_sum`` series' value.
        codes: the response codes ``code`` indexes.
        live_via_stable: the canary's live requests address the stable Service
            (``Workloads.live_via_stable``).
    """

    labels: tuple[Labels, ...]
    version: np.ndarray
    pod: np.ndarray
    code: np.ndarray
    kind: np.ndarray
    bucket: np.ndarray
    bounds_ms: tuple[float, ...]
    sum_scale: float
    codes: tuple[str, ...] = field(default=())
    live_via_stable: bool = False

    def take(self, ix: np.ndarray) -> Universe:
        """The universe of the series ``ix`` (indexes, in that order) only."""
        return replace(
            self,
            labels=tuple(self.labels[i] for i in ix),
            version=self.version[ix],
            pod=self.pod[ix],
            code=self.code[ix],
            kind=self.kind[ix],
            bucket=self.bucket[ix],
        )


# --- names as Kubernetes and the routers make them -------------------------------------


def pod_names(workload: str, hash: str, n: int) -> tuple[str, ...]:
    """Names of a workload's ``n`` pods, ``<workload>-<hash>-<5 chars>`` as a ReplicaSet names them.

    Deterministic and distinct. An empty ``hash`` derives one from the workload's name.
    """
    template = hash or pod_template_hash(workload)
    names: list[str] = []
    i = 0
    while len(names) < n:
        name = f"{workload}-{template}-{k8s_token(f'{workload}-{template}/{i}', 5)}"
        i += 1
        if name not in names:  # a collision of 5-character ids is possible, not in a cluster
            names.append(name)
    return tuple(names)


def _hashes(names: Workloads) -> tuple[str, str]:
    """(primary, canary) pod-template hashes, derived from the names when not given.

    Two versions of one workload (an Argo Rollout without hashes given) get distinct ones.
    """
    primary = names.primary_hash or pod_template_hash(names.primary)
    canary = names.canary_hash or pod_template_hash(names.canary)
    if canary == primary:
        canary = pod_template_hash(names.canary + "/canary")
    return primary, canary


def version_pods(names: Workloads, pods: tuple[int, int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The pod names of (primary, canary), as the universe's series carry them."""
    primary_hash, canary_hash = _hashes(names)
    return pod_names(names.primary, primary_hash, pods[0]), pod_names(names.canary, canary_hash, pods[1])


def argo_workloads(
    rollout_name: str,
    namespace: str,
    canary_service: str,
    stable_service: str,
    canary_hash: str,
    stable_hash: str,
    *,
    stable_ingress: str = "",
    port: int = 80,
    live_via_stable: bool = False,
) -> Workloads:
    """The names an Argo Rollout's series carry: both versions are the Rollout's pods.

    The canary and the stable ReplicaSets differ only by their pod-template hash (label
    ``rollouts-pod-template-hash``) and the services that select them. Without a
    stable service (a replica-based canary) the apex is the canary service's.
    ``live_via_stable``: a blue-green Rollout (see ``Workloads``).
    """
    stable = stable_service or canary_service or rollout_name
    canary = canary_service or stable
    return Workloads(
        namespace=namespace,
        canary=rollout_name,
        primary=rollout_name,
        canary_service=canary,
        primary_service=stable,
        apex_service=stable,
        ingress=stable_ingress or stable,
        route=rollout_name,
        canary_hash=canary_hash,
        primary_hash=stable_hash,
        port=port,
        kind="Rollout",
        live_via_stable=live_via_stable,
    )


def flagger_workloads(
    target: str,
    namespace: str,
    *,
    service: str = "",
    ingress: str = "",
    route: str = "",
    port: int = 80,
    knative: bool = False,
) -> Workloads:
    """The names a Flagger Canary's series carry, as Flagger names its objects.

    Mirrors fluxcd/flagger ``pkg/controller/scheduler_metrics.go`` toMetricModel (service,
    ingress and route default to the target's name) and ``Canary.GetServiceNames``
    (``<apex>-primary`` and ``<apex>-canary``). For Knative the versions are revisions:
    the latest created one (Flagger's ``{{ route }}``) and the primary one.
    """
    apex = service or target
    if knative:
        latest = route or f"{target}-00002"
        return Workloads(
            namespace=namespace,
            canary=latest,
            primary=f"{target}-00001" if latest != f"{target}-00001" else f"{target}-00000",
            canary_service=latest,
            primary_service=f"{target}-00001",
            apex_service=apex,
            ingress=ingress or target,
            route=latest,
            port=port,
        )
    return Workloads(
        namespace=namespace,
        canary=target,
        primary=f"{target}-primary",
        canary_service=f"{apex}-canary",
        primary_service=f"{apex}-primary",
        apex_service=apex,
        ingress=ingress or target,
        route=route or target,
        port=port,
    )


# --- how exporters write a bucket bound -------------------------------------------------


def go_float(value: float) -> str:
    """``strconv.FormatFloat(value, 'g', -1, 64)``: how client_golang writes ``le``.

    The shortest digits that round-trip, in exponent form when the decimal exponent is
    below -4 or at least 6 (golang src/strconv/ftoa.go formatDigits, case 'g': "if
    precision was the shortest possible, use precision 6 for this decision"): 0.005 ->
    "0.005", 5 -> "5", 100000 -> "100000", 3600000 -> "3.6e+06".
    """
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digit_tuple, exp = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    nd = len(digits)
    dp = nd + exp  # the decimal point's position after the first dp digits
    x = dp - 1  # the decimal exponent
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{prefix}{digits}{'0' * (dp - nd)}"
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"


def _plain(value: float) -> str:
    """Shortest plain decimal, no exponent (Envoy's ``le``: 0.5, 1, 3600000)."""
    if math.isinf(value):
        return "+Inf"
    text = format(Decimal(repr(value)).normalize(), "f")
    return text


def _lua_prometheus_format(bounds: tuple[float, ...]) -> Callable[[float], str]:
    """nginx-lua-prometheus's fixed-width bucket text (APISIX's ``le="00001.0"``).

    knyar/nginx-lua-prometheus ``prometheus.lua`` (Histogram construction): every bound
    is printed with ``%0<W>.<P>f``, P the most decimals any bound needs (at least 1), W
    wide enough for the largest bound's integer part, so that the text sorts as numbers.
    """
    precision = max(1, *(len(_plain(b).partition(".")[2]) for b in bounds))
    order = max(1, *(len(str(int(b))) for b in bounds))
    width = order + precision + 1

    def fmt(value: float) -> str:
        return "+Inf" if math.isinf(value) else f"{value:0{width}.{precision}f}"

    return fmt


# --- default buckets ----------------------------------------------------------------------

#: Envoy's default histogram buckets, ms (envoyproxy/envoy
#: source/common/stats/histogram_impl.cc HistogramSettingsImpl::defaultBuckets); Istio's
#: and OSM's histograms are Envoy's.
ENVOY_BOUNDS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                   300000, 600000, 1800000, 3600000)  # fmt: skip
#: linkerd2-proxy's latency buckets, ms (linkerd/linkerd2-proxy
#: linkerd/http-metrics ``latency::BOUNDS``).
LINKERD_BOUNDS_MS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000,
                     3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000)  # fmt: skip
#: prometheus/client_golang ``prometheus.DefBuckets`` (s), in ms: ingress-nginx's
#: ``--time-buckets`` default, Skipper's ``-histogram-metric-buckets`` default, podinfo's
#: http_request_duration_seconds (stefanprodan/podinfo pkg/api/http/metrics.go).
CLIENT_GOLANG_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: Traefik's ``metrics.prometheus.buckets`` default 0.1, 0.3, 1.2, 5 s (doc.traefik.io
#: observability/metrics/prometheus), in ms.
TRAEFIK_BOUNDS_MS = (100, 300, 1200, 5000)
#: APISIX's prometheus plugin ``DEFAULT_BUCKETS``, ms (apache/apisix
#: apisix/plugins/prometheus/exporter.lua).
APISIX_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)


# --- families of series -------------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    """Where a series is published: a pod of a version, or a proxy summing its pods."""

    version: int
    pod: int  # -1 for a proxy
    pod_name: str  # the application pod's name ("" for a proxy)
    ip: str  # the application pod's address ("" for a proxy)
    hash: str  # the version's pod-template hash


#: A family's labels for a site and a response code ("" when summed over codes).
LabelFn = Callable[[_Site, str], dict[str, str]]


@dataclass(frozen=True)
class _Family:
    name: str  # a counter's name, or a histogram's base name
    histogram: bool
    per_pod: bool
    by_code: bool
    labels: LabelFn
    kind: int = REQUESTS  # what a counter counts (a business counter's kind)


@dataclass(frozen=True)
class _Exporter:
    families: Callable[[Workloads], tuple[_Family, ...]]
    bounds_ms: tuple[float, ...]
    le: Callable[[tuple[float, ...]], Callable[[float], str]]
    seconds: bool  # the histogram's unit: seconds (else ms)


def _go_le(_: tuple[float, ...]) -> Callable[[float], str]:
    return go_float


def _envoy_le(_: tuple[float, ...]) -> Callable[[float], str]:
    # envoyproxy/envoy source/server/admin/prometheus_stats.cc writes bounds in plain
    # decimal (its PrometheusStatsFormatterTest expects le="0.5" ... le="3600000").
    return _plain


def _linkerd_le(_: tuple[float, ...]) -> Callable[[float], str]:
    # linkerd2-proxy writes its (integer) bounds as integers, le="1" ... le="50000".
    return _plain


def _fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def _workload(names: Workloads, site: _Site) -> str:
    return names.canary if site.version in (CANARY, CANARY_VIA_STABLE) else names.primary


def _service(names: Workloads, site: _Site) -> str:
    """The Service a request was addressed to: route labels follow it, not the pods."""
    return names.canary_service if site.version == CANARY else names.primary_service


def _proxy_pod(proxy: str) -> str:
    """A proxy's (ingress controller's, gateway's) pod name."""
    return pod_names(proxy, "", 1)[0]


def _class(code: str) -> str:
    return code[:1]


def _istio(names: Workloads) -> tuple[_Family, ...]:
    """Istio's standard metrics (istio.io docs/reference/config/metrics): per reporter.

    reporter=destination series come from the serving pod's sidecar (scrape labels
    ``namespace``, ``pod``); reporter=source ones from the client's, here the ingress
    gateway, which knows the destination workload but not the pod.
    """
    ns = names.namespace
    gateway = "istio-ingressgateway"
    gateway_pod = _proxy_pod(gateway)

    def common(site: _Site, code: str, reporter: str) -> dict[str, str]:
        workload, service = _workload(names, site), _service(names, site)
        labels = {
            "reporter": reporter,
            "source_workload": gateway,
            "source_workload_namespace": "istio-system",
            "source_app": gateway,
            "source_canonical_service": gateway,
            "source_canonical_revision": "latest",
            "source_version": "unknown",
            "source_cluster": "Kubernetes",
            "source_principal": "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
            "destination_workload": workload,
            "destination_workload_namespace": ns,
            "destination_app": workload,
            "destination_canonical_service": workload,
            "destination_canonical_revision": "latest",
            "destination_version": "unknown",
            "destination_cluster": "Kubernetes",
            "destination_principal": f"spiffe://cluster.local/ns/{ns}/sa/default",
            "destination_service": _fqdn(service, ns),
            "destination_service_name": service,
            "destination_service_namespace": ns,
            "request_protocol": "http",
            "response_flags": "-",
            "grpc_response_status": "",
            "connection_security_policy": "mutual_tls" if reporter == "destination" else "unknown",
            "response_code": code,
            "job": "kubernetes-pods",
        }
        if reporter == "destination":
            labels |= {"namespace": ns, "pod": site.pod_name, "instance": f"{site.ip}:15020"}
        else:
            labels |= {"namespace": "istio-system", "pod": gateway_pod, "instance": "10.0.0.2:15020"}
        return labels

    def dest(site: _Site, code: str) -> dict[str, str]:
        return common(site, code, "destination")

    def source(site: _Site, code: str) -> dict[str, str]:
        return common(site, code, "source")

    duration = "istio_request_duration_milliseconds"
    return (
        _Family("istio_requests_total", False, True, True, dest),
        _Family(duration, True, True, True, dest),
        _Family("istio_requests_total", False, False, True, source),
        _Family(duration, True, False, True, source),
    )


def _linkerd(names: Workloads) -> tuple[_Family, ...]:
    """linkerd2-proxy's inbound metrics, with linkerd-viz's scrape labels.

    linkerd-viz's Prometheus maps the pod's ``linkerd.io/proxy-<kind>`` label to
    ``deployment`` (a Deployment's pods only) and every pod label to a label, hence
    ``pod_template_hash`` (Deployments) or ``rollouts_pod_template_hash`` (Rollouts).
    A response is a failure when its status is 5xx.
    """
    ns = names.namespace

    def base(site: _Site, code: str) -> dict[str, str]:
        labels = {
            "direction": "inbound",
            "namespace": ns,
            "pod": site.pod_name,
            "instance": f"{site.ip}:4191",
            "job": "linkerd-proxy",
            "control_plane_ns": "linkerd",
            "tls": "true",
            "authority": f"{_fqdn(names.apex_service, ns)}:{names.port}",
            "target_addr": f"{site.ip}:8080",
            "srv_kind": "default",
            "srv_name": "all-unauthenticated",
            "status_code": code,
        }
        if names.kind == "Rollout":
            labels["rollout"] = _workload(names, site)
            labels["rollouts_pod_template_hash"] = site.hash
        else:
            labels["deployment"] = _workload(names, site)
            labels["pod_template_hash"] = site.hash
        return labels

    def responses(site: _Site, code: str) -> dict[str, str]:
        return base(site, code) | {"classification": "failure" if code.startswith("5") else "success"}

    return (
        _Family("response_total", False, True, True, responses),
        _Family("response_latency_ms", True, True, True, base),
    )


def _nginx(names: Workloads) -> tuple[_Family, ...]:
    """ingress-nginx's request metrics (internal/ingress/metric/collectors/socket.go).

    One series per (ingress, service, canary, status, method, path, host): requests the
    canary backend served carry ``canary`` = its upstream name
    ``<namespace>-<service>-<port>`` (ingress-nginx ``upstreamName``) and the main
    ingress's name; the primary's carry ``canary=""``.
    """
    ns = names.namespace
    controller = _proxy_pod("ingress-nginx-controller")

    def labels(site: _Site, code: str) -> dict[str, str]:
        service = _service(names, site)
        return {
            "canary": f"{ns}-{service}-{names.port}" if site.version == CANARY else "",
            "controller_class": "k8s.io/ingress-nginx",
            "controller_namespace": "ingress-nginx",
            "controller_pod": controller,
            "host": f"{names.apex_service}.example.com",
            "ingress": names.ingress,
            "method": "GET",
            "namespace": ns,
            "path": "/",
            "service": service,
            "status": code,
            "instance": "10.0.0.3:10254",
            "job": "ingress-nginx",
        }

    return (
        _Family("nginx_ingress_controller_requests", False, False, True, labels),
        _Family("nginx_ingress_controller_request_duration_seconds", True, False, True, labels),
        _Family("nginx_ingress_controller_response_duration_seconds", True, False, True, labels),
    )


def _envoy_families(
    cluster: Callable[[_Site], dict[str, str]], per_pod: bool, classes: bool = True
) -> tuple[_Family, ...]:
    """Envoy's upstream cluster stats as its Prometheus endpoint writes them.

    ``cluster.<name>.upstream_rq_<code>`` becomes ``envoy_cluster_upstream_rq`` with
    ``envoy_response_code``, ``upstream_rq_<N>xx`` becomes ``envoy_cluster_upstream_rq_xx``
    with ``envoy_response_code_class`` (envoyproxy/envoy source/common/config
    well_known_names.cc tag extractors), ``upstream_rq_total`` sums all codes, and the
    ``upstream_rq_time`` histogram (ms) is not split by code.
    """

    def by_code(site: _Site, code: str) -> dict[str, str]:
        return cluster(site) | {"envoy_response_code": code}

    def by_class(site: _Site, code: str) -> dict[str, str]:
        return cluster(site) | {"envoy_response_code_class": _class(code)}

    def total(site: _Site, code: str) -> dict[str, str]:
        return cluster(site)

    families = [
        _Family("envoy_cluster_upstream_rq", False, per_pod, True, by_code),
        _Family("envoy_cluster_upstream_rq_total", False, per_pod, False, total),
        _Family("envoy_cluster_upstream_rq_time", True, per_pod, False, total),
    ]
    if classes:
        families.append(_Family("envoy_cluster_upstream_rq_xx", False, per_pod, True, by_class))
    return tuple(families)


def _gateway(proxy: str, namespace: str, ip: str) -> dict[str, str]:
    return {"namespace": namespace, "pod": _proxy_pod(proxy), "instance": f"{ip}:8002", "job": proxy}


def _contour(names: Workloads) -> tuple[_Family, ...]:
    """Contour's Envoy: clusters ``<namespace>/<service>/<port>/<hash>``, whose stat names
    are ``<namespace>_<service>_<port>`` (projectcontour/contour internal/envoy cluster.go)."""

    def cluster(site: _Site) -> dict[str, str]:
        name = f"{names.namespace}_{_service(names, site)}_{names.port}"
        return {"envoy_cluster_name": name} | _gateway("envoy", "projectcontour", "10.0.0.4")

    return _envoy_families(cluster, per_pod=False)


def _gloo(names: Workloads) -> tuple[_Family, ...]:
    """Gloo's gateway-proxy: one cluster per Upstream, ``<upstream>_<upstream namespace>``;
    Flagger's upstreams are ``<ns>-<apex>-{canary,primary}upstream-<port>`` in the canary's
    namespace (fluxcd/flagger pkg/router/gloo.go Reconcile)."""
    ns = names.namespace

    def cluster(site: _Site) -> dict[str, str]:
        which = "canary" if site.version == CANARY else "primary"
        name = f"{ns}-{names.apex_service}-{which}upstream-{names.port}_{ns}"
        return {"envoy_cluster_name": name} | _gateway("gateway-proxy", "gloo-system", "10.0.0.5")

    return _envoy_families(cluster, per_pod=False)


def _ambassador(names: Workloads) -> tuple[_Family, ...]:
    """Emissary-ingress (Ambassador): clusters ``cluster_<service>_<namespace>``."""
    ns = names.namespace

    def cluster(site: _Site) -> dict[str, str]:
        name = f"cluster_{_service(names, site).replace('-', '_')}_{ns}"
        return {"envoy_cluster_name": name} | _gateway("ambassador", "ambassador", "10.0.0.6")

    return _envoy_families(cluster, per_pod=False)


def _appmesh(names: Workloads) -> tuple[_Family, ...]:
    """App Mesh: each pod's Envoy sidecar, scraped with the ``kubernetes_namespace`` and
    ``kubernetes_pod_name`` labels of appmesh-prometheus; the inbound cluster of a virtual
    node is ``cds_ingress_<mesh>_<virtual node>_http_<port>``; Flagger names the virtual
    nodes after the workloads (fluxcd/flagger pkg/router/appmesh.go)."""
    ns = names.namespace

    def cluster(site: _Site) -> dict[str, str]:
        node = f"{_workload(names, site)}-vn" if names.kind == "Rollout" else _workload(names, site)
        return {
            "envoy_cluster_name": f"cds_ingress_{ns}_{node}_http_{names.port}",
            "kubernetes_namespace": ns,
            "kubernetes_pod_name": site.pod_name,
            "app": names.apex_service,
            "instance": f"{site.ip}:9901",
            "job": "appmesh-envoy",
        }

    return _envoy_families(cluster, per_pod=True)


def _kuma(names: Workloads) -> tuple[_Family, ...]:
    """Kuma: each data plane proxy, labelled by kuma's monitoring assignment with
    ``mesh``, ``dataplane`` and ``service`` (the kuma.io/service tag
    ``<service>_<namespace>_svc_<port>``, fluxcd/flagger pkg/router/kuma.go)."""
    ns = names.namespace

    def cluster(site: _Site) -> dict[str, str]:
        return {
            "envoy_cluster_name": f"localhost_{names.port}",
            "service": f"{_service(names, site)}_{ns}_svc_{names.port}",
            "mesh": "default",
            "dataplane": f"{site.pod_name}.{ns}",
            "instance": f"{site.ip}:5670",
            "job": "kuma-dataplanes",
        }

    return _envoy_families(cluster, per_pod=True)


def _knative(names: Workloads) -> tuple[_Family, ...]:
    """Knative: the ingress Envoy (Kourier) with a cluster per revision ``<ns>/<revision>``
    (what Flagger's builtin selects), and each revision pod's queue-proxy counter
    ``revision_app_request_count`` (knative/serving pkg/metrics)."""
    ns = names.namespace

    def cluster(site: _Site) -> dict[str, str]:
        name = f"{ns}/{_workload(names, site)}"
        return {"envoy_cluster_name": name} | _gateway("3scale-kourier-gateway", "kourier-system", "10.0.0.7")

    def queue_proxy(site: _Site, code: str) -> dict[str, str]:
        return {
            "namespace_name": ns,
            "service_name": names.apex_service,
            "configuration_name": names.apex_service,
            "revision_name": _workload(names, site),
            "pod_name": site.pod_name,
            "container_name": "queue-proxy",
            "response_code": code,
            "response_code_class": f"{_class(code)}xx",
            "instance": f"{site.ip}:9091",
            "job": "knative-queue-proxy",
        }

    return (
        *_envoy_families(cluster, per_pod=False),
        _Family("revision_app_request_count", False, True, True, queue_proxy),
    )


def _osm(names: Workloads) -> tuple[_Family, ...]:
    """Open Service Mesh's WASM stats (openservicemesh/osm docs: osm_request_total and
    osm_request_duration_ms carry source_* and destination_* and response_code), per
    serving pod; the client is Flagger's load tester."""
    ns = names.namespace
    tester = "flagger-loadtester"
    tester_pod = _proxy_pod(tester)

    def labels(site: _Site, code: str) -> dict[str, str]:
        return {
            "source_namespace": ns,
            "source_kind": "Deployment",
            "source_name": tester,
            "source_pod": tester_pod,
            "destination_namespace": ns,
            "destination_kind": names.kind,
            "destination_name": _workload(names, site),
            "destination_pod": site.pod_name,
            "response_code": code,
            "namespace": ns,
            "pod": site.pod_name,
            "instance": f"{site.ip}:15010",
            "job": "kubernetes-pods",
        }

    return (
        _Family("osm_request_total", False, True, True, labels),
        _Family("osm_request_duration_ms", True, True, True, labels),
    )


def _traefik(names: Workloads) -> tuple[_Family, ...]:
    """Traefik's service metrics; a Kubernetes CRD service is
    ``<namespace>-<service>-<port>@kubernetescrd``."""
    ns = names.namespace

    def labels(site: _Site, code: str) -> dict[str, str]:
        return {
            "service": f"{ns}-{_service(names, site)}-{names.port}@kubernetescrd",
            "code": code,
            "method": "GET",
            "protocol": "http",
            "namespace": "traefik",
            "pod": _proxy_pod("traefik"),
            "instance": "10.0.0.8:9100",
            "job": "traefik",
        }

    return (
        _Family("traefik_service_requests_total", False, False, True, labels),
        _Family("traefik_service_request_duration_seconds", True, False, True, labels),
    )


def _skipper_id(*parts: str) -> str:
    # Skipper's Kubernetes data client replaces every non-word character of a route id
    # part by "_" (zalando/skipper dataclients/kubernetes routeID).
    return "kube_" + "__".join(re.sub(r"\W", "_", p) for p in parts)


def _skipper(names: Workloads) -> tuple[_Family, ...]:
    """Skipper's route metrics (``-serve-route-metrics``); Flagger's canary ingress
    ``<ingress>-canary`` carries both backends (fluxcd/flagger pkg/router/skipper.go
    Reconcile), so route ids are ``kube_<ns>__<ingress>_canary__<host>__<path>__<svc>``."""
    ns, host = names.namespace, f"{names.apex_service}.example.com"

    def labels(site: _Site, code: str) -> dict[str, str]:
        return {
            "route": _skipper_id(ns, f"{names.ingress}-canary", host, "", _service(names, site)),
            "code": code,
            "method": "GET",
            "namespace": "kube-system",
            "pod": _proxy_pod("skipper-ingress"),
            "instance": "10.0.0.9:9911",
            "job": "skipper-ingress",
        }

    return (
        _Family("skipper_serve_route_duration_seconds", True, False, True, labels),
        _Family("skipper_response_duration_seconds", True, False, True, labels),
    )


def _apisix(names: Workloads) -> tuple[_Family, ...]:
    """APISIX's prometheus plugin: ``apisix_http_status`` by code, ``apisix_http_latency``
    (type request, ms) not by code; ``route`` is apisix-ingress-controller's
    ``<namespace>_<ApisixRoute>_<rule>`` of Flagger's canary route, shared by both
    versions; ``node`` is the upstream pod's address."""
    ns = names.namespace
    route = f"{ns}_{names.route}-{names.apex_service}-canary_http"
    host = f"{names.apex_service}.example.com"

    def common(site: _Site) -> dict[str, str]:
        return {
            "route": route,
            "service": "",
            "consumer": "",
            "node": site.ip,
            "namespace": "apisix",
            "pod": _proxy_pod("apisix"),
            "instance": "10.0.0.10:9091",
            "job": "apisix",
        }

    def status(site: _Site, code: str) -> dict[str, str]:
        return common(site) | {"code": code, "matched_uri": "/*", "matched_host": host}

    def latency(site: _Site, code: str) -> dict[str, str]:
        return common(site) | {"type": "request"}

    return (
        _Family("apisix_http_status", False, True, True, status),
        _Family("apisix_http_latency", True, True, False, latency),
    )


def _pod_scrape(names: Workloads, site: _Site) -> dict[str, str]:
    """The labels the ``kubernetes-pods`` scrape job gives an application's own series."""
    return {
        "kubernetes_namespace": names.namespace,
        "kubernetes_pod_name": site.pod_name,
        "app": names.apex_service,
        "instance": f"{site.ip}:9898",
        "job": "kubernetes-pods",
    }


def _http(names: Workloads) -> tuple[_Family, ...]:
    """The application's own metrics (podinfo's, stefanprodan/podinfo
    pkg/api/http/metrics.go), scraped by the ``kubernetes-pods`` job with its
    ``kubernetes_namespace`` and ``kubernetes_pod_name`` labels."""

    def counter(site: _Site, code: str) -> dict[str, str]:
        return _pod_scrape(names, site) | {"status": code}

    def histogram(site: _Site, code: str) -> dict[str, str]:
        return _pod_scrape(names, site) | {"status": code, "method": "GET", "path": "root"}

    return (
        _Family("http_requests_total", False, True, True, counter),
        _Family("http_request_duration_seconds", True, True, True, histogram),
    )


def _business(names: Workloads) -> tuple[_Family, ...]:
    """The application's business counters (issue 19), one per pod of each version,
    whatever the provider: a shop's own exporter, scraped by the ``kubernetes-pods`` job
    as podinfo's metrics are (``_http``): ``kubernetes_namespace``, ``kubernetes_pod_name``,
    ``app``, ``instance`` and ``job``. Not by response code (a session is not a request)."""

    def scrape(site: _Site, code: str) -> dict[str, str]:
        return _pod_scrape(names, site)

    return tuple(_Family(name, False, True, False, scrape, kind) for kind, name in BUSINESS_SERIES.items())


def _plain_le(bounds: tuple[float, ...]) -> Callable[[float], str]:
    return _plain


_ENVOY = (ENVOY_BOUNDS_MS, _envoy_le, False)
_EXPORTERS: dict[str, _Exporter] = {
    "istio": _Exporter(_istio, *_ENVOY),
    "linkerd": _Exporter(_linkerd, LINKERD_BOUNDS_MS, _linkerd_le, False),
    "nginx": _Exporter(_nginx, CLIENT_GOLANG_BOUNDS_MS, _go_le, True),
    "contour": _Exporter(_contour, *_ENVOY),
    "gloo": _Exporter(_gloo, *_ENVOY),
    "ambassador": _Exporter(_ambassador, *_ENVOY),
    "appmesh": _Exporter(_appmesh, *_ENVOY),
    "kuma": _Exporter(_kuma, *_ENVOY),
    "knative": _Exporter(_knative, *_ENVOY),
    "osm": _Exporter(_osm, *_ENVOY),
    "traefik": _Exporter(_traefik, TRAEFIK_BOUNDS_MS, _go_le, True),
    "skipper": _Exporter(_skipper, CLIENT_GOLANG_BOUNDS_MS, _go_le, True),
    "apisix": _Exporter(_apisix, APISIX_BOUNDS_MS, _lua_prometheus_format, False),
    "kubernetes": _Exporter(_http, CLIENT_GOLANG_BOUNDS_MS, _go_le, True),
}

#: Provider strings accepted, and the exporter each one's series come from: Flagger's
#: (``spec.provider``, fluxcd/flagger pkg/metrics/observers/factory.go: appmesh, gloo and
#: gatewayapi by prefix; ``smi`` and other unknown meshes get Istio's observer there) and
#: Argo Rollouts' trafficRouting kinds (alb: the application's own metrics; smi: Linkerd's).
_ALIASES: dict[str, str] = {
    "istio": "istio",
    "linkerd": "linkerd",
    "nginx": "nginx",
    "contour": "contour",
    "gloo": "gloo",
    "appmesh": "appmesh",
    "appmesh:v1beta2": "appmesh",
    "kuma": "kuma",
    "knative": "knative",
    "osm": "osm",
    "traefik": "traefik",
    "skipper": "skipper",
    "apisix": "apisix",
    "kubernetes": "kubernetes",
    "gatewayapi": "kubernetes",
    "gatewayapi:v1alpha2": "kubernetes",
    "gatewayapi:v1beta1": "kubernetes",
    "gatewayapi:v1": "kubernetes",
    "alb": "kubernetes",
    "smi": "linkerd",
    "ambassador": "ambassador",
}
PROVIDERS: tuple[str, ...] = tuple(_ALIASES)


def exporter_of(provider: str) -> str:
    """The exporter whose series a provider string reads (e.g. ``gatewayapi:v1beta1`` ->
    ``kubernetes``); ValueError for an unknown provider."""
    try:
        return _ALIASES[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}: expected one of {', '.join(PROVIDERS)}") from None


def default_bounds_ms(provider: str) -> tuple[float, ...]:
    """The exporter's default finite histogram bounds, in ms."""
    return tuple(float(b) for b in _EXPORTERS[exporter_of(provider)].bounds_ms)


def produced_names(provider: str, business: bool = False) -> frozenset[str]:
    """The metric names the world produces for a provider (histograms as ``_bucket``,
    ``_sum`` and ``_count``), with the business counters when ``business``."""
    exporter = _EXPORTERS[exporter_of(provider)]
    probe = Workloads("ns", "app", "app-primary", "app-canary", "app-primary", "app")
    out: set[str] = set(BUSINESS_SERIES.values()) if business else set()
    for family in exporter.families(probe):
        if family.histogram:
            out |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            out.add(family.name)
    return frozenset(out)


def _sites(names: Workloads, pods: tuple[int, int], per_pod: bool) -> Iterable[_Site]:
    hashes = _hashes(names)
    primary, canary = version_pods(names, pods)
    routes = [(PRIMARY, PRIMARY, primary), (CANARY, CANARY, canary)]
    if names.live_via_stable:
        routes.append((CANARY_VIA_STABLE, CANARY, canary))
    for version, of, pod_list in routes:
        if not per_pod:
            yield _Site(version, -1, "", "", hashes[of])
            continue
        for i, name in enumerate(pod_list):
            # Pod addresses: one /24 per version, as a node's pod CIDR would give.
            yield _Site(version, i, name, f"10.244.{of + 1}.{i + 10}", hashes[of])


def _merge_routes(
    labels: list[Labels], rows: list[tuple[int, int, int, int, int]]
) -> tuple[list[Labels], list[tuple[int, int, int, int, int]]]:
    """One series where several routes' series would carry the same labels.

    When nothing in a family's labels tells two routes apart (an Argo canary whose canary
    and stable Services are one Service, seen by a proxy that labels by Service; a pod's
    series that does not say which Service a request addressed), the exporter has one
    series and the requests of all of them count in it (``CELL_VERSIONS``).
    """
    by_cells = {cells: version for version, cells in CELL_VERSIONS.items()}
    seen: dict[Labels, int] = {}
    out_labels: list[Labels] = []
    out_rows: list[tuple[int, int, int, int, int]] = []
    for lab, row in zip(labels, rows):
        at = seen.get(lab)
        if at is not None:
            other = out_rows[at]
            merged = by_cells.get(CELL_VERSIONS[other[0]] | CELL_VERSIONS[row[0]])
            if other[1:] == row[1:] and merged is not None:
                out_rows[at] = (merged,) + row[1:]
                continue
        seen.setdefault(lab, len(out_labels))
        out_labels.append(lab)
        out_rows.append(row)
    return out_labels, out_rows


def universe(
    provider: str,
    names: Workloads,
    pods: tuple[int, int],
    *,
    codes: tuple[str, ...] = ("200", "500"),
    bounds_ms: tuple[float, ...] | None = None,
    business: bool = False,
) -> Universe:
    """Every series a provider's exporter publishes for a rollout.

    Args:
        provider: a provider string of ``PROVIDERS``.
        names: the workloads' names.
        pods: (primary pods, canary pods).
        codes: the response codes the world draws.
        bounds_ms: finite histogram bounds in ms; None: the exporter's defaults.
        business: add the application's business counters (``BUSINESS_SERIES``), which
            every provider's universe may hold (issue 19).

    Raises:
        ValueError: an unknown provider, negative pod counts, no or repeated codes, or
            bounds that are not finite, positive and strictly increasing.
    """
    exporter = _EXPORTERS[exporter_of(provider)]
    if min(pods) < 0:
        raise ValueError(f"pod counts must not be negative (got {pods})")
    if not codes or len(set(codes)) != len(codes):
        raise ValueError(f"codes must be distinct and not empty (got {codes})")
    bounds = tuple(float(b) for b in (exporter.bounds_ms if bounds_ms is None else bounds_ms))
    if any(not math.isfinite(b) or b <= 0 for b in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"bucket bounds must be finite, positive and increasing (got {bounds})")
    scale = 0.001 if exporter.seconds else 1.0
    fmt = exporter.le(tuple(b * scale for b in bounds))
    le_texts = [fmt(b * scale) for b in bounds] + ["+Inf"]

    labels: list[Labels] = []
    rows: list[tuple[int, int, int, int, int]] = []

    def add(name: str, base: dict[str, str], site: _Site, code: int, kind: int, bucket: int = -1) -> None:
        # An empty label value is no label at all in Prometheus (the scrape and the TSDB
        # drop it; prometheus model/labels: "a label with an empty value is considered
        # equivalent to a label that does not exist"), so it is left out here too.
        items = {k: v for k, v in base.items() if v} | {"__name__": name}
        labels.append(tuple(sorted(items.items())))
        rows.append((site.version, site.pod, code, kind, bucket))

    families = exporter.families(names) + (_business(names) if business else ())
    classes = len({_class(c) for c in codes}) == len(codes)
    for family in families:
        if family.name == "envoy_cluster_upstream_rq_xx" and not classes:
            # A class series sums the codes of its class; the universe indexes single
            # codes, so with two codes of one class the family is left out.
            continue
        for site in _sites(names, pods, family.per_pod):
            for ci, code in enumerate(codes) if family.by_code else [(-1, "")]:
                base = family.labels(site, code)
                if not family.histogram:
                    add(family.name, base, site, ci, family.kind)
                    continue
                for bi, le in enumerate(le_texts):
                    add(f"{family.name}_bucket", base | {"le": le}, site, ci, BUCKET, bi)
                add(f"{family.name}_sum", base, site, ci, SUM)
                add(f"{family.name}_count", base, site, ci, COUNT)
    labels, rows = _merge_routes(labels, rows)
    if len(set(labels)) != len(labels):  # a bug in a family's labels, never the input's
        raise AssertionError(f"{provider}: two series with the same labels")
    table = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Universe(
        labels=tuple(labels),
        version=table[:, 0].copy(),
        pod=table[:, 1].copy(),
        code=table[:, 2].copy(),
        kind=table[:, 3].copy(),
        bucket=table[:, 4].copy(),
        bounds_ms=bounds,
        sum_scale=scale,
        codes=tuple(codes),
        live_via_stable=names.live_via_stable,
    )
