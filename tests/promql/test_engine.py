"""Query.evaluate as a whole: runs are independent, rows select runs, the universe is
bound once, errors are per run (sim/promql/engine.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.promql import PromQLError, Result, SeriesBatch, Vector, compile_query, labels_of

QUERIES = [
    "rate(req_total[1m])",
    "irate(req_total[1m])",
    "increase(req_total[2m])",
    'sum(rate(req_total{code!~"5.*"}[1m])) / sum(rate(req_total[1m])) * 100',
    "sum by (pod) (rate(req_total[1m]))",
    "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[1m])))",
    "max_over_time(temp[1m])",
    "quantile_over_time(0.5, temp[2m])",
    "topk(2, req_total)",
    "req_total + on (pod) temp",
    "req_total * on (pod) group_left temp",
    "req_total > 10",
    'absent(req_total{pod="p1"})',
    "deriv(temp[2m])",
    "changes(temp[2m])",
]


def random_batch(runs: int, seed: int) -> SeriesBatch:
    """Counters born at random, lost scrapes, resets, NaN gauges, sparse buckets."""
    rng = np.random.default_rng(seed)
    times = np.arange(0, 301, 15.0)
    labels, columns = [], []
    for pod in ("p1", "p2"):
        for code in ("200", "500"):
            counts = np.cumsum(rng.poisson(1.0, (runs, times.size)), axis=1).astype(float)
            labels.append(labels_of("req_total", pod=pod, code=code))
            columns.append(counts)
        labels.append(labels_of("temp", pod=pod))
        gauge = rng.normal(10, 3, (runs, times.size))
        gauge[rng.random(gauge.shape) < 0.1] = math.nan
        columns.append(gauge)
    for le in ("0.1", "1", "+Inf"):
        labels.append(labels_of("lat_bucket", le=le))
        columns.append(np.cumsum(rng.poisson(1.0, (runs, times.size)), axis=1) * (1 + float(le) if le != "+Inf" else 3))
    values = np.stack(columns, axis=2).astype(float)
    present = (values != 0) & (rng.random(values.shape) > 0.15)
    return SeriesBatch(tuple(labels), times, values, present)


def as_dict(result: Result, row: int) -> object:
    value = result.value
    if result.error is not None and result.error[row]:
        return ("error", result.message)
    assert isinstance(value, Vector)
    return {lb: value.values[row, k] for k, lb in enumerate(value.labels) if value.present[row, k]}


def same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(
            (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k], rel=1e-12, abs=0) for k in a
        )
    return a == b


@pytest.mark.parametrize("text", QUERIES)
def test_each_run_evaluates_as_if_alone(text: str) -> None:
    # Vectorising over runs (fast paths for gap-free windows, shared family windows)
    # must not let runs influence each other.
    data = random_batch(12, seed=5)
    query = compile_query(text)
    for t_s in (60.0, 187.5, 300.0):
        together = query.evaluate(data, np.arange(12), t_s)
        for row in range(12):
            alone = SeriesBatch(data.labels, data.times_s, data.values[row : row + 1], data.present[row : row + 1])
            single = query.evaluate(alone, np.array([0]), t_s)
            assert same(as_dict(together, row), as_dict(single, 0)), (text, t_s, row)
        subset = query.evaluate(data, np.array([7, 2]), t_s)
        assert same(as_dict(subset, 0), as_dict(together, 7))
        assert same(as_dict(subset, 1), as_dict(together, 2))


def test_the_universe_is_bound_once() -> None:
    data = random_batch(2, seed=1)
    query = compile_query("sum by (pod) (rate(req_total[1m]))")
    query.evaluate(data, np.arange(2), 60.0)
    bound = query._bound_for(data.labels)  # noqa: SLF001 - the cache is what is tested
    assert query._bound_for(data.labels) is bound  # noqa: SLF001
    assert query._bound_for(tuple(list(data.labels))) is bound  # noqa: SLF001 - equal, not identical


def test_errors_are_per_run_and_absent_when_none() -> None:
    data = random_batch(6, seed=2)
    ok = compile_query("rate(req_total[1m])").evaluate(data, np.arange(6), 60.0)
    assert ok.error is None and ok.message == ""
    failing = compile_query("req_total + on (pod) req_total").evaluate(data, np.arange(6), 300.0)
    assert failing.error is not None and failing.error.shape == (6,)
    assert failing.message.startswith("found duplicate series")


@pytest.mark.parametrize(
    "text", ["rate(req_total[1m])", "scalar(sum(req_total))", "req_total[1m]", "req_total + on (pod) req_total"]
)
def test_the_result_of_some_runs_is_theirs_in_the_batch(text: str) -> None:
    """``Result.take`` (issue 17: the world converts only its classes' first runs): the
    rows taken, in the order asked, with their errors, for every kind of value."""
    data = random_batch(6, seed=4)
    whole = compile_query(text).evaluate(data, np.arange(6), 300.0)
    rows = np.array([4, 1, 4])
    some = whole.take(rows)
    assert type(some.value) is type(whole.value) and some.message == whole.message
    assert np.array_equal(some.value.values, whole.value.values[rows], equal_nan=True)
    if hasattr(whole.value, "present"):
        assert np.array_equal(some.value.present, whole.value.present[rows])  # type: ignore[union-attr]
    assert (some.error is None) == (whole.error is None)
    if whole.error is not None:
        assert some.error is not None and some.error.tolist() == whole.error[rows].tolist()


def test_a_string_query_has_no_value_per_run() -> None:
    data = random_batch(1, seed=3)
    with pytest.raises(PromQLError):
        compile_query('"text"').evaluate(data, np.arange(1), 0.0)


def test_a_new_but_equal_label_tuple_each_tick_does_not_rebind() -> None:
    data = random_batch(1, seed=4)
    query = compile_query("sum(rate(req_total[1m]))")
    bound = query._bound_for(data.labels)  # noqa: SLF001
    for _ in range(100):
        assert query._bound_for(tuple(list(data.labels))) is bound  # noqa: SLF001
