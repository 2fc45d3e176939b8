"""Functions of a range vector (rate, increase, *_over_time, ...), vectorised.

Each takes a window (R, W, K) of samples with a presence mask and returns, per run and
series, a value and whether there is one; they follow promql/functions.go of Prometheus
v2.42.0 rule for rule (function names cited on each).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
    arrays beats the compiled loop here. The float operations are Go's, in Go's order.
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
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = v[:, -1, :] - first_v
        if is_counter:
            if (v[:, 1:, :] < v[:, :-1, :]).any():
                # Each reset adds to the running result in order, as Go does (+ 0.0
                # elsewhere leaves values unchanged).
                for slot in range(1, width):
                    before = v[:, slot - 1, :]
                    result = result + np.where(v[:, slot, :] < before, before, 0.0)
            # durationToZero only ever shortens the distance to the start (fmin: a NaN
            # distance, which Go's "<" ignores, is ignored too).
            to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), np.inf)
            start = np.fmin(to_zero, to_start)
            start_term: np.ndarray | float = (
                start if to_start < threshold else np.where(start < threshold, start, average / 2)
            )
        else:
            start_term = to_start if to_start < threshold else average / 2
        # Go's order: sampled + start, + end, / sampled, / range (bit for bit).
        interval = sampled + start_term
        interval = interval + end_term
        factor = interval / sampled
        if is_rate:
            factor = factor / window.range_s
        return result * factor, np.ones(shape, dtype=bool)


def extrapolated_rate(window: WindowData, is_counter: bool, is_rate: bool) -> Output:
    """rate, increase and delta (promql/functions.go extrapolatedRate).

    At least two samples; counter resets add the value before the reset; the
    extrapolation to the window's edges stops at half an average interval past the
    first/last sample unless the gap is within 1.1 intervals, and a counter is not
    extrapolated below zero (durationToZero). Gap-free windows take numpy; any other
    takes the compiled transcription (``kernels``).
    """
    from sim.promql import kernels

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
    from sim.promql import kernels

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


def _over_time(window: WindowData, name: str) -> Output:
    """The Kahan-compensated *_over_time functions, compiled (``kernels``)."""
    from sim.promql import kernels

    runs, _, series = window.values.shape
    out = np.empty((runs, series))
    ok = np.empty((runs, series), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        kernels.over_time_kernel(kernels.OVER_TIME_CODES[name], window.values, window.present, out, ok)
    return out, ok


def sum_over_time(window: WindowData) -> Output:
    """promql/functions.go funcSumOverTime (Kahan summation)."""
    return _over_time(window, "sum_over_time")


def count_over_time(window: WindowData) -> Output:
    """promql/functions.go funcCountOverTime."""
    return window.present.sum(axis=1).astype(float), _any(window)


def avg_over_time(window: WindowData) -> Output:
    """promql/functions.go funcAvgOverTime: the incremental, compensated mean."""
    return _over_time(window, "avg_over_time")


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


def stdvar_over_time(window: WindowData) -> Output:
    """promql/functions.go funcStdvarOverTime (population variance, Welford and Kahan)."""
    return _over_time(window, "stdvar_over_time")


def stddev_over_time(window: WindowData) -> Output:
    """promql/functions.go funcStddevOverTime."""
    return _over_time(window, "stddev_over_time")


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


def _linear_regression(
    window: WindowData, intercept_ms: int, from_first: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """promql/functions.go linearRegression (compiled): slope, intercept, at least 2 samples."""
    from sim.promql import kernels

    runs, _, series = window.values.shape
    slope = np.empty((runs, series))
    intercept = np.empty((runs, series))
    ok = np.empty((runs, series), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        kernels.linear_regression_kernel(
            window.values,
            window.present,
            window.times_ms.astype(np.int64),
            intercept_ms,
            from_first,
            slope,
            intercept,
            ok,
        )
    return slope, intercept, ok


def deriv(window: WindowData) -> Output:
    """promql/functions.go funcDeriv: the regression slope, times from the first sample."""
    slope, _, ok = _linear_regression(window, 0, from_first=True)
    return slope, ok


def predict_linear(window: WindowData, duration_s: np.ndarray, t_ms: int) -> Output:
    """promql/functions.go funcPredictLinear: slope * duration + intercept at eval time."""
    slope, intercept, ok = _linear_regression(window, t_ms, from_first=False)
    with np.errstate(invalid="ignore", over="ignore"):
        return slope * duration_s[:, None] + intercept, ok


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
