"""The fast traffic path: whole segments of requests drawn as marked-Poisson cells.

With ``noise=False`` every count is its expectation, so the ledger and the telemetry
can be compared with hand-computed values (rate × canary weight × time × probability).
With noise the counts must have the same means and Poisson dispersion, and the number
of random draws must not depend on the request rate.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim.world.fast as fast
from sim.inputs.scenario import Scenario
from sim.policies.base import MetricQuery
from sim.world.controller import prepare
from sim.world.draws import stream_states
from sim.world.fast import FastTraffic
from sim.world.telemetry import CANARY, PRIMARY, Telemetry

BASE = 0.001


def scenario(rate=100, faults=(), cohorts=(), **telemetry) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "fast",
            "horizon": "1h",
            "traffic": {"rate": rate, "users": 5000, "cohorts": list(cohorts)},
            "baseline": {"error_rate": BASE, "latency": {"median": "40ms", "p99": "250ms"}},
            "release": {"faults": list(faults)},
            "telemetry": {"scrape_interval": "15s", **telemetry},
        }
    )


class Routes:
    """The router as the fast path reads it: each run's canary share of every cohort's
    live traffic (a fixed weight here), and no mirroring."""

    def __init__(self, weights: np.ndarray, n_cohorts: int) -> None:
        self.share = np.repeat((np.asarray(weights, dtype=float) / 100.0)[:, None], n_cohorts, axis=1)

    def canary_share(self, runs: np.ndarray) -> np.ndarray:
        return self.share[runs]

    def mirror_share(self, runs: np.ndarray) -> np.ndarray:
        return np.zeros((len(runs), 1))


def traffic(
    sc: Scenario,
    runs: int = 1,
    weight: int = 10,
    noise: bool = False,
    seed: int = 1,
    states=None,
    primary_histogram: bool = False,
    reads_primary: bool = True,
) -> FastTraffic:
    prep = prepare(sc)
    router = Routes(np.full(runs, weight), prep.population.n_cohorts)
    tel = Telemetry(
        runs,
        sc.horizon,
        sc.telemetry.scrape_interval,
        sc.telemetry.lag,
        None,
        sc.telemetry.buckets_ms,
        primary_histogram=primary_histogram,
    )
    tel.reads_primary = reads_primary  # as if a query of the primary were bound
    if states is None:
        states = stream_states([seed * 1000 + r for r in range(runs)], 0)
    return FastTraffic(prep.rate, prep.population, prep.release, router, tel, states, noise=noise)


def canary_dist(sc: Scenario, t: float, cohort: int = 0):
    return prepare(sc).release.latency(t, cohort)[1]


# --- expectations (noise off) ------------------------------------------------------------


def test_canary_requests_are_rate_times_weight_times_time():
    ft = traffic(scenario(rate=100), weight=10)
    ft.advance(np.array([0]), 600.0)
    assert ft.ledger.requests[0].sum() == pytest.approx(100 * 0.10 * 600)


def test_errors_are_requests_times_error_probability():
    sc = scenario(rate=100, faults=[{"kind": "error_rate", "rate": 0.05}])
    ft = traffic(sc, weight=20)
    ft.advance(np.array([0]), 300.0)
    n = 100 * 0.2 * 300
    assert ft.ledger.requests[0].sum() == pytest.approx(n)
    assert ft.ledger.errors[0].sum() == pytest.approx(n * 0.05)
    assert ft.ledger.excess[0].sum() == pytest.approx(n * (0.05 - BASE))


def test_telemetry_slots_hold_each_scrape_intervals_requests():
    """100/s at 10%: 150 canary and 1350 primary requests per 15 s slot."""
    sc = scenario(rate=100, faults=[{"kind": "error_rate", "rate": 0.05}])
    ft = traffic(sc, weight=10)
    ft.advance(np.array([0]), 180.0)
    tel = ft.telemetry
    np.testing.assert_allclose(tel.n[0, 1:13, CANARY], 150.0)
    np.testing.assert_allclose(tel.n[0, 1:13, PRIMARY], 1350.0)
    np.testing.assert_allclose(tel.err[0, 1:13, CANARY], 7.5)
    np.testing.assert_allclose(tel.err[0, 1:13, PRIMARY], 1.35)
    n, err, _ = tel.window(np.array([0]), 180.0, 60.0)[:3]
    assert n[0] == pytest.approx(450.0)
    assert err[0] == pytest.approx(22.5)
    sr = tel.query(MetricQuery("sr", "request-success-rate", 60.0), np.array([0]), 180.0)
    assert sr[0] == pytest.approx(95.0)


def test_advancing_in_pieces_equals_advancing_at_once():
    sc = scenario(
        rate={"steps": [{"at": 0, "rate": 40}, {"at": 107, "rate": 90}]},
        faults=[{"kind": "error_rate", "rate": 0.2, "onset": 50, "duration": 33}],
    )
    whole = traffic(sc)
    whole.advance(np.array([0]), 240.0)
    pieces = traffic(sc)
    for t in (7.0, 60.0, 61.5, 120.0, 240.0):
        pieces.advance(np.array([0]), t)
    np.testing.assert_allclose(pieces.telemetry.n[0, :20], whole.telemetry.n[0, :20])
    np.testing.assert_allclose(pieces.telemetry.err[0, :20], whole.telemetry.err[0, :20])
    np.testing.assert_allclose(pieces.ledger.errors, whole.ledger.errors)


def test_slots_follow_rate_steps_and_fault_edges_inside_a_slot():
    """40/s until 107 s, then 90/s; errors 20% over [50, 83). Slot 8 = (105, 120]:
    2 s at 40/s and 13 s at 90/s; slot 4 = (45, 60]: 10 s of the fault; slot 6 = (75, 90]: 8 s."""
    sc = scenario(
        rate={"steps": [{"at": 0, "rate": 40}, {"at": 107, "rate": 90}]},
        faults=[{"kind": "error_rate", "rate": 0.2, "onset": 50, "duration": 33}],
    )
    ft = traffic(sc, weight=50)
    ft.advance(np.array([0]), 240.0)
    n = ft.telemetry.n[0, :, CANARY]
    assert n[7] == pytest.approx(0.5 * 40 * 15)
    assert n[8] == pytest.approx(0.5 * (40 * 2 + 90 * 13))
    assert n[9] == pytest.approx(0.5 * 90 * 15)
    err = ft.telemetry.err[0, :, CANARY]
    assert err[4] == pytest.approx(0.5 * 40 * (5 * BASE + 10 * 0.2))
    assert err[5] == pytest.approx(0.5 * 40 * 15 * 0.2)
    assert err[6] == pytest.approx(0.5 * 40 * (8 * 0.2 + 7 * BASE))
    assert ft.ledger.requests[0].sum() == pytest.approx(0.5 * (40 * 107 + 90 * 133))


def test_the_primary_is_drawn_only_when_something_reads_it():
    """Nothing reads the primary (no query bound to version primary, no judge): its
    requests are not drawn at all, which changes nothing a policy or record sees."""
    ft = traffic(scenario(rate=100), weight=10, reads_primary=False, noise=True)
    ft.advance(np.array([0]), 600.0)
    assert ft.telemetry.n[0, :, PRIMARY].sum() == 0.0
    assert ft.telemetry.n[0, :, CANARY].sum() > 0


def test_weight_zero_sends_nothing_to_the_canary():
    ft = traffic(scenario(), weight=0)
    ft.advance(np.array([0]), 600.0)
    assert ft.ledger.requests.sum() == 0.0
    assert ft.telemetry.n[0, :, CANARY].sum() == 0.0
    assert ft.telemetry.n[0, :, PRIMARY].sum() == pytest.approx(60000.0)


def test_a_latency_fault_moves_the_histogram_as_bucket_probs_says():
    sc = scenario(rate=100, faults=[{"kind": "latency", "shift": "200ms", "onset": 60}])
    ft = traffic(sc, weight=10)
    ft.advance(np.array([0]), 120.0)
    bounds = tuple(sc.telemetry.buckets_ms)
    hist = ft.telemetry.hist[0]
    before = canary_dist(sc, 30.0).bucket_probs(bounds)
    after = canary_dist(sc, 90.0).bucket_probs(bounds)
    np.testing.assert_allclose(hist[1:5].sum(axis=0), 600.0 * before)
    np.testing.assert_allclose(hist[5:9].sum(axis=0), 600.0 * after)
    assert not np.allclose(before, after)
    p99 = ft.telemetry.query(MetricQuery("d", "request-duration", 60.0), np.array([0]), 120.0)[0]
    assert 250.0 <= p99 <= 500.0  # 40 ms median + 200 ms, tail past 250 ms


def test_primary_histogram_when_asked_follows_the_primarys_latency():
    sc = scenario(rate=100, faults=[{"kind": "latency", "factor": 4}])
    ft = traffic(sc, weight=10, primary_histogram=True)
    ft.advance(np.array([0]), 60.0)
    bounds = tuple(sc.telemetry.buckets_ms)
    primary, canary = prepare(sc).release.latency(30.0, 0)
    np.testing.assert_allclose(ft.telemetry.hist_primary[0, 1:5].sum(axis=0), 5400.0 * primary.bucket_probs(bounds))
    np.testing.assert_allclose(ft.telemetry.hist[0, 1:5].sum(axis=0), 600.0 * canary.bucket_probs(bounds))


def test_cohort_fault_counts_only_that_cohorts_requests():
    sc = scenario(
        rate=100,
        cohorts=[{"name": "android", "share": 0.5}],
        faults=[{"kind": "error_rate", "rate": 0.1, "cohort": "android"}],
    )
    ft = traffic(sc, weight=10)
    ft.advance(np.array([0]), 600.0)
    share = prepare(sc).population.cohort_share
    np.testing.assert_allclose(ft.ledger.requests[0], 6000.0 * share)
    np.testing.assert_allclose(ft.ledger.errors[0], 6000.0 * share * [BASE, 0.1])
    np.testing.assert_allclose(ft.ledger.excess[0], 6000.0 * share * [0.0, 0.1 - BASE])


def test_decided_runs_stop_accounting_but_keep_reporting():
    ft = traffic(scenario(rate=100), runs=2, weight=10)
    ft.advance(np.array([0, 1]), 60.0)
    ft.decided(1)
    ft.advance(np.array([0, 1]), 120.0)
    assert ft.ledger.requests[0].sum() == pytest.approx(1200.0)
    assert ft.ledger.requests[1].sum() == pytest.approx(600.0)
    np.testing.assert_allclose(ft.telemetry.n[0], ft.telemetry.n[1])


def test_after_promotion_damage_is_all_traffic_times_excess_probability():
    sc = scenario(rate=100, faults=[{"kind": "error_rate", "rate": 0.05}])
    ft = traffic(sc)
    ft.after_promotion(0, 600.0, 1800.0)
    assert ft.ledger.after_requests[0].sum() == pytest.approx(180000.0)
    assert ft.ledger.after_excess[0].sum() == pytest.approx(180000.0 * (0.05 - BASE))


def test_load_fault_above_capacity_sheds_the_excess_share():
    """100/s at 50%: 50/s on a canary of capacity 40/s: 20% shed on top of the baseline."""
    sc = scenario(rate=100, faults=[{"kind": "load", "capacity": "40/s"}])
    ft = traffic(sc, weight=50)
    ft.advance(np.array([0]), 60.0)
    n = 3000.0
    p = 1.0 - (1.0 - BASE) * 0.8
    assert ft.ledger.errors[0].sum() == pytest.approx(n * p)
    below = traffic(sc, weight=30)
    below.advance(np.array([0]), 60.0)
    assert below.ledger.errors[0].sum() == pytest.approx(1800.0 * BASE)


# --- excess is relative to the primary ---------------------------------------------------


@pytest.mark.parametrize(
    "faults", [[], [{"kind": "error_rate", "rate": 0.3, "target": "both"}], [{"kind": "latency", "shift": 100}]]
)
def test_no_excess_errors_without_a_canary_error_fault(faults):
    sc = scenario(rate=200, faults=faults)
    ft = traffic(sc, runs=20, weight=50, noise=True)
    ft.advance(np.arange(20), 900.0)
    ft.after_promotion(3, 900.0, 600.0)
    assert ft.ledger.excess.sum() == 0.0
    assert ft.ledger.after_excess.sum() == 0.0
    assert ft.ledger.errors.sum() > 0  # the canary does fail, as the primary would


# --- noise: Poisson cells ------------------------------------------------------------------


def test_noisy_counts_are_poisson_around_the_expectation():
    """Canary requests of 400 runs over 600 s at 1/s × 10%: mean 60, variance 60."""
    runs = 400
    sc = scenario(rate=1, faults=[{"kind": "error_rate", "rate": 0.1, "onset": 200}])
    exp = traffic(sc, weight=10)
    exp.advance(np.array([0]), 600.0)
    noisy = traffic(sc, runs=runs, weight=10, noise=True, seed=2024)
    for t in (60.0, 120.0, 300.0, 600.0):
        noisy.advance(np.arange(runs), t)
    for counts, mean in (
        (noisy.ledger.requests.sum(axis=1), exp.ledger.requests.sum()),
        (noisy.ledger.errors.sum(axis=1), exp.ledger.errors.sum()),
    ):
        assert mean > 0
        assert abs(counts.mean() - mean) < 4.0 * np.sqrt(mean / runs)
        dispersion = counts.var(ddof=1) / mean
        assert abs(dispersion - 1.0) < 4.0 * np.sqrt(2.0 / (runs - 1))
        assert np.all(counts == np.round(counts))


def test_noisy_telemetry_slots_are_poisson_too():
    runs = 300
    sc = scenario(rate=2)
    noisy = traffic(sc, runs=runs, weight=20, noise=True, seed=7)
    noisy.advance(np.arange(runs), 150.0)
    slot = noisy.telemetry.n[:, 1:11, CANARY].ravel()  # 6 expected per slot
    assert abs(slot.mean() - 6.0) < 4.0 * np.sqrt(6.0 / slot.size)
    assert abs(slot.var(ddof=1) / 6.0 - 1.0) < 0.15
    # The canary's histogram counts the very same requests.
    np.testing.assert_array_equal(noisy.telemetry.hist[:, :11].sum(axis=2), noisy.telemetry.n[:, :11, CANARY])


@pytest.mark.parametrize("faults", [[], [{"kind": "error_rate", "rate": 0.05, "onset": 100}]])
def test_number_of_draws_does_not_depend_on_the_rate(faults, monkeypatch):
    shapes: list[list[tuple[int, ...]]] = []
    real = fast.poisson_rows

    def counting(states, rows, mean, out):
        shapes[-1].append(mean.shape)
        return real(states, rows, mean, out)

    monkeypatch.setattr(fast, "poisson_rows", counting)
    for rate in (0.5, 100, 1e6):
        shapes.append([])
        ft = traffic(scenario(rate=rate, faults=faults), weight=10, noise=True)
        for t in (60.0, 120.0, 180.0, 600.0):
            ft.advance(np.array([0]), t)
    assert shapes[0] == shapes[1] == shapes[2]
    assert len(shapes[0]) == 4  # one compiled call per advance


def test_same_seed_same_draws_whatever_the_batch():
    """Run r's counts depend on its own generator only, not on which runs share the batch."""
    sc = scenario(rate=5, faults=[{"kind": "error_rate", "rate": 0.1}])
    big = traffic(sc, runs=5, noise=True, seed=11)
    big.advance(np.arange(5), 300.0)
    alone = traffic(sc, runs=1, noise=True, states=stream_states([11 * 1000 + 3], 0))
    alone.advance(np.array([0]), 300.0)
    np.testing.assert_array_equal(alone.ledger.requests[0], big.ledger.requests[3])
    np.testing.assert_array_equal(alone.telemetry.n[0, :21], big.telemetry.n[3, :21])
