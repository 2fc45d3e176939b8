"""Flagger's builtin queries per provider and ``RenderQuery``, rendered exactly.

The expected texts are copied from fluxcd/flagger ``pkg/metrics/observers/*_test.go``: each
test there serves a fake Prometheus that asserts the query it receives, i.e. the builtin
template after ``RenderQuery`` (observers/render.go) and the Prometheus client's
``trimQuery`` (providers/prometheus.go), so the comparison is exact, not whitespace-blind.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.queries import (
    BUILTIN_QUERIES,
    DURATION_TO_MS,
    MetricTemplateModel,
    QueryTemplateError,
    builtin_query,
    metrics_provider,
    observer_of,
    render_query,
    skipper_model,
    trim_query,
)
from sim.policies.flagger.spec import FlaggerPolicySpec

SR, LAT = "request-success-rate", "request-duration"

#: (where in fluxcd/flagger pkg/metrics/observers, provider, metric, MetricTemplateModel
#: fields as the Go test sets them, the query the test's fake Prometheus expects).
OBSERVER_TESTS: list[tuple[str, str, str, dict[str, str], str]] = [
    (
        "apisix_test.go TestApisixObserver_GetRequestSuccessRate",
        "apisix",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", route="podinfo", interval="1m"),
        (
            ' sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) '
            ') / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100'
        ),
    ),
    (
        "apisix_test.go TestApisixObserver_GetRequestDuration",
        "apisix",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", route="podinfo", interval="1m"),
        (
            ' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", '
            'route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )'
        ),
    ),
    (
        "appmesh_test.go TestAppMeshObserver_GetRequestSuccessRate",
        "appmesh",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", '
            'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) '
            ') / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", '
            'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100'
        ),
    ),
    (
        "appmesh_test.go TestAppMeshObserver_GetRequestDuration",
        "appmesh",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" '
            "}[1m] ) ) by (le) )"
        ),
    ),
    (
        "contour_test.go TestContourObserver_GetRequestSuccessRate",
        "contour",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " sum( rate( envoy_cluster_upstream_rq{ "
            'envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) '
            ") / sum( rate( envoy_cluster_upstream_rq{ "
            'envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100'
        ),
    ),
    (
        "contour_test.go TestContourObserver_CustomService_GetRequestSuccessRate",
        "contour",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo-service", interval="1m"),
        (
            " sum( rate( envoy_cluster_upstream_rq{ "
            'envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" '
            "}[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ "
            'envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100'
        ),
    ),
    (
        "contour_test.go TestContourObserver_GetRequestDuration",
        "contour",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'
        ),
    ),
    (
        "contour_test.go TestContourObserver_CustomService_GetRequestDuration",
        "contour",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo-service", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'envoy_cluster_name=~"default_podinfo-service-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'
        ),
    ),
    (
        "gloo_test.go TestGlooObserver_GetRequestSuccessRate",
        "gloo",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " sum( rate( envoy_cluster_upstream_rq{ "
            'envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", '
            'envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ '
            'envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * '
            "100"
        ),
    ),
    (
        "gloo_test.go TestGlooObserver_GetRequestDuration",
        "gloo",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by '
            "(le) )"
        ),
    ),
    (
        "http_test.go TestHttpObserver_GetRequestSuccessRate",
        "kubernetes",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", '
            'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( '
            'rate( http_request_duration_seconds_count{ kubernetes_namespace="default", '
            'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100'
        ),
    ),
    (
        "http_test.go TestHttpObserver_GetRequestDuration",
        "kubernetes",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ "
            'kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" '
            "}[1m] ) ) by (le) )"
        ),
    ),
    (
        "istio_test.go TestIstioObserver_GetRequestSuccessRate",
        "istio",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( istio_requests_total{ reporter="destination", '
            'destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" '
            '}[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", '
            'destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100'
        ),
    ),
    (
        "istio_test.go TestIstioObserver_GetRequestDuration",
        "istio",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ "
            'reporter="destination", destination_workload_namespace="default", '
            'destination_workload=~"podinfo" }[1m] ) ) by (le) )'
        ),
    ),
    (
        "knative_test.go TestKnativeObserver_GetRequestSuccessRate",
        "knative",
        SR,
        dict(
            name="podinfo",
            namespace="default",
            target="podinfo",
            service="podinfo",
            route="podinfo-00001",
            interval="1m",
        ),
        (
            ' sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", '
            'envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ '
            'envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) * 100'
        ),
    ),
    (
        "knative_test.go TestKnativeObserver_GetRequestDuration",
        "knative",
        LAT,
        dict(
            name="podinfo",
            namespace="default",
            target="podinfo",
            service="podinfo",
            route="podinfo-00001",
            interval="1m",
        ),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) by (le) )'
        ),
    ),
    (
        "kuma_test.go TestKumaObserver_GetRequestSuccessRate",
        "kuma",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", '
            'envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ '
            'service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100'
        ),
    ),
    (
        "kuma_test.go TestKumaObserver_GetRequestDuration",
        "kuma",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ "
            'service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )'
        ),
    ),
    (
        "linkerd_test.go TestLinkerdObserver_GetRequestSuccessRate",
        "linkerd",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", '
            'classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ '
            'namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100'
        ),
    ),
    (
        "linkerd_test.go TestLinkerdObserver_GetRequestDuration",
        "linkerd",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", '
            'deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )'
        ),
    ),
    (
        "nginx_test.go TestNginxObserver_GetRequestSuccessRate",
        "nginx",
        SR,
        dict(name="podinfo", namespace="nginx", target="podinfo", ingress="podinfo", interval="1m"),
        (
            ' sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", '
            'canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ '
            'namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100'
        ),
    ),
    (
        "nginx_test.go TestNginxObserver_GetRequestDuration",
        "nginx",
        LAT,
        dict(name="podinfo", namespace="nginx", target="podinfo", ingress="podinfo", interval="1m"),
        (
            ' sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", '
            'ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( '
            'nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", '
            'canary!="" }[1m] ) ) * 1000'
        ),
    ),
    (
        "osm_test.go TestOsmObserver_GetRequestSuccessRate",
        "osm",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            ' sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", '
            'destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ '
            'destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" '
            "}[1m] ) ) * 100"
        ),
    ),
    (
        "osm_test.go TestOsmObserver_GetRequestDuration",
        "osm",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ "
            'destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" '
            "}[1m] ) ) by (le) )"
        ),
    ),
    (
        "skipper_test.go TestSkipperObserver_GetRequestSuccessRate",
        "skipper",
        SR,
        dict(namespace="skipper", interval="1m", service="backend", ingress="skipper-ingress"),
        (
            " "
            "sum(rate(skipper_response_duration_seconds_bucket{"
            'route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",'
            'code!~"5..",le="+Inf"}[1m])) '
            "/ "
            "sum(rate(skipper_response_duration_seconds_bucket{"
            'route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",'
            'le="+Inf"}[1m])) '
            "* 100"
        ),
    ),
    (
        "skipper_test.go TestSkipperObserver_GetRequestDuration",
        "skipper",
        LAT,
        dict(namespace="skipper", interval="1m", service="backend", ingress="skipper-ingress"),
        (
            " "
            "sum(rate(skipper_serve_route_duration_seconds_sum{"
            'route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) '
            "/ "
            "sum(rate(skipper_serve_route_duration_seconds_count{"
            'route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) '
            "* 1000"
        ),
    ),
    (
        "traefik_test.go TestTraefikObserver_GetRequestSuccessRate",
        "traefik",
        SR,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " sum( rate( traefik_service_request_duration_seconds_bucket{ "
            'service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) '
            "/ sum( rate( traefik_service_request_duration_seconds_bucket{ "
            'service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100'
        ),
    ),
    (
        "traefik_test.go TestTraefikObserver_GetRequestDuration",
        "traefik",
        LAT,
        dict(name="podinfo", namespace="default", target="podinfo", service="podinfo", interval="1m"),
        (
            " histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ "
            'service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000'
        ),
    ),
]


@pytest.mark.parametrize(
    ("where", "provider", "metric", "model", "expected"), OBSERVER_TESTS, ids=[t[0] for t in OBSERVER_TESTS]
)
def test_builtin_query_is_what_flaggers_observer_tests_expect(
    where: str, provider: str, metric: str, model: dict[str, Any], expected: str
) -> None:
    """pkg/metrics/observers/<provider>_test.go (the test named in the id): the query sent."""
    assert builtin_query(provider, metric, MetricTemplateModel(**model)) == expected


def test_every_observer_has_an_observer_test() -> None:
    """Every observer of factory.go is covered by the table above, both metrics."""
    covered = {(observer_of(p), m) for _, p, m, _, _ in OBSERVER_TESTS}
    assert covered == {(o, m) for o in BUILTIN_QUERIES for m in (SR, LAT)}


# --- RenderQuery (pkg/metrics/observers/render_test.go, Test_RenderQuery) ---------------------


def test_render_ok_without_variables() -> None:
    """render_test.go Test_RenderQuery ok_without_variables."""
    model = MetricTemplateModel(name="standard", namespace="default", target="myapp", interval="1m")
    template = 'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ target }}"})'
    assert render_query(template, model) == 'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"default_myapp"})'


KAFKA = (
    'delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="{{ variables.cluster }}", '
    'consumer_group="{{ variables.consumer_group }}"}[{{ interval }}]))'
)


def test_render_ok_with_variables() -> None:
    """render_test.go Test_RenderQuery ok_with_variables: ``{{ variables.x }}`` reads templateVariables."""
    model = MetricTemplateModel(
        name="kafka_consumer_offset",
        namespace="default",
        interval="1m",
        variables={"cluster": "dev", "consumer_group": "my_consumer"},
    )
    assert render_query(KAFKA, model) == (
        'delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="dev", '
        'consumer_group="my_consumer"}[1m]))'
    )


def test_render_missing_variable_key_is_an_error() -> None:
    """render_test.go Test_RenderQuery missing_variable_key: ``missingkey=error``."""
    model = MetricTemplateModel(interval="1m", variables={"invalid": "dev", "consumer_group": "my_consumer"})
    with pytest.raises(QueryTemplateError, match='no entry for key "cluster"'):
        render_query(KAFKA, model)


def test_render_without_variables_at_all_is_an_error() -> None:
    """metric.go TemplateFunctions: ``variables`` returns a nil map when none are set; a key
    lookup in it fails the same way (missingkey=error)."""
    with pytest.raises(QueryTemplateError, match='no entry for key "x"'):
        render_query("{{ variables.x }}", MetricTemplateModel())


MODEL = MetricTemplateModel(
    name="canary-name",
    namespace="ns",
    target="app",
    service="svc",
    ingress="ing",
    route="rt",
    interval="30s",
    variables={"a": "1", "b": "2"},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # metric.go TemplateFunctions: one function per MetricTemplateModel field.
        ("{{ name }}/{{ namespace }}/{{ target }}/{{ service }}", "canary-name/ns/app/svc"),
        ("{{ingress}}/{{route}}/{{interval}}", "ing/rt/30s"),
        # text/template trim markers: "{{- " trims the spaces before, " -}}" those after.
        ("a \n\t{{- target -}} \n b", "aappb"),
        ("a {{-target}} b", None),  # "-target" is no trim marker (a dash needs a space after it)
        ("x {{/* a comment */}} y", "x  y"),
        ("x {{- /* a comment */ -}} y", "xy"),
        # skipper.go routePattern: a variable set with printf, used later.
        ('{{- $r := printf "%s_%s" namespace service }}{{ $r }}:{{ $r }}', "ns_svc:ns_svc"),
        # pipelines pass the value as the last argument; parentheses group.
        ('{{ target | printf "%s-primary" }}', "app-primary"),
        ('{{ printf "%s/%s" (printf "%s-%s" name target) "x" }}', "canary-name-app/x"),
        ('{{ printf "%v%%" "99" }}', "99%"),
        ('{{ printf "%q" target }}', '"app"'),
        # fmt writes argument mismatches into the text rather than failing.
        ('{{ printf "%s %s" target }}', "app %!s(MISSING)"),
        ('{{ printf "%s" target name }}', "app%!(EXTRA string=canary-name)"),
        ('{{ "lit" }}{{ `raw\\n` }}', "litraw\\n"),
        ("{{ variables }}", "map[a:1 b:2]"),
        ("no actions at all", "no actions at all"),
    ],
)
def test_render_the_template_subset(template: str, expected: str | None) -> None:
    """Go text/template as RenderQuery runs it (render.go), for what query templates use."""
    if expected is None:
        with pytest.raises(QueryTemplateError):
            render_query(template, MODEL)
    else:
        assert render_query(template, MODEL) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nope }}", 'function "nope" not defined'),
        ("{{ $x }}", 'undefined variable "\\$x"'),
        ("{{ target 1 }}", "not supported|wrong number"),
        ('{{ target "x" }}', "wrong number of args for target: want 0 got 1"),
        ("{{ if target }}x{{ end }}", "'if' is not supported"),
        ('{{ index variables "a" }}', "'index' is not supported"),
        ("{{ .Target }}", "has no data"),
        ("{{ target.x }}", "can't evaluate field x in type string"),
        ('{{ printf "%d" target }}', "verb %d"),
        ("{{ target ", "unclosed action"),
        ("{{ }}", "missing value"),
        ("{{ target | }}", "missing value"),
    ],
)
def test_render_errors(template: str, message: str) -> None:
    """RenderQuery returns an error (render.go: parsing or execution failed), or pdsim names
    the template feature it does not evaluate."""
    with pytest.raises(QueryTemplateError, match=message):
        render_query(template, MODEL)


def test_trim_query_collapses_go_whitespace_only() -> None:
    """providers/prometheus.go trimQuery: regexp ``\\s+`` -> " " (RE2's \\s is ASCII
    [\\t\\n\\f\\r ]: a vertical tab or a no-break space stays)."""
    assert trim_query("\n\tsum(\n\t\trate(x[1m])  )\r\n") == " sum( rate(x[1m]) ) "
    assert trim_query("a\vb\u00a0c") == "a\vb\u00a0c"


# --- which observer (factory.go) and which provider (scheduler_metrics.go) ------------------


@pytest.mark.parametrize(
    ("provider", "observer"),
    [
        ("istio", "istio"),
        ("linkerd", "linkerd"),
        ("appmesh", "appmesh"),
        ("appmesh:v1beta2", "appmesh"),
        ("contour", "contour"),
        ("gloo", "gloo"),
        ("gloo:v1", "gloo"),
        ("nginx", "nginx"),
        ("kubernetes", "http"),
        ("gatewayapi", "http"),
        ("gatewayapi:v1beta1", "http"),
        ("skipper", "skipper"),
        ("traefik", "traefik"),
        ("osm", "osm"),
        ("kuma", "kuma"),
        ("apisix", "apisix"),
        ("knative", "knative"),
        # Anything else is Istio's observer, including these:
        ("smi:linkerd", "istio"),
        ("supergloo:linkerd", "istio"),
        ("linkerd:service", "istio"),
        ("kubernetes:service", "istio"),
        ("", "istio"),
    ],
)
def test_observer_of_provider(provider: str, observer: str) -> None:
    """pkg/metrics/observers/factory.go Factory.Observer: prefixes for appmesh, gloo and
    gatewayapi, equality for the others, IstioObserver by default."""
    assert observer_of(provider) == observer


def test_metrics_provider_of_a_service_target() -> None:
    """pkg/controller/scheduler_metrics.go runBuiltinMetricChecks: a Service target (not a
    Knative one) appends MetricsProviderServiceSuffix; an empty provider is the mesh default."""
    assert metrics_provider("linkerd") == "linkerd"
    assert metrics_provider("linkerd", "Service", "v1") == "linkerd:service"
    assert observer_of(metrics_provider("linkerd", "Service", "v1")) == "istio"
    assert metrics_provider("gatewayapi:v1beta1", "Service", "v1") == "gatewayapi:v1beta1:service"
    assert observer_of(metrics_provider("gatewayapi:v1beta1", "Service", "v1")) == "http"
    assert metrics_provider("knative", "Service", "serving.knative.dev/v1") == "knative"
    assert metrics_provider("") == "istio"


def test_skipper_model_encodes_non_word_characters() -> None:
    """skipper.go encodeModelForSkipper: ``\\W`` -> ``_`` in ingress, name, namespace,
    service and target (not route, interval or variables)."""
    m = skipper_model(MetricTemplateModel("a-b", "n.s", "t/x", "s-1", "i-2", "r-3", "1m", {"v": "w-x"}))
    assert (m.name, m.namespace, m.target, m.service, m.ingress) == ("a_b", "n_s", "t_x", "s_1", "i_2")
    assert (m.route, m.interval, dict(m.variables)) == ("r-3", "1m", {"v": "w-x"})


def test_duration_conversion_to_milliseconds() -> None:
    """observers/http.go GetRequestDuration: ``time.Duration(int64(value*1000))``, seconds;
    every other observer ``int64(value)``, already milliseconds."""
    assert DURATION_TO_MS["http"] == 1000.0
    assert {o for o, k in DURATION_TO_MS.items() if k != 1.0} == {"http"}


# --- FlaggerCanary.queries(): the query of each check (scheduler_metrics.go) ------------------


def _canary(**flagger: Any) -> FlaggerCanary:
    flagger.setdefault("analysis", {})
    flagger["analysis"] = {"interval": "1m", "stepWeight": 10, **flagger["analysis"]}
    return FlaggerCanary(FlaggerPolicySpec.model_validate(flagger))


def test_builtins_render_the_canarys_provider_with_defaults() -> None:
    """runBuiltinMetricChecks: the Canary's provider's observer, toMetricModel's names (pdsim's
    defaults: namespace default, target podinfo), the metric's interval or GetMetricInterval's 1m."""
    policy = _canary(provider="kubernetes", analysis={"metrics": [{"name": SR}, {"name": LAT, "interval": "30s"}]})
    sr, lat = policy.queries()
    model = MetricTemplateModel(name="podinfo", namespace="default", target="podinfo", service="podinfo")
    assert sr.query == builtin_query("kubernetes", SR, replace_interval(model, "1m"))
    assert lat.query == builtin_query("kubernetes", LAT, replace_interval(model, "30s"))
    assert "http_request_duration_seconds_bucket" in lat.query and "[30s]" in lat.query
    # observers/http.go: the seconds histogram's value times 1000, then whole milliseconds.
    assert (sr.scale, lat.scale, lat.provider) == (1.0, 1000.0, "prometheus")


def replace_interval(model: MetricTemplateModel, interval: str) -> MetricTemplateModel:
    return dataclasses.replace(model, interval=interval)


def test_inline_query_renders_and_trims() -> None:
    """runBuiltinMetricChecks, in-line PromQL: RenderQuery with the model, then the
    metrics server's Prometheus client (trimQuery); an unset interval is 1m there."""
    query = 'sum(rate(x{ns="{{ namespace }}", app="{{ target }}", v="{{ variables.v }}"}[{{ interval }}]))\n'
    policy = _canary(
        metadata={"name": "web", "namespace": "prod"},
        targetRef={"name": "web-app"},
        analysis={"metrics": [{"name": "errs", "query": query, "templateVariables": {"v": "2"}, "threshold": 5}]},
    )
    [q] = policy.queries()
    assert q.query == 'sum(rate(x{ns="prod", app="web-app", v="2"}[1m])) '
    assert (q.signal, q.provider, q.bindings) == ("custom", "prometheus", ("errs",))


