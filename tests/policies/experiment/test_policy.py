"""The A/B experiment policy (issue 19) driven by hand-made observations, no world:
ticks, the user split, each rule kind's decisions, guardrails, the SRM check, the lift
and interval passed through, state immutability, check_policy and the trace."""

from __future__ import annotations

import copy
import json
import math

import pytest

from sim.policies.base import (
    BusinessData,
    ExperimentEnded,
    Finish,
    Observation,
    Promote,
    Rollback,
    Routes,
    SetWeights,
)
from sim.policies.checks import check_policy
from sim.policies.driver import action_json, routes_after, trace_line
from sim.policies.experiment import ExperimentPolicy, ExperimentPolicySpec, ExperimentState
from sim.policies.experiment.policy import (
    INCONCLUSIVE,
    NO_BUSINESS,
    guardrail_failure,
    metric_looks,
    user_weight,
)
from sim.policies.experiment.spec import Guardrail

DAY = 86400.0

RULES = {
    "sequential": {"kind": "sequential"},
    "fixed": {"kind": "fixed", "sample_size": 20000},
    "fixed-peek": {"kind": "fixed", "sample_size": 20000, "peek": True},
    "group-sequential": {"kind": "group-sequential", "looks": 14},
    "bayes": {"kind": "bayes"},
}


def policy(test: dict | None = None, **kw) -> ExperimentPolicy:
    data = {"test": test or {"kind": "sequential"}, **kw}
    return ExperimentPolicy(ExperimentPolicySpec.model_validate(data))


def data(
    sessions: float,
    rate_a: float,
    rate_b: float,
    *,
    users: tuple[float, float] | None = None,
    errors: tuple[float, float] = (0.0, 0.0),
    value: float = 40.0,
) -> BusinessData:
    """Cumulative data with ``sessions`` per version converting at exactly the given rates
    (every order worth ``value`` give or take 10: a known variance), one user per session,
    four requests per session."""
    conv = (sessions * rate_a, sessions * rate_b)
    # half the orders at value - 10, half at value + 10: sum = n·value, sumsq = n·(value² + 100)
    return BusinessData(
        sessions=(sessions, sessions),
        conversions=conv,
        order_value_sum=(conv[0] * value, conv[1] * value),
        order_value_sumsq=(conv[0] * (value**2 + 100), conv[1] * (value**2 + 100)),
        engagement_sum=(sessions * 3, sessions * 3),
        engagement_sumsq=(sessions * 12, sessions * 12),
        users=users or (sessions, sessions),
        requests=(sessions * 4, sessions * 4),
        errors=errors,
    )


def obs(t: float, tick: int, business: BusinessData | None) -> Observation:
    return Observation(t=t, tick=tick, business=business)


def run(p: ExperimentPolicy, daily):
    """Step ``p`` at its own ticks; ``daily(k)`` is the data at look k (0 at tick 1).
    Returns (states, actions per tick, tick times)."""
    state = p.initial_state()
    states, acts, times = [], [], []
    t = 0.0
    k = 0
    while (nt := p.next_tick(state, t)) is not None:
        t = nt
        state, actions = p.step(state, obs(t, k + 1, daily(k)))
        states.append(state)
        acts.append(actions)
        times.append(t)
        k += 1
        assert k < 100
    return states, acts, times


def ended(actions) -> ExperimentEnded:
    (e,) = [a for a in actions if isinstance(a, ExperimentEnded)]
    return e


# -- ticks and the split -------------------------------------------------------------


def test_first_tick_splits_users_then_a_look_every_interval_up_to_max_duration():
    p = policy(srm_alpha=None)
    states, acts, times = run(p, lambda k: data(1000.0 * k, 0.03, 0.03))
    assert times == [0.0] + [k * DAY for k in range(1, 15)]
    assert acts[0] == (SetWeights(50, by_user=True),)
    assert states[0].phase == "Progressing" and states[0].canary_weight == 50
    assert p.status(states[3])["looks"] == 3
    e = ended(acts[-1])
    assert e.winner == "none" and e.reason == INCONCLUSIVE
    assert acts[-1][1:] == (SetWeights(0), Rollback(INCONCLUSIVE), Finish("Failed"))
    assert p.next_tick(states[-1], times[-1]) is None
    assert p.status(states[-1])["phase"] == "Failed"


