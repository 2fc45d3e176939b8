"""Hard-case series for checking the PromQL engine against a real Prometheus (issue 14, item 6).

A small mesh of pods scraped every 15 s, each target at its own offset (so series of
different pods are sampled at different milliseconds), with what makes PromQL subtle:
low traffic (most scrapes add nothing), series born mid-window (canary pods that start
late, a first 5xx), sparse histograms (a few observations over many ``le`` buckets and
``+Inf``), lost scrapes (a target's samples all missing), a counter reset (a restarted
container) and a gauge with a NaN sample. Several runs share the universe of label sets,
as a ``SeriesBatch`` of the world does, and differ in their draws.

Label values are those the templated queries of Flagger's and Argo's docs select when
rendered with ``RENDER`` (namespace ``test``, target ``podinfo``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.promql.series import Labels, SeriesBatch, labels_of

SCRAPE_S = 15.0
HORIZON_S = 1200.0
NAMESPACE = "test"

#: What template variables render to (Flagger's ``{{ x }}``, Argo's ``{{args.x}}``).
RENDER = {
    "{{ namespace }}": NAMESPACE,
    "{{ target }}": "podinfo",
    "{{target}}": "podinfo",
    "{{ interval }}": "1m",
    "{{interval}}": "1m",
    "{{ variables.direction }}": "inbound",
    "{{ route }}": "podinfo",
    "{{args.service-name}}": "podinfo.test.svc.cluster.local",
    "{{args.service}}": "podinfo",
    "{{ service }}": "podinfo",
    "{{ ingress }}": "podinfo",
    "{{args.namespace}}": NAMESPACE,
    "{{args.envoy_cluster_name}}": "cds_egress_test_podinfo-canary_test_http_9898",
}


@dataclass(frozen=True)
class Pod:
    """A scrape target: a pod of a deployment, alive from ``born_s``, scraped at ``offset_ms``."""

    name: str
    deployment: str  # "podinfo" (the canary) or "podinfo-primary"
    offset_ms: int
    born_s: float
    rate_per_s: float  # requests per second it serves
    restart_s: float | None = None  # its counters reset here (a container restart)


PODS = (
    Pod("podinfo-primary-7d9f8c6b5-x2x4z", "podinfo-primary", 0, 0.0, 1.0),
    Pod("podinfo-primary-7d9f8c6b5-a1b2c", "podinfo-primary", 3217, 0.0, 0.6, restart_s=610.0),
    Pod("podinfo-6b7c8d9e0f-k3l4m", "podinfo", 7450, 290.0, 0.2),
    Pod("podinfo-6b7c8d9e0f-n5p6q", "podinfo", 11999, 640.0, 0.1),
)
CODES = ("200", "404", "500", "503")
CODE_P = (0.9, 0.04, 0.04, 0.02)
LE_MS = ("1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "+Inf")
LE_S = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")
LOST = 0.06  # share of scrapes lost


def _le_value(le: str) -> float:
    return float("inf") if le == "+Inf" else float(le)


class _Builder:
    """Collects series as (labels, pod, per-scrape value, per-scrape presence) for R runs."""

    def __init__(self, runs: int, seed: int) -> None:
        self.runs = runs
        self.rng = np.random.default_rng(seed)
        self.scrapes = {p.name: self._scrape_ms(p) for p in PODS}
        self.lost = {p.name: self.rng.random((runs, len(self.scrapes[p.name]))) < LOST for p in PODS}
        self.series: dict[Labels, tuple[Pod, np.ndarray, np.ndarray]] = {}

    @staticmethod
    def _scrape_ms(pod: Pod) -> np.ndarray:
        ms = np.arange(pod.offset_ms, int(HORIZON_S * 1000), int(SCRAPE_S * 1000), dtype=np.int64)
        return ms[ms >= pod.born_s * 1000]

    def segments(self, pod: Pod) -> np.ndarray:
        """Per scrape, which life of the counters it falls in (0, then 1 after a restart)."""
        ms = self.scrapes[pod.name]
        return (ms >= pod.restart_s * 1000).astype(int) if pod.restart_s is not None else np.zeros(len(ms), int)

    def counter(self, labels: Labels, pod: Pod, increments: np.ndarray) -> None:
        """A counter from its (R, N) increments per scrape: it exists from its first increment
        (and again from the first after a restart), missing where the scrape was lost."""
        seg = self.segments(pod)
        cum = np.zeros(increments.shape)
        for s in np.unique(seg):
            cum[:, seg == s] = np.cumsum(increments[:, seg == s], axis=1)
        present = (cum > 0) & ~self.lost[pod.name]
        self.add(labels, pod, cum, present)

    def add(self, labels: Labels, pod: Pod, values: np.ndarray, present: np.ndarray) -> None:
        assert labels not in self.series, labels
        self.series[labels] = (pod, values, present)

    def batch(self) -> SeriesBatch:
        """The batch, ``times_s`` in seconds from the series epoch (milliseconds exact)."""
        all_ms = np.unique(np.concatenate(list(self.scrapes.values())))
        labels = tuple(sorted(self.series))
        values = np.zeros((self.runs, len(all_ms), len(labels)))
        present = np.zeros(values.shape, dtype=bool)
        for k, key in enumerate(labels):
            pod, v, p = self.series[key]
            at = np.searchsorted(all_ms, self.scrapes[pod.name])
            values[:, at, k] = v
            present[:, at, k] = p
        return SeriesBatch(labels=labels, times_s=all_ms / 1000.0, values=values, present=present)


def _traffic(b: _Builder, pod: Pod) -> np.ndarray:
    """(R, N) requests a pod served between scrapes."""
    return b.rng.poisson(pod.rate_per_s * SCRAPE_S, (b.runs, len(b.scrapes[pod.name]))).astype(float)


def _split(b: _Builder, total: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """(len(probs), R, N) a multinomial split of each count."""
    flat = total.astype(np.int64).ravel()
    parts = np.array([b.rng.multinomial(n, probs) for n in flat]).T
    return parts.reshape((len(probs), *total.shape)).astype(float)


def _latency_buckets(
    b: _Builder, total: np.ndarray, les: tuple[str, ...], scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative-by-``le`` observation counts (len(les), R, N) and the sum of the observations."""
    bounds = [_le_value(le) for le in les]
    counts = np.zeros((len(les), *total.shape))
    sums = np.zeros(total.shape)
    for idx in np.ndindex(total.shape):
        obs = b.rng.lognormal(np.log(0.08), 0.9, int(total[idx])) * scale
        sums[idx] = obs.sum()
        for j, bound in enumerate(bounds):
            counts[(j, *idx)] = np.count_nonzero(obs <= bound)
    return counts, sums


