"""The metrics pipeline, as a Prometheus-backed controller sees it.

Each version's counters (requests, errors, latency histogram buckets) are scraped every
``scrape_interval`` at t = k·S. A query ``rate(x[W])`` evaluated at time t uses the
samples with timestamps in (t − W, t] that have been ingested (timestamp + lag ≤ t)
and were not lost (missing scrapes); it needs at least two of them, and covers the
requests between the first and the last. Ratios (success rate, histogram quantiles) are
unaffected by ``rate``'s extrapolation, which scales numerator and denominator alike.
No samples, or no requests in the window, is *no data* (Flagger: ``ErrNoValuesFound``).

Queries are evaluated for all runs of a batch that tick at the same time in one
vectorised step; they draw no random numbers, so computing a value nobody reads
changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from sim.inputs.scenario import MetricBinding
from sim.policies.base import MetricQuery
from sim.policies.judges.base import JudgeBatch, JudgeData, VersionSeries

_EPS = 1e-9


PRIMARY, CANARY = 0, 1


class Telemetry:
    """Scraped counters of both versions, for every run of a batch, and queries on them.

    Arrays are indexed ``[run, slot, version]``: slot k holds the increments of requests
    in ((k−1)S, kS]; version 0 is the primary, 1 the canary. Latency histograms are kept
    for the canary, and for the primary only when asked (judges comparing versions).

    Args:
        runs: rollouts in the batch.
        horizon_s: last time anything is recorded.
        scrape_s: scrape interval.
        lag_s: ingestion lag.
        missing: (runs, slots) mask of lost scrapes, or None when none are lost.
        bounds_ms: finite histogram bucket bounds.
        primary_histogram: keep the primary's latency histogram too.
        bindings: custom query name -> the simulated signal it measures.
        primary_counts: draw the primary's requests and errors even when no query reads
            them (a statistical judge compares both versions).
    """

    def __init__(
        self,
        runs: int,
        horizon_s: float,
        scrape_s: float,
        lag_s: float,
        missing: np.ndarray | None,
        bounds_ms: Sequence[float],
        primary_histogram: bool = False,
        bindings: dict[str, MetricBinding] | None = None,
        primary_counts: bool = False,
    ) -> None:
        self.scrape_s = scrape_s
        self.lag_s = lag_s
        self.n_slots = int(math.ceil(horizon_s / scrape_s)) + 2
        self.missing = missing
        self.bounds_ms = np.asarray(bounds_ms, dtype=float)
        self._bounds_tuple = tuple(float(b) for b in bounds_ms)  # for JudgeData, built once
        self.bindings = bindings or {}
        #: Whether anything reads these per-version counters (a judge, a bound signal, a
        #: query not evaluated over raw series); the world clears it when nothing does.
        self.counted = True
        #: Whether any query reads the primary's counters (else they are not drawn).
        self.reads_primary = primary_counts or any(b.version == "primary" for b in self.bindings.values())
        # Slots are allocated as time advances: most rollouts decide long before the
        # horizon, and first-touching a horizon-sized array costs more than the run.
        slots, nb = min(self.n_slots, 64), len(self.bounds_ms) + 1
        #: Requests and errors per run, slot and version.
        self.n = np.zeros((runs, slots, 2))
        self.err = np.zeros((runs, slots, 2))
        #: The canary's latency histogram per run, slot and bucket; the primary's when kept.
        self.hist = np.zeros((runs, slots, nb))
        self.hist_primary = np.zeros((runs, slots, nb)) if primary_histogram else None

    def ensure(self, slot: int) -> None:
        """Make room for ``slot`` (at least doubling the slots allocated so far)."""
        have = self.n.shape[1]
        if slot >= have:
            slots = min(self.n_slots, max(2 * have, slot + 1))
            self.n, self.err, self.hist = _grown(self.n, slots), _grown(self.err, slots), _grown(self.hist, slots)
            if self.hist_primary is not None:
                self.hist_primary = _grown(self.hist_primary, slots)

    def slot_of(self, seg_end: np.ndarray) -> np.ndarray:
        return np.minimum(np.ceil(seg_end / self.scrape_s - _EPS).astype(np.int64), self.n_slots - 1)

    def add(
        self,
        runs: np.ndarray,
        slots: np.ndarray,
        n: np.ndarray,
        err: np.ndarray,
        hist: np.ndarray,
        hist_primary: np.ndarray | None,
        unique: bool,
    ) -> None:
        """Add increments of shape (runs, segments, ...) at the segments' slots."""
        self.ensure(int(slots[-1]))
        ix: tuple[Any, Any] = (runs[:, None], slots[None, :])
        if unique and _consecutive(runs) and _consecutive(slots):
            # Runs in lockstep and whole slots (the common case): plain slices, far
            # cheaper than fancy indexing.
            ix = (slice(int(runs[0]), int(runs[-1]) + 1), slice(int(slots[0]), int(slots[-1]) + 1))
        if unique:
            self.n[ix] += n
            self.err[ix] += err
            self.hist[ix] += hist
            if self.hist_primary is not None and hist_primary is not None:
                self.hist_primary[ix] += hist_primary
        else:
            # Several segments in one slot (cut by a fault edge or a rate step).
            np.add.at(self.n, ix, n)
            np.add.at(self.err, ix, err)
            np.add.at(self.hist, ix, hist)
            if self.hist_primary is not None and hist_primary is not None:
                np.add.at(self.hist_primary, ix, hist_primary)

    def span(self, run: int, t: float, window_s: float) -> tuple[int, int] | None:
        """Slots covered by ``rate(...[window])`` at ``t``: (first, end) for slicing, or
        None when fewer than two usable samples fall in the window."""
        s = self.scrape_s
        hi = min(int(math.floor((t - self.lag_s) / s + _EPS)), self.n.shape[1] - 1)
        lo = max(int(math.floor((t - window_s) / s + _EPS)) + 1, 0)
        if hi - lo < 1:
            return None
        if self.missing is not None:
            ok = np.flatnonzero(~self.missing[run, lo : hi + 1])
            if len(ok) < 2:
                return None
            lo, hi = lo + int(ok[0]), lo + int(ok[-1])
        return lo + 1, hi + 1

    def judge_data(self, run: int, t: float, histograms: bool) -> JudgeData:
        """Both versions' per-slot counters of ``run`` as a judge sees them at ``t``.

        Only slots scraped and ingested by ``t`` (timestamp + lag <= t, as ``span``), so a
        judge reads what a Prometheus query could. A lost scrape (``missing``) shows no
        increment; counters being cumulative, the next sample that arrives carries it.
        Arrays are read-only views (no copy).
        """
        k = self._ingested_slots(t)
        hp = self.hist_primary if histograms else None
        req_c, err_c = self.n[run, :k, CANARY], self.err[run, :k, CANARY]
        req_p, err_p = self.n[run, :k, PRIMARY], self.err[run, :k, PRIMARY]
        hist_c = self.hist[run, :k] if histograms else None
        hist_p = None if hp is None else hp[run, :k]
        if self.missing is not None:
            lost = self.missing[run, :k]
            req_c, err_c = _merge_lost(req_c, lost), _merge_lost(err_c, lost)
            req_p, err_p = _merge_lost(req_p, lost), _merge_lost(err_p, lost)
            hist_c = None if hist_c is None else _merge_lost(hist_c, lost)
            hist_p = None if hist_p is None else _merge_lost(hist_p, lost)
        for x in (req_c, err_c, hist_c, req_p, err_p, hist_p):
            if x is not None:
                x.flags.writeable = False
        return JudgeData(
            t,
            self.scrape_s,
            self._bounds_tuple,
            VersionSeries(req_c, err_c, hist_c),
            VersionSeries(req_p, err_p, hist_p),
        )

    def judge_batch(self, group: np.ndarray, t: float, histograms: bool) -> JudgeBatch:
        """``judge_data`` of every run of ``group`` at ``t``, as one batch (row i: run
        ``group[i]``), built in one pass: ``judge_batch(g, t, h).row(i)`` holds the numbers
        of ``judge_data(g[i], t, h)``. Arrays are copies (fancy indexing), read-only."""
        group = np.asarray(group, dtype=np.int64)
        k = self._ingested_slots(t)
        hp = self.hist_primary if histograms else None
        parts: list[np.ndarray | None] = [
            self.n[group, :k, CANARY],
            self.err[group, :k, CANARY],
            self.n[group, :k, PRIMARY],
            self.err[group, :k, PRIMARY],
            self.hist[group, :k] if histograms else None,
            None if hp is None else hp[group, :k],
        ]
        if self.missing is not None:
            lost = self.missing[group, :k]
            parts = [None if x is None else _merge_lost_rows(x, lost) for x in parts]
        for x in parts:
            if x is not None:
                x.flags.writeable = False
        req_c, err_c, req_p, err_p, hist_c, hist_p = parts
        assert req_c is not None and err_c is not None and req_p is not None and err_p is not None
        return JudgeBatch(t, self.scrape_s, self._bounds_tuple, req_c, err_c, req_p, err_p, hist_c, hist_p)

    def _ingested_slots(self, t: float) -> int:
        """Slots scraped and ingested by ``t`` (timestamp + lag <= t), at least one."""
        return max(min(int(math.floor((t - self.lag_s) / self.scrape_s + _EPS)), self.n.shape[1] - 1), 0) + 1

    def window(
        self, runs: np.ndarray, t: float, window_s: float, version: int = CANARY
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Requests, errors (R,), latency histogram (R, B) and seconds covered (R,) of
        ``version`` in each run's query window (all zero where the query has fewer than
        two samples)."""
        R = len(runs)
        hist = self.hist if version == CANARY else self.hist_primary
        if hist is None:
            raise ValueError("the primary's latency histogram is not kept (primary_histogram=False)")
        if self.missing is None:
            sp = self.span(0, t, window_s)
            if sp is None:
                return np.zeros(R), np.zeros(R), np.zeros((R, hist.shape[2])), np.zeros(R)
            a, b = sp
            return (
                self.n[runs, a:b, version].sum(axis=1),
                self.err[runs, a:b, version].sum(axis=1),
                hist[runs, a:b].sum(axis=1),
                np.full(R, (b - a) * self.scrape_s),
            )
        n, e, h, sec = np.zeros(R), np.zeros(R), np.zeros((R, hist.shape[2])), np.zeros(R)
        for i, r in enumerate(runs):
            sp = self.span(int(r), t, window_s)
            if sp is not None:
                a, b = sp
                n[i], e[i] = self.n[r, a:b, version].sum(), self.err[r, a:b, version].sum()
                h[i], sec[i] = hist[r, a:b].sum(0), (b - a) * self.scrape_s
        return n, e, h, sec

    def query(self, q: MetricQuery, runs: np.ndarray, t: float) -> np.ndarray:
        """One query for several runs at ``t``; NaN = no data."""
        if q.signal == "custom":
            return self._custom(q, self.bindings[q.name], runs, t)
        n, err, hist, _ = self.window(runs, t, q.window_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            if q.signal == "request-success-rate":
                return np.where(n > 0, 100.0 * (n - err) / n, np.nan)
            if q.signal == "request-duration":
                return histogram_quantile_rows(0.99, self.bounds_ms, hist)
        raise ValueError(f"unknown signal {q.signal!r}")

    def _custom(self, q: MetricQuery, b: MetricBinding, runs: np.ndarray, t: float) -> np.ndarray:
        """A custom metric bound to a simulated signal (see ``MetricBinding``)."""
        R = len(runs)
        if b.signal == "constant":
            # MetricBinding's validator requires a value for a constant signal.
            return np.full(R, cast(float, b.value) * b.scale)
        if b.signal == "series":
            value = None
            for point in b.series:
                if point.at <= t:
                    value = point.value
            return np.full(R, np.nan if value is None else value * b.scale)
        version = CANARY if b.version == "canary" else PRIMARY
        n, err, hist, seconds = self.window(runs, t, q.window_s, version)
        with np.errstate(invalid="ignore", divide="ignore"):
            if b.signal == "success-rate":
                v = np.where(n > 0, 100.0 * (n - err) / n, np.nan)
            elif b.signal == "error-rate":
                v = np.where(n > 0, 100.0 * err / n, np.nan)
            elif b.signal == "request-rate":
                # rate() of a counter that did not move is 0, not no data.
                v = np.where(seconds > 0, n / np.where(seconds > 0, seconds, 1.0), np.nan)
            else:  # latency-pNN
                v = histogram_quantile_rows(int(b.signal[-2:]) / 100.0, self.bounds_ms, hist)
        return v * b.scale


def _grown(a: np.ndarray, slots: int) -> np.ndarray:
    """``a`` (runs, slots, ...) with its slot axis grown to ``slots``, new slots zero."""
    out = np.zeros((a.shape[0], slots) + a.shape[2:])
    out[:, : a.shape[1]] = a
    return out


def _consecutive(ix: np.ndarray) -> bool:
    """Whether ``ix`` is k, k+1, ..., k+n-1."""
    return len(ix) > 0 and int(ix[-1]) - int(ix[0]) == len(ix) - 1 and bool(np.all(np.diff(ix) == 1))


def _merge_lost(x: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """Per-slot increments as scrapes see them: a lost slot shows 0 and its increments
    arrive with the next slot that was scraped (increments after the last one, later)."""
    ok = np.flatnonzero(~lost)
    out = np.zeros_like(x)
    if len(ok):
        cum = np.cumsum(x, axis=0)[ok]
        out[ok] = np.diff(cum, axis=0, prepend=np.zeros((1,) + x.shape[1:]))
    return out


def _merge_lost_rows(x: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """``_merge_lost`` of every run at once: ``x`` (runs, slots, ...), ``lost`` (runs, slots).

    A scraped slot shows the counter's growth since the run's previous scraped slot (the
    difference of cumulative sums), a lost one 0.
    """
    cum = np.cumsum(x, axis=1)
    runs, slots = lost.shape
    idx = np.where(lost, -1, np.arange(slots)[None, :])
    # the previous scraped slot of each slot (-1: none)
    prev = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((runs, 1), -1), prev[:, :-1]], axis=1)
    r = np.arange(runs)[:, None]
    before = np.where((prev >= 0).reshape(prev.shape + (1,) * (x.ndim - 2)), cum[r, np.maximum(prev, 0)], 0.0)
    return np.where(lost.reshape(lost.shape + (1,) * (x.ndim - 2)), 0.0, cum - before)


def histogram_quantile_rows(q: float, bounds_ms: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``histogram_quantile`` (Prometheus ``bucketQuantile``) of each row of ``counts``.

    Rows are non-cumulative bucket counts (finite bounds, then +Inf). NaN for an empty
    row; linear interpolation in the bucket holding rank q·total, from 0 in the first
    bucket; the last finite bound when the rank falls in +Inf.
    """
    total = counts.sum(axis=1)
    cum = np.cumsum(counts, axis=1)
    rank = q * total
    b = np.argmax(cum >= rank[:, None] - 1e-9 * np.maximum(total[:, None], 1.0), axis=1)
    nb = len(bounds_ms)
    inf_bucket = b >= nb
    bi = np.minimum(b, nb - 1)
    rows = np.arange(len(counts))
    start = np.where(bi == 0, 0.0, bounds_ms[np.maximum(bi - 1, 0)])
    before = np.where(bi == 0, 0.0, cum[rows, np.maximum(bi - 1, 0)])
    inside = counts[rows, bi]
    end = bounds_ms[bi]
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(inside > 0, start + (end - start) * (rank - before) / inside, end)
    val = np.where(inf_bucket, bounds_ms[-1], val)
    return np.where(total > 0, val, np.nan)