def test_template_queries_and_their_provider() -> None:
    """runMetricChecks: the MetricTemplate's query rendered with the metric's model; its
    provider type (providers/factory.go: unknown -> prometheus); an unset interval stays ""
    (metric.Interval is passed as it is there)."""
    templates = {
        "prom": {"query": "rate(x{app='{{ target }}'}[{{ interval }}])\n", "provider": {"type": "prometheus"}},
        "dd": {"query": "avg:x{app:{{ target }}}\n", "provider": {"type": "datadog"}},
        "odd": {"query": "y[{{ interval }}]", "provider": {"type": "something"}},
    }
    policy = _canary(
        metricTemplates=templates,
        analysis={
            "metrics": [
                {"name": "a", "templateRef": {"name": "prom"}, "interval": "2m"},
                {"name": "b", "templateRef": {"name": "dd"}},
                {"name": "c", "templateRef": {"name": "odd"}},
                {"name": "d", "templateRef": {"name": "missing"}},  # bound by the scenario
            ]
        },
    )
    a, b, c, d = policy.queries()
    assert (a.query, a.provider) == ("rate(x{app='podinfo'}[2m]) ", "prometheus")
    assert (b.query, b.provider) == ("avg:x{app:podinfo}\n", "datadog")  # not trimmed: not Prometheus
    assert (c.query, c.provider) == ("y[]", "prometheus")
    assert (d.query, d.bindings) == ("", ("d", "missing"))


