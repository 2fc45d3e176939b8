"""What each provider's exporter publishes (sim/world/exporters.py, issue 14 item 1).

The label sets must make the queries of a real cluster select the right version. The
expected rendered builtins below are copied from fluxcd/flagger
``pkg/metrics/observers/<observer>_test.go`` (commit 15bd6ad555e6, the ``expected``
string of each Test*Observer_GetRequestSuccessRate / _GetRequestDuration), with the
MetricTemplateModel each test renders them for. They are matched against the universe
with the small selector matcher below (the engine is written in parallel): equality,
inequality and fully anchored regular expressions, as Prometheus's labels.Matcher.
"""

# ruff: noqa: E501  (upstream queries are data, kept on one line as upstream writes them)
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from sim.world.exporters import (
    BUCKET,
    CANARY,
    COUNT,
    PRIMARY,
    PROVIDERS,
    REQUESTS,
    SUM,
    Universe,
    Workloads,
    argo_workloads,
    default_bounds_ms,
    exporter_of,
    flagger_workloads,
    go_float,
    pod_names,
    produced_names,
    universe,
    version_pods,
)

# --- a selector matcher -------------------------------------------------------------------

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def selectors(query: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The vector selectors ``name{matchers}`` of a query, in order."""
    out = []
    for name, body in _SELECTOR.findall(query):
        matchers = [(label, op, value) for label, op, value in _MATCHER.findall(body)]
        out.append((name, matchers))
    return out


def matches(labels: dict[str, str], name: str, matchers: list[tuple[str, str, str]]) -> bool:
    """Prometheus's matching: a missing label is ""; regexes are anchored at both ends
    (prometheus model/labels/matcher.go NewMatcher and regexp.go FastRegexMatcher)."""
    if labels["__name__"] != name:
        return False
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op in ("=", "!="):
            ok = (have == value) == (op == "=")
        else:
            ok = (re.fullmatch(value, have) is not None) == (op == "=~")
        if not ok:
            return False
    return True


def selected(u: Universe, name: str, matchers: list[tuple[str, str, str]]) -> np.ndarray:
    """Indexes of the universe's series a selector selects."""
    return np.array([k for k, ls in enumerate(u.labels) if matches(dict(ls), name, matchers)], dtype=int)


def select_query(u: Universe, query: str) -> list[np.ndarray]:
    return [selected(u, name, ms) for name, ms in selectors(query)]


# --- Flagger's builtin queries ------------------------------------------------------------

_PODINFO = {"target": "podinfo", "namespace": "default", "service": "podinfo"}
_PODINFO_SERVICE = {"target": "podinfo", "namespace": "default", "service": "podinfo-service"}

#: (observer, MetricTemplateModel of its test, expected rendered query).
FLAGGER_BUILTINS = [
    (
        "istio",
        _PODINFO,
        ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100',
    ),
    (
        "istio",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )',
    ),
    (
        "linkerd",
        _PODINFO,
        ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100',
    ),
    (
        "linkerd",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )',
    ),
    (
        "nginx",
        {"target": "podinfo", "namespace": "nginx", "ingress": "podinfo"},
        ' sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100',
    ),
    (
        "nginx",
        {"target": "podinfo", "namespace": "nginx", "ingress": "podinfo"},
        ' sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000',
    ),
    (
        "appmesh",
        _PODINFO,
        ' sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100',
    ),
    (
        "appmesh",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )',
    ),
    (
        "contour",
        _PODINFO,
        ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
    ),
    (
        "contour",
        _PODINFO_SERVICE,
        ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
    ),
    (
        "contour",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )',
    ),
    (
        "contour",
        _PODINFO_SERVICE,
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )',
    ),
    (
        "gloo",
        _PODINFO,
        ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
    ),
    (
        "gloo",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )',
    ),
    (
        "kuma",
        _PODINFO,
        ' sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100',
    ),
    (
        "kuma",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )',
    ),
    (
        "knative",
        {"target": "podinfo", "namespace": "default", "route": "podinfo-00001"},
        ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) * 100',
    ),
    (
        "knative",
        {"target": "podinfo", "namespace": "default", "route": "podinfo-00001"},
        ' histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) by (le) )',
    ),
    (
        "osm",
        _PODINFO,
        ' sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100',
    ),
    (
        "osm",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )',
    ),
    (
        "skipper",
        {"target": "", "namespace": "skipper", "service": "backend", "ingress": "skipper-ingress"},
        ' sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100',
    ),
    (
        "skipper",
        {"target": "", "namespace": "skipper", "service": "backend", "ingress": "skipper-ingress"},
        ' sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) * 1000',
    ),
    (
        "traefik",
        _PODINFO,
        ' sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100',
    ),
    (
        "traefik",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000',
    ),
    (
        "apisix",
        {"target": "podinfo", "namespace": "default", "route": "podinfo"},
        ' sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100',
    ),
    (
        "apisix",
        {"target": "podinfo", "namespace": "default", "route": "podinfo"},
        ' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )',
    ),
    (
        "http",
        _PODINFO,
        ' sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100',
    ),
    (
        "http",
        _PODINFO,
        ' histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )',
    ),
]

