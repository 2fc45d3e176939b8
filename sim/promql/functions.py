"""PromQL function calls bound to a universe (promql/functions.go of Prometheus v2.42.0).

Range-vector functions are computed in ``range_functions``, histogram_quantile in
``histograms``; this module binds a call's arguments, fixes its output labels (every
function drops ``__name__`` but last_over_time, sort, sort_desc, label_replace and
label_join, engine.go eval and functions.go), and applies instant functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from sim.promql import range_functions as rf
from sim.promql.frames import Bound, Context, Relabel, VectorData, WindowData, drop_name, label_value
from sim.promql.histograms import HistogramPlan
from sim.promql.parse import Call, Kind, PromQLError, RangeSelector, Selector
from sim.promql.selectors import BoundRangeSelector, BoundSelector
from sim.promql.series import Labels

_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda v: v * np.pi / 180,
    "deg": lambda v: v * 180 / np.pi,
    "sgn": lambda v: np.where(v < 0, -1.0, np.where(v > 0, 1.0, v)),
}

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _date_parts(seconds: np.ndarray, part: str) -> np.ndarray:
    """functions.go dateWrapper: UTC calendar fields of Unix seconds (truncated)."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(seconds)
        whole = np.where(finite, np.trunc(seconds), 0).astype(np.int64)
    instants = whole.astype("datetime64[s]")
    days = instants.astype("datetime64[D]")
    months = instants.astype("datetime64[M]")
    years = instants.astype("datetime64[Y]")
    if part == "minute":
        out = (whole // 60) % 60
    elif part == "hour":
        out = (whole // 3600) % 24
    elif part == "day_of_week":
        out = (days.astype(np.int64) + 4) % 7  # 1970-01-01 was a Thursday
    elif part == "day_of_month":
        out = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    elif part == "day_of_year":
        out = (days - years.astype("datetime64[D]")).astype(np.int64) + 1
    elif part == "days_in_month":
        out = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64)
    elif part == "month":
        out = months.astype(np.int64) % 12 + 1
    else:  # year
        out = years.astype(np.int64) + 1970
    return np.where(finite, out.astype(float), np.nan)


_DATE_FUNCTIONS = frozenset(
    {"minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year"}
)


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's regexp Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``.

    ``$name`` takes the longest run of letters, digits and underscores, so ``$1x`` is
    the (missing, hence empty) group ``1x``; a ``$`` not followed by a name is kept.
    """
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$" or i + 1 >= len(template):
            out.append(char)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end > 0 else ""
            if end < 0 or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                out.append("$")
                i += 1
                continue
            i = end + 1
        else:
            found = re.match(r"[A-Za-z0-9_]+", template[i + 1 :])
            if found is None:
                out.append("$")
                i += 1
                continue
            name = found.group(0)
            i += 1 + len(name)
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group: Go expands it to ""
        return ""
    return value or ""


class _VectorFunction:
    """A function whose output series are its input's (relabelled), values mapped per run."""

    kind: Kind = "vector"

    def __init__(
        self,
        inner: Bound,
        out_labels: tuple[Labels, ...],
        apply: Callable[[Context, VectorData], VectorData],
    ) -> None:
        self.inner = inner
        self.relabel = Relabel.of(out_labels)
        self.labels = self.relabel.labels
        self.apply = apply

    def evaluate(self, ctx: Context) -> VectorData:
        data = self.apply(ctx, self.inner.evaluate(ctx))  # type: ignore[arg-type]
        return self.relabel.apply(ctx, data)


class _RangeFunction:
    """A function of a range vector: one output series per input series."""

    kind: Kind = "vector"

    def __init__(
        self,
        window: Bound,
        keep_name: bool,
        compute: Callable[[Context, WindowData], tuple[np.ndarray, np.ndarray]],
        shared_as: str | None = None,
    ) -> None:
        self.window = window
        # A function of the window alone, over a range selector, is computed once per
        # metric family and window (see BoundRangeSelector) and shared.
        self.shared_as = shared_as if isinstance(window, BoundRangeSelector) else None
        labels: tuple[Labels, ...] = window.labels  # type: ignore[attr-defined]
        self.relabel = Relabel.of(labels if keep_name else tuple(drop_name(lb) for lb in labels))
        self.labels = self.relabel.labels
        self.compute = compute

    def evaluate(self, ctx: Context) -> VectorData:
        if self.shared_as is not None:
            return self._evaluate_shared(ctx, self.window)  # type: ignore[arg-type]
        window: WindowData = self.window.evaluate(ctx)  # type: ignore[assignment]
        if window.values.shape[1] == 0:
            n, k = ctx.n_runs, window.values.shape[2]
            return self.relabel.apply(ctx, VectorData(np.zeros((n, k)), np.zeros((n, k), dtype=bool)))
        values, present = self.compute(ctx, window)
        return self.relabel.apply(ctx, VectorData(values, present))

    def _evaluate_shared(self, ctx: Context, selector: BoundRangeSelector) -> VectorData:
        start, end = selector.bounds(ctx)
        key = (self.shared_as, selector.family, start, end, selector.range_s)

        def compute() -> tuple[np.ndarray, np.ndarray]:
            window = selector.evaluate_family(ctx)
            if window.values.shape[1] == 0:
                shape = (ctx.n_runs, window.values.shape[2])
                return np.zeros(shape), np.zeros(shape, dtype=bool)
            return self.compute(ctx, window)

        shared: tuple[np.ndarray, np.ndarray] = ctx.shared(key, compute)  # type: ignore[assignment]
        values, present = shared
        columns = selector.positions
        return self.relabel.apply(ctx, VectorData(values[:, columns], present[:, columns]))


class _Constant:
    """A function of the evaluation alone: a scalar (time(), pi()) or one series with
    no labels in every run (vector(), the date functions without argument)."""

    kind: Kind

    def __init__(self, kind: Kind, compute: Callable[[Context], np.ndarray]):
        self.kind = kind
        self.labels: tuple[Labels, ...] = ((),)
        self.compute = compute

    def evaluate(self, ctx: Context) -> object:
        values = self.compute(ctx)
        if self.kind == "scalar":
            return values
        return VectorData(values[:, None], np.ones((ctx.n_runs, 1), dtype=bool))


class _Absent:
    """absent()/absent_over_time(): one series (labels from the selector's equality
    matchers) where the argument is empty (functions.go createLabelsForAbsentFunction)."""

    kind: Kind = "vector"

    def __init__(self, inner: Bound, labels: Labels) -> None:
        self.inner = inner
        self.labels: tuple[Labels, ...] = (labels,)

    def evaluate(self, ctx: Context) -> VectorData:
        data = self.inner.evaluate(ctx)
        if isinstance(data, WindowData):
            empty = rf.absent_over_time(data)
        else:
            empty = ~data.present.any(axis=1)  # type: ignore[attr-defined]
        return VectorData(np.ones((ctx.n_runs, 1)), empty[:, None])


class _Scalar:
    """scalar(v): the value of a one-element vector, else NaN (functions.go funcScalar)."""

    kind: Kind = "scalar"

    def __init__(self, inner: Bound) -> None:
        self.inner = inner

    def evaluate(self, ctx: Context) -> np.ndarray:
        data: VectorData = self.inner.evaluate(ctx)  # type: ignore[assignment]
        single = data.present.sum(axis=1) == 1
        pick = np.argmax(data.present, axis=1)
        values = data.values[np.arange(ctx.n_runs), pick] if data.values.shape[1] else np.zeros(ctx.n_runs)
        return np.where(single, values, np.nan)


class _Timestamp:
    """timestamp(): a selector's sample times, else the evaluation time (engine.go eval)."""

    kind: Kind = "vector"

    def __init__(self, inner: Bound) -> None:
        self.inner = inner
        self.relabel = Relabel.of(tuple(drop_name(lb) for lb in inner.labels))  # type: ignore[attr-defined]
        self.labels = self.relabel.labels

    def evaluate(self, ctx: Context) -> VectorData:
        if isinstance(self.inner, BoundSelector):
            _, present, times = self.inner.evaluate_with_times(ctx)
            values = times / 1000.0
        else:
            data: VectorData = self.inner.evaluate(ctx)  # type: ignore[assignment]
            present = data.present
            values = np.full(present.shape, ctx.t_ms / 1000.0)
        return self.relabel.apply(ctx, VectorData(np.asarray(values, dtype=float), present))


class _HistogramQuantile:
    kind: Kind = "vector"

    def __init__(self, q: Bound, inner: Bound) -> None:
        self.q, self.inner = q, inner
        self.plan = HistogramPlan(inner.labels)  # type: ignore[attr-defined]
        self.labels = self.plan.labels

    def evaluate(self, ctx: Context) -> VectorData:
        q = np.asarray(self.q.evaluate(ctx), dtype=float)
        return self.plan.evaluate(q, self.inner.evaluate(ctx))  # type: ignore[arg-type]


def absent_labels(node: Selector | RangeSelector | object) -> Labels:
    """functions.go createLabelsForAbsentFunction: equality matchers, in order; a label
    matched twice or by another operator is left out."""
    selector = node.selector if isinstance(node, RangeSelector) else node
    if not isinstance(selector, Selector):
        return ()
    items: dict[str, str] = {}
    seen: set[str] = set()
    for matcher in selector.matchers:
        if matcher.name == "__name__":
            continue
        if matcher.op == "=" and matcher.name not in seen:
            items[matcher.name] = matcher.value
            seen.add(matcher.name)
        else:
            items.pop(matcher.name, None)
    return tuple(sorted(items.items()))


def _string_arg(arg: Bound, function: str) -> str:
    value = getattr(arg, "value", None)
    if arg.kind != "string" or not isinstance(value, str):
        raise PromQLError(f"{function}() expects a string argument")
    return value


def _label_replace(inner: Bound, args: tuple[Bound, ...]) -> _VectorFunction:
    dst, repl, src, pattern = (_string_arg(a, "label_replace") for a in args[1:5])
    try:
        regex = re.compile(pattern)
    except re.error:
        raise PromQLError(f"invalid regular expression in label_replace(): {pattern}") from None
    if not _LABEL_NAME.fullmatch(dst):
        raise PromQLError(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for labels in inner.labels:  # type: ignore[attr-defined]
        match = regex.fullmatch(label_value(labels, src))
        if match is None:
            out.append(labels)
            continue
        items = dict(labels)
        items.pop(dst, None)
        result = go_expand(repl, match)
        if result:
            items[dst] = result
        out.append(tuple(sorted(items.items())))
    return _VectorFunction(inner, tuple(out), lambda ctx, data: data)


def _label_join(inner: Bound, args: tuple[Bound, ...]) -> _VectorFunction:
    dst = _string_arg(args[1], "label_join")
    separator = _string_arg(args[2], "label_join")
    sources = [_string_arg(a, "label_join") for a in args[3:]]
    for name in [*sources, dst]:
        if not _LABEL_NAME.fullmatch(name):
            raise PromQLError(f"invalid label name in label_join(): {name}")
    out = []
    for labels in inner.labels:  # type: ignore[attr-defined]
        items = dict(labels)
        joined = separator.join(label_value(labels, s) for s in sources)
        if joined:
            items[dst] = joined
        else:
            items.pop(dst, None)
        out.append(tuple(sorted(items.items())))
    return _VectorFunction(inner, tuple(out), lambda ctx, data: data)


def _scalar_of(arg: Bound, ctx: Context) -> np.ndarray:
    return np.asarray(arg.evaluate(ctx), dtype=float)


def bind_call(node: Call, args: tuple[Bound, ...]) -> Bound:
    """Bind a function call whose arguments are bound already."""
    name = node.name
    if name in rf.SIMPLE_RANGE_FUNCTIONS:
        compute = rf.SIMPLE_RANGE_FUNCTIONS[name]
        return _RangeFunction(args[0], name == "last_over_time", lambda ctx, w: compute(w), shared_as=name)
    if name == "quantile_over_time":
        q = args[0]
        return _RangeFunction(args[1], False, lambda ctx, w: rf.quantile_over_time(w, _scalar_of(q, ctx)))
    if name == "predict_linear":
        duration = args[1]
        return _RangeFunction(args[0], False, lambda ctx, w: rf.predict_linear(w, _scalar_of(duration, ctx), ctx.t_ms))
    if name == "holt_winters":
        smoothing, trend = args[1], args[2]
        return _RangeFunction(
            args[0], False, lambda ctx, w: _holt_winters(ctx, w, _scalar_of(smoothing, ctx), _scalar_of(trend, ctx))
        )
    if name in ("histogram_count", "histogram_sum", "histogram_fraction"):
        # These read native histograms only; float series give nothing (functions.go).
        return _VectorFunction(args[-1], (), lambda ctx, data: VectorData(data.values[:, :0], data.present[:, :0]))
    if name in ("absent", "absent_over_time"):
        return _Absent(args[0], absent_labels(node.args[0]))
    if name == "histogram_quantile":
        return _HistogramQuantile(args[0], args[1])
    if name == "scalar":
        return _Scalar(args[0])
    if name == "vector":
        scalar = args[0]
        return _Constant("vector", lambda ctx: _scalar_of(scalar, ctx))
    if name == "time":
        return _Constant("scalar", lambda ctx: np.full(ctx.n_runs, ctx.t_ms / 1000.0))
    if name == "pi":
        return _Constant("scalar", lambda ctx: np.full(ctx.n_runs, np.pi))
    if name == "timestamp":
        return _Timestamp(args[0])
    if name in ("sort", "sort_desc"):
        # Result order is not representable per run in a Vector (series are in label
        # order); the values and labels are unchanged, as functions.go funcSort.
        return _VectorFunction(args[0], args[0].labels, lambda ctx, data: data)  # type: ignore[attr-defined]
    if name == "label_replace":
        return _label_replace(args[0], args)
    if name == "label_join":
        return _label_join(args[0], args)
    if name in _DATE_FUNCTIONS:
        if not args:
            # dateWrapper without argument: time.Unix(enh.Ts/1000, 0), whole seconds.
            return _Constant(
                "vector", lambda ctx: _date_parts(np.full(ctx.n_runs, ctx.t_ms // 1000, dtype=float), name)
            )
        return _dropping_name(args[0], lambda ctx, v: _date_parts(v, name))
    if name in _MATH:
        math_function = _MATH[name]
        return _dropping_name(args[0], lambda ctx, v: math_function(v))
    if name == "round":
        nearest = args[1] if len(args) > 1 else None

        def rounded(ctx: Context, v: np.ndarray) -> np.ndarray:
            to_nearest = np.ones(ctx.n_runs) if nearest is None else _scalar_of(nearest, ctx)
            inverse = (1.0 / to_nearest)[:, None]
            return np.floor(v * inverse + 0.5) / inverse

        return _dropping_name(args[0], rounded)
    if name in ("clamp", "clamp_min", "clamp_max"):
        return _clamp(name, args)
    raise PromQLError(f"function {name}() is not supported")


def _holt_winters(
    ctx: Context, window: WindowData, smoothing: np.ndarray, trend: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """functions.go funcHoltWinters: factors outside (0, 1) fail the run, Go's wording."""
    from sim.promql import kernels

    for factors, what in ((smoothing, "smoothing"), (trend, "trend")):
        bad = ~((factors > 0) & (factors < 1))
        if bad.any():
            got = float(factors[np.argmax(bad)])
            short = "sf" if what == "smoothing" else "tf"
            ctx.fail(bad, f"invalid {what} factor. Expected: 0 < {short} < 1, got: {got:f}")
    runs, _, series = window.values.shape
    out = np.empty((runs, series))
    ok = np.empty((runs, series), dtype=bool)
    kernels.holt_winters_kernel(window.values, window.present, smoothing, trend, out, ok)
    return out, ok


def _dropping_name(inner: Bound, compute: Callable[[Context, np.ndarray], np.ndarray]) -> _VectorFunction:
    """functions.go simpleFunc and the like: values mapped, ``__name__`` dropped."""

    def apply(ctx: Context, data: VectorData) -> VectorData:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return VectorData(np.asarray(compute(ctx, data.values), dtype=float), data.present)

    labels = tuple(drop_name(lb) for lb in inner.labels)  # type: ignore[attr-defined]
    return _VectorFunction(inner, labels, apply)


def _clamp(name: str, args: tuple[Bound, ...]) -> _VectorFunction:
    """functions.go funcClamp, funcClampMin, funcClampMax (max < min: empty)."""
    low = args[1] if name in ("clamp", "clamp_min") else None
    high = args[2] if name == "clamp" else (args[1] if name == "clamp_max" else None)

    def apply(ctx: Context, data: VectorData) -> VectorData:
        values, present = data.values, data.present
        lo = None if low is None else _scalar_of(low, ctx)[:, None]
        hi = None if high is None else _scalar_of(high, ctx)[:, None]
        # Go's math.Max/Min propagate NaN (either argument NaN gives NaN).
        if hi is not None:
            values = np.minimum(hi, values)
        if lo is not None:
            values = np.maximum(lo, values)
        if lo is not None and hi is not None:
            present = present & ~(hi < lo)
        return VectorData(values, present)

    labels = tuple(drop_name(lb) for lb in args[0].labels)  # type: ignore[attr-defined]
    return _VectorFunction(args[0], labels, apply)
