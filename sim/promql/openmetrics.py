"""Series files (OpenMetrics text with timestamps, Prometheus ``query_range`` exports) and
query results in the JSON shape of Prometheus's HTTP API.

``write_openmetrics`` writes one run's raw samples in the form ``promtool tsdb
create-blocks-from openmetrics`` loads into a Prometheus TSDB; ``read_openmetrics`` reads
such a file back and ``read_query_range`` reads what Prometheus's ``/api/v1/query_range``
returns, both as a one-run ``SeriesBatch`` for ``pdsim query``.

Times. Prometheus stores sample timestamps as integer milliseconds. A file's timestamp
is ``epoch + t`` seconds; files read back keep *absolute* seconds (``times_s`` of the
batch read are unix times, milliseconds exact), so a query is evaluated at the unix time
Prometheus would be asked about, and ``time()`` agrees with it.

Why a parser of our own rather than ``prometheus_client.openmetrics.parser`` (measured,
issue 14): that parser reports no line numbers (its errors carry the line's text), drops a
repeated sample silently, and reads timestamps as exact decimals while promtool reads
them as ``int64(float64(text) * 1000)`` (``model/textparse/openmetricsparse.go``
``Next``), which truncates e.g. ``1767225600.015`` to ...014 ms. The subset written here
(``# TYPE``/``# HELP``/``# UNIT``, samples with labels and timestamps, ``# EOF``) is small;
the tests check what we write against prometheus_client's parser and promtool itself.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any, TextIO

import numpy as np

from sim.errors import InputError
from sim.inputs.files import read_text
from sim.limits import MAX_SERIES_BYTES, SERIES_EPOCH_S
from sim.promql.series import Labels, Matrix, Result, Scalar, SeriesBatch

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# A sample line: name, optional {labels}, value, optional timestamp, optional exemplar.
_SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>(?:[^\"}]|\"(?:[^\"\\\n]|\\.)*\")*)\})?"
    r" (?P<value>\S+)(?: (?P<ts>\S+))?(?P<exemplar> # .*)?\Z"
)
_LABEL = re.compile(r"(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)=\"(?P<value>(?:[^\"\\\n]|\\.)*)\"(?:,|\Z)")
_METADATA = re.compile(r"# (?P<kind>TYPE|HELP|UNIT) (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?: .*)?\Z")
# OpenMetrics unescapes exactly these three in label values; Prometheus's parser keeps any
# other backslash sequence as written (model/textparse/openmetricsparse.go lvalReplacer).
_UNESCAPE = re.compile(r"\\([\\\"n])")
_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: ``NaN``, ``+Inf``, ``-Inf``, else the shortest
    text that reads back as the same float (Python's ``repr``, which Go's ParseFloat reads)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def timestamp_text(ms: int) -> str:
    """Seconds text that promtool reads back as exactly ``ms`` milliseconds.

    promtool truncates ``float64(text) * 1000`` to an integer; the nearest float to
    ``ms / 1000`` can land a hair below ``ms`` after the product (e.g. ...0.015 reads as
    ...014), so the next float up is written instead where needed.
    """
    seconds = ms / 1000
    while int(seconds * 1000) < ms:
        seconds = math.nextafter(seconds, math.inf)
    while int(seconds * 1000) > ms:
        seconds = math.nextafter(seconds, -math.inf)
    return repr(seconds)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series_text(labels: Labels) -> tuple[str, str]:
    """(metric name, ``name{label="value",...}``) of a series, label values escaped."""
    named = dict(labels)
    name = named.pop("__name__", None)
    if name is None or not _METRIC_NAME.match(name):
        raise ValueError(f"series {labels!r} has no valid metric name")
    for label in named:
        if not _LABEL_NAME.match(label):
            raise ValueError(f"series {labels!r}: invalid label name {label!r}")
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in named.items())
    return name, (f"{name}{{{inner}}}" if inner else name)


def write_openmetrics(batch: SeriesBatch, row: int, out: TextIO, *, epoch_s: float = SERIES_EPOCH_S) -> None:
    """Write run ``row``'s samples of ``batch`` as OpenMetrics text with timestamps.

    Every present sample is written, at ``epoch_s + times_s`` rounded to the millisecond
    (Prometheus's resolution), series of one metric name together (OpenMetrics wants a
    family's lines contiguous) and each series' samples in time order, then ``# EOF``.

    Every family is declared ``unknown``. As a ``counter`` a family must be named without
    ``_total`` and every sample must end in ``_total`` (``nginx_ingress_controller_requests``
    could not be written), counter and bucket samples may not be NaN, and a ``histogram``
    must have all its buckets at every timestamp, which lost scrapes break. PromQL in
    Prometheus 2.x ignores the type, so ``unknown`` changes no query's value.

    Args:
        batch: the series.
        row: which run (index into the batch's leading axis).
        out: where the text goes.
        epoch_s: unix time of the simulation's t = 0.

    Raises:
        ValueError: a series without a valid metric name or with an invalid label name
            (a programming error: the world names its series).
    """
    times_ms = np.rint((epoch_s + np.asarray(batch.times_s, dtype=float)) * 1000).astype(np.int64)
    stamps = [timestamp_text(int(ms)) for ms in times_ms]
    families: dict[str, list[tuple[int, str]]] = {}
    for k, labels in enumerate(batch.labels):
        name, text = _series_text(labels)
        families.setdefault(name, []).append((k, text))
    present = np.asarray(batch.present[row], dtype=bool)
    values = np.asarray(batch.values[row], dtype=float)
    for name, members in families.items():
        out.write(f"# TYPE {name} unknown\n")
        for k, text in members:
            for s in np.flatnonzero(present[:, k]):
                out.write(f"{text} {format_value(float(values[s, k]))} {stamps[s]}\n")
    out.write("# EOF\n")


def _parse_float(text: str) -> float:
    """A value as Prometheus's parser reads it: Go's ParseFloat, minus hex and ``_``."""
    if "_" in text or "p" in text.lower():
        raise ValueError(text)
    return float(text)  # ValueError on anything else float() refuses


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if match is None:
            raise ValueError(f"bad label at {text[pos : pos + 30]!r}")
        name = match["name"]
        if name in labels:
            raise ValueError(f"label {name!r} given twice")
        labels[name] = _UNESCAPE.sub(lambda m: _UNESCAPED[m[1]], match["value"])
        pos = match.end()
    return labels


def _batch(series: Mapping[Labels, list[tuple[int, float]]], file: str, what: str) -> SeriesBatch:
    """One run's ``SeriesBatch`` from each series' (milliseconds, value) samples."""
    if not series:
        raise InputError(file, 1, None, f"{what} holds no samples")
    labels = tuple(sorted(series))
    all_ms = np.unique(np.fromiter((ms for s in series.values() for ms, _ in s), dtype=np.int64))
    values = np.zeros((1, len(all_ms), len(labels)))
    present = np.zeros((1, len(all_ms), len(labels)), dtype=bool)
    for k, key in enumerate(labels):
        ms = np.fromiter((m for m, _ in series[key]), dtype=np.int64)
        at = np.searchsorted(all_ms, ms)
        values[0, at, k] = [v for _, v in series[key]]
        present[0, at, k] = True
    return SeriesBatch(labels=labels, times_s=all_ms / 1000.0, values=values, present=present)


def parse_openmetrics(text: str, file: str) -> SeriesBatch:
    """Parse OpenMetrics text with timestamps (see ``read_openmetrics``); ``file`` names it in errors."""
    what = "OpenMetrics file"
    series: dict[Labels, list[tuple[int, float]]] = {}
    finished: set[str] = set()  # families whose lines are over (OpenMetrics keeps them contiguous)
    family = ""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):

        def bad(message: str, number: int = number) -> InputError:
            return InputError(file, number, None, message)

        if line == "# EOF":
            if number != len(lines):
                raise bad("text after # EOF")
            return _batch(series, file, what)
        if not line:
            raise bad("blank line (OpenMetrics has none)")
        if line.startswith("#"):
            meta = _METADATA.match(line)
            if meta is None:
                raise bad("not an OpenMetrics line: expected # TYPE, # HELP, # UNIT or # EOF")
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise bad("not an OpenMetrics sample: expected name{labels} value timestamp")
        name = match["name"]
        if name != family:
            if name in finished:
                raise bad(f"the samples of {name} are not together (OpenMetrics groups a family)")
            if family:
                finished.add(family)
            family = name
        try:
            labels = _parse_labels(match["labels"] or "")
        except ValueError as err:
            raise bad(f"bad labels: {err}") from None
        if "__name__" in labels:
            raise bad("__name__ given as a label")
        try:
            value = _parse_float(match["value"])
        except ValueError:
            raise bad(f"bad sample value {match['value']!r}") from None
        if match["ts"] is None:
            raise bad("sample without a timestamp (series files need one on every sample)")
        try:
            seconds = _parse_float(match["ts"])
        except ValueError:
            raise bad(f"bad timestamp {match['ts']!r}") from None
        if not math.isfinite(seconds) or abs(seconds) > 1e13:
            raise bad(f"bad timestamp {match['ts']!r}")
        ms = int(seconds * 1000)  # as promtool: int64(ts * 1000), truncated
        key = tuple(sorted({**labels, "__name__": name}.items()))
        samples = series.setdefault(key, [])
        if samples and samples[-1][0] >= ms:
            problem = "repeats" if samples[-1][0] == ms else "goes back from"
            raise bad(f"timestamp {match['ts']} {problem} the series' previous sample")
        samples.append((ms, value))
    raise InputError(file, max(len(lines), 1), None, "no # EOF at the end (OpenMetrics ends with one)")


def read_openmetrics(path: str | os.PathLike[str]) -> SeriesBatch:
    """Read an OpenMetrics file with timestamps (what ``write_openmetrics`` writes).

    Returns:
        A one-run batch: every series of the file, ``times_s`` the union of its sample
        timestamps in absolute unix seconds (milliseconds exact, read as promtool reads
        them), ``present`` where a series has a sample.

    Raises:
        InputError: ``FILE:LINE: what is wrong`` for a file that is not regular, too large
            (``MAX_SERIES_BYTES``), not UTF-8, or not OpenMetrics with timestamps.
    """
    file = os.fsdecode(path)
    return parse_openmetrics(read_text(path, what="series file", limit=MAX_SERIES_BYTES), file)


def _json_line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_query_range(text: str, file: str) -> SeriesBatch:
    """Parse a ``query_range`` JSON response (see ``read_query_range``)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(file, err.lineno, None, f"not JSON: {err.msg}") from None
    except RecursionError:
        raise InputError(file, 1, None, "not JSON: nested too deeply") from None

    def bad(field: str, message: str, got: object = None) -> InputError:
        if got is None:
            return InputError(file, 1, field, message)
        return InputError(file, 1, field, message, got)

    data: Any = doc
    where = ""
    if isinstance(doc, dict) and doc.get("status", "success") != "success":
        raise bad("status", f"the export is an error response: {doc.get('error', '')}", doc["status"])
    if isinstance(doc, dict) and "data" in doc:
        data, where = doc["data"], "data."
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        got = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise bad(f"{where}resultType", "expected a query_range response (resultType matrix)", got)
    result = data.get("result")
    if not isinstance(result, list):
        raise bad(f"{where}result", "expected a list of series")
    series: dict[Labels, list[tuple[int, float]]] = {}
    for i, item in enumerate(result):
        at = f"{where}result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise bad(f"{at}.metric", "expected the series' labels as an object")
        metric = item["metric"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metric.items()):
            raise bad(f"{at}.metric", "label names and values must be strings")
        if "histograms" in item:
            raise bad(f"{at}.histograms", "native histograms are not supported")
        key: Labels = tuple(sorted(metric.items()))
        if key in series:
            raise bad(f"{at}.metric", "the same series twice")
        samples = series[key] = []
        for j, pair in enumerate(item.get("values", [])):
            place = f"{at}.values[{j}]"
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
                raise bad(place, 'expected [time, "value"]', pair)
            t, v = pair
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise bad(place, "expected a unix time in seconds", t)
            try:
                value = _parse_float(v)
            except ValueError:
                raise bad(place, "bad sample value", v) from None
            ms = round(t * 1000)  # Prometheus writes milliseconds / 1000
            if samples and samples[-1][0] >= ms:
                raise bad(place, "times must increase within a series", t)
            samples.append((ms, value))
        if not samples:
            del series[key]
    return _batch(series, file, "query_range export")


def read_query_range(path: str | os.PathLike[str]) -> SeriesBatch:
    """Read a Prometheus ``/api/v1/query_range`` JSON response (``resultType`` matrix).

    The whole response (``{"status": "success", "data": {...}}``) or its ``data`` object
    is accepted; values are Prometheus's strings (``"0.5"``, ``"NaN"``, ``"+Inf"``).

    Returns:
        A one-run batch as ``read_openmetrics`` returns (absolute unix seconds).

    Raises:
        InputError: naming the file, line (of a JSON syntax error) and the field at fault.
    """
    file = os.fsdecode(path)
    return parse_query_range(read_text(path, what="series file", limit=MAX_SERIES_BYTES), file)


def read_series(path: str | os.PathLike[str]) -> SeriesBatch:
    """Read a series file of either kind, told apart by content: JSON starts with ``{``."""
    file = os.fsdecode(path)
    text = read_text(path, what="series file", limit=MAX_SERIES_BYTES)
    if text.lstrip().startswith("{"):
        return parse_query_range(text, file)
    return parse_openmetrics(text, file)


def api_value(value: float) -> str:
    """A sample value as Prometheus's HTTP API writes it: Go's ``FormatFloat(v, 'f', -1, 64)``
    (shortest round-trip digits, never an exponent) and ``NaN``, ``+Inf``, ``-Inf``."""
    if not math.isfinite(value):
        return format_value(value)
    return np.format_float_positional(value, unique=True, trim="-")


def api_time(t_s: float) -> float | int:
    """A timestamp as the API writes it: seconds with the milliseconds, ``1767225900`` when whole."""
    ms = round(t_s * 1000)
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def query_data(result: Result, row: int, t_s: float) -> dict[str, Any]:
    """Run ``row``'s value of an instant query at ``t_s`` as the ``data`` of Prometheus's
    ``/api/v1/query`` response: ``{"resultType": ..., "result": ...}``.

    A vector's series are sorted by their labels (Prometheus leaves an instant vector's
    order unspecified); a matrix's too, as Prometheus sorts them.
    """
    value = result.value
    at = api_time(t_s)
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [at, api_value(float(value.values[row]))]}
    order = sorted(range(len(value.labels)), key=lambda k: value.labels[k])
    if isinstance(value, Matrix):
        series = []
        for k in order:
            kept = np.flatnonzero(value.present[row, :, k])
            if kept.size:
                points = [[api_time(float(value.times_s[s])), api_value(float(value.values[row, s, k]))] for s in kept]
                series.append({"metric": dict(value.labels[k]), "values": points})
        return {"resultType": "matrix", "result": series}
    return {
        "resultType": "vector",
        "result": [
            {"metric": dict(value.labels[k]), "value": [at, api_value(float(value.values[row, k]))]}
            for k in order
            if value.present[row, k]
        ],
    }


__all__ = [
    "SERIES_EPOCH_S",
    "api_time",
    "api_value",
    "format_value",
    "parse_openmetrics",
    "parse_query_range",
    "query_data",
    "read_openmetrics",
    "read_query_range",
    "read_series",
    "timestamp_text",
    "write_openmetrics",
]
