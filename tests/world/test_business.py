"""Business outcomes in the world (issue 19, ``sim.world.business``): each law against
its exact expectation and variance, novelty's decay, the records' business fields on
hand cases (``noise: false``: every quantity its expectation), what a policy that reads
business data sees, and same seed same data for any batch.

Statistical checks use fixed seeds and state their tolerance in standard errors of the
estimate (4-5 se: a false law with the stated error would fail them)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim.inputs.scenario import parse_scenario
from sim.outcomes import BUSINESS_COLUMNS
from sim.policies.base import (
    Action,
    ExperimentEnded,
    Finish,
    Observation,
    PolicyTags,
    Promote,
    Rollback,
    SetWeights,
)
from sim.seeds import Streams
from sim.world.business import (
    EXACT_LIMIT,
    BusinessLedger,
    BusinessModel,
    UserSplit,
    count_moments,
    lift_at,
    lognormal_moments,
)
from sim.world.controller import run_rollouts
from sim.world.traffic import build_population
from sim.yamlio import loads_yaml
from tests.world.minute_policy import MinutePolicy

RATE = 10.0  # requests/s


def _scenario(business: str = "", effects: str = "", noise: bool = False, extra: str = "", rate: float = RATE):
    text = (
        f"name: business\nhorizon: 30m\nafter_promotion: 10m\ntraffic:\n  rate: {rate:g}/s\n  users: 1000\n"
        f"{extra}baseline:\n  error_rate: 0\n"
    )
    if business:
        text += "business:\n" + textwrap.indent(textwrap.dedent(business), "  ")
    if effects:
        text += "release:\n  effects:\n" + textwrap.indent(textwrap.dedent(effects), "    ")
    text += f"telemetry:\n  noise: {'true' if noise else 'false'}\n"
    return parse_scenario(loads_yaml(text, file="business.yaml"))


class Scripted(MinutePolicy):
    """Ticks every 60 s and does ``script[k]`` at tick k; finishes after ``end`` ticks."""

    name = "scripted"

    def __init__(self, script: dict[int, tuple[Action, ...]], end: int, reads: bool = False) -> None:
        self.script, self.end = script, end
        self.reads = reads
        self.seen: list[Any] = []

    @property
    def tags(self) -> PolicyTags:
        return PolicyTags(reads_business=self.reads)

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        self.seen.append(obs.business)
        tick = state.tick + 1
        acts = self.script.get(tick, ())
        if tick >= self.end:
            return replace(state, tick=tick, phase="Done"), (*acts, Finish("Done"))
        return replace(state, tick=tick), acts


# --- the laws ------------------------------------------------------------------------


def _ledger(business: str, effects: str = "", runs: int = 2000, seed0: int = 11):
    scenario = _scenario(business, effects, noise=True)
    population = build_population(scenario.traffic)
    model = BusinessModel.of(scenario, population)
    assert model is not None
    streams = [Streams(s) for s in range(seed0, seed0 + runs)]
    return BusinessLedger(model, streams, population, noise=True), model


def _serve(ledger: BusinessLedger, n: float, version: int = 0, mid: float = 0.0) -> None:
    """Every run's version ``version`` serves ``n`` live requests in one segment."""
    R = len(ledger.active)
    live = np.zeros((R, 1, 1, 2))
    live[..., version] = n
    ledger.add(np.arange(R), np.array([mid]), live, np.zeros_like(live))


def test_sessions_are_a_binomial_thinning_of_live_requests():
    """1000 requests, k = 4: sessions ~ Binomial(1000, 1/4): mean 250, variance 187.5."""
    ledger, _ = _ledger("requests_per_session: 4\n")
    _serve(ledger, 1000.0)
    s = ledger.sessions[:, 0]
    se = math.sqrt(187.5 / len(s))
    assert abs(s.mean() - 250.0) < 4 * se
    assert s.var(ddof=1) == pytest.approx(187.5, rel=4 * math.sqrt(2 / len(s)))
    assert (ledger.sessions[:, 1] == 0).all() and (ledger.requests[:, 0] == 1000).all()


