"""Raw series as exporters publish them and Prometheus scrapes them, for a batch of runs.

Traffic is served per *cell*: a version (primary, canary), a response code class (a success
code, an error code) and a pod of that version. Each cell has a request counter, a latency
histogram in the exporter's buckets and a latency sum. An exporter's series
(``sim.world.exporters.Universe``) are each one cell's quantity, or a sum over the pods or
codes of a version (a proxy's series), so every series' increments are a gather of the
cells' increments.

What Prometheus would hold follows from three rules:

* **Scrapes.** Scrape k happens at ``k * scrape_s`` and records every live series'
  cumulative value then. A lost scrape (``missing``) records nothing for the run.
* **Series exist from their first increment.** A client library creates a labelled
  child (a counter, or a histogram with all its buckets, its sum and its count) when the
  first request of its cell is observed, so the first scrape that sees it already holds
  that increment and ``rate()`` never sees it happen. A series summed over cells exists
  once any of them has.
* **Ingestion lag** is the engine's business (``ingested_until_s``), not the store's.

Slots grow as time advances (most rollouts decide long before the horizon). Cumulative
values are kept per slot, written as traffic passes each scrape, so a query reads them
without summing increments.
"""

from __future__ import annotations

import math

import numpy as np

from sim.promql import SeriesBatch
from sim.world.exporters import BUCKET, CELL_VERSIONS, SUM, Universe

#: Index of a cell's quantities on the last axis of the increments the traffic paths hand in:
#: the request count, then the non-cumulative latency buckets (finite bounds, then +Inf),
#: then the latency sum in ms.
COUNT_AT = 0


