"""Small hand-written batches for the PromQL engine tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.promql import Labels, Result, SeriesBatch, Vector, compile_query

#: A series' samples in one run: one value per slot, None where there is no sample.
Samples = Sequence[float | None]


def batch(times: Sequence[float], series: dict[Labels, Sequence[Samples]]) -> SeriesBatch:
    """A batch whose series have, for each run, the given per-slot samples."""
    labels = tuple(series)
    runs = len(next(iter(series.values())))
    values = np.zeros((runs, len(times), len(labels)))
    present = np.zeros((runs, len(times), len(labels)), dtype=bool)
    for k, per_run in enumerate(series.values()):
        for r, samples in enumerate(per_run):
            for s, value in enumerate(samples):
                if value is not None:
                    values[r, s, k] = value
                    present[r, s, k] = True
    return SeriesBatch(labels, np.asarray(times, dtype=float), values, present)


def run(text: str, data: SeriesBatch, t_s: float, **options: float) -> Result:
    """``text`` evaluated for every run of ``data`` at ``t_s``."""
    return compile_query(text).evaluate(data, np.arange(data.values.shape[0]), t_s, **options)  # type: ignore[arg-type]


def series_of(result: Result, row: int = 0) -> dict[Labels, float]:
    """The vector of one run as {labels: value} (absent series left out)."""
    value = result.value
    assert isinstance(value, Vector)
    return {labels: float(value.values[row, k]) for k, labels in enumerate(value.labels) if value.present[row, k]}


def single(result: Result, row: int = 0) -> float | None:
    """The one value of a run's vector, None when it is empty."""
    found = series_of(result, row)
    assert len(found) <= 1, found
    return next(iter(found.values())) if found else None
