"""histogram_quantile over classic (``le``-labelled) bucket series, vectorised over runs.

Follows promql/functions.go funcHistogramQuantile and promql/quantile.go bucketQuantile,
coalesceBuckets and ensureMonotonic of Prometheus v2.42.0. Buckets are grouped by their
labels without ``le`` and ``__name__`` once per universe; which buckets exist differs
per run (a bucket series exists from its first increment), so absent buckets are simply
left out of that run's computation, as Prometheus never sees them.
"""

from __future__ import annotations

import math
import re

import numpy as np

from sim.promql.frames import VectorData, drop_name, label_value
from sim.promql.series import Labels

_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_GO_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")


def parse_go_float(text: str) -> float | None:
    """A label value as Go's strconv.ParseFloat reads it, or None where it fails.

    Python's ``float`` is more lenient (whitespace, underscores), so the accepted forms
    are checked first: decimal, hex with a ``p`` exponent, Inf/Infinity and NaN in any
    case, each with an optional sign.
    """
    if _GO_FLOAT.fullmatch(text):
        return float(text)
    if _GO_HEX_FLOAT.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        return sign * float.fromhex(text.lstrip("+-"))
    return None


class HistogramPlan:
    """The bucket groups of histogram_quantile's input, fixed for a universe.

    Attributes:
        labels: the output series (the groups' labels, sorted).
        groups: for each output, the input columns of its distinct upper bounds in
            increasing order, each a tuple of columns with that bound (coalesced).
        bounds: for each output, the distinct upper bounds.
    """

    def __init__(self, input_labels: tuple[Labels, ...]) -> None:
        members: dict[Labels, dict[float, list[int]]] = {}
        for column, labels in enumerate(input_labels):
            bound = parse_go_float(label_value(labels, "le"))
            if bound is None:
                continue  # no or malformed le: skipped, as funcHistogramQuantile does
            key = tuple(item for item in drop_name(labels) if item[0] != "le")
            members.setdefault(key, {}).setdefault(bound, []).append(column)
        self.labels: tuple[Labels, ...] = tuple(sorted(members))
        self.groups: list[list[list[int]]] = []
        self.bounds: list[np.ndarray] = []
        for key in self.labels:
            by_bound = members[key]
            # NaN bounds sort first under Go's sort of buckets by upperBound (Less is <,
            # NaN compares false): they are kept in place; bounds here are sorted with NaN
            # first, which is where they end for such inputs in practice.
            ordered = sorted(by_bound, key=lambda b: (not math.isnan(b), b))
            self.groups.append([by_bound[b] for b in ordered])
            self.bounds.append(np.array(ordered))

    def evaluate(self, q: np.ndarray, data: VectorData) -> VectorData:
        """The quantile ``q`` (R,) of each group for each run."""
        n = data.values.shape[0]
        values = np.full((n, len(self.labels)), np.nan)
        present = np.zeros((n, len(self.labels)), dtype=bool)
        for out, (columns, bounds) in enumerate(zip(self.groups, self.bounds, strict=True)):
            counts, exists = self._coalesced(data, columns)
            present[:, out] = exists.any(axis=1)
            values[:, out] = bucket_quantile(q, bounds, counts, exists)
        return VectorData(values, present)

    @staticmethod
    def _coalesced(data: VectorData, columns: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Counts (R, B) and existence per distinct bound (coalesceBuckets adds equal bounds)."""
        if all(len(cols) == 1 for cols in columns):
            # No bound repeats (the common case): the columns as they are, in one gather.
            single = [cols[0] for cols in columns]
            return np.asarray(data.values[:, single], dtype=float), np.asarray(data.present[:, single], dtype=bool)
        n = data.values.shape[0]
        counts = np.zeros((n, len(columns)))
        exists = np.zeros((n, len(columns)), dtype=bool)
        for b, cols in enumerate(columns):
            if len(cols) == 1:
                counts[:, b] = data.values[:, cols[0]]
                exists[:, b] = data.present[:, cols[0]]
            else:
                sub = data.present[:, cols]
                counts[:, b] = np.where(sub, data.values[:, cols], 0.0).sum(axis=1)
                exists[:, b] = sub.any(axis=1)
        return counts, exists


def bucket_quantile(q: np.ndarray, bounds: np.ndarray, counts: np.ndarray, exists: np.ndarray) -> np.ndarray:
    """promql/quantile.go bucketQuantile for each run, over the buckets that exist.

    Args:
        q: (R,) the quantile.
        bounds: (B,) distinct upper bounds, increasing.
        counts: (R, B) cumulative counts.
        exists: (R, B) whether the run has that bucket.

    NaN where the highest existing bucket is not +Inf, fewer than 2 buckets exist, or
    the count is 0; -Inf/+Inf for q < 0 / q > 1; counts made monotonic (ensureMonotonic)
    first; the rank's bucket found as sort.Search does; the first bucket's lower edge is
    0 unless its upper bound is <= 0, where that bound is returned.
    """
    n, width = counts.shape
    result = np.full(n, np.nan)
    if width == 0:
        return result
    rows = np.arange(n)
    n_exist = exists.sum(axis=1)
    last = width - 1 - np.argmax(exists[:, ::-1], axis=1)
    top_is_inf = np.isposinf(bounds[last]) & (n_exist > 0)
    # ensureMonotonic: a running maximum over existing buckets; NaN counts stay NaN
    # (Go's comparisons with NaN are false) and do not raise the maximum.
    usable = np.where(exists & ~np.isnan(counts), counts, -np.inf)
    running = np.maximum.accumulate(usable, axis=1)
    monotonic = np.where(np.isnan(counts), np.nan, np.maximum(counts, running))
    monotonic = np.where(exists, monotonic, np.nan)
    observations = monotonic[rows, last]
    valid = top_is_inf & (n_exist >= 2) & (observations != 0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rank = q * observations
        # sort.Search over all but the last existing bucket: the first with count >= rank
        # (a binary search; on monotonic counts the same as the first match).
        searchable = exists.copy()
        searchable[rows, last] = False
        reaches = searchable & (monotonic >= rank[:, None])
        found = reaches.any(axis=1)
        b = np.where(found, np.argmax(reaches, axis=1), last)
        # The existing bucket before b, and the one before the last (for b == last).
        slots = np.where(exists, np.arange(width)[None, :], -1)
        before = np.maximum.accumulate(slots, axis=1)
        previous_of = np.full((n, width), -1)
        previous_of[:, 1:] = before[:, :-1]
        prev_b = previous_of[rows, b]
        prev_last = previous_of[rows, last]
        first_exist = np.argmax(exists, axis=1)
        is_first = b == first_exist
        bucket_end = bounds[b]
        start = np.where(prev_b >= 0, bounds[np.maximum(prev_b, 0)], 0.0)
        count = monotonic[rows, b] - np.where(prev_b >= 0, monotonic[rows, np.maximum(prev_b, 0)], 0.0)
        rank_in = rank - np.where(prev_b >= 0, monotonic[rows, np.maximum(prev_b, 0)], 0.0)
        interpolated = start + (bucket_end - start) * (rank_in / count)
        value = np.where(is_first & (bucket_end <= 0), bucket_end, interpolated)
        value = np.where(~found, bounds[np.maximum(prev_last, 0)], value)
    result = np.where(valid, value, np.nan)
    result = np.where(q < 0, -np.inf, result)
    result = np.where(q > 1, np.inf, result)
    result = np.where(np.isnan(q), np.nan, result)
    return result