#: observer file -> the provider string its Canary would carry (factory.go Observer).
_OBSERVER_PROVIDER = {"http": "kubernetes"}
_PODS = (3, 2)


def _workloads(observer: str, model: dict[str, str]) -> Workloads:
    """The names of the Canary the observer test's model describes."""
    target = model["target"] or model.get("service", "")
    return flagger_workloads(
        target,
        model["namespace"],
        service=model.get("service", ""),
        ingress=model.get("ingress", ""),
        route=model.get("route", ""),
        knative=observer == "knative",
    )


def _builtin_cases() -> list[tuple[str, str, dict[str, str], str]]:
    cases = []
    for observer, model, query in FLAGGER_BUILTINS:
        provider = _OBSERVER_PROVIDER.get(observer, observer)
        cases.append((observer, provider, model, query))
    return cases


@pytest.mark.parametrize(("observer", "provider", "model", "query"), _builtin_cases())
def test_flagger_builtin_selects_the_canary_and_not_the_primary(
    observer: str, provider: str, model: dict[str, str], query: str
) -> None:
    """fluxcd/flagger pkg/metrics/observers/<observer>.go <observer>Queries, rendered as in
    <observer>_test.go: every selector selects the canary's series, all its pods (or its
    proxy series), and none of the primary's. APISIX is the exception upstream: its
    router sends both versions through one ApisixRoute (pkg/router/apisix.go Reconcile),
    so the builtin reads both."""
    u = universe(provider, _workloads(observer, model), _PODS)
    found = select_query(u, query)
    assert len(found) in (1, 2)
    for sel in found:
        assert sel.size > 0, f"{observer}: a selector of {query!r} selects nothing"
        versions = set(u.version[sel].tolist())
        if observer == "apisix":
            assert versions == {PRIMARY, CANARY}
        else:
            assert versions == {CANARY}
        canary = sel[u.version[sel] == CANARY]
        pods = set(u.pod[canary].tolist())
        assert pods in ({-1}, set(range(_PODS[CANARY]))), pods
    (first_name, first_matchers), *_ = selectors(query)
    code_labels = {"response_code", "status", "code", "envoy_response_code", "classification"}
    if any(label in code_labels for label, _, _ in first_matchers):
        # A success rate: the numerator is the denominator's series without the 5xx.
        numerator, denominator = found
        assert set(numerator) < set(denominator)
        assert {u.codes[c] for c in u.code[numerator]} == {"200"}
        assert {u.codes[c] for c in u.code[denominator]} == {"200", "500"}


@pytest.mark.parametrize(("observer", "provider", "model", "query"), _builtin_cases())
def test_flagger_builtin_names_are_produced(observer: str, provider: str, model: dict[str, str], query: str) -> None:
    """Every metric name a builtin selects is one the world produces for its provider."""
    names = {name for name, _ in selectors(query)}
    assert names <= produced_names(provider)


