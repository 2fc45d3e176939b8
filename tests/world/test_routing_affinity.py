"""Flagger's session affinity: users who reach the canary keep its cookie and keep being
routed to it (issue 16, "Missing" 6, item 1).

fluxcd/flagger ``pkg/router/istio.go`` ``getSessionAffinityRouteRules``: while the canary
weight is not 0, the weighted route's canary destination adds ``Set-Cookie:
<cookieName>=<value>; Max-Age=<maxAge>`` (``SessionAffinity.BuildCookie``; ``GetMaxAge``
defaults to 86400 in ``pkg/apis/flagger/v1beta1/canary.go``), and a route before it,
matching the ``Cookie`` header against that value, sends the request 100% to the canary.
At weight 0 the cookie becomes ``PreviousSessionAffinityCookie`` and no longer routes; the
next weight mints a new one.

So a user's requests go to the canary from its first weighted hit on: for a user sending
a Poisson stream of intensity μ, with weight w from 0 to T, the canary gets
μT − (1 − w)(1 − e^{−wμT})/w of its requests in expectation (all of them but the primary's
share before the first canary hit, at rate wμ), and the user is exposed with probability
1 − e^{−wμT}. With weight 10% and μT = 60 that is 51 of 60 requests instead of 6: the
blast radius in requests grows, in users hardly.

``noise: false`` makes the fast path's counts their expectations; the per-request mode
(every user's cookie kept by id) is compared with the fast path in distribution.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim.inputs.scenario import parse_scenario
from sim.policies.base import (
    Action,
    Finish,
    MetricTargets,
    Observation,
    Policy,
    Promote,
    Rollback,
    SetWeights,
)
from sim.world.controller import World, prepare
from sim.world.router import Router
from sim.yamlio import loads_yaml
from tests.world.minute_policy import MinutePolicy

USERS, RATE = 100, 10.0  # 0.1 requests/s per user (skew 0: all equally active)
T = 600.0  # weight from t=60 to the rollback at t=660
DAY = 86400.0


class Sticky(MinutePolicy):
    """Weight ``weights[k]`` at tick k (t = 60 k) and a rollback at t=660; session
    affinity ``max_age`` seconds (0: none)."""

    name = "sticky"

    def __init__(
        self, max_age: float, weights: dict[int, int] | None = None, promote_at: int = 0, primary: float = 0.0
    ) -> None:
        self.max_age, self.primary = max_age, primary
        self.weights = weights if weights is not None else {1: 10}
        self.promote_at = promote_at  # a tick that promotes (the weight stays, as in Promoting)

    def metric_targets(self) -> MetricTargets:
        return MetricTargets(session_affinity_s=self.max_age, session_affinity_primary_s=self.primary)

    def step(self, state: Any, obs: Observation) -> tuple[Any, tuple[Action, ...]]:
        tick = state.tick + 1
        if tick >= 11:
            return replace(state, tick=tick, phase="Done"), (SetWeights(0), Rollback("x"), Finish("Done"))
        w = self.weights.get(tick)
        acts: tuple[Action, ...] = () if w is None else (SetWeights(w),)
        if tick == self.promote_at:
            acts += (Promote(),)
        return replace(state, tick=tick), acts


def _scenario(noise: bool, error_rate: float = 0.05, skew: float = 0.0, users: int = USERS):
    text = textwrap.dedent(f"""\
        name: affinity
        horizon: 15m
        after_promotion: 0s
        traffic:
          rate: {RATE:g}/s
          users: {users}
          skew: {skew}
        baseline:
          error_rate: 0.0
        release:
          faults:
            - {{kind: error_rate, rate: {error_rate}}}
        telemetry:
          noise: {str(noise).lower()}
        """)
    return parse_scenario(loads_yaml(text, file="affinity.yaml"))


def _record(policy: Policy, noise: bool = False, exact: bool = False, seed: int = 5, **kw: Any):
    return World(_scenario(noise, **kw), policy, [seed], exact=exact).run()[0].record


def _sticky_expectation(w: float, mu_t: float) -> tuple[float, float]:
    """(canary requests, users exposed) per user: μT − (1−w)(1−e^{−wμT})/w and 1 − e^{−wμT}."""
    hit = -math.expm1(-w * mu_t)
    return mu_t - (1 - w) * hit / w, hit


def test_without_affinity_the_canary_gets_its_weight():
    rec = _record(Sticky(0.0))
    assert rec.canary_requests == pytest.approx(RATE * 0.1 * T)


def test_users_who_reach_the_canary_stay_there():
    """Weight 10%, 100 users at 0.1/s for 600 s (μT = 60): 5102 canary requests instead of
    600, 99.75 users exposed, 5% of the requests failing in excess."""
    rec = _record(Sticky(DAY))
    per_user, exposed = _sticky_expectation(0.1, RATE / USERS * T)
    assert rec.canary_requests == pytest.approx(USERS * per_user, rel=1e-9)
    assert rec.users_exposed == pytest.approx(USERS * exposed, rel=1e-9)
    assert rec.excess_errors == pytest.approx(0.05 * USERS * per_user, rel=1e-9)


def test_cookies_expire_after_max_age():
    """maxAge 60 s: a cookie routes for about a minute, then its user is weighted again,
    so the canary gets fewer requests than with a day-long cookie, more than without."""
    day = _record(Sticky(DAY)).canary_requests
    minute = _record(Sticky(60.0)).canary_requests
    assert RATE * 0.1 * T < minute < day


def test_a_weight_of_zero_ends_the_cookies():
    """Weight 10 at t=60, 0 at t=120 (the cookie moves to ``PreviousSessionAffinityCookie``),
    10 again from t=180: the new cookie is minted anew, the old holders route by weight.
    With the cookie kept across the 0, the canary would get more."""
    gap = _record(Sticky(DAY, {1: 10, 2: 0, 3: 10})).canary_requests
    per_user_1, _ = _sticky_expectation(0.1, RATE / USERS * 60.0)
    per_user_2, _ = _sticky_expectation(0.1, RATE / USERS * 480.0)
    assert gap == pytest.approx(USERS * (per_user_1 + per_user_2), rel=1e-9)


def test_after_a_promotion_the_rollout_no_longer_counts_sticky_users():
    """Promoted at t=300 with the weight kept (Flagger's Promoting), ``after_promotion`` 0:
    the record counts the 240 s before the decision only, in requests and in users."""
    rec = _record(Sticky(DAY, promote_at=5))
    per_user, exposed = _sticky_expectation(0.1, RATE / USERS * 240.0)
    assert rec.outcome == "promoted"
    assert rec.canary_requests == pytest.approx(USERS * per_user, rel=1e-9)
    assert rec.users_exposed == pytest.approx(USERS * exposed, rel=1e-9)


def test_a_primary_cookie_gives_each_user_one_draw():
    """``primaryCookieName`` (istio.go: the primary destination of the weighted route sets
    the primary cookie, Max-Age the analysis interval; a sticky primary route follows the
    sticky canary one). With both cookies outliving the canary, each user's first request
    decides for good: w of the users are exposed, if they send anything (1 − e^{−μT}), and
    each sends the canary its whole stream after that first request: n w μT requests in
    all, the plain weight's share, but from 10 users instead of every user."""
    rec = _record(Sticky(DAY, primary=DAY))
    mu_t = RATE / USERS * T
    assert rec.users_exposed == pytest.approx(USERS * 0.1 * -math.expm1(-mu_t), rel=1e-9)
    assert rec.canary_requests == pytest.approx(USERS * 0.1 * mu_t, rel=1e-9)


def test_a_primary_cookie_for_an_interval_slows_exposure():
    """A one-minute primary cookie: a user routed to the primary gets a new draw only each
    minute, so fewer users are exposed and fewer requests reach the canary than with the
    canary's cookie alone, more than with a cookie for good."""
    alone = _record(Sticky(DAY))
    minute = _record(Sticky(DAY, primary=60.0))
    for_good = _record(Sticky(DAY, primary=DAY))
    assert for_good.users_exposed < minute.users_exposed < alone.users_exposed
    assert for_good.canary_requests < minute.canary_requests < alone.canary_requests


def test_router_cookie_epochs():
    router = Router(2, np.zeros(1), np.ones(1), session_affinity_s=DAY)
    router.set(0, SetWeights(10))
    assert router.sticky(np.array([0, 1])).tolist() == [True, False]  # run 1 has weight 0
    router.set(0, SetWeights(20))
    assert router.cookie_epoch[0] == 0
    router.set(0, SetWeights(0))
    assert router.cookie_epoch[0] == 1 and not router.sticky(np.array([0]))[0]
    router.set(0, SetWeights(10, matched=True))  # A/B: the cookie routes are not written
    assert not router.sticky(np.array([0]))[0]


def test_exact_mode_keeps_each_users_cookie():
    """Per request: a user's requests after its first canary hit all go to the canary."""
    world = World(_scenario(True), Sticky(DAY), [3], exact=True)
    world.run()
    traffic = world.traffic
    cookies = traffic.cookies  # type: ignore[attr-defined]
    assert len(cookies) == len(traffic.exposed)  # type: ignore[attr-defined]
    assert all(epoch == 0 for epoch, _ in cookies.values())


def _moments(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.var(ddof=1) / len(a))


@pytest.mark.parametrize(
    ("skew", "primary"),
    [
        (1.0, 0.0),
        (1.0, 60.0),
        pytest.param(0.0, 0.0, marks=pytest.mark.slow),
        pytest.param(0.0, 60.0, marks=pytest.mark.slow),
    ],
)
def test_fast_path_agrees_with_the_per_request_mode(skew, primary):
    """Zipf users (skew 1: a few very active users, many rare ones) or equal ones, 300
    users, weight 10%: the means of canary requests, excess failures, users exposed and
    affected over 40 per-request runs and 300 fast runs agree within 4.5 standard errors
    (Welch), with the canary's cookie alone and with a one-minute primary cookie
    (``primaryCookieName``). The records differ from the non-sticky world's by far more.
    Measured: every |z| below 1.5 with the canary's cookie alone, below 2.1 with the
    primary's (the fast path's excess failures spread about 20% wider: the rest of a stream
    after a first hit is drawn as a Poisson of its mean)."""
    fields = ("canary_requests", "excess_errors", "users_exposed", "users_affected")
    kw = {"skew": skew, "users": 300, "error_rate": 0.02}
    policy = Sticky(DAY, primary=primary)
    exact = [_record(policy, noise=True, exact=True, seed=100 + s, **kw) for s in range(40)]
    world = World(_scenario(True, **kw), policy, [1000 + s for s in range(300)])
    fast = [r.record for r in world.run()]
    for f in fields:
        m_e, v_e = _moments([getattr(r, f) for r in exact])
        m_f, v_f = _moments([getattr(r, f) for r in fast])
        assert abs(m_e - m_f) < 4.5 * math.sqrt(v_e + v_f), (f, m_e, m_f)
    plain = World(_scenario(True, **kw), Sticky(0.0), [1000 + s for s in range(300)]).run()
    m_plain = np.mean([r.record.canary_requests for r in plain])
    assert np.mean([r.canary_requests for r in fast]) > 1.5 * m_plain


def test_population_is_what_the_expectations_assume():
    """skew 0: every user sends 1/USERS of the traffic (the formulas above rely on it)."""
    pop = prepare(_scenario(False)).population
    np.testing.assert_allclose(pop.weight, 1.0 / USERS)
