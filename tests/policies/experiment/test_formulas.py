"""Each formula of sim/policies/experiment against an independent reference: published
tables, scipy, statsmodels, exact enumeration (issue 19)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from scipy import stats
from scipy.special import betaln

from sim.policies.experiment import ExperimentTestSpec, Looks, make_test
from sim.policies.experiment.base import difference, lift_interval
from sim.policies.experiment.bayes import beta_chance_and_losses, normal_chance_and_losses, prob_greater
from sim.policies.experiment.fixed import analytic_power, z_statistic
from sim.policies.experiment.group_sequential import classic_boundaries, exit_probabilities, spending_boundaries
from sim.policies.experiment.sequential import critical_value, msprt_log_lambda_two_sided
from sim.policies.experiment.srm import srm_check

FIVE = np.arange(1, 6) / 5


# --- group-sequential boundaries against published tables -------------------------------


def test_classic_obrien_fleming_k5() -> None:
    # Jennison & Turnbull (2000) Table 2.3: C_B(5, 0.05) = 2.040; c_k = C_B·sqrt(5/k)
    c = classic_boundaries(5, 0.05, "obrien-fleming")
    np.testing.assert_allclose(c, [4.56, 3.23, 2.63, 2.28, 2.04], atol=0.005)


def test_classic_pocock_k5() -> None:
    # Jennison & Turnbull (2000) Table 2.1: C_P(5, 0.05) = 2.413
    np.testing.assert_allclose(classic_boundaries(5, 0.05, "pocock"), 2.413, atol=0.001)


def test_lan_demets_obrien_fleming_spending_k5() -> None:
    # R gsDesign sfLDOF / ldbounds, two-sided symmetric alpha = 0.05 (0.025 per side), K = 5
    c = spending_boundaries(FIVE, 0.05, "obrien-fleming")
    np.testing.assert_allclose(c, [4.8769, 3.3569, 2.6803, 2.2898, 2.0310], atol=0.0005)


def test_lan_demets_pocock_spending_k5() -> None:
    # R gsDesign sfLDPocock / ldbounds, two-sided alpha = 0.05, K = 5
    c = spending_boundaries(FIVE, 0.05, "pocock")
    np.testing.assert_allclose(c, [2.4380, 2.4268, 2.4101, 2.3966, 2.3859], atol=0.001)


def _mvn_exit_total(c: np.ndarray, t: np.ndarray) -> float:
    """P(some |Z_k| >= c_k) by scipy's multivariate normal: corr(Z_i, Z_j) = sqrt(t_i/t_j)."""
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    inside = stats.multivariate_normal(np.zeros(len(t)), cov).cdf(c, lower_limit=-c)
    return 1.0 - float(inside)


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_recursion_against_multivariate_normal(spending: str) -> None:
    t = np.array([0.3, 0.55, 0.8, 1.0])  # unequal spacing
    c = spending_boundaries(t, 0.05, spending)
    assert _mvn_exit_total(c, t) == pytest.approx(0.05, abs=2e-4)
    assert exit_probabilities(c, t).sum() == pytest.approx(0.05, abs=1e-6)


def test_exit_probabilities_with_drift_against_simulation_free_reference() -> None:
    # one look: power of the two-sided z test at drift theta is Phi(theta - c) + Phi(-theta - c)
    c, theta = 1.959964, 2.8
    p = exit_probabilities(np.array([c]), np.array([1.0]), drift=theta)[0]
    assert p == pytest.approx(stats.norm.cdf(theta - c) + stats.norm.cdf(-theta - c), abs=1e-9)


# --- mSPRT ---------------------------------------------------------------------------------


def _jpw_lambda(d: float, v: float, tau: float) -> float:
    """Johari et al. (2022) two-stream normal mSPRT, written with n per arm and 2σ²/n = V."""
    return math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * d**2 / (2 * v * (v + tau**2)))