def test_every_flagger_observer_is_covered() -> None:
    """One case per observer of fluxcd/flagger pkg/metrics/observers (factory.go)."""
    observers = {o for o, _, _ in FLAGGER_BUILTINS}
    assert observers == {
        "istio", "linkerd", "nginx", "appmesh", "contour", "gloo", "kuma", "knative",
        "osm", "skipper", "traefik", "apisix", "http",
    }  # fmt: skip


def test_provider_strings_map_as_flaggers_factory() -> None:
    """fluxcd/flagger pkg/metrics/observers/factory.go Observer: appmesh and gloo by prefix,
    kubernetes and gatewayapi (by prefix) share the HttpObserver."""
    assert exporter_of("appmesh:v1beta2") == "appmesh"
    assert exporter_of("gatewayapi:v1beta1") == exporter_of("kubernetes") == "kubernetes"
    assert exporter_of("smi") == "linkerd"
    for provider in PROVIDERS:
        assert universe(provider, flagger_workloads("podinfo", "test"), (1, 1)).labels
    with pytest.raises(ValueError, match="unknown provider 'datadog'"):
        exporter_of("datadog")


# --- label sets ---------------------------------------------------------------------------


def _one(u: Universe, **want: str) -> dict[str, str]:
    found = [dict(ls) for ls in u.labels if all(dict(ls).get(k) == v for k, v in want.items())]
    assert found, want
    return found[0]


def test_istio_labels() -> None:
    """Istio's standard metrics (istio.io reference/config/metrics): reporter destination
    per serving pod (``pod``), reporter source from the ingress gateway, with the
    destination service's FQDN; histograms in ms split by response_code."""
    u = universe("istio", flagger_workloads("podinfo", "test"), (2, 1))
    primary_pods, canary_pods = version_pods(flagger_workloads("podinfo", "test"), (2, 1))
    dest = _one(u, __name__="istio_requests_total", reporter="destination", response_code="500",
                destination_workload="podinfo")  # fmt: skip
    assert dest["pod"] == canary_pods[0]
    assert dest["destination_service"] == "podinfo-canary.test.svc.cluster.local"
    assert dest["destination_service_name"] == "podinfo-canary"
    assert dest["destination_workload_namespace"] == dest["destination_service_namespace"] == "test"
    assert dest["destination_canonical_service"] == "podinfo"
    src = _one(u, __name__="istio_requests_total", reporter="source", destination_workload="podinfo-primary")
    assert src["source_workload"] == "istio-ingressgateway"
    assert src["pod"] != primary_pods[0] and src["namespace"] == "istio-system"
    bucket = _one(u, __name__="istio_request_duration_milliseconds_bucket", le="+Inf", response_code="200")
    assert "pod" in bucket
    les = [dict(ls)["le"] for ls in u.labels if dict(ls)["__name__"].endswith("_bucket")][:20]
    assert les == ["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
                   "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"]  # fmt: skip
    assert u.sum_scale == 1.0
    # Per pod for reporter destination, summed for reporter source; by code throughout.
    dest_rows = np.array([dict(ls)["reporter"] == "destination" for ls in u.labels])
    assert set(u.pod[dest_rows].tolist()) == {0, 1} and set(u.pod[~dest_rows].tolist()) == {-1}
    assert (u.code >= 0).all()


def test_nginx_canary_label_names_the_canary_backend() -> None:
    """ingress-nginx (internal/ingress/metric/collectors/socket.go requestTags): the canary
    backend's requests carry canary=<namespace>-<service>-<port> (ingress-nginx
    upstreamName) under the main ingress; the primary's carry canary=""."""
    names = flagger_workloads("podinfo", "test", port=9898)
    u = universe("nginx", names, (2, 2))
    canary = _one(u, __name__="nginx_ingress_controller_requests", service="podinfo-canary")
    primary = _one(u, __name__="nginx_ingress_controller_requests", service="podinfo-primary")
    # canary="" is no label in Prometheus: the primary's series have none.
    assert canary["canary"] == "test-podinfo-canary-9898" and "canary" not in primary
    assert canary["ingress"] == primary["ingress"] == "podinfo"
    assert set(u.pod.tolist()) == {-1}  # the controller's series sum over the pods
    les = sorted({dict(ls).get("le", "") for ls in u.labels} - {""}, key=lambda s: float(s.replace("+Inf", "inf")))
    assert les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    assert u.sum_scale == 0.001


