"""Functions of a range vector (rate, increase, *_over_time, ...), vectorised.

Each takes a window (R, W, K) of samples with a presence mask and returns, per run and
series, a value and whether there is one; they follow promql/functions.go of Prometheus
v2.42.0 rule for rule (function names cited on each).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.promql import kernels
from sim.promql.frames import WindowData

#: (values (R, K), present (R, K))
Output = tuple[np.ndarray, np.ndarray]


def _ends(window: WindowData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (run, series): sample count, first and last present slot."""
    present = window.present
    count = present.sum(axis=1)
    width = present.shape[1]
    first = np.argmax(present, axis=1)
    last = width - 1 - np.argmax(present[:, ::-1, :], axis=1)
    return count, first, last


def _at(values: np.ndarray, slot: np.ndarray) -> np.ndarray:
    return np.take_along_axis(values, slot[:, None, :], axis=1)[:, 0, :]


def _previous_slot(present: np.ndarray) -> np.ndarray:
    """For each slot, the last earlier slot with a sample (-1 when none)."""
    width = present.shape[1]
    slots = np.where(present, np.arange(width)[None, :, None], -1)
    filled = np.maximum.accumulate(slots, axis=1)
    previous = np.empty_like(filled)
    previous[:, 0, :] = -1
    previous[:, 1:, :] = filled[:, :-1, :]
    return previous


