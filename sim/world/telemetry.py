"""The metrics pipeline, as a Prometheus-backed controller sees it.

Each version's counters (requests, errors, latency histogram buckets) are scraped every
``scrape_interval`` at t = k·S. A query ``rate(x[W])`` evaluated at time t uses the
samples with timestamps in (t − W, t] that have been ingested (timestamp + lag ≤ t)
and were not lost (missing scrapes); it needs at least two of them, and covers the
requests between the first and the last. Ratios (success rate, histogram quantiles) are
unaffected by ``rate``'s extrapolation, which scales numerator and denominator alike.
No samples, or no requests in the window, is *no data* (Flagger: ``ErrNoValuesFound``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from sim.policies.base import MetricQuery
from sim.world.service import histogram_quantile

_EPS = 1e-9


PRIMARY, CANARY = 0, 1


class Counters:
    """Counter increments per scrape slot and version: slot k holds requests in ((k−1)S, kS].

    Arrays are indexed ``[slot, version]`` (version 0 primary, 1 canary) so that one
    interval of both versions is stored in three numpy operations.
    """

    def __init__(self, n_slots: int, n_buckets: int) -> None:
        self.n = np.zeros((n_slots, 2))
        self.err = np.zeros((n_slots, 2))
        self.hist = np.zeros((n_slots, 2, n_buckets))

    def add(self, slots: np.ndarray, n: np.ndarray, err: np.ndarray, hist: np.ndarray, unique: bool) -> None:
        if unique:
            self.n[slots] += n
            self.err[slots] += err
            self.hist[slots] += hist
        else:
            # Several segments in one slot (cut by a fault edge or a rate step).
            np.add.at(self.n, slots, n)
            np.add.at(self.err, slots, err)
            np.add.at(self.hist, slots, hist)


class Telemetry:
    """Scraped counters of both versions and the queries on them.

    Args:
        horizon_s: last time anything is recorded.
        scrape_s: scrape interval.
        lag_s: ingestion lag.
        missing: per-slot mask of lost scrapes (None: none lost).
        bounds_ms: finite histogram bucket bounds.
    """

    def __init__(self, horizon_s: float, scrape_s: float, lag_s: float, missing: np.ndarray | None,
                 bounds_ms: Sequence[float]) -> None:
        self.scrape_s = scrape_s
        self.lag_s = lag_s
        self.n_slots = int(math.ceil(horizon_s / scrape_s)) + 2
        self.missing = missing
        self.bounds_ms = np.asarray(bounds_ms, dtype=float)
        self.counters = Counters(self.n_slots, len(bounds_ms) + 1)

    def slot_of(self, seg_end: np.ndarray) -> np.ndarray:
        return np.minimum(np.ceil(seg_end / self.scrape_s - _EPS).astype(np.int64), self.n_slots - 1)

    def _span(self, t: float, window_s: float) -> tuple[int, int] | None:
        """First and last usable sample of a range query, or None (fewer than two)."""
        s = self.scrape_s
        hi = min(int(math.floor((t - self.lag_s) / s + _EPS)), self.n_slots - 1)
        lo = max(int(math.floor((t - window_s) / s + _EPS)) + 1, 0)
        if hi - lo < 1:
            return None
        if self.missing is None:
            return lo, hi
        ok = np.flatnonzero(~self.missing[lo:hi + 1])
        if len(ok) < 2:
            return None
        return lo + int(ok[0]), lo + int(ok[-1])

    def window(self, version: int, t: float, window_s: float) -> tuple[float, float, np.ndarray] | None:
        """Requests, errors and histogram that ``rate(...[window])`` covers at ``t``."""
        span = self._span(t, window_s)
        if span is None:
            return None
        a, b = span[0] + 1, span[1] + 1
        c = self.counters
        return float(c.n[a:b, version].sum()), float(c.err[a:b, version].sum()), c.hist[a:b, version].sum(axis=0)

    def query(self, q: MetricQuery, t: float) -> float | None:
        """Evaluate one builtin query for the canary at time ``t``; None = no data."""
        w = self.window(CANARY, t, q.window_s)
        if w is None or w[0] <= 0:
            return None
        n, err, hist = w
        if q.signal == "request-success-rate":
            return 100.0 * (n - err) / n
        if q.signal == "request-duration":
            v = histogram_quantile(0.99, self.bounds_ms, hist)
            return None if math.isnan(v) else v
        raise ValueError(f"unknown signal {q.signal!r}")


class LazyMetrics(Mapping[str, float | None]):
    """Metric values at one tick, each evaluated the first time a policy reads it.

    Evaluation draws no random numbers, so reading or not reading a metric never
    changes a run: the mapping behaves as if every value had been computed up front.
    """

    def __init__(self, telemetry: Telemetry, queries: Sequence[MetricQuery], t: float) -> None:
        self._telemetry = telemetry
        self._queries = {q.name: q for q in queries}
        self._t = t
        self._cache: dict[str, float | None] = {}

    def __getitem__(self, name: str) -> float | None:
        if name not in self._cache:
            self._cache[name] = self._telemetry.query(self._queries[name], self._t)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]
