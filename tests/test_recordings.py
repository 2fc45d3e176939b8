"""The bundled real recordings (issue 15, item 3): ``data/recordings`` as written by
``tools/recordings.py`` from numenta/NAB.

The committed files are checked on their own (counts, rates through ``pdsim query``, the
statistics the README quotes); against the NAB source itself when a clone is at hand
(``NAB_DIR``, else skipped saying why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.promql import compile_query
from sim.promql.openmetrics import read_series
from tests.helpers.cli import invoke
from tools import recordings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "recordings"
ELB = DATA / recordings.ELB_FILE
LATENCY = DATA / recordings.LATENCY_FILE
NAB_DIR = Path(os.environ.get("NAB_DIR", str(recordings.NAB_DEFAULT_DIR)))
# The first periods of NAB's elb_request_count_8c0756.csv (2014-04-10 00:04, 00:09, ...).
FIRST_COUNTS = [94.0, 56.0, 187.0, 95.0]
FIRST_PERIOD_S = 1397088240  # 2014-04-10T00:04:00Z


def _nab_available() -> bool:
    if not NAB_DIR.exists():
        return False
    probe = ["git", "-C", str(NAB_DIR), "cat-file", "-e", f"{recordings.NAB_COMMIT}^{{commit}}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


needs_nab = pytest.mark.skipif(not _nab_available(), reason=f"no numenta/NAB clone at {NAB_DIR} (set NAB_DIR)")


def _elb_counter() -> tuple[np.ndarray, np.ndarray]:
    batch = read_series(ELB)
    assert len(batch.labels) == 1
    present = batch.present[0, :, 0]
    return batch.times_s[present], batch.values[0, present, 0]


def test_elb_counter_is_istio_destination_series_as_the_exporter_labels_it():
    """Same label names as the simulated Istio exporter's destination series (one pod, code 200)."""
    batch = read_series(ELB)
    labels = dict(batch.labels[0])
    assert labels["__name__"] == "istio_requests_total"
    assert labels["reporter"] == "destination"
    assert labels["response_code"] == "200"
    assert labels["pod"].startswith(labels["destination_workload"] + "-")
    assert set(labels) == set(recordings.istio_service_labels())


def test_elb_increases_are_the_recorded_counts():
    """Counter increases between consecutive samples: whole, positive request counts, the
    recording's first periods and its total, a zero at the first period's start."""
    times, totals = _elb_counter()
    increases = np.diff(totals)
    assert totals[0] == 0.0 and times[0] == FIRST_PERIOD_S
    assert increases[:4].tolist() == FIRST_COUNTS
    assert increases.size == 4032 and increases.sum() == 249327.0
    assert np.all(increases >= 1) and np.all(increases == np.round(increases))
    # 8 periods are missing in the source: the counter has a 10-minute gap there, no sample.
    gaps = np.diff(times)
    assert sorted(set(gaps.tolist())) == [300.0, 600.0] and int((gaps == 600).sum()) == 8


@needs_nab
def test_elb_increases_reproduce_the_nab_source_exactly():
    rec = recordings.parse_nab_csv(recordings.nab_file(NAB_DIR, recordings.ELB_PATH))
    times, totals = _elb_counter()
    np.testing.assert_array_equal(np.diff(totals), rec.values)
    np.testing.assert_array_equal(times[1:], rec.times_s + recordings.STEP_S)


@needs_nab
def test_conversion_is_reproducible_byte_for_byte(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "recordings.py"), "--nab", str(NAB_DIR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    for name in (recordings.ELB_FILE, recordings.LATENCY_FILE, "LICENSE-NAB.txt"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_rate_over_5m_is_the_recorded_rate():
    """prometheus promql/functions.go extrapolatedRate: samples exactly at both ends of the
    5m range (2.42 keeps the left end) need no extrapolation, so rate = count / 300 s."""
    times, totals = _elb_counter()
    query = compile_query("sum(rate(istio_requests_total[5m]))")
    batch = read_series(ELB)
    for k in (1, 2, 3, 4, 1000, 3000):
        if times[k] - times[k - 1] != 300:
            continue
        value = query.evaluate(batch, np.array([0]), float(times[k])).value
        assert value.values[0, 0] == pytest.approx((totals[k] - totals[k - 1]) / 300.0, rel=1e-12)


def test_pdsim_query_gives_the_recorded_rate():
    at = FIRST_PERIOD_S + 300
    result = invoke("query", str(ELB), "sum(rate(istio_requests_total[5m]))", "--at", str(at))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["resultType"] == "vector"
    assert float(data["result"][0]["value"][1]) == pytest.approx(94 / 300, rel=1e-12)


def test_statistics_quoted_in_the_readme():
    """What data/recordings/README.md reports, from the committed counter alone."""
    times, totals = _elb_counter()
    counts = np.diff(totals)
    rec = recordings.Recording(times[1:] - recordings.STEP_S, counts)
    s = recordings.count_stats(rec)
    assert s.variance_to_mean == pytest.approx(51.92, abs=0.01)
    assert s.within_hour_median == pytest.approx(37.36, abs=0.01)
    assert s.within_hour_median_population == pytest.approx(34.25, abs=0.01)
    assert s.daily_swing == pytest.approx(2.24, abs=0.01)
    assert s.lag1_autocorrelation == pytest.approx(0.227, abs=0.001)
    readme = (DATA / "README.md").read_text()
    for figure in ("51.9", "37.4", "34.3", "2.24", "0.227"):
        assert figure in readme


def test_count_stats_on_a_known_series():
    """Poisson-like constant counts: variance 0; a hand-computed lag-1 autocorrelation."""
    t = np.arange(24 * 12, dtype=float) * 300.0
    flat = recordings.count_stats(recordings.Recording(t, np.full(t.size, 10.0)))
    assert flat.variance_to_mean == 0.0 and flat.daily_swing == 1.0 and np.isnan(flat.lag1_autocorrelation)
    alternating = recordings.count_stats(recordings.Recording(t, np.where(np.arange(t.size) % 2 == 0, 5.0, 15.0)))
    assert alternating.lag1_autocorrelation == pytest.approx(-(t.size - 1) / t.size)


def test_latency_is_a_gauge_of_averages():
    batch = read_series(LATENCY)
    labels = dict(batch.labels[0])
    assert labels["__name__"] == recordings.LATENCY_METRIC and labels["statistic"] == "Average"
    values = batch.values[0, batch.present[0, :, 0], 0]
    assert values.size == 4021
    assert 20 < values.min() and values.max() < 100


def test_repeated_timestamps_keep_the_first():
    rec = recordings.Recording(np.array([0.0, 300.0, 300.0, 301.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    kept, dropped = recordings.strictly_increasing(rec)
    assert dropped == 1
    assert kept.values.tolist() == [1.0, 2.0, 4.0]


def test_license_is_nab_mit():
    text = (DATA / "LICENSE-NAB.txt").read_text()
    assert "Numenta" in text and "Permission is hereby granted, free of charge" in text
