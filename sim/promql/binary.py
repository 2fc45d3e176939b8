"""Binary operators: arithmetic, comparisons (filters and ``bool``), ``atan2`` and the set
operators, with vector matching (``on``/``ignoring``, ``group_left``/``group_right``).

Matching is planned once per universe: the signature of each series, the (left, right)
pairs that can match, their output labels and the groups whose duplicates are errors.
Per run only values are computed. Rules from promql/engine.go of Prometheus v2.42.0:
VectorBinop, resultMetric, signatureFunc, VectorscalarBinop, shouldDropMetricName,
vectorElemBinop, scalarBinop, VectorAnd, VectorOr, VectorUnless.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.promql.frames import Context, Relabel, VectorData, drop_name, label_value, only_labels, without_labels
from sim.promql.parse import COMPARISON_OPERATORS, Binary
from sim.promql.series import Labels

_ARITHMETIC: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend, as C's fmod
    "atan2": np.arctan2,
}
_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


def drops_name(op: str) -> bool:
    """engine.go shouldDropMetricName: arithmetic drops ``__name__`` (not atan2, not comparisons)."""
    return op in ("+", "-", "*", "/", "^", "%")


def apply_operator(op: str, lhs: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(value, keep) of ``lhs op rhs``; keep is None for non-comparisons.

    A comparison's value is its left operand (vectorElemBinop).
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if op in _COMPARE:
            return lhs, _COMPARE[op](lhs, rhs)
        return _ARITHMETIC[op](lhs, rhs), None


def scalar_binary(op: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """engine.go scalarBinop: a comparison gives 1 or 0."""
    value, keep = apply_operator(op, lhs, rhs)
    return value if keep is None else keep.astype(float)


def format_labels(labels: Labels) -> str:
    """Labels as Prometheus prints them: ``{a="b", c="d"}``."""
    inner = ", ".join(f'{name}="{_go_quote(value)}"' for name, value in labels)
    return "{" + inner + "}"


def _go_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class VectorScalarPlan:
    """``vector op scalar`` or ``scalar op vector`` (engine.go VectorscalarBinop)."""

    def __init__(self, node: Binary, vector_labels: tuple[Labels, ...], scalar_on_left: bool) -> None:
        self.op = node.op
        self.return_bool = node.return_bool
        self.scalar_on_left = scalar_on_left
        drop = drops_name(node.op) or node.return_bool
        self.relabel = Relabel.of(tuple(drop_name(lb) for lb in vector_labels) if drop else vector_labels)
        self.labels = self.relabel.labels

    def evaluate(self, ctx: Context, vector: VectorData, scalar: np.ndarray) -> VectorData:
        """Per run: the operator applied to each present series."""
        s = scalar[:, None]
        if self.scalar_on_left:
            value, keep = apply_operator(self.op, s, vector.values)
            if keep is not None:
                value = vector.values  # a filter keeps the vector's sample value
        else:
            value, keep = apply_operator(self.op, vector.values, s)
        value = np.broadcast_to(value, vector.values.shape)
        present = vector.present
        if keep is not None:
            if self.return_bool:
                value = keep.astype(float)
            else:
                present = present & keep
        return self.relabel.apply(ctx, VectorData(np.asarray(value, dtype=float), present))


def _signature(labels: Labels, on: bool, matching: tuple[str, ...]) -> Labels:
    """engine.go signatureFunc: the ``on`` labels, or all but ``ignoring``'s and ``__name__``."""
    if on:
        return only_labels(labels, set(matching))
    return without_labels(labels, {*matching, "__name__"})


def _result_labels(left: Labels, right: Labels, node: Binary) -> Labels:
    """engine.go resultMetric (plus the dropped name of ``bool``), ``left`` the many side."""
    items = dict(left)
    if drops_name(node.op) or node.return_bool:
        items.pop("__name__", None)
    if node.card == "one-to-one":
        if node.on:
            items = {k: v for k, v in items.items() if k in node.matching}
        else:
            for name in node.matching:
                items.pop(name, None)
    for name in node.include:
        value = label_value(right, name)
        if value:
            items[name] = value
        else:
            items.pop(name, None)
    return tuple(sorted(items.items()))


