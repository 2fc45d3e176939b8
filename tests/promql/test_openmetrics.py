"""Series files: OpenMetrics text with timestamps and query_range exports (issue 14, item 4).

What is written must be what promtool loads (checked against promtool itself where it is
installed, and against prometheus_client's OpenMetrics parser), and what is read must be
what Prometheus would hold: timestamps as promtool reads them, label escapes as the
OpenMetrics spec writes them, every bad file one ``FILE:LINE: message``.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from sim.errors import InputError
from sim.promql.openmetrics import (
    SERIES_EPOCH_S,
    format_value,
    parse_openmetrics,
    read_openmetrics,
    read_query_range,
    read_series,
    timestamp_text,
    write_openmetrics,
)
from sim.promql.series import SeriesBatch, labels_of
from tests.helpers.prometheus import MISSING, PROMTOOL

ODD = 'quote " backslash \\ newline \n brace } comma , equals = end'


def _batch() -> SeriesBatch:
    """Two runs of four series: a counter born mid-way, an odd label value, NaN, lost samples."""
    labels = (
        labels_of("http_requests_total", code="200", pod="p-1"),
        labels_of("http_requests_total", code="500", pod="p-1"),
        labels_of("latency_bucket", le="+Inf", path=ODD),
        labels_of("up"),
    )
    times = np.arange(0.0, 120.0, 15.0) + 1.001
    values = np.arange(2 * len(times) * 4, dtype=float).reshape(2, len(times), 4) * 0.1
    values[0, 3, 3] = math.nan
    values[0, 4, 3] = math.inf
    values[0, 5, 0] = 1e300
    values[0, 6, 0] = 5e-324
    present = np.ones(values.shape, dtype=bool)
    present[0, :4, 1] = False  # the first 5xx comes late
    present[0, 6, 2] = False  # a lost scrape
    return SeriesBatch(labels=labels, times_s=times, values=values, present=present)


def _text(batch: SeriesBatch, row: int = 0, **kw: float) -> str:
    out = io.StringIO()
    write_openmetrics(batch, row, out, **kw)
    return out.getvalue()


def _same_samples(a: SeriesBatch, b: SeriesBatch, row: int = 0) -> None:
    """``b`` holds exactly ``a``'s present samples of ``row`` (series matched by labels)."""
    assert set(a.labels) == set(b.labels)
    for k, labels in enumerate(a.labels):
        kb = b.labels.index(labels)
        times_a = a.times_s[a.present[row, :, k]]
        times_b = b.times_s[b.present[0, :, kb]]
        np.testing.assert_array_equal(times_b, np.round(times_a + SERIES_EPOCH_S, 3))
        np.testing.assert_array_equal(b.values[0, b.present[0, :, kb], kb], a.values[row, a.present[row, :, k], k])


def test_round_trip_exact(tmp_path: Path) -> None:
    batch = _batch()
    path = tmp_path / "s.om"
    path.write_text(_text(batch))
    back = read_openmetrics(path)
    assert back.values.shape[0] == 1
    _same_samples(batch, back)
    assert any(dict(labels).get("path") == ODD for labels in back.labels)


def test_second_run_and_epoch(tmp_path: Path) -> None:
    batch = _batch()
    text = _text(batch, 1, epoch_s=0.0)
    # 1.001 s written "1.001" would load as 1000 ms (promtool truncates ts * 1000).
    assert text.splitlines()[1].endswith(" " + timestamp_text(1001))
    assert timestamp_text(1001) != "1.001"
    back = parse_openmetrics(text, "x")
    np.testing.assert_array_equal(back.times_s, np.round(batch.times_s, 3))
    np.testing.assert_array_equal(back.values[0, :, back.labels.index(batch.labels[0])], batch.values[1, :, 0])


