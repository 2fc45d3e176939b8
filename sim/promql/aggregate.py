"""Aggregation operators (sum, avg, min, max, count, group, stddev, stdvar, topk,
bottomk, quantile) with ``by``/``without``, vectorised over runs.

Groups are fixed once per universe (promql/engine.go aggregation: ``without`` drops the
listed labels and ``__name__``; ``by`` keeps only the listed labels, ``__name__`` too if
listed). Output series are sorted by labels: for an instant query Prometheus's order of
aggregation results is unspecified (it follows the input's first occurrences).
"""

from __future__ import annotations

import math

import numpy as np

from sim.promql.frames import Context, VectorData, only_labels, without_labels
from sim.promql.range_functions import quantile_of_sorted, sorted_with_nan_first
from sim.promql.series import Labels

AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile"}
)


def group_labels(labels: Labels, grouping: tuple[str, ...], without: bool) -> Labels:
    """A series' group labels (promql/engine.go aggregation)."""
    if without:
        return without_labels(labels, {*grouping, "__name__"})
    return only_labels(labels, set(grouping))


class AggregationPlan:
    """Groups of an aggregation's input series, fixed for a universe."""

    def __init__(self, op: str, input_labels: tuple[Labels, ...], grouping: tuple[str, ...], without: bool):
        self.op = op
        members: dict[Labels, list[int]] = {}
        # Prometheus aggregates its input in order, and a selector's series come sorted
        # by labels: members are visited in label order, so float sums match its order.
        for column in sorted(range(len(input_labels)), key=lambda c: input_labels[c]):
            members.setdefault(group_labels(input_labels[column], grouping, without), []).append(column)
        self.group_of = tuple(sorted(members))
        self.members = [np.array(members[g], dtype=np.intp) for g in self.group_of]
        # Columns reordered so that each group is contiguous (quantile works per group).
        self.order = np.concatenate(self.members) if self.members else np.zeros(0, dtype=np.intp)
        sizes = [len(m) for m in self.members]
        self.starts = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        self.identity = self.order.size == 0 or bool(np.all(self.order == np.arange(self.order.size)))
        # For the compiled loop: the input columns in label order, and each one's group.
        self.visit = np.array(sorted(range(len(input_labels)), key=lambda c: input_labels[c]), dtype=np.intp)
        group_index = {g: i for i, g in enumerate(self.group_of)}
        self.group_of_visit = np.array(
            [group_index[group_labels(input_labels[c], grouping, without)] for c in self.visit], dtype=np.int64
        )
        self.input_labels = input_labels
        if op in ("topk", "bottomk"):
            self.labels: tuple[Labels, ...] = input_labels
        else:
            self.labels = self.group_of

    def _grouped(self, data: VectorData) -> tuple[np.ndarray, np.ndarray]:
        if self.identity:
            return data.values, data.present
        return data.values[:, self.order], data.present[:, self.order]

    def evaluate(self, ctx: Context, data: VectorData, param: np.ndarray | None) -> VectorData:
        """The aggregate of each group for each run (``param``: k or q per run)."""
        from sim.promql import kernels

        n = ctx.n_runs
        if not self.members:
            return VectorData(np.zeros((n, 0)), np.zeros((n, 0), dtype=bool))
        op = self.op
        if op in ("topk", "bottomk"):
            assert param is not None
            return self._top(data, param, largest=op == "topk")
        if op in kernels.AGGREGATE_CODES:
            n_groups = len(self.group_of)
            out = np.empty((n, n_groups))
            count = np.empty((n, n_groups), dtype=np.int64)
            kernels.aggregate_kernel(
                kernels.AGGREGATE_CODES[op],
                data.values,
                data.present,
                self.visit,
                self.group_of_visit,
                n_groups,
                out,
                count,
            )
            return VectorData(out, count > 0)
        assert op == "quantile" and param is not None
        values, present = self._grouped(data)
        return VectorData(self._quantile(values, present, param), np.add.reduceat(present, self.starts, axis=1) > 0)

    def _quantile(self, values: np.ndarray, present: np.ndarray, q: np.ndarray) -> np.ndarray:
        """quantile.go quantile within each group (NaN sorts first, as vectorByValueHeap)."""
        out = np.empty((values.shape[0], len(self.members)))
        for g, start in enumerate(self.starts):
            stop = start + len(self.members[g])
            ordered, count = sorted_with_nan_first(values[:, start:stop], present[:, start:stop], axis=1)
            out[:, g] = quantile_of_sorted(q, ordered, count, axis=1)
        return out

    def _top(self, data: VectorData, k: np.ndarray, largest: bool) -> VectorData:
        """topk/bottomk: the k largest/smallest of each group keep their input labels.

        engine.go aggregation TOPK/BOTTOMK: k is truncated to an integer, k < 1 gives an
        empty result. Where values tie or a NaN is present, which series Prometheus keeps
        depends on its heap (functions.go vectorByValueHeap): those runs replay that heap
        over the series in label order (a selector's order; the input order of other
        expressions may differ); the others take the k best directly.
        """
        values, present = data.values, data.present
        n, width = values.shape
        keep = np.zeros((n, width), dtype=bool)
        with np.errstate(invalid="ignore"):
            k_int = np.where(np.isfinite(k), np.trunc(k), 0).astype(np.int64)
        for members in self.members:
            sub_v = values[:, members]
            sub_p = present[:, members]
            key = np.where(sub_p, -sub_v if largest else sub_v, np.inf)
            order = np.argsort(key, axis=1, kind="stable")
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(len(members))[None, :].repeat(n, axis=0), axis=1)
            keep[:, members] = sub_p & (rank < k_int[:, None])
            # Runs where the heap's choices matter: more series than k, with ties or NaN.
            ordered = np.sort(np.where(sub_p, sub_v, np.nan), axis=1)
            ties = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
            nan = (sub_p & np.isnan(sub_v)).any(axis=1)
            ambiguous = (ties | nan) & (sub_p.sum(axis=1) > k_int) & (k_int >= 1)
            for r in np.nonzero(ambiguous)[0]:
                # A selector's series come from the TSDB sorted by labels (labels.Compare).
                columns = sorted(
                    (int(c) for c, here in zip(members, sub_p[r], strict=True) if here),
                    key=lambda c: self.input_labels[c],
                )
                chosen = go_heap_selection([float(values[r, c]) for c in columns], int(k_int[r]), largest)
                keep[r, members] = False
                keep[r, [columns[i] for i in chosen]] = True
        return VectorData(values, keep)


