"""An Argo Rollouts canary whose AnalysisTemplate reads a conversion rate from the simulated
business counters (issue 19: "the real controllers' A/B analyses run on business metrics
too"). The template selects the canary's pods by its pod-template hash, passed as an
argument ``valueFrom: {podTemplateHashValue: Latest}`` as Argo's documentation does for
per-ReplicaSet queries (argo-rollouts ``docs/features/analysis.md``, "Analysis with
valueFrom"; ``utils/analysis/helpers.go`` ``ResolveArgs``), so it reads the canary's
``pdsim_conversions_total`` and ``pdsim_sessions_total`` only."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.world.controller import run_rollouts
from sim.world.metrics import metric_plan

SELECT = 'kubernetes_pod_name=~".+-{{args.canary-hash}}-.+"'
CONVERSION = f"sum(rate(pdsim_conversions_total{{{SELECT}}}[5m])) / sum(rate(pdsim_sessions_total{{{SELECT}}}[5m]))"


def _scenario(lift: float) -> Scenario:
    doc: dict[str, Any] = {
        "name": "argo-conversion",
        "horizon": "1h",
        "traffic": {"rate": "100/s", "users": 20000},
        "business": {"conversion": {"rate": 0.1}, "requests_per_session": 2},
        "telemetry": {"scrape_interval": "15s"},
        "policy": {
            "argo": {
                "replicas": 4,
                "strategy": {
                    "canary": {
                        "canaryService": "shop-canary",
                        "stableService": "shop-stable",
                        "trafficRouting": {"istio": {"virtualService": {"name": "shop"}}},
                        "steps": [
                            {"setWeight": 50},
                            {"pause": {"duration": "5m"}},
                            {
                                "analysis": {
                                    "templates": [{"templateName": "conversion-rate"}],
                                    "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
                                }
                            },
                        ],
                    }
                },
                "templates": {
                    "conversion-rate": {
                        "args": [{"name": "canary-hash"}],
                        "metrics": [
                            {
                                "name": "conversion-rate",
                                "interval": "1m",
                                "count": 5,
                                "successCondition": "result[0] >= 0.085",
                                "failureLimit": 1,
                                "provider": {"prometheus": {"address": "http://prometheus:9090", "query": CONVERSION}},
                            }
                        ],
                    }
                },
            }
        },
    }
    if lift:
        doc["release"] = {"effects": {"conversion": {"lift": lift}}}
    return Scenario.model_validate(doc)


def test_the_template_selects_only_the_canary_pods_business_counters():
    sc = _scenario(0.0)
    plan = metric_plan(sc, scenario_policy(sc))
    assert not plan.warnings
    assert plan.universe is not None
    names = {dict(labels)["__name__"] for labels in plan.universe.labels}
    assert names == {"pdsim_sessions_total", "pdsim_conversions_total"}


def test_a_conversion_drop_aborts_the_rollout_and_an_a_a_release_is_promoted():
    """The canary converts 10% of 1,500 sessions per 5-minute window (sd about 0.8
    points): 8.5% is two sd below, so an A/A release passes 5 measurements (failure limit
    1) nearly always; at -30% (7%) every measurement fails."""
    outcomes = {}
    for lift in (0.0, -0.3):
        sc = _scenario(lift)
        records = [r.record for r in run_rollouts(sc, scenario_policy(sc), list(range(1, 31)))]
        outcomes[lift] = np.mean([r.outcome == "rolled_back" for r in records])
        assert all(r.winner in ("candidate", "primary") for r in records)
    assert outcomes[-0.3] == 1.0
    assert outcomes[0.0] <= 0.2