@pytest.mark.parametrize("version", [0, 1])
def test_conversions_compose_the_thinnings(version):
    """Conversions of n requests: Binomial(n, p/k) (two independent thinnings); the
    candidate's p is rate x (1 + lift)."""
    ledger, _ = _ledger("conversion: {rate: 0.1}\nrequests_per_session: 2\n", "conversion: {lift: 0.5}\n")
    _serve(ledger, 2000.0, version)
    q = (0.1 if version == 0 else 0.15) / 2.0
    c = ledger.conversions[:, version]
    var = 2000 * q * (1 - q)
    assert abs(c.mean() - 2000 * q) < 4 * math.sqrt(var / len(c))
    assert c.var(ddof=1) == pytest.approx(var, rel=4 * math.sqrt(2 / len(c)))


@pytest.mark.parametrize("requests", [400.0, 40_000.0])  # conversions per cell below / above EXACT_LIMIT
def test_order_values_have_the_lognormal_moments(requests):
    """Σx over C conversions: E = E[C] m1, Var = E[C] (m2 − m1²) + Var C m1² (Wald); and
    E Σx² = E[C] m2 — whether each value is drawn or the moments' normal law is used."""
    ledger, model = _ledger("conversion: {rate: 0.5}\norder_value: {median: 20, sigma: 0.5}\n", runs=3000)
    _serve(ledger, requests)
    m1, m2, m3, m4 = lognormal_moments(20.0, 0.5)
    c = ledger.conversions[:, 0]
    assert (c > EXACT_LIMIT).all() == (requests > 1000)
    ec, vc = requests * 0.5, requests * 0.25
    s, q = ledger.order_value_sum[:, 0], ledger.order_value_sumsq[:, 0]
    var_s = ec * (m2 - m1 * m1) + vc * m1 * m1
    assert abs(s.mean() - ec * m1) < 5 * math.sqrt(var_s / len(s))
    assert s.var(ddof=1) == pytest.approx(var_s, rel=5 * math.sqrt(2 / len(s)))
    var_q = ec * (m4 - m2 * m2) + vc * m2 * m2
    assert abs(q.mean() - ec * m2) < 5 * math.sqrt(var_q / len(q))
    assert model.order_mean() == pytest.approx(m1)


@pytest.mark.parametrize("dispersion", [1.0, 3.0])
@pytest.mark.parametrize("requests", [100.0, 10_000.0])  # sessions per cell below / above EXACT_LIMIT
def test_engagement_sums_have_the_count_law_moments(dispersion, requests):
    """Σy over n sessions of Poisson(μ) or gamma-Poisson(μ, var dμ): E = n m1, Var = n
    (m2 − m1²) exactly (the sum is drawn exactly in both regimes); E Σy² = n m2."""
    ledger, _ = _ledger(f"engagement: {{mean: 2.5, dispersion: {dispersion}}}\n", runs=3000)
    _serve(ledger, requests)  # k = 1: sessions = requests
    assert (ledger.sessions[:, 0] == requests).all()
    m1, m2, m3, m4 = count_moments(2.5, dispersion)
    assert m2 - m1 * m1 == pytest.approx(dispersion * 2.5)
    s, q = ledger.engagement_sum[:, 0], ledger.engagement_sumsq[:, 0]
    n = requests
    assert abs(s.mean() - n * m1) < 5 * math.sqrt(n * (m2 - m1 * m1) / len(s))
    assert s.var(ddof=1) == pytest.approx(n * (m2 - m1 * m1), rel=5 * math.sqrt(2 / len(s)))
    var_q = n * (m4 - m2 * m2)
    assert abs(q.mean() - n * m2) < 5 * math.sqrt(var_q / len(q))
    assert q.var(ddof=1) == pytest.approx(var_q, rel=6 * math.sqrt(2 / len(q)))
    assert (q >= s).all()