def test_unrenderable_queries_are_input_errors() -> None:
    """RenderQuery errors fail the check at every analysis in Flagger (scheduler_metrics.go
    "query render error"); pdsim refuses the policy, naming the metric."""
    with pytest.raises(ValidationError, match="query: Flagger cannot render"):
        _canary(analysis={"metrics": [{"name": "e", "query": "{{ variables.k }}"}]})
    with pytest.raises(ValidationError, match="metric 'e': MetricTemplate 't': Flagger cannot render"):
        _canary(
            metricTemplates={"t": {"query": "{{ nope }}"}},
            analysis={"metrics": [{"name": "e", "templateRef": {"name": "t"}}]},
        )


def test_workload_names() -> None:
    """The names the series carry: <target>-primary (deployment_controller.go), the apex,
    primary and canary services (Canary.GetServiceNames), ingress and route (toMetricModel)."""
    policy = _canary(
        metadata={"namespace": "shop"},
        targetRef={"name": "cart"},
        service={"name": "cart-svc"},
        routeRef={"name": "cart-route"},
    )
    n = policy.workload_names()
    assert (n.name, n.namespace, n.target, n.primary) == ("cart", "shop", "cart", "cart-primary")
    assert (n.service, n.primary_service, n.canary_service) == ("cart-svc", "cart-svc-primary", "cart-svc-canary")
    assert (n.ingress, n.route) == ("cart", "cart-route")
    assert policy.metrics_provider() == "istio"


def test_skipper_builtin_through_the_policy() -> None:
    """skipper.go: the model is encoded (encodeModelForSkipper) before rendering."""
    policy = _canary(
        provider="skipper",
        metadata={"namespace": "my-ns"},
        ingressRef={"name": "my.ingress"},
        analysis={"metrics": [{"name": SR}]},
    )
    [q] = policy.queries()
    assert 'route=~"kube(ew)?_my_ns__my_ingress_canary__.*__podinfo_canary(_[0-9]+)?"' in q.query