def test_envoy_histograms_are_not_split_by_code() -> None:
    """Envoy's upstream_rq_time has no response-code tag (envoyproxy/envoy
    source/common/config/well_known_names.cc): bucket, sum and count sum over codes;
    the request counter is per envoy_response_code, _xx per class, _total over all."""
    u = universe("contour", flagger_workloads("podinfo", "test"), (2, 2))
    hist = np.isin(u.kind, [BUCKET, SUM, COUNT])
    assert (u.code[hist] == -1).all()
    rq = np.array([dict(ls)["__name__"] == "envoy_cluster_upstream_rq" for ls in u.labels])
    assert (u.code[rq] >= 0).all()
    _one(u, __name__="envoy_cluster_upstream_rq_xx", envoy_response_code_class="5",
         envoy_cluster_name="test_podinfo-canary_80")  # fmt: skip
    total = [k for k, ls in enumerate(u.labels) if dict(ls)["__name__"] == "envoy_cluster_upstream_rq_total"]
    assert (u.code[total] == -1).all() and len(total) == 2
    # Two codes of one class cannot be one _xx series: the family is left out.
    u2 = universe("contour", flagger_workloads("podinfo", "test"), (1, 1), codes=("200", "201", "500"))
    assert not any(dict(ls)["__name__"] == "envoy_cluster_upstream_rq_xx" for ls in u2.labels)


def test_linkerd_labels() -> None:
    """linkerd2-proxy's response_total carries classification (failure for 5xx) and
    status_code; response_latency_ms (ms, integer le) is per status_code; linkerd-viz's
    scrape adds namespace, pod, deployment and pod_template_hash."""
    names = flagger_workloads("podinfo", "test")
    u = universe("linkerd", names, (1, 1))
    fail = _one(u, __name__="response_total", status_code="500", deployment="podinfo")
    ok = _one(u, __name__="response_total", status_code="200", deployment="podinfo")
    assert fail["classification"] == "failure" and ok["classification"] == "success"
    assert fail["direction"] == "inbound"
    assert fail["pod"] == version_pods(names, (1, 1))[CANARY][0]
    assert fail["pod"].startswith(f"podinfo-{fail['pod_template_hash']}-")
    bucket = _one(u, __name__="response_latency_ms_bucket", le="50000")
    assert "classification" not in bucket and bucket["status_code"] in ("200", "500")
    assert default_bounds_ms("linkerd")[:6] == (1, 2, 3, 4, 5, 10)


@pytest.mark.parametrize(
    ("provider", "les"),
    [
        # Traefik's default buckets 0.1, 0.3, 1.2, 5 s (doc.traefik.io metrics/prometheus),
        # written by client_golang (strconv 'g', -1).
        ("traefik", ["0.1", "0.3", "1.2", "5", "+Inf"]),
        # APISIX's DEFAULT_BUCKETS in ms, written by nginx-lua-prometheus as %07.1f.
        (
            "apisix",
            [
                "00001.0",
                "00002.0",
                "00005.0",
                "00010.0",
                "00020.0",
                "00050.0",
                "00100.0",
                "00200.0",
                "00500.0",
                "01000.0",
                "02000.0",
                "05000.0",
                "10000.0",
                "30000.0",
                "60000.0",
                "+Inf",
            ],
        ),  # fmt: skip
        # podinfo's http_request_duration_seconds: prometheus.DefBuckets.
        ("kubernetes", ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]),
    ],
)
def test_le_texts_as_the_exporter_writes_them(provider: str, les: list[str]) -> None:
    u = universe(provider, flagger_workloads("podinfo", "test"), (1, 1))
    first = next(k for k in range(len(u.labels)) if u.kind[k] == BUCKET)
    got = [dict(u.labels[k])["le"] for k in range(first, first + len(les))]
    assert got == les
    assert [u.bucket[k] for k in range(first, first + len(les))] == list(range(len(les)))