def _pairs(window: WindowData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sample with the sample before it: (has a predecessor, value, predecessor)."""
    previous = _previous_slot(window.present)
    has_previous = window.present & (previous >= 0)
    before = np.take_along_axis(window.values, np.maximum(previous, 0), axis=1)
    return has_previous, window.values, before


def _rate_gap_free(window: WindowData, is_counter: bool, is_rate: bool) -> Output:
    """extrapolatedRate where every series has a sample in every slot of the window.

    The first and last samples sit at the window's first and last slots, so the edge
    distances are scalars and only durationToZero is per series; numpy over whole
    arrays beats the compiled loop here. Scalar factors are folded (results within an
    ulp or two of Go's, which the compiled loop reproduces exactly).
    """
    v = window.values
    width = v.shape[1]
    shape = (v.shape[0], v.shape[2])
    if width < 2:
        return np.zeros(shape), np.zeros(shape, dtype=bool)
    first_v = v[:, 0, :]
    times = window.times_ms
    first_t, last_t = int(times[0]), int(times[-1])
    to_start = (first_t - window.start_ms) / 1000.0
    to_end = (window.end_ms - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    average = sampled / max(width - 1, 1)
    threshold = average * 1.1
    end_term = to_end if to_end < threshold else average / 2
    scale = 1.0 / sampled / (window.range_s if is_rate else 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = v[:, -1, :] - first_v
        if is_counter:
            if (v[:, 1:, :] < v[:, :-1, :]).any():
                correction = np.zeros(shape)
                for slot in range(1, width):
                    before = v[:, slot - 1, :]
                    correction += np.where(v[:, slot, :] < before, before, 0.0)
                result = result + correction
            # durationToZero only ever shortens the distance to the start (fmin: a NaN
            # distance, which Go's "<" ignores, is ignored too).
            to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), np.inf)
            start = np.fmin(to_zero, to_start)
            start_term: np.ndarray | float = (
                start if to_start < threshold else np.where(start < threshold, start, average / 2)
            )
        else:
            start_term = to_start if to_start < threshold else average / 2
        return result * ((start_term + (sampled + end_term)) * scale), np.ones(shape, dtype=bool)


def extrapolated_rate(window: WindowData, is_counter: bool, is_rate: bool) -> Output:
    """rate, increase and delta (promql/functions.go extrapolatedRate).

    At least two samples; counter resets add the value before the reset; the
    extrapolation to the window's edges stops at half an average interval past the
    first/last sample unless the gap is within 1.1 intervals, and a counter is not
    extrapolated below zero (durationToZero). Gap-free windows take numpy; any other
    takes the compiled transcription (``kernels``).
    """
    if window.present.all():
        return _rate_gap_free(window, is_counter, is_rate)
    runs, _, series = window.values.shape
    out = np.empty((runs, series))
    ok = np.empty((runs, series), dtype=bool)
    kernels.extrapolated_rate_kernel(
        window.values,
        window.present,
        window.times_ms.astype(np.int64),
        int(window.start_ms),
        int(window.end_ms),
        float(window.range_s),
        is_counter,
        is_rate,
        out,
        ok,
    )
    return out, ok


def _instant_gap_free(window: WindowData, is_rate: bool) -> Output:
    """instantValue where every slot has a sample: the last two slots."""
    v = window.values
    shape = (v.shape[0], v.shape[2])
    if v.shape[1] < 2:
        return np.zeros(shape), np.zeros(shape, dtype=bool)
    last_v, before_v = v[:, -1, :], v[:, -2, :]
    times = window.times_ms
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if is_rate:
            result = np.where(last_v < before_v, last_v, last_v - before_v)
            result = result / ((int(times[-1]) - int(times[-2])) / 1000.0)
        else:
            result = last_v - before_v
    return result, np.ones(shape, dtype=bool)


def instant_value(window: WindowData, is_rate: bool) -> Output:
    """irate and idelta: the last two samples (promql/functions.go instantValue).

    irate treats a decrease as a counter reset (the last value is the increase); two
    samples at the same millisecond give no result. Gap-free windows take numpy, any
    other the compiled transcription.
    """
    if window.present.all():
        return _instant_gap_free(window, is_rate)
    runs, _, series = window.values.shape
    out = np.empty((runs, series))
    ok = np.empty((runs, series), dtype=bool)
    kernels.instant_value_kernel(window.values, window.present, window.times_ms.astype(np.int64), is_rate, out, ok)
    return out, ok


def _masked(window: WindowData, fill: float) -> np.ndarray:
    return np.where(window.present, window.values, fill)


def _any(window: WindowData) -> np.ndarray:
    return np.asarray(window.present.any(axis=1))


def sum_over_time(window: WindowData) -> Output:
    """promql/functions.go funcSumOverTime (Kahan there; pairwise here: within 1e-15)."""
    return _masked(window, 0.0).sum(axis=1), _any(window)


def count_over_time(window: WindowData) -> Output:
    """promql/functions.go funcCountOverTime."""
    return window.present.sum(axis=1).astype(float), _any(window)


def avg_over_time(window: WindowData) -> Output:
    """promql/functions.go funcAvgOverTime: the mean (an infinite mean stays infinite)."""
    count = window.present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = _masked(window, 0.0).sum(axis=1) / np.maximum(count, 1)
        # Go computes an incremental mean, which does not overflow where the sum does:
        # redo those series with the scaled values.
        overflow = np.isinf(mean) & (count > 0)
        if overflow.any():
            scaled = _masked(window, 0.0) / np.maximum(count, 1)[:, None, :]
            mean = np.where(overflow, scaled.sum(axis=1), mean)
    return mean, count > 0


def _extreme(window: WindowData, pick: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Output:
    """min/max over time: NaN only when all samples are NaN (Go replaces a NaN best)."""
    values = np.where(window.present, window.values, np.nan)
    width = values.shape[1]
    best = values[:, 0, :]
    for slot in range(1, width):
        best = pick(best, values[:, slot, :])
    return best, _any(window)


def max_over_time(window: WindowData) -> Output:
    """promql/functions.go funcMaxOverTime."""
    if window.values.shape[1] == 0:
        return np.zeros(window.values.shape[::2]), _any(window)
    return _extreme(window, np.fmax)


def min_over_time(window: WindowData) -> Output:
    """promql/functions.go funcMinOverTime."""
    if window.values.shape[1] == 0:
        return np.zeros(window.values.shape[::2]), _any(window)
    return _extreme(window, np.fmin)


def last_over_time(window: WindowData) -> Output:
    """promql/functions.go funcLastOverTime (keeps the metric name)."""
    _, _, last = _ends(window)
    return _at(window.values, last), _any(window)


def present_over_time(window: WindowData) -> Output:
    """promql/functions.go funcPresentOverTime."""
    return np.ones(window.present.shape[::2]), _any(window)


def population_variance(values: np.ndarray, present: np.ndarray, axis: int) -> np.ndarray:
    """The population variance of the present values along ``axis`` (two passes).

    Values are first shifted by the first present one, so that a constant series has a
    variance of exactly 0, as Go's running (Welford) computation gives.
    """
    count = present.sum(axis=axis, keepdims=True)
    n = np.maximum(count, 1)
    first = np.take_along_axis(values, np.argmax(present, axis=axis, keepdims=True), axis=axis)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.where(present, values - first, 0.0)
        mean = shifted.sum(axis=axis, keepdims=True) / n
        deviation = np.where(present, shifted - mean, 0.0)
        return np.squeeze((deviation * deviation).sum(axis=axis, keepdims=True) / n, axis=axis)


def _variance(window: WindowData) -> Output:
    return population_variance(window.values, window.present, axis=1), _any(window)


def stdvar_over_time(window: WindowData) -> Output:
    """promql/functions.go funcStdvarOverTime (population variance)."""
    return _variance(window)


def stddev_over_time(window: WindowData) -> Output:
    """promql/functions.go funcStddevOverTime."""
    variance, ok = _variance(window)
    with np.errstate(invalid="ignore"):
        return np.sqrt(variance), ok


def sorted_with_nan_first(values: np.ndarray, present: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Values sorted as Go's vectorByValueHeap sorts them: NaN first, absent last.

    Returns the sorted array and the count of present values along ``axis``.
    """
    nan = present & np.isnan(values)
    keyed = np.where(present, np.where(nan, -np.inf, values), np.inf)
    ordered = np.sort(keyed, axis=axis)
    n_nan = nan.sum(axis=axis, keepdims=True)
    shape = [1] * values.ndim
    shape[axis] = values.shape[axis]
    position = np.arange(values.shape[axis]).reshape(shape)
    ordered = np.where(position < n_nan, np.nan, ordered)
    return ordered, present.sum(axis=axis)


def quantile_of_sorted(q: np.ndarray, ordered: np.ndarray, count: np.ndarray, axis: int) -> np.ndarray:
    """promql/quantile.go quantile over values sorted along ``axis``.

    ``q`` broadcasts against ``count``; q < 0 is -Inf, q > 1 is +Inf, NaN q is NaN, and
    between two ranks the values are interpolated linearly (rank = q * (n - 1)).
    """
    n = count.astype(float)
    with np.errstate(invalid="ignore"):
        rank = q * (n - 1)
        lower = np.maximum(0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        size = ordered.shape[axis]
        lo = np.clip(np.nan_to_num(lower), 0, max(size - 1, 0)).astype(np.intp)
        hi = np.clip(np.nan_to_num(upper), 0, max(size - 1, 0)).astype(np.intp)
        lo_v = np.take_along_axis(ordered, np.expand_dims(lo, axis), axis=axis).squeeze(axis)
        hi_v = np.take_along_axis(ordered, np.expand_dims(hi, axis), axis=axis).squeeze(axis)
        result = lo_v * (1 - weight) + hi_v * weight
    q = np.broadcast_to(q, result.shape)
    result = np.where(q < 0, -np.inf, result)
    result = np.where(q > 1, np.inf, result)
    result = np.where(np.isnan(q) | (count == 0), np.nan, result)
    return result


def quantile_over_time(window: WindowData, q: np.ndarray) -> Output:
    """promql/functions.go funcQuantileOverTime with quantile.go quantile."""
    if window.values.shape[1] == 0:
        return np.zeros(window.values.shape[::2]), _any(window)
    ordered, count = sorted_with_nan_first(window.values, window.present, axis=1)
    return quantile_of_sorted(q[:, None], ordered, count, axis=1), count > 0


def changes(window: WindowData) -> Output:
    """promql/functions.go funcChanges: value changes (NaN to NaN is no change)."""
    has_previous, current, before = _pairs(window)
    changed = has_previous & (current != before) & ~(np.isnan(current) & np.isnan(before))
    return changed.sum(axis=1).astype(float), _any(window)


def resets(window: WindowData) -> Output:
    """promql/functions.go funcResets: decreases between consecutive samples."""
    has_previous, current, before = _pairs(window)
    return (has_previous & (current < before)).sum(axis=1).astype(float), _any(window)


def _linear_regression(window: WindowData, intercept_ms: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """promql/functions.go linearRegression (Kahan sums there; plain sums here).

    A constant series has slope 0 and intercept its value (NaN for an infinite one).
    """
    present = window.present
    n = present.sum(axis=1).astype(float)
    x = (window.times_ms[None, :, None] - intercept_ms) / 1e3
    x = np.broadcast_to(x, present.shape)
    y = window.values
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sum_x = np.where(present, x, 0.0).sum(axis=1)
        sum_y = np.where(present, y, 0.0).sum(axis=1)
        sum_xy = np.where(present, x * y, 0.0).sum(axis=1)
        sum_x2 = np.where(present, x * x, 0.0).sum(axis=1)
        cov_xy = sum_xy - sum_x * sum_y / n
        var_x = sum_x2 - sum_x * sum_x / n
        slope = cov_xy / var_x
        intercept = sum_y / n - slope * sum_x / n
        _, first, _ = _ends(window)
        init_y = _at(y, first)
        differs = present & (y != init_y[:, None, :])
        constant = ~differs.any(axis=1)
        slope = np.where(constant, np.where(np.isinf(init_y), np.nan, 0.0), slope)
        intercept = np.where(constant, np.where(np.isinf(init_y), np.nan, init_y), intercept)
    return slope, intercept


def deriv(window: WindowData) -> Output:
    """promql/functions.go funcDeriv: the regression slope, times from the first sample."""
    count, first, _ = _ends(window)
    times = window.times_ms
    origin = times[first][:, None, :] if times.size else 0
    slope, _ = _linear_regression(window, origin)
    return slope, count >= 2


def predict_linear(window: WindowData, duration_s: np.ndarray, t_ms: int) -> Output:
    """promql/functions.go funcPredictLinear: slope * duration + intercept at eval time."""
    count = window.present.sum(axis=1)
    slope, intercept = _linear_regression(window, t_ms)
    with np.errstate(invalid="ignore", over="ignore"):
        return slope * duration_s[:, None] + intercept, count >= 2


def absent_over_time(window: WindowData) -> np.ndarray:
    """Per run: whether no series has a sample in the window (funcAbsentOverTime)."""
    return np.asarray(~window.present.any(axis=(1, 2)))


#: Range functions of one range-vector argument.
SIMPLE_RANGE_FUNCTIONS: dict[str, Callable[[WindowData], Output]] = {
    "rate": lambda w: extrapolated_rate(w, is_counter=True, is_rate=True),
    "increase": lambda w: extrapolated_rate(w, is_counter=True, is_rate=False),
    "delta": lambda w: extrapolated_rate(w, is_counter=False, is_rate=False),
    "irate": lambda w: instant_value(w, is_rate=True),
    "idelta": lambda w: instant_value(w, is_rate=False),
    "deriv": deriv,
    "changes": changes,
    "resets": resets,
    "avg_over_time": avg_over_time,
    "min_over_time": min_over_time,
    "max_over_time": max_over_time,
    "sum_over_time": sum_over_time,
    "count_over_time": count_over_time,
    "last_over_time": last_over_time,
    "present_over_time": present_over_time,
    "stddev_over_time": stddev_over_time,
    "stdvar_over_time": stdvar_over_time,
}
