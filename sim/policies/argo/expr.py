"""A safe evaluator of expr-lang, the language of Argo Rollouts' conditions.

Argo evaluates ``successCondition`` / ``failureCondition`` with expr-lang/expr v1.17
(``utils/evaluate/evaluate.go``, ``EvalCondition``). This module implements the language
those conditions are written in (expr's ``docs/language-definition.md``): literals
(numbers in any base, strings with escapes, arrays, maps, ``nil``), ``result``, member
access, indexing, slices and optional chaining (``?.``), arithmetic with Go's int/float
rules, comparison (chained), logic, ``in``, ``matches``, ``contains``, ``startsWith``,
``endsWith``, ranges (``..``), ``??``, the ternary, the pipe (``|``), predicates with
``#`` (``all``, ``any``, ``none``, ``one``, ``filter``, ``map``, ``count``, ``sum``,
``find``, ``findIndex``, ``findLast``, ``findLastIndex``), expr's number, array, string
and conversion builtins (``len``, ``abs``, ``ceil``, ``floor``, ``round``, ``int``,
``float``, ``string``, ``type``, ``max``, ``min``, ``mean``, ``median``, ``first``,
``last``, ``get``, ``take``, ``keys``, ``values``, ``upper``, ``lower``, ``trim``,
``trimPrefix``, ``trimSuffix``, ``hasPrefix``, ``hasSuffix``, ``indexOf``,
``lastIndexOf``, ``replace``, ``split``) and Argo's env functions (``asInt``,
``asFloat``, ``isNaN``, ``isInf``, ``isNil``, ``default``), ``let`` variables, sequences
(``a; b``) and ``if {} else {}``. Not modelled: ``$env``, dates and durations, bytes
literals, ``reduce`` / ``groupBy`` / ``sortBy`` and the remaining builtins (bitwise, JSON,
base64, ``concat``, ``flatten``, ``uniq``, ``sort``, ``join``...); they are refused at
compile time with one line. ``matches`` runs Python's ``re`` on the patterns RE2 and ``re``
read alike, refusing what RE2 refuses (lookaround, backreferences).

User text is never given to Python's eval: it is tokenized, parsed to a small AST, type
checked, and turned once into Python closures that interpret it. Source length, nesting
depth and the items a run may build or iterate (expr's memory budget) are bounded.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

MAX_SOURCE_LEN, MAX_DEPTH = 2000, 64
#: expr's default memory budget (``conf.DefaultMemoryBudget``): the items a run may build
#: (ranges, arrays and maps, as ``vm.memGrow`` counts them) before it fails.
MAX_ITEMS = 1_000_000
#: pdsim's own bound on the elements predicates may visit in one run (expr has none; nested
#: predicates over a long vector would otherwise run for minutes in Python).
MAX_STEPS = 1_000_000
_U, _MAP = "interface {}", "map[string]interface {}"
_NUM = ("int", "float64")


class ExprError(Exception):
    """A compile or run-time error; ``str()`` is a one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class _Short(Exception):
    """``a?.b`` on a nil ``a``: the rest of the member chain is skipped (expr's ChainNode)."""


@dataclass(frozen=True, slots=True)
class Node:
    """AST node; ``kind`` is lit | result | ptr | unary | binary | cond | index | slice |
    chain | call | pred | array | map | let | var | seq | absent."""

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


_ABSENT = Node("absent")

_TOKEN = re.compile(
    r"""(?P<ws>\s+|//[^\n]*|(?s:/\*.*?\*/))
 |(?P<num>0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
    |(?:[0-9][0-9_]*(?:\.[0-9][0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)
 |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
 |(?P<name>[A-Za-z_$][A-Za-z0-9_]*)
 |(?P<op>\*\*|==|!=|<=|>=|&&|\|\||\?\?|\?\.|\.\.|[-+*/%^<>!?:()\[\],.{}#|;=])""",
    re.X,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")
#: operator/operator.go ``Binary``: precedence (all left-associative but ``**``).
_BINARY = {
    "|": 0,
    "||": 10,
    "&&": 15,
    "==": 20,
    "!=": 20,
    "<": 20,
    ">": 20,
    "<=": 20,
    ">=": 20,
    "in": 20,
    "matches": 20,
    "contains": 20,
    "startsWith": 20,
    "endsWith": 20,
    "..": 25,
    "+": 30,
    "-": 30,
    "*": 60,
    "/": 60,
    "%": 60,
    "**": 100,
    "??": 500,
}
_WORDS = {"in", "matches", "contains", "startsWith", "endsWith", "not", "and", "or"}
_NEGATABLE = {"in", "matches", "contains", "startsWith", "endsWith"}  # AllowedNegateSuffix
_ALIASES = {"and": "&&", "or": "||", "^": "**"}
_CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
_UNARY = {"!": 50, "not": 50, "-": 90, "+": 90}  # `!a == b` is `(!a) == b`, `-2 ** 2` is -4
_STRING_OPS = {"matches", "contains", "startsWith", "endsWith"}

#: parser.go ``predicates``: argument kinds ("e" expression, "p" predicate, "?" optional).
_PREDICATES = {
    "all": "ep",
    "none": "ep",
    "any": "ep",
    "one": "ep",
    "filter": "ep",
    "map": "ep",
    "count": "ep?",
    "sum": "ep?",
    "find": "ep",
    "findIndex": "ep",
    "findLast": "ep",
    "findLastIndex": "ep",
}
#: Typed functions, checked as expr's ``checkArguments`` does: overloads of
#: (parameter natures, result nature); "any" takes everything. Argo's env comes first.
_SIGNATURES: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "asInt": ((("any",), "int"),),
    "asFloat": ((("any",), "float64"),),
    "isNaN": ((("float64",), "bool"),),
    "isInf": ((("float64",), "bool"),),
    "isNil": ((("any",), "bool"),),
    "default": ((("any", "any"), _U),),
    "string": ((("any",), "string"),),
    "type": ((("any",), "string"),),
    "upper": ((("string",), "string"),),
    "lower": ((("string",), "string"),),
    "trim": ((("string",), "string"), (("string", "string"), "string")),
    "trimPrefix": ((("string", "string"), "string"), (("string",), "string")),
    "trimSuffix": ((("string", "string"), "string"), (("string",), "string")),
    "hasPrefix": ((("string", "string"), "bool"),),
    "hasSuffix": ((("string", "string"), "bool"),),
    "indexOf": ((("string", "string"), "int"),),
    "lastIndexOf": ((("string", "string"), "int"),),
    "replace": ((("string", "string", "string"), "string"),),
    "split": ((("string", "string"), "[]string"), (("string", "string", "int"), "[]string")),
}
#: builtin.go functions with a ``Validate``: (min, max) argument counts.
_VALIDATED = {
    "len": (1, 1),
    "abs": (1, 1),
    "ceil": (1, 1),
    "floor": (1, 1),
    "round": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "max": (1, 1 << 30),
    "min": (1, 1 << 30),
    "mean": (1, 1 << 30),
    "median": (1, 1 << 30),
    "first": (1, 1),
    "last": (1, 1),
    "get": (2, 2),
    "keys": (1, 1),
    "values": (1, 1),
    "take": (2, 2),
}


