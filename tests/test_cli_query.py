"""``pdsim query FILE EXPR --at T`` (issue 14, item 4): a query over a series file, printed
as Prometheus's ``/api/v1/query`` prints its ``data``; bad input one line, exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from sim.promql.openmetrics import write_openmetrics
from sim.promql.series import SeriesBatch, labels_of
from tests.helpers.cli import invoke
from tests.helpers.prometheus import MISSING, PrometheusServer

EPOCH = 1767225600


def _batch() -> SeriesBatch:
    """A counter of 200s every scrape, a 5xx series born at 120 s, a gauge with NaN; 15 s scrapes."""
    times = np.arange(0.0, 301.0, 15.0)
    ok = np.cumsum(np.full(len(times), 3.0))
    errors = np.where(times >= 120, np.cumsum(times >= 120), 0.0)
    gauge = np.full(len(times), 0.25)
    gauge[-1] = np.nan
    values = np.stack([ok, errors, gauge], axis=-1)[None]
    present = values > 0
    present[0, :, 2] = True
    labels = (
        labels_of("requests_total", code="200"),
        labels_of("requests_total", code="500"),
        labels_of("ratio", service="a"),
    )
    return SeriesBatch(labels=labels, times_s=times, values=values, present=present)


@pytest.fixture
def series(tmp_path: Path) -> Path:
    out = io.StringIO()
    write_openmetrics(_batch(), 0, out)
    path = tmp_path / "series.om"
    path.write_text(out.getvalue())
    return path


def _query(*args: object) -> dict:
    result = invoke("query", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_vector_as_prometheus_prints_it(series: Path) -> None:
    data = _query(series, "sum by (code) (increase(requests_total[1m]))", "--at", "5m")
    assert data["resultType"] == "vector"
    assert data["result"] == [
        {"metric": {"code": "200"}, "value": [EPOCH + 300, "12"]},
        {"metric": {"code": "500"}, "value": [EPOCH + 300, "4"]},
    ]


def test_empty_result_and_nan_stay_apart(series: Path) -> None:
    """Before the first 5xx the ratio has no data (empty); the NaN gauge sample is a value."""
    query = 'sum(rate(requests_total{code=~"5.."}[1m])) / sum(rate(requests_total[1m]))'
    assert _query(series, query, "--at", "60s") == {"resultType": "vector", "result": []}
    assert _query(series, "ratio", "--at", "300s")["result"][0]["value"] == [EPOCH + 300, "NaN"]
    assert _query(series, "ratio * 4", "--at", "290s")["result"][0]["value"][1] == "1"


def test_scalar_matrix_and_infinities(series: Path) -> None:
    assert _query(series, "1 / 0", "--at", "0s") == {"resultType": "scalar", "result": [EPOCH, "+Inf"]}
    assert _query(series, "time()", "--at", "90.5s")["result"] == [EPOCH + 90.5, str(EPOCH + 90.5)]
    data = _query(series, 'requests_total{code="500"}[30s]', "--at", "150s")
    assert data == {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "requests_total", "code": "500"},
                "values": [[EPOCH + 120, "1"], [EPOCH + 135, "2"], [EPOCH + 150, "3"]],
            }
        ],
    }


@pytest.mark.parametrize("at", [str(EPOCH + 300), "2026-01-01T00:05:00Z", "2026-01-01T01:05:00+01:00", "5m", "300s"])
def test_times_unix_rfc3339_and_durations(series: Path, at: str) -> None:
    assert _query(series, "time()", "--at", at)["result"][0] == EPOCH + 300


def test_epoch_and_lookback(series: Path) -> None:
    assert _query(series, "time()", "--at", "1m", "--epoch", "0")["result"][0] == 60
    # The last sample is at 300 s: 5m of lookback finds it at 10 minutes, 1m does not.
    assert len(_query(series, "requests_total", "--at", "10m")["result"]) == 2
    assert _query(series, "requests_total", "--at", "10m", "--lookback", "1m")["result"] == []


def test_query_range_export(tmp_path: Path) -> None:
    export = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"__name__": "x"}, "values": [[EPOCH + 0, "1"], [EPOCH + 60, "+Inf"]]}],
        },
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    assert _query(path, "x", "--at", "1m")["result"] == [{"metric": {"__name__": "x"}, "value": [EPOCH + 60, "+Inf"]}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sum(rate(x[1m])",), "EXPR: "),
        (("x", "--at", "soon"), "--at: not a unix time, an RFC 3339 time or a duration"),
        (("x", "--at", "2026-01-01T00:00:00"), "--at: an RFC 3339 time needs its zone"),
        (("x", "--at", "nan"), "--at: not a time"),
        (("x", "--lookback", "0s"), "--lookback: must be positive"),
        (("x", "--lookback", "often"), "--lookback: "),
        (("requests_total + on() requests_total",), "EXPR: evaluation failed: "),
    ],
)
def test_bad_input_one_line_exit_2(series: Path, args: tuple[str, ...], message: str) -> None:
    full = list(args) if "--at" in args else [*args, "--at", "5m"]
    result = invoke("query", series, *full)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.om"
    path.write_text("x 1 10\nx 2\n# EOF\n")
    result = invoke("query", path, "x", "--at", "5m")
    assert result.exit_code == 2
    assert result.stderr == f"{path}:2: sample without a timestamp (series files need one on every sample)\n"
    result = invoke("query", tmp_path / "missing.om", "x", "--at", "5m")
    assert result.exit_code == 2 and "cannot read series file" in result.stderr


@pytest.mark.skipif(bool(MISSING), reason=MISSING)
def test_same_json_as_prometheus(series: Path) -> None:
    """The printed ``data`` is what Prometheus 2.42's /api/v1/query returns for the same file."""
    import json as json_module
    import urllib.parse
    import urllib.request

    with PrometheusServer(series.read_text()) as server:
        for query, at in [
            ("sum by (code) (rate(requests_total[1m]))", 300),
            ('requests_total{code="500"}', 200.5),
            ("ratio", 300),
            ("1 / 0", 30),
            ('requests_total{code="500"}[45s]', 180),
        ]:
            params = urllib.parse.urlencode({"query": query, "time": str(EPOCH + at)})
            with urllib.request.urlopen(f"{server.url}/api/v1/query?{params}", timeout=30) as response:
                theirs = json_module.load(response)["data"]
            ours = _query(series, query, "--at", str(EPOCH + at))
            assert ours == theirs, query