class SeriesStore:
    """Cumulative samples of a universe's series, per run and scrape slot.

    Args:
        universe: the series the exporter publishes (already restricted to the ones some
            query selects: the others cannot change any result).
        pods: pods of (primary, canary).
        runs: rollouts in the batch.
        n_slots: scrape slots up to the horizon (slot k is scraped at ``k * scrape_s``).
        scrape_s: scrape interval.
        missing: (runs, slots) lost scrapes, or None.
    """

    def __init__(
        self,
        universe: Universe,
        pods: tuple[int, int],
        runs: int,
        n_slots: int,
        scrape_s: float,
        missing: np.ndarray | None,
    ) -> None:
        self.universe = universe
        self.pods = pods
        self.n_slots = n_slots
        self.scrape_s = scrape_s
        self.missing = missing
        self.n_buckets = len(universe.bounds_ms) + 1
        #: Quantities per cell: count, buckets, sum.
        self.n_quantities = self.n_buckets + 2
        #: Whether any series counts the primary's requests (else they need not be drawn).
        self.reads_primary = any(0 in CELL_VERSIONS[int(v)] for v in universe.version)
        #: The canary's live requests address the stable Service (``exporters.Workloads``).
        self.live_via_stable = universe.live_via_stable
        self._plan()
        K = len(universe.labels)
        slots = min(n_slots, 64)
        self.values = np.zeros((runs, slots, K))
        self.present = np.zeros((runs, slots, K), dtype=bool)
        #: Running cumulative value of every series, per run (the last slot written).
        self.total = np.zeros((runs, K))
        #: Running request count of every series' cell(s): a series exists once it is > 0.
        self.born_count = np.zeros((runs, K))
        self._times = scrape_s * np.arange(slots)

    # -- the gather plan ---------------------------------------------------------------

    def _plan(self) -> None:
        """Each series as a weighted sum of the cells the traffic paths hand in
        ((R, S, 3, C, P, Q) flattened to N = 3·C·P·Q columns): ``self._weights`` (N, K)
        gives the increments of every series, ``self._born_weights`` (N, K) the requests of
        the cells each series counts (it exists once they are > 0).

        A series counts the routes ``exporters.CELL_VERSIONS`` names for its version, its
        code's cells (every code when summed over codes), its pod's (every pod of the
        version when summed over pods), and one quantity: the request count, the latency
        sum (times the exporter's unit scale), or for a bucket the non-cumulative buckets
        at or below its bound (``le`` is cumulative; +Inf is the count).

        One matrix product per batch of segments does it all: gathering and summing cells
        series by series with numpy indexing cost 5x the rest of a rollout (measured with
        ``benchmarks/bench_fast_path.py``)."""
        u = self.universe
        P = max(self.pods)
        #: Response codes the traffic paths draw: a success and an error (``universe.codes``).
        self.n_codes = len(u.codes) or 2
        C, Q, nb = self.n_codes, self.n_quantities, self.n_buckets
        self.cell_shape = (3, C, P, Q)
        N, K = 3 * C * P * Q, len(u.labels)
        weights = np.zeros((3, C, P, Q, K))
        born = np.zeros((3, C, P, Q, K))
        for k in range(K):
            routes = sorted(CELL_VERSIONS[int(u.version[k])])
            codes = slice(None) if u.code[k] < 0 else slice(int(u.code[k]), int(u.code[k]) + 1)
            # Cells past a version's pods stay zero, so "every pod" is the whole axis.
            pods = slice(None) if u.pod[k] < 0 else slice(int(u.pod[k]), int(u.pod[k]) + 1)
            kind = int(u.kind[k])
            if kind == BUCKET:
                quantities = slice(1, 1 + min(int(u.bucket[k]), nb - 1) + 1)
                scale = 1.0
            elif kind == SUM:
                quantities, scale = slice(1 + nb, 2 + nb), u.sum_scale
            else:  # REQUESTS, COUNT
                quantities, scale = slice(COUNT_AT, COUNT_AT + 1), 1.0
            for r in routes:
                weights[r, codes, pods, quantities, k] = scale
                born[r, codes, pods, COUNT_AT, k] = 1.0
        self._weights = weights.reshape(N, K)
        # Only the cells' request counts decide births: a (3·C·P, K) product, not (N, K).
        self._count_columns = np.flatnonzero(np.arange(N) % Q == COUNT_AT)
        self._born_weights = born.reshape(N, K)[self._count_columns]
        #: Whether any series is a latency sum (else the traffic paths need not draw them).
        self.reads_sum = bool((u.kind == SUM).any())

    # -- writing -----------------------------------------------------------------------

    def _ensure(self, slot: int) -> None:
        have = self.values.shape[1]
        if slot >= have:
            slots = min(self.n_slots, max(2 * have, slot + 1))
            self.values = _grown(self.values, slots)
            self.present = _grown(self.present, slots)
            self._times = self.scrape_s * np.arange(slots)

    def add(self, runs: np.ndarray, slots: np.ndarray, cells: np.ndarray) -> None:
        """Cells' increments of ``runs`` over consecutive segments ending in ``slots``.

        Args:
            runs: (R,) run indexes.
            slots: (S,) the scrape slot each segment falls in (nondecreasing).
            cells: (R, S, 3, C, P, Q) increments per route (primary, canary through its own
                Service, canary through the stable Service), code, pod and quantity (count,
                non-cumulative buckets, latency sum in ms) with P the larger version's pods;
                the sums over routes, codes and pods are added here.
        """
        R, S = cells.shape[:2]
        if cells.shape[4] != self.cell_shape[2]:
            padded = np.zeros((R, S) + self.cell_shape)
            padded[:, :, :, :, : cells.shape[4]] = cells
            cells = padded
        flat = cells.reshape(R * S, -1)
        inc = (flat @ self._weights).reshape(R, S, -1)
        born = (flat[:, self._count_columns] @ self._born_weights).reshape(R, S, -1)
        # Runs in lockstep (the common case) are a slice: far cheaper than fancy indexing.
        rows: slice | np.ndarray = runs
        if len(runs) and int(runs[-1]) - int(runs[0]) == len(runs) - 1:
            rows = slice(int(runs[0]), int(runs[-1]) + 1)
        running = _running(inc, self.total[rows])  # (R, S, K)
        born_running = _running(born, self.born_count[rows])
        self.total[rows] = running[:, -1]
        self.born_count[rows] = born_running[:, -1]
        # The value a scrape records is the running total after the last segment of its slot.
        if len(slots) == 1 or bool((slots[1:] != slots[:-1]).all()):
            last: slice | np.ndarray = slice(None)
            at = slots
        else:
            last = np.flatnonzero(np.append(slots[1:] != slots[:-1], True))
            at = slots[last]
        self._ensure(int(at[-1]))
        cols: slice | np.ndarray = at
        if int(at[-1]) - int(at[0]) == len(at) - 1:
            cols = slice(int(at[0]), int(at[-1]) + 1)
        if isinstance(rows, slice) and isinstance(cols, slice):
            self.values[rows, cols] = running[:, last]
            alive = born_running[:, last] > 0
            if self.missing is not None:
                alive &= ~self.missing[rows, cols][..., None]
            self.present[rows, cols] = alive
            return
        ix = (runs[:, None], at[None, :])
        self.values[ix] = running[:, last]
        alive = born_running[:, last] > 0
        if self.missing is not None:
            alive &= ~self.missing[runs[:, None], at[None, :]][..., None]
        self.present[ix] = alive

    def batch(self) -> SeriesBatch:
        """The samples so far, as the PromQL engine reads them (views, no copy). Slots not
        yet reached hold no sample."""
        return SeriesBatch(self.universe.labels, self._times, self.values, self.present)


def _running(inc: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``start`` (R, K) plus the running sum of ``inc`` (R, S, K) over its segments, in
    place. A loop over the few segments: ``np.cumsum`` along a middle axis is strided and
    cost 4x more (measured on (500, 4, 42))."""
    inc[:, 0] += start
    for i in range(1, inc.shape[1]):
        inc[:, i] += inc[:, i - 1]
    return inc


def _grown(a: np.ndarray, slots: int) -> np.ndarray:
    """``a`` (runs, slots, ...) with its slot axis grown to ``slots``, new slots zero."""
    out = np.zeros((a.shape[0], slots) + a.shape[2:], dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def slots_needed(horizon_s: float, scrape_s: float) -> int:
    """Scrape slots 0..ceil(horizon / scrape)+1, as ``Telemetry`` counts them."""
    return int(math.ceil(horizon_s / scrape_s)) + 2
