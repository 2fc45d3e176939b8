"""Release faults: error probability and latency of both versions over time.

``ReleaseModel.error_probs(mid)`` evaluates each traffic segment at its midpoint and
returns ``(primary, canary)`` of shape (runs|1, segments|1, cohorts). The rules under
test are those of ``sim/world/faults.py``'s docstring:

* ``error_rate``: ``rate`` raises the probability to at least ``rate``; ``factor``
  multiplies it; several error-rate faults: the worst wins;
* ``leak`` and ``load``: independent extra causes of failure, 1 − (1−p)(1−x);
* ``latency``: transforms applied in file order;
* ``target: both`` acts on the primary; the canary starts from the primary's state.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from sim.inputs.scenario import Scenario
from sim.world.faults import ReleaseModel
from sim.world.service import LatencyDist

BASE = 0.001
COHORTS = [{"name": "android", "share": 0.3}, {"name": "beta", "share": 0.1}]
ANDROID, BETA = 1, 2


def model(*faults: dict, cohorts: list | None = None, baseline_error: float = BASE) -> ReleaseModel:
    return ReleaseModel(
        Scenario.model_validate(
            {
                "name": "faults",
                "traffic": {"rate": 100, "cohorts": COHORTS if cohorts is None else cohorts},
                "baseline": {"error_rate": baseline_error, "latency": {"median": "40ms", "p99": "250ms"}},
                "release": {"faults": list(faults)},
            }
        )
    )


def probs(m: ReleaseModel, *t: float, canary_rate=None) -> tuple[np.ndarray, np.ndarray]:
    """(primary, canary) broadcast to (runs, len(t), cohorts)."""
    mid = np.array(t, dtype=float)
    p, c = m.error_probs(mid, canary_rate)
    runs = 1 if canary_rate is None else np.asarray(canary_rate).shape[0]
    shape = (runs, len(mid), m.n_cohorts)
    return np.broadcast_to(p, shape), np.broadcast_to(c, shape)


def canary_at(m: ReleaseModel, *t: float, cohort: int = 0) -> list[float]:
    return probs(m, *t)[1][0, :, cohort].tolist()


# --- a good release ---------------------------------------------------------------------


def test_a_good_release_behaves_as_the_baseline_everywhere():
    m = model()
    assert m.static
    p, c = probs(m, 0.0, 100.0, 1e6)
    np.testing.assert_array_equal(p, BASE)
    np.testing.assert_array_equal(c, BASE)
    assert m.onset_s() is None
    assert not m.never_ready
    assert len(m.change_points(0.0, 1e6)) == 0


# --- error_rate ----------------------------------------------------------------------------


def test_error_rate_from_onset_on():
    m = model({"kind": "error_rate", "rate": 0.05, "onset": "10m"})
    assert canary_at(m, 0.0, 599.0, 600.0, 601.0, 7000.0) == pytest.approx([BASE, BASE, 0.05, 0.05, 0.05])
    # The primary is untouched by the canary's own fault.
    np.testing.assert_array_equal(probs(m, 0.0, 700.0)[0], BASE)


def test_error_rate_within_its_duration_only():
    """Active on [onset, onset + duration)."""
    m = model({"kind": "error_rate", "rate": 0.2, "onset": 100, "duration": 50})
    assert canary_at(m, 99.9, 100.0, 149.9, 150.0, 200.0) == pytest.approx([BASE, 0.2, 0.2, BASE, BASE])


def test_error_rate_rate_never_lowers_the_probability():
    m = model({"kind": "error_rate", "rate": 0.0001}, baseline_error=0.01)
    assert canary_at(m, 10.0) == pytest.approx([0.01])


def test_error_rate_factor_multiplies_the_baseline_and_caps_at_one():
    assert canary_at(model({"kind": "error_rate", "factor": 20}), 5.0) == pytest.approx([0.02])
    assert canary_at(model({"kind": "error_rate", "factor": 0.5}), 5.0) == pytest.approx([0.0005])
    assert canary_at(model({"kind": "error_rate", "factor": 50}, baseline_error=0.1), 5.0) == [1.0]


def test_intermittent_fault_follows_its_duty_cycle():
    """On for the first duty × period of every period after onset: [100, 130), [200, 230), ..."""
    m = model({"kind": "error_rate", "rate": 0.3, "onset": 100, "intermittent": {"period": 100, "duty": 0.3}})
    t = [99.9, 100.0, 129.9, 130.0, 199.9, 200.0, 229.9, 230.0, 1015.0, 1035.0]
    want = [BASE, 0.3, 0.3, BASE, BASE, 0.3, 0.3, BASE, 0.3, BASE]
    assert canary_at(m, *t) == pytest.approx(want)


def test_intermittent_fault_stops_at_the_end_of_its_duration():
    m = model(
        {"kind": "error_rate", "rate": 0.3, "onset": 0, "duration": 250, "intermittent": {"period": 100, "duty": 0.5}}
    )
    assert canary_at(m, 10.0, 60.0, 210.0, 310.0, 410.0) == pytest.approx([0.3, BASE, 0.3, BASE, BASE])


def test_cohort_fault_leaves_other_cohorts_untouched():
    m = model({"kind": "error_rate", "rate": 0.4, "cohort": "android"})
    p, c = probs(m, 30.0, 3000.0)
    np.testing.assert_array_equal(p, BASE)
    np.testing.assert_allclose(c[0, :, ANDROID], 0.4)
    np.testing.assert_array_equal(c[0, :, 0], BASE)
    np.testing.assert_array_equal(c[0, :, BETA], BASE)


def test_target_both_hits_the_primary_and_the_canary_alike():
    m = model({"kind": "error_rate", "rate": 0.2, "onset": 60, "target": "both"})
    p, c = probs(m, 30.0, 90.0)
    np.testing.assert_allclose(p[0, :, 0], [BASE, 0.2])
    np.testing.assert_allclose(c, p)


def test_canary_starts_from_the_primarys_state():
    """A common-mode incident at 20% plus the release's own ×2: the canary fails 40%."""
    m = model({"kind": "error_rate", "rate": 0.2, "target": "both"}, {"kind": "error_rate", "factor": 2})
    p, c = probs(m, 10.0)
    assert p[0, 0, 0] == pytest.approx(0.2)
    assert c[0, 0, 0] == pytest.approx(0.4)


