"""PromQL text into pdsim's own small, frozen expression tree.

The text is parsed by ``promql-parser`` (the Rust parser GreptimeDB uses); this module
converts its AST into the dataclasses below at once, so that nothing else in pdsim
depends on the binding's classes, and refuses what Prometheus 2.42 does not have (the
3.x ``or`` inside braces) or what the engine does not evaluate (``count_values``).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Literal

import promql_parser as pp


class PromQLError(ValueError):
    """A query that does not parse, or uses a construct the engine does not support."""


#: The static type of an expression, as Prometheus's parser types it.
Kind = Literal["scalar", "vector", "matrix", "string"]

MatchOpText = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector, e.g. ``code!~"5.*"``."""

    name: str
    op: MatchOpText
    value: str

    def matches(self, value: str) -> bool:
        """Whether a label's value (``""`` when the label is missing) satisfies it.

        Regexes are anchored as Prometheus anchors them (``^(?:re)$``, labels/regexp.go
        NewFastRegexMatcher): ``re.fullmatch`` is that anchoring (``$`` alone would also
        match before a trailing newline).
        """
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _regex(self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return _REGEX_CACHE[pattern]
    except KeyError:
        pass
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise PromQLError(f"invalid regular expression {pattern!r}: {exc}") from None
    _REGEX_CACHE[pattern] = compiled
    return compiled


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


@dataclass(frozen=True)
class At:
    """An ``@`` modifier: a fixed time in seconds, or ``start()``/``end()`` (``where``)."""

    where: Literal["time", "start", "end"]
    time_s: float = 0.0


@dataclass(frozen=True)
class Selector:
    """An instant vector selector: metric name (or None) and matchers (name included)."""

    name: str | None
    matchers: tuple[Matcher, ...]
    offset_s: float = 0.0
    at: At | None = None
    kind: Kind = "vector"


@dataclass(frozen=True)
class RangeSelector:
    """``selector[range]``."""

    selector: Selector
    range_s: float
    kind: Kind = "matrix"


@dataclass(frozen=True)
class Subquery:
    """``expr[range:step]`` (``step_s`` None: the default evaluation interval)."""

    expr: Node
    range_s: float
    step_s: float | None
    offset_s: float = 0.0
    at: At | None = None
    kind: Kind = "matrix"


@dataclass(frozen=True)
class NumberLiteral:
    """A number."""

    value: float
    kind: Kind = "scalar"


@dataclass(frozen=True)
class StringLiteral:
    """A string."""

    value: str
    kind: Kind = "string"


@dataclass(frozen=True)
class Call:
    """A function call; ``kind`` is the function's return type."""

    name: str
    args: tuple[Node, ...]
    kind: Kind


@dataclass(frozen=True)
class Aggregate:
    """An aggregation: ``op [by|without (grouping)] ([param,] expr)``."""

    op: str
    expr: Node
    param: Node | None
    grouping: tuple[str, ...]
    without: bool
    kind: Kind = "vector"


@dataclass(frozen=True)
class Binary:
    """A binary operation and its vector matching.

    Attributes:
        card: "one-to-one", "many-to-one" (group_left), "one-to-many" (group_right) or
            "many-to-many" (set operators).
        on: True for ``on(...)``, False for ``ignoring(...)`` or no clause.
        matching: the labels of ``on``/``ignoring``.
        include: the extra labels of ``group_left(...)``/``group_right(...)``.
    """

    op: str
    lhs: Node
    rhs: Node
    return_bool: bool
    card: str
    on: bool
    matching: tuple[str, ...]
    include: tuple[str, ...]
    kind: Kind


@dataclass(frozen=True)
class Unary:
    """Unary minus (unary plus is dropped by the parser)."""

    expr: Node
    kind: Kind


Node = NumberLiteral | StringLiteral | Selector | RangeSelector | Subquery | Call | Aggregate | Binary | Unary

# Prometheus 2.42 has holt_winters (3.x renamed it double_exponential_smoothing, and the
# parser follows 3.x): taught to the parser here, once.
pp.register_extra_functions(
    [pp.Function("holt_winters", [pp.ValueType.Matrix, pp.ValueType.Scalar, pp.ValueType.Scalar], pp.ValueType.Vector)]
)

_MATCH_OPS: dict[str, MatchOpText] = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_CARDS = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}
SET_OPERATORS = frozenset({"and", "or", "unless"})
COMPARISON_OPERATORS = frozenset({"==", "!=", ">", "<", ">=", "<="})