def test_novelty_decays_by_half_every_half_life():
    scenario = _scenario("conversion: {rate: 0.1}\n", "conversion: {lift: 0.1, novelty: {lift: 0.4, half_life: 1h}}\n")
    effect = scenario.release.effects.conversion
    assert lift_at(effect, np.array([0.0, 3600.0, 7200.0])) == pytest.approx([0.5, 0.3, 0.2])
    model = BusinessModel.of(scenario, build_population(scenario.traffic))
    assert model is not None
    assert model.multiplier("conversion", np.array([3600.0]))[0, 0] == pytest.approx(1.3)
    assert model.true_lift("conversion") == pytest.approx(0.1)  # the long run, no novelty


def test_true_lift_of_each_metric_and_of_a_cohort_effect():
    cohorts = "  cohorts:\n    - {name: insiders, share: 0.25, cookie: 'x=1'}\n"
    scenario = _scenario(
        "conversion: {rate: 0.1}\n",
        "conversion: {lift: 0.2, cohort: insiders}\norder_value: {lift: 0.1}\nengagement: {lift: -0.5}\n",
        extra=cohorts,
    )
    model = BusinessModel.of(scenario, build_population(scenario.traffic))
    assert model is not None
    share = float(model.cohort_share[1])
    assert share == pytest.approx(0.25, abs=0.01)
    assert model.true_lift("conversion") == pytest.approx(0.2 * share)
    assert model.true_lift("order_value") == pytest.approx(0.1)
    assert model.true_lift("engagement") == pytest.approx(-0.5)
    assert model.true_lift("revenue") == pytest.approx(share * (1.2 * 1.1 - 1) + (1 - share) * 0.1)


# --- the world ----------------------------------------------------------------------

BUSINESS = "conversion: {rate: 0.05}\norder_value: {median: 40, sigma: 1.0}\nrequests_per_session: 2\n"


def test_regret_on_a_hand_case():
    """noise: false. Weight 20 from t=60, promoted at t=240: the candidate served
    180 s x 10/s x 20% = 360 requests = 180 sessions, each losing 0.05 x 0.3 = 0.015
    conversions: regret 2.7, revenue x mean order 40 e^{1/2}. After promotion (10 min on
    the candidate): 6000 requests = 3000 sessions x 0.015 = 45."""
    scenario = _scenario(BUSINESS, "conversion: {lift: -0.3}\n")
    policy = Scripted({1: (SetWeights(20),), 4: (SetWeights(0), Promote())}, end=4)
    rec = run_rollouts(scenario, policy, [7])[0].record
    order = 40 * math.exp(0.5)
    assert rec.outcome == "promoted" and rec.winner == "candidate" and rec.correct is False
    assert rec.true_lift == pytest.approx(-0.3)
    assert rec.regret_conversions == pytest.approx(2.7)
    assert rec.regret_revenue == pytest.approx(2.7 * order)
    assert rec.regret_conversions_after_promotion == pytest.approx(45.0)
    assert rec.regret_revenue_after_promotion == pytest.approx(45.0 * order)
    # Sessions of both versions up to the decision: 240 s x 10/s / 2.
    assert rec.sessions == pytest.approx(1200.0)
    assert rec.lift_estimate is None and rec.srm is None


def test_a_better_candidate_rolled_back_has_regret_on_the_primary_side():
    """Lift +0.3 rolled back at t=240: the primary's 240 s x 10/s - 360 = 2040 requests =
    1020 sessions each lose 0.015; after the decision 3000 sessions on the primary lose 45."""
    scenario = _scenario(BUSINESS, "conversion: {lift: 0.3}\n")
    policy = Scripted({1: (SetWeights(20),), 4: (SetWeights(0), Rollback("no"))}, end=4)
    rec = run_rollouts(scenario, policy, [7])[0].record
    assert rec.winner == "primary" and rec.correct is False
    assert rec.regret_conversions == pytest.approx(1020 * 0.015)
    assert rec.regret_conversions_after_promotion == pytest.approx(45.0)


