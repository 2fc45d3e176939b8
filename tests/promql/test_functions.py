"""Range and instant functions, hand-computed (prometheus v2.42.0 promql/functions.go)."""

from __future__ import annotations

import math

import pytest

from sim.promql import labels_of
from tests.promql.batches import batch, run, series_of, single

X = labels_of("x", pod="a")
TIMES = [0.0, 15.0, 30.0, 45.0, 60.0]


def one(values: list[float | None], text: str, t: float = 60.0) -> float | None:
    return single(run(text, batch(TIMES, {X: [values]}), t))


def test_rate_extrapolates_to_the_window_start_within_1_1_intervals() -> None:
    # functions.go extrapolatedRate: samples 15..60 in [0, 60]: 15 s to the start is
    # within 1.1 x 15 s, so the 3 of increase over 45 s extrapolate to 60 s.
    assert one([None, 1.0, 2.0, 3.0, 4.0], "increase(x[1m])") == pytest.approx(4.0, rel=1e-12)
    assert one([None, 1.0, 2.0, 3.0, 4.0], "rate(x[1m])") == pytest.approx(4.0 / 60, rel=1e-12)


def test_rate_extrapolates_half_an_interval_past_a_far_edge() -> None:
    # extrapolatedRate: 30 s to the start is beyond 1.1 intervals: delta (not a counter)
    # extrapolates by half an interval (7.5 s): 2 * 37.5 / 30.
    assert one([None, None, 1.0, 2.0, 3.0], "delta(x[1m])") == pytest.approx(2.5, rel=1e-12)


def test_counter_is_not_extrapolated_below_zero() -> None:
    # extrapolatedRate durationToZero: 30 s * 1/2 = 15 s to zero, inside the threshold:
    # the increase 2 extrapolates over 30 + 15 s.
    assert one([None, None, 1.0, 2.0, 3.0], "increase(x[1m])") == pytest.approx(3.0, rel=1e-12)
    # 45 s * 0.5/3 = 7.5 s to zero, less than the 15 s to the start: 3 * 52.5 / 45.
    assert one([None, 0.5, 1.5, 2.5, 3.5], "increase(x[1m])") == pytest.approx(3.5, rel=1e-12)


def test_counter_reset_adds_the_value_before_it() -> None:
    # extrapolatedRate: 4 - 5 + 8 = 7 over 45 s, extrapolated to 60 s.
    assert one([None, 5.0, 8.0, 2.0, 4.0], "increase(x[1m])") == pytest.approx(7 * 60 / 45, rel=1e-12)
    # delta ignores resets: 4 - 5 over 45 s, extrapolated to 60 s.
    assert one([None, 5.0, 8.0, 2.0, 4.0], "delta(x[1m])") == pytest.approx(-1 * 60 / 45, rel=1e-12)


def test_lost_sample_leaves_a_gap_the_reset_rule_skips() -> None:
    # The sample at 30 s is lost: consecutive samples are 5 -> 2 (a reset) -> 4.
    assert one([None, 5.0, None, 2.0, 4.0], "increase(x[1m])") == pytest.approx(4 * 60 / 45, rel=1e-12)


def test_one_sample_in_range_gives_no_rate() -> None:
    assert one([None, None, None, None, 4.0], "rate(x[1m])") is None
    assert one([None, None, None, None, 4.0], "irate(x[1m])") is None
    assert one([None, None, None, None, 4.0], "deriv(x[1m])") is None


def test_series_born_mid_window_is_extrapolated_from_its_first_sample() -> None:
    # A new series' first sample (1 at 45 s) is not an increase rate() sees: 1 over 15 s.
    assert one([None, None, None, 1.0, 2.0], "increase(x[1m])") == pytest.approx(
        1 * (15 + 15) / 15, rel=1e-12
    )  # durationToZero = 15 * 1/1 = 15 s < 45 s to the start, within 16.5 s


def test_irate_and_idelta_use_the_last_two_samples() -> None:
    # functions.go instantValue: a decrease is a reset for irate (the last value counts).
    assert one([None, None, 5.0, 8.0, 2.0], "irate(x[1m])") == pytest.approx(2 / 15, rel=1e-12)
    assert one([None, None, 5.0, 8.0, 2.0], "idelta(x[1m])") == -6.0
    assert one([None, 5.0, None, 8.0, 9.0], "irate(x[1m])") == pytest.approx(1 / 15, rel=1e-12)
    assert one([None, 5.0, None, 8.0, None], "irate(x[1m])") == pytest.approx(3 / 30, rel=1e-12)


