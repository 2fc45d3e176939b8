"""The vectorised rate functions against a line-by-line scalar transcription of
prometheus v2.42.0 promql/functions.go extrapolatedRate and instantValue, on random
windows: full ones (the engine's fast path) and ones with gaps (its general path)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.promql import SeriesBatch, compile_query, labels_of

Point = tuple[int, float]  # (t ms, value)


def extrapolated_rate(points: list[Point], start: int, end: int, range_s: float, counter: bool, rate: bool):
    """functions.go extrapolatedRate, transcribed (float samples only)."""
    if len(points) < 2:
        return None
    result = points[-1][1] - points[0][1]
    if counter:
        previous = points[0][1]
        for _, value in points[1:]:
            if value < previous:
                result += previous
            previous = value
    to_start = (points[0][0] - start) / 1000
    to_end = (end - points[-1][0]) / 1000
    sampled = (points[-1][0] - points[0][0]) / 1000
    average = sampled / (len(points) - 1)
    if counter and result > 0 and points[0][1] >= 0:
        to_zero = sampled * (points[0][1] / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if rate:
        factor /= range_s
    return result * factor


def instant_value(points: list[Point], rate: bool):
    """functions.go instantValue, transcribed."""
    if len(points) < 2:
        return None
    (t1, v1), (t2, v2) = points[-2], points[-1]
    value = v2 if rate and v2 < v1 else v2 - v1
    if t2 == t1:
        return None
    if rate:
        value /= (t2 - t1) / 1000
    return value


@pytest.mark.parametrize("gap_probability", [0.0, 0.2, 0.6])
def test_rate_functions_match_the_transcription(gap_probability: float) -> None:
    rng = np.random.default_rng(int(gap_probability * 10) + 3)
    runs, slots, series = 40, 30, 6
    times = np.arange(slots) * 15.0 + rng.uniform(0, 0.5, slots).round(3)
    increments = rng.poisson(2.0, size=(runs, slots, series)).astype(float)
    values = np.cumsum(increments, axis=1)
    # Counter resets and a few negative gauges.
    resets = rng.random((runs, slots, series)) < 0.05
    values = np.where(resets, rng.uniform(0, 3, values.shape), values)
    values[:, :, -1] -= 20
    present = rng.random((runs, slots, series)) >= gap_probability
    labels = tuple(labels_of("x", pod=f"p{k}") for k in range(series))
    data = SeriesBatch(labels, times, values, present)
    times_ms = np.round(times * 1000).astype(np.int64)
    # Beyond the last sample (17 s to the end: between 1.1 and 1.2 intervals) and before
    # the first, the extrapolation thresholds decide.
    for t_s in (200.0, 301.25, 440.0, 452.0, 20.0):
        t_ms = round(t_s * 1000)
        for function, range_s in [
            ("rate", 60.0),
            ("increase", 45.0),
            ("delta", 90.0),
            ("irate", 60.0),
            ("idelta", 30.0),
        ]:
            result = compile_query(f"{function}(x[{int(range_s)}s])").evaluate(data, np.arange(runs), t_s)
            start = t_ms - round(range_s * 1000)
            for r in range(runs):
                for k in range(series):
                    points = [
                        (int(times_ms[s]), float(values[r, s, k]))
                        for s in range(slots)
                        if present[r, s, k] and start <= times_ms[s] <= t_ms
                    ]
                    if function in ("irate", "idelta"):
                        expected = instant_value(points, rate=function == "irate")
                    else:
                        expected = extrapolated_rate(
                            points, start, t_ms, range_s, counter=function != "delta", rate=function == "rate"
                        )
                    got_present = bool(result.value.present[r, k])  # type: ignore[union-attr]
                    assert got_present == (expected is not None), (function, t_s, r, k)
                    if expected is not None:
                        got = float(result.value.values[r, k])  # type: ignore[union-attr]
                        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12) or (
                            math.isnan(got) and math.isnan(expected)
                        ), (function, t_s, r, k)
