"""Cases where evaluating queries as Prometheus does changes decisions (issue 14, item 7).

Shared by ``tests/world/test_prometheus_effects.py`` (which asserts each effect on a few
hundred runs) and ``tools/prometheus_effects.py`` (which prints the README's table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.outcomes import PROMOTED, ROLLED_BACK, RunRecord
from sim.policies.base import Policy


@dataclass(frozen=True)
class Effect:
    """One case: a scenario with its policy, and what is counted of its runs."""

    name: str
    counted: str
    scenario: Scenario
    counts: Callable[[RunRecord], bool]
    seed: int = 14

    @property
    def policy(self) -> Policy:
        return scenario_policy(self.scenario)


def rolled_back(r: RunRecord) -> bool:
    return r.outcome == ROLLED_BACK


def promoted(r: RunRecord) -> bool:
    return r.outcome == PROMOTED


def scenario(policy: dict[str, Any], *, rate: str, faults: list[dict[str, Any]] | None = None) -> Scenario:
    """A release at ``rate`` (a good one unless ``faults``), 1 pod per version, 15 s scrapes."""
    return Scenario.model_validate(
        {
            "name": "effects",
            "horizon": "2h",
            "traffic": {"rate": rate},
            "baseline": {"error_rate": 0.001, "latency": {"median": "40ms", "p99": "250ms"}},
            "release": {"faults": faults or []},
            "telemetry": {"scrape_interval": "15s"},
            "policy": policy,
        }
    )


#: Flagger's defaults-like analysis: 1m interval, threshold 5, stepWeight 10 up to 50.
ANALYSIS = {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}

#: An error-rate MetricTemplate whose numerator selects only 5xx series: empty until the
#: canary's first 5xx series exists (Flagger: "no values found", a failed check).
FIVE_XX_ERROR_RATE = (
    '100 * sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}",response_code=~"5.*"}[{{ interval }}])) / '
    'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"}[{{ interval }}]))'
)


def flagger_5xx_template() -> dict[str, Any]:
    metric = {
        "name": "error-rate",
        "templateRef": {"name": "error-rate"},
        "thresholdRange": {"max": 1},
        "interval": "1m",
    }
    return {
        "flagger": {
            "analysis": {**ANALYSIS, "metrics": [metric]},
            "metricTemplates": {"error-rate": {"query": FIVE_XX_ERROR_RATE, "provider": {"type": "prometheus"}}},
        }
    }


def flagger_latency(provider: str) -> dict[str, Any]:
    metric = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}
    out: dict[str, Any] = {"flagger": {"provider": provider, "analysis": {**ANALYSIS, "metrics": [metric]}}}
    if provider == "nginx":
        out["flagger"]["ingressRef"] = {"name": "podinfo"}
    return out


def argo_query(function: str) -> str:
    """Argo's documented Istio success-rate query with ``function`` (``irate`` as in the
    docs, or ``rate``), on the Service named by ``{{args.service-name}}``."""
    return (
        f'sum({function}(istio_requests_total{{reporter="source",destination_service=~"{{{{args.service-name}}}}",'
        f'response_code!~"5.*"}}[1m])) / sum({function}(istio_requests_total{{reporter="source",'
        'destination_service=~"{{args.service-name}}"}[1m]))'
    )


def argo_template(query: str, **metric: Any) -> dict[str, Any]:
    """An AnalysisTemplate ``success-rate`` with one Prometheus metric (``metric``: its
    interval, counts, limits and conditions)."""
    spec = {"name": "success-rate", **metric}
    spec["provider"] = {"prometheus": {"address": "http://prometheus:9090", "query": query}}
    return {"args": [{"name": "service-name"}], "metrics": [spec]}


def argo_canary(template: dict[str, Any], steps: list[dict[str, Any]], replicas: int = 1) -> dict[str, Any]:
    """An Argo canary on Istio (``demo-canary``/``demo-stable``) whose background analysis
    runs ``template`` on the canary Service."""
    return {
        "argo": {
            "replicas": replicas,
            "strategy": {
                "canary": {
                    "canaryService": "demo-canary",
                    "stableService": "demo-stable",
                    "trafficRouting": {"istio": {"virtualService": {"name": "demo"}}},
                    "analysis": {
                        "templates": [{"templateName": "success-rate"}],
                        "args": [{"name": "service-name", "value": "demo-canary.default.svc.cluster.local"}],
                    },
                    "steps": steps,
                }
            },
            "templates": {"success-rate": template},
        }
    }


def argo_success_rate(function: str) -> dict[str, Any]:
    """Argo's documented success-rate template (``result[0] >= 0.95``) with ``function``
    over a canary's steps."""
    template = argo_template(argo_query(function), interval="1m", failureLimit=3, successCondition="result[0] >= 0.95")
    steps = [{"setWeight": 50}, {"pause": {"duration": "10m"}}, {"setWeight": 100}, {"pause": {"duration": "10m"}}]
    return argo_canary(template, steps)


SLOWER = [{"kind": "latency", "shift": "400ms", "onset": "0s"}]
ONE_PERCENT = [{"kind": "error_rate", "rate": 0.01, "onset": "0s"}]

CASES: tuple[Effect, ...] = (
    *(
        Effect(
            f"Flagger, 5xx-numerator error-rate template, good release, {rate}",
            "rolled back (false)",
            scenario(flagger_5xx_template(), rate=rate),
            rolled_back,
        )
        for rate in ("1/s", "10/s", "100/s")
    ),
    Effect(
        "Flagger on nginx (request-duration is the mean), +400 ms, 100/s",
        "promoted (missed)",
        scenario(flagger_latency("nginx"), rate="100/s", faults=SLOWER),
        promoted,
    ),
    Effect(
        "Flagger on Istio (request-duration is the p99), +400 ms, 100/s",
        "promoted (missed)",
        scenario(flagger_latency("istio"), rate="100/s", faults=SLOWER),
        promoted,
    ),
    *(
        Effect(
            f"Argo, success-rate template with {function}, 1% errors, 1/s",
            "aborted",
            scenario(argo_success_rate(function), rate="1/s", faults=ONE_PERCENT),
            rolled_back,
        )
        for function in ("irate", "rate")
    ),
)

__all__ = ["CASES", "Effect"]