def test_msprt_lambda_is_the_papers_formula() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0, 0.01, 50)
    v = rng.uniform(1e-6, 1e-4, 50)
    tau = rng.uniform(1e-3, 2e-2, 50)
    got = msprt_log_lambda_two_sided(d, v, tau)
    want = [math.log(_jpw_lambda(*x)) for x in zip(d, v, tau, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_msprt_lambda_is_the_mixture_integral() -> None:
    # Λ = ∫ N(d; θ, V)/N(d; 0, V) N(θ; 0, τ²) dθ, by quadrature
    from scipy.integrate import quad

    d, v, tau = 0.004, 2e-6, 0.003
    num = quad(lambda th: stats.norm.pdf(d, th, math.sqrt(v)) * stats.norm.pdf(th, 0, tau), -0.05, 0.05, points=[d])[0]
    assert math.exp(msprt_log_lambda_two_sided(np.array([d]), np.array([v]), np.array([tau]))[0]) == pytest.approx(
        num / stats.norm.pdf(d, 0, math.sqrt(v)), rel=1e-6
    )


def test_confidence_sequence_edge_is_where_lambda_hits_one_over_alpha() -> None:
    v, tau, alpha = np.array([3e-6]), np.array([0.004]), 0.05
    c = critical_value(v, tau, alpha)[0]
    edge = c * math.sqrt(v[0])  # d - theta0 at the edge
    assert math.exp(msprt_log_lambda_two_sided(np.array([edge]), v, tau)[0]) == pytest.approx(1 / alpha, rel=1e-9)


# --- fixed-horizon z test --------------------------------------------------------------------


def test_z_is_statsmodels_wald_statistic() -> None:
    from statsmodels.stats.proportion import test_proportions_2indep

    looks = Looks.proportions([5000, 800], [510, 90], [5100, 900], [580, 70])
    z, ok = z_statistic(looks)
    assert ok.all()
    for i, (na, xa, nb, xb) in enumerate([(5000, 510, 5100, 580), (800, 90, 900, 70)]):
        ref = test_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff")
        assert z[i] == pytest.approx(ref.statistic, rel=1e-9)


def test_mean_difference_variance_is_welch() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 1, 300), rng.lognormal(0.1, 1, 250)
    looks = Looks.means(len(a), a.sum(), (a * a).sum(), len(b), b.sum(), (b * b).sum())
    d, v = difference(looks)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert d[0] / math.sqrt(v[0]) == pytest.approx(ref.statistic, rel=1e-9)


def test_analytic_power_is_statsmodels() -> None:
    from statsmodels.stats.power import normal_power_het

    va, vb, n, delta = 0.1 * 0.9, 0.11 * 0.89, 14_000, 0.011
    sd = math.sqrt(va + vb)
    ref = normal_power_het(delta, n, 0.05, std_null=sd, std_alternative=sd, alternative="two-sided")
    assert analytic_power(delta, va, vb, n, 0.05) == pytest.approx(ref, rel=1e-9)


def test_lift_interval_is_the_delta_method() -> None:
    looks = Looks.proportions([10_000], [1000], [10_000], [1100])
    lift, lo, hi = lift_interval(looks, 1.96)
    ma, mb = 0.1, 0.11
    se = math.sqrt(mb * (1 - mb) / 1e4 + (mb / ma) ** 2 * ma * (1 - ma) / 1e4) / ma
    assert lift[0] == pytest.approx(0.1)
    assert (lo[0], hi[0]) == pytest.approx((0.1 - 1.96 * se, 0.1 + 1.96 * se))


# --- Bayes -----------------------------------------------------------------------------------


def _miller_exact(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """P(p_B > p_A), Evan Miller (2015) eq. 1, exact for integer a_B."""
    total = 0.0
    for i in range(a_b):
        total += math.exp(betaln(a_a + i, b_a + b_b) - math.log(b_b + i) - betaln(1 + i, b_b) - betaln(a_a, b_a))
    return total


@pytest.mark.parametrize(
    "params", [(1, 1, 1, 1), (11, 91, 16, 86), (101, 1901, 131, 1871), (31, 971, 30, 20_000), (3, 5, 400, 50)]
)
def test_chance_to_beat_is_exact(params: tuple[int, int, int, int]) -> None:
    a_a, b_a, a_b, b_b = params
    got = prob_greater(np.array([a_a]), np.array([b_a]), np.array([a_b]), np.array([b_b]))[0]
    assert got == pytest.approx(_miller_exact(a_a, b_a, a_b, b_b), abs=1e-7)


def test_expected_loss_against_quadrature() -> None:
    from scipy.integrate import dblquad

    a_a, b_a, a_b, b_b = 21.0, 181.0, 26.0, 176.0
    _, loss_b, loss_a = beta_chance_and_losses(*(np.array([x]) for x in (a_a, b_a, a_b, b_b)))
    fa, fb = stats.beta(a_a, b_a).pdf, stats.beta(a_b, b_b).pdf
    # E[max(p_A - p_B, 0)] = ∫∫_{pa > pb} (pa - pb) f_A f_B
    ref_b = dblquad(lambda pb, pa: (pa - pb) * fa(pa) * fb(pb), 0, 0.4, 0, lambda pa: pa)[0]
    ref_a = dblquad(lambda pa, pb: (pb - pa) * fa(pa) * fb(pb), 0, 0.4, 0, lambda pb: pb)[0]
    assert loss_b[0] == pytest.approx(ref_b, abs=1e-7)
    assert loss_a[0] == pytest.approx(ref_a, abs=1e-7)


def test_normal_losses_against_quadrature() -> None:
    from scipy.integrate import quad

    d, v = np.array([0.3]), np.array([0.04])
    chance, loss_b, loss_a = normal_chance_and_losses(d, v)
    f = stats.norm(0.3, 0.2).pdf
    assert chance[0] == pytest.approx(stats.norm.sf(0, 0.3, 0.2))
    assert loss_b[0] == pytest.approx(quad(lambda x: -x * f(x), -3, 0)[0], abs=1e-9)
    assert loss_a[0] == pytest.approx(quad(lambda x: x * f(x), 0, 3)[0], abs=1e-9)


# --- SRM ---------------------------------------------------------------------------------------


def test_srm_is_scipy_chisquare() -> None:
    na, nb = np.array([5000, 49_000, 300]), np.array([5100, 51_000, 700])
    p, _ = srm_check(na, nb, 0.5)
    for i in range(3):
        assert p[i] == pytest.approx(stats.chisquare([na[i], nb[i]]).pvalue, rel=1e-9)
    p, _ = srm_check([700], [300], 0.3)
    assert p[0] == pytest.approx(stats.chisquare([700, 300], [700, 300]).pvalue)


def test_srm_flags_49_51_at_100k_not_50_50() -> None:
    p, flagged = srm_check([49_000, 50_000, 0], [51_000, 50_000, 0], 0.5)
    assert flagged.tolist() == [True, False, False]
    assert p[0] < 1e-8 and p[1] == 1.0 and p[2] == 1.0


def test_srm_rejects_bad_share() -> None:
    with pytest.raises(ValueError, match="share"):
        srm_check([1], [1], 1.0)


# --- specs -----------------------------------------------------------------------------------


def test_spec_of_the_issue_builds_each_rule() -> None:
    adapter: TypeAdapter = TypeAdapter(ExperimentTestSpec)
    assert make_test(adapter.validate_python({"kind": "sequential", "alpha": 0.05})).kind == "sequential"
    assert make_test(adapter.validate_python({"kind": "fixed", "sample_size": 1000, "peek": True})).kind == "fixed"
    gs = adapter.validate_python({"kind": "group-sequential", "looks": 5, "spending": "pocock"})
    assert make_test(gs).kind == "group-sequential"
    assert make_test(adapter.validate_python({"kind": "bayes", "expected_loss": None})).kind == "bayes"


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "sequential", "alpha": 0.7},
        {"kind": "fixed"},
        {"kind": "sequential", "tua": 0.1},
        {"kind": "bayes", "chance_to_beat": None, "expected_loss": None},
        {"kind": "group-sequential", "looks": 0},
        {"kind": "wald"},
    ],
)
def test_spec_refuses(bad: dict) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(ExperimentTestSpec).validate_python(bad)


def test_early_final_look_spends_all_alpha_left() -> None:
    from sim.policies.experiment import GroupSequentialTestSpec
    from sim.policies.experiment.group_sequential import GroupSequentialTest

    test = GroupSequentialTest(GroupSequentialTestSpec(kind="group-sequential", looks=10))
    k = 6  # the 7th look is the last (max duration came early)
    c = np.append(test.plan.boundaries[:k], test.boundary(k, final=True))
    assert c[-1] < test.plan.boundaries[k]
    assert exit_probabilities(c, np.arange(1, k + 2) / 10).sum() == pytest.approx(0.05, abs=1e-6)
    assert math.isinf(test.boundary(10, final=False))  # past the plan: nothing left to spend
