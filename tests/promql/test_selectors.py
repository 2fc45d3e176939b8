"""Window edges, lookback, offset and the ingestion cutoff.

prometheus promql/engine.go vectorSelectorSingle (lookback closed on the left) and
matrixIterSlice (range closed on both ends in 2.x), in int64 milliseconds.
"""

from __future__ import annotations

from sim.promql import labels_of
from tests.promql.batches import batch, run, single

X = labels_of("x", pod="a")
TIMES = [0.0, 15.0, 30.0, 45.0, 60.0]


def test_instant_selector_looks_back_exactly_five_minutes() -> None:
    data = batch([0.0], {X: [[7.0]]})
    assert single(run("x", data, 300.0)) == 7.0
    assert single(run("x", data, 300.001)) is None
    assert single(run("x", data, 60.0, lookback_s=60.0)) == 7.0
    assert single(run("x", data, 60.001, lookback_s=60.0)) is None


def test_instant_selector_takes_the_latest_sample_at_or_before_t() -> None:
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, None, None]]})
    assert single(run("x", data, 44.999)) == 3.0
    assert single(run("x", data, 60.0)) == 3.0
    assert single(run("x", data, 14.999)) == 1.0


def test_range_is_closed_on_the_left_in_2x() -> None:
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    # [0, 60] holds all five samples; 3.x would leave out the one at 0.
    assert single(run("count_over_time(x[1m])", data, 60.0)) == 5.0
    assert single(run("count_over_time(x[1m])", data, 60.001)) == 4.0


def test_offset_and_at_shift_the_reference_time() -> None:
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    assert single(run("x offset 30s", data, 60.0)) == 3.0
    assert single(run("x @ 15", data, 60.0)) == 2.0
    assert single(run("count_over_time(x[30s] offset 15s)", data, 60.0)) == 3.0


def test_samples_after_the_ingestion_cutoff_do_not_exist_yet() -> None:
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    assert single(run("x", data, 60.0, ingested_until_s=50.0)) == 4.0
    assert single(run("count_over_time(x[1m])", data, 60.0, ingested_until_s=50.0)) == 4.0
    assert single(run("x", data, 60.0, ingested_until_s=-1.0)) is None


def test_rows_select_and_order_the_runs() -> None:
    import numpy as np

    from sim.promql import compile_query

    data = batch([0.0], {X: [[1.0], [2.0], [3.0]]})
    result = compile_query("x").evaluate(data, np.array([2, 0]), 0.0)
    assert result.value.values[:, 0].tolist() == [3.0, 1.0]  # type: ignore[union-attr]


def test_a_staleness_marker_ends_the_series_at_once() -> None:
    import math

    from sim.promql import STALE_NAN

    # model/value/value.go StaleNaN; engine.go vectorSelectorSingle returns nothing when
    # the latest sample is a marker, matrixIterSlice skips markers; another NaN is a value.
    assert math.isnan(STALE_NAN)
    data = batch(TIMES, {X: [[1.0, 2.0, STALE_NAN, None, None], [1.0, 2.0, math.nan, None, None]]})
    assert single(run("x", data, 60.0), 0) is None
    assert single(run("x", data, 20.0), 0) == 2.0
    value = single(run("x", data, 60.0), 1)
    assert value is not None and math.isnan(value)
    assert single(run("count_over_time(x[1m])", data, 60.0), 0) == 2.0
    assert single(run("count_over_time(x[1m])", data, 60.0), 1) == 3.0


def test_subquery_steps_are_aligned_multiples_of_the_step() -> None:
    # engine.go eval SubqueryExpr: the first step is the first multiple of the step at or
    # after t - offset - range; the inner query is evaluated at every step up to t.
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    assert single(run("count_over_time(x[1m:15s])", data, 60.0)) == 5.0
    assert single(run("max_over_time(x[1m:15s])", data, 60.0)) == 5.0
    assert single(run("min_over_time(x[1m:15s] offset 15s)", data, 60.0)) == 1.0
    assert single(run("count_over_time(x[1m:30s])", data, 70.0)) == 2.0  # steps 30, 60
    # Without a step: Prometheus's default evaluation interval, 1m (steps 0, 60, ..., 300).
    assert single(run("count_over_time(x[5m:])", data, 300.0)) == 6.0
    assert single(run("rate(x[1m:15s])", data, 60.0)) == single(run("rate(x[1m])", data, 60.0))
    assert single(run("max_over_time(rate(x[30s])[1m:15s])", data, 60.0)) == 1 / 15


def test_top_level_range_and_subquery_are_matrices() -> None:
    from sim.promql import Matrix

    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    matrix = run("x[30s]", data, 60.0).value
    assert isinstance(matrix, Matrix)
    assert matrix.times_s.tolist() == [30.0, 45.0, 60.0]
    matrix = run("x[1m:30s]", data, 60.0).value
    assert isinstance(matrix, Matrix)
    assert matrix.times_s.tolist() == [0.0, 30.0, 60.0]
    assert matrix.values[0, :, 0].tolist() == [1.0, 3.0, 5.0]


def test_without_a_cutoff_at_and_negative_offsets_see_later_samples() -> None:
    import math

    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    # By default samples after t do not exist yet (a live world).
    assert single(run("x @ 60", data, 30.0)) == 3.0
    assert single(run("x offset -30s", data, 30.0)) == 3.0
    # With no cutoff the query sees what Prometheus holds (a stored series file).
    assert single(run("x @ 60", data, 30.0, ingested_until_s=math.inf)) == 5.0
    assert single(run("x offset -30s", data, 30.0, ingested_until_s=math.inf)) == 5.0
