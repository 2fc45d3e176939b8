"""A small, safe evaluator for Argo Rollouts ``successCondition`` / ``failureCondition``.

Argo evaluates these with expr-lang/expr (``utils/evaluate/evaluate.go``). This covers the
subset real AnalysisTemplates use: literals, ``result``, indexing and member access,
arithmetic, comparison, logic, ``in`` / ``not in``, the ternary, Argo's env functions
(asInt, asFloat, isNaN, isInf, isNil, default) and expr's ``len`` and ``abs``. User text
is never given to Python's eval: it is tokenized, parsed to a small AST and interpreted.

expr type-checks before running, using the types of the env values (``expr.Env(env)``),
so some mistakes are errors even on a branch never taken (``isNil(result) || result > 1``
with a nil result). We mirror that with a check pass keyed by the Go type ("nature") of
``result``: a list of numbers is ``[]float64`` (Prometheus vectors), other lists
``[]interface {}``, a dict ``map[string]interface {}`` whose members are unknown and so
are only checked at run time, as in expr.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeGuard

MAX_SOURCE_LEN, MAX_DEPTH = 2000, 64
_U, _MAP = "interface {}", "map[string]interface {}"


class ExprError(Exception):
    """A compile or run-time error; ``str()`` is a one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True, slots=True)
class Node:
    """AST node; ``kind`` is lit | result | unary | binary | cond | index | call."""

    kind: str
    op: str = ""
    kids: tuple[Node, ...] = ()
    value: object = None
    depth: int = 1


