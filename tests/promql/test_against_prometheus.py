"""pdsim's PromQL engine against a real Prometheus, query by query (issue 14, item 6).

The hard-case series of ``series_world`` (low traffic, pods and 5xx series born mid-window,
sparse histograms, lost scrapes, a counter reset, a NaN gauge sample) are written with
``write_openmetrics``, one Prometheus per run loads them through promtool, and for every
query and evaluation time the engine (both runs at once, vectorised) must give what
Prometheus answers: the same kind of result, the same label sets, values equal to a
relative 1e-9 with NaN equal to NaN, empty equal to empty, and an error where Prometheus
has one.

The queries: generated ones covering every function and operator the engine evaluates
(windows 30s/1m/2m/5m, by/without, vector matching), the queries of the shared upstream
fixtures' MetricTemplates and AnalysisTemplates, and those of Flagger's and Argo Rollouts'
docs, rendered with ``series_world.RENDER``, and Flagger's builtin queries of every provider
(``extra_queries``, rendered by ``sim.policies.flagger.queries``; the simulated rollouts' own
series are checked in ``test_world_against_prometheus.py``).

Reference: Debian bookworm's prometheus 2.42.0 (the binary run here).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator

import numpy as np
import pytest

from sim.policies.flagger.queries import BUILTIN_QUERIES, MetricTemplateModel, builtin_query
from sim.promql import compile_query
from sim.promql.openmetrics import SERIES_EPOCH_S, write_openmetrics
from sim.promql.series import Labels, Matrix, Result, Scalar, SeriesBatch, Vector
from tests.helpers import UPSTREAM_FIXTURES
from tests.helpers.prometheus import MISSING, PrometheusServer, QueryResult, same_value
from tests.promql.series_world import NAMESPACE, PODS, RENDER, SCRAPE_S, build_batch

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

RUNS = 2

# --- the queries -------------------------------------------------------------------------

SELECTORS = (
    'istio_requests_total{reporter="destination",destination_workload="podinfo"}',
    'istio_requests_total{reporter="source",response_code=~"5.."}',
    'response_total{classification="failure"}',
    "http_requests_total",
    'grpc_server_handled_total{grpc_code!="OK"}',
)
WINDOWS = ("30s", "1m", "2m", "5m")
RANGE_FUNCTIONS = (
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
)
AGGREGATIONS = ("sum", "avg", "min", "max", "count", "stddev", "stdvar", "group")
RATE = 'rate(istio_requests_total{reporter="destination"}[1m])'
BUCKETS = 'istio_request_duration_milliseconds_bucket{reporter="destination"}'


def generated_queries() -> list[str]:
    """Every function and operator the engine evaluates, over the hard-case series."""
    out: list[str] = []
    # Range functions: each over each window, on two selectors (one born late, one low traffic).
    for fn in RANGE_FUNCTIONS:
        for window in WINDOWS:
            out.append(f"{fn}({SELECTORS[0]}[{window}])")
        out.append(f"{fn}({SELECTORS[1]}[2m])")
    for window in WINDOWS:
        out += [
            f"sum(rate({SELECTORS[2]}[{window}])) by (deployment)",
            f"quantile_over_time(0.9, http_latency_ms[{window}])",
            f"absent_over_time({SELECTORS[1]}[{window}])",
        ]
    out += [f"{fn}({sel}[1m])" for fn in ("rate", "increase", "irate") for sel in SELECTORS[2:]]
    out += ["quantile_over_time(0, http_latency_ms[2m])", "quantile_over_time(1, http_latency_ms[5m])"]
    out += ["avg_over_time(http_latency_ms[1m])", "max_over_time(http_latency_ms[2m])", "deriv(http_latency_ms[5m])"]
    out += ["predict_linear(http_latency_ms[5m], 60)", 'predict_linear(istio_requests_total{pod=~".*x2x4z"}[2m], 300)']
    # Aggregations: by / without over a rate.
    for agg in AGGREGATIONS:
        out += [f"{agg}({RATE})", f"{agg} by (destination_workload) ({RATE})", f"{agg}({RATE}) without (pod)"]
    out += [
        f"topk(2, {RATE})",
        f"bottomk(1, {RATE}) by (destination_workload)",
        f"quantile(0.5, {RATE})",
        f"quantile by (response_code) (0.9, {RATE})",
        f"count(count by (pod) ({RATE}))",
        "sum by (response_code) (increase(istio_requests_total[5m]))",
        "sum without (le, pod) (istio_request_duration_milliseconds_count)",
    ]
    # Histograms: quantiles of sparse buckets, per deployment, edge quantiles, NaN cases.
    for q in ("0", "0.5", "0.9", "0.99", "1", "1.5", "-0.5"):
        out.append(f"histogram_quantile({q}, sum(rate({BUCKETS}[1m])) by (le))")
    for window in WINDOWS:
        out += [
            f"histogram_quantile(0.99, sum(rate({BUCKETS}[{window}])) by (le, destination_workload))",
            f"histogram_quantile(0.95, rate({BUCKETS}[{window}]))",
        ]
    out += [
        "histogram_quantile(0.9, sum by (le) (rate(istio_request_duration_seconds_bucket[2m])))",
        "histogram_quantile(0.5, sum by (le, pod) (increase(response_latency_ms_bucket[5m])))",
        'histogram_quantile(0.99, sum by (le) (rate(skipper_serve_route_duration_seconds_bucket{le="+Inf"}[1m])))',
        "histogram_quantile(0.9, http_request_duration_seconds_bucket)",
        "sum(rate(istio_request_duration_milliseconds_sum[1m]))"
        " / sum(rate(istio_request_duration_milliseconds_count[1m]))",
    ]
    # A counter with a NaN sample.
    for fn in ("rate", "increase", "irate", "idelta", "resets", "changes", "sum_over_time", "max_over_time"):
        for window in ("1m", "5m"):
            out.append(f"{fn}(requests_with_nan_total[{window}])")
    out += ["sum(rate(requests_with_nan_total[2m]))", "requests_with_nan_total > 0", "requests_with_nan_total"]
    # The families the builtin queries of the other providers select (Flagger pkg/metrics/observers).
    nginx = 'namespace="test",ingress="podinfo",canary!=""'
    out += [
        f"sum(rate(nginx_ingress_controller_response_duration_seconds_sum{{{nginx}}}[1m]))"
        f" / sum(rate(nginx_ingress_controller_response_duration_seconds_count{{{nginx}}}[1m])) * 1000",
        f'sum(rate(nginx_ingress_controller_requests{{{nginx},status!~"5.*"}}[2m]))'
        f" / sum(rate(nginx_ingress_controller_requests{{{nginx}}}[2m])) * 100",
        'sum(rate(osm_request_total{destination_name="podinfo",response_code!~"5.*"}[1m]))'
        ' / sum(rate(osm_request_total{destination_name="podinfo"}[1m])) * 100',
        'histogram_quantile(0.99, sum(rate(osm_request_duration_ms_bucket{destination_name="podinfo"}[1m])) by (le))',
        'histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~"request",route=~"test_.+"}[1m])) by (le))',
        'sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"test_podinfo-canary_[0-9a-zA-Z-]+",'
        'envoy_response_code!~"5.*"}[1m])) / sum(rate(envoy_cluster_upstream_rq{'
        'envoy_cluster_name=~"test_podinfo-canary_[0-9a-zA-Z-]+"}[1m])) * 100',
        'histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{service=~"podinfo-canary_test_svc_.+"}'
        "[2m])) by (le))",
        "histogram_quantile(0.5, sum by (le, mesh) (rate(envoy_cluster_upstream_rq_time_bucket[5m])))",
        'sum(rate(skipper_response_duration_seconds_bucket{code!~"5..",le="+Inf"}[1m]))'
        ' / sum(rate(skipper_response_duration_seconds_bucket{le="+Inf"}[1m])) * 100',
        "sum(rate(skipper_serve_route_duration_seconds_sum[1m]))"
        " / sum(rate(skipper_serve_route_duration_seconds_count[1m])) * 1000",
    ]
    # Binary operators: arithmetic, comparison (filter and bool), matching, set operators.
    five = 'sum by (destination_workload) (rate(istio_requests_total{response_code=~"5.*"}[1m]))'
    every = "sum by (destination_workload) (rate(istio_requests_total[1m]))"
    by_code = "sum by (destination_workload, response_code) (rate(istio_requests_total[1m]))"
    by_pod = "sum by (destination_workload, pod) (rate(istio_requests_total[2m]))"
    out += [
        f"{five} / {every}",
        f"sum({five}) / sum({every})",
        f"1 - {five} / {every}",
        f"{five} / on(destination_workload) group_right {by_code}",
        f"{by_code} / ignoring(response_code) group_left {every}",
        f"{every} / on(destination_workload) group_right {by_pod}",
        f"{five} / on(destination_workload) {every}",
        f"{every} > 0.5",
        f"{every} > bool 0.5",
        f"{every} < 1",
        f"{every} >= bool {five}",
        f"{every} == {every}",
        f"{every} != bool 0",
        f"{five} <= 0",
        f"{every} and {five}",
        f"{every} or {five}",
        f"{every} unless {five}",
        f"{five} or vector(0)",
        f"{every} unless on(destination_workload) {five}",
        f"{every} * 100",
        f"100 * {every} - 5",
        f"{every} % 0.3",
        f"{every} ^ 2",
        f"-{every}",
        f"{every} + on() group_left vector(1)",
        "http_requests_total + http_requests_total",
        "http_requests_total / on(kubernetes_pod_name, status) group_left http_requests_total",
        "http_requests_total + ignoring(job) http_requests_total",
        "sum(http_requests_total) by (pod) / on(pod) sum(grpc_server_started_total) by (pod)",
        "http_requests_total + on() http_requests_total",  # many-to-many: an error in both
        "1 / 0",
        "0 / 0",
        "-1 / 0",
        "2 ^ 0.5 + 3 % 2",
        "1 > bool 2",
        "scalar(sum(rate(http_requests_total[1m])))",
        "scalar(rate(http_requests_total[1m]))",
        f"vector(scalar({every}))",
        "vector(1) * 3",
        "time()",
        "time() - 1767225600",
        "timestamp(http_latency_ms)",
        "time() - timestamp(http_requests_total)",
    ]
    # Offset, absent, math functions, clamps, rounding.
    out += [f"sum(rate(istio_requests_total[1m] offset {off}))" for off in ("30s", "1m", "5m")] + [
        "rate(http_requests_total[2m] offset 1m)",
        "http_requests_total offset 2m",
        'absent(istio_requests_total{response_code="500",destination_workload="podinfo"})',
        'absent(nonexistent_metric{job="x"})',
        "absent(http_requests_total)",
        'absent(sum(rate(istio_requests_total{response_code="418"}[1m])))',
        "absent_over_time(http_latency_ms[30s])",
        "http_latency_ms",
        "http_requests_total",
        'http_requests_total{status=~"2..|5.."}',
        'http_requests_total{status!~"2.."}',
        'http_requests_total{kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}',
        'http_requests_total{status=""}',
        'http_requests_total{nolabel=""}',
        '{__name__=~"http_requests_.*", status="200"}',
        '{__name__=~"grpc_server_.*_total", grpc_code="OK"}',
    ]
    for fn in ("abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn", "round"):
        out.append(f"{fn}(deriv(http_latency_ms[2m]))")
    out += [
        "round(http_latency_ms, 5)",
        "round(http_latency_ms, 0.1)",
        "clamp(http_latency_ms, 100, 150)",
        "clamp_min(http_latency_ms, 120)",
        "clamp_max(http_latency_ms, 120)",
        "clamp(http_latency_ms, 150, 100)",
        f"clamp_max({five} / {every}, 0.01)",
        "max_over_time(rate(http_requests_total[1m])[5m:30s])",
        "avg_over_time(sum(rate(istio_requests_total[1m]))[2m:15s])",
    ]
    return out


#: Queries of Flagger's docs (fluxcd/flagger docs/gitbook, at the mirror's HEAD), templated
#: as written; rendered with ``RENDER``. Each names its page and line.
DOC_QUERIES = {
    "flagger docs/gitbook/tutorials/apisix-progressive-delivery.md:315": """sum(rate(apisix_http_status{
          route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+", code!~"4.."}[{{ interval }}]))
        / sum(rate(apisix_http_status{
          route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"}[{{ interval }}])) * 100""",
    "flagger docs/gitbook/tutorials/gatewayapi-progressive-delivery.md:106": """histogram_quantile(0.99,
      sum(rate(istio_request_duration_milliseconds_bucket{reporter="source",
            destination_workload_namespace=~"{{ namespace }}", destination_workload=~"{{ target }}",
          }[{{ interval }}])) by (le))/1000""",
    "flagger docs/gitbook/tutorials/gatewayapi-progressive-delivery.md:128": """100 - sum(rate(istio_requests_total{
          reporter="source", destination_workload_namespace=~"{{ namespace }}",
          destination_workload=~"{{ target }}", response_code!~"5.*"}[{{ interval }}]))
    / sum(rate(istio_requests_total{reporter="source", destination_workload_namespace=~"{{ namespace }}",
          destination_workload=~"{{ target }}",}[{{ interval }}])) * 100""",
    "flagger docs/gitbook/tutorials/keda-scaledobject.md:74": 'sum(rate(http_requests_total{ app="podinfo" }[30s]))',
    "flagger docs/gitbook/tutorials/linkerd-progressive-delivery.md:91": """sum(rate(response_total{
          namespace="{{ namespace }}", deployment=~"{{ target }}", classification!="failure",
          direction="{{ variables.direction }}"}[{{ interval }}]))
    / sum(rate(response_total{namespace="{{ namespace }}", deployment=~"{{ target }}",
          direction="{{ variables.direction }}"}[{{ interval }}])) * 100""",
    "flagger docs/gitbook/tutorials/linkerd-progressive-delivery.md:123": """histogram_quantile(0.99,
        sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}", deployment=~"{{ target }}",
                    direction="{{ variables.direction }}"}[{{ interval }}])) by (le))""",
    "flagger docs/gitbook/tutorials/linkerd-progressive-delivery.md:372": """100 - sum(rate(response_total{
                    namespace="test", deployment="podinfo", status_code!="404", direction="inbound"}[1m]))
        / sum(rate(response_total{namespace="test", deployment="podinfo", direction="inbound"}[1m])) * 100""",
    "flagger docs/gitbook/tutorials/nginx-progressive-delivery.md:304": """histogram_quantile(0.99,
      sum(rate(http_request_duration_seconds_bucket{kubernetes_namespace="{{ namespace }}",
            kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[1m])) by (le))""",
    "flagger docs/gitbook/tutorials/prometheus-operator.md:107": """100 - rate(http_requests_total{
        namespace="{{ namespace }}", job="{{ target }}-canary", status!~"5.*"}[{{ interval }}])
    / rate(http_requests_total{namespace="{{ namespace }}", job="{{ target }}-canary"}[{{ interval }}]) * 100""",
    "flagger docs/gitbook/tutorials/prometheus-operator.md:135": """histogram_quantile(0.99,
      sum(rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",
            job="{{ target }}-canary"}[{{ interval }}])) by (le))""",
    "flagger docs/gitbook/tutorials/skipper-progressive-delivery.md:319 (printf rendered)": """histogram_quantile(0.99,
      sum(rate(skipper_serve_route_duration_seconds_bucket{
            route=~"kube(ew)?_test__podinfo_canary__.*__podinfo_canary(_[0-9]+)?", le="+Inf"}[1m])) by (le))""",
    "flagger docs/gitbook/tutorials/traefik-progressive-delivery.md:302": """sum(rate(
        traefik_service_request_duration_seconds_bucket{
          service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd", code!="404",}[{{ interval }}]))
    / sum(rate(traefik_service_request_duration_seconds_bucket{
          service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",}[{{ interval }}])) * 100""",
    "flagger docs/gitbook/usage/metrics.md:147": """100 - sum(rate(istio_requests_total{
              reporter="destination", destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}", response_code!="404"}[{{ interval }}]))
    / sum(rate(istio_requests_total{reporter="destination",
              destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}]))
    * 100""",
    "flagger docs/gitbook/usage/metrics.md:199": """100 - sum(rate(grpc_server_handled_total{grpc_code!="OK",
              kubernetes_namespace="{{ namespace }}",
              kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}]))
    / sum(rate(grpc_server_started_total{kubernetes_namespace="{{ namespace }}",
              kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100""",
    "flagger docs/gitbook/dev/upgrade-guide.md:63": """histogram_quantile(0.99,
        sum(rate(istio_request_duration_seconds_bucket{reporter="destination",
                    destination_workload_namespace="{{ namespace }}",
                    destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))""",
    # Invalid PromQL as printed (a missing comma between matchers): both must refuse it.
    "flagger docs/gitbook/tutorials/kubernetes-blue-green.md:274 (invalid as printed)": """100 - sum(rate(
            http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",
              kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
              status!="{{ interval }}"}[1m]))
    / sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",
              kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100""",
    "argo docs/analysis/prometheus.md:28": """sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]
          )) /
          sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
          ))""",
    "argo docs/analysis/prometheus.md:71": 'http_latency_ms{service="{{args.service-name}}"}',
    "argo docs/features/analysis.md:313": """sum(irate(
                istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code=~"5.*"}[5m]
              )) /
              sum(irate(
                istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
              ))""",
    "argo docs/features/analysis.md:794": """sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code=~"5.*"}[5m]
          ))""",
    # Invalid as printed (`~` for `=~`): both must refuse it.
    "argo docs/features/analysis.md:884 (invalid as printed)": """sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code~"5.*"}[5m]
          ))""",
    "argo examples/appmesh/canary-rollout.yaml:17": """sum(irate(envoy_cluster_upstream_rq_xx{app="wrk-tester",
          envoy_cluster_name="{{args.envoy_cluster_name}}",envoy_response_code_class!~"5.*"}[5m])) /
          sum(irate(envoy_cluster_upstream_rq_xx{app="wrk-tester",envoy_cluster_name="{{args.envoy_cluster_name}}"}[5m]))""",
    # Same query with the argument naming a real service of the series (the docs' own renders nothing).
    "argo docs/analysis/prometheus.md:71 (service podinfo)": 'http_latency_ms{service="podinfo"}',
}


def render(template: str) -> str:
    """A templated query with Flagger's and Argo's variables replaced as ``RENDER`` says."""
    for variable, value in RENDER.items():
        template = template.replace(variable, value)
    assert "{{" not in template, template
    return template


def fixture_queries() -> list[str]:
    """The queries of the shared upstream fixtures (MetricTemplates, AnalysisTemplates), rendered."""
    import yaml

    out = []
    for path in sorted(UPSTREAM_FIXTURES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out += [render(q) for q in _queries_in(doc)]
    return out


def _queries_in(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "query" and isinstance(value, str):
                yield value
            else:
                yield from _queries_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries_in(item)


def extra_queries() -> list[str]:
    """Flagger's builtin queries of every observer (pkg/metrics/observers), rendered as
    Flagger renders them for this module's series (``series_world.RENDER``'s names)."""
    model = MetricTemplateModel(
        name="podinfo",
        namespace=NAMESPACE,
        target="podinfo",
        service="podinfo",
        ingress="podinfo",
        route="podinfo",
        interval="1m",
    )
    return [builtin_query(observer, metric, model) for observer, by in BUILTIN_QUERIES.items() for metric in by]


EXTRA_QUERIES: list[str] = extra_queries()


def all_queries() -> list[str]:
    """Every distinct query, in a stable order."""
    queries = generated_queries() + [render(q) for q in DOC_QUERIES.values()] + fixture_queries() + EXTRA_QUERIES
    return list(dict.fromkeys(" ".join(q.split()) for q in queries))


QUERIES = all_queries()

#: Queries the engine evaluates differently from Prometheus 2.42 (expected failures that
#: turn into errors when fixed). None: every query here gives Prometheus's value.
UNSUPPORTED: dict[str, str] = {}


def _cases() -> list[object]:
    return [
        pytest.param(q, marks=pytest.mark.xfail(strict=True, reason=UNSUPPORTED[q])) if q in UNSUPPORTED else q
        for q in QUERIES
    ]


# --- the times ---------------------------------------------------------------------------


def evaluation_times() -> list[float]:
    """Relative seconds: round instants, exact sample timestamps of several targets, and the
    instants where a window's left edge falls exactly on a sample (``t - window == sample``),
    a pod's birth, the restart, after the last sample (lookback and staleness)."""
    times = {0.0, 14.999, 45.5, 60.0, 299.999, 300.0, 301.0, 450.0, 600.0, 629.999, 900.0, 1199.0, 1350.0, 1500.0}
    for pod in PODS:
        sample = pod.offset_ms / 1000 + SCRAPE_S * math.ceil((pod.born_s + 60) / SCRAPE_S)
        times |= {sample, sample + 30, sample + 60, sample + 120, sample + 300}
    return sorted(round(t, 3) for t in times)


TIMES = evaluation_times()


# --- Prometheus and the engine ---------------------------------------------------------


@pytest.fixture(scope="module")
def batch() -> SeriesBatch:
    return build_batch(RUNS)


@pytest.fixture(scope="module")
def absolute(batch: SeriesBatch) -> SeriesBatch:
    """The batch at the unix times Prometheus holds its samples (epoch + t, milliseconds)."""
    ms = np.rint((SERIES_EPOCH_S + batch.times_s) * 1000)
    return SeriesBatch(batch.labels, ms / 1000.0, batch.values, batch.present)


@pytest.fixture(scope="module")
def servers(batch: SeriesBatch) -> Iterator[list[PrometheusServer]]:
    """One Prometheus per run, each serving that run's samples (killed at the module's end)."""
    started: list[PrometheusServer] = []
    try:
        for row in range(RUNS):
            out = io.StringIO()
            write_openmetrics(batch, row, out)
            started.append(PrometheusServer(out.getvalue()))
        yield started
    finally:
        for server in started:
            server.close()


def _ours(result: Result, row: int) -> QueryResult:
    """The engine's answer for one run, in the harness's form."""
    if result.error is not None and bool(result.error[row]):
        return QueryResult("error", error=result.message)
    value = result.value
    if isinstance(value, Scalar):
        return QueryResult("scalar", scalar=float(value.values[row]))
    if isinstance(value, Vector):
        vector: dict[Labels, float] = {
            value.labels[k]: float(value.values[row, k]) for k in np.flatnonzero(value.present[row])
        }
        return QueryResult("vector", vector=vector)
    assert isinstance(value, Matrix)
    matrix = {}
    for k, labels in enumerate(value.labels):
        kept = np.flatnonzero(value.present[row, :, k])
        if kept.size:
            matrix[labels] = tuple((float(value.times_s[s]), float(value.values[row, s, k])) for s in kept)
    return QueryResult("matrix", matrix=matrix)


def _difference(ours: QueryResult, theirs: QueryResult) -> str:
    """Empty when the answers agree, else what differs."""
    if theirs.kind == "error" or ours.kind == "error":
        return (
            ""
            if ours.kind == theirs.kind
            else f"ours {ours.kind} {ours.error}; prometheus {theirs.kind} {theirs.error}"
        )
    if ours.kind != theirs.kind:
        return f"ours a {ours.kind}, prometheus a {theirs.kind}"
    if ours.kind == "scalar":
        assert ours.scalar is not None and theirs.scalar is not None
        return "" if same_value(ours.scalar, theirs.scalar) else f"ours {ours.scalar!r}, prometheus {theirs.scalar!r}"
    a: dict = dict(ours.vector or ours.matrix or {})
    b: dict = dict(theirs.vector or theirs.matrix or {})
    if set(a) != set(b):
        return (
            f"label sets differ: only ours {sorted(set(a) - set(b))[:3]}, only prometheus {sorted(set(b) - set(a))[:3]}"
        )
    for labels in a:
        x, y = a[labels], b[labels]
        if ours.kind == "matrix":
            same = len(x) == len(y) and all(
                ta == tb and same_value(va, vb) for (ta, va), (tb, vb) in zip(x, y, strict=True)
            )
        else:
            same = same_value(x, y)
        if not same:
            return f"{dict(labels)}: ours {x!r}, prometheus {y!r}"
    return ""


def test_enough_distinct_queries() -> None:
    """The issue asks for at least 200 distinct queries."""
    assert len(QUERIES) >= 200, len(QUERIES)
    assert len(TIMES) >= 30


@pytest.mark.parametrize("query", _cases())
def test_engine_gives_prometheus_value(query: str, servers: list[PrometheusServer], absolute: SeriesBatch) -> None:
    """Every (time, run): the engine's answer is Prometheus's."""
    theirs_error = servers[0].query(query, SERIES_EPOCH_S + TIMES[0])
    try:
        compiled = compile_query(query)
    except ValueError as err:  # PromQLError: refused at parse time
        assert theirs_error.kind == "error", f"engine refuses {query!r} ({err}); Prometheus answers {theirs_error}"
        return
    rows = np.arange(RUNS)
    failures = []
    for t in TIMES:
        at = SERIES_EPOCH_S + t
        result = compiled.evaluate(absolute, rows, at)
        for row in range(RUNS):
            diff = _difference(_ours(result, row), servers[row].query(query, at))
            if diff:
                failures.append(f"t={t} run {row}: {diff}")
    assert not failures, f"{len(failures)} of {len(TIMES) * RUNS} differ; first: " + " | ".join(failures[:4])


def test_the_comparison_can_fail(servers: list[PrometheusServer], absolute: SeriesBatch) -> None:
    """A one-part-per-million change of the samples, a lost label set or a missing result is seen."""
    query = 'sum by (destination_workload) (rate(istio_requests_total{reporter="source"}[2m]))'
    at = SERIES_EPOCH_S + 600.0
    theirs = servers[0].query(query, at)
    nudged = SeriesBatch(absolute.labels, absolute.times_s, absolute.values * (1 + 1e-6), absolute.present)
    assert _difference(_ours(compile_query(query).evaluate(nudged, np.arange(RUNS), at), 0), theirs)
    assert not _difference(_ours(compile_query(query).evaluate(absolute, np.arange(RUNS), at), 0), theirs)
    assert _difference(QueryResult("vector", vector={}), theirs)
    assert _difference(QueryResult("scalar", scalar=1.0), theirs)
    assert _difference(QueryResult("vector", vector={(): math.nan}), QueryResult("vector", vector={(): 0.0}))
    assert not _difference(QueryResult("vector", vector={(): math.nan}), QueryResult("vector", vector={(): math.nan}))


def test_every_series_family_is_loaded(servers: list[PrometheusServer], batch: SeriesBatch) -> None:
    """What promtool loaded is what was written: one sample count per family and run."""
    names = sorted({dict(labels)["__name__"] for labels in batch.labels})
    at = SERIES_EPOCH_S + 1500.0
    for row, server in enumerate(servers):
        for name in names:
            answer = server.query(f"sum(count_over_time({name}[30m]))", at)
            mask = np.array([dict(labels)["__name__"] == name for labels in batch.labels])
            expected = float(batch.present[row][:, mask].sum())
            assert answer.vector == {(): expected}, (name, row)


def test_queries_parse_in_prometheus(servers: list[PrometheusServer]) -> None:
    """Only the documented invalid queries and the many-to-many match are errors in Prometheus."""
    errors = [q for q in QUERIES if servers[0].query(q, SERIES_EPOCH_S + 600).kind == "error"]
    assert len(errors) == 3, errors
    assert any(re.search(r"\+ on\(\) http_requests_total", q) for q in errors)


def test_fixture_queries_found() -> None:
    if not UPSTREAM_FIXTURES.is_dir():
        pytest.skip(f"no upstream fixtures at {UPSTREAM_FIXTURES}")
    assert len(fixture_queries()) >= 4
