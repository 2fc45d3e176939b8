"""``describe()``: the one-line summaries of a policy's strategy that the report shows."""

from __future__ import annotations

from typing import Any

import pytest

from sim.policies.argo.rollout import ArgoRollout
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.flagger import FlaggerCanary, FlaggerPolicySpec

CANARY: dict[str, Any] = {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 50}


def flagger(analysis: dict[str, Any] | None, **fields: Any) -> list[str]:
    return FlaggerCanary(FlaggerPolicySpec.model_validate({"analysis": analysis, **fields})).describe()


def test_flagger_canary_keeps_the_reports_wording():
    assert flagger(CANARY) == [
        "Flagger canary: every 1m, stepWeight 10% up to maxWeight 50%, rollback after 5 failed checks"
    ]


@pytest.mark.parametrize(
    ("analysis", "fields", "line"),
    [
        (
            {"interval": "30s", "stepWeights": [5, 20, 60]},
            {},
            "Flagger canary: every 30s, stepWeights [5, 20, 60] up to maxWeight 60%, rollback after 1 failed checks",
        ),
        (
            {**CANARY, "mirror": True, "mirrorWeight": 50},
            {},
            "Flagger canary: every 1m, one step mirroring 50% of requests, then stepWeight 10% up to maxWeight 50%, "
            "rollback after 5 failed checks",
        ),
        (
            {"interval": "1m", "threshold": 2, "iterations": 10, "match": [{"headers": {"x-canary": {"exact": "1"}}}]},
            {},
            "Flagger A/B testing: every 1m, 10 iterations with matching requests (1 match rule) on the canary, "
            "rollback after 2 failed checks",
        ),
        (
            {"interval": "2m", "threshold": 3, "iterations": 4},
            {},
            "Flagger blue/green: every 2m, 4 iterations with no live traffic, then all traffic switched, "
            "rollback after 3 failed checks",
        ),
        (
            {"interval": "1m", "iterations": 4, "mirror": True},
            {},
            "Flagger blue/green: every 1m, 4 iterations with mirroring 100% of requests, then all traffic switched, "
            "rollback after 1 failed checks",
        ),
        (
            {"interval": "1m"},
            {"provider": "kubernetes"},
            "Flagger blue/green (kubernetes provider: no traffic shifting): every 1m, 10 iterations with no live "
            "traffic, then all traffic switched, rollback after 1 failed checks",
        ),
        (CANARY, {"skipAnalysis": True}, "Flagger canary: skipAnalysis, promoted without analysis"),
        (None, {}, "Flagger: no analysis, the new revision is promoted at once"),
    ],
)
def test_flagger_strategies(analysis, fields, line):
    assert flagger(analysis, **fields) == [line]


TEMPLATE = {"metrics": [{"name": "sr", "interval": "1m", "provider": {"prometheus": {"query": "q"}}}]}


def argo(strategy: dict[str, Any], **fields: Any) -> list[str]:
    spec = {"strategy": strategy, "templates": {"success-rate": TEMPLATE}, **fields}
    return ArgoRollout(ArgoPolicySpec.model_validate(spec)).describe()


def test_argo_canary_lists_its_steps_and_analyses():
    ref = {"templates": [{"templateName": "success-rate"}]}
    steps = [
        {"setWeight": 20},
        {"pause": {"duration": "1m"}},
        {"analysis": ref},
        {"setCanaryScale": {"replicas": 2}},
        {"setHeaderRoute": {"name": "h", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}},
        {"setMirrorRoute": {"name": "m", "percentage": 30}},
        {"pause": {}},
    ]
    strategy = {"canary": {"steps": steps, "analysis": {**ref, "startingStep": 1}, "trafficRouting": {"istio": {}}}}
    assert argo(strategy, replicas=5) == [
        "Argo canary: steps setWeight 20, pause 1m, analysis success-rate, setCanaryScale replicas 2, "
        "setHeaderRoute h, setMirrorRoute m 30%, pause (until promoted); background analysis success-rate "
        "from step 1; 5 replicas"
    ]
    assert argo({"canary": {"steps": [{"setWeight": 50}]}}) == [
        "Argo canary: steps setWeight 50; no traffic router (weights by pod counts); 1 replica"
    ]


def test_argo_blue_green_says_how_it_is_promoted():
    ref = {"templates": [{"templateName": "success-rate"}]}
    auto = {"blueGreen": {"prePromotionAnalysis": ref, "autoPromotionSeconds": 120, "postPromotionAnalysis": ref}}
    assert argo(auto, replicas=3) == [
        "Argo blue/green: pre-promotion analysis success-rate; promoted automatically after 2m; "
        "post-promotion analysis success-rate; 3 replicas"
    ]
    manual = {"blueGreen": {"autoPromotionEnabled": False, "previewReplicaCount": 1}}
    assert argo(manual, replicas=3) == ["Argo blue/green: promoted by hand; 3 replicas (preview 1)"]
    assert argo({"blueGreen": {}}) == ["Argo blue/green: promoted automatically; 1 replica"]