def _literal(kind: str, text: str) -> object:
    if kind == "str":
        if text[0] == "`":  # raw string
            return text[1:-1]
        return _ESCAPE.sub(_unescape, text[1:-1])
    digits = text.replace("_", "")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        base = {"x": 16, "o": 8, "b": 2}[digits[1].lower()]
        try:
            v = int(digits[2:], base)
        except ValueError:
            _bad(f"invalid integer literal: {text}")
    elif "." in digits or "e" in digits.lower():
        if math.isinf(f := float(digits)):  # Go's ParseFloat rejects overflow
            _bad(f"invalid float literal: {text}")
        return f
    else:
        v = int(digits, 10)  # "010" is decimal 10 in expr too
    if v > 2**63 - 1:
        _bad(f"invalid integer literal: {text} out of range")
    return v


def _unescape(m: re.Match[str]) -> str:
    e = m[1]
    if len(e) > 1:  # \xNN, \uNNNN, \UNNNNNNNN, \NNN (lexer utils.go unescapeChar)
        code = int(e, 8) if e[0] in "01234567" else int(e[1:], 16)
        if code > 0x10FFFF or (e[0] in "xuU0123" and 0xD800 <= code < 0xE000):
            _bad(f"invalid escape \\{e}")
        return chr(code)
    return _ESCAPES.get(e) or _bad(f"invalid escape \\{e}")


def _bad(message: str) -> NoReturn:
    raise ExprError(message)


