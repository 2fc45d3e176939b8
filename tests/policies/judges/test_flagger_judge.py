"""A judge inside Flagger's analysis (``flagger: {analysis: ..., judge: ...}``).

Flagger's order of work (fluxcd/flagger ``pkg/controller/scheduler.go`` ``advanceCanary``,
``runAnalysis``: webhooks, then ``runBuiltinMetricChecks``, then ``runMetricChecks``) is
kept; the judge answers for the builtin metrics it judges. ``reject`` rolls back in the
same tick, ``accept`` promotes through ``runConfirmPromotionHooks``.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from sim.errors import InputError
from sim.inputs.scenario import parse_scenario
from sim.policies.base import Observation, Promote, Readiness, Rollback, Routes, SetWeights
from sim.policies.checks import check_policy
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.policies.judges.base import JudgeData, VersionSeries
from sim.yamlio import loads_yaml
from tests.helpers import LAT, SR

KINDS = [
    {"kind": "sequential"},
    {"kind": "sequential", "combine": "mean"},
    {"kind": "msprt"},
    {"kind": "group-sequential", "max_canary_requests": 5000},
    {"kind": "sprt"},
    {"kind": "naive"},
    {"kind": "bayes"},
]


def _policy(judge: dict, metrics=(SR, LAT), hooks=(), **analysis) -> FlaggerCanary:
    a = {
        "interval": "1m",
        "threshold": 2,
        "stepWeight": 10,
        "maxWeight": 50,
        "metrics": list(metrics),
        "webhooks": list(hooks),
        **analysis,
    }
    return FlaggerCanary(FlaggerPolicySpec.model_validate({"analysis": a, "judge": judge}))


def _data(
    t: float, slots: int, canary_err: float, primary_err: float, n_canary: float = 1000.0, n_primary: float = 9000.0
) -> JudgeData:
    def series(n: float, e: float) -> VersionSeries:
        req = np.full(slots, n)
        req[0] = 0.0
        err = np.full(slots, e)
        err[0] = 0.0
        hist = np.zeros((slots, 8))
        hist[:, 3] = req
        return VersionSeries(req, err, hist)

    return JudgeData(
        t,
        15.0,
        (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0),
        series(n_canary, canary_err),
        series(n_primary, primary_err),
    )


def _drive(policy: FlaggerCanary, metrics: dict, versions, ticks: int = 3, hooks=None):
    """Ticks 1..ticks at t = 60·k; ``versions(t)`` gives the judge data."""
    state, routes, out = policy.initial_state(), Routes(), []
    for k in range(1, ticks + 1):
        t = 60.0 * k
        obs = Observation(
            t=t,
            tick=k,
            metrics=metrics,
            routes=routes,
            canary=Readiness(),
            primary=Readiness(),
            webhooks=hooks or {},
            versions=versions(t) if versions is not None else None,
        )
        state, actions = policy.step(state, obs)
        for a in actions:
            if isinstance(a, SetWeights):
                routes = Routes(a.canary_weight)
        out.append((state, actions))
    return out


@pytest.mark.parametrize("judge", KINDS, ids=[str(j) for j in KINDS])
@pytest.mark.parametrize(
    "strategy", [{}, {"iterations": 5}, {"iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]}]
)
def test_check_policy_passes_with_every_judge(judge, strategy):
    check_policy(_policy(judge, **strategy), episodes=10, max_ticks=20)


def test_reject_rolls_back_in_the_same_tick_naming_judge_and_statistic():
    policy = _policy({"kind": "sequential", "alpha": 0.01})
    ticks = _drive(
        policy,
        {"request-success-rate": 99.9, "request-duration": 100.0},
        lambda t: _data(t, int(t // 15) + 1, canary_err=30.0, primary_err=9.0),
    )
    state, actions = ticks[2]  # the first analysis tick: no waiting for threshold (2)
    rollbacks = [a for a in actions if isinstance(a, Rollback)]
    assert rollbacks and state.phase == "Failed"
    assert rollbacks[0].reason.startswith("judge sequential rejected the canary: e-value")
    assert "request-success-rate" in rollbacks[0].reason


def test_the_judge_replaces_the_threshold_of_the_metrics_it_judges():
    # A success rate of 50% would fail the threshold check; the judge sees no difference.
    policy = _policy({"kind": "sequential"})
    ticks = _drive(
        policy,
        {"request-success-rate": 50.0, "request-duration": 100.0},
        lambda t: _data(t, int(t // 15) + 1, canary_err=50.0, primary_err=450.0),
        ticks=4,
    )
    assert [s.failed_checks for s, _ in ticks] == [0, 0, 0, 0]
    assert [s.canary_weight for s, _ in ticks] == [0, 10, 20, 30]
    assert "e_errors" in policy.status(ticks[-1][0])["judge"]


def test_metrics_the_judge_cannot_judge_keep_their_threshold():
    # SPRT judges error counts only: request-duration stays a threshold check.
    policy = _policy({"kind": "sprt"})
    assert policy.judge.signals == frozenset({"request-success-rate"}) and not policy.judge.needs_latency
    ticks = _drive(
        policy,
        {"request-success-rate": 50.0, "request-duration": 5000.0},
        lambda t: _data(t, int(t // 15) + 1, canary_err=1.0, primary_err=9.0),
    )
    assert ticks[2][0].failed_checks == 1
    assert "request-duration" in ticks[2][0].event


def test_a_policy_without_request_duration_makes_no_latency_judge():
    assert not _policy({"kind": "sequential"}, metrics=(SR,)).judge.needs_latency
    assert _policy({"kind": "sequential"}).judge.needs_latency


def test_accept_promotes_early_through_confirm_promotion():
    # Wald's SPRT accepts once the evidence favours "no regression" (LLR <= log(beta/(1-alpha))).
    policy = _policy({"kind": "sprt"}, metrics=(SR,))
    same = lambda t: _data(t, int(t // 15) + 1, canary_err=10.0, primary_err=90.0)  # noqa: E731
    ticks = _drive(policy, {"request-success-rate": 99.0}, same)
    assert any(isinstance(a, Promote) for a in ticks[2][1]) and ticks[2][0].phase == "Promoting"
    gated = _policy({"kind": "sprt"}, metrics=(SR,), hooks=[{"name": "gate", "type": "confirm-promotion"}])
    ticks = _drive(gated, {"request-success-rate": 99.0}, same, hooks={"gate": False})
    assert not any(isinstance(a, Promote) for _, acts in ticks for a in acts)
    assert ticks[2][0].phase == "WaitingPromotion"


def test_without_per_version_counters_the_judge_has_no_data():
    # pdsim replay of a metric-values CSV: the judge cannot look; as Flagger does with a
    # metric that returns nothing, that is a failed check.
    policy = _policy({"kind": "sequential"})
    ticks = _drive(policy, {"request-success-rate": 99.9, "request-duration": 100.0}, None, ticks=4)
    assert [s.failed_checks for s, _ in ticks] == [0, 0, 1, 2]
    assert "no values found" in ticks[2][0].event


def _scenario(judge: str) -> str:
    return textwrap.dedent(f"""\
        name: judged
        traffic: {{rate: 10/s}}
        policy:
          flagger:
            analysis:
              stepWeight: 10
              metrics: [{{name: request-success-rate, thresholdRange: {{min: 99}}}}]
            judge: {judge}
        """)


@pytest.mark.parametrize(
    "judge,field,message",
    [
        ("{kind: sequential, alpah: 0.01}", "policy.flagger.judge.alpah", "unknown key"),
        ("{kind: sequential, alpha: 0.9}", "policy.flagger.judge.alpha", "less than 0.5"),
        ("{kind: kayentta}", "policy.flagger.judge", "kind"),
        ("{kind: group-sequential, spending: linear}", "policy.flagger.judge.spending", "obrien-fleming"),
    ],
)
def test_bad_judge_blocks_are_one_line_errors(judge, field, message):
    with pytest.raises(InputError) as err:
        parse_scenario(loads_yaml(_scenario(judge), "judged.yaml"))
    text = str(err.value)
    assert text.startswith(f"judged.yaml:8: {field}") and message in text and "\n" not in text
