"""The metrics pipeline as Prometheus serves it to a controller.

Counters are scraped at t = k·S; slot k holds the requests of ((k−1)S, kS]. A query
``rate(x[W])`` at time t uses the samples at k·S in (t − W, t] that were ingested by
t − lag and not lost; it needs two of them and covers the requests between the first
and the last, i.e. slots first+1 .. last.

The tests fill slot k of the canary with 2**k requests, so the sum a query reads names
exactly the set of slots it covered.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policies.base import MetricQuery
from sim.world.telemetry import CANARY, PRIMARY, Telemetry, histogram_quantile_rows

S = 15.0
BOUNDS = [10.0, 20.0, 50.0, 100.0]
SLOTS = 40


def slots_sum(first: int, last: int) -> float:
    """Requests of slots first..last (inclusive) under the 2**k filling."""
    return float(sum(2.0**k for k in range(first, last + 1)))


def filled(
    runs: int = 1, lag: float = 0.0, missing: np.ndarray | None = None, scrape: float = S, horizon: float = 600.0
) -> Telemetry:
    """Telemetry with slot k holding 2**k canary requests, k errors, 7 primary requests;
    the canary's histogram puts every request of slot k in bucket k % 5."""
    tel = Telemetry(runs, horizon, scrape, lag, missing, BOUNDS)
    k = np.arange(SLOTS)
    n = np.zeros((runs, SLOTS, 2))
    n[:, :, CANARY] = 2.0**k
    n[:, :, PRIMARY] = 7.0
    err = np.zeros((runs, SLOTS, 2))
    err[:, :, CANARY] = k
    hist = np.zeros((runs, SLOTS, len(BOUNDS) + 1))
    hist[:, k, k % 5] = 2.0**k
    tel.add(np.arange(runs), k, n, err, hist, None, unique=True)
    return tel


def canary_n(tel: Telemetry, t: float, window: float, run: int = 0) -> float:
    return float(tel.window(np.array([run]), t, window)[0][0])


# --- slots -----------------------------------------------------------------------------------


def test_slot_of_a_segment_end_is_the_scrape_that_first_sees_it():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    ends = np.array([0.5, 14.999, 15.0, 15.001, 30.0, 44.0])
    np.testing.assert_array_equal(tel.slot_of(ends), [1, 1, 1, 2, 2, 3])


def test_slots_past_the_horizon_land_in_the_last_slot():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    assert tel.n_slots == 42
    assert int(tel.slot_of(np.array([1e6]))[0]) == tel.n_slots - 1


def test_add_accumulates_several_segments_in_one_slot():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    slots = np.array([3, 3, 4])
    n = np.zeros((1, 3, 2))
    n[0, :, CANARY] = [1.0, 2.0, 4.0]
    tel.add(np.array([0]), slots, n, np.zeros_like(n), np.zeros((1, 3, 5)), None, unique=False)
    assert tel.n[0, 3, CANARY] == 3.0
    assert tel.n[0, 4, CANARY] == 4.0


def test_storage_grows_past_the_first_allocation():
    tel = filled(horizon=7200.0)
    n = np.zeros((1, 1, 2))
    n[0, 0, CANARY] = 5.0
    tel.add(np.array([0]), np.array([300]), n, np.zeros_like(n), np.zeros((1, 1, 5)), None, unique=True)
    assert tel.n[0, 300, CANARY] == 5.0
    assert tel.n[0, 39, CANARY] == 2.0**39  # earlier slots survive the reallocation


# --- range selection ---------------------------------------------------------------------


def test_window_60s_at_180s_covers_135_to_180():
    """Samples at 135, 150, 165, 180 (120 is outside (120, 180]): slots 10, 11, 12."""
    tel = filled()
    assert tel.span(0, 180.0, 60.0) == (10, 13)
    assert canary_n(tel, 180.0, 60.0) == slots_sum(10, 12)


def test_window_between_scrapes():
    """At t = 190: samples at 135 .. 180, the window (130, 190]; slots 10 .. 12."""
    tel = filled()
    assert canary_n(tel, 190.0, 60.0) == slots_sum(10, 12)
    # At 196 the window is (136, 196]: 135 drops out, 195 comes in.
    assert canary_n(tel, 196.0, 60.0) == slots_sum(11, 13)


def test_lag_shifts_the_last_sample():
    """lag 20 s at t = 180: the sample at 165 was ingested at 185 > 180, so the last usable
    sample is 150; the window still starts after 120: samples 135, 150 -> slot 10."""
    tel = filled(lag=20.0)
    assert tel.span(0, 180.0, 60.0) == (10, 11)
    assert canary_n(tel, 180.0, 60.0) == slots_sum(10, 10)
    # Sample 165 is ingested exactly at 185 (timestamp + lag <= t).
    assert canary_n(tel, 185.0, 60.0) == slots_sum(10, 11)