class _Parser:
    """Pratt parser with expr's precedences and shapes (``parser/parser.go``)."""

    def __init__(self, src: str) -> None:
        self.toks: list[tuple[str, str, object]] = []  # (kind, text, literal value)
        pos, self.i, self.depth, self.predicates = 0, 0, 0, 0
        self.variables: list[tuple[str, int]] = []  # `let` names in scope and their slots
        self.slots = 0
        while pos < len(src):
            if (m := _TOKEN.match(src, pos)) is None:
                _bad(f"unrecognized character {src[pos]!r} at {pos}")
            kind, text, pos = m.lastgroup or "", m[0], m.end()
            if kind in ("num", "str"):
                self.toks.append(("lit", text, _literal(kind, text)))
            elif kind == "op" or text in _WORDS:
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

    def at_name(self, name: str) -> bool:
        return self.toks[self.i][0] == "name" and self.toks[self.i][1] == name

    def parse(self) -> Node:
        node = self.sequence()
        if self.toks[self.i][0] != "eof":
            _bad(f"unexpected token {self.toks[self.i][2]!r}")
        return node

    def sequence(self) -> Node:
        """``a; b; c``: each evaluated, the last one's value (``parseSequenceExpression``)."""
        nodes = [self.expr(0)]
        while self.at(";"):
            self.i += 1
            if self.toks[self.i][0] == "eof" or self.at(")", "}"):  # a trailing semicolon
                break
            nodes.append(self.expr(0))
        return nodes[0] if len(nodes) == 1 else _mk("seq", "", *nodes)

    def let(self) -> Node:
        """``let name = value; rest`` (``parseVariableDeclaration``)."""
        self.i += 1
        kind, name, _ = self.toks[self.i]
        if kind != "name":
            _bad(f"expected a variable name after let, got {name!r}")
        self.i += 1
        self.expect("=")
        value = self.expr(0)
        self.expect(";")
        slot, self.slots = self.slots, self.slots + 1
        self.variables.append((name, slot))
        body = self.sequence()
        self.variables.pop()
        return _mk("let", name, value, body, value=slot)

    def if_else(self) -> Node:
        """``if cond { a } else if ... { b } else { c }`` (``parseConditionalIf``)."""
        self.i += 1
        cond = self.expr(0)
        self.expect("{")
        yes = self.sequence()
        self.expect("}")
        if not self.at_name("else"):
            _bad(f"expected else, got {self.toks[self.i][2]!r}")
        self.i += 1
        if self.at_name("if"):
            return _mk("cond", "", cond, yes, self.if_else())
        self.expect("{")
        no = self.sequence()
        self.expect("}")
        return _mk("cond", "", cond, yes, no)

    def expr(self, prec: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _bad(f"expression nests deeper than {MAX_DEPTH} levels")
        if prec == 0 and (self.at_name("let") or self.at_name("if")):
            node = self.let() if self.at_name("let") else self.if_else()
            self.depth -= 1
            return node
        left, previous = self.unary(), ""
        while self.toks[self.i][0] == "op":
            op, negate = self.toks[self.i][1], False
            if op == "not":  # `not in`, `not matches`, ...
                nxt = self.toks[self.i + 1]
                if nxt[0] != "op" or nxt[1] not in _NEGATABLE:
                    _bad(f"unexpected token {nxt[2]!r}")
                op, negate = nxt[1], True
            if _BINARY.get(op, -1) < prec:
                break
            self.i += 1 + negate
            if previous == "??" and op != "??":
                _bad(f"Operator ({op}) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses.")
            previous = op
            if op == "|":  # the pipe: `x | f(y)` is `f(x, y)`
                kind, name, _ = self.toks[self.i]
                self.i += 1
                if kind != "name" or not self.at("("):
                    _bad("expected a function call after '|'")
                left = self.call(name, [left])
                continue
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
            if self.at(":"):  # `a ?: b` is `a ? a : b`
                self.i += 1
                left = _mk("cond", "", left, left, self.expr(0))
                continue
            yes = self.expr(0)
            self.expect(":")
            left = _mk("cond", "", left, yes, self.expr(0))
        self.depth -= 1
        return left

    def unary(self) -> Node:
        if self.at(*_UNARY):
            op = self.toks[self.i][1]
            self.i += 1
            return self.postfix(_mk("unary", "!" if op == "not" else op, self.expr(_UNARY[op])))
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        optional = False
        while self.at(".", "?.", "["):
            text = self.toks[self.i][1]
            self.i += 1
            opt = text == "?."
            optional |= opt
            if text == "[" or (opt and self.at("[")):
                self.i += text != "["
                node = self.subscript(node, opt)
                continue
            kind, name, _ = self.toks[self.i]
            self.i += 1
            if kind not in ("name", "op") or not name.isidentifier():
                _bad("expected a field name after '.'")
            if self.at("("):
                _bad(f"method {name}() is not supported (expr calls Go methods; none are defined here)")
            node = _mk("index", ".", node, _mk("lit", "", value=name), value=opt)
        return _mk("chain", "", node) if optional else node

    def subscript(self, node: Node, optional: bool) -> Node:
        """After ``[``: an index ``a[i]`` or a slice ``a[i:j]`` (either bound optional)."""
        lo = _ABSENT if self.at(":") else self.expr(0)
        if self.at(":"):
            self.i += 1
            hi = _ABSENT if self.at("]") else self.expr(0)
            self.expect("]")
            return _mk("slice", "", node, lo, hi)
        self.expect("]")
        return _mk("index", "[", node, lo, value=optional)

    def primary(self) -> Node:
        kind, text, value = self.toks[self.i]
        self.i += 1
        if kind == "lit":
            return _mk("lit", "", value=value)
        if kind == "name" and text in ("true", "false", "nil"):
            return _mk("lit", "", value={"true": True, "false": False}.get(text))
        if kind == "name" and self.at("("):
            return self.call(text, [])
        if kind == "name":
            for name, slot in reversed(self.variables):
                if name == text:
                    return _mk("var", text, value=slot)
            if text == "$env":
                _bad("$env is not supported by pdsim's expr evaluator")
            return _mk("result", "") if text == "result" else _bad(f"unknown name {text}")
        if self.predicates and text in ("#", "."):  # the element of a predicate: #, #index, .field
            if text == ".":
                self.i -= 1  # `.field` is `#.field`: postfix reads the member
                return _mk("ptr", "", value="")
            name = ""
            if self.toks[self.i][0] == "name":
                name, self.i = self.toks[self.i][1], self.i + 1
            return _mk("ptr", "", value=name)
        if text == "(":
            node = self.sequence()
            self.expect(")")
            return node
        if text == "[":
            return _mk("array", "", *self.items("]"))
        if text == "{":
            return _mk("map", "", *self.pairs())
        _bad(f"unexpected token {value!r}")

    def items(self, close: str) -> list[Node]:
        """Comma-separated expressions up to ``close`` (a trailing comma is allowed)."""
        out: list[Node] = []
        while not self.at(close):
            out.append(self.expr(0))
            if not self.at(","):
                break
            self.i += 1
        self.expect(close)
        return out

    def pairs(self) -> list[Node]:
        """A map literal's ``key: value`` pairs; keys are names, strings, numbers or ``(expr)``."""
        out: list[Node] = []
        while not self.at("}"):
            kind, text, value = self.toks[self.i]
            if kind in ("name", "lit"):
                self.i += 1
                out.append(_mk("lit", "", value=value if isinstance(value, str) and kind == "lit" else text))
            elif self.at("("):
                out.append(self.expr(0))
            else:
                _bad(f"a map key must be a string, a number, a name or an (expression), not {value!r}")
            self.expect(":")
            out.append(self.expr(0))
            if not self.at(","):
                break
            self.i += 1
        self.expect("}")
        return out

    def call(self, name: str, args: list[Node]) -> Node:
        """``name(...)`` after the name; ``args`` holds a piped first argument."""
        self.expect("(")
        if name in _PREDICATES:  # parser.go parseCall: predicate arguments
            spec = re.findall(r"[ep]\??", _PREDICATES[name])[len(args) :]
            for i, arg in enumerate(spec):
                if self.at(")"):
                    if arg.endswith("?"):
                        break
                    _bad(f"expected at least {len(spec)} arguments")
                if i:
                    self.expect(",")
                args.append(self.predicate() if arg[0] == "p" else self.expr(0))
            if self.at(","):  # a trailing comma
                self.i += 1
            self.expect(")")
            return _mk("call", name, *args)
        if name not in _SIGNATURES and name not in _VALIDATED:
            _bad(f"unknown func {name}")
        args += self.items(")")
        if name in _VALIDATED:
            low, high = _VALIDATED[name]
            if not low <= len(args) <= high:
                if name in ("max", "min", "mean", "median"):
                    _bad(f"not enough arguments to call {name}")
                _bad(f"invalid number of arguments (expected {low}, got {len(args)})")
        else:
            counts = {len(params) for params, _ in _SIGNATURES[name]}
            if len(args) not in counts:
                _bad(f"{'not enough' if len(args) < min(counts) else 'too many'} arguments to call {name}")
        return _mk("call", name, *args)

    def predicate(self) -> Node:
        """A predicate argument, in braces or bare (``parsePredicate``)."""
        braces = self.at("{")
        self.i += braces
        self.predicates += 1
        body = self.sequence() if braces else self.expr(0)
        self.predicates -= 1
        if braces:
            self.expect("}")
        elif self.at(";"):
            _bad("wrap predicate with brackets { and }")
        return _mk("pred", "", body)


# -- the type check (checker/checker.go) ----------------------------------------------------


def _is_num(v: object) -> TypeGuard[int | float]:
    """Whether ``v`` is a number to expr (a bool is not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_EXACT_NATURES = {type(None): "nil", bool: "bool", int: "int", float: "float64", str: "string", dict: _MAP}


def _nature(v: object) -> str:
    """The Go type expr would see for a provider value."""
    exact = _EXACT_NATURES.get(type(v))  # the common case, without the isinstance walk
    if exact is not None:
        return exact
    if isinstance(v, (list, tuple)):
        return "[]float64" if all(_is_num(x) for x in v) else "[]interface {}"
    for py, go in _EXACT_NATURES.items():  # subclasses (an IntEnum, a str subclass...)
        if isinstance(v, py):
            return go
    return _bad(f"unsupported value type {type(v).__name__}")


def _elem(nature: str) -> str:
    return nature[2:] if nature.startswith("[]") else _U


def _comparable(x: str, y: str) -> bool:
    return _U in (x, y) or "nil" in (x, y) or x == y or {x, y} <= {*_NUM} or x[:2] == y[:2] == "[]"


@dataclass(frozen=True, slots=True)
class Scope:
    """What the checker knows inside a predicate (``#``) or a ``let``."""

    nature: str  # the predicate's collection, or the variable's value
    name: str = ""  # the variable's name; "" for a predicate
    pointers: tuple[tuple[str, str], ...] = ()  # a predicate's #names and their natures


#: Names a ``let`` may not take: Argo's env (``evaluate.go`` EvalCondition) and expr's builtins.
_ENV_NAMES = {"result", "asInt", "asFloat", "isNaN", "isInf", "isNil", "default"}


def _check(n: Node, rn: str, scopes: tuple[Scope, ...] = ()) -> str:
    """Return the nature of ``n`` or raise the error expr's checker (checker.go) would."""
    kind, op = n.kind, n.op
    if kind == "lit":
        return _nature(n.value)
    if kind == "result":
        return rn
    if kind == "ptr":  # pointerNode: the innermost predicate's
        scope = next(s for s in reversed(scopes) if not s.name)
        coll = scope.nature
        if n.value:
            return dict(scope.pointers).get(str(n.value)) or _bad(f"unknown pointer #{n.value}")
        if coll != _U and not coll.startswith("[]"):
            _bad(f"cannot use {coll} as array")
        return _elem(coll)
    if kind == "var":
        return next(s.nature for s in reversed(scopes) if s.name == op)
    if kind == "let":  # variableDeclaratorNode
        if op in _ENV_NAMES:
            _bad(f"cannot redeclare {op}")
        if op in _PREDICATES or op in _VALIDATED or op in _SIGNATURES:
            _bad(f"cannot redeclare builtin {op}")
        if any(s.name == op for s in scopes):
            _bad(f"cannot redeclare variable {op}")
        value = _check(n.kids[0], rn, scopes)
        return _check(n.kids[1], rn, (*scopes, Scope(value, op)))
    if kind == "seq":
        return [_check(k, rn, scopes) for k in n.kids][-1]
    if kind == "call":
        return _check_call(n, rn, scopes)
    if kind == "array":  # arrayNode: elements of one kind make a typed array
        ks = [_check(k, rn, scopes) for k in n.kids]
        return "[]" + ks[0] if ks and len(set(ks)) == 1 else "[]interface {}"
    if kind == "map":
        for k in n.kids:
            _check(k, rn, scopes)
        return _MAP
    if kind == "chain":
        return _check(n.kids[0], rn, scopes)
    ks = [_check(k, rn, scopes) if k.kind != "absent" else "int" for k in n.kids]
    a, b = ks[0], ks[-1]
    if kind == "unary":
        if a in (("bool", _U) if op == "!" else (*_NUM, _U)):
            return "bool" if op == "!" else a
        return _bad(f"invalid operation: {op} (mismatched type {a})")
    if kind == "cond":
        if a not in ("bool", _U):
            _bad(f"non-bool expression (type {a}) used as condition")
        return ks[2] if ks[1] == "nil" else ks[1] if ks[2] in ("nil", ks[1]) else _U
    if kind == "slice":  # sliceNode
        if a == _U:
            return _U
        if a != "string" and not a.startswith("[]"):
            _bad(f"cannot slice {a}")
        for bound in ks[1:]:
            if bound not in ("int", _U):
                _bad(f"non-integer slice index {bound}")
        return a
    if kind == "index":  # memberNode
        if a == _U or (a == _MAP and b in ("string", _U)):
            return _U
        if a.startswith("[]") and b in ("int", _U):
            return a[2:]
        if a.startswith("[]") and op == "[":
            _bad(f"array elements can only be selected using an integer (got {b})")
        return _bad(f"type {a} has no field {n.kids[1].value}" if op == "." else f"type {a}[{b}] is undefined")
    return _check_binary(op, a, b, n)


def _check_binary(op: str, a: str, b: str, n: Node) -> str:
    known = a in _NUM and b in _NUM

    def maybe(*ok: str) -> bool:  # Nature.MaybeCompatible
        return (a == _U and (b == _U or b in ok)) or (b == _U and a in ok)

    if op == "??":
        return b if a == "nil" else a if b in ("nil", a) else _U
    if op in _STRING_OPS:
        right = n.kids[1]
        if op == "matches" and right.kind == "lit" and isinstance(right.value, str):
            _regex(right.value)  # a constant pattern is compiled by the checker
        if a == b == "string" or maybe("string"):
            return "bool"
    elif op == "..":
        if a == b == "int" or maybe("int"):
            return "[]int"
    elif op in ("==", "!="):
        if _comparable(a, b):
            return "bool"
    elif op in ("&&", "||"):
        if a == b == "bool" or maybe("bool"):
            return "bool"
    elif op == "in":
        if b == _U or (b == _MAP and a in ("string", _U)) or (a == _U and b == "string"):
            return "bool"
        if b.startswith("[]"):
            if _comparable(a, b[2:]):
                return "bool"
            _bad(f"cannot use {a} as type {b[2:]} in array")
    elif op == "%":
        if a == b == "int" or maybe("int"):
            return "int"
    elif op in ("/", "**"):
        if known or maybe(*_NUM):
            return "float64"
    elif op in _CMP:
        if known or a == b == "string" or maybe(*_NUM, "string"):
            return "bool"
    elif op == "+" and a == b == "string":
        return "string"
    elif known:  # + - *: PromoteNumericNature
        return "int" if a == b == "int" else "float64"
    elif maybe(*_NUM, *(("string",) if op == "+" else ())):
        return _U
    return _bad(f"invalid operation: {op} (mismatched types {a} and {b})")


def _check_call(n: Node, rn: str, scopes: tuple[Scope, ...]) -> str:
    name, kids = n.op, n.kids
    if name in _PREDICATES:  # builtinNode
        coll = _check(kids[0], rn, scopes)
        if coll != _U and not coll.startswith("[]"):
            _bad(f"builtin {name} takes only array (got {coll})")
        if len(kids) == 1:  # count(xs) / sum(xs)
            return "int" if name == "count" else _elem(coll)
        pointers = (("index", "int"),) if name == "map" else ()
        body = _check(kids[1].kids[0], rn, (*scopes, Scope(coll, pointers=pointers)))
        if body == "nil":
            _bad("predicate should has one input and one output param")
        if name in ("map", "sum"):
            return "[]" + body if name == "map" else body
        if body not in ("bool", _U):
            _bad(f"predicate should return boolean (got {body})")
        if name == "filter":
            return "[]interface {}" if coll == _U else coll
        return {"count": "int", "findIndex": "int", "findLastIndex": "int"}.get(name) or (
            _elem(coll) if name in ("find", "findLast") else "bool"
        )
    args = [_check(k, rn, scopes) for k in kids]
    if name in _SIGNATURES:
        return _check_signature(name, args)
    a = args[0]
    if name == "len" and (a in ("string", _MAP, _U) or a.startswith("[]")):
        return "int"
    if name == "abs" and a in (*_NUM, _U):
        return a
    if name in ("ceil", "floor", "round") and a in (*_NUM, _U):
        return "float64"
    if name in ("int", "float") and a in (*_NUM, "string", _U):
        return "int" if name == "int" else "float64"
    if name in ("max", "min", "mean", "median"):  # validateAggregateFunc
        for x in args:
            if x == _U or x.startswith("[]"):
                return _U
            if x not in _NUM:
                _bad(f"invalid argument for {name} (type {x})")
        return a
    if name in ("first", "last"):
        if a == _U or a.startswith("[]"):
            return _elem(a)
        _bad(f"cannot get {name} element from {a}")
    if name == "get":  # checkBuiltinGet
        b = args[1]
        if a == _U or (a.startswith("[]") and b in ("int", _U)) or (a == _MAP and b in ("string", _U)):
            return _elem(a)
        _bad(f"type {a} does not support indexing" if not a.startswith("[]") else f"non-integer slice index {b}")
    if name in ("keys", "values"):
        if a in (_MAP, _U):
            return "[]interface {}" if name == "values" or a == _U else "[]string"
        _bad(f"cannot get {name} from {a}")
    if name == "take":
        if a != _U and not a.startswith("[]"):
            _bad(f"cannot take from {a}")
        if args[1] not in ("int", _U):
            _bad(f"cannot take {args[1]} elements")
        return a
    return _bad(f"invalid argument for {name} (type {a})")


def _check_signature(name: str, args: list[str]) -> str:
    """expr's ``checkArguments`` over a function's overloads; the last error wins."""
    error = f"no matching overload for {name}"
    for params, out in _SIGNATURES[name]:
        if len(params) != len(args):
            error = f"{'not enough' if len(args) < len(params) else 'too many'} arguments to call {name}"
            continue
        for param, arg in zip(params, args):
            if param == "any" or arg == _U or arg == param or (param == "float64" and arg == "int"):
                continue
            error = (
                f"cannot use nil as argument (type {param}) to call {name}"
                if arg == "nil"
                else f"cannot use {arg} as argument (type {param}) to call {name}"
            )
            break
        else:
            return out
    return _bad(error)


# -- run-time semantics (vm/runtime, builtin/lib.go) -------------------------------------------


def _gotype(v: object) -> str:
    return "<nil>" if v is None else _nature(v)


def _wrap(v: int) -> int:
    """Go ints are 64-bit and wrap; this also stops Python ints from growing unbounded."""
    return (v + 2**63) % 2**64 - 2**63


def _go_int(f: float) -> int:
    """Go's ``int(f)``: truncation; NaN, Inf and overflow give MinInt64 on amd64."""
    return int(f) if math.isfinite(f) and abs(f) < 2**63 else -(2**63)


def _go_float(f: float) -> str:
    """Go's ``%v`` of a float64 (strconv 'g', shortest): exponent form below 1e-4 and from
    1e+06 (``eprec = 6`` for the shortest precision), as ``fmt.Println(1e6)`` prints."""
    if math.isnan(f) or math.isinf(f):
        return "NaN" if math.isnan(f) else "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    m = re.fullmatch(r"(-?)(\d+)(?:\.(\d+))?(?:e([-+]\d+))?", repr(f))
    assert m is not None  # repr of a finite float always has this shape
    sign, whole, frac, exp = m[1], m[2], m[3] or "", int(m[4] or 0)
    raw = whole + frac
    digits = raw.lstrip("0")
    point = len(whole) + exp - (len(raw) - len(digits))  # value = 0.<digits> * 10**point
    digits = digits.rstrip("0")
    x = point - 1
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_str(v: object) -> str:
    """``fmt.Sprintf("%v", v)``: expr's ``string()``."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_go_str(x) for x in v) + "]"
    if isinstance(v, dict):  # fmt prints maps sorted by key
        return "map[" + " ".join(f"{_go_str(k)}:{_go_str(v[k])}" for k in sorted(v, key=str)) + "]"
    return str(v)


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


def _not(v: object, want: str) -> NoReturn:
    """A Go type assertion that failed (``v.(bool)`` in the VM)."""
    _bad(f"interface conversion: interface {{}} is {'nil' if v is None else _gotype(v)}, not {want}")


def _truth(v: object) -> bool:
    return v if isinstance(v, bool) else _not(v, "bool")


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    """Go's ``regexp.Compile`` (RE2) for the patterns both engines read alike; RE2's refusals
    of Perl-only syntax (lookaround, backreferences) are kept."""
    for perl in ("(?=", "(?!", "(?<=", "(?<!", "(?>"):
        if perl in pattern:
            _bad(f"error parsing regexp: invalid or unsupported Perl syntax: `{perl}`")
    if m := re.search(r"\\[1-9]", pattern):
        _bad(f"error parsing regexp: invalid escape sequence: `{m[0]}`")
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as e:
        raise ExprError(f"error parsing regexp: {e}") from None


def _string_op(op: str, a: object, b: object) -> bool:
    if a is None or b is None:  # the VM answers false for a nil operand
        return False
    if not isinstance(a, str):
        _not(a, "string")
    if not isinstance(b, str):
        _not(b, "string")
    if op == "matches":
        return _regex(b).search(a) is not None
    return b in a if op == "contains" else a.startswith(b) if op == "startsWith" else a.endswith(b)


def _binary(op: str, a: object, b: object) -> object:
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if op == "in":
        if b is None or (isinstance(b, dict) and isinstance(a, str)):
            return b is not None and a in b
        if isinstance(b, (list, tuple)):
            return any(_equal(x, a) for x in b)
        _bad(f'operator "in" not defined on {_gotype(b)}')
    if op in _STRING_OPS:
        return _string_op(op, a, b)
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


def _to_int(v: object) -> int:
    """runtime.ToInt: numbers truncate, anything else panics."""
    if _is_num(v):
        return v if isinstance(v, int) else _go_int(v)
    return _bad(f"invalid operation: int({_gotype(v)})")


def _fetch(base: object, key: object) -> object:
    if isinstance(base, dict) and isinstance(key, str):
        return base.get(key)  # a missing key is nil; Python attributes are never looked up
    if isinstance(base, (list, tuple, str)) and _is_num(key) and not isinstance(base, dict):
        seq = base.encode() if isinstance(base, str) else base  # Go indexes a string's bytes
        n, i = len(seq), _to_int(key)
        i = i + n if i < 0 else i
        if not 0 <= i < n:  # expr allows negative indices from the end
            _bad(f"index out of range: {i} (array length is {n})")
        return seq[i]
    return _bad(f"cannot fetch {key!r} from {_gotype(base)}")


def _slice(base: object, lo: object, hi: object) -> object:
    """runtime.Slice: bounds count from the end when negative and are clamped."""
    if not isinstance(base, (list, tuple, str)):
        _bad(f"cannot slice {_gotype(base)}")
    seq = base if not isinstance(base, str) or base.isascii() else base.encode()
    n = len(seq)
    a = n if lo is None else _to_int(lo)
    b = n if hi is None else _to_int(hi)
    a = 0 if lo is None else max(a + n if a < 0 else a, 0)
    b = min(max(b + n if b < 0 else b, 0), n)
    out = seq[min(a, b) : b]
    return out.decode(errors="replace") if isinstance(out, bytes) else list(out) if isinstance(out, tuple) else out


def _items(v: object) -> Sequence[Any]:
    """The elements a predicate runs over (OpBegin: anything but an array panics)."""
    if isinstance(v, (list, tuple)):
        return v
    kind = {"<nil>": "zero", _MAP: "map"}.get(_gotype(v), _gotype(v))
    return _bad(f"reflect: call of reflect.Value.Len on {kind} Value")


def _numbers(name: str, args: Sequence[object], out: list[float]) -> list[float]:
    """The numbers of mean/median's arguments, nested arrays flattened (lib.go mean/median)."""
    for x in args:
        if isinstance(x, (list, tuple)):
            _numbers(name, x, out)
        elif _is_num(x):
            out.append(float(x))
        else:
            _bad(f"invalid argument for {name} (type {_gotype(x)})")
    return out


def _minmax(name: str, args: Sequence[object], better: Callable[[Any, Any], bool]) -> object:
    """lib.go ``minMax``: a fold that keeps the first NaN it meets, nil for no numbers."""
    val: object = None
    for arg in args:
        if isinstance(arg, (list, tuple)):
            if all(_is_num(x) for x in arg):  # a typed slice: folded, then merged
                if arg:
                    m = arg[0]
                    for x in arg[1:]:
                        m = x if better(m, x) else m
                    val = m if val is None or better(val, m) else val
                continue
            for e in arg:  # []any: numbers folded in, nested arrays merged
                if isinstance(e, (list, tuple)):
                    e = _minmax(name, [e], better)
                    if e is None:
                        continue
                elif not _is_num(e):
                    _bad(f"invalid argument for {name} (type {_gotype(e)})")
                if val is None or better(val, e):
                    val = e
        elif _is_num(arg):
            val = arg if val is None or better(val, arg) else val
        elif len(args) == 1:
            return arg
        else:
            _bad(f"invalid argument for {name} (type {_gotype(arg)})")
    return val


def _less(a: object, b: object) -> bool:
    return bool(_binary("<", a, b))


def _more(a: object, b: object) -> bool:
    return bool(_binary(">", a, b))


def _round(name: str, x: object) -> float:
    """lib.go Ceil/Floor/Round: always a float64; Round is half away from zero."""
    if not _is_num(x):
        _bad(f"invalid argument for {name} (type {_gotype(x)})")
    f = float(x)
    if not math.isfinite(f):
        return f
    if name == "round":
        t = math.trunc(f)
        r = t + (math.copysign(1, f) if abs(f - t) >= 0.5 else 0)
    else:
        r = math.ceil(f) if name == "ceil" else math.floor(f)
    return math.copysign(float(r), f)  # Go keeps the sign of a zero result (ceil(-0.5) is -0)


def _parse_float(x: str, error: str) -> float:
    """strconv.ParseFloat(x, 64): no spaces or underscores; overflow is an error."""
    try:
        f = float("?" if re.search(r"[\s_]", x) else x)
    except ValueError:
        _bad(error)
    if math.isinf(f) and "inf" not in x.lower():
        _bad(error)
    return f


def _as_int(x: object) -> int:
    """Argo's asInt: numbers truncate (Go int64(f)); strings are strconv.ParseInt(x, 10, 64)."""
    if _is_num(x):
        return x if isinstance(x, int) else _go_int(x)
    if isinstance(x, str):
        if re.fullmatch(r"[+-]?[0-9]+", x):
            if -(2**63) <= int(x) < 2**63:
                return int(x)
            _bad(f'strconv.ParseInt: parsing "{x}": value out of range')
        _bad(f'strconv.ParseInt: parsing "{x}": invalid syntax')
    return _bad(f"asInt() not supported on {_gotype(x)} {x!r}")


def _as_float(x: object) -> float:
    """Argo's asFloat: numbers convert; strings are strconv.ParseFloat(x, 64)."""
    if _is_num(x):
        return float(x)
    if isinstance(x, str):
        return _parse_float(x, f'strconv.ParseFloat: parsing "{x}": invalid syntax')
    return _bad(f"asFloat() not supported on {_gotype(x)} {x!r}")


def _int(x: object) -> int:
    """lib.go Int: numbers truncate; strings are strconv.Atoi."""
    if _is_num(x):
        return x if isinstance(x, int) else _go_int(x)
    if isinstance(x, str) and re.fullmatch(r"[+-]?[0-9]+", x) and -(2**63) <= int(x) < 2**63:
        return int(x)
    return _bad(f"invalid operation: int({x if isinstance(x, str) else _gotype(x)})")


def _float(x: object) -> float:
    """lib.go Float: numbers convert; strings are strconv.ParseFloat."""
    if _is_num(x):
        return float(x)
    if isinstance(x, str):
        return _parse_float(x, f"invalid operation: float({x})")
    return _bad(f"invalid operation: float({_gotype(x)})")


def _abs(x: object) -> object:
    if isinstance(x, int) and not isinstance(x, bool):
        return _wrap(-x) if x < 0 else x
    if isinstance(x, float):
        return -x if x < 0 else x  # Go keeps -0.0 (it is not < 0)
    return _bad(f"invalid argument for abs (type {_gotype(x)})")


def _len(x: object) -> int:
    if isinstance(x, (str, list, tuple, dict)):
        return len(x)  # a string's length counts runes (utf8.RuneCountInString)
    return _bad(f"invalid argument for len (type {_gotype(x)})")


def _median(values: list[float]) -> float:
    values.sort(key=lambda v: (v == v, v))  # sort.Float64s puts NaN first
    n = len(values)
    if not n:
        return 0.0
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _mean(values: list[float]) -> float:
    total = 0.0
    for v in values:  # Go adds in order (Python's sum may compensate)
        total += v
    return total / len(values) if values else 0.0


def _type(x: object) -> str:
    go = _gotype(x)
    return {"<nil>": "nil", "float64": "float", _MAP: "map"}.get(go, "array" if go.startswith("[]") else go)


def _need_int(x: object) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else _not(x, "int")


def _need_str(x: object) -> str:
    return x if isinstance(x, str) else _not(x, "string")


def _byte_index(s: object, sub: object, last: bool) -> int:
    """strings.Index / LastIndex: byte offsets."""
    hay, needle = _need_str(s).encode(), _need_str(sub).encode()
    return hay.rfind(needle) if last else hay.find(needle)


#: Functions whose arguments are all evaluated first (the Go call convention).
_FUNCS: dict[str, Callable[..., object]] = {
    "asInt": _as_int,
    "asFloat": _as_float,
    "isNaN": lambda x: math.isnan(x) if _is_num(x) else _not(x, "float64"),
    "isInf": lambda x: math.isinf(x) if _is_num(x) else _not(x, "float64"),
    "len": _len,
    "abs": _abs,
    "ceil": lambda x: _round("ceil", x),
    "floor": lambda x: _round("floor", x),
    "round": lambda x: _round("round", x),
    "int": _int,
    "float": _float,
    "string": _go_str,
    "type": _type,
    "max": lambda *xs: _minmax("max", xs, _less),
    "min": lambda *xs: _minmax("min", xs, _more),
    "mean": lambda *xs: _mean(_numbers("mean", xs, [])),
    "median": lambda *xs: _median(_numbers("median", xs, [])),
    "first": lambda xs: xs[0] if isinstance(xs, (list, tuple)) and xs else None,
    "last": lambda xs: xs[-1] if isinstance(xs, (list, tuple)) and xs else None,
    "get": lambda base, key: _get(base, key),
    "upper": lambda s: _need_str(s).upper(),
    "lower": lambda s: _need_str(s).lower(),
    "trim": lambda s, cut=None: _need_str(s).strip() if cut is None else _need_str(s).strip(_need_str(cut)),
    "trimPrefix": lambda s, p=" ": _need_str(s).removeprefix(_need_str(p)),
    "trimSuffix": lambda s, p=" ": _need_str(s).removesuffix(_need_str(p)),
    "hasPrefix": lambda s, p: _need_str(s).startswith(_need_str(p)),
    "hasSuffix": lambda s, p: _need_str(s).endswith(_need_str(p)),
    "indexOf": lambda s, sub: _byte_index(s, sub, False),
    "lastIndexOf": lambda s, sub: _byte_index(s, sub, True),
    "replace": lambda s, old, new: _need_str(s).replace(_need_str(old), _need_str(new)),
    "split": lambda s, sep, n=-1: _split(_need_str(s), _need_str(sep), _need_int(n)),
    "keys": lambda m: list(m) if isinstance(m, dict) else _bad(f"cannot get keys from {_gotype(m)}"),
    "values": lambda m: list(m.values()) if isinstance(m, dict) else _bad(f"cannot get values from {_gotype(m)}"),
    "take": lambda xs, n: _take(xs, n),
}


def _get(base: object, key: object) -> object:
    """lib.go ``get``: like indexing, but nil instead of an error."""
    try:
        return None if base is None else _fetch(base, key)
    except ExprError:
        return None


def _split(s: str, sep: str, n: int) -> list[str]:
    """strings.SplitN: at most ``n`` parts (all when negative, none when 0)."""
    if n == 0:
        return []
    if sep == "":  # an empty separator splits after each rune
        parts = list(s)
        return parts if n < 0 or n >= len(parts) else [*parts[: n - 1], "".join(parts[n - 1 :])]
    return s.split(sep, n - 1 if n > 0 else -1)


def _take(xs: object, n: object) -> list[Any]:
    if not isinstance(xs, (list, tuple)):
        _bad(f"cannot take from {_gotype(xs)}")
    if not isinstance(n, int) or isinstance(n, bool):
        _bad(f"cannot take {_gotype(n)} elements")
    if n < 0:
        _bad("reflect: slice index out of range")
    return list(xs[:n])


# -- closures: the AST compiled once into Python functions -----------------------------------

Fn = Callable[[object, Any], object]  # (result, predicate scope (element, index)) -> value


class _Compiler:
    """Turns a checked AST into closures; ``spent`` counts the items built against
    ``MAX_ITEMS`` and the elements visited against ``MAX_STEPS``."""

    def __init__(self) -> None:
        self.spent = [0, 0]
        self.frame: list[Any] = []  # the values of `let` variables, by slot

    def spend(self, n: int) -> None:
        """``vm.memGrow``: ``n`` more items built."""
        self.spent[0] += n
        if self.spent[0] >= MAX_ITEMS:
            _bad("memory budget exceeded")

    def step(self, n: int) -> None:
        """``n`` more elements visited by a predicate."""
        self.spent[1] += n
        if self.spent[1] > MAX_STEPS:
            _bad(f"evaluation visits more than {MAX_STEPS} elements")

    def built(self, out: list[Any]) -> list[Any]:
        self.spend(len(out))
        return out

    def build(self, n: Node) -> Fn:  # noqa: PLR0911, PLR0912 - one branch per node kind
        kind = n.kind
        if kind == "lit":
            value = n.value
            return lambda r, it: value
        if kind == "result":
            return lambda r, it: r
        if kind == "ptr":
            slot = 1 if n.value == "index" else 0
            return lambda r, it: it[slot]
        if kind in ("let", "var", "seq"):
            return self.variables(n)
        if kind == "call":
            return self.call(n)
        if kind == "array":
            parts, built = [self.build(k) for k in n.kids], self.built
            return lambda r, it: built([f(r, it) for f in parts])
        if kind == "map":
            return self.mapping(n)
        if kind == "chain":
            inner = self.build(n.kids[0])

            def chain(r: object, it: Any) -> object:
                try:
                    return inner(r, it)
                except _Short:
                    return None

            return chain
        if kind == "unary":
            return self.unary(n)
        if kind == "cond":
            c, yes, no = (self.build(k) for k in n.kids)
            return lambda r, it: yes(r, it) if _cond(c(r, it)) else no(r, it)
        if kind == "index":
            return self.index(n)
        if kind == "slice":
            base, lo, hi = (self.build(k) if k.kind != "absent" else None for k in n.kids)
            assert base is not None
            return lambda r, it: _slice(base(r, it), lo and lo(r, it), hi and hi(r, it))
        return self.binary(n)

    def variables(self, n: Node) -> Fn:
        """``let`` stores into its slot (evaluations of one Expr never overlap), a name reads it."""
        frame, slot = self.frame, n.value if isinstance(n.value, int) else 0
        if n.kind == "var":
            return lambda r, it: frame[slot]
        parts = [self.build(k) for k in n.kids]
        if n.kind == "seq":
            return lambda r, it: [f(r, it) for f in parts][-1]
        value, body = parts
        frame.extend([None] * (slot + 1 - len(frame)))

        def let(r: object, it: Any) -> object:
            frame[slot] = value(r, it)
            return body(r, it)

        return let

    def mapping(self, n: Node) -> Fn:
        parts = [self.build(k) for k in n.kids]
        keys, values = parts[0::2], parts[1::2]

        def mapping(r: object, it: Any) -> object:
            self.spend(len(keys))  # OpMap: memGrow(size)
            out = {}
            for k, v in zip(keys, values):
                key = k(r, it)
                out[key if isinstance(key, str) else _not(key, "string")] = v(r, it)
            return out

        return mapping

    def unary(self, n: Node) -> Fn:
        f, op = self.build(n.kids[0]), n.op
        if op == "!":
            return lambda r, it: not _truth(f(r, it))

        def sign(r: object, it: Any) -> object:
            a = f(r, it)
            if not _is_num(a):
                _bad(f"invalid operation: {op} {_gotype(a)}")
            return a if op == "+" else _wrap(-a) if isinstance(a, int) else -a

        return sign

    def index(self, n: Node) -> Fn:
        base, optional = self.build(n.kids[0]), bool(n.value)
        key_node = n.kids[1]
        if key_node.kind == "lit" and not optional:  # the usual result[0], result.name
            key = key_node.value
            if isinstance(key, int) and not isinstance(key, bool):

                def element(r: object, it: Any) -> object:
                    v = base(r, it)
                    if type(v) is list and -len(v) <= key < len(v):
                        return v[key]
                    return _fetch(v, key)

                return element
        keyf = self.build(key_node)

        def member(r: object, it: Any) -> object:
            v = base(r, it)
            if v is None and optional:
                raise _Short
            return _fetch(v, keyf(r, it))

        return member

    def binary(self, n: Node) -> Fn:  # noqa: PLR0911 - one closure shape per operator family
        op = n.op
        fa, fb = (self.build(k) for k in n.kids)
        if op in ("&&", "||"):
            stop = op == "||"  # the value that short-circuits

            def logic(r: object, it: Any) -> object:
                if _truth(fa(r, it)) == stop:
                    return stop
                return _truth(fb(r, it))

            return logic
        if op == "??":

            def coalesce(r: object, it: Any) -> object:
                a = fa(r, it)
                return fb(r, it) if a is None else a

            return coalesce
        if op == "..":

            def span(r: object, it: Any) -> object:
                lo, hi = _need_int(fa(r, it)), _need_int(fb(r, it))
                self.spend(max(hi - lo + 1, 0))
                return list(range(lo, hi + 1))

            return span
        if op in _CMP or op in ("==", "!="):  # Go evaluates both operands, then compares
            cmp = _CMP.get(op) or (operator.eq if op == "==" else operator.ne)

            def compare(r: object, it: Any) -> object:
                a: Any = fa(r, it)
                b: Any = fb(r, it)
                t = type(a)
                if t is type(b) and (t is float or t is int or t is str):
                    return cmp(a, b)
                return _binary(op, a, b)

            return compare
        return lambda r, it: _binary(op, fa(r, it), fb(r, it))

    def call(self, n: Node) -> Fn:
        name = n.op
        if name in _PREDICATES:
            return self.predicate_call(n)
        args = [self.build(k) for k in n.kids]
        if name in ("isNil", "default"):  # Argo's versions ignore their argument and test `result`
            first = args[0]
            if name == "isNil":
                return lambda r, it: (first(r, it), r is None)[1]
            fallback = args[1]
            return lambda r, it: (first(r, it), fallback(r, it) if r is None else r)[1]
        fn = _FUNCS[name]
        if len(args) == 1:
            (arg,) = args
            return lambda r, it: fn(arg(r, it))
        return lambda r, it: fn(*(a(r, it) for a in args))

    def predicate_call(self, n: Node) -> Fn:  # noqa: PLR0911 - one loop shape per builtin
        name, step, built = n.op, self.step, self.built
        coll = self.build(n.kids[0])
        body = self.build(n.kids[1].kids[0]) if len(n.kids) > 1 else (lambda r, it: it[0])

        def each(r: object, it: Any) -> tuple[Sequence[Any], Callable[[Any, int], Any]]:
            xs = _items(coll(r, it))
            step(len(xs))
            return xs, lambda x, i: body(r, (x, i))

        if name in ("all", "none", "any"):
            want = name == "any"  # the answer when a predicate gives it; `none` stops on true

            def quantifier(r: object, it: Any) -> object:
                xs, test = each(r, it)
                stop = name != "all"
                for i, x in enumerate(xs):
                    if _truth(test(x, i)) == stop:
                        return want
                return not want

            return quantifier
        if name in ("one", "count"):

            def counting(r: object, it: Any) -> object:
                xs, test = each(r, it)
                k = sum(1 for i, x in enumerate(xs) if _truth(test(x, i)))
                return k == 1 if name == "one" else k

            return counting
        if name in ("filter", "map"):
            keep = name == "filter"

            def collect(r: object, it: Any) -> object:
                xs, test = each(r, it)
                if keep:
                    return built([x for i, x in enumerate(xs) if _truth(test(x, i))])
                return built([test(x, i) for i, x in enumerate(xs)])

            return collect
        if name == "sum":

            def total(r: object, it: Any) -> object:
                xs, value = each(r, it)
                acc: object = 0  # OpSetAcc starts from int 0; each step is Add(value, acc)
                for i, x in enumerate(xs):
                    v = value(x, i)
                    acc = v + acc if type(v) is float and type(acc) is float else _binary("+", v, acc)
                return acc

            return total
        backwards = name.startswith("findLast")
        want_index = name.endswith("Index")

        def find(r: object, it: Any) -> object:
            xs, test = each(r, it)
            order = range(len(xs) - 1, -1, -1) if backwards else range(len(xs))
            for i in order:
                if _truth(test(xs[i], i)):
                    return i if want_index else xs[i]
            return None

        return find


def _cond(v: object) -> bool:
    if isinstance(v, bool):
        return v
    return _bad(f"expected bool, but got {_gotype(v)}")


class Expr:
    """A parsed expression; evaluate it with :meth:`evaluate`."""

    def __init__(self, source: str, root: Node) -> None:
        self.source, self.root = source, root
        compiler = _Compiler()
        self._fn, self._spent = compiler.build(root), compiler.spent
        self._checked: dict[str, str] = {}  # result nature -> check error ("" when fine)

    def evaluate(self, result: object) -> object:
        """Check against ``result``'s nature, then interpret; raises :class:`ExprError`."""
        rn = _nature(result)
        error = self._checked.get(rn)
        if error is None:
            try:
                _check(self.root, rn)
                error = ""
            except ExprError as e:
                error = str(e)
            self._checked[rn] = error
        if error:
            _bad(error)
        self._spent[:] = (0, 0)
        try:
            return self._fn(result, None)
        except (ArithmeticError, TypeError, ValueError, RecursionError, IndexError, KeyError) as e:
            raise ExprError(f"evaluation failed: {e}") from e


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


# -- many runs at once (class stepping) --------------------------------------------------------


class _NotVector(Exception):
    """The expression uses a form ``vector_condition`` does not evaluate over arrays."""


#: A vectorised sub-expression: its kind ("num" or "bool") and its value, a Python constant
#: or a function of the runs' samples (one array element per run).
_VecPart = tuple[str, Any]


@functools.lru_cache(maxsize=256)
def vector_condition(source: str) -> Callable[[Any], Any] | None:
    """The condition ``source`` as a function of many runs' results at once, for the
    common case of a Prometheus instant vector of one sample (``result`` is ``[v]``):
    ``f(v)`` takes a float array of the runs' samples and returns a bool array, each
    element what :func:`evaluate_condition` returns for ``[v_i]``.

    Evaluated over arrays (numpy, IEEE semantics as Go's float64): number literals,
    ``result[0]`` and ``result[-1]``, ``len(result)``, the comparisons, ``+ - * /`` on
    floats, ``isNaN``/``isInf``, ``!``/``not``, ``&&``/``||`` (no operand of these forms can
    fail, so short-circuiting changes nothing). None for anything else, an expression that
    does not compile or type-check on ``[]float64``, or one whose value is not a bool: the
    caller then evaluates each run's result one by one with :func:`evaluate_result`, which
    also gives those their Error.
    """
    try:
        expr = compile_expr(source)
        _check(expr.root, _nature([0.0]))
        kind, value = _vector(expr.root)
    except (ExprError, _NotVector):
        return None
    if kind != "bool":
        return None
    import numpy as np  # only class stepping needs it

    if callable(value):
        fn = value

        def condition(v: Any) -> Any:
            with np.errstate(all="ignore"):
                return np.asarray(fn(v), dtype=bool)

        return condition
    constant = bool(value)
    return lambda v: np.full(len(v), constant, dtype=bool)


def _vector(n: Node) -> _VecPart:  # noqa: PLR0911, PLR0912 - one branch per supported form
    """``n`` over arrays (see ``vector_condition``); raises ``_NotVector``."""
    import numpy as np

    if n.kind == "lit":
        if isinstance(n.value, bool):
            return "bool", n.value
        if _is_num(n.value) and abs(n.value) < 2**53:  # beyond, Go's int->float64 rounding
            return "num", n.value
        raise _NotVector
    if n.kind == "index" and n.op == "[" and not n.value:
        base, key_node = n.kids
        key = _vector(key_node)[1] if base.kind == "result" else None
        if type(key) is int and key in (0, -1):  # the one sample (an int literal: no truncation)
            return "num", lambda v: v
        raise _NotVector
    if n.kind == "call" and n.op == "len" and len(n.kids) == 1 and n.kids[0].kind == "result":
        return "num", 1
    if n.kind == "call" and n.op in ("isNaN", "isInf") and len(n.kids) == 1:
        kind, arg = _vector(n.kids[0])
        if kind != "num":
            raise _NotVector
        test = np.isnan if n.op == "isNaN" else np.isinf
        return "bool", (lambda v: test(arg(v))) if callable(arg) else bool(test(float(arg)))
    if n.kind == "unary":
        kind, arg = _vector(n.kids[0])
        if n.op == "!" and kind == "bool":
            return "bool", (lambda v: ~arg(v)) if callable(arg) else not arg
        if n.op in ("-", "+") and kind == "num":
            if not callable(arg):  # a negative literal; |arg| < 2**53, so no int wrap-around
                return "num", -arg if n.op == "-" else arg
            return "num", (lambda v: -arg(v)) if n.op == "-" else arg
        raise _NotVector
    if n.kind != "binary":
        raise _NotVector
    op = n.op
    (ka, a), (kb, b) = _vector(n.kids[0]), _vector(n.kids[1])
    if not callable(a) and not callable(b):  # constants: as the interpreter computes them
        try:
            value = _binary(op, a, b)
        except ExprError:
            raise _NotVector from None
        if isinstance(value, bool):
            return "bool", value
        if _is_num(value):
            return "num", value
        raise _NotVector
    fa = a if callable(a) else (lambda v: a)
    fb = b if callable(b) else (lambda v: b)
    if op in ("&&", "||") and ka == kb == "bool":
        both = np.logical_and if op == "&&" else np.logical_or
        return "bool", lambda v: both(fa(v), fb(v))
    if ka != "num" or kb != "num":
        raise _NotVector
    # A sample is a float, so every operation with one is float64's (int operands convert).
    if op in _CMP or op in ("==", "!="):
        cmp = _CMP.get(op) or (operator.eq if op == "==" else operator.ne)
        return "bool", lambda v: cmp(fa(v), fb(v))
    arith = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}.get(op)
    if arith is None:
        raise _NotVector
    return "num", lambda v: arith(np.asarray(fa(v), dtype=float), fb(v))