def test_over_time_family() -> None:
    values: list[float | None] = [2.0, None, 4.0, 9.0, 1.0]
    assert one(values, "sum_over_time(x[1m])") == 16.0
    assert one(values, "count_over_time(x[1m])") == 4.0
    assert one(values, "avg_over_time(x[1m])") == 4.0
    assert one(values, "min_over_time(x[1m])") == 1.0
    assert one(values, "max_over_time(x[1m])") == 9.0
    assert one(values, "present_over_time(x[1m])") == 1.0
    assert one(values, "stdvar_over_time(x[1m])") == pytest.approx(9.5, rel=1e-12)
    assert one(values, "stddev_over_time(x[1m])") == pytest.approx(math.sqrt(9.5), rel=1e-12)
    # quantile.go quantile: rank 0.5 * 3 = 1.5 between 2 and 4 of [1, 2, 4, 9].
    assert one(values, "quantile_over_time(0.5, x[1m])") == 3.0
    assert one(values, "quantile_over_time(2, x[1m])") == math.inf
    assert one(values, "changes(x[1m])") == 3.0
    assert one(values, "resets(x[1m])") == 1.0


def test_last_over_time_keeps_the_name_and_other_range_functions_drop_it() -> None:
    # engine.go eval: every range function but last_over_time drops __name__.
    data = batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]})
    assert list(series_of(run("last_over_time(x[1m])", data, 60.0))) == [X]
    assert list(series_of(run("max_over_time(x[1m])", data, 60.0))) == [labels_of(pod="a")]


def test_min_max_over_time_skip_nan_unless_all_nan() -> None:
    # functions.go funcMaxOverTime: a NaN maximum is replaced by any later value.
    assert one([math.nan, 1.0, 3.0, None, None], "max_over_time(x[1m])") == 3.0
    assert one([3.0, math.nan, None, None, None], "min_over_time(x[1m])") == 3.0
    result = one([math.nan, None, None, None, math.nan], "max_over_time(x[1m])")
    assert result is not None and math.isnan(result)


def test_deriv_and_predict_linear_are_least_squares() -> None:
    # functions.go linearRegression: y = 1 + t/15 exactly.
    values: list[float | None] = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert one(values, "deriv(x[1m])") == pytest.approx(1 / 15, rel=1e-12)
    assert one(values, "predict_linear(x[1m], 30)") == pytest.approx(7.0, rel=1e-12)
    assert one([3.0, 3.0, 3.0, 3.0, 3.0], "deriv(x[1m])") == 0.0


def test_instant_math_drops_the_name() -> None:
    data = batch([0.0], {X: [[-2.4]]})
    for text, expected in [
        ("abs(x)", 2.4),
        ("ceil(x)", -2.0),
        ("floor(x)", -3.0),
        ("round(x)", -2.0),
        ("round(x, 0.5)", -2.5),
        ("sgn(x)", -1.0),
        ("clamp(x, -1, 1)", -1.0),
        ("clamp_min(x, 0)", 0.0),
        ("clamp_max(x, -3)", -3.0),
        ("exp(x)", math.exp(-2.4)),
    ]:
        found = series_of(run(text, data, 0.0))
        assert list(found) == [labels_of(pod="a")], text
        assert found[labels_of(pod="a")] == pytest.approx(expected, rel=1e-12), text
    # funcClamp: max < min gives an empty result.
    assert series_of(run("clamp(x, 1, -1)", data, 0.0)) == {}


def test_scalar_vector_time_timestamp_absent() -> None:
    data = batch([0.0, 15.0], {X: [[1.0, 2.0]], labels_of("x", pod="b"): [[5.0, None]]})
    assert run("time()", data, 20.0).value.values.tolist() == [20.0]  # type: ignore[union-attr]
    # funcScalar: NaN unless exactly one element.
    assert math.isnan(run("scalar(x)", data, 20.0).value.values[0])  # type: ignore[union-attr]
    assert run('scalar(x{pod="a"})', data, 20.0).value.values.tolist() == [2.0]  # type: ignore[union-attr]
    assert series_of(run("vector(3)", data, 20.0)) == {(): 3.0}
    # engine.go: timestamp() of a selector is the sample's time.
    assert series_of(run("timestamp(x)", data, 20.0)) == {labels_of(pod="a"): 15.0, labels_of(pod="b"): 0.0}
    # createLabelsForAbsentFunction: equality matchers only.
    assert series_of(run('absent(nope{job="j", pod=~"a"})', data, 20.0)) == {labels_of(job="j"): 1.0}
    assert series_of(run("absent(x)", data, 20.0)) == {}
    assert series_of(run('absent_over_time(x{pod="b"}[10s])', data, 20.0)) == {labels_of(pod="b"): 1.0}