def test_go_float_is_strconv_g_shortest() -> None:
    """golang src/strconv/ftoa.go formatDigits %g, shortest: exponent form below 1e-4 or
    from 1e6 (client_golang writes le and sample values so)."""
    cases = {0.005: "0.005", 1.0: "1", 2.5: "2.5", 10.0: "10", 100000.0: "100000", 1e6: "1e+06",
             3600000.0: "3.6e+06", 0.0001: "0.0001", 0.00001: "1e-05", float("inf"): "+Inf"}  # fmt: skip
    assert {x: go_float(x) for x in cases} == cases


def test_custom_bounds_are_used_and_written_in_the_exporters_unit() -> None:
    u = universe("nginx", flagger_workloads("podinfo", "test"), (1, 1), bounds_ms=(100, 250, 1000))
    assert u.bounds_ms == (100.0, 250.0, 1000.0)
    les = {dict(ls).get("le") for ls in u.labels} - {None}
    assert les == {"0.1", "0.25", "1", "+Inf"}


def test_universe_arrays_describe_every_series() -> None:
    u = universe("istio", flagger_workloads("podinfo", "test"), (2, 3), codes=("200", "404", "503"))
    k = len(u.labels)
    for array in (u.version, u.pod, u.code, u.kind, u.bucket):
        assert array.shape == (k,)
    assert len(set(u.labels)) == k
    for labels in u.labels:
        assert labels == tuple(sorted(labels)) and dict(labels)["__name__"]
        # Valid label names, and no empty values (Prometheus drops them).
        assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", n) and v for n, v in labels)
    bucket = u.kind == BUCKET
    assert (u.bucket[~bucket] == -1).all()
    assert set(u.bucket[bucket].tolist()) == set(range(len(u.bounds_ms) + 1))
    for k_ in np.flatnonzero(bucket):
        le = dict(u.labels[k_])["le"]
        b = u.bucket[k_]
        assert float(le) == (math.inf if b == len(u.bounds_ms) else u.bounds_ms[b])
    # Per version: each canary pod has its destination series for each code.
    dest = np.array([dict(ls)["reporter"] == "destination" for ls in u.labels]) & (u.kind == REQUESTS)
    for version, n in ((PRIMARY, 2), (CANARY, 3)):
        rows = dest & (u.version == version)
        assert sorted(zip(u.pod[rows].tolist(), u.code[rows].tolist())) == [(p, c) for p in range(n) for c in range(3)]


def test_produced_names_are_the_universe_names() -> None:
    for provider in PROVIDERS:
        u = universe(provider, flagger_workloads("podinfo", "test"), (1, 1))
        assert {dict(ls)["__name__"] for ls in u.labels} == produced_names(provider)
        assert all(value for labels in u.labels for _, value in labels), provider


def test_bad_arguments() -> None:
    names = flagger_workloads("podinfo", "test")
    with pytest.raises(ValueError, match="increasing"):
        universe("istio", names, (1, 1), bounds_ms=(10, 5))
    with pytest.raises(ValueError, match="distinct"):
        universe("istio", names, (1, 1), codes=("200", "200"))
    with pytest.raises(ValueError, match="negative"):
        universe("istio", names, (-1, 1))


# --- pod names ----------------------------------------------------------------------------


