"""Aggregations (prometheus v2.42.0 promql/engine.go aggregation) and histogram_quantile
(promql/functions.go funcHistogramQuantile, promql/quantile.go bucketQuantile)."""

from __future__ import annotations

import math

import numpy as np

from sim.promql import labels_of
from tests.promql.batches import batch, run, series_of, single


def pods() -> dict:
    return {
        labels_of("x", pod="a", code="200"): [[1.0], [1.0]],
        labels_of("x", pod="a", code="500"): [[2.0], [None]],
        labels_of("x", pod="b", code="200"): [[4.0], [math.nan]],
    }


def test_sum_by_and_without() -> None:
    data = batch([0.0], pods())
    assert series_of(run("sum by (pod) (x)", data, 0.0)) == {labels_of(pod="a"): 3.0, labels_of(pod="b"): 4.0}
    # without drops __name__ as well as the listed labels.
    assert series_of(run("sum without (code) (x)", data, 0.0)) == {labels_of(pod="a"): 3.0, labels_of(pod="b"): 4.0}
    # by keeps __name__ only when listed.
    assert list(series_of(run("max by (__name__) (x)", data, 0.0))) == [labels_of("x")]


def test_nan_is_a_value_and_empty_is_no_value() -> None:
    data = batch([0.0], pods())
    result = run('sum(x{pod="b"})', data, 0.0)
    assert single(result, 0) == 4.0
    value = single(result, 1)
    assert value is not None and math.isnan(value)  # NaN: present
    assert single(run('sum(x{pod="c"})', data, 0.0), 0) is None  # empty


