"""The judges' formulas against their sources.

* Lindon & Malek (NeurIPS 2022), as assuncaolfi/savvi ``src/savvi/multinomial.py``
  ``Multinomial.update_odds`` computes it: log odds += logbeta(alpha_n) − logbeta(alpha_n − x)
  − x·log(theta_0), i.e. E_n = B(a + c, b + d) / (B(a, b) p0^c (1 − p0)^d) for two cells.
* Johari, Pekelis & Walsh (KDD 2017) mSPRT, as erik-stenberg/mixtureSPRT ``src/test.cpp``
  ``cppmSPRT`` computes it (normal and Bernoulli branches without pre-period data).
* Lan–DeMets spending boundaries (Lan & DeMets 1983; Jennison & Turnbull 2000, table 2.x
  as tabulated by R ``ldbounds``/``gsDesign``): five equally spaced looks, one-sided 0.025.
* Wald (1945) SPRT thresholds; Beta-Binomial posterior probability by Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betaln

from sim.policies.judges.bayes import prob_canary_worse
from sim.policies.judges.classical import GroupSequentialJudge, GroupSequentialState, spent_alpha
from sim.policies.judges.counts import Slots
from sim.policies.judges.msprt import msprt_log_lambda
from sim.policies.judges.sequential import _logsumexp, beta_binomial_e_value, log_likelihood_ratio, mixture_grid
from sim.policies.judges.spec import GroupSequentialSpec


def _savvi_two_cell(batches: list[tuple[int, int]], p0: float, k: float) -> float:
    """savvi's sequential update, batch by batch, for the cells (canary, primary)."""
    theta0 = np.array([p0, 1 - p0])
    alpha_n = k * theta0
    log_odds = 0.0

    def logbeta(a: np.ndarray) -> float:
        return float(np.sum([math.lgamma(x) for x in a]) - math.lgamma(float(np.sum(a))))

    for c, d in batches:
        x = np.array([c, d], float)
        alpha_n = alpha_n + x
        log_odds += logbeta(alpha_n) - logbeta(alpha_n - x) - float(np.sum(x * np.log(theta0)))
    return math.exp(log_odds)


@pytest.mark.parametrize("batches,p0", [([(3, 20), (4, 30)], 0.1), ([(10, 10), (0, 5), (8, 2)], 0.4), ([(0, 40)], 0.2)])
def test_two_sided_closed_form_is_savvis_sequential_update(batches, p0):
    c, d = sum(b[0] for b in batches), sum(b[1] for b in batches)
    assert beta_binomial_e_value(c, d, p0, 100.0, one_sided=False) == pytest.approx(
        _savvi_two_cell(batches, p0, 100.0), rel=1e-9
    )