def test_several_error_rate_rates_the_worst_wins():
    m = model(
        {"kind": "error_rate", "rate": 0.05}, {"kind": "error_rate", "rate": 0.1}, {"kind": "error_rate", "rate": 0.02}
    )
    assert canary_at(m, 10.0) == pytest.approx([0.1])


@pytest.mark.parametrize("order", ["rate-first", "factor-first"])
def test_rate_and_factor_faults_the_worst_wins_whatever_the_file_order(order):
    """Docstring: "Several error-rate faults: the worst wins." Rate 5% against factor 3 on
    a 0.1% baseline (0.3%): the worst is 5%, in either file order."""
    rate, factor = {"kind": "error_rate", "rate": 0.05}, {"kind": "error_rate", "factor": 3}
    m = model(*((rate, factor) if order == "rate-first" else (factor, rate)))
    assert canary_at(m, 10.0) == pytest.approx([0.05])


def test_several_factor_faults_the_worst_wins():
    """Factors 2 and 3 on a 0.1% baseline: the worst is 0.3% (not 0.6%)."""
    m = model({"kind": "error_rate", "factor": 2}, {"kind": "error_rate", "factor": 3})
    assert canary_at(m, 10.0) == pytest.approx([0.003])


def test_overlapping_faults_of_different_cohorts_and_times():
    m = model(
        {"kind": "error_rate", "rate": 0.1, "onset": 100, "cohort": "beta"},
        {"kind": "error_rate", "rate": 0.05, "onset": 200},
    )
    c = probs(m, 50.0, 150.0, 250.0)[1][0]
    np.testing.assert_allclose(c[:, 0], [BASE, BASE, 0.05])
    np.testing.assert_allclose(c[:, ANDROID], [BASE, BASE, 0.05])
    np.testing.assert_allclose(c[:, BETA], [BASE, 0.1, 0.1])


# --- leak --------------------------------------------------------------------------------


def leak_p(t: np.ndarray, onset: float, per_hour: float, cap: float) -> np.ndarray:
    x = np.minimum(cap, per_hour * np.maximum(t - onset, 0.0) / 3600.0)
    return np.where(t >= onset, 1.0 - (1.0 - BASE) * (1.0 - x), BASE)


def test_leak_grows_linearly_since_onset_and_caps_at_max():
    m = model({"kind": "leak", "per_hour": 0.06, "max": 0.03, "onset": "10m"})
    t = np.array([0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0, 9000.0])
    extra = np.array([0.0, 0.0, 0.01, 0.02, 0.03, 0.03, 0.03])
    np.testing.assert_allclose(canary_at(m, *t), 1.0 - (1.0 - BASE) * (1.0 - extra))


def test_leak_combines_with_an_error_rate_as_an_independent_cause():
    m = model({"kind": "error_rate", "rate": 0.1}, {"kind": "leak", "per_hour": 0.2, "max": 1.0})
    assert canary_at(m, 1800.0) == pytest.approx([1.0 - 0.9 * 0.9])