def test_lag_can_leave_fewer_than_two_samples():
    """lag 40 s, window 60 s at 180: only the sample at 135 is both in the window and
    ingested (150 + 40 > 180): no data."""
    tel = filled(lag=40.0)
    assert tel.span(0, 180.0, 60.0) is None
    assert canary_n(tel, 180.0, 60.0) == 0.0


def test_a_missing_scrape_in_the_middle_changes_nothing():
    missing = np.zeros((1, 42), dtype=bool)
    missing[0, 11] = True  # the sample at 165
    tel = filled(missing=missing)
    assert canary_n(tel, 180.0, 60.0) == slots_sum(10, 12)


def test_missing_edge_scrapes_shrink_the_window():
    first = np.zeros((1, 42), dtype=bool)
    first[0, 9] = True  # 135 lost: first sample 150
    assert canary_n(filled(missing=first), 180.0, 60.0) == slots_sum(11, 12)
    last = np.zeros((1, 42), dtype=bool)
    last[0, 12] = True  # 180 lost: last sample 165
    assert canary_n(filled(missing=last), 180.0, 60.0) == slots_sum(10, 11)


def test_fewer_than_two_samples_is_no_data():
    missing = np.zeros((1, 42), dtype=bool)
    missing[0, [9, 10, 11]] = True  # only 180 survives
    tel = filled(missing=missing)
    assert tel.span(0, 180.0, 60.0) is None
    q = MetricQuery("sr", "request-success-rate", 60.0)
    assert np.isnan(tel.query(q, np.array([0]), 180.0)[0])


def test_a_window_shorter_than_two_scrapes_is_no_data():
    """rate(x[15s]) with a 15 s scrape interval holds one sample at most."""
    tel = filled()
    assert tel.span(0, 180.0, 15.0) is None
    assert tel.span(0, 180.0, 30.0) == (12, 13)


def test_the_first_scrapes_of_the_rollout():
    """At t = 15 the samples at 0 and 15 cover slot 1; at t = 0 there is one sample."""
    tel = filled()
    assert canary_n(tel, 15.0, 60.0) == slots_sum(1, 1)
    assert tel.span(0, 0.0, 60.0) is None


def test_missing_scrapes_are_per_run():
    missing = np.zeros((2, 42), dtype=bool)
    missing[1, 9] = True
    tel = filled(runs=2, missing=missing)
    n, err, hist = tel.window(np.array([0, 1]), 180.0, 60.0)[:3]
    np.testing.assert_array_equal(n, [slots_sum(10, 12), slots_sum(11, 12)])
    np.testing.assert_array_equal(err, [10 + 11 + 12, 11 + 12])
    np.testing.assert_array_equal(hist.sum(axis=1), n)
    # The same batch asked run by run gives the same answers.
    assert canary_n(tel, 180.0, 60.0, run=1) == slots_sum(11, 12)


def test_window_histogram_sums_the_covered_slots():
    tel = filled()
    _, _, hist = tel.window(np.array([0]), 180.0, 60.0)[:3]
    want = np.zeros(5)
    for k in (10, 11, 12):
        want[k % 5] += 2.0**k
    np.testing.assert_array_equal(hist[0], want)


# --- queries ------------------------------------------------------------------------------


def test_success_rate_is_the_share_of_requests_without_error():
    tel = filled()
    q = MetricQuery("request-success-rate", "request-success-rate", 60.0, min=99.0)
    n = slots_sum(10, 12)
    got = tel.query(q, np.array([0]), 180.0)
    assert got[0] == pytest.approx(100.0 * (n - 33.0) / n)


def test_success_rate_with_zero_requests_is_no_data():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    q = MetricQuery("sr", "request-success-rate", 60.0)
    assert np.isnan(tel.query(q, np.array([0]), 180.0)[0])


def test_primary_traffic_does_not_enter_canary_queries():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    n = np.zeros((1, 3, 2))
    n[0, :, PRIMARY] = 100.0
    err = np.zeros_like(n)
    err[0, :, PRIMARY] = 50.0
    tel.add(np.array([0]), np.array([10, 11, 12]), n, err, np.zeros((1, 3, 5)), None, unique=True)
    q = MetricQuery("sr", "request-success-rate", 60.0)
    assert np.isnan(tel.query(q, np.array([0]), 180.0)[0])


