"""Reading exports into counts per scrape interval: query_range JSON, CSV, merging, counter
resets, and bad input as one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from sim.calibrate.recording import counter_increments, read_recording
from sim.errors import InputError
from tests.calibrate.exports import BUCKET, ISTIO, LE, counts_to_series, csv_export, labels, query_range
from tests.helpers import write


def _truth(t: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ok = rng.poisson(100, size=(t, 2)).astype(float)
    err = rng.poisson(2, size=(t, 2)).astype(float)
    lat = rng.integers(0, 50, size=(2, len(LE) + 1)).astype(float)
    return ok, err, lat


def test_counter_reset_is_a_drop_and_the_new_value_is_the_increase() -> None:
    # prometheus promql/functions.go extrapolatedRate: "if current < previous, add previous"
    # (a drop is a reset; the counter restarted from 0).
    values = np.array([10.0, 15.0, 3.0, 8.0])
    inc = counter_increments(values, np.ones(4, dtype=bool))
    assert inc.tolist() == [5.0, 3.0, 5.0]


def test_series_born_during_the_recording_counts_from_zero_and_gaps_carry() -> None:
    values = np.array([0.0, 0.0, 4.0, 0.0, 9.0])
    present = np.array([False, False, True, False, True])
    assert counter_increments(values, present).tolist() == [0.0, 4.0, 0.0, 5.0]


def test_query_range_export_gives_counts_per_interval_pod_and_code(tmp_path) -> None:
    ok, err, lat = _truth()
    path = write(tmp_path, "rec.json", query_range(counts_to_series(ok, err, lat, pods=("a", "b")), 15.0))
    rec = read_recording([path])
    assert rec.provider == "istio" and rec.step_s == 15.0 and rec.pods == ("a", "b")
    np.testing.assert_allclose(rec.requests, ok + err)
    np.testing.assert_allclose(rec.errors, err)
    np.testing.assert_allclose(rec.buckets, lat, atol=1e-6)


def test_csv_reads_as_the_json_does(tmp_path) -> None:
    ok, err, lat = _truth()
    series = counts_to_series(ok, err, lat, pods=("a", "b"))
    a = read_recording([write(tmp_path, "rec.json", query_range(series, 15.0))])
    b = read_recording([write(tmp_path, "rec.csv", csv_export(series, 15.0))])
    np.testing.assert_allclose(a.requests, b.requests)
    np.testing.assert_allclose(a.buckets, b.buckets)
    np.testing.assert_allclose(a.times_s, b.times_s)


def test_several_exports_merge_one_per_query(tmp_path) -> None:
    ok, err, lat = _truth()
    series = counts_to_series(ok, err, lat)
    req = {k: v for k, v in series.items() if dict(k)["__name__"] == ISTIO}
    hist = {k: v for k, v in series.items() if dict(k)["__name__"] == BUCKET}
    rec = read_recording(
        [write(tmp_path, "a.json", query_range(req, 15.0)), write(tmp_path, "b.json", query_range(hist, 15.0))]
    )
    np.testing.assert_allclose(rec.buckets[0], lat[0], atol=1e-6)
    assert rec.series == (ISTIO, BUCKET)


def test_source_reporter_series_are_not_counted_twice(tmp_path) -> None:
    ok, err, _ = _truth()
    series = counts_to_series(ok, err)
    for key, values in list(series.items()):
        series[tuple(sorted({**dict(key), "reporter": "source"}.items()))] = values
    rec = read_recording([write(tmp_path, "rec.json", query_range(series, 15.0))])
    np.testing.assert_allclose(rec.total_requests, (ok + err)[:, 0])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("empty.json", "", "empty.json:1: empty file"),
        (
            "vector.json",
            '{"status":"success","data":{"resultType":"vector","result":[]}}',
            "vector.json:1: data.resultType",
        ),
        ("bad.csv", "time,metric,value\n", "bad.csv:1: expected the header timestamp,metric,value"),
        ("ts.csv", 'timestamp,metric,value\nnoon,up{pod="a"},1\n', "ts.csv:2: timestamp: expected unix seconds"),
        ("metric.csv", "timestamp,metric,value\n1,up{pod=,1\n", "metric.csv:2: metric: not a series"),
        ("value.csv", 'timestamp,metric,value\n1,up{pod="a"},x\n', "value.csv:2: value: expected a number"),
    ],
)
def test_bad_exports_are_one_line_naming_file_line_and_field(tmp_path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as err:
        read_recording([path])
    assert str(err.value).startswith(f"{tmp_path}/{expected}")
    assert "\n" not in str(err.value)


def test_no_request_counter_is_named(tmp_path) -> None:
    series = {labels("up", pod="a"): np.arange(5.0)}
    with pytest.raises(
        InputError, match=r"up\.json:1: no request counter in the exports: expected istio_requests_total"
    ):
        read_recording([write(tmp_path, "up.json", query_range(series, 15.0))])


def test_a_series_with_two_values_at_one_time_in_two_files_is_refused(tmp_path) -> None:
    ok, err, _ = _truth()
    series = counts_to_series(ok, err)
    other = {k: v + 1 for k, v in series.items()}
    a, b = write(tmp_path, "a.json", query_range(series, 15.0)), write(tmp_path, "b.json", query_range(other, 15.0))
    with pytest.raises(InputError, match=r"b\.json:1: series istio_requests_total has another value"):
        read_recording([a, b])
