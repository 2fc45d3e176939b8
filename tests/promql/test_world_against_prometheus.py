"""Every value a policy reads is what a real Prometheus returns on the same series.

Each case simulates one rollout with its trace and its raw series (``run_one(trace=True,
series=True)``), loads the series into Prometheus 2.42 (promtool, then a server on
127.0.0.1, ``tests.helpers.prometheus``), and asks Prometheus each query of each trace
line (the rendered PromQL the trace's ``queries`` names) at that tick's time. What the
policy read (the trace's ``metrics``) must be Prometheus's answer: relative 1e-9, NaN =
NaN, an empty result = ``null``. The cases cover Flagger's builtin queries for every
provider's exporter, a MetricTemplate whose numerator selects only 5xx series, Argo's
``irate`` templates on canary steps and blue-green analyses, at low traffic (series born
mid-window), with several pods and with lost scrapes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.limits import SERIES_EPOCH_S
from sim.policies.flagger.queries import BUILTIN_QUERIES
from sim.promql.openmetrics import write_openmetrics
from sim.runs.runner import run_one
from tests.helpers.prometheus import MISSING, PrometheusServer, QueryResult, same_value
from tests.world.effects import argo_canary, argo_query, argo_template

pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)

#: Flagger providers, one per builtin observer (sim.policies.flagger.queries).
PROVIDERS = {
    "istio": "istio",
    "linkerd": "linkerd",
    "appmesh": "appmesh",
    "contour": "contour",
    "gloo": "gloo",
    "nginx": "nginx",
    "http": "kubernetes",
    "skipper": "skipper",
    "traefik": "traefik",
    "osm": "osm",
    "kuma": "kuma",
    "apisix": "apisix",
    "knative": "knative",
}


def _scenario(
    policy: dict[str, Any],
    *,
    rate: str = "3/s",
    replicas: int = 2,
    missing: float = 0.05,
    errors: float = 0.03,
    test_rps: float = 0.0,
) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "prometheus-check",
            "horizon": "30m",
            "traffic": {"rate": rate},
            "baseline": {"error_rate": 0.01, "latency": {"median": "40ms", "p99": "400ms"}, "replicas": replicas},
            "release": {"faults": [{"kind": "error_rate", "rate": errors, "onset": "0s"}], "test_rps": test_rps},
            "telemetry": {"scrape_interval": "15s", "missing_scrapes": missing},
            "policy": policy,
        }
    )


def _flagger(provider: str, *metrics: dict[str, Any], templates: dict[str, Any] | None = None) -> dict[str, Any]:
    analysis = {
        "interval": "30s",
        "threshold": 20,
        "maxWeight": 50,
        "stepWeight": 10,
        "metrics": list(metrics)
        or [
            {"name": "request-success-rate", "thresholdRange": {"min": 90}, "interval": "1m"},
            {"name": "request-duration", "thresholdRange": {"max": 5000}, "interval": "1m"},
        ],
    }
    flagger: dict[str, Any] = {"provider": provider, "analysis": analysis}
    if provider == "nginx":
        flagger["ingressRef"] = {"name": "podinfo"}
    if templates:
        flagger["metricTemplates"] = templates
    return {"flagger": flagger}


FIVE_XX = (
    '100 * sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload="{{ target }}",response_code=~"5.."}[{{ interval }}])) / '
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload="{{ target }}"}[{{ interval }}]))'
)


def _argo_template() -> dict[str, Any]:
    return argo_template(
        argo_query("irate"), interval="30s", count=6, failureLimit=5, successCondition="result[0] >= 0.5"
    )


def _argo_canary() -> dict[str, Any]:
    steps = [{"setWeight": 20}, {"pause": {"duration": "3m"}}, {"setWeight": 50}, {"pause": {"duration": "3m"}}]
    return argo_canary(_argo_template(), steps, replicas=2)


def _argo_bluegreen() -> dict[str, Any]:
    analysis = {"templates": [{"templateName": "success-rate"}]}
    return {
        "argo": {
            "replicas": 2,
            "strategy": {
                "blueGreen": {
                    "activeService": "demo-active",
                    "previewService": "demo-preview",
                    "autoPromotionSeconds": 60,
                    "prePromotionAnalysis": {
                        **analysis,
                        "args": [{"name": "service-name", "value": "demo-preview.default.svc.cluster.local"}],
                    },
                    "postPromotionAnalysis": {
                        **analysis,
                        "args": [{"name": "service-name", "value": "demo-active.default.svc.cluster.local"}],
                    },
                }
            },
            "templates": {"success-rate": _argo_template()},
        }
    }


CASES: dict[str, Scenario] = {
    **{f"flagger-{observer}": _scenario(_flagger(provider)) for observer, provider in PROVIDERS.items()},
    # The kubernetes provider shifts no live traffic: only a load tester reaches the canary.
    "flagger-http": _scenario(_flagger("kubernetes"), test_rps=2.0),
    "flagger-5xx-numerator-1rps": _scenario(
        _flagger(
            "istio",
            {
                "name": "error-rate",
                "templateRef": {"name": "error-rate"},
                "thresholdRange": {"max": 50},
                "interval": "1m",
            },
            templates={"error-rate": {"query": FIVE_XX, "provider": {"type": "prometheus"}}},
        ),
        rate="1/s",
        replicas=3,
        errors=0.2,  # 5xx series appear now and then, per pod: empty results and values
    ),
    # At 2 requests/s the canary's series appear too late: five Error measurements in a row
    # abort the rollout (consecutiveErrorLimit 4) before any value. 10/s gives values.
    "argo-canary-irate": _scenario(_argo_canary(), rate="10/s"),
    "argo-bluegreen": _scenario(_argo_bluegreen(), rate="5/s", test_rps=2.0),
}


def test_every_builtin_observer_is_checked() -> None:
    assert set(BUILTIN_QUERIES) == set(PROVIDERS)


def _same(read: Any, answer: QueryResult) -> bool:
    """Whether a trace's metric value is Prometheus's answer (see the module doc)."""
    if answer.kind == "error":
        return isinstance(read, dict) and "error" in read
    if answer.kind == "scalar":
        assert answer.scalar is not None
        return _number(read, answer.scalar)
    assert answer.kind == "vector" and answer.vector is not None
    values = [answer.vector[k] for k in sorted(answer.vector)]
    if not values:
        return read is None or read == []
    if isinstance(read, list):  # Argo: the whole vector
        return len(read) == len(values) and all(_number(r, v) for r, v in zip(read, values))
    return len(values) == 1 and _number(read, values[0])  # Flagger's single series


def _number(read: Any, value: float) -> bool:
    if read == "NaN":
        return math.isnan(value)
    if read in ("+Inf", "-Inf"):
        return value == float(read.replace("Inf", "inf"))
    return isinstance(read, (int, float)) and same_value(float(read), value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_policy_read_is_what_prometheus_returns(case: str) -> None:
    sc = CASES[case]
    result = run_one(sc, scenario_policy(sc), 20261206, trace=True, series=True)
    assert result.series is not None
    out = io.StringIO()
    write_openmetrics(result.series, 0, out, epoch_s=SERIES_EPOCH_S)
    compared, with_data = 0, 0
    with PrometheusServer(out.getvalue()) as prom:
        for line in result.trace:
            for name, query in line.get("queries", {}).items():
                if name not in line["metrics"]:
                    continue
                read = line["metrics"][name]
                answer = prom.query(query, SERIES_EPOCH_S + line["t"])
                assert _same(read, answer), (case, line["t"], name, read, answer, query)
                compared += 1
                with_data += read not in (None, [])
    # Enough ticks compared, most of them with data (the first see no canary traffic yet).
    assert compared >= 6 and with_data >= 3, (compared, with_data)
