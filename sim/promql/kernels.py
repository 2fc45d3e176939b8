"""Compiled (numba) loops for the hottest range functions: rate/increase/delta and
irate/idelta over every (run, series) of a window in one pass.

Each is a line-by-line transcription of prometheus v2.42.0 promql/functions.go
(extrapolatedRate, instantValue) over the samples present in the window, so the float
operations are Go's, in Go's order, and the results equal Prometheus's bit for bit.
Division by zero gives Inf or NaN as in Go (numba's "numpy" error model), never raises.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, error_model="numpy")
def extrapolated_rate_kernel(
    values: np.ndarray,
    present: np.ndarray,
    times_ms: np.ndarray,
    start_ms: int,
    end_ms: int,
    range_s: float,
    is_counter: bool,
    is_rate: bool,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through range_functions
    """functions.go extrapolatedRate for each (run, series): ``out``/``ok`` (R, K).

    Per run, slots are visited in order with the series innermost (the arrays' memory
    order): a first pass finds each series' first and last sample, a second adds the
    counter resets to ``last - first`` in Go's order.
    """
    runs, width, series = values.shape
    first = np.empty(series, np.int64)
    last = np.empty(series, np.int64)
    count = np.empty(series, np.int64)
    previous = np.empty(series)
    result = np.empty(series)
    for r in range(runs):
        first[:] = -1
        count[:] = 0
        for s in range(width):
            for k in range(series):
                if present[r, s, k]:
                    if first[k] < 0:
                        first[k] = s
                    last[k] = s
                    count[k] += 1
        for k in range(series):
            if count[k] >= 2:
                previous[k] = values[r, first[k], k]
                result[k] = values[r, last[k], k] - previous[k]
        if is_counter:
            for s in range(width):
                for k in range(series):
                    if count[k] >= 2 and s > first[k] and present[r, s, k]:
                        current = values[r, s, k]
                        if current < previous[k]:
                            result[k] += previous[k]
                        previous[k] = current
        for k in range(series):
            if count[k] < 2:
                ok[r, k] = False
                out[r, k] = 0.0
                continue
            first_v = values[r, first[k], k]
            value = result[k]
            first_t = times_ms[first[k]]
            last_t = times_ms[last[k]]
            to_start = float(first_t - start_ms) / 1000
            to_end = float(end_ms - last_t) / 1000
            sampled = float(last_t - first_t) / 1000
            average = sampled / float(count[k] - 1)
            if is_counter and value > 0 and first_v >= 0:
                to_zero = sampled * (first_v / value)
                if to_zero < to_start:
                    to_start = to_zero
            threshold = average * 1.1
            interval = sampled
            if to_start < threshold:
                interval += to_start
            else:
                interval += average / 2
            if to_end < threshold:
                interval += to_end
            else:
                interval += average / 2
            factor = interval / sampled
            if is_rate:
                factor /= range_s
            out[r, k] = value * factor
            ok[r, k] = True


@nb.njit(cache=True, error_model="numpy")
def instant_value_kernel(
    values: np.ndarray,
    present: np.ndarray,
    times_ms: np.ndarray,
    is_rate: bool,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through range_functions
    """functions.go instantValue for each (run, series): ``out``/``ok`` (R, K)."""
    runs, width, series = values.shape
    for r in range(runs):
        for k in range(series):
            last = -1
            previous = -1
            for s in range(width - 1, -1, -1):
                if present[r, s, k]:
                    if last < 0:
                        last = s
                    else:
                        previous = s
                        break
            if previous < 0:
                ok[r, k] = False
                out[r, k] = 0.0
                continue
            last_v = values[r, last, k]
            previous_v = values[r, previous, k]
            if is_rate and last_v < previous_v:
                result = last_v
            else:
                result = last_v - previous_v
            interval = times_ms[last] - times_ms[previous]
            if interval == 0:
                ok[r, k] = False
                out[r, k] = 0.0
                continue
            if is_rate:
                result /= float(interval) / 1000
            out[r, k] = result
            ok[r, k] = True


@nb.njit(cache=True, error_model="numpy")
def holt_winters_kernel(
    values: np.ndarray,
    present: np.ndarray,
    smoothing: np.ndarray,
    trend: np.ndarray,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through functions
    """functions.go funcHoltWinters (with calcTrendValue) for each (run, series)."""
    runs, width, series = values.shape
    for r in range(runs):
        sf = smoothing[r]
        tf = trend[r]
        for k in range(series):
            count = 0
            s0 = 0.0
            s1 = 0.0
            b = 0.0
            first = 0.0
            for s in range(width):
                if not present[r, s, k]:
                    continue
                v = values[r, s, k]
                if count == 0:
                    first = v
                    s1 = v
                elif count == 1:
                    b = v - first
                if count >= 1:
                    x = sf * v
                    if count - 1 != 0:  # calcTrendValue(i - 1, ...): the first trend is b
                        b = tf * (s1 - s0) + (1 - tf) * b
                    y = (1 - sf) * (s1 + b)
                    s0 = s1
                    s1 = x + y
                count += 1
            ok[r, k] = count >= 2
            out[r, k] = s1


#: Operator codes of ``aggregate_kernel``.
AGGREGATE_CODES = {"sum": 0, "avg": 1, "min": 2, "max": 3, "count": 4, "group": 5, "stdvar": 6, "stddev": 7}


@nb.njit(cache=True, error_model="numpy")
def aggregate_kernel(
    op: int,
    values: np.ndarray,
    present: np.ndarray,
    visit: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    out: np.ndarray,
    count: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through aggregate
    """engine.go aggregation for sum, avg, min, max, count, group, stdvar and stddev.

    Columns are visited in the order ``visit`` (Prometheus's input order), column
    ``visit[j]`` adding to group ``group[j]``, with Go's float operations in Go's order: a plain running sum, the
    incremental mean (with its Inf rules), min/max where a NaN is replaced by any later
    value, and Welford's running variance.
    """
    runs = values.shape[0]
    mean = np.empty(n_groups)
    for r in range(runs):
        for g in range(n_groups):
            count[r, g] = 0
            out[r, g] = 0.0
        for j in range(visit.size):
            column = visit[j]
            if not present[r, column]:
                continue
            g = group[j]
            v = values[r, column]
            c = count[r, g] + 1
            count[r, g] = c
            if c == 1:
                mean[g] = v
                if op == 5:
                    out[r, g] = 1.0
                elif op == 6 or op == 7:
                    out[r, g] = 0.0
                else:
                    out[r, g] = v
                continue
            if op == 0:
                out[r, g] += v
            elif op == 1:
                m = mean[g]
                if np.isinf(m):
                    if np.isinf(v) and (m > 0) == (v > 0):
                        continue
                    if not np.isinf(v) and not np.isnan(v):
                        continue
                mean[g] = m + (v / c - m / c)
            elif op == 2:
                if out[r, g] > v or np.isnan(out[r, g]):
                    out[r, g] = v
            elif op == 3:
                if out[r, g] < v or np.isnan(out[r, g]):
                    out[r, g] = v
            elif op == 6 or op == 7:
                delta = v - mean[g]
                mean[g] += delta / c
                out[r, g] += delta * (v - mean[g])
        for g in range(n_groups):
            c = count[r, g]
            if c == 0:
                continue
            if op == 1:
                out[r, g] = mean[g]
            elif op == 4:
                out[r, g] = c
            elif op == 6:
                out[r, g] = out[r, g] / c
            elif op == 7:
                out[r, g] = np.sqrt(out[r, g] / c)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """functions.go kahanSumInc."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


#: Operator codes of ``over_time_kernel``.
OVER_TIME_CODES = {"sum_over_time": 0, "avg_over_time": 1, "stdvar_over_time": 2, "stddev_over_time": 3}


@nb.njit(cache=True, error_model="numpy")
def over_time_kernel(
    op: int, values: np.ndarray, present: np.ndarray, out: np.ndarray, ok: np.ndarray
) -> None:  # pragma: no cover - compiled; covered through range_functions
    """functions.go funcSumOverTime, funcAvgOverTime, funcStdvarOverTime and
    funcStddevOverTime (Kahan-compensated, as Go computes them) per (run, series)."""
    runs, width, series = values.shape
    for r in range(runs):
        for k in range(series):
            count = 0.0
            total = 0.0
            c = 0.0
            mean = 0.0
            c_mean = 0.0
            aux = 0.0
            c_aux = 0.0
            for s in range(width):
                if not present[r, s, k]:
                    continue
                v = values[r, s, k]
                count += 1
                if op == 0:
                    total, c = _kahan_inc(v, total, c)
                elif op == 1:
                    if np.isinf(mean):
                        if np.isinf(v) and (mean > 0) == (v > 0):
                            continue
                        if not np.isinf(v) and not np.isnan(v):
                            continue
                    mean, c = _kahan_inc(v / count - mean / count, mean, c)
                else:
                    delta = v - (mean + c_mean)
                    mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
                    aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
            ok[r, k] = count > 0
            if op == 0:
                out[r, k] = total if np.isinf(total) else total + c
            elif op == 1:
                out[r, k] = mean if np.isinf(mean) else mean + c
            elif op == 2:
                out[r, k] = (aux + c_aux) / count
            else:
                out[r, k] = np.sqrt((aux + c_aux) / count)


@nb.njit(cache=True, error_model="numpy")
def linear_regression_kernel(
    values: np.ndarray,
    present: np.ndarray,
    times_ms: np.ndarray,
    intercept_ms: int,
    from_first: bool,
    slope_out: np.ndarray,
    intercept_out: np.ndarray,
    ok: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through range_functions
    """functions.go linearRegression per (run, series), times from ``intercept_ms`` or,
    with ``from_first``, from each series' first sample (funcDeriv); at least 2 samples."""
    runs, width, series = values.shape
    for r in range(runs):
        for k in range(series):
            n = 0.0
            sum_x = 0.0
            c_x = 0.0
            sum_y = 0.0
            c_y = 0.0
            sum_xy = 0.0
            c_xy = 0.0
            sum_x2 = 0.0
            c_x2 = 0.0
            init_y = 0.0
            const_y = True
            origin = intercept_ms
            for s in range(width):
                if not present[r, s, k]:
                    continue
                v = values[r, s, k]
                if n == 0:
                    init_y = v
                    if from_first:
                        origin = times_ms[s]
                elif const_y and v != init_y:
                    const_y = False
                n += 1.0
                x = float(times_ms[s] - origin) / 1e3
                sum_x, c_x = _kahan_inc(x, sum_x, c_x)
                sum_y, c_y = _kahan_inc(v, sum_y, c_y)
                sum_xy, c_xy = _kahan_inc(x * v, sum_xy, c_xy)
                sum_x2, c_x2 = _kahan_inc(x * x, sum_x2, c_x2)
            ok[r, k] = n >= 2
            if n < 2:
                slope_out[r, k] = 0.0
                intercept_out[r, k] = 0.0
                continue
            if const_y:
                if np.isinf(init_y):
                    slope_out[r, k] = np.nan
                    intercept_out[r, k] = np.nan
                else:
                    slope_out[r, k] = 0.0
                    intercept_out[r, k] = init_y
                continue
            sum_x = sum_x + c_x
            sum_y = sum_y + c_y
            sum_xy = sum_xy + c_xy
            sum_x2 = sum_x2 + c_x2
            cov_xy = sum_xy - sum_x * sum_y / n
            var_x = sum_x2 - sum_x * sum_x / n
            slope = cov_xy / var_x
            slope_out[r, k] = slope
            intercept_out[r, k] = sum_y / n - slope * sum_x / n