def test_label_replace_and_label_join() -> None:
    data = batch([0.0], {labels_of("x", code="503", pod="a"): [[1.0]]})
    found = series_of(run('label_replace(x, "class", "${1}xx", "code", "(.).*")', data, 0.0))
    assert list(found) == [labels_of("x", code="503", pod="a", **{"class": "5xx"})]
    # The regex is anchored: no match leaves the series alone.
    found = series_of(run('label_replace(x, "class", "$1", "code", "0(.)")', data, 0.0))
    assert list(found) == [labels_of("x", code="503", pod="a")]
    found = series_of(run('label_join(x, "id", "-", "pod", "code")', data, 0.0))
    assert list(found) == [labels_of("x", code="503", pod="a", id="a-503")]


def test_date_functions_with_and_without_argument() -> None:
    data = batch([0.0], {X: [[86400 * 31 + 3600 * 5 + 60 * 7]]})  # 1970-02-01T05:07:00Z
    assert series_of(run("hour(x)", data, 0.0)) == {labels_of(pod="a"): 5.0}
    assert series_of(run("minute(x)", data, 0.0)) == {labels_of(pod="a"): 7.0}
    assert series_of(run("month(x)", data, 0.0)) == {labels_of(pod="a"): 2.0}
    assert series_of(run("day_of_month(x)", data, 0.0)) == {labels_of(pod="a"): 1.0}
    assert series_of(run("day_of_week(x)", data, 0.0)) == {labels_of(pod="a"): 0.0}  # a Sunday
    assert series_of(run("days_in_month(x)", data, 0.0)) == {labels_of(pod="a"): 28.0}
    assert series_of(run("year()", data, 0.0)) == {(): 1970.0}


def test_function_results_colliding_after_dropping_the_name_are_an_error() -> None:
    data = batch([0.0], {labels_of("x", pod="a"): [[1.0]], labels_of("y", pod="a"): [[2.0]]})
    result = run('abs({__name__=~"x|y"})', data, 0.0)
    assert result.error is not None and result.error.tolist() == [True]
    assert result.message == "vector cannot contain metrics with the same labelset"


def test_variance_of_a_constant_series_is_exactly_zero() -> None:
    # functions.go funcStdvarOverTime and engine.go aggregation STDVAR run Welford's
    # algorithm, which gives exactly 0 for equal values; (0.7 + 0.7 + 0.7) / 3 != 0.7.
    assert one([0.7, 0.7, 0.7, None, None], "stdvar_over_time(x[1m])") == 0.0
    assert one([0.7, None, 0.7, None, 0.7], "stddev_over_time(x[1m])") == 0.0
    data = batch([0.0], {labels_of("x", pod=p): [[0.1]] for p in "abcdefg"})
    assert single(run("stddev(x)", data, 0.0)) == 0.0


def test_holt_winters_transcribes_go() -> None:
    # functions.go funcHoltWinters with calcTrendValue, computed by hand for 1, 3, 4, 8:
    sf, tf = 0.5, 0.5
    samples = [1.0, 3.0, 4.0, 8.0]
    s0, s1, b = 0.0, samples[0], samples[1] - samples[0]
    for i in range(1, len(samples)):
        x = sf * samples[i]
        if i - 1 != 0:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    assert one([None, 1.0, 3.0, 4.0, 8.0], "holt_winters(x[1m], 0.5, 0.5)") == s1
    assert one([None, None, None, None, 8.0], "holt_winters(x[1m], 0.5, 0.5)") is None
    result = run("holt_winters(x[1m], 1, 0.5)", batch(TIMES, {X: [[1.0, 2.0, 3.0, 4.0, 5.0]]}), 60.0)
    assert result.error is not None and result.error.tolist() == [True]
    assert result.message == "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"


def test_native_histogram_functions_give_nothing_for_float_series() -> None:
    assert series_of(run("histogram_count(x)", batch(TIMES, {X: [[1.0] * 5]}), 60.0)) == {}


def test_compiled_functions_divide_by_zero_as_go_does() -> None:
    # A window whose only sample is absent for one run, and a regression over equal
    # timestamps is impossible, but 0/0 inside the compiled loops must give NaN, not raise.
    data = batch(TIMES, {X: [[None] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]]})
    result = run("stddev_over_time(x[1m])", data, 60.0)
    assert series_of(result, 0) == {}
    assert series_of(result, 1) == {labels_of(pod="a"): pytest.approx(math.sqrt(2.0), rel=1e-12)}
    assert series_of(run("deriv(x[1m])", data, 60.0), 0) == {}