def _mk(kind: str, op: str, *kids: Node, value: object = None) -> Node:
    # Left-associative chains (a+b+c...) grow the tree without parser recursion: bound both.
    depth = 1 + max((k.depth for k in kids), default=0)
    if depth > MAX_DEPTH:
        raise ExprError(f"expression nests deeper than {MAX_DEPTH} levels")
    return Node(kind, op, kids, value, depth)


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
 |(?P<num>(?:[0-9][0-9_]*(?:\.[0-9][0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)
 |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
 |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
 |(?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:()\[\],.{}#])""",
    re.X,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}
_BINARY = {
    "||": 10,
    "&&": 15,
    "==": 20,
    "!=": 20,
    "<": 20,
    ">": 20,
    "<=": 20,
    ">=": 20,
    "in": 20,
    "+": 30,
    "-": 30,
    "*": 60,
    "/": 60,
    "%": 60,
    "**": 100,
}
_ALIASES = {"and": "&&", "or": "||", "not": "!", "^": "**"}
_CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
_UNARY = {"!": 50, "-": 90, "+": 90}  # as in expr, `!a == b` is `(!a) == b`, `-2 ** 2` is -4
#: The functions of one number (``asInt`` aside: it truncates as Go does).
_NUM_FUNCS: dict[str, Callable[[float], object]] = {
    "isNaN": math.isnan,
    "isInf": math.isinf,
    "asFloat": float,
    "abs": abs,
}
_FUNCS = {"asInt": 1, "asFloat": 1, "isNaN": 1, "isInf": 1, "isNil": 1, "default": 2, "len": 1, "abs": 1}


def _literal(kind: str, text: str) -> object:
    if kind == "str":
        unescape = lambda m: _ESCAPES.get(m[1]) or _bad(f"invalid escape \\{m[1]}")  # noqa: E731
        return re.sub(r"\\(.)", unescape, text[1:-1])
    if "." in text or "e" in text.lower():
        if math.isinf(v := float(text.replace("_", ""))):  # Go's ParseFloat rejects overflow
            _bad(f"invalid float literal: {text}")
        return v
    if (i := int(text.replace("_", ""), 10)) > 2**63 - 1:  # "010" is decimal 10 in expr too
        _bad(f"invalid integer literal: {text} out of range")
    return i


def _bad(message: str) -> NoReturn:
    raise ExprError(message)


class _Parser:
    """Pratt parser with expr's precedences and shapes (``parser/parser.go``)."""

    def __init__(self, src: str) -> None:
        self.toks: list[tuple[str, str, object]] = []  # (kind, text, literal value)
        pos, self.i, self.depth = 0, 0, 0
        while pos < len(src):
            if (m := _TOKEN.match(src, pos)) is None:
                _bad(f"unrecognized character {src[pos]!r} at {pos}")
            kind, text, pos = m.lastgroup or "", m[0], m.end()
            if kind in ("num", "str"):
                self.toks.append(("lit", text, _literal(kind, text)))
            elif kind == "op" or text in ("and", "or", "not", "in"):
                self.toks.append(("op", _ALIASES.get(text, text), text))
            elif kind == "name":
                self.toks.append(("name", text, text))
        self.toks.append(("eof", "", "end of expression"))

    def at(self, *texts: str) -> bool:
        return self.toks[self.i][0] == "op" and self.toks[self.i][1] in texts

    def expect(self, text: str) -> None:
        if not self.at(text):
            _bad(f"expected {text!r}, got {self.toks[self.i][2]!r}")
        self.i += 1

    def parse(self) -> Node:
        node = self.expr(0)
        if self.toks[self.i][0] != "eof":
            _bad(f"unexpected token {self.toks[self.i][2]!r}")
        return node

    def expr(self, prec: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _bad(f"expression nests deeper than {MAX_DEPTH} levels")
        left = self.unary()
        while self.toks[self.i][0] == "op":
            op = self.toks[self.i][1]
            negate = op == "!" and self.toks[self.i + 1][1] == "in"  # `not in`
            op = "in" if negate else op
            if _BINARY.get(op, -1) < prec:
                break
            self.i += 1 + negate
            if op in _CMP:  # expr chains comparisons: a < b < c is a < b && b < c
                cmp = None
                while True:
                    right = self.expr(_BINARY[op] + 1)
                    node = _mk("binary", op, left, right)
                    cmp = node if cmp is None else _mk("binary", "&&", cmp, node)
                    if not self.at(*_CMP):
                        break
                    op, left, self.i = self.toks[self.i][1], right, self.i + 1
                left = cmp
                continue
            left = _mk("binary", op, left, self.expr(_BINARY[op] + (op != "**")))  # ** is right-assoc
            if negate:
                left = _mk("unary", "!", left)
        while prec == 0 and self.at("?"):  # the ternary binds loosest (parseConditional)
            self.i += 1
            yes = self.expr(0)
            self.expect(":")
            left = _mk("cond", "", left, yes, self.expr(0))
        self.depth -= 1
        return left

    def unary(self) -> Node:
        if self.at(*_UNARY):
            op = self.toks[self.i][1]
            self.i += 1
            node = _mk("unary", op, self.expr(_UNARY[op]))
        else:
            node = self.primary()
        while self.at(".", "["):  # postfix: member access and indexing
            self.i += 1
            if self.toks[self.i - 1][1] == "[":
                key = self.expr(0)
                self.expect("]")  # slices (a[1:2]) are outside the subset
                node = _mk("index", "[", node, key)
                continue
            kind, _, name = self.toks[self.i]
            self.i += 1
            if kind not in ("name", "op") or not str(name).isidentifier() or self.at("("):
                _bad("expected a field name after '.' (method calls are not supported)")
            node = _mk("index", ".", node, _mk("lit", "", value=name))
        return node

    def primary(self) -> Node:
        kind, text, value = self.toks[self.i]
        self.i += 1
        if kind == "lit":
            return _mk("lit", "", value=value)
        if kind == "name" and text in ("true", "false", "nil"):
            return _mk("lit", "", value={"true": True, "false": False}.get(text))
        if kind == "name" and self.at("("):
            if text not in _FUNCS:  # before the arguments, so all(xs, {# > 1}) says why
                _bad(f"unknown func {text}")
            self.i += 1
            args: list[Node] = []
            while not self.at(")"):
                args.append(self.expr(0))
                if not self.at(","):
                    break
                self.i += 1
            self.expect(")")
            if len(args) != _FUNCS[text]:
                _bad(f"{text} takes {_FUNCS[text]} argument(s), got {len(args)}")
            return _mk("call", text, *args)
        if kind == "name":
            return _mk("result", "") if text == "result" else _bad(f"unknown name {text}")
        if text == "(":
            node = self.expr(0)
            self.expect(")")
            return node
        _bad(f"unexpected token {value!r}")


def _is_num(v: object) -> TypeGuard[int | float]:
    """Whether ``v`` is a number to expr (a bool is not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _nature(v: object) -> str:
    """The Go type expr would see for a provider value."""
    for py, go in (
        (type(None), "nil"),
        (bool, "bool"),
        (int, "int"),
        (float, "float64"),
        (str, "string"),
        (dict, _MAP),
    ):
        if isinstance(v, py):
            return go
    if isinstance(v, (list, tuple)):
        return "[]float64" if all(_is_num(x) for x in v) else "[]interface {}"
    return _bad(f"unsupported value type {type(v).__name__}")


def _check(n: Node, rn: str) -> str:
    """Return the nature of ``n`` or raise the error expr's checker (checker.go) would."""
    if n.kind in ("lit", "result"):
        return _nature(n.value) if n.kind == "lit" else rn
    ks = [_check(k, rn) for k in n.kids]
    op, a, b = n.op, ks[0], ks[-1]
    num = {"int", "float64"}
    known = a in num and b in num

    def maybe(*ok: str) -> bool:
        return (a == _U and (b == _U or b in ok)) or (b == _U and a in ok)

    def comparable(x: str, y: str) -> bool:
        return _U in (x, y) or "nil" in (x, y) or x == y or {x, y} <= num or x[:2] == y[:2] == "[]"

    if n.kind == "unary":
        if a in (("bool", _U) if op == "!" else (*num, _U)):
            return "bool" if op == "!" else a
        return _bad(f"invalid operation: {op} (mismatched type {a})")
    if n.kind == "cond":
        if a not in ("bool", _U):
            _bad(f"non-bool expression (type {a}) used as condition")
        return ks[2] if ks[1] == "nil" else ks[1] if ks[2] in ("nil", ks[1]) else _U
    if n.kind == "call":
        if (op in ("isNaN", "isInf", "abs") and a not in (*num, _U)) or (
            op == "len" and a not in ("string", _MAP, _U) and not a.startswith("[]")
        ):
            _bad(f"invalid argument for {op} (type {a})")  # asInt, asFloat, isNil, default: any
        return {"asInt": "int", "asFloat": "float64", "default": _U, "len": "int", "abs": a}.get(op, "bool")
    if n.kind == "index":
        if a == _U or (a == _MAP and b in ("string", _U)):
            return _U
        if a.startswith("[]") and b in ("int", _U):
            return a[2:]
        return _bad(f"type {a} has no field {n.kids[1].value}" if op == "." else f"type {a}[{b}] is undefined")
    ok = {
        "==": comparable(a, b),
        "!=": comparable(a, b),
        "&&": a == b == "bool" or maybe("bool"),
        "||": a == b == "bool" or maybe("bool"),
        "+": known or a == b == "string" or maybe(*num, "string"),
        "%": a == b == "int" or maybe("int"),
        "in": b == _U or (b == _MAP and a in ("string", _U)) or (b.startswith("[]") and comparable(a, b[2:])),
    }
    strings = ("string",) if op in _CMP else ()  # - * / ** take numbers only
    if not ok.get(op, known or (strings and a == b == "string") or maybe(*num, *strings)):
        _bad(f"invalid operation: {op} (mismatched types {a} and {b})")
    if op in ("+", "-", "*", "%"):
        return "int" if a == b == "int" else "float64" if known else "string" if a == b == "string" else _U
    return "float64" if op in ("/", "**") else "bool"


def _gotype(v: object) -> str:
    return "<nil>" if v is None else _nature(v)


def _wrap(v: int) -> int:
    """Go ints are 64-bit and wrap; this also stops Python ints from growing unbounded."""
    return (v + 2**63) % 2**64 - 2**63


def _equal(a: object, b: object) -> bool:
    if _is_num(a) and _is_num(b):  # Go compares int with float64 by converting the int
        mixed = isinstance(a, float) or isinstance(b, float)
        return float(a) == float(b) if mixed else a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (str, bool)) and type(a) is type(b):
        return a == b
    return a is None and b is None  # at run time, mismatched kinds are just unequal


def _binary(op: str, a: object, b: object) -> object:
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if op == "in":
        if b is None or (isinstance(b, dict) and isinstance(a, str)):
            return b is not None and a in b
        if isinstance(b, (list, tuple)):
            return any(_equal(x, a) for x in b)
        _bad(f'operator "in" not defined on {_gotype(b)}')
    if isinstance(a, str) and isinstance(b, str) and (op == "+" or op in _CMP):
        return a + b if op == "+" else _CMP[op](a, b)
    if not (_is_num(a) and _is_num(b)):
        _bad(f"invalid operation: {_gotype(a)} {op} {_gotype(b)}")
    ints = isinstance(a, int) and isinstance(b, int)
    x, y = float(a), float(b)
    if op in _CMP:  # NaN compares false with everything, as in Go
        return _CMP[op](a, b) if ints else _CMP[op](x, y)
    if op == "/":  # always float division; a zero divisor gives ±Inf or NaN as in Go
        if y == 0:
            return math.nan if x == 0 or x != x else math.copysign(math.inf, x) * math.copysign(1, y)
        return x / y
    if op == "**":  # expr's Exponent is math.Pow on float64, so results stay bounded
        odd = y.is_integer() and abs(y) < 2**53 and int(y) % 2 == 1
        try:
            return math.pow(x, y)
        except OverflowError:
            return -math.inf if x < 0 and odd else math.inf
        except ValueError:  # Go: 0 ** negative is ±Inf, negative ** fraction is NaN
            return (math.copysign(math.inf, x) if odd else math.inf) if x == 0 else math.nan
    if op == "%":
        if not (isinstance(a, int) and isinstance(b, int)):  # ints, said again for the type checker
            _bad(f"invalid operation: {_gotype(a)} % {_gotype(b)}")
        if b == 0:
            _bad("runtime error: integer divide by zero")
        r = abs(a) % abs(b)  # Go truncates: the sign follows a
        return _wrap(-r if a < 0 else r)
    if isinstance(a, int) and isinstance(b, int):  # ints, said again for the type checker
        return _wrap({"+": a + b, "-": a - b, "*": a * b}[op])
    return {"+": x + y, "-": x - y, "*": x * y}[op]


def _fetch(base: object, key: object) -> object:
    if isinstance(base, dict) and isinstance(key, str):
        return base.get(key)  # a missing key is nil; Python attributes are never looked up
    if isinstance(base, (list, tuple)) and _is_num(key) and math.isfinite(key):
        n = len(base)
        i = int(key) + n if key < 0 else int(key)
        if not 0 <= i < n:  # expr allows negative indices from the end
            _bad(f"index out of range: {i} (array length is {n})")
        return base[i]
    return _bad(f"cannot fetch {key!r} from {_gotype(base)}")


def _call(name: str, x: object, fallback: object, result: object) -> object:
    """Argo's env functions and expr's len/abs; ``fallback`` is default's 2nd argument."""
    if name in ("isNil", "default"):  # Argo's versions ignore their argument and test `result`
        return result is None if name == "isNil" else fallback if result is None else result
    if name in ("isNaN", "isInf", "abs", "asFloat", "asInt") and _is_num(x):
        if name == "asInt":  # Go's int64(f) truncates; NaN/Inf/overflow give MinInt64 on amd64
            return int(x) if math.isfinite(x) and abs(x) < 2**63 else -(2**63)
        return _NUM_FUNCS[name](x)
    if name == "asInt" and isinstance(x, str):  # strconv.ParseInt(x, 10, 64)
        if re.fullmatch(r"[+-]?[0-9]+", x):
            if -(2**63) <= int(x) < 2**63:
                return int(x)
            _bad(f'strconv.ParseInt: parsing "{x}": value out of range')
        _bad(f'strconv.ParseInt: parsing "{x}": invalid syntax')
    if name == "asFloat" and isinstance(x, str):  # strconv.ParseFloat: no spaces or "_"
        try:
            f = float("?" if re.search(r"[\s_]", x) else x)
        except ValueError:
            _bad(f'strconv.ParseFloat: parsing "{x}": invalid syntax')
        if math.isinf(f) and "inf" not in x.lower():
            _bad(f'strconv.ParseFloat: parsing "{x}": value out of range')
        return f
    if name == "len" and isinstance(x, (str, list, tuple, dict)):
        return len(x.encode()) if isinstance(x, str) else len(x)  # Go's len counts bytes
    return _bad(f"{name}() not supported on {_gotype(x)} {x!r}")


class Expr:
    """A parsed expression; evaluate it with :meth:`evaluate`."""

    def __init__(self, source: str, root: Node) -> None:
        self.source, self.root = source, root
        self._checked: dict[str, str] = {}  # result nature -> check error ("" when fine)

    def evaluate(self, result: object) -> object:
        """Check against ``result``'s nature, then interpret; raises :class:`ExprError`."""
        rn = _nature(result)
        if rn not in self._checked:
            try:
                _check(self.root, rn)
                self._checked[rn] = ""
            except ExprError as e:
                self._checked[rn] = str(e)
        if self._checked[rn]:
            _bad(self._checked[rn])
        try:
            return self._run(self.root, result)
        except (ArithmeticError, TypeError, ValueError, RecursionError) as e:  # no tracebacks out
            raise ExprError(f"evaluation failed: {e}") from e

    def _run(self, n: Node, result: object) -> object:
        if n.kind in ("lit", "result"):
            return n.value if n.kind == "lit" else result
        a = self._run(n.kids[0], result)
        if n.op in ("-", "+") and n.kind == "unary":
            if not _is_num(a):
                _bad(f"invalid operation: {n.op} {_gotype(a)}")
            return a if n.op == "+" else _wrap(-a) if isinstance(a, int) else -a
        if n.kind in ("unary", "cond") or n.op in ("&&", "||"):
            if not isinstance(a, bool):
                _bad(f"expected bool, but got {_gotype(a)}")
            if n.kind == "cond":
                return self._run(n.kids[1 if a else 2], result)
            if n.op == "!" or a == (n.op == "||"):  # short-circuit
                return not a if n.op == "!" else a
            b = self._run(n.kids[1], result)
            return b if isinstance(b, bool) else _bad(f"expected bool, but got {_gotype(b)}")
        b = self._run(n.kids[1], result) if len(n.kids) > 1 else None  # Go evaluates all operands
        if n.kind == "call":
            return _call(n.op, a, b, result)
        return _fetch(a, b) if n.kind == "index" else _binary(n.op, a, b)


@functools.lru_cache(maxsize=1024)
def compile_expr(source: str) -> Expr:
    """Parse ``source`` (cached); raises :class:`ExprError` if too long, deep or invalid."""
    if not isinstance(source, str):
        _bad(f"expression must be a string, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_LEN:
        _bad(f"expression is longer than {MAX_SOURCE_LEN} characters")
    return Expr(source, _Parser(source).parse())


def evaluate(source: str, result: object) -> object:
    """Return the value of ``source`` with ``result`` bound; raises :class:`ExprError`."""
    return compile_expr(source).evaluate(result)


def evaluate_condition(source: str, result: object) -> bool:
    """Argo's ``EvalCondition``: like :func:`evaluate` but the value must be a bool.

    Raises:
        ExprError: any error, or "expected bool, but got <Go type>" for another value.
    """
    value = evaluate(source, result)
    return value if isinstance(value, bool) else _bad(f"expected bool, but got {_gotype(value)}")


def evaluate_result(result: object, success: str | None, failure: str | None) -> tuple[str, str]:
    """Argo's ``EvaluateResult``: the phase of one measurement and, for an Error, its
    message as ``formatEvalError`` words it.

    Args:
        result: the provider's value (float, list of floats, dict, str, None...).
        success: ``successCondition``; ``None`` or ``""`` means unset.
        failure: ``failureCondition``; ``None`` or ``""`` means unset.

    Returns:
        ("Successful" | "Failed" | "Inconclusive", "") or ("Error", message) when either
        condition errs (the success condition is evaluated first). A nil or empty result
        (an empty Prometheus vector) gets "metric result is nil or empty" instead of the
        expression's own error.
    """
    ok = bad = False
    for which, condition in (("successCondition", success), ("failureCondition", failure)):
        if not condition:
            continue
        try:
            value = evaluate_condition(condition, result)
        except ExprError as err:
            if result is None or (isinstance(result, (list, tuple)) and not result):  # isNilOrEmpty
                why = "metric result is nil or empty: no data returned from the metric provider"
            else:
                why = str(err)
            return "Error", f'could not evaluate {which} "{condition}": {why}'
        if which == "successCondition":
            ok = value
        else:
            bad = value
    if not success and not failure:
        return "Successful", ""
    if not failure:
        bad = not ok  # without a failure condition, "not successful" is a failure
    elif not success:
        ok = not bad  # without a success condition, "not failed" is a success
    return ("Failed" if bad else "Successful" if ok else "Inconclusive"), ""


def measurement_phase(result: object, success: str | None, failure: str | None) -> str:
    """Argo's ``EvaluateResult``: the phase of one measurement ("Successful", "Failed",
    "Inconclusive", or "Error" when either condition errs); ``evaluate_result`` gives the
    Error's message too."""
    return evaluate_result(result, success, failure)[0]
