"""Vector and range selectors: which series, which samples (Prometheus 2.42 windows).

Prometheus works in int64 milliseconds; so do these, so that window edges are exact.
An instant selector takes, per series, the latest sample with
``ref - lookback <= t <= ref`` (promql/engine.go vectorSelectorSingle: a sample is
dropped only when ``t < refTime - lookbackDelta``); a range selector ``x[W]`` takes the
samples with ``ref - W <= t <= ref`` (engine.go matrixIterSlice keeps ``t >= mint``, and
the iterator stops at maxt inclusive; 3.x made the left edge open). ``ref`` is the
evaluation time (or the ``@`` time) minus ``offset``. Samples after the ingestion cutoff
do not exist yet.
"""

from __future__ import annotations

import numpy as np

from sim.promql.frames import Context, VectorData, WindowData, label_value
from sim.promql.parse import At, Kind, Selector
from sim.promql.series import Labels

#: Prometheus's staleness marker (model/value/value.go StaleNaN): a NaN with this exact
#: bit pattern. A sample holding it marks its series stale: an instant selector whose
#: latest sample is a marker returns nothing, and range selectors skip markers
#: (engine.go vectorSelectorSingle, matrixIterSlice). Any other NaN is a value.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


def is_stale(values: np.ndarray) -> np.ndarray | None:
    """Which values are staleness markers (compared bit for bit); None when none is.

    Only NaNs can be markers, so the bits are compared for the NaNs alone (most
    windows have none).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        # A NaN makes the total NaN (so can Inf - Inf: then the mask below decides);
        # einsum's total is the cheapest pass here and allocates no mask.
        if not np.isnan(np.einsum(values, list(range(values.ndim)), [])):
            return None
    nan = np.isnan(values)
    stale = np.zeros(values.shape, dtype=bool)
    stale[nan] = np.asarray(values[nan]).view(np.uint64) == STALE_NAN_BITS
    return stale if stale.any() else None


def to_ms(seconds: float) -> int:
    """Seconds as Prometheus's int64 milliseconds (rounded: our times are floats)."""
    return int(round(seconds * 1000.0))


def reference_ms(ctx: Context, offset_s: float, at: At | None) -> int:
    """The instant a selector looks back from: the ``@`` time (or now) minus ``offset``.

    For an instant query ``start()`` and ``end()`` are both the evaluation time.
    """
    base = ctx.t_ms if at is None or at.where != "time" else to_ms(at.time_s)
    return base - to_ms(offset_s)


def _columns(indexes: list[int], universe_size: int) -> slice | np.ndarray:
    """A slice when the selected series are contiguous (a view, not a copy)."""
    if indexes and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return slice(indexes[0], indexes[-1] + 1)
    return np.array(indexes, dtype=np.intp)


def matching_series(selector: Selector, universe: tuple[Labels, ...]) -> list[int]:
    """Indexes of the universe's series that every matcher of ``selector`` accepts."""
    return [
        k for k, labels in enumerate(universe) if all(m.matches(label_value(labels, m.name)) for m in selector.matchers)
    ]


class BoundSelector:
    """An instant vector selector bound to a universe."""

    kind: Kind = "vector"

    def __init__(self, node: Selector, universe: tuple[Labels, ...]) -> None:
        self.node = node
        indexes = matching_series(node, universe)
        self.labels: tuple[Labels, ...] = tuple(universe[k] for k in indexes)
        self._columns = _columns(indexes, len(universe))

    def evaluate(self, ctx: Context) -> VectorData:
        """The latest visible sample of each series within the lookback."""
        values, present, _ = self.evaluate_with_times(ctx)
        return VectorData(values, present)

    def evaluate_with_times(self, ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, present, sample timestamps in ms), each (R, K)."""
        ref = reference_ms(ctx, self.node.offset_s, self.node.at)
        times, values, present = ctx.samples(ref - ctx.lookback_ms, ref)
        n, k = ctx.n_runs, len(self.labels)
        if times.size == 0 or k == 0:
            return np.zeros((n, k)), np.zeros((n, k), dtype=bool), np.zeros((n, k), dtype=np.int64)
        values = values[:, :, self._columns]
        present = present[:, :, self._columns]
        width = times.size
        newest = present[:, -1, :]
        if newest.all():  # the usual case: every series has its latest scrape
            picked = values[:, -1, :]
            found = newest if (stale := is_stale(picked)) is None else newest & ~stale
            return picked, found, np.full(newest.shape, times[-1])
        last = width - 1 - np.argmax(present[:, ::-1, :], axis=1)
        found = np.asarray(present.any(axis=1))
        picked = np.take_along_axis(values, last[:, None, :], axis=1)[:, 0, :]
        if (stale := is_stale(picked)) is not None:
            found = found & ~stale
        return picked, found, times[last]


class BoundRangeSelector:
    """A range selector ``x[W]`` bound to a universe.

    Its *family* is every series of the universe with the selector's metric name (or
    just its own series when it has no name): range functions are computed once per
    family, window and function and shared by all selectors of the family (the two
    sides of a success-rate ratio select the same counter with different matchers).
    """

    kind: Kind = "matrix"

    def __init__(self, node: Selector, range_s: float, universe: tuple[Labels, ...]) -> None:
        self.node = node
        self.range_s = range_s
        self._range_ms = to_ms(range_s)
        indexes = matching_series(node, universe)
        self.labels: tuple[Labels, ...] = tuple(universe[k] for k in indexes)
        self._columns = _columns(indexes, len(universe))
        family = indexes
        if node.name is not None:
            family = [k for k, labels in enumerate(universe) if label_value(labels, "__name__") == node.name]
        self.family: tuple[int, ...] = tuple(family)
        self._family_columns = _columns(family, len(universe))
        where = {k: i for i, k in enumerate(family)}
        self.positions = _columns([where[k] for k in indexes], len(family))

    def bounds(self, ctx: Context) -> tuple[int, int]:
        """The window's (start, end) in ms for this evaluation."""
        ref = reference_ms(ctx, self.node.offset_s, self.node.at)
        return ref - self._range_ms, ref

    def evaluate(self, ctx: Context) -> WindowData:
        """The visible samples with ``ref - W <= t <= ref``."""
        return self._window(ctx, self._columns)

    def evaluate_family(self, ctx: Context) -> WindowData:
        """The same window over the selector's whole family (see ``positions``)."""
        return self._window(ctx, self._family_columns)

    def _window(self, ctx: Context, columns: slice | np.ndarray) -> WindowData:
        start, ref = self.bounds(ctx)
        times, values, present = ctx.samples(start, ref)
        values = values[:, :, columns]
        present = present[:, :, columns]
        if (stale := is_stale(values)) is not None:
            present = present & ~stale
        return WindowData(values, present, times, start, ref, self.range_s)