def _histogram(
    b: _Builder, name: str, base: dict[str, str], pod: Pod, total: np.ndarray, les: tuple[str, ...], scale: float
) -> None:
    """``name_bucket`` per le, ``name_sum`` and ``name_count``: all of a pod's appear together
    at its first observation (as client libraries export a histogram)."""
    counts, sums = _latency_buckets(b, total, les, scale)
    seg = b.segments(pod)
    seen = np.zeros(total.shape, dtype=bool)
    for s in np.unique(seg):
        seen[:, seg == s] = np.cumsum(total[:, seg == s], axis=1) > 0
    present = seen & ~b.lost[pod.name]

    def cum(x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape)
        for s in np.unique(seg):
            out[:, seg == s] = np.cumsum(x[:, seg == s], axis=1)
        return out

    for j, le in enumerate(les):
        b.add(labels_of(f"{name}_bucket", **base, le=le), pod, cum(counts[j]), present)
    b.add(labels_of(f"{name}_sum", **base), pod, cum(sums), present)
    b.add(labels_of(f"{name}_count", **base), pod, cum(total), present)


def _envoy_clusters(canary: bool) -> dict[str, dict[str, str]]:
    """The envoy cluster labels each Envoy-based provider's builtin queries select (Flagger
    pkg/metrics/observers contour.go, gloo.go, knative.go, kuma.go; App Mesh selects the pod)."""
    side = "canary" if canary else "primary"
    return {
        "contour": {"envoy_cluster_name": f"test_podinfo-{side}_9898"},
        "gloo": {"envoy_cluster_name": f"test-podinfo-{side}upstream-9898_gloo-system"},
        "knative": {"envoy_cluster_name": "test/podinfo" if canary else "test/podinfo-00001"},
        "kuma": {"envoy_cluster_name": f"kuma-{side}", "service": f"podinfo-{side}_test_svc_9898"},
    }


