"""The values flowing between the engine's operators during one evaluation.

An operator is *bound* once per query and universe (the batch's label sets): all label
work is done then, and what is left for each evaluation is numpy over a leading run
axis. Vectors carry static labels on the bound operator and per-run ``(values,
present)`` arrays here; range vectors are windows of the batch's samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sim.promql.parse import Kind
from sim.promql.series import Labels, SeriesBatch

#: Prometheus's wording for a vector whose series collide after their labels changed
#: (promql/engine.go rangeEval, ContainsSameLabelset).
SAME_LABELSET = "vector cannot contain metrics with the same labelset"


@dataclass
class VectorData:
    """An instant vector's per-run data: ``values`` and ``present``, both (R, K)."""

    values: np.ndarray
    present: np.ndarray


@dataclass
class WindowData:
    """A range vector's samples for each run.

    Attributes:
        values: (R, W, K) sample values over the W sample slots of the window.
        present: (R, W, K) whether each sample exists (and is visible).
        times_ms: (W,) the slots' timestamps in milliseconds.
        start_ms: the window's start (inclusive, Prometheus 2.x).
        end_ms: the window's end (inclusive); the evaluation time shifted by ``offset``.
        range_s: the selector's range in seconds.
    """

    values: np.ndarray
    present: np.ndarray
    times_ms: np.ndarray
    start_ms: int
    end_ms: int
    range_s: float


@dataclass
class Context:
    """One evaluation: the batch rows, the instant, and the runs whose evaluation failed.

    Attributes:
        batch: the batch evaluated.
        rows: the run indexes (a slice when they are all runs in order, so that windows
            are views rather than copies).
        n_runs: R, the number of result rows.
        t_ms: the evaluation instant in milliseconds.
        ingested_ms: samples after this instant are invisible (ingestion lag).
        lookback_ms: the instant selectors' lookback.
        times_ms: (S,) the batch's sample timestamps in milliseconds.
        error: (R,) runs whose evaluation failed so far.
        message: the first error's message.
    """

    batch: SeriesBatch
    rows: np.ndarray | slice
    n_runs: int
    t_ms: int
    ingested_ms: int
    lookback_ms: int
    times_ms: np.ndarray
    error: np.ndarray
    message: str = ""
    _windows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    _shared: dict[tuple[object, ...], object] = field(default_factory=dict)

    def shared(self, key: tuple[object, ...], compute: Callable[[], object]) -> object:
        """``compute()`` once per evaluation for ``key`` (results shared between operators)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def fail(self, runs: np.ndarray, message: str) -> None:
        """Mark ``runs`` (an (R,) mask) as failed with Prometheus's message."""
        if not runs.any():
            return
        if not self.message:
            self.message = message
        self.error |= runs

    def samples(self, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The visible samples of every series with ``start_ms <= t <= end_ms``.

        Returns:
            (times_ms (W,), values (R, W, K), present (R, W, K)); samples after the
            ingestion cutoff are left out. Cached for the evaluation.
        """
        end_ms = min(end_ms, self.ingested_ms)
        key = (start_ms, end_ms)
        cached = self._windows.get(key)
        if cached is not None:
            return cached
        first = int(np.searchsorted(self.times_ms, start_ms, side="left"))
        stop = int(np.searchsorted(self.times_ms, end_ms, side="right"))
        stop = max(stop, first)
        slots = slice(first, stop)
        if isinstance(self.rows, slice):
            values = self.batch.values[self.rows, slots]
            present = self.batch.present[self.rows, slots]
        else:
            values = self.batch.values[self.rows, slots]
            present = self.batch.present[self.rows, slots]
        result = (self.times_ms[slots], values, present)
        self._windows[key] = result
        return result


class Bound(Protocol):
    """An operator bound to a universe: static output labels, per-run evaluation."""

    kind: Kind

    def evaluate(self, ctx: Context) -> object:
        """Evaluate for the runs of ``ctx``."""


class BoundVector(Protocol):
    """A bound operator returning an instant vector over ``labels``."""

    kind: Kind
    labels: tuple[Labels, ...]

    def evaluate(self, ctx: Context) -> VectorData:
        """Evaluate for the runs of ``ctx``."""


class BoundScalar(Protocol):
    """A bound operator returning a scalar per run, (R,)."""

    kind: Kind

    def evaluate(self, ctx: Context) -> np.ndarray:
        """Evaluate for the runs of ``ctx``."""


class BoundWindow(Protocol):
    """A bound operator returning a range vector over ``labels``."""

    kind: Kind
    labels: tuple[Labels, ...]

    def evaluate(self, ctx: Context) -> WindowData:
        """Evaluate for the runs of ``ctx``."""


def without_labels(labels: Labels, names: frozenset[str] | set[str]) -> Labels:
    """``labels`` without the labels named."""
    return tuple(item for item in labels if item[0] not in names)


def only_labels(labels: Labels, names: frozenset[str] | set[str]) -> Labels:
    """``labels`` restricted to the labels named."""
    return tuple(item for item in labels if item[0] in names)


def drop_name(labels: Labels) -> Labels:
    """``labels`` without ``__name__`` (Prometheus's dropMetricName)."""
    return tuple(item for item in labels if item[0] != "__name__")


def label_value(labels: Labels, name: str) -> str:
    """A label's value, ``""`` when missing (Prometheus's Labels.Get)."""
    for key, value in labels:
        if key == name:
            return value
    return ""


@dataclass(frozen=True)
class Relabel:
    """Series whose labels changed, merged where they now collide.

    Prometheus raises "vector cannot contain metrics with the same labelset" when two
    series of one result end with equal labels (promql/engine.go rangeEval); here that
    is an error of the runs where more than one of them is present.
    """

    labels: tuple[Labels, ...]
    columns: tuple[tuple[int, ...], ...]
    simple: np.ndarray | None
    identity: bool = False

    @classmethod
    def of(cls, labels: tuple[Labels, ...]) -> Relabel:
        """The plan for input series with these (new) labels, output sorted by labels."""
        members: dict[Labels, list[int]] = {}
        for column, item in enumerate(labels):
            members.setdefault(item, []).append(column)
        order = sorted(members)
        columns = tuple(tuple(members[item]) for item in order)
        simple = None
        if all(len(c) == 1 for c in columns):
            simple = np.array([c[0] for c in columns], dtype=np.intp)
        return cls(tuple(order), columns, simple, simple is not None and bool((simple == np.arange(simple.size)).all()))

    def apply(self, ctx: Context, data: VectorData) -> VectorData:
        """The merged vector; runs with colliding present series fail."""
        if self.identity:
            return data
        if self.simple is not None:
            return VectorData(data.values[:, self.simple], data.present[:, self.simple])
        n = ctx.n_runs
        values = np.zeros((n, len(self.columns)))
        present = np.zeros((n, len(self.columns)), dtype=bool)
        for out, cols in enumerate(self.columns):
            if len(cols) == 1:
                values[:, out] = data.values[:, cols[0]]
                present[:, out] = data.present[:, cols[0]]
                continue
            sub = data.present[:, cols]
            ctx.fail(sub.sum(axis=1) > 1, SAME_LABELSET)
            pick = np.argmax(sub, axis=1)
            values[:, out] = data.values[:, cols][np.arange(n), pick]
            present[:, out] = sub.any(axis=1)
        return VectorData(values, present)
