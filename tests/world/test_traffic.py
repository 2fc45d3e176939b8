"""Arrivals and users: the rate function λ(t), its closed-form integral Λ(t), and the
Zipf population split into activity tiers and cohorts.

Λ(t) is what the fast path draws request counts from (Poisson with mean Λ(t₁) − Λ(t₀)),
so it must be the integral of λ — checked against numerical quadrature of ``rate()``,
piece by piece between the profile's change points (quad is only reliable on smooth
pieces).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from sim.inputs.scenario import RateProfile, Traffic
from sim.world.traffic import RateFunction, build_population

T_GRID = [0.0, 1.0, 59.5, 300.0, 1234.5, 3600.0, 5000.0, 7200.0]


def profile(d: dict) -> RateFunction:
    return RateFunction(RateProfile.model_validate(d))


def integral(rf: RateFunction, t: float) -> float:
    """∫₀ᵗ λ by quadrature, split at the change points where λ jumps."""
    cuts = [0.0] + [c for c in rf.change_points() if 0.0 < c < t] + [t]
    return sum(quad(lambda s: float(rf.rate(s)), a, b, limit=200)[0] for a, b in zip(cuts, cuts[1:]) if b > a)


PROFILES = {
    "constant": {"constant": 37.5},
    "diurnal": {"diurnal": {"mean": 100.0, "amplitude": 0.6, "period": 3600.0, "phase": 0.0}},
    "diurnal-phase": {"diurnal": {"mean": 80.0, "amplitude": 0.9, "period": 1800.0, "phase": 400.0}},
    "steps": {"steps": [{"at": 0, "rate": 10.0}, {"at": 300, "rate": 50.0}, {"at": 1000, "rate": 2.5}]},
    "diurnal-bursts": {
        "diurnal": {"mean": 60.0, "amplitude": 0.5, "period": 2400.0, "phase": 100.0},
        "bursts": [{"at": 200, "duration": 400, "factor": 3.0}, {"at": 3000, "duration": 900, "factor": 0.25}],
    },
    "steps-bursts": {
        "steps": [{"at": 0, "rate": 20.0}, {"at": 500, "rate": 5.0}],
        "bursts": [{"at": 400, "duration": 200, "factor": 2.0}, {"at": 700, "duration": 300, "factor": 4.0}],
    },
}

#: Two bursts overlapping in [600, 700): the rate there is base × 2 × 4.
OVERLAPPING = {
    "steps": [{"at": 0, "rate": 20.0}, {"at": 500, "rate": 5.0}],
    "bursts": [{"at": 400, "duration": 300, "factor": 2.0}, {"at": 600, "duration": 300, "factor": 4.0}],
}


# --- Λ(t) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROFILES)
def test_cumulative_equals_the_integral_of_the_rate(name):
    rf = profile(PROFILES[name])
    got = rf.cumulative(np.array(T_GRID))
    want = np.array([integral(rf, t) for t in T_GRID])
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", PROFILES)
def test_cumulative_starts_at_zero_and_never_decreases(name):
    rf = profile(PROFILES[name])
    assert float(rf.cumulative(0.0)) == pytest.approx(0.0, abs=1e-9)
    c = rf.cumulative(np.linspace(0.0, 7200.0, 2001))
    assert np.all(np.diff(c) >= -1e-9)


def test_cumulative_accepts_scalars_and_arrays_alike():
    rf = profile(PROFILES["diurnal-bursts"])
    arr = rf.cumulative(np.array([250.0, 3100.0]))
    assert float(rf.cumulative(250.0)) == pytest.approx(arr[0])
    assert float(rf.cumulative(3100.0)) == pytest.approx(arr[1])


def test_constant_cumulative_is_rate_times_time():
    rf = profile({"constant": 12.0})
    np.testing.assert_allclose(rf.cumulative(np.array(T_GRID)), 12.0 * np.array(T_GRID))


def test_steps_cumulative_by_hand():
    """10/s for 300 s, 50/s for 700 s, then 2.5/s."""
    rf = profile(PROFILES["steps"])
    assert float(rf.cumulative(300.0)) == pytest.approx(3000.0)
    assert float(rf.cumulative(1000.0)) == pytest.approx(3000.0 + 35000.0)
    assert float(rf.cumulative(1400.0)) == pytest.approx(38000.0 + 1000.0)


def test_cumulative_of_overlapping_bursts_integrates_their_product():
    """Bursts multiply the rate (``Burst``: "Multiply the rate by factor"), and ``rate()``
    multiplies overlapping bursts, so Λ must integrate the product: by t = 1000,
    20×400 + 40×100 + 10×100 + 40×100 + 20×200 + 5×100 = 21500."""
    rf = profile(OVERLAPPING)
    assert float(rf.rate(650.0)) == pytest.approx(40.0)
    assert float(rf.cumulative(1000.0)) == pytest.approx(integral(rf, 1000.0))
    assert float(rf.cumulative(1000.0)) == pytest.approx(21500.0)


def test_a_burst_adds_factor_minus_one_times_the_base_inside_it():
    """Constant 10/s with ×3 over [100, 200): 1000 + 2 × 10 × 100 extra by t = 300."""
    rf = profile({"constant": 10.0, "bursts": [{"at": 100, "duration": 100, "factor": 3.0}]})
    assert float(rf.cumulative(100.0)) == pytest.approx(1000.0)
    assert float(rf.cumulative(150.0)) == pytest.approx(1500.0 + 1000.0)
    assert float(rf.cumulative(300.0)) == pytest.approx(3000.0 + 2000.0)


# --- λ(t) -----------------------------------------------------------------------------------


def test_diurnal_rate_matches_its_definition():
    """mean × (1 + amplitude × sin(2π (t + phase) / period))."""
    d = PROFILES["diurnal-phase"]["diurnal"]
    rf = profile(PROFILES["diurnal-phase"])
    t = np.linspace(0.0, 5000.0, 101)
    want = d["mean"] * (1.0 + d["amplitude"] * np.sin(2.0 * np.pi * (t + d["phase"]) / d["period"]))
    np.testing.assert_allclose(rf.rate(t), want)
    # Phase shifts the curve left: λ(t) with phase φ is λ(t + φ) without.
    no_phase = profile({"diurnal": {**d, "phase": 0.0}})
    np.testing.assert_allclose(rf.rate(t), no_phase.rate(t + d["phase"]))


def test_constant_rate_is_constant():
    rf = profile({"constant": 7.0})
    np.testing.assert_array_equal(rf.rate(np.array([0.0, 10.0, 1e5])), [7.0, 7.0, 7.0])


def test_steps_rate_takes_effect_at_each_step_inclusive():
    rf = profile(PROFILES["steps"])
    t = np.array([0.0, 299.999, 300.0, 999.0, 1000.0, 99999.0])
    np.testing.assert_array_equal(rf.rate(t), [10.0, 10.0, 50.0, 50.0, 2.5, 2.5])


def test_burst_multiplies_rate_on_half_open_interval():
    """A burst covers [at, at + duration)."""
    rf = profile({"constant": 10.0, "bursts": [{"at": 100, "duration": 50, "factor": 4.0}]})
    t = np.array([99.9, 100.0, 149.9, 150.0])
    np.testing.assert_allclose(rf.rate(t), [10.0, 40.0, 40.0, 10.0])


def test_overlapping_bursts_multiply():
    rf = profile(OVERLAPPING)
    # 400-500: 20 × 2; 500-600: 5 × 2; 600-700: 5 × 2 × 4; 700-900: 5 × 4.
    t = np.array([450.0, 550.0, 650.0, 800.0, 950.0])
    np.testing.assert_allclose(rf.rate(t), [40.0, 10.0, 40.0, 20.0, 5.0])


@pytest.mark.parametrize("name", PROFILES)
def test_max_rate_bounds_the_rate(name):
    rf = profile(PROFILES[name])
    t = np.linspace(0.0, 7200.0, 14401)
    assert np.all(rf.rate(t) <= rf.max_rate(0.0, 7200.0) * (1 + 1e-12))


def test_max_rate_of_a_constant_is_the_constant():
    assert profile({"constant": 5.0}).max_rate(0.0, 100.0) == pytest.approx(5.0)


# --- change points --------------------------------------------------------------------------


def test_change_points_list_burst_edges_and_steps():
    assert profile(OVERLAPPING).change_points() == [400.0, 500.0, 600.0, 700.0, 900.0]
    assert profile(PROFILES["steps-bursts"]).change_points() == [400.0, 500.0, 600.0, 700.0, 1000.0]


def test_change_points_exclude_the_first_step_at_zero():
    assert profile(PROFILES["steps"]).change_points() == [300.0, 1000.0]


def test_smooth_profiles_have_no_change_points():
    assert profile(PROFILES["constant"]).change_points() == []
    assert profile(PROFILES["diurnal-phase"]).change_points() == []
    assert profile(PROFILES["diurnal-bursts"]).change_points() == [200.0, 600.0, 3000.0, 3900.0]


@pytest.mark.parametrize("name", PROFILES)
def test_rate_is_continuous_away_from_change_points(name):
    rf = profile(PROFILES[name])
    cps = np.array(rf.change_points())
    t = np.linspace(1.0, 7000.0, 3001)
    if len(cps):
        t = t[np.min(np.abs(t[:, None] - cps[None, :]), axis=1) > 1e-3]
    jumps = np.abs(rf.rate(t + 1e-4) - rf.rate(t))
    assert jumps.max() < 1e-2


# --- population -----------------------------------------------------------------------------


def traffic(**kw) -> Traffic:
    return Traffic.model_validate({"rate": 10, **kw})


COHORTS = [{"name": "android", "share": 0.3}, {"name": "beta", "share": 0.05}]


@pytest.mark.parametrize("users", [1, 2, 7, 100, 20000, 123457])
@pytest.mark.parametrize("skew", [0.0, 1.0, 2.5])
def test_population_has_exactly_the_configured_users(users, skew):
    pop = build_population(traffic(users=users, skew=skew, cohorts=COHORTS))
    assert pop.total_users == users
    assert np.all(pop.users > 0)


@pytest.mark.parametrize("users", [1, 7, 20000])
@pytest.mark.parametrize("skew", [0.0, 1.2])
def test_every_users_weight_sums_to_one(users, skew):
    pop = build_population(traffic(users=users, skew=skew, cohorts=COHORTS))
    assert float((pop.users * pop.weight).sum()) == pytest.approx(1.0)
    assert float(pop.cohort_share.sum()) == pytest.approx(1.0)


def rounding_bound(pop) -> tuple[float, float]:
    """Largest-remainder rounding puts each cohort within one user of its quota in every
    tier: at most (tiers) users, and at most Σ per-user weight of the tiers of traffic."""
    tiers = np.unique(pop.weight, return_counts=False)
    return float(len(tiers)), float(tiers.sum())


@pytest.mark.parametrize("users", [1000, 50000])
@pytest.mark.parametrize("skew", [0.0, 1.0, 2.0])
def test_cohort_shares_follow_the_configured_shares_up_to_rounding(users, skew):
    """Cohorts are independent of activity: each cohort's user share, and so its traffic
    share, is the configured share up to the rounding of group sizes in each tier."""
    pop = build_population(traffic(users=users, skew=skew, cohorts=COHORTS))
    want = np.array([0.65, 0.3, 0.05])
    assert pop.n_cohorts == 3
    max_users, max_traffic = rounding_bound(pop)
    user_share = np.bincount(pop.cohort, weights=pop.users, minlength=3) / users
    assert np.all(np.abs(user_share - want) <= max_users / users)
    assert np.all(np.abs(pop.cohort_share - want) <= max_traffic + 1e-12)


def test_cohort_traffic_share_is_close_without_skew():
    pop = build_population(traffic(users=50000, skew=0.0, cohorts=COHORTS))
    np.testing.assert_allclose(pop.cohort_share, [0.65, 0.3, 0.05], atol=24 / 50000)


def test_no_cohorts_gives_one_default_cohort():
    pop = build_population(traffic(users=500))
    assert pop.n_cohorts == 1
    assert set(pop.cohort.tolist()) == {0}
    assert pop.cohort_share[0] == pytest.approx(1.0)


def test_zero_skew_gives_equal_weights():
    pop = build_population(traffic(users=3000, skew=0.0, cohorts=COHORTS))
    np.testing.assert_allclose(pop.weight, 1.0 / 3000)


def test_zipf_weights_decrease_with_rank():
    """Groups are listed tier by tier; a more active tier never has lower per-user weight."""
    pop = build_population(traffic(users=20000, skew=1.0))
    assert np.all(np.diff(pop.weight) <= 0)
    assert pop.weight[0] > pop.weight[-1] * 100


def top_tier_share(skew: float) -> float:
    """Traffic share of the first (most active) tier; without cohorts, group 0."""
    pop = build_population(traffic(users=20000, skew=skew))
    return float(pop.users[0] * pop.weight[0])


def test_higher_skew_concentrates_traffic_in_the_top_tier():
    shares = [top_tier_share(s) for s in (0.0, 0.5, 1.0, 1.5, 2.5)]
    assert all(b > a for a, b in zip(shares, shares[1:]))
    assert shares[0] == pytest.approx(1.0 / 20000)
    assert shares[-1] > 0.5  # rank 1 alone sends most traffic at skew 2.5


def test_groups_of_gives_each_groups_share_of_the_cohorts_traffic():
    pop = build_population(traffic(users=10000, skew=1.0, cohorts=COHORTS))
    for c in range(pop.n_cohorts):
        sizes, p = pop.groups_of(c)
        assert int(sizes.sum()) == int(pop.users[pop.cohort == c].sum())
        assert float(p.sum()) == pytest.approx(1.0)
        np.testing.assert_allclose(p * pop.cohort_share[c], (pop.users * pop.weight)[pop.cohort == c])
