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
from sim.world.exporters import BUCKET, CELL_VERSIONS, COUNT, REQUESTS, SUM, Universe

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
        """Where each series' increment comes from in the cell array the traffic paths
        hand in, extended to (R, S, 6, C+1, P+1, Q): the version axis holds each
        ``Universe.version`` (the sum of the routes ``exporters.CELL_VERSIONS`` names), index
        C of the code axis the sum over codes, index P of the pod axis the sum over pods
        (P = the larger version's pods), and Q the quantities (count, buckets, sum)."""
        u = self.universe
        P = max(self.pods)
        #: Response codes the traffic paths draw: a success and an error (``universe.codes``).
        self.n_codes = len(u.codes) or 2
        C = self.n_codes
        code = np.where(u.code < 0, C, u.code)
        pod = np.where(u.pod < 0, P, u.pod)
        nb = self.n_buckets
        # Buckets are cumulative (``le``): bucket b counts every request at or below its
        # bound, so it gathers the non-cumulative buckets 0..b; +Inf is the count.
        self._bucket_cols = np.where(u.kind == BUCKET, u.bucket, -1)
        q = np.select(
            [u.kind == REQUESTS, u.kind == COUNT, u.kind == SUM],
            [COUNT_AT, COUNT_AT, 1 + nb],
            default=COUNT_AT,
        )
        shape = (len(CELL_VERSIONS), C + 1, P + 1, self.n_quantities)
        self.shape = shape
        self._flat = np.ravel_multi_index((u.version.astype(np.int64), code, pod, q), shape)
        # Buckets gather from a cumulative-over-buckets copy of the cells (see ``add``).
        self._flat_bucket = np.ravel_multi_index(
            (u.version.astype(np.int64), code, pod, 1 + np.maximum(u.bucket, 0)), shape
        )
        self._is_bucket = u.kind == BUCKET
        self._is_sum = u.kind == SUM
        # A series exists once its cell(s) served a request: the count of the same cells.
        self._flat_born = np.ravel_multi_index((u.version.astype(np.int64), code, pod, np.zeros_like(code)), shape)
        self._scale = np.where(self._is_sum, u.sum_scale, 1.0)

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
        ext = np.zeros((R, S) + self.shape)
        P = cells.shape[4]
        for version, routes in CELL_VERSIONS.items():
            ext[:, :, version, : self.n_codes, :P] = cells[:, :, sorted(routes)].sum(axis=2)
        ext[:, :, :, self.n_codes] = ext[:, :, :, : self.n_codes].sum(axis=3)
        ext[:, :, :, :, -1] = ext[:, :, :, :, :-1].sum(axis=4)
        flat = ext.reshape(R, S, -1)
        inc = flat[:, :, self._flat]
        born = flat[:, :, self._flat_born]
        if self._is_bucket.any():
            cum_b = np.cumsum(ext[..., 1 : 1 + self.n_buckets], axis=-1)
            ext[..., 1 : 1 + self.n_buckets] = cum_b
            inc[:, :, self._is_bucket] = ext.reshape(R, S, -1)[:, :, self._flat_bucket[self._is_bucket]]
        inc *= self._scale
        running = self.total[runs][:, None, :] + np.cumsum(inc, axis=1)  # (R, S, K)
        born_running = self.born_count[runs][:, None, :] + np.cumsum(born, axis=1)
        self.total[runs] = running[:, -1]
        self.born_count[runs] = born_running[:, -1]
        # The value a scrape records is the running total after the last segment of its slot.
        last = np.flatnonzero(np.append(slots[1:] != slots[:-1], True))
        at = slots[last]
        self._ensure(int(at[-1]))
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


def _grown(a: np.ndarray, slots: int) -> np.ndarray:
    """``a`` (runs, slots, ...) with its slot axis grown to ``slots``, new slots zero."""
    out = np.zeros((a.shape[0], slots) + a.shape[2:], dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def slots_needed(horizon_s: float, scrape_s: float) -> int:
    """Scrape slots 0..ceil(horizon / scrape)+1, as ``Telemetry`` counts them."""
    return int(math.ceil(horizon_s / scrape_s)) + 2