def test_an_experiment_names_its_winner_and_estimates():
    scenario = _scenario(BUSINESS, "conversion: {lift: 0.3}\n")
    ended = ExperimentEnded("candidate", lift=0.25, lift_low=0.1, lift_high=0.4, srm=False, reason="done")
    policy = Scripted({1: (SetWeights(50, by_user=False),), 3: (ended, Promote())}, end=3)
    rec = run_rollouts(scenario, policy, [7])[0].record
    assert (rec.winner, rec.correct, rec.lift_estimate, rec.lift_ci_low, rec.lift_ci_high, rec.srm) == (
        "candidate",
        True,
        0.25,
        0.1,
        0.4,
        False,
    )
    assert rec.regret_conversions_after_promotion == pytest.approx(0.0)


def test_without_business_the_fields_stay_null():
    policy = Scripted({1: (SetWeights(20),), 4: (Promote(),)}, end=4)
    rec = run_rollouts(_scenario(), policy, [7])[0].record.as_dict()
    assert all(rec[k] is None for k in BUSINESS_COLUMNS)


def test_a_policy_that_reads_business_sees_its_run_cumulative_data():
    """noise: false: at tick k (t = 60k) the primary served 600 requests in the first
    minute, then 80% of 10/s; the candidate 20% from t=60. Sessions = requests / 2."""
    scenario = _scenario(BUSINESS, "conversion: {lift: 0.2}\n")
    policy = Scripted({1: (SetWeights(20),)}, end=4, reads=True)
    run_rollouts(scenario, policy, [7])
    seen = policy.seen
    assert seen[0].requests == pytest.approx((600.0, 0.0))
    last = seen[3]  # t = 240
    assert last.requests == pytest.approx((600 + 180 * 8.0, 180 * 2.0))
    assert last.sessions == pytest.approx((1020.0, 180.0))
    assert last.conversions == pytest.approx((1020 * 0.05, 180 * 0.06))
    assert 0 < last.users[1] < last.users[0] <= 1000
    # A policy that does not declare it sees None.
    blind = Scripted({1: (SetWeights(20),)}, end=2)
    run_rollouts(scenario, blind, [7])
    assert blind.seen == [None, None]


def test_same_seed_same_business_data_for_any_batch():
    scenario = _scenario(BUSINESS, "conversion: {lift: 0.2}\n", noise=True)
    policy = Scripted({1: (SetWeights(30),), 6: (Promote(),)}, end=6)
    seeds = list(range(100, 150))
    batch = [r.record for r in run_rollouts(scenario, policy, seeds)]
    for k in (0, 17, 49):
        alone = run_rollouts(scenario, policy, [seeds[k]], run_indexes=[k])[0].record
        assert alone == batch[k]
    assert len({r.sessions for r in batch}) > 10


@pytest.mark.slow
def test_fast_path_and_per_request_mode_agree():
    """The same law from the fast path's segment counts and from the per-request mode's
    tick counts: at the last tick, each version's sessions and conversions agree in mean
    (two-sample z within 4.5) and variance (log ratio within 4.5 of its standard error
    sqrt(2/(n-1)) per sample) over 300 runs each. The policy sends 30% of requests to the
    candidate (conversion +50%) for 5 minutes."""
    scenario = _scenario(
        "conversion: {rate: 0.2}\nrequests_per_session: 2\n", "conversion: {lift: 0.5}\n", noise=True, rate=2.0
    )
    runs = 300
    fast_policy = Scripted({1: (SetWeights(30),)}, end=6, reads=True)
    run_rollouts(scenario, fast_policy, list(range(1, runs + 1)))
    fast = fast_policy.seen[-runs:]  # the last tick steps runs in order
    exact_policy = Scripted({1: (SetWeights(30),)}, end=6, reads=True)
    run_rollouts(scenario, exact_policy, list(range(5001, 5001 + runs)), exact=True)
    exact = exact_policy.seen[5::6]  # one run after the other, six ticks each
    assert len(fast) == len(exact) == runs
    for field in ("sessions", "conversions"):
        for v in (0, 1):
            a = np.array([getattr(x, field)[v] for x in fast])
            b = np.array([getattr(x, field)[v] for x in exact])
            z = (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / runs + b.var(ddof=1) / runs)
            assert abs(z) < 4.5, (field, v, a.mean(), b.mean())
            assert abs(math.log(a.var(ddof=1) / b.var(ddof=1))) < 4.5 * math.sqrt(4 / (runs - 1)), (field, v)