def test_a_last_look_at_max_duration_when_the_interval_does_not_divide_it():
    p = policy(max_duration="10d", interval="4d", srm_alpha=None)
    _, _, times = run(p, lambda k: data(1000.0 * k, 0.03, 0.03))
    assert times == [0.0, 4 * DAY, 8 * DAY, 10 * DAY]


@pytest.mark.parametrize(("split", "weight"), [(50, 50), (33.3, 33), (12.5, 12), (0.2, 1), (99.7, 99)])
def test_a_fractional_split_is_rounded_to_the_routers_whole_percent(split, weight):
    assert user_weight(split) == weight
    p = policy(split=split)
    assert p.weight == weight
    assert p.step(p.initial_state(), obs(0.0, 1, data(0.0, 0, 0)))[1] == (SetWeights(weight, by_user=True),)


def test_by_user_routes_are_read_back_and_traced():
    routes = routes_after(Routes(), SetWeights(30, by_user=True))
    assert routes == Routes(30, by_user=True)
    assert action_json(SetWeights(30, by_user=True)) == {
        "action": "set_weights",
        "canary_weight": 30,
        "mirrored": False,
        "by_user": True,
    }
    assert "by_user" not in action_json(SetWeights(30))


# -- decisions per rule kind ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(RULES))
def test_a_large_lift_promotes_the_candidate(kind):
    p = policy(RULES[kind], srm_alpha=None)
    states, acts, _ = run(p, lambda k: data(5000.0 * k, 0.05, 0.07))
    e = ended(acts[-1])
    assert e.winner == "candidate"
    assert acts[-1][1:] == (SetWeights(0), Promote(), Finish("Succeeded"))
    assert states[-1].phase == "Succeeded" and states[-1].winner == "candidate"
    assert e.lift == pytest.approx(0.4) and e.lift_low < 0.4 < e.lift_high
    # the lift and its interval are the rule's, passed through to the state's status too
    assert (states[-1].lift, states[-1].lift_low, states[-1].lift_high) == (e.lift, e.lift_low, e.lift_high)


@pytest.mark.parametrize("kind", list(RULES))
def test_a_large_loss_keeps_the_primary(kind):
    p = policy(RULES[kind], srm_alpha=None)
    states, acts, _ = run(p, lambda k: data(5000.0 * k, 0.05, 0.035))
    e = ended(acts[-1])
    assert e.winner == "primary" and e.lift == pytest.approx(-0.3)
    assert isinstance(acts[-1][2], Rollback) and states[-1].phase == "Failed"


@pytest.mark.parametrize("kind", ["sequential", "group-sequential", "fixed-peek"])
def test_no_difference_is_inconclusive_at_max_duration(kind):
    p = policy(RULES[kind], srm_alpha=None)
    states, acts, times = run(p, lambda k: data(5000.0 * k, 0.05, 0.05))
    assert times[-1] == 14 * DAY and len(times) == 15
    e = ended(acts[-1])
    assert e.winner == "none" and e.reason == INCONCLUSIVE and e.lift == 0.0
    assert all(not acts[i] for i in range(1, 14))  # nothing done at the looks in between


def test_a_planned_fixed_test_decides_only_at_its_sample_size():
    p = policy({"kind": "fixed", "sample_size": 20000}, srm_alpha=None)
    states, acts, times = run(p, lambda k: data(5000.0 * k, 0.05, 0.07))
    assert times[-1] == 4 * DAY  # 20,000 sessions per version on day 4