@pytest.mark.parametrize(
    "c,d,p0", [(5, 20, 0.1), (20, 40, 0.2), (50, 100, 0.3), (3, 50, 0.1), (300, 1000, 0.2), (0, 10, 0.1), (40, 60, 0.5)]
)
def test_relative_risk_mixture_equals_closed_form_at_a_constant_share(c, d, p0):
    # One slot (or many) with a constant share: the grid mixture is the one-sided closed form.
    nodes, log_w = mixture_grid(p0, 100.0, 1000.0)
    slots = Slots(
        np.array([1000.0, 500.0]),
        np.array([1000.0, 500.0]) * (1 - p0) / p0,
        np.array([c - c // 2, c // 2], float),
        np.array([d - d // 2, d // 2], float),
    )
    grid = math.exp(_logsumexp(log_w + log_likelihood_ratio(slots, nodes)))
    assert grid == pytest.approx(
        beta_binomial_e_value(c, d, p0, 100.0), rel=1e-2
    )  # midpoint rule on a 256-node log grid


def test_one_sided_e_value_shrinks_when_the_canary_fails_less():
    # Fewer canary failures than its share predicts is evidence for the null.
    assert beta_binomial_e_value(2, 98, 0.1, 100.0) < 1.0
    assert beta_binomial_e_value(30, 70, 0.1, 100.0) > 1000.0
    # The closed form by hand: a = k p0, b = k (1 - p0), two-sided.
    a, b = 10.0, 90.0
    want = math.exp(betaln(a + 5, b + 20) - betaln(a, b) - 5 * math.log(0.1) - 20 * math.log(0.9))
    assert beta_binomial_e_value(5, 20, 0.1, 100.0, one_sided=False) == pytest.approx(want)


def _cpp_msprt_normal(n: int, diff: float, sigma: float, tau: float) -> float:
    # cppmSPRT, distribution "normal", no pre-period data.
    s2 = sigma**2
    return math.sqrt(2 * s2 / (2 * s2 + n * tau**2)) * math.exp(
        n**2 * tau**2 * diff**2 / (4 * s2 * (2 * s2 + n * tau**2))
    )


def _cpp_msprt_bernoulli(n: int, xbar: float, ybar: float, tau: float) -> float:
    vn = xbar * (1 - xbar) + ybar * (1 - ybar)
    return math.sqrt(vn / (vn + n * tau**2)) * math.exp(
        n**2 * tau**2 * (xbar - ybar) ** 2 / (2 * vn * (vn + n * tau**2))
    )


@pytest.mark.parametrize("n,diff,sigma,tau", [(100, 0.3, 1.0, 0.5), (5000, 0.02, 1.0, 0.1), (20, -1.0, 2.0, 1.0)])
def test_stratified_msprt_is_johari_for_balanced_arms(n, diff, sigma, tau):
    # One stratum with n per arm: w = n/2, S = w * diff, I = n/2.
    log_l = msprt_log_lambda(n / 2 * diff, n / 2, sigma**2, tau, one_sided=False)
    assert math.exp(log_l) == pytest.approx(_cpp_msprt_normal(n, diff, sigma, tau), rel=1e-9)


def test_stratified_msprt_bernoulli_matches_the_plug_in_variance():
    n, xbar, ybar, tau = 4000, 0.012, 0.008, 0.005
    sigma2 = (xbar * (1 - xbar) + ybar * (1 - ybar)) / 2  # cppmSPRT's Vn = 2 sigma^2
    log_l = msprt_log_lambda(n / 2 * (xbar - ybar), n / 2, sigma2, tau, one_sided=False)
    assert math.exp(log_l) == pytest.approx(_cpp_msprt_bernoulli(n, xbar, ybar, tau), rel=1e-9)


def test_one_sided_msprt_mixes_over_positive_differences_only():
    two = msprt_log_lambda(200.0, 1000.0, 1.0, 0.3, one_sided=False)
    # Strong positive evidence (z = 6.3): the half-normal mixture is twice the full one.
    assert msprt_log_lambda(200.0, 1000.0, 1.0, 0.3) == pytest.approx(two + math.log(2), abs=1e-6)
    assert msprt_log_lambda(-50.0, 1000.0, 1.0, 0.3) < 0.0


def _boundaries(spending: str, alpha: float, ts: list[float]) -> list[float]:
    judge = GroupSequentialJudge(GroupSequentialSpec(kind="group-sequential", alpha=alpha, spending=spending))
    state = GroupSequentialState(variance=1.0)
    out = []
    for t in ts:
        lo, hi = 0.0, 10.0
        for _ in range(40):  # the smallest z that rejects at this look
            mid = (lo + hi) / 2
            probe = GroupSequentialState(0, mid + 0.5, 0.0, 1.0, state.t, state.spent, state.density, state.boundary)
            lo, hi = (lo, mid) if judge._look(probe, t).decided == "reject" else (mid, hi)
        out.append(hi)
        state = judge._look(
            GroupSequentialState(0, -50.0, 0.0, 1.0, state.t, state.spent, state.density, state.boundary), t
        )
    return out


@pytest.mark.parametrize(
    "spending,want",
    [
        # ldbounds / gsDesign: Lan-DeMets O'Brien-Fleming and Pocock types, K = 5 equally
        # spaced looks, one-sided alpha 0.025.
        ("obrien-fleming", [4.877, 3.357, 2.680, 2.290, 2.031]),
        ("pocock", [2.438, 2.427, 2.410, 2.397, 2.386]),
    ],
)
def test_lan_demets_boundaries(spending, want):
    got = _boundaries(spending, 0.025, [0.2, 0.4, 0.6, 0.8, 1.0])
    assert got == pytest.approx(want, abs=0.003)


def test_spending_functions_spend_alpha_by_the_end():
    for spending in ("obrien-fleming", "pocock"):
        assert spent_alpha(1.0, 0.05, spending) == pytest.approx(0.05)
        assert spent_alpha(0.0, 0.05, spending) == 0.0
        assert spent_alpha(0.3, 0.05, spending) < spent_alpha(0.6, 0.05, spending)
    # O'Brien-Fleming spends almost nothing early; Pocock spends evenly.
    assert spent_alpha(0.2, 0.05, "obrien-fleming") < 1e-4 < 0.01 < spent_alpha(0.2, 0.05, "pocock")


def test_beta_binomial_posterior_probability_matches_monte_carlo():
    rng = np.random.default_rng(3)
    nc, ec, np_, ep = 5000, 12, 45000, 60
    draws_c = rng.beta(1 + ec, 1 + nc - ec, 400_000)
    draws_p = rng.beta(1 + ep, 1 + np_ - ep, 400_000)
    for delta in (0.0, 0.0005):
        mc = float(np.mean(draws_c > draws_p + delta))
        assert prob_canary_worse(nc, ec, np_, ep, delta) == pytest.approx(mc, abs=0.004)