def test_a_user_split_routes_each_group_binomially_and_stays_sticky():
    """At split s each activity group of n users has Binomial(n, s) users on the
    candidate (mean and variance over 2000 runs, within 4.5 se), the candidate's traffic
    share is their activity share (not exactly s), and raising the split only adds users."""
    scenario = _scenario(BUSINESS)
    population = build_population(scenario.traffic)
    split = UserSplit(population, 2000)
    shares = np.array([split.assign(Streams(s)["business"], i, 0.3)[0] for i, s in enumerate(range(2000))])
    n = population.users.astype(float)
    k = split.users
    assert np.abs(k.mean(axis=0) - 0.3 * n).max() < 4.5 * math.sqrt((n * 0.21).max() / 2000)
    big = n.argmax()
    assert k[:, big].var(ddof=1) == pytest.approx(n[big] * 0.21, rel=4.5 * math.sqrt(2 / 2000))
    assert abs(shares.mean() - 0.3) < 0.02 and shares.std() > 0.01  # the most active users weigh
    before = k.copy()
    for i, s in enumerate(range(2000)):
        split.assign(Streams(s + 10**6)["business"], i, 0.5)
    assert (split.users >= before).all()
    assert split.users.mean(axis=0) == pytest.approx(0.5 * n, rel=0.05, abs=2.0)


def test_the_world_routes_a_user_split_by_the_drawn_users():
    """noise: false: SetWeights(50, by_user=True) routes the candidate its users' share of
    traffic (``routed_weight`` in the trace shows it), and the record's users_exposed
    counts within the candidate's users only."""
    scenario = _scenario(BUSINESS, "conversion: {lift: 0.2}\n")
    policy = Scripted({1: (SetWeights(50, by_user=True),)}, end=5, reads=True)
    result = run_rollouts(scenario, policy, [3], trace=True)[0]
    last = policy.seen[-1]
    share = last.requests[1] / (last.requests[1] + last.requests[0] - 600.0)  # minute 1 was all primary
    assert share != pytest.approx(0.5, abs=1e-6) and 0.3 < share < 0.7
    routed = [line["routed_weight"] for line in result.trace]
    assert routed[-1] == pytest.approx(100 * share, abs=1e-3)
    assert result.record.users_exposed <= 1000 * 0.75


@pytest.mark.slow
def test_a_user_split_agrees_between_the_fast_path_and_the_per_request_mode():
    """Under SetWeights(30, by_user=True) both modes route each user's requests all one
    way (the fast path by the groups' drawn users' activity share, the per-request mode
    by each user's id): the candidate's requests and its distinct users agree in mean
    (two-sample z within 4.5) over 200 runs each."""
    scenario = _scenario(BUSINESS, noise=True, rate=2.0)
    policy = Scripted({1: (SetWeights(30, by_user=True),)}, end=8)
    runs = 200
    fast = [r.record for r in run_rollouts(scenario, policy, list(range(1, runs + 1)))]
    exact = [r.record for r in run_rollouts(scenario, policy, list(range(7001, 7001 + runs)), exact=True)]
    for field in ("canary_requests", "users_exposed", "sessions"):
        a = np.array([getattr(r, field) for r in fast])
        b = np.array([getattr(r, field) for r in exact])
        z = (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / runs + b.var(ddof=1) / runs)
        assert abs(z) < 4.5, (field, a.mean(), b.mean())
    # Sticky: far fewer distinct users than a per-request 30% split of the same requests reaches.
    assert np.mean([r.users_exposed for r in exact]) < 0.3 * 1000 + 10