@pytest.mark.parametrize("metric", ["order_value", "revenue", "engagement"])
def test_means_metrics_build_their_looks_from_the_sums(metric):
    b = data(1000.0, 0.05, 0.05)
    looks = metric_looks(metric, b)
    mean, var, n = looks.arm(False)
    if metric == "order_value":
        assert n[0] == 50 and mean[0] == pytest.approx(40.0)
        assert var[0] == pytest.approx(100 * 50 / 49)  # the unbiased sample variance
    elif metric == "revenue":
        assert n[0] == 1000 and mean[0] == pytest.approx(2.0)  # 5% of sessions at 40
    else:
        assert n[0] == 1000 and mean[0] == pytest.approx(3.0) and var[0] == pytest.approx(3 * 1000 / 999)
    assert not looks.binary


def test_order_value_decides_on_the_value_of_orders():
    p = policy(metric="order_value", srm_alpha=None)
    assert p.business_metric() == "order_value"

    def daily(k):
        b = data(20000.0 * k, 0.05, 0.05)
        return BusinessData(**{**b.__dict__, "order_value_sum": (b.conversions[0] * 40, b.conversions[1] * 44)})

    e = ended(run(p, daily)[1][-1])
    assert e.winner == "candidate" and e.lift == pytest.approx(0.1, rel=1e-6)


# -- what stops an experiment -----------------------------------------------------------


def test_a_failing_success_rate_guardrail_keeps_the_primary():
    p = policy(guardrails=[{"metric": "request-success-rate", "max_drop": 0.5}], srm_alpha=None)
    states, acts, times = run(p, lambda k: data(5000.0 * k, 0.05, 0.05, errors=(0.0, 5000.0 * k * 4 * 0.02)))
    e = ended(acts[-1])
    assert times[-1] == 1 * DAY  # 2 points worse, significant at the first look
    assert e.winner == "primary" and e.reason.startswith("guardrail request-success-rate failed")
    assert isinstance(acts[-1][2], Rollback) and acts[-1][2].reason == e.reason


def test_a_drop_within_max_drop_or_not_significant_does_not_stop():
    g = Guardrail(metric="request-success-rate", max_drop=0.5)
    # 0.3 points worse: within max_drop, however significant
    assert guardrail_failure(g, data(1e6, 0.05, 0.05, errors=(0.0, 4e6 * 0.003)), 0.05) is None
    # 2 points worse on 150 requests: beyond max_drop but not significant
    assert guardrail_failure(g, data(50.0, 0.05, 0.05, errors=(0.0, 3.0)), 0.05) is None
    # 2 points worse on 4 million requests: fails
    assert guardrail_failure(g, data(1e6, 0.05, 0.05, errors=(0.0, 4e6 * 0.02)), 0.05) is not None


def test_a_business_guardrail_is_relative():
    g = Guardrail(metric="revenue", max_drop=0.02)
    assert guardrail_failure(g, data(1e6, 0.05, 0.049), 0.05) is None  # 2% lower: not more than max_drop
    why = guardrail_failure(g, data(1e6, 0.05, 0.045), 0.05)  # 10% lower
    assert why is not None and "0.1 relative" in why


def test_a_guardrail_stops_before_the_rule_would_promote():
    p = policy(guardrails=[{"metric": "engagement", "max_drop": 0.01}], srm_alpha=None)

    def daily(k):
        b = data(5000.0 * k, 0.05, 0.07)
        return BusinessData(**{**b.__dict__, "engagement_sum": (b.sessions[0] * 3, b.sessions[1] * 2.5)})

    e = ended(run(p, daily)[1][-1])
    assert e.winner == "primary" and "engagement" in e.reason
    assert e.lift == pytest.approx(0.4)  # the primary metric's estimate, passed through