def test_layout_families_together_types_unknown_and_eof() -> None:
    text = _text(_batch())
    lines = text.splitlines()
    assert lines[-1] == "# EOF" and text.endswith("\n")
    types = [line for line in lines if line.startswith("# TYPE")]
    assert types == [
        "# TYPE http_requests_total unknown",
        "# TYPE latency_bucket unknown",
        "# TYPE up unknown",
    ]
    # Each series' samples are contiguous and in time order.
    names = [line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")]
    assert names == sorted(names, key=["http_requests_total", "latency_bucket", "up"].index)


def test_values_as_prometheus_writes_them() -> None:
    assert [format_value(v) for v in (math.nan, math.inf, -math.inf, 0.1, 3.0, 1e300)] == [
        "NaN",
        "+Inf",
        "-Inf",
        "0.1",
        "3.0",
        "1e+300",
    ]
    text = _text(_batch())
    assert "up NaN 1767225646.001" in text and "up +Inf 1767225661.001" in text


def test_timestamps_read_by_promtool_as_the_milliseconds_meant() -> None:
    """promtool reads ``int64(ts * 1000)`` (prometheus model/textparse/openmetricsparse.go Next):
    the written text must truncate to the intended millisecond."""
    for start in (0, 1767225600000, 35143406650000):
        for ms in range(start, start + 5000):
            assert int(float(timestamp_text(ms)) * 1000) == ms
    assert int(float("1.001") * 1000) == 1000  # the trap avoided: 1.001 s would load as 1000 ms
    assert int(float("35143406650.715") * 1000) == 35143406650714


def test_prometheus_client_parses_what_we_write() -> None:
    """An independent OpenMetrics parser (prometheus_client) reads the same samples, escapes included."""
    batch = _batch()
    families = {f.name: f for f in text_string_to_metric_families(_text(batch))}
    assert {f.type for f in families.values()} == {"unknown"}
    samples = families["latency_bucket"].samples
    assert samples[0].labels == {"le": "+Inf", "path": ODD}
    assert len(samples) == int(batch.present[0, :, 2].sum())
    assert math.isnan(families["up"].samples[3].value)


@pytest.mark.skipif(bool(MISSING), reason=MISSING)
def test_promtool_loads_what_we_write(tmp_path: Path) -> None:
    path = tmp_path / "s.om"
    path.write_text(_text(_batch()))
    assert PROMTOOL
    done = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    present = int(_batch().present[0].sum())
    assert f" {present} " in done.stdout  # NUM SAMPLES of the one block


def test_read_escapes_like_openmetrics() -> None:
    text = '# TYPE m unknown\nm{a="x\\\\y\\"z\\nw",b="\\t"} 1 10\n# EOF\n'
    batch = parse_openmetrics(text, "f")
    assert dict(batch.labels[0]) == {"__name__": "m", "a": 'x\\y"z\nw', "b": "\\t"}
    assert batch.times_s.tolist() == [10.0]


def test_read_union_of_times_and_presence() -> None:
    text = 'a 1 10\na 2 20\nb{x="1"} 5 15\n# EOF\n'
    batch = parse_openmetrics(text, "f")
    assert batch.times_s.tolist() == [10.0, 15.0, 20.0]
    assert batch.present[0].tolist() == [[True, False], [False, True], [True, False]]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a 1 10\n", 1, "no # EOF at the end"),
        ("a 1 10\n# EOF\na 2 20\n", 2, "text after # EOF"),
        ("a 1 10\n\na 2 20\n# EOF\n", 2, "blank line"),
        ("a 1\n# EOF\n", 1, "sample without a timestamp"),
        ("a 1 10\na 2 10\n# EOF\n", 2, "timestamp 10 repeats the series' previous sample"),
        ("a 1 10\na 2 5\n# EOF\n", 2, "goes back"),
        ("a 1 10\nb 1 10\na 2 20\n# EOF\n", 3, "the samples of a are not together"),
        ("a x 10\n# EOF\n", 1, "bad sample value 'x'"),
        ("a 1_0 10\n# EOF\n", 1, "bad sample value '1_0'"),
        ("a 1 now\n# EOF\n", 1, "bad timestamp 'now'"),
        ("a 1 NaN\n# EOF\n", 1, "bad timestamp 'NaN'"),
        ('a{b="1",b="2"} 1 10\n# EOF\n', 1, "label 'b' given twice"),
        ("a{b=1} 1 10\n# EOF\n", 1, "bad labels: bad label at 'b=1'"),
        ('a{__name__="b"} 1 10\n# EOF\n', 1, "__name__ given as a label"),
        ("# NOTE x\n# EOF\n", 1, "not an OpenMetrics line"),
        ("9a 1 10\n# EOF\n", 1, "not an OpenMetrics sample"),
        ("# EOF\n", 1, "holds no samples"),
    ],
)
def test_bad_openmetrics_one_line_with_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_openmetrics(text, "s.om")
    assert str(err.value).startswith(f"s.om:{line}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


QUERY_RANGE = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {"metric": {"__name__": "x", "code": "200"}, "values": [[1767225600, "1"], [1767225615.5, "NaN"]]},
            {"metric": {"__name__": "x", "code": "500"}, "values": [[1767225615.5, "+Inf"], [1767225630, "-Inf"]]},
        ],
    },
}


