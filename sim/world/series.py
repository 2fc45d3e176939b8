"""Raw series as exporters publish them and Prometheus scrapes them, for a batch of runs.

Traffic is served per *cell*: a route (the primary; the canary through its own Service; the
canary through the stable Service, as an Argo blue-green's active Service once switched), a
response code (a success code, an error code) and a pod of the version serving it. Each cell
has a request counter, a latency histogram in the exporter's buckets and a latency sum. An
exporter's series (``sim.world.exporters.Universe``) are each one cell's quantity, or a sum
over routes, codes or pods (a proxy's series), so every series' increments are a gather of
the cells' increments.

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

import numba as nb
import numpy as np

from sim.promql import SeriesBatch
from sim.world.exporters import BUCKET, BUSINESS_KINDS, CELL_VERSIONS, SESSIONS, SUM, Universe

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
        #: Whether a series is a business counter (issue 19): then each cell also holds
        #: its pod's sessions, conversions, order value and engagement, after the sum.
        self.reads_business = bool(np.isin(universe.kind, BUSINESS_KINDS).any())
        #: Quantities per cell: count, buckets, sum (and the four business counters).
        self.n_quantities = self.n_buckets + 2 + (len(BUSINESS_KINDS) if self.reads_business else 0)
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
        """Each series as a sum of cells: for series k, the columns
        ``self._columns[self._starts[k]:self._starts[k + 1]]`` of the cells the traffic
        paths hand in ((R, S, 3, C, P, Q) flattened to N = 3·C·P·Q columns, with the
        buckets made cumulative first), times ``self._scales`` there; ``self._born_*`` the
        same for the request counts of the cells each series counts (it exists once
        they are > 0).

        A series counts the routes ``exporters.CELL_VERSIONS`` names for its version, its
        code's cells (every code when summed over codes), its pod's (every pod of the
        version when summed over pods), and one quantity: the request count, the latency
        sum (times the exporter's unit scale), or for a bucket the cumulative count at its
        bound (``le``; +Inf is the count)."""
        u = self.universe
        P = max(self.pods)
        #: Response codes the traffic paths draw: a success and an error (``universe.codes``).
        self.n_codes = len(u.codes) or 2
        C, Q, nb = self.n_codes, self.n_quantities, self.n_buckets
        self.cell_shape = (3, C, P, Q)
        columns: list[int] = []
        scales: list[float] = []
        born: list[int] = []
        starts, born_starts = [0], [0]
        for k in range(len(u.labels)):
            routes = sorted(CELL_VERSIONS[int(u.version[k])])
            codes = range(C) if u.code[k] < 0 else [int(u.code[k])]
            # Cells past a version's pods stay zero, so "every pod" is the whole axis.
            pods = range(P) if u.pod[k] < 0 else [int(u.pod[k])]
            kind = int(u.kind[k])
            if kind == BUCKET:
                q, scale = 1 + min(int(u.bucket[k]), nb - 1), 1.0
            elif kind == SUM:
                q, scale = 1 + nb, u.sum_scale
            elif kind in BUSINESS_KINDS:
                q, scale = 2 + nb + (kind - SESSIONS), 1.0
            else:  # REQUESTS, COUNT
                q, scale = COUNT_AT, 1.0
            for r in routes:
                for c in codes:
                    for p in pods:
                        at = ((r * C + c) * P + p) * Q
                        columns.append(at + q)
                        scales.append(scale)
                        born.append(at + COUNT_AT)
            starts.append(len(columns))
            born_starts.append(len(born))
        self._starts = np.array(starts, dtype=np.int64)
        self._columns = np.array(columns, dtype=np.int64)
        self._scales = np.array(scales)
        self._born_starts = np.array(born_starts, dtype=np.int64)
        self._born_columns = np.array(born, dtype=np.int64)
        # The cells some series reads, and how far into each cell's quantities: only
        # those are made cumulative per row (most cells are read by no series: other
        # routes, and pods or quantities no query selects).
        reach: dict[int, int] = {}
        for col in columns + born:
            base = col - col % Q
            reach[base] = max(reach.get(base, base), col + 1)
        self._cell_starts = np.array(sorted(reach), dtype=np.int64)
        self._cell_ends = np.array([reach[b] for b in sorted(reach)], dtype=np.int64)
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

    def add(self, runs: np.ndarray, slots: np.ndarray, cells: np.ndarray, business: np.ndarray | None = None) -> None:
        """Cells' increments of ``runs`` over consecutive segments ending in ``slots``.

        Args:
            runs: (R,) run indexes.
            slots: (S,) the scrape slot each segment falls in (nondecreasing).
            cells: (R, S, 3, C, P, Q) increments per route (primary, canary through its own
                Service, canary through the stable Service), code, pod and quantity (count,
                non-cumulative buckets, latency sum in ms) with P the larger version's pods;
                the sums over routes, codes and pods are added here.
            business: (R, S, 2, P, 4) the business counters' increments per version
                (primary, canary) and pod, when the store reads them: counted with the
                success code's cells of the primary's route and the canary's own route.
        """
        R, S = cells.shape[:2]
        if cells.shape[2:] != self.cell_shape:
            padded = np.zeros((R, S) + self.cell_shape)
            padded[:, :, :, :, : cells.shape[4], : cells.shape[5]] = cells
            cells = padded
        if business is not None and self.reads_business:
            nq = business.shape[-1]
            q0 = self.n_buckets + 2
            P = business.shape[3]
            cells[:, :, 0, 0, :P, q0 : q0 + nq] = business[:, :, 0]
            cells[:, :, 1, 0, :P, q0 : q0 + nq] = business[:, :, 1]
        flat = np.ascontiguousarray(cells).reshape(R * S, -1)
        K = len(self._starts) - 1
        # Runs in lockstep (the common case) are a slice: far cheaper than fancy indexing.
        rows: slice | np.ndarray = runs
        if len(runs) and int(runs[-1]) - int(runs[0]) == len(runs) - 1:
            rows = slice(int(runs[0]), int(runs[-1]) + 1)
        running, born_running = np.empty((R * S, K)), np.empty((R * S, K))
        _gather_sums(
            flat,
            S,
            self.n_buckets,
            self._cell_starts,
            self._cell_ends,
            self._starts,
            self._columns,
            self._scales,
            self._born_starts,
            self._born_columns,
            np.empty(flat.shape[1]),
            np.ascontiguousarray(self.total[rows]),
            np.ascontiguousarray(self.born_count[rows]),
            running,
            born_running,
        )
        running, born_running = running.reshape(R, S, K), born_running.reshape(R, S, K)
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


@nb.njit(cache=True)
def _gather_sums(
    flat,
    n_segments,
    n_buckets,
    cell_starts,
    cell_ends,
    starts,
    columns,
    scales,
    born_starts,
    born_columns,
    row,
    total,
    born_total,
    running,
    born_running,
):  # pragma: no cover - compiled
    """Series' running totals from cells' increments, row by row (a row: one run's
    segment; run ``i // n_segments``'s segments in order).

    ``row`` is the row with each cell's buckets made cumulative (``le``), for the
    cells some series reads (each from ``cell_starts[c]`` up to ``cell_ends[c]``: the
    quantities past the last one read are left out); a series' increment sums
    ``row[columns[j]] * scales[j]`` over ``j`` in ``starts[k]`` .. ``starts[k + 1]``,
    and its request count the counts ``born_columns`` names. ``running[i, k]`` is the
    run's ``total`` before its first segment plus its increments up to segment ``i``
    (``born_running``: the same of ``born_total``).

    The one speed device of the series: each series is a sum of a few cells, so a compiled
    gather costs rows x (cells per series), in a fixed order. A dense 0/1 weight matrix
    product did the same through BLAS, which runs threads of its own (twice the CPU of
    the whole rollout, measured) and may sum in another order with another thread count,
    so a run's latency sums would depend on the worker count; numpy fancy indexing and
    reductions series by series cost 5x the rest of a rollout, a strided ``np.cumsum``
    of the buckets alone a third of it, and the running sums over segments in numpy
    another pass over the increments (as much as the gather itself, issue 17)."""
    for i in range(flat.shape[0]):
        for c in range(cell_starts.shape[0]):
            base, end = cell_starts[c], cell_ends[c]
            row[base] = flat[i, base]
            acc = 0.0
            for q in range(base + 1, min(base + 1 + n_buckets, end)):
                acc += flat[i, q]
                row[q] = acc
            # The latency sum and any business counters are copied as they are.
            for q in range(base + 1 + n_buckets, end):
                row[q] = flat[i, q]
        first = i % n_segments == 0
        run = i // n_segments
        for k in range(starts.shape[0] - 1):
            inc = 0.0
            for j in range(starts[k], starts[k + 1]):
                inc += row[columns[j]] * scales[j]
            running[i, k] = inc + (total[run, k] if first else running[i - 1, k])
            count = 0.0
            for j in range(born_starts[k], born_starts[k + 1]):
                count += row[born_columns[j]]
            born_running[i, k] = count + (born_total[run, k] if first else born_running[i - 1, k])


def _grown(a: np.ndarray, slots: int) -> np.ndarray:
    """``a`` (runs, slots, ...) with its slot axis grown to ``slots``, new slots zero."""
    out = np.zeros((a.shape[0], slots) + a.shape[2:], dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def slots_needed(horizon_s: float, scrape_s: float) -> int:
    """Scrape slots 0..ceil(horizon / scrape)+1, as ``Telemetry`` counts them."""
    return int(math.ceil(horizon_s / scrape_s)) + 2