def test_a_sample_ratio_mismatch_stops_with_no_winner():
    p = policy()  # srm_alpha 0.001
    states, acts, times = run(p, lambda k: data(5000.0 * k, 0.05, 0.07, users=(5000.0 * k, 4500.0 * k)))
    e = ended(acts[-1])
    assert times[-1] == DAY
    assert e.winner == "none" and e.srm and "sample ratio mismatch" in e.reason
    assert math.isnan(e.lift)  # the data are not trusted: no estimate
    assert isinstance(acts[-1][2], Rollback)


def test_srm_tests_the_routed_weight_not_the_unrounded_split():
    p = policy(split=33.3)  # routed 33%
    users = (670000.0, 330000.0)  # exactly 33%: against 33.3% p ≈ 1e-10 would flag
    split = p.step(p.initial_state(), obs(0, 1, data(0, 0, 0)))[0]
    assert p.step(split, obs(DAY, 2, data(1e6, 0.05, 0.05, users=users)))[1] == ()


def test_without_business_data_the_experiment_ends_at_once():
    p = policy()
    state, acts = p.step(p.initial_state(), obs(0.0, 1, None))
    e = ended(acts)
    assert e.winner == "none" and e.reason == NO_BUSINESS and state.phase == "Failed"
    assert acts[-2:] == (Rollback(NO_BUSINESS), Finish("Failed"))


# -- the contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(RULES))
def test_check_policy(kind):
    guards = [{"metric": "request-success-rate", "max_drop": 0.5}, {"metric": "revenue", "max_drop": 0.02}]
    check_policy(policy(RULES[kind], guardrails=guards, metric="revenue"), episodes=15)


def test_steps_never_change_their_state_and_repeat_exactly():
    p = policy(RULES["group-sequential"], srm_alpha=None)
    state = p.step(p.initial_state(), obs(0.0, 1, data(0, 0, 0)))[0]
    for k in range(1, 15):
        before = copy.deepcopy(state)
        new, acts = p.step(state, obs(k * DAY, k + 1, data(5000.0 * k, 0.05, 0.05)))
        assert state == before
        assert p.step(before, obs(k * DAY, k + 1, data(5000.0 * k, 0.05, 0.05))) == (new, acts)
        state = new
    with pytest.raises(AttributeError):
        state.looks = 3  # type: ignore[misc]
    assert isinstance(state, ExperimentState)


def test_a_terminal_state_is_absorbing():
    p = policy()
    state = p.step(p.initial_state(), obs(0.0, 1, None))[0]
    assert p.step(state, obs(DAY, 2, data(1000, 0.05, 0.05))) == (state, ())


def test_declared_capabilities():
    p = policy(metric="engagement")
    assert p.tags.reads_business and not p.tags.reads_versions
    assert p.queries() == [] and p.business_metric() == "engagement"
    assert p.terminal_phases == {"Succeeded", "Failed"}
    (line,) = p.describe()
    assert "50% of users" in line and "engagement" in line and "sequential" in line


def test_the_trace_line_is_json_with_nan_as_text():
    p = policy(srm_alpha=None)
    states, acts, times = run(p, lambda k: data(5000.0 * k, 0.05, 0.07))
    line = trace_line(times[-1], len(times), p.status(states[-1]), 0.0, acts[-1], {}, p.event(states[-1]))
    text = json.dumps(line, allow_nan=False)
    back = json.loads(text)
    (exp,) = [a for a in back["actions"] if a["action"] == "experiment_ended"]
    assert exp["winner"] == "candidate" and exp["srm"] is False and exp["lift"] == pytest.approx(0.4)
    assert back["lift"] == pytest.approx(0.4) and back["looks"] == len(times) - 1
    first = trace_line(0.0, 1, p.status(p.initial_state()), 0.0, (), {}, "")
    assert first["lift"] == "NaN"
    none = action_json(ExperimentEnded("none", srm=True, reason="x"))
    assert none == {
        "action": "experiment_ended",
        "winner": "none",
        "lift": "NaN",
        "lift_low": "NaN",
        "lift_high": "NaN",
        "srm": True,
        "reason": "x",
    }