def test_leak_value_at_a_segment_midpoint_is_its_average_over_the_segment():
    onset, per_hour, cap = 300.0, 0.12, 0.5
    m = model({"kind": "leak", "per_hour": per_hour, "max": cap, "onset": onset})
    for a, b in [(300.0, 315.0), (400.0, 1000.0), (1234.0, 4321.0)]:
        avg = quad(lambda s: float(leak_p(np.array(s), onset, per_hour, cap)), a, b)[0] / (b - a)
        assert canary_at(m, 0.5 * (a + b)) == pytest.approx([avg], rel=1e-12)


def segment_average_error(m: ReleaseModel, t0: float, t1: float) -> float:
    """What the fast path uses for (t0, t1): cut at change points, midpoint values,
    weighted by segment length."""
    b = np.concatenate([[t0], m.change_points(t0, t1), [t1]])
    c = probs(m, *(0.5 * (b[1:] + b[:-1])))[1][0, :, 0]
    return float((c * np.diff(b)).sum() / (t1 - t0))


def test_cutting_at_change_points_makes_segment_averages_exact_across_the_leak_cap():
    """The fast path stays exact only if no segment straddles a kink of the error
    probability. A leak of 0.6/h capped at 0.05 reaches its cap 300 s after onset, a kink
    inside a 60 s tick (270, 330) unless it is a change point."""
    onset, per_hour, cap = 0.0, 0.6, 0.05
    m = model({"kind": "leak", "per_hour": per_hour, "max": cap, "onset": onset})
    t0, t1 = 270.0, 330.0
    exact = quad(lambda s: float(leak_p(np.array(s), onset, per_hour, cap)), t0, t1, points=[300.0])[0] / 60.0
    assert segment_average_error(m, t0, t1) == pytest.approx(exact, rel=1e-9)


def test_cutting_at_change_points_makes_segment_averages_exact_for_steps_and_flaps():
    m = model(
        {
            "kind": "error_rate",
            "rate": 0.3,
            "onset": 100,
            "duration": 1000,
            "intermittent": {"period": 90, "duty": 0.4},
        },
        {"kind": "error_rate", "rate": 0.1, "onset": 250},
    )
    t0, t1 = 50.0, 1300.0

    def p(s: float) -> float:
        return canary_at(m, s)[0]

    pts = [x for x in m.change_points(t0, t1)]
    exact = quad(p, t0, t1, points=pts, limit=500)[0] / (t1 - t0)
    assert segment_average_error(m, t0, t1) == pytest.approx(exact, rel=1e-6)


# --- load --------------------------------------------------------------------------------


def test_load_fault_is_zero_below_capacity_and_sheds_the_excess_above():
    """Two runs: one at 40/s, one at 200/s against a capacity of 100/s (shed 50%)."""
    m = model({"kind": "load", "capacity": "100/s"})
    rate = np.array([[40.0, 100.0], [200.0, 400.0]])
    p, c = probs(m, 10.0, 20.0, canary_rate=rate)
    np.testing.assert_array_equal(p, BASE)
    np.testing.assert_allclose(c[0, :, 0], [BASE, BASE])  # at capacity is not above it
    np.testing.assert_allclose(c[1, :, 0], [1.0 - (1.0 - BASE) * 0.5, 1.0 - (1.0 - BASE) * 0.25])


def test_load_fault_with_a_rate_fails_that_share_above_capacity():
    m = model({"kind": "load", "capacity": 50, "rate": 0.2})
    p, c = probs(m, 10.0, canary_rate=np.array([[49.0], [51.0]]))
    assert c[0, 0, 0] == pytest.approx(BASE)
    assert c[1, 0, 0] == pytest.approx(1.0 - (1.0 - BASE) * 0.8)


def test_load_fault_without_a_canary_rate_does_nothing():
    m = model({"kind": "load", "capacity": 1})
    np.testing.assert_allclose(probs(m, 10.0)[1], BASE, rtol=1e-12)


def test_load_fault_respects_onset_and_cohort():
    m = model({"kind": "load", "capacity": 10, "rate": 0.5, "onset": 100, "cohort": "android"})
    c = probs(m, 50.0, 150.0, canary_rate=np.array([[20.0, 20.0]]))[1][0]
    np.testing.assert_allclose(c[:, ANDROID], [BASE, 1.0 - (1.0 - BASE) * 0.5])
    np.testing.assert_array_equal(c[:, 0], BASE)
    np.testing.assert_array_equal(c[:, BETA], BASE)


# --- latency -------------------------------------------------------------------------------

BASE_LAT = LatencyDist.from_quantiles(40.0, 250.0)


def test_latency_faults_transform_the_canarys_distribution():
    m = model({"kind": "latency", "shift": "100ms", "onset": 60})
    assert m.has_latency_faults
    assert m.latency(30.0, 0) == (BASE_LAT, BASE_LAT)
    assert m.latency(90.0, 0) == (BASE_LAT, BASE_LAT.shifted(100.0))
    assert model({"kind": "latency", "factor": 3}).latency(0.0, 0)[1] == BASE_LAT.scaled(3.0)
    assert model({"kind": "latency", "p99": "2s"}).latency(0.0, 0)[1] == BASE_LAT.with_p99(2000.0)