def test_avg_count_group_min_max_stddev() -> None:
    data = batch([0.0], pods())
    # engine.go aggregation AVG: the incremental mean, in label order (1, 2, 4).
    mean = 1.0
    mean += 2.0 / 2 - mean / 2
    mean += 4.0 / 3 - mean / 3
    assert single(run("avg(x)", data, 0.0)) == mean
    assert mean != 7.0 / 3  # the sum over the count differs in the last bit
    assert single(run("count(x)", data, 0.0)) == 3.0
    assert single(run("count(x)", data, 0.0), 1) == 2.0
    assert single(run("group(x)", data, 0.0)) == 1.0
    assert single(run("min(x)", data, 0.0)) == 1.0
    # engine.go aggregation MAX: a NaN never replaces a number.
    assert single(run("max(x)", data, 0.0), 1) == 1.0
    mean = 7.0 / 3
    variance = ((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 3
    assert np.isclose(single(run("stdvar(x)", data, 0.0)), variance, rtol=1e-12)
    assert np.isclose(single(run("stddev(x)", data, 0.0)), math.sqrt(variance), rtol=1e-12)


def test_topk_bottomk_keep_input_labels() -> None:
    data = batch([0.0], pods())
    assert series_of(run("topk(1, x)", data, 0.0)) == {labels_of("x", pod="b", code="200"): 4.0}
    assert series_of(run("bottomk(2, x)", data, 0.0)) == {
        labels_of("x", pod="a", code="200"): 1.0,
        labels_of("x", pod="a", code="500"): 2.0,
    }
    assert series_of(run("topk by (pod) (1, x)", data, 0.0)) == {
        labels_of("x", pod="a", code="500"): 2.0,
        labels_of("x", pod="b", code="200"): 4.0,
    }
    assert series_of(run("topk(0, x)", data, 0.0)) == {}
    # Run 1: a NaN ranks below the number for topk.
    assert series_of(run("topk(1, x)", data, 0.0), 1) == {labels_of("x", pod="a", code="200"): 1.0}


def test_quantile_aggregation() -> None:
    data = batch([0.0], pods())
    # quantile.go quantile: rank 0.5 * 2 = 1 of [1, 2, 4].
    assert single(run("quantile(0.5, x)", data, 0.0)) == 2.0
    assert single(run("quantile(0.75, x)", data, 0.0)) == 3.0
    assert single(run("quantile(-1, x)", data, 0.0)) == -math.inf


def buckets(*per_run: dict[str, float | None], extra: dict | None = None) -> dict:
    bounds = sorted({le for run_ in per_run for le in run_}, key=lambda s: float(s))
    return {labels_of("h_bucket", le=le, pod="a"): [[run_.get(le)] for run_ in per_run] for le in bounds} | (
        extra or {}
    )


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    data = batch([0.0], buckets({"1": 2.0, "2": 6.0, "+Inf": 8.0}))
    # bucketQuantile: rank 4 falls in (1, 2] holding 4 observations, 2 of them below.
    assert series_of(run("histogram_quantile(0.5, h_bucket)", data, 0.0)) == {labels_of(pod="a"): 1.5}
    # A rank in the +Inf bucket returns the highest finite bound.
    assert single(run("histogram_quantile(0.9, h_bucket)", data, 0.0)) == 2.0
    # In the first bucket, the lower edge is 0.
    assert single(run("histogram_quantile(0.125, h_bucket)", data, 0.0)) == 0.5
    assert single(run("histogram_quantile(-0.1, h_bucket)", data, 0.0)) == -math.inf
    assert single(run("histogram_quantile(1.1, h_bucket)", data, 0.0)) == math.inf
    assert math.isnan(single(run("histogram_quantile(NaN, h_bucket)", data, 0.0)))  # type: ignore[arg-type]


def test_histogram_quantile_nan_cases() -> None:
    no_inf = batch([0.0], buckets({"1": 2.0, "2": 6.0}))
    assert math.isnan(single(run("histogram_quantile(0.5, h_bucket)", no_inf, 0.0)))  # type: ignore[arg-type]
    only_inf = batch([0.0], buckets({"+Inf": 6.0}))
    assert math.isnan(single(run("histogram_quantile(0.5, h_bucket)", only_inf, 0.0)))  # type: ignore[arg-type]
    zero = batch([0.0], buckets({"1": 0.0, "+Inf": 0.0}))
    assert math.isnan(single(run("histogram_quantile(0.5, h_bucket)", zero, 0.0)))  # type: ignore[arg-type]


def test_histogram_quantile_monotonic_fix_coalescing_and_sparse_buckets() -> None:
    # ensureMonotonic: counts [5, 3, 8] become [5, 5, 8]; rank 4 is in the first bucket.
    data = batch([0.0], buckets({"1": 5.0, "2": 3.0, "+Inf": 8.0}))
    assert single(run("histogram_quantile(0.5, h_bucket)", data, 0.0)) == 0.8
    # coalesceBuckets: le="1" and le="1.0" are one bucket (2 + 2 = 4 below 1).
    extra = {labels_of("h_bucket", le="1.0", pod="a"): [[2.0]]}
    data = batch([0.0], buckets({"1": 2.0, "2": 6.0, "+Inf": 8.0}, extra=extra))
    assert single(run("histogram_quantile(0.5, h_bucket)", data, 0.0)) == 1.0
    # A bucket that does not exist yet in run 1 is left out of that run.
    data = batch([0.0], buckets({"1": 2.0, "2": 6.0, "+Inf": 8.0}, {"1": 2.0, "+Inf": 8.0}))
    result = run("histogram_quantile(0.5, h_bucket)", data, 0.0)
    assert single(result, 0) == 1.5
    assert single(result, 1) == 1.0


def test_histogram_quantile_ignores_bad_le_and_groups_without_le_and_name() -> None:
    extra = {labels_of("h_bucket", le="1_0", pod="a"): [[100.0]], labels_of("h_bucket", pod="a"): [[100.0]]}
    data = batch([0.0], buckets({"1": 2.0, "2": 6.0, "+Inf": 8.0}, extra=extra))
    assert series_of(run("histogram_quantile(0.5, h_bucket)", data, 0.0)) == {labels_of(pod="a"): 1.5}


def test_topk_ties_follow_prometheus_heap() -> None:
    # engine.go aggregation TOPK over container/heap (functions.go vectorByValueHeap):
    # with [12, 12, 17] and k=2 the first 12 is the heap's root and is evicted by 17.
    # Checked against prometheus 2.42 itself.
    series = {
        labels_of("x", pod="p1"): [[12.0]],
        labels_of("x", pod="p2"): [[12.0]],
        labels_of("x", pod="p3"): [[17.0]],
    }
    data = batch([0.0], series)
    assert set(series_of(run("topk(2, x)", data, 0.0))) == {labels_of("x", pod="p2"), labels_of("x", pod="p3")}
    # bottomk(1): a tie does not replace the root, so the first 12 stays.
    assert set(series_of(run("bottomk(1, x)", data, 0.0))) == {labels_of("x", pod="p1")}


def test_topk_ties_replay_the_heap_in_label_order_not_universe_order() -> None:
    series = {
        labels_of("x", code="404", pod="p1"): [[2.0]],
        labels_of("x", code="200", pod="p1"): [[4.0]],
        labels_of("x", code="200", pod="p3"): [[2.0]],
    }
    data = batch([0.0], series)
    # Input order {code=200,p1}=4, {code=200,p3}=2, {code=404,p1}=2: the heap keeps p3's 2.
    assert set(series_of(run("topk(2, x)", data, 0.0))) == {
        labels_of("x", code="200", pod="p1"),
        labels_of("x", code="200", pod="p3"),
    }


def test_stddev_of_one_sample_is_zero_even_for_nan() -> None:
    # engine.go aggregation STDDEV: value starts at 0 with the group's first sample.
    data = batch([0.0], {labels_of("x", pod="a"): [[math.nan]], labels_of("x", pod="b"): [[math.inf]]})
    assert series_of(run("stddev by (pod) (x)", data, 0.0)) == {labels_of(pod="a"): 0.0, labels_of(pod="b"): 0.0}
    value = single(run("stddev_over_time(x[1m])", batch([0.0], {labels_of("x"): [[math.nan]]}), 0.0))
    assert value is not None and math.isnan(value)  # funcStddevOverTime: NaN * 0 is NaN