def test_request_duration_is_the_p99_of_the_canarys_histogram():
    tel = Telemetry(1, 600.0, S, 0.0, None, BOUNDS)
    hist = np.zeros((1, 3, 5))
    hist[0, :, :] = [[10, 20, 30, 40, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    n = np.zeros((1, 3, 2))
    n[0, :, CANARY] = hist[0].sum(axis=1)
    tel.add(np.array([0]), np.array([10, 11, 12]), n, np.zeros_like(n), hist, None, unique=True)
    q = MetricQuery("request-duration", "request-duration", 60.0, max=500.0)
    assert tel.query(q, np.array([0]), 180.0)[0] == pytest.approx(98.75)


def test_unknown_signal_is_an_error():
    tel = filled()
    with pytest.raises(ValueError):
        tel.query(MetricQuery("x", "no-such-signal", 60.0), np.array([0]), 180.0)


# --- histogram_quantile --------------------------------------------------------------------


def prometheus_bucket_quantile(q: float, bounds: list[float], counts: list[float]) -> float:
    """A line-by-line port of Prometheus ``bucketQuantile`` (promql/quantile.go) for
    non-negative bucket bounds, from non-cumulative counts."""
    upper = list(bounds) + [math.inf]
    cum = np.cumsum(counts).tolist()
    if len(upper) < 2:
        return math.nan
    observations = cum[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(upper) - 1) if cum[i] >= rank), len(upper) - 1)
    if b == len(upper) - 1:
        return upper[-2]
    if b == 0 and upper[0] <= 0:
        return upper[0]
    start, end, count = 0.0, upper[b], cum[b]
    if b > 0:
        start = upper[b - 1]
        count -= cum[b - 1]
        rank -= cum[b - 1]
    return start + (end - start) * (rank / count)


HAND = [
    # counts per bucket (0,10] (10,20] (20,50] (50,100] (100,+Inf), q, expected
    ([10, 20, 30, 40, 0], 0.99, 50.0 + 50.0 * 39.0 / 40.0),  # interpolated in (50, 100]
    ([100, 0, 0, 0, 0], 0.99, 9.9),  # first bucket starts at 0
    ([0, 4, 0, 0, 0], 0.99, 10.0 + 10.0 * 3.96 / 4.0),
    ([0, 0, 0, 1, 1], 0.99, 100.0),  # rank in +Inf: last finite bound
    ([0, 0, 0, 0, 7], 0.5, 100.0),
    ([50, 50, 0, 0, 0], 0.5, 10.0),  # rank on a bucket's upper edge
    ([1, 0, 0, 1, 0], 0.5, 10.0),
    ([0, 0, 0, 0, 0], 0.99, math.nan),  # empty: no data
    ([3, 3, 3, 3, 0], 0.25, 10.0),  # rank 3 = cum of bucket 0
    ([3, 3, 3, 3, 0], 0.3, 12.0),  # rank 3.6: 10 + 10 × 0.6/3
]


def test_histogram_quantile_rows_by_hand():
    for q in sorted({q for _, q, _ in HAND}):
        rows = [(c, want) for c, qq, want in HAND if qq == q]
        got = histogram_quantile_rows(q, np.array(BOUNDS), np.array([c for c, _ in rows], dtype=float))
        want = np.array([w for _, w in rows])
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_reference_port_agrees_with_the_hand_values():
    for counts, q, want in HAND:
        got = prometheus_bucket_quantile(q, BOUNDS, counts)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_histogram_quantile_rows_match_prometheus_on_random_rows():
    rng = np.random.default_rng(99)
    bounds = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500]
    counts = rng.poisson(rng.uniform(0.0, 5.0, size=(300, len(bounds) + 1))).astype(float)
    counts[rng.random(counts.shape) < 0.4] = 0.0
    counts[:5] = 0.0
    for q in (0.5, 0.9, 0.99):
        got = histogram_quantile_rows(q, np.array(bounds, dtype=float), counts)
        want = [prometheus_bucket_quantile(q, bounds, row.tolist()) for row in counts]
        np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)


def test_histogram_quantile_rows_with_fractional_expected_counts():
    """``noise: false`` feeds expectations, not integers: the same interpolation. Total
    1.7625, rank 1.744875 falls in (10, 20] after 0.25: 10 + 10 × 1.494875 / 1.5."""
    counts = np.array([[0.25, 1.5, 0.0, 0.0125, 0.0]])
    got = histogram_quantile_rows(0.99, np.array(BOUNDS), counts)
    assert got[0] == pytest.approx(10.0 + 10.0 * 1.494875 / 1.5)
    assert got[0] == pytest.approx(prometheus_bucket_quantile(0.99, BOUNDS, counts[0].tolist()))