def go_heap_selection(values: list[float], k: int, largest: bool) -> list[int]:
    """Which of ``values`` (in input order) topk/bottomk keep: engine.go aggregation's
    loop over Go's container/heap with functions.go vectorByValueHeap (topk) or
    vectorByReverseValueHeap (bottomk) ordering, replayed step by step."""

    def less(a: int, b: int) -> bool:
        if math.isnan(values[a]):
            return True
        return values[a] < values[b] if largest else values[a] > values[b]

    def up(heap: list[int], j: int) -> None:
        while j > 0:
            parent = (j - 1) // 2
            if not less(heap[j], heap[parent]):
                break
            heap[parent], heap[j] = heap[j], heap[parent]
            j = parent

    def down(heap: list[int], i: int, size: int) -> None:
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and less(heap[child + 1], heap[child]):
                child += 1
            if not less(heap[child], heap[i]):
                break
            heap[i], heap[child] = heap[child], heap[i]
            i = child

    heap = [0]
    for index in range(1, len(values)):
        top = values[heap[0]]
        better = top < values[index] if largest else top > values[index]
        if len(heap) < k or better or math.isnan(top):
            if len(heap) == k:
                if k == 1:  # replaced in place
                    heap[0] = index
                    continue
                last = len(heap) - 1
                heap[0], heap[last] = heap[last], heap[0]
                down(heap, 0, last)
                heap.pop()
            heap.append(index)
            up(heap, len(heap) - 1)
    return heap