def _reduce_groups(keys: list) -> tuple[np.ndarray, np.ndarray, list[Labels]]:
    """Columns ordered by key, and the start of each key's run (for ufunc.reduceat)."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    ordered_keys = [keys[i] for i in order]
    starts = [i for i in range(len(order)) if i == 0 or ordered_keys[i] != ordered_keys[i - 1]]
    return np.array(order, dtype=np.intp), np.array(starts, dtype=np.intp), [ordered_keys[s] for s in starts]


class VectorMatchPlan:
    """``vector op vector`` for arithmetic and comparisons (engine.go VectorBinop)."""

    def __init__(self, node: Binary, lhs_labels: tuple[Labels, ...], rhs_labels: tuple[Labels, ...]) -> None:
        self.node = node
        self.swapped = node.card == "one-to-many"
        many, one = (rhs_labels, lhs_labels) if self.swapped else (lhs_labels, rhs_labels)
        self.one_side = "left" if self.swapped else "right"
        many_sig = [_signature(lb, node.on, node.matching) for lb in many]
        one_sig = [_signature(lb, node.on, node.matching) for lb in one]
        self.one_labels = one
        self.one_sig = one_sig
        # The "one" side's duplicates per signature: an error of the run.
        self.one_order, self.one_starts, self.one_keys = _reduce_groups(one_sig)
        by_sig: dict[Labels, list[int]] = {}
        for j, sig in enumerate(one_sig):
            by_sig.setdefault(sig, []).append(j)
        pairs = [(i, j) for i, sig in enumerate(many_sig) for j in by_sig.get(sig, [])]
        self.many_index = np.array([p[0] for p in pairs], dtype=np.intp)
        self.one_index = np.array([p[1] for p in pairs], dtype=np.intp)
        out_labels = [_result_labels(many[i], one[j], node) for i, j in pairs]
        if node.card == "one-to-one":
            keys = [many_sig[i] for i, _ in pairs]
            self.duplicate_message = (
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            )
        else:
            keys = [(*many_sig[i], ("\xff", repr(out))) for (i, _), out in zip(pairs, out_labels, strict=True)]
            self.duplicate_message = "multiple matches for labels: grouping labels must ensure unique matches"
        self.pair_order, self.pair_starts, _ = _reduce_groups(keys)
        self.relabel = Relabel.of(tuple(out_labels))
        self.labels = self.relabel.labels

    def evaluate(self, ctx: Context, lhs: VectorData, rhs: VectorData) -> VectorData:
        """Per run: matched pairs, errors where a match is not unique."""
        many, one = (rhs, lhs) if self.swapped else (lhs, rhs)
        n = ctx.n_runs
        live = np.asarray(many.present.any(axis=1) & one.present.any(axis=1))  # else: short-circuit
        if self.one_order.size:
            one_present = one.present[:, self.one_order]
            counts = np.add.reduceat(one_present, self.one_starts, axis=1)
            duplicated = np.asarray((counts > 1) & live[:, None])
            if duplicated.any():
                self._fail_duplicates(ctx, duplicated, one.present)
        if self.many_index.size == 0:
            return self.relabel.apply(ctx, VectorData(np.zeros((n, 0)), np.zeros((n, 0), dtype=bool)))
        many_v = many.values[:, self.many_index]
        one_v = one.values[:, self.one_index]
        active = many.present[:, self.many_index] & one.present[:, self.one_index]
        left, right = (one_v, many_v) if self.swapped else (many_v, one_v)
        value, keep = apply_operator(self.node.op, left, right)
        if keep is not None:
            if self.node.return_bool:
                value = keep.astype(float)
            else:
                active = active & keep
                value = many_v  # a filter keeps the "many" side's sample (the lhs, unswapped)
                if self.swapped:
                    value = one_v
        kept = np.add.reduceat(active[:, self.pair_order], self.pair_starts, axis=1)
        ctx.fail(np.asarray((kept > 1).any(axis=1) & live), self.duplicate_message)
        return self.relabel.apply(ctx, VectorData(value, active))

    def _fail_duplicates(self, ctx: Context, duplicated: np.ndarray, present: np.ndarray) -> None:
        runs = np.asarray(duplicated.any(axis=1))
        run = int(np.argmax(runs))
        group = int(np.argmax(duplicated[run]))
        sig = self.one_keys[group]
        members = [j for j, s in enumerate(self.one_sig) if s == sig and present[run, j]]
        first, second = self.one_labels[members[0]], self.one_labels[members[1]]
        node = self.node
        matched = only_labels(second, set(node.matching)) if node.on else without_labels(second, set(node.matching))
        message = (
            f"found duplicate series for the match group {format_labels(matched)} on the {self.one_side} "
            f"hand-side of the operation: [{format_labels(second)}, {format_labels(first)}]"
            ";many-to-many matching not allowed: matching labels must be unique on one side"
        )
        ctx.fail(runs, message)


class SetOperatorPlan:
    """``and``, ``or``, ``unless`` (engine.go VectorAnd, VectorOr, VectorUnless)."""

    def __init__(self, node: Binary, lhs_labels: tuple[Labels, ...], rhs_labels: tuple[Labels, ...]) -> None:
        self.op = node.op
        lhs_sig = [_signature(lb, node.on, node.matching) for lb in lhs_labels]
        rhs_sig = [_signature(lb, node.on, node.matching) for lb in rhs_labels]
        signatures = sorted(set(lhs_sig) | set(rhs_sig))
        index = {sig: s for s, sig in enumerate(signatures)}
        self.n_sig = len(signatures)
        self.lhs_sig = np.array([index[s] for s in lhs_sig], dtype=np.intp)
        self.rhs_sig = np.array([index[s] for s in rhs_sig], dtype=np.intp)
        if node.op == "or":
            self.relabel = Relabel.of((*lhs_labels, *rhs_labels))
        else:
            self.relabel = Relabel.of(lhs_labels)
        self.labels = self.relabel.labels

    def _signatures_present(self, present: np.ndarray, sig: np.ndarray) -> np.ndarray:
        out = np.zeros((present.shape[0], self.n_sig), dtype=bool)
        for column, s in enumerate(sig):
            out[:, s] |= present[:, column]
        return out

    def evaluate(self, ctx: Context, lhs: VectorData, rhs: VectorData) -> VectorData:
        """Per run: which series of each side remain."""
        if self.op == "or":
            lhs_has = self._signatures_present(lhs.present, self.lhs_sig)
            rhs_keep = rhs.present & ~lhs_has[:, self.rhs_sig]
            values = np.concatenate([lhs.values, rhs.values], axis=1)
            present = np.concatenate([lhs.present, rhs_keep], axis=1)
            return self.relabel.apply(ctx, VectorData(values, present))
        rhs_has = self._signatures_present(rhs.present, self.rhs_sig)
        matched = rhs_has[:, self.lhs_sig]
        present = lhs.present & (matched if self.op == "and" else ~matched)
        return self.relabel.apply(ctx, VectorData(lhs.values, present))


def is_comparison(op: str) -> bool:
    """Whether ``op`` is a comparison operator."""
    return op in COMPARISON_OPERATORS
