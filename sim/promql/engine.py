"""Compile a PromQL query once, evaluate it at an instant for every run of a batch.

``compile_query(text)`` parses (cached by text). ``Query.evaluate`` binds the tree to the
batch's universe of label sets (all label work: selector matching, groups, vector
matching; cached per universe) and then evaluates it with numpy over the runs. The
semantics are Prometheus v2.42.0's (promql/engine.go, functions.go, quantile.go).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from sim.promql import functions
from sim.promql.aggregate import AggregationPlan
from sim.promql.binary import SetOperatorPlan, VectorMatchPlan, VectorScalarPlan, scalar_binary
from sim.promql.frames import Bound, Context, Relabel, VectorData, WindowData, drop_name
from sim.promql.parse import (
    SET_OPERATORS,
    Aggregate,
    Binary,
    Call,
    Kind,
    Node,
    NumberLiteral,
    PromQLError,
    RangeSelector,
    Selector,
    StringLiteral,
    Subquery,
    Unary,
    children,
    parse,
    walk,
)
from sim.promql.selectors import BoundRangeSelector, BoundSelector, to_ms
from sim.promql.series import Labels, Matrix, Result, Scalar, SeriesBatch, Vector

Universe = tuple[Labels, ...]


class _Number:
    kind: Kind = "scalar"

    def __init__(self, value: float) -> None:
        self.value = value

    def evaluate(self, ctx: Context) -> np.ndarray:
        return np.full(ctx.n_runs, self.value)


class _String:
    kind: Kind = "string"

    def __init__(self, value: str) -> None:
        self.value = value

    def evaluate(self, ctx: Context) -> str:
        return self.value


class _Negate:
    """Unary minus: values negated, ``__name__`` dropped (engine.go eval UnaryExpr)."""

    def __init__(self, inner: Bound) -> None:
        self.inner = inner
        self.kind = inner.kind
        if inner.kind == "vector":
            self.relabel = Relabel.of(tuple(drop_name(lb) for lb in inner.labels))  # type: ignore[attr-defined]
            self.labels = self.relabel.labels

    def evaluate(self, ctx: Context) -> object:
        value = self.inner.evaluate(ctx)
        if isinstance(value, VectorData):
            return self.relabel.apply(ctx, VectorData(-value.values, value.present))
        return -np.asarray(value)


class _ScalarBinary:
    kind: Kind = "scalar"

    def __init__(self, op: str, lhs: Bound, rhs: Bound) -> None:
        self.op, self.lhs, self.rhs = op, lhs, rhs

    def evaluate(self, ctx: Context) -> np.ndarray:
        return scalar_binary(self.op, self.lhs.evaluate(ctx), self.rhs.evaluate(ctx))  # type: ignore[arg-type]


class _VectorScalar:
    kind: Kind = "vector"

    def __init__(self, node: Binary, lhs: Bound, rhs: Bound) -> None:
        self.scalar_on_left = lhs.kind == "scalar"
        self.vector, self.scalar = (rhs, lhs) if self.scalar_on_left else (lhs, rhs)
        self.plan = VectorScalarPlan(node, self.vector.labels, self.scalar_on_left)  # type: ignore[attr-defined]
        self.labels = self.plan.labels

    def evaluate(self, ctx: Context) -> VectorData:
        vector = self.vector.evaluate(ctx)
        scalar = self.scalar.evaluate(ctx)
        return self.plan.evaluate(ctx, vector, scalar)  # type: ignore[arg-type]


class _VectorVector:
    kind: Kind = "vector"

    def __init__(self, node: Binary, lhs: Bound, rhs: Bound) -> None:
        self.lhs, self.rhs = lhs, rhs
        left, right = lhs.labels, rhs.labels  # type: ignore[attr-defined]
        plan: SetOperatorPlan | VectorMatchPlan
        plan = SetOperatorPlan(node, left, right) if node.op in SET_OPERATORS else VectorMatchPlan(node, left, right)
        self.plan = plan
        self.labels = plan.labels

    def evaluate(self, ctx: Context) -> VectorData:
        return self.plan.evaluate(ctx, self.lhs.evaluate(ctx), self.rhs.evaluate(ctx))  # type: ignore[arg-type]


class _Aggregation:
    kind: Kind = "vector"

    def __init__(self, node: Aggregate, inner: Bound, param: Bound | None) -> None:
        self.inner, self.param = inner, param
        self.plan = AggregationPlan(node.op, inner.labels, node.grouping, node.without)  # type: ignore[attr-defined]
        self.labels = self.plan.labels

    def evaluate(self, ctx: Context) -> VectorData:
        param = None if self.param is None else self.param.evaluate(ctx)
        return self.plan.evaluate(ctx, self.inner.evaluate(ctx), param)  # type: ignore[arg-type]


#: The step of a subquery without one: Prometheus's default evaluation_interval (1m;
#: engine.go noStepSubqueryIntervalFn reads the global config).
DEFAULT_SUBQUERY_STEP_S = 60.0


class _Subquery:
    """``expr[range:step]``: ``expr`` evaluated at each step in the range, as a range vector.

    engine.go eval SubqueryExpr: steps are the multiples of the step (Go's truncating
    division) from the first at or after ``t - offset - range`` up to ``t - offset``.
    """

    kind: Kind = "matrix"

    def __init__(self, node: Subquery, inner: Bound) -> None:
        if inner.kind not in ("vector", "scalar"):
            raise PromQLError("a subquery needs an instant vector or scalar expression")
        self.node, self.inner = node, inner
        self.labels: tuple[Labels, ...] = inner.labels if inner.kind == "vector" else ((),)  # type: ignore[attr-defined]
        self._range_ms = to_ms(node.range_s)
        self._step_ms = to_ms(node.step_s if node.step_s else DEFAULT_SUBQUERY_STEP_S)

    def evaluate(self, ctx: Context) -> WindowData:
        at = self.node.at
        base = ctx.t_ms if at is None or at.where != "time" else to_ms(at.time_s)
        end = base - to_ms(self.node.offset_s)
        start = end - self._range_ms
        step = self._step_ms
        first = step * int(start / step)  # Go's integer division truncates toward zero
        if first < start:
            first += step
        steps = list(range(first, end + 1, step))
        n, k = ctx.n_runs, len(self.labels)
        values = np.zeros((n, len(steps), k))
        present = np.zeros((n, len(steps), k), dtype=bool)
        for i, ts in enumerate(steps):
            inner_ctx = dataclasses.replace(ctx, t_ms=ts)
            value = self.inner.evaluate(inner_ctx)
            if inner_ctx.message and not ctx.message:
                ctx.message = inner_ctx.message
            if isinstance(value, VectorData):
                values[:, i, :] = value.values
                present[:, i, :] = value.present
            else:
                values[:, i, 0] = np.asarray(value)
                present[:, i, 0] = True
        return WindowData(values, present, np.array(steps, dtype=np.int64), start, end, self.node.range_s)


def bind(node: Node, universe: Universe) -> Bound:
    """The operator tree of ``node`` with all label work for ``universe`` done."""
    if isinstance(node, NumberLiteral):
        return _Number(node.value)
    if isinstance(node, StringLiteral):
        return _String(node.value)
    if isinstance(node, Selector):
        return BoundSelector(node, universe)
    if isinstance(node, RangeSelector):
        return BoundRangeSelector(node.selector, node.range_s, universe)
    if isinstance(node, Subquery):
        return _Subquery(node, bind(node.expr, universe))
    if isinstance(node, Unary):
        return _Negate(bind(node.expr, universe))
    if isinstance(node, Aggregate):
        param = None if node.param is None else bind(node.param, universe)
        return _Aggregation(node, bind(node.expr, universe), param)
    if isinstance(node, Binary):
        lhs, rhs = bind(node.lhs, universe), bind(node.rhs, universe)
        if lhs.kind == "scalar" and rhs.kind == "scalar":
            return _ScalarBinary(node.op, lhs, rhs)
        if lhs.kind == "vector" and rhs.kind == "vector":
            return _VectorVector(node, lhs, rhs)
        return _VectorScalar(node, lhs, rhs)
    if isinstance(node, Call):
        return functions.bind_call(node, tuple(bind(arg, universe) for arg in node.args))
    raise PromQLError(f"unsupported expression {type(node).__name__}")  # pragma: no cover


#: How many distinct universes a query keeps bound.
_KEPT_UNIVERSES = 8


@dataclass(frozen=True)
class _Bound:
    universe: Universe
    root: Bound


class Query:
    """A compiled PromQL query.

    Attributes:
        text: the query text.
        metric_names: every metric name a selector selects by equality (``x`` or
            ``{__name__="x"}``).
        selectors: the vector selectors (name and matchers, offset, ``@``).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._tree = parse(text)
        nodes = walk(self._tree)
        self.selectors: tuple[Selector, ...] = tuple(n for n in nodes if isinstance(n, Selector))
        names = set()
        for selector in self.selectors:
            for matcher in selector.matchers:
                if matcher.name == "__name__" and matcher.op == "=":
                    names.add(matcher.value)
        self.metric_names: frozenset[str] = frozenset(names)
        ranges = [n.range_s for n in nodes if isinstance(n, (RangeSelector, Subquery))]
        self._range_s = max(ranges) if ranges else None
        # Bind once to an empty universe: refuses unknown functions and wrong argument
        # types at compile time rather than at the first evaluation.
        self._by_id: dict[int, _Bound] = {}
        self._by_labels: dict[Universe, Bound] = {}
        self._bound_for(())

    def range_seconds(self) -> float | None:
        """The largest range (``[1m]`` -> 60) of the query's range selectors, None if none."""
        return self._range_s

    def history_seconds(self, lookback_s: float = 300.0) -> float:
        """How far before the evaluation time the query reads samples, in seconds.

        Ranges, offsets, subquery ranges and the instant selectors' lookback add up along
        each path of the tree (``@`` times are absolute and not counted); 0 for a query
        without selectors.
        """
        return _history(self._tree, 0.0, lookback_s)

    def _bound_for(self, universe: Universe) -> Bound:
        """The tree bound to ``universe``: by identity (no hashing) when the same tuple
        comes back, else by equality; a few universes are kept, least recent out."""
        cached = self._by_id.get(id(universe))
        if cached is not None and cached.universe is universe:
            return cached.root
        root = self._by_labels.get(universe)
        if root is None:
            root = bind(self._tree, universe)
            if len(self._by_labels) >= _KEPT_UNIVERSES:
                del self._by_labels[next(iter(self._by_labels))]
            self._by_labels[universe] = root
        if len(self._by_id) >= 8 * _KEPT_UNIVERSES:
            del self._by_id[next(iter(self._by_id))]
        # The entry keeps the tuple alive, so its id cannot be reused by another.
        self._by_id[id(universe)] = _Bound(universe, root)
        return root

    def evaluate(
        self,
        batch: SeriesBatch,
        rows: np.ndarray,
        t_s: float,
        *,
        lookback_s: float = 300.0,
        ingested_until_s: float | None = None,
    ) -> Result:
        """The query's value at ``t_s`` for the runs ``rows`` of ``batch``.

        Args:
            batch: the series.
            rows: run indexes into the batch; result rows follow them.
            t_s: the evaluation instant in seconds.
            lookback_s: the instant selectors' lookback (Prometheus's default 5m).
            ingested_until_s: samples after this instant do not exist yet (default t_s;
                ``math.inf``: every sample exists, as in a Prometheus holding the data).

        Returns:
            The value with a per-run error mask (e.g. a many-to-many match).
        """
        root = self._bound_for(batch.labels)
        rows = np.asarray(rows)
        n_total = batch.values.shape[0]
        if rows.size == n_total and rows.size and rows[0] == 0 and np.array_equal(rows, np.arange(n_total)):
            selection: np.ndarray | slice = slice(None)
        else:
            selection = rows
        t_ms = to_ms(t_s)
        ctx = Context(
            batch=batch,
            rows=selection,
            n_runs=int(rows.size),
            t_ms=t_ms,
            ingested_ms=_cutoff_ms(t_ms, ingested_until_s),
            lookback_ms=to_ms(lookback_s),
            times_ms=np.round(np.asarray(batch.times_s, dtype=float) * 1000.0).astype(np.int64),
            error=np.zeros(rows.size, dtype=bool),
        )
        value = root.evaluate(ctx)
        result: Scalar | Vector | Matrix
        if isinstance(value, VectorData):
            result = Vector(root.labels, value.values, value.present)  # type: ignore[attr-defined]
        elif isinstance(value, WindowData):
            result = Matrix(root.labels, value.times_ms / 1000.0, value.values, value.present)  # type: ignore[attr-defined]
        elif isinstance(value, str):
            raise PromQLError("a string query has no value per run")
        else:
            result = Scalar(np.asarray(value, dtype=float))
        error = ctx.error if ctx.error.any() else None
        return Result(result, error, ctx.message)


def _history(node: Node, before: float, lookback_s: float) -> float:
    if isinstance(node, Selector):
        return before + node.offset_s + lookback_s
    if isinstance(node, RangeSelector):
        return before + node.selector.offset_s + node.range_s
    if isinstance(node, Subquery):
        return _history(node.expr, before + node.offset_s + node.range_s, lookback_s)
    return max((_history(child, before, lookback_s) for child in children(node)), default=0.0)


def _cutoff_ms(t_ms: int, ingested_until_s: float | None) -> int:
    """The ingestion cutoff in ms: the evaluation time by default; +Inf for none (a
    stored series file, where ``@`` and negative offsets may look past ``t`` as
    Prometheus does)."""
    if ingested_until_s is None:
        return t_ms
    if math.isinf(ingested_until_s):
        return _NO_CUTOFF_MS if ingested_until_s > 0 else -_NO_CUTOFF_MS
    return to_ms(ingested_until_s)


_NO_CUTOFF_MS = 2**62


@functools.lru_cache(maxsize=1024)
def compile_query(text: str) -> Query:
    """Parse ``text`` once (cached by text).

    Raises:
        PromQLError: the text does not parse, or uses what the engine does not support.
    """
    return Query(text)