def build_batch(runs: int = 2, seed: int = 14) -> SeriesBatch:
    """Every family Flagger's and Argo's documented queries select, for ``runs`` runs."""
    b = _Builder(runs, seed)
    for pod in PODS:
        total = _traffic(b, pod)
        by_code = _split(b, total, CODE_P)
        service = f"{pod.deployment}.{NAMESPACE}.svc.cluster.local"
        for reporter in ("source", "destination"):
            for code, counts in zip(CODES, by_code, strict=True):
                labels = labels_of(
                    "istio_requests_total",
                    reporter=reporter,
                    destination_workload=pod.deployment,
                    destination_workload_namespace=NAMESPACE,
                    destination_service=service,
                    response_code=code,
                    pod=pod.name,
                )
                b.counter(labels, pod, counts)
            _histogram(
                b,
                "istio_request_duration_milliseconds",
                {
                    "reporter": reporter,
                    "destination_workload": pod.deployment,
                    "destination_workload_namespace": NAMESPACE,
                    "pod": pod.name,
                },
                pod,
                total,
                LE_MS,
                1000.0,
            )
        _histogram(
            b,
            "istio_request_duration_seconds",
            {
                "reporter": "destination",
                "destination_workload": pod.deployment,
                "destination_workload_namespace": NAMESPACE,
                "pod": pod.name,
            },
            pod,
            total,
            LE_S,
            1.0,
        )
        # Linkerd: response_total and response_latency_ms.
        failure = by_code[2] + by_code[3]
        for classification, counts in (("success", total - failure), ("failure", failure)):
            labels = labels_of(
                "response_total",
                namespace=NAMESPACE,
                deployment=pod.deployment,
                direction="inbound",
                classification=classification,
                status_code="200" if classification == "success" else "503",
                pod=pod.name,
            )
            b.counter(labels, pod, counts)
        _histogram(
            b,
            "response_latency_ms",
            {"namespace": NAMESPACE, "deployment": pod.deployment, "direction": "inbound", "pod": pod.name},
            pod,
            total,
            LE_MS,
            1000.0,
        )
        # Instrumented apps (podinfo's own metrics) scraped by kubernetes_sd / the Prometheus operator.
        job = "podinfo-canary" if pod.deployment == "podinfo" else "podinfo-primary"
        app = {"kubernetes_namespace": NAMESPACE, "kubernetes_pod_name": pod.name, "namespace": NAMESPACE, "job": job}
        for code, counts in zip(CODES, by_code, strict=True):
            _histogram(b, "http_request_duration_seconds", {**app, "status": code}, pod, counts, LE_S, 1.0)
            b.counter(labels_of("http_requests_total", **app, app="podinfo", status=code), pod, counts)
        for grpc_code, counts in (("OK", total - failure), ("Unavailable", failure)):
            b.counter(labels_of("grpc_server_handled_total", **app, grpc_code=grpc_code), pod, counts)
        b.counter(labels_of("grpc_server_started_total", **app), pod, total)
        # Ingress and mesh proxies, one series set per pod's deployment and pod.
        canary = pod.deployment == "podinfo"
        cluster = f"cds_egress_test_podinfo-{'canary' if canary else 'primary'}_test_http_9898"
        for code_class, counts in (("2", by_code[0]), ("4", by_code[1]), ("5", failure)):
            b.counter(
                labels_of(
                    "envoy_cluster_upstream_rq_xx",
                    app="wrk-tester",
                    envoy_cluster_name=cluster,
                    envoy_response_code_class=code_class,
                    pod=pod.name,
                ),
                pod,
                counts,
            )
        route = f"test_podinfo-podinfo-{'canary' if canary else 'primary'}_1"
        nginx_canary = {"canary": "podinfo-canary"} if canary else {}
        for code, counts in zip(CODES, by_code, strict=True):
            b.counter(labels_of("apisix_http_status", route=route, code=code, node=pod.name), pod, counts)
            b.counter(
                labels_of(
                    "nginx_ingress_controller_requests",
                    ingress="podinfo",
                    namespace=NAMESPACE,
                    status=code,
                    pod=pod.name,
                    **nginx_canary,
                ),
                pod,
                counts,
            )
            b.counter(
                labels_of(
                    "osm_request_total",
                    destination_namespace=NAMESPACE,
                    destination_kind="Deployment",
                    destination_name=pod.deployment,
                    destination_pod=pod.name,
                    response_code=code,
                ),
                pod,
                counts,
            )
            for flavour, envoy in _envoy_clusters(canary).items():
                b.counter(
                    labels_of("envoy_cluster_upstream_rq", **envoy, **app, envoy_response_code=code, mesh=flavour),
                    pod,
                    counts,
                )
        for flavour, envoy in _envoy_clusters(canary).items():
            _histogram(b, "envoy_cluster_upstream_rq_time", {**envoy, **app, "mesh": flavour}, pod, total, LE_MS, 1e3)
        _histogram(
            b,
            "nginx_ingress_controller_response_duration_seconds",
            {"ingress": "podinfo", "namespace": NAMESPACE, "pod": pod.name, **nginx_canary},
            pod,
            total,
            LE_S,
            1.0,
        )
        osm = {"destination_namespace": NAMESPACE, "destination_kind": "Deployment", "destination_pod": pod.name}
        _histogram(b, "osm_request_duration_ms", {**osm, "destination_name": pod.deployment}, pod, total, LE_MS, 1e3)
        _histogram(
            b, "apisix_http_latency", {"type": "request", "route": route, "node": pod.name}, pod, total, LE_MS, 1e3
        )
        service_name = f"test-podinfo-{'canary' if canary else 'primary'}-9898@kubernetescrd"
        _histogram(
            b,
            "traefik_service_request_duration_seconds",
            {"service": service_name, "code": "200", "pod": pod.name},
            pod,
            by_code[0],
            LE_S,
            1.0,
        )
        side = "canary" if canary else "primary"
        skipper = f"kube_test__podinfo_{side}__podinfo_test__podinfo_{side}"
        _histogram(
            b, "skipper_serve_route_duration_seconds", {"route": skipper, "pod": pod.name}, pod, total, LE_S, 1.0
        )
        for code, counts in (("200", total - failure), ("503", failure)):
            _histogram(
                b,
                "skipper_response_duration_seconds",
                {"route": skipper, "code": code, "pod": pod.name},
                pod,
                counts,
                LE_S,
                1.0,
            )
        # A counter with a NaN sample (promtool loads it; rate() and friends carry it).
        if pod.offset_ms == 0:
            nan_counter = np.cumsum(total, axis=1)
            nan_counter[:, 40] = np.nan
            b.add(labels_of("requests_with_nan_total", pod=pod.name), pod, nan_counter, ~b.lost[pod.name])
        # A gauge Argo's docs read directly, with a NaN sample and the pod's lost scrapes.
        gauge = b.rng.normal(120.0, 30.0, total.shape)
        if pod.offset_ms == 0:
            gauge[:, 30] = np.nan
        b.add(labels_of("http_latency_ms", service="podinfo", pod=pod.name), pod, gauge, ~b.lost[pod.name])
    return b.batch()


__all__ = ["HORIZON_S", "PODS", "RENDER", "SCRAPE_S", "build_batch"]