def test_query_range_export(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(json.dumps(QUERY_RANGE, indent=1))
    for batch in (read_query_range(path), read_series(path)):
        assert batch.times_s.tolist() == [1767225600.0, 1767225615.5, 1767225630.0]
        assert batch.labels == (labels_of("x", code="200"), labels_of("x", code="500"))
        assert batch.present[0].tolist() == [[True, False], [True, True], [False, True]]
        assert batch.values[0, 0, 0] == 1 and math.isnan(batch.values[0, 1, 0])
        assert batch.values[0, 1, 1] == math.inf and batch.values[0, 2, 1] == -math.inf
    path.write_text(json.dumps(QUERY_RANGE["data"]))  # the data object alone
    assert read_query_range(path).labels == (labels_of("x", code="200"), labels_of("x", code="500"))


def test_read_series_tells_openmetrics_by_content(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text(_text(_batch()))
    _same_samples(_batch(), read_series(path))


@pytest.mark.parametrize(
    ("doc", "where", "message"),
    [
        ('{"status": "error", "error": "x"}', "status", "an error response"),
        ('{"data": {"resultType": "vector", "result": []}}', "data.resultType", "resultType matrix"),
        ('{"resultType": "matrix", "result": 1}', "result", "a list of series"),
        ('{"resultType": "matrix", "result": [{"metric": {"a": 1}}]}', "result[0].metric", "strings"),
        ('{"resultType": "matrix", "result": [{"metric": {}, "values": [[1, 2]]}]}', "result[0].values[0]", "[time"),
        ('{"resultType": "matrix", "result": [{"metric": {}, "values": [["1", "2"]]}]}', "values[0]", "unix time"),
        ('{"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "z"]]}]}', "values[0]", "bad sample"),
        (
            '{"resultType": "matrix", "result": [{"metric": {}, "values": [[2, "1"], [1, "1"]]}]}',
            "values[1]",
            "increase",
        ),
        (
            '{"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"]]}, {"metric": {}, "values": []}]}',
            "result[1].metric",
            "the same series twice",
        ),
        ('{"resultType": "matrix", "result": []}', None, "holds no samples"),
    ],
)
def test_bad_query_range(tmp_path: Path, doc: str, where: str | None, message: str) -> None:
    path = tmp_path / "q.json"
    path.write_text(doc)
    with pytest.raises(InputError) as err:
        read_series(path)
    assert str(err.value).startswith(f"{path}:1: ")
    if where:
        assert f"{where}: " in str(err.value)
    assert message in str(err.value)


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text('{\n"data":\n  [,]\n}')
    with pytest.raises(InputError, match=r":3: not JSON: "):
        read_series(path)


def test_files_are_bounded_and_regular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.promql.openmetrics as om

    path = tmp_path / "s.om"
    path.write_text("a 1 10\n# EOF\n")
    monkeypatch.setattr(om, "MAX_SERIES_BYTES", path.stat().st_size)  # at the limit: read
    assert read_series(path).values.shape == (1, 1, 1)
    monkeypatch.setattr(om, "MAX_SERIES_BYTES", path.stat().st_size - 1)
    with pytest.raises(InputError, match=r"series file is too large \(limit is 12 bytes\)"):
        read_series(path)
    with pytest.raises(InputError, match="not a regular file"):
        read_series(tmp_path)