def test_pod_names_are_deterministic_kubernetes_names() -> None:
    """<workload>-<pod-template-hash>-<5 characters of Kubernetes' alphabet>: Flagger's
    pod regex ``<target>-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`` (observers/http.go, appmesh.go)
    matches the canary's pods and not the primary's ``<target>-primary-...``."""
    names = pod_names("podinfo", "5d8f9c7b6", 4)
    assert names == pod_names("podinfo", "5d8f9c7b6", 4) and len(set(names)) == 4
    for name in names:
        assert re.fullmatch(r"podinfo-5d8f9c7b6-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
        assert re.fullmatch(r"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", name)
    for name in pod_names("podinfo-primary", "", 3):
        assert not re.fullmatch(r"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", name)
    assert pod_names("podinfo", "", 0) == ()


# --- Argo Rollouts --------------------------------------------------------------------------

_ARGO = argo_workloads("rollouts-demo", "demo", "rollouts-demo-canary", "rollouts-demo-stable",
                       "6cf78c66c5", "687d76d795", stable_ingress="rollouts-demo-stable")  # fmt: skip


def test_argo_workloads() -> None:
    """Both versions are the Rollout's pods, told apart by rollouts-pod-template-hash."""
    assert _ARGO.canary == _ARGO.primary == "rollouts-demo"
    primary, canary = version_pods(_ARGO, (2, 2))
    assert all(p.startswith("rollouts-demo-687d76d795-") for p in primary)
    assert all(p.startswith("rollouts-demo-6cf78c66c5-") for p in canary)


#: (trafficRouting kind, query as an AnalysisTemplate writes it with its args filled in,
#: whether it selects only the canary (else both versions)).
ARGO_QUERIES = [
    # argoproj/argo-rollouts examples/analysis/istio (rollouts-demo-istio-analysis.yaml):
    # args service=rollouts-demo-canary, namespace=demo.
    ("istio", 'sum(irate(istio_requests_total{reporter="source", destination_service=~"rollouts-demo-canary.demo.svc.cluster.local", response_code!~"5.*"}[40s]))', True),
    # argo-rollouts docs/analysis/prometheus.md (docs-success-rate-template.yaml).
    ("istio", 'sum(irate(istio_requests_total{reporter="source",destination_service=~"rollouts-demo-canary.demo.svc.cluster.local"}[5m]))', True),
    ("istio", 'sum(rate(istio_requests_total{reporter="destination",destination_workload="rollouts-demo"}[5m]))', False),
    ("nginx", 'sum(rate(nginx_ingress_controller_requests{ingress="rollouts-demo-stable",service="rollouts-demo-canary"}[1m]))', True),
    ("nginx", 'sum(rate(nginx_ingress_controller_requests{ingress="rollouts-demo-stable",canary!=""}[1m]))', True),
    ("alb", 'sum(rate(http_requests_total{kubernetes_pod_name=~"rollouts-demo-6cf78c66c5-.*"}[1m]))', True),
    ("kubernetes", 'sum(rate(http_requests_total{kubernetes_namespace="demo",app="rollouts-demo-stable"}[1m]))', False),
    ("smi", 'sum(rate(response_total{namespace="demo",rollouts_pod_template_hash="6cf78c66c5",direction="inbound"}[1m]))', True),
    ("traefik", 'sum(rate(traefik_service_requests_total{service="demo-rollouts-demo-canary-80@kubernetescrd"}[1m]))', True),
    ("ambassador", 'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"cluster_rollouts_demo_canary_demo.*"}[1m]))', True),
    ("appmesh", 'sum(rate(envoy_cluster_upstream_rq{kubernetes_pod_name=~"rollouts-demo-6cf78c66c5-.*"}[1m]))', True),
    ("apisix", 'sum(rate(apisix_http_status{route=~"demo_rollouts-demo-.*"}[1m]))', False),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "query", "canary_only"), ARGO_QUERIES)
def test_argo_template_labels_select_as_the_module_table_says(kind: str, query: str, canary_only: bool) -> None:
    u = universe(kind, _ARGO, (2, 2))
    (sel,) = select_query(u, query)
    assert sel.size > 0
    assert set(u.version[sel].tolist()) == ({CANARY} if canary_only else {PRIMARY, CANARY})