def test_distinct_users_follow_the_occupancy_law_across_advances():
    """K sessions met over two advances reach, in expectation, Σ_g n_g (1 − (1 − p_g/n_g)^K)
    distinct users (each user of group g is missed by a session with probability
    1 − p_g/n_g): the drawn count's mean over 2000 runs within 4.5 se of it, the same as
    the noise-free ledger's, and never more than the sessions."""
    ledger, _ = _ledger("requests_per_session: 1\n")
    _serve(ledger, 300.0)
    _serve(ledger, 200.0)
    users = np.array([ledger.users(r)[0] for r in range(len(ledger.active))])
    pop = ledger.population
    p = pop.users * pop.weight / (pop.users * pop.weight).sum()
    expected = float((pop.users * -np.expm1(500 * np.log1p(-p / pop.users))).sum())
    assert abs(users.mean() - expected) < 4.5 * users.std(ddof=1) / math.sqrt(len(users))
    assert (users <= 500).all() and users.std() > 0
    quiet = BusinessLedger(ledger.model, [Streams(1)], pop, noise=False)
    live = np.zeros((1, 1, 1, 2))
    live[..., 0] = 500.0
    quiet.add(np.arange(1), np.array([0.0]), live, np.zeros_like(live))
    assert quiet.users(0)[0] == pytest.approx(expected)


def test_regret_follows_the_novelty_as_it_fades():
    """noise: false; conversion lift 0 with a novelty of −40% halving every minute. The
    candidate serves 20% of 10/s from t=60 to its promotion at t=240: regret
    ∫ 1 session/s x 0.05 x 0.4 x 2^(−t/60) dt over [60, 240] = 0.02 (60/ln 2)(2^−1 − 2^−4);
    after promotion (10 min, all 5 sessions/s on it): 5 x 0.02 (60/ln 2)(2^−4 − 2^−14).
    The midpoint rule over segments is within 0.5% of the integrals."""
    scenario = _scenario(BUSINESS, "conversion: {lift: 0, novelty: {lift: -0.4, half_life: 1m}}\n")
    policy = Scripted({1: (SetWeights(20),), 4: (SetWeights(0), Promote())}, end=4)
    rec = run_rollouts(scenario, policy, [7])[0].record
    tau = 60 / math.log(2)
    assert rec.regret_conversions == pytest.approx(0.02 * tau * (2**-1 - 2**-4), rel=0.005)
    assert rec.regret_conversions_after_promotion == pytest.approx(5 * 0.02 * tau * (2**-4 - 2**-14), rel=0.005)
    # Not an experiment (no ExperimentEnded): a canary's promotion of a release whose lasting
    # lift is 0 shipped what was worth shipping (``sim.outcomes.rollout_correct``).
    assert rec.true_lift == 0.0 and rec.winner == "candidate" and rec.correct is True


def test_a_bad_release_is_never_right_to_ship_whatever_its_lift():
    """``winner_correct``'s release_bad: a candidate with a +30% conversion lift but a
    fault that matters is a wrong winner."""
    text = (
        "name: bad\nhorizon: 30m\ntraffic: {rate: 10/s, users: 1000}\nbaseline: {error_rate: 0}\n"
        "business: {conversion: {rate: 0.05}}\ntelemetry: {noise: false}\n"
        "release: {effects: {conversion: {lift: 0.3}}, faults: [{kind: error_rate, rate: 0.2}]}\n"
    )
    scenario = parse_scenario(loads_yaml(text, file="bad.yaml"))
    assert scenario.release_bad
    policy = Scripted({1: (SetWeights(20),), 4: (Promote(),)}, end=4)
    rec = run_rollouts(scenario, policy, [7])[0].record
    assert rec.winner == "candidate" and rec.true_lift == pytest.approx(0.3) and rec.correct is False
