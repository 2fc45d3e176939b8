"""Synthetic recordings with known truth, written as Prometheus exports (query_range JSON, CSV).

Shared by the calibrate tests: ``counts_to_series`` turns per-interval counts into the
cumulative counters an Istio sidecar exports, ``query_range`` writes them as Prometheus's
``/api/v1/query_range`` response, ``csv_export`` as the CSV ``pdsim calibrate`` reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

T0 = 1767225600.0  # 2026-01-01T00:00:00Z
ISTIO = "istio_requests_total"
BUCKET = "istio_request_duration_milliseconds_bucket"
LE = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)

Series = dict[tuple[tuple[str, str], ...], np.ndarray]


def labels(name: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, "reporter": "destination", **extra}.items()))


def counts_to_series(
    ok: np.ndarray,
    errors: np.ndarray,
    latencies_ok: np.ndarray | None = None,
    latencies_err: np.ndarray | None = None,
    pods: tuple[str, ...] = ("web-1",),
) -> Series:
    """Cumulative counters from per-interval counts.

    Args:
        ok, errors: (T, P) requests per interval and pod answered 200 and 500.
        latencies_ok, latencies_err: (P, len(LE) + 1) observations per bucket over the
            whole recording (spread evenly over the intervals).
        pods: pod names.

    Returns:
        label set -> (T + 1,) samples (the first at 0 + an arbitrary start).
    """
    out: Series = {}
    t = ok.shape[0]
    for j, pod in enumerate(pods):
        for code, counts in (("200", ok[:, j]), ("500", errors[:, j])):
            out[labels(ISTIO, pod=pod, response_code=code)] = 1000.0 + np.concatenate([[0.0], np.cumsum(counts)])
        for code, lat in (("200", latencies_ok), ("500", latencies_err)):
            if lat is None:
                continue
            cum = np.cumsum(lat[j])
            for b, le in enumerate([*LE, float("inf")]):
                text = "+Inf" if le == float("inf") else f"{le:g}"
                out[labels(BUCKET, pod=pod, response_code=code, le=text)] = cum[b] * np.linspace(0, 1, t + 1)
    return out


def query_range(series: Mapping[tuple[tuple[str, str], ...], np.ndarray], step_s: float) -> str:
    """The series as a ``/api/v1/query_range`` JSON response."""
    result = []
    for key, values in series.items():
        times = T0 + step_s * np.arange(len(values))
        result.append({"metric": dict(key), "values": [[float(t), repr(float(v))] for t, v in zip(times, values)]})
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


def csv_export(series: Mapping[tuple[tuple[str, str], ...], np.ndarray], step_s: float) -> str:
    """The series as the CSV ``timestamp,metric,value``."""
    rows = ["timestamp,metric,value"]
    for key, values in series.items():
        d = dict(key)
        name = d.pop("__name__")
        metric = name + "{" + ",".join(f'{k}=""{v}""' for k, v in d.items()) + "}"
        for i, v in enumerate(values):
            rows.append(f'{T0 + step_s * i:.3f},"{metric}",{float(v)!r}')
    return "\n".join(rows) + "\n"