def parse(text: str) -> Node:
    """Parse PromQL text into the frozen tree.

    Raises:
        PromQLError: on a syntax error or an unsupported construct (one-line message).
    """
    try:
        tree = pp.parse(text)
    except (ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        raise PromQLError(f"cannot parse {text!r}: {message}") from None
    return _convert(tree)


def _seconds(delta: datetime.timedelta | None) -> float:
    return 0.0 if delta is None else delta.total_seconds()


def _enum_name(value: object) -> str:
    return str(value).rsplit(".", 1)[-1]


def _at(at: pp.AtModifier | None) -> At | None:
    if at is None:
        return None
    kind = _enum_name(at.type)
    if kind == "Start":
        return At("start")
    if kind == "End":
        return At("end")
    when = at.at
    if when is None:
        raise PromQLError("an @ modifier without a time")
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return At("time", (when - epoch).total_seconds())


def _selector(node: pp.VectorSelector) -> Selector:
    matchers = node.matchers
    if matchers.or_matchers:
        raise PromQLError("'or' inside a selector's braces is Prometheus 3.x syntax, not 2.42's")
    converted = tuple(Matcher(m.name, _MATCH_OPS[_enum_name(m.op)], m.value) for m in matchers.matchers)
    for matcher in converted:
        if matcher.op in ("=~", "!~"):
            _regex(matcher.value)  # refuse a bad regex at compile time
    if node.name is not None:
        converted = (Matcher("__name__", "=", node.name), *converted)
    return Selector(node.name, converted, _seconds(node.offset), _at(node.at))


def _convert(node: object) -> Node:
    if isinstance(node, pp.ParenExpr):
        return _convert(node.expr)
    if isinstance(node, pp.NumberLiteral):
        return NumberLiteral(float(node.val))
    if isinstance(node, pp.StringLiteral):
        return StringLiteral(str(node.val))
    if isinstance(node, pp.VectorSelector):
        return _selector(node)
    if isinstance(node, pp.MatrixSelector):
        return RangeSelector(_selector(node.vector_selector), _seconds(node.range))
    if isinstance(node, pp.SubqueryExpr):
        step = None if node.step is None else _seconds(node.step)
        return Subquery(_convert(node.expr), _seconds(node.range), step, _seconds(node.offset), _at(node.at))
    if isinstance(node, pp.UnaryExpr):
        inner = _convert(node.expr)
        return Unary(inner, inner.kind)
    if isinstance(node, pp.Call):
        name = node.func.name
        kind = _enum_name(node.func.return_type).lower()
        return Call(name, tuple(_convert(a) for a in node.args), kind)  # type: ignore[arg-type]
    if isinstance(node, pp.AggregateExpr):
        op = str(node.op)
        if op == "count_values":
            raise PromQLError("count_values is not supported: its output labels depend on the values")
        modifier = node.modifier
        grouping: tuple[str, ...] = ()
        without = False
        if modifier is not None:
            grouping = tuple(modifier.labels)
            without = _enum_name(modifier.type) == "Without"
        param = None if node.param is None else _convert(node.param)
        return Aggregate(op, _convert(node.expr), param, grouping, without)
    if isinstance(node, pp.BinaryExpr):
        return _binary(node)
    raise PromQLError(f"unsupported PromQL construct {type(node).__name__}")


def _binary(node: pp.BinaryExpr) -> Binary:
    op = str(node.op)
    lhs, rhs = _convert(node.lhs), _convert(node.rhs)
    modifier = node.modifier
    card, on, return_bool = "one-to-one", False, False
    matching: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    if modifier is not None:
        card = _CARDS[_enum_name(modifier.card)]
        return_bool = bool(modifier.return_bool)
        include = tuple(modifier.group_labels or ())
        if modifier.matching is not None:
            on = _enum_name(modifier.matching.type) == "Include"
            matching = tuple(modifier.matching.labels)
    if op in SET_OPERATORS:
        card = "many-to-many"
    kind: Kind = "vector" if "vector" in (lhs.kind, rhs.kind) else "scalar"
    return Binary(op, lhs, rhs, return_bool, card, on, matching, include, kind)


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of ``node``."""
    if isinstance(node, RangeSelector):
        return (node.selector,)
    if isinstance(node, (Subquery, Unary)):
        return (node.expr,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Aggregate):
        return (node.expr,) if node.param is None else (node.param, node.expr)
    if isinstance(node, Binary):
        return (node.lhs, node.rhs)
    return ()


def walk(node: Node) -> list[Node]:
    """Every node of a tree, parents before children."""
    out: list[Node] = [node]
    for child in children(node):
        out.extend(walk(child))
    return out
