"""A recording of a stable service's raw series, as counts per scrape interval.

Input: Prometheus ``/api/v1/query_range`` JSON responses (resultType ``matrix``) of the raw
counters, or the same samples as CSV (``timestamp,metric,value``: unix seconds, a series
in PromQL notation ``name{label="v",...}``, the sample value). Several files merge: one per
query, typically ``istio_requests_total{reporter="destination",...}`` and
``istio_request_duration_milliseconds_bucket{...}``.

Counters become increments per scrape interval as Prometheus's ``rate`` reads them
(prometheus ``promql/functions.go`` ``extrapolatedRate``): a drop is a counter reset, after
which the new value is the increase since the reset. A series present at the first
timestamp gives no increment there (its start is unknown); a series that appears later
starts from 0 (the exporter creates a series at its first request).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.inputs.files import read_text
from sim.limits import MAX_SERIES_BYTES
from sim.promql import PromQLError, compile_query
from sim.promql.openmetrics import parse_openmetrics, parse_query_range
from sim.promql.series import Labels, SeriesBatch


@dataclass(frozen=True)
class Family:
    """The series a provider's exporter publishes for one workload, as the fits read them.

    Attributes:
        provider: the exporter (``sim.world.exporters``), written as ``telemetry.provider``.
        requests: the request counter's metric name.
        code: the label holding the HTTP response code.
        buckets: the latency histogram's ``_bucket`` series name.
        unit_ms: milliseconds per unit of the histogram's ``le`` (1000 for seconds).
        only: label values a series must carry to count (e.g. Istio's reporter), when the
            label is present.
    """

    provider: str
    requests: str
    code: str
    buckets: str
    unit_ms: float
    only: tuple[tuple[str, str], ...] = ()


#: The families read, first match wins: Istio first, then other providers' (issue 10).
FAMILIES = (
    Family(
        "istio",
        "istio_requests_total",
        "response_code",
        "istio_request_duration_milliseconds_bucket",
        1.0,
        (("reporter", "destination"),),
    ),
    Family("linkerd", "response_total", "status_code", "response_latency_ms_bucket", 1.0, (("direction", "inbound"),)),
    Family("kubernetes", "http_requests_total", "status", "http_request_duration_seconds_bucket", 1000.0),
    Family("osm", "osm_request_total", "response_code", "osm_request_duration_ms_bucket", 1.0),
)


@dataclass(frozen=True)
class Recording:
    """A stable service's traffic per scrape interval, summed over response codes.

    Interval ``i`` is ``(times_s[i], times_s[i + 1]]``.

    Attributes:
        files: the files read.
        provider: whose exporter's families were read.
        series: the metric names read (for comments).
        times_s: (S,) the scrape grid, seconds (unix times for real recordings).
        requests: (S-1, P) requests per interval and pod.
        errors: (S-1, P) 5xx responses per interval and pod.
        pods: the P pod names (``("",)`` when the series carry no ``pod`` label).
        le_ms: (B,) the histogram's finite bucket bounds in milliseconds (empty: no histogram).
        buckets: (P, B + 1) observations per bucket ``(le[b-1], le[b]]`` over the whole
            recording, the last bucket above the last finite bound; not cumulative.
        error_buckets: (B + 1,) the same for failed (5xx) requests, all pods.
        interval_buckets: (S-1, B + 1) observations per interval and bucket, all pods
            (what a bootstrap over time resamples).
    """

    files: tuple[str, ...]
    provider: str
    series: tuple[str, ...]
    times_s: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    pods: tuple[str, ...]
    le_ms: np.ndarray
    buckets: np.ndarray
    error_buckets: np.ndarray
    interval_buckets: np.ndarray

    @property
    def step_s(self) -> float:
        """The scrape interval: the median spacing of the grid."""
        return float(np.median(np.diff(self.times_s)))

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last timestamp."""
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def total_requests(self) -> np.ndarray:
        """(S-1,) requests per interval, all pods."""
        return self.requests.sum(axis=1)

    @property
    def total_errors(self) -> np.ndarray:
        """(S-1,) 5xx responses per interval, all pods."""
        return self.errors.sum(axis=1)


def parse_csv(text: str, file: str) -> SeriesBatch:
    """Parse a CSV export: a header ``timestamp,metric,value``, then one sample per row.

    ``timestamp`` is unix seconds, ``metric`` a series as PromQL writes it
    (``istio_requests_total{pod="a",response_code="200"}``), ``value`` the sample.

    Raises:
        InputError: naming the file, the row's line and the column at fault.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InputError(file, 1, None, "empty CSV file: expected a header timestamp,metric,value")
    columns = [h.strip() for h in header]
    if columns != ["timestamp", "metric", "value"]:
        raise InputError(file, 1, None, "expected the header timestamp,metric,value", ",".join(header))
    parsed: dict[str, Labels] = {}
    samples: dict[Labels, dict[int, float]] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise InputError(file, line, None, "expected 3 columns: timestamp,metric,value", ",".join(row))
        ts, metric, value = (c.strip() for c in row)
        try:
            t = float(ts)
        except ValueError:
            raise InputError(file, line, "timestamp", "expected unix seconds", ts) from None
        if not math.isfinite(t):
            raise InputError(file, line, "timestamp", "expected unix seconds", ts)
        try:
            v = float(value)
        except ValueError:
            raise InputError(file, line, "value", "expected a number", value) from None
        labels = parsed.get(metric)
        if labels is None:
            labels = parsed[metric] = _series_labels(metric, file, line)
        ms = round(t * 1000)
        got = samples.setdefault(labels, {})
        if ms in got and got[ms] != v:
            raise InputError(file, line, "timestamp", f"a second, different sample of {metric} at this time", ts)
        got[ms] = v
    if not samples:
        raise InputError(file, 1, None, "the CSV export holds no samples")
    return _to_batch(samples)


def _series_labels(metric: str, file: str, line: int) -> Labels:
    """The label set of ``name{label="v",...}`` (PromQL's syntax, equality matchers only)."""
    try:
        query = compile_query(metric)
    except PromQLError as err:
        raise InputError(file, line, "metric", f"not a series in PromQL notation: {err}", metric) from None
    selectors = list(query.selectors)
    if len(selectors) != 1 or selectors[0].name is None:
        raise InputError(file, line, "metric", 'expected one series, name{label="value",...}', metric)
    labels: dict[str, str] = {}
    for m in selectors[0].matchers:
        if m.op != "=":
            raise InputError(file, line, "metric", "labels must be given with =", metric)
        labels[m.name] = m.value
    return tuple(sorted(labels.items()))


def _to_batch(samples: dict[Labels, dict[int, float]]) -> SeriesBatch:
    keys = tuple(sorted(samples))
    all_ms = np.unique(np.fromiter((ms for s in samples.values() for ms in s), dtype=np.int64))
    values = np.zeros((1, len(all_ms), len(keys)))
    present = np.zeros((1, len(all_ms), len(keys)), dtype=bool)
    for k, key in enumerate(keys):
        ms = np.fromiter(samples[key], dtype=np.int64)
        at = np.searchsorted(all_ms, ms)
        values[0, at, k] = list(samples[key].values())
        present[0, at, k] = True
    return SeriesBatch(labels=keys, times_s=all_ms / 1000.0, values=values, present=present)


def read_export(path: str | os.PathLike[str]) -> SeriesBatch:
    """One export file: ``query_range`` JSON (content starting with ``{``), OpenMetrics
    text with timestamps (starting with ``# ``, what ``pdsim run --series`` writes) or CSV.

    Raises:
        InputError: naming the file (and line and field where they make sense).
    """
    file = os.fsdecode(path)
    text = read_text(path, what="export", limit=MAX_SERIES_BYTES)
    if not text.strip():
        raise InputError(file, 1, None, "empty file: expected a query_range JSON response or a CSV export")
    if text.lstrip().startswith(("{", "[")):
        return parse_query_range(text, file)
    if text.startswith("# "):  # OpenMetrics with timestamps, as `pdsim run --series` writes it
        return parse_openmetrics(text, file)
    return parse_csv(text, file)


def merge(batches: Sequence[tuple[str, SeriesBatch]]) -> SeriesBatch:
    """Merge one-run batches (one per export) into one; a series in two files must agree.

    Raises:
        InputError: a series with two different values at one time, naming the second file.
    """
    if len(batches) == 1:
        return batches[0][1]
    samples: dict[Labels, dict[int, float]] = {}
    for file, batch in batches:
        ms = np.rint(np.asarray(batch.times_s) * 1000).astype(np.int64)
        for k, labels in enumerate(batch.labels):
            at = np.flatnonzero(batch.present[0, :, k])
            new = dict(zip(ms[at].tolist(), batch.values[0, at, k].tolist()))
            got = samples.setdefault(labels, {})
            clash = [
                t
                for t in new.keys() & got.keys()
                if got[t] != new[t] and not (math.isnan(got[t]) and math.isnan(new[t]))
            ]
            if clash:
                name = dict(labels).get("__name__", "")
                raise InputError(
                    file, None, None, f"series {name} has another value at {min(clash) / 1000:.3f} in an earlier file"
                )
            got.update(new)
    return _to_batch(samples)


def counter_increments(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Increments of one counter per interval of the grid, as ``rate`` reads them.

    Args:
        values: (S,) the counter's samples on the grid.
        present: (S,) where it has a sample.

    Returns:
        (S-1,) increments. A series present at the grid's first timestamp has an unknown
        start there (no increment); one that appears later counts from 0. Interval i ends
        at sample i + 1 (a gap's increase lands on the
        interval of the sample after it). A drop is a reset: the increase is the new value
        (prometheus ``promql/functions.go`` ``extrapolatedRate``'s counter correction).
    """
    out = np.zeros(len(values) - 1)
    idx = np.flatnonzero(present & ~np.isnan(values))
    if idx.size == 0:
        return out
    v = values[idx].astype(float)
    if idx[0] > 0:
        out[idx[0] - 1] = v[0]  # a series born during the recording counts from 0
    step = np.diff(v)
    np.add.at(out, idx[1:] - 1, np.where(step >= 0, step, v[1:]))
    return out


def _family(batch: SeriesBatch, files: Sequence[str]) -> Family:
    names = {dict(labels).get("__name__") for labels in batch.labels}
    for fam in FAMILIES:
        if fam.requests in names:
            return fam
    raise InputError(
        files[0],
        None,
        None,
        "no request counter in the exports: expected istio_requests_total (or "
        + ", ".join(f.requests for f in FAMILIES[1:])
        + ") with a response code label, queried raw (no rate())",
    )


def _selected(labels: Labels, fam: Family, name: str) -> bool:
    have = dict(labels)
    return have.get("__name__") == name and all(have.get(k, v) == v for k, v in fam.only)


def recording_from_batch(batch: SeriesBatch, files: Sequence[str]) -> Recording:
    """A ``Recording`` from a one-run batch of raw counters (see the module doc).

    Raises:
        InputError: fewer than 3 timestamps, no request counter, a series without a
            response code.
    """
    fam = _family(batch, files)
    req_ix = [k for k, lab in enumerate(batch.labels) if _selected(lab, fam, fam.requests)]
    # The recording spans the timestamps with request samples (other queries' exports, or
    # a simulation's grid, may reach beyond).
    sampled = np.flatnonzero(batch.present[0][:, req_ix].any(axis=1))
    span = slice(int(sampled[0]), int(sampled[-1]) + 1) if sampled.size else slice(0, 0)
    times = np.asarray(batch.times_s, dtype=float)[span]
    if len(times) < 3:
        raise InputError(
            files[0], None, None, f"the exports hold {len(times)} timestamp(s): a recording needs at least 3"
        )
    values, present = batch.values[0][span], batch.present[0][span]
    bucket_ix = [
        k
        for k, lab in enumerate(batch.labels)
        if _selected(lab, fam, fam.buckets) and not math.isnan(_le(dict(lab).get("le", "")))
    ]
    pods = tuple(sorted({dict(batch.labels[k]).get("pod", "") for k in req_ix}))
    pod_of = {p: i for i, p in enumerate(pods)}
    requests = np.zeros((len(times) - 1, len(pods)))
    errors = np.zeros_like(requests)
    for k in req_ix:
        have = dict(batch.labels[k])
        code = have.get(fam.code)
        if code is None:
            raise InputError(files[0], None, None, f"{fam.requests} without a {fam.code} label: export it unaggregated")
        inc = counter_increments(values[:, k], present[:, k])
        requests[:, pod_of[have.get("pod", "")]] += inc
        if code.startswith("5"):
            errors[:, pod_of[have.get("pod", "")]] += inc
    bounds = sorted({_le(dict(batch.labels[k]).get("le", "")) for k in bucket_ix} - {math.inf})
    le_ms = np.asarray(bounds, dtype=float) * fam.unit_ms
    cumulative = np.zeros((len(pods), len(bounds) + 1))
    err_cumulative = np.zeros(len(bounds) + 1)
    per_interval = np.zeros((len(times) - 1, len(bounds) + 1))
    for k in bucket_ix:
        have = dict(batch.labels[k])
        pod = pod_of.get(have.get("pod", ""))
        if pod is None:
            continue  # a pod with latency series but no requests counted: nothing to weigh
        b = len(bounds) if _le(have.get("le", "")) == math.inf else bounds.index(_le(have["le"]))
        inc = counter_increments(values[:, k], present[:, k])
        per_interval[:, b] += inc
        cumulative[pod, b] += inc.sum()
        if have.get(fam.code, "").startswith("5"):
            err_cumulative[b] += inc.sum()
    # Cumulative `le` counts to counts per bucket.
    buckets = np.diff(cumulative, axis=1, prepend=0.0)
    error_buckets = np.diff(err_cumulative, prepend=0.0)
    interval_buckets = np.diff(per_interval, axis=1, prepend=0.0)
    series = tuple(n for n in (fam.requests, fam.buckets if bucket_ix else None) if n is not None)
    return Recording(
        files=tuple(files),
        provider=fam.provider,
        series=series,
        times_s=times,
        requests=requests,
        errors=errors,
        pods=pods,
        le_ms=le_ms,
        buckets=np.clip(buckets, 0.0, None),
        error_buckets=np.clip(error_buckets, 0.0, None),
        interval_buckets=np.clip(interval_buckets, 0.0, None),
    )


def _le(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_recording(paths: Iterable[str | os.PathLike[str]]) -> Recording:
    """Read and merge export files into a ``Recording``.

    Raises:
        InputError: one line naming the file at fault (and line and field where they
            make sense): unreadable, empty, not a matrix, no request counter.
    """
    files = [os.fsdecode(p) for p in paths]
    batches = [(f, read_export(f)) for f in files]
    return recording_from_batch(merge(batches), files)


__all__ = [
    "FAMILIES",
    "Family",
    "Recording",
    "counter_increments",
    "merge",
    "parse_csv",
    "read_export",
    "read_recording",
    "recording_from_batch",
]