def test_latency_faults_apply_in_file_order():
    shift_then_scale = model({"kind": "latency", "shift": 10}, {"kind": "latency", "factor": 2})
    scale_then_shift = model({"kind": "latency", "factor": 2}, {"kind": "latency", "shift": 10})
    assert shift_then_scale.latency(0.0, 0)[1] == BASE_LAT.shifted(10.0).scaled(2.0)
    assert scale_then_shift.latency(0.0, 0)[1] == BASE_LAT.scaled(2.0).shifted(10.0)
    assert shift_then_scale.latency(0.0, 0)[1].quantile(0.5) == pytest.approx(100.0)
    assert scale_then_shift.latency(0.0, 0)[1].quantile(0.5) == pytest.approx(90.0)


def test_latency_fault_of_one_cohort_and_target_both():
    m = model({"kind": "latency", "shift": 50, "target": "both"}, {"kind": "latency", "factor": 2, "cohort": "beta"})
    both = BASE_LAT.shifted(50.0)
    assert m.latency(0.0, 0) == (both, both)
    assert m.latency(0.0, BETA) == (both, both.scaled(2.0))


def test_latency_faults_do_not_change_error_probabilities():
    m = model({"kind": "latency", "shift": 500})
    p, c = probs(m, 10.0)
    np.testing.assert_array_equal(p, BASE)
    np.testing.assert_array_equal(c, BASE)


# --- change points, onset, readiness -------------------------------------------------------


def test_change_points_are_onsets_ends_and_flap_edges_strictly_inside():
    m = model(
        {"kind": "error_rate", "rate": 0.1, "onset": 100, "duration": 200},
        {"kind": "latency", "shift": 5, "onset": 500},
        {"kind": "leak", "per_hour": 0.1, "onset": 0},
        {"kind": "error_rate", "rate": 0.5, "onset": 1000, "intermittent": {"period": 60, "duty": 0.25}},
    )
    np.testing.assert_allclose(m.change_points(0.0, 1100.0), [100.0, 300.0, 500.0, 1000.0, 1015.0, 1060.0, 1075.0])
    # Strictly inside: edges at the window's ends are not listed.
    np.testing.assert_allclose(m.change_points(100.0, 500.0), [300.0])
    np.testing.assert_allclose(m.change_points(1015.0, 1075.0), [1060.0])
    assert len(m.change_points(310.0, 490.0)) == 0


def test_flap_edges_far_from_onset():
    m = model({"kind": "error_rate", "rate": 0.5, "onset": 7, "intermittent": {"period": 100, "duty": 0.5}})
    np.testing.assert_allclose(m.change_points(5000.0, 5200.0), [5007.0, 5057.0, 5107.0, 5157.0])


def test_onset_is_the_earliest_canary_fault():
    m = model(
        {"kind": "error_rate", "rate": 0.1, "onset": 900},
        {"kind": "latency", "shift": 5, "onset": 300},
        {"kind": "error_rate", "rate": 0.5, "onset": 10, "target": "both"},
    )
    assert m.onset_s() == 300.0


def test_onset_is_none_for_a_common_mode_incident_alone():
    m = model({"kind": "error_rate", "rate": 0.5, "target": "both"})
    assert m.onset_s() is None
    assert not m.static


def test_never_ready_only_for_the_canarys_own_crash_loop():
    assert model({"kind": "never_ready"}).never_ready
    assert model({"kind": "never_ready"}).onset_s() == 0.0
    assert not model({"kind": "never_ready", "target": "both"}).never_ready
    # A crash loop serves nothing: it does not change error probabilities.
    np.testing.assert_array_equal(probs(model({"kind": "never_ready"}), 10.0)[1], BASE)


def test_a_load_fault_on_both_loads_each_version_by_its_own_traffic():
    """Issue 15's bug: ``target: both`` used the canary's rate for the primary too. At a 10%
    canary of 100 requests/s, the primary (90/s) is over a 60/s capacity and sheds the
    excess; the canary (10/s) is not."""
    m = model({"kind": "load", "capacity": "60/s", "target": "both"})
    p, c = m.error_probs(np.array([1.0]), np.array([[10.0]]), np.array([[90.0]]))
    shed = 1 - 60 / 90
    assert p[0, 0, 0] == pytest.approx(1 - (1 - BASE) * (1 - shed))
    assert c[0, 0, 0] == pytest.approx(BASE)
    # The canary's own overload counts only on the canary.
    p, c = m.error_probs(np.array([1.0]), np.array([[90.0]]), np.array([[10.0]]))
    assert p[0, 0, 0] == pytest.approx(BASE) and c[0, 0, 0] == pytest.approx(1 - (1 - BASE) * (1 - shed))
