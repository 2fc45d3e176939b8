"""Tests for the Argo condition evaluator (``sim/policies/expr.py``).

Sources cited per case:
- ``eval.go``: argo-rollouts ``utils/evaluate/evaluate.go`` (EvaluateResult, EvalCondition, env).
- ``eval_test.go``: argo-rollouts ``utils/evaluate/evaluate_test.go`` (test name given).
- ``lang``: expr-lang/expr ``docs/language-definition.md``; ``op.go``: ``parser/operator/operator.go``;
  ``parser.go`` / ``checker.go`` / ``runtime``: expr's parser, type checker and ``vm/runtime``.
- ``CONTROLLERS §2``: /work/shared/CONTROLLERS.md, "Measurement phase".
"""

from __future__ import annotations

import inspect
import math
import re

import pytest

from sim.policies.argo import expr as expr_mod
from sim.policies.argo.expr import (
    ExprError,
    compile_expr,
    evaluate,
    evaluate_condition,
    evaluate_result,
    measurement_phase,
)

NAN, INF = float("nan"), float("inf")
ERR = ExprError  # sentinel in tables: the call must raise ExprError

# (source, result, expected value or ERR, citation)
VALUES = [
    # common template shapes
    ("result[0] >= 0.95", [0.97], True, "eval_test.go ErrorMessageWithEmptySlice shape; Prometheus []float64"),
    ("result[0] >= 0.95", [0.5], False, "same"),
    ("len(result) > 0 && result[0] < 5", [], False, "lang: && short-circuits, so result[0] is never fetched"),
    ("len(result) > 0 && result[0] < 5", [3.0], True, "lang"),
    ("result == 1", 1.0, True, "runtime Equal: int vs float64 compares numerically"),
    ("result == 1", 1, True, "runtime Equal"),
    ("isNaN(result) || result >= 0.9", NAN, True, "eval.go: isNaN is math.IsNaN"),
    ("isNaN(result) || result >= 0.9", 0.95, True, "eval.go"),
    ("isNaN(result) || result >= 0.9", 0.5, False, "eval.go"),
    ("default(result, 0) > 2", None, False, "eval.go defaultFunc: nil result -> default"),
    ("default(result, 0) > 2", 3.0, True, "eval.go defaultFunc: non-nil result is returned"),
    ("default(42, 0)", 7.0, 7.0, "eval.go defaultFunc ignores its first argument and returns result"),
    ("asFloat(result) > 0.9", "0.95", True, "eval.go asFloat parses strings (strconv.ParseFloat)"),
    ('result.status == "ok"', {"status": "ok"}, True, "lang: member access on maps"),
    ('result["status"] == "ok"', {"status": "ok"}, True, 'lang: user.Name == user["Name"]'),
    ("result.status == 1", {"status": "ok"}, False, "runtime Equal: unknown-typed map members are just unequal"),
    ("result.missing", {}, None, "runtime Fetch: a missing map key is the zero value (nil)"),
    ("result.a.b[1]", {"a": {"b": [1.0, 2.0]}}, 2.0, "lang: nested member and index"),
    # evaluate_test.go EvalCondition cases
    ("result == true", True, True, "eval_test.go TestEvaluateConditionWithSuccess"),
    ("result == false", True, False, "eval_test.go TestEvaluateConditionWithFailure"),
    ("2 in result", [2.0, 2.0], True, "eval_test.go TestEvaluateInOperator"),
    ("result > 1", 5.0, True, "eval_test.go TestEvaluateFloat64"),
    ("asInt(result) == 1", "1", True, "eval_test.go TestEvaluateAsInt"),
    ("asInt(result) == 1", 1, True, "eval_test.go TestEvaluateAsInt"),
    ("asInt(result) == 1", 1.123, True, "eval_test.go TestEvaluateAsInt (int64(f) truncates)"),
    ("asFloat(result) == 1.1", "1.1", True, "eval_test.go TestEvaluateAsFloat"),
    ("asFloat(result) >= 1", 1, True, "eval_test.go TestEvaluateAsFloat"),
    ("asInt(result) == 1.1", "1.1", ERR, "eval_test.go TestEvaluateAsIntPanic"),
    ("asFloat(result) == 1.1", "NotANum", ERR, "eval_test.go TestEvaluateAsFloatError"),
    ('asFloat(result) == "1.1"', "1.1", ERR, "eval_test.go TestEvaluateAsFloatError (mismatched types)"),
    ("result.Name() == 'hi'", True, ERR, "eval_test.go TestEvaluateInvalidStruct"),
    ("invalidVariable", True, ERR, "eval_test.go TestErrorWithInvalidReference"),
    ("isNil(result)", None, True, "eval_test.go TestIsNil"),
    ("isNil(result)", [], False, "eval_test.go TestIsNilFunc: an empty (non-nil) slice is not nil"),
    ("isNil(1)", None, True, "eval.go isNilFunc ignores its argument and tests result"),
    # NaN and Inf
    ("result >= 0.95", NAN, False, "Go float semantics: NaN compares false"),
    ("result < 0.95", NAN, False, "same"),
    ("result == result", NAN, False, "same"),
    ("result != result", NAN, True, "same"),
    ("isInf(result)", -INF, True, "eval.go isInf: math.IsInf(f, 0)"),
    ("isNaN(result)", [1.0], ERR, "eval.go isNaN takes float64; checker.go rejects []float64"),
    ("isNaN(result)", None, ERR, "checker.go: cannot use nil as a float64 argument"),
    # empty vectors, nil and type errors
    ("result[0] >= 0.95", [], ERR, "eval_test.go TestEvaluateResultErrorMessageWithEmptySlice"),
    ("result[0] >= 0.95", None, ERR, "eval_test.go TestEvaluateResultErrorMessageWithNilResult"),
    ("result[-1]", [1.0, 2.0], 2.0, "lang: negative indices count from the end"),
    ("result[2]", [1.0, 2.0], ERR, "runtime Fetch: index out of range"),
    ("result > 0.5", [0.9], ERR, "checker.go: < needs numbers or strings"),
    ("result == 1", [1.0], ERR, "checker.go: == with mismatched types []float64 and int"),
    ('result == "x"', 1.0, ERR, "checker.go: mismatched types float64 and string"),
    ("result == nil", 1.0, False, "checker.go: nil is comparable with anything"),
    ("result == nil", None, True, "runtime Equal: nil == nil"),
    ("isNil(result) || result > 1", None, ERR, "checker.go checks the untaken branch: nil > int"),
    ("result.x", 1.0, ERR, "checker.go: type float64 has no field x"),
    ('result["x"]', [1.0], ERR, "checker.go: array elements need an integer index"),
    ('"abc"[0]', None, ERR, "checker.go: string[int] is undefined"),
    ("default(result, 0) > 2", [1.0], ERR, "runtime Less: []float64 > int panics"),
    ("1", True, 1, "evaluate returns any value; EvalCondition rejects it (below)"),
    # operators, precedence (op.go) and expr arithmetic (runtime)
    ("!false && false", None, False, "op.go: ! (50) binds tighter than && (15)"),
    ("not false and false", None, False, "lang: not/and are aliases"),
    ("true || false && false", None, True, "op.go: && (15) binds tighter than || (10)"),
    ("true or false and false", None, True, "lang: or/and aliases"),
    ("2 + 3 * 4", None, 14, "op.go"),
    ("10 - 2 - 3", None, 5, "op.go: left associative"),
    ("-2 ** 2", None, -4.0, "op.go: unary - (90) is below ** (100); runtime Exponent is float"),
    ("2 ** 3 ** 2", None, 512.0, "op.go: ** is right associative"),
    ("2 ^ 3", None, 8.0, "lang: ^ is an alias of **"),
    ("7 / 2", None, 3.5, "runtime Divide: always float64"),
    ("1 / 0", None, INF, "runtime Divide: Go float division by zero is +Inf"),
    ("7 % 3", None, 1, "runtime Modulo"),
    ("-7 % 3", None, -1, "runtime Modulo: Go truncates toward zero"),
    ("7 % 0", None, ERR, "runtime Modulo: integer divide by zero"),
    ("7.5 % 2", None, ERR, "checker.go: % takes integers only"),
    ("9223372036854775807 + 1", None, -(2**63), "Go int64 arithmetic wraps"),
    ("10 ** 400", None, INF, "runtime Exponent is math.Pow: overflow is +Inf, not a big integer"),
    ("1 == 1.0", None, True, "runtime Equal"),
    ("1 < 2 < 3", None, True, "parser.go parseComparison: chained comparisons"),
    ("3 < 2 < 5", None, False, "same: 3 < 2 && 2 < 5"),
    ('"a" + "b" == "ab"', None, True, "lang: string concatenation"),
    ('"a" < "b"', None, True, "checker.go: strings compare"),
    ('"a" + 1', None, ERR, "checker.go: mismatched types string and int"),
    ("'it\\'s' == \"it's\"", None, True, "lang: both quote styles, escapes"),
    ("1e-3 == 0.001 && .5 == 0.5 && 1_000 == 1000", None, True, "lang: float and integer literals"),
    ('"x" in result && "z" not in result', {"x": 1}, True, "lang: in / not in on maps"),
    ("3 in result", [1.0, 2.0], False, "lang: in on arrays"),
    ("true && 1", None, ERR, "checker.go: && needs bools"),
    # ternary (parser.go parseConditional: lowest precedence)
    ("true ? 1 : 2", None, 1, "lang: ternary"),
    ("false ? 1 : true ? 2 : 3", None, 2, "lang: nested ternary in the else branch"),
    ('1 > 0 || false ? "y" : "n"', None, "y", "parser.go: ?: binds loosest"),
    ("result > 1 ? result[0] : 0", 0.5, ERR, "checker.go: float64[int] is undefined even untaken"),
    ("1 ? 2 : 3", None, ERR, "checker.go: non-bool condition"),
    ("true ? 1", None, ERR, "parser.go: expects ':'"),
    ("abs(-2.5) == 2.5 && len('ab') == 2 && len(result) == 1", {"k": 1}, True, "lang builtins"),
]


@pytest.mark.parametrize(("source", "result", "expected", "why"), VALUES, ids=[f"{v[0]}|{v[1]!r}" for v in VALUES])
def test_evaluate(source: str, result: object, expected: object, why: str) -> None:
    if expected is ERR:
        with pytest.raises(ExprError):
            evaluate(source, result)
        return
    got = evaluate(source, result)
    assert type(got) is type(expected), why
    assert got == expected or (isinstance(got, float) and math.isnan(got) and math.isnan(expected)), why


# (result, successCondition, failureCondition, phase, citation)
PHASES = [
    (True, "true", "false", "Successful", "eval_test.go TestEvaluateResultWithSuccess"),
    (True, "true", "true", "Failed", "eval_test.go TestEvaluateResultWithFailure"),
    (True, "false", "false", "Inconclusive", "eval_test.go TestEvaluateResultInconclusive"),
    (True, "", "false", "Successful", "eval_test.go ...NoSuccessConditionAndNotFailing"),
    (True, "false", "", "Failed", "eval_test.go ...NoFailureConditionAndNotSuccessful"),
    (True, "", "", "Successful", "eval_test.go ...NoFailureConditionAndNoSuccessCondition"),
    (True, None, None, "Successful", "same, None is unset"),
    (True, "a == true", "true", "Error", "eval_test.go TestEvaluateResultWithErrorOnSuccessCondition"),
    (True, "true", "a == true", "Error", "eval_test.go TestEvaluateResultWithErrorOnFailureCondition"),
    (None, "result[0] >= 0.95", None, "Error", "eval_test.go ...ErrorMessageWithNilResult"),
    ([], "result[0] >= 0.95", None, "Error", "eval_test.go ...ErrorMessageWithEmptySlice; CONTROLLERS §2"),
    (NAN, "result >= 0.95", None, "Failed", "CONTROLLERS §2: NaN, success only -> Failed"),
    (NAN, None, "result > 0.5", "Successful", "CONTROLLERS §2: NaN, failure only -> Successful"),
    (NAN, "result >= 0.95", "result < 0.5", "Inconclusive", "eval.go: both false -> Inconclusive"),
    (0.99, "result >= 0.95", "result < 0.5", "Successful", "eval.go"),
    (0.1, "result >= 0.95", "result < 0.5", "Failed", "eval.go"),
    (0.99, "result >= 0.95", "result > 0.5", "Failed", "eval.go: failure wins when both are true"),
    ([0.9], "result > 0.5", None, "Error", "checker.go: list vs number is a type error"),
    (1.0, "1", None, "Error", "eval_test.go TestErrorWithNonBoolReturn"),
    (1.0, " ", None, "Error", "eval.go: only the empty string means unset"),
    (object(), "true", None, "Error", "unsupported result type"),
]


@pytest.mark.parametrize(("result", "success", "failure", "phase", "why"), PHASES)
def test_measurement_phase(result: object, success: str | None, failure: str | None, phase: str, why: str) -> None:
    assert measurement_phase(result, success, failure) == phase, why


def test_condition_must_be_bool() -> None:
    # eval_test.go TestErrorWithNonBoolReturn: fmt.Errorf("expected bool, but got int")
    with pytest.raises(ExprError, match="^expected bool, but got int$"):
        evaluate_condition("1", True)
    with pytest.raises(ExprError, match="expected bool, but got <nil>"):
        evaluate_condition("result.missing", {})
    assert evaluate_condition("result == true", True) is True


@pytest.mark.parametrize(
    ("source", "result", "message"),
    [
        ("invalidVariable", True, "unknown name invalidVariable"),  # eval_test.go TestErrorWithInvalidReference
        ('asFloat(result) == "1.1"', "1.1", r"invalid operation: == \(mismatched types float64 and string\)"),
        ("asFloat(result) == 1.1", "NotANum", 'strconv.ParseFloat: parsing "NotANum": invalid syntax'),
        ("result[0]", [], r"index out of range: 0 \(array length is 0\)"),  # runtime Fetch
        ("reduce(result, # + #acc)", [2.0], "unknown func reduce"),  # reduce is not modelled
    ],
)
def test_error_messages_match_upstream(source: str, result: object, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(source, result)


@pytest.mark.parametrize(
    "source",
    [
        "true" + " " * 1997,  # 2,001 characters
        "(" * 65 + "1" + ")" * 65,  # 65 nested parentheses
        "!" * 65 + "true",  # 65 nested unary operators
        " + ".join(["1"] * 70),  # a flat chain still builds a 69-deep tree
        "",
        "1 +",
        "(1",
        "result[",
        "1 2",
        "$x",
        "1e999",
        "99999999999999999999",
        '"\\q"',
    ],
)
def test_rejected_at_compile_time(source: str) -> None:
    with pytest.raises(ExprError):
        compile_expr(source)


def test_limits_allow_the_edge() -> None:
    assert evaluate("true" + " " * 1996, None) is True  # exactly 2,000 characters
    assert evaluate("(" * 60 + "1" + ")" * 60, None) == 1
    assert evaluate(" + ".join(["1"] * 60), None) == 60


@pytest.mark.parametrize(
    ("source", "result"),
    [
        ('__import__("os")', None),
        ("eval('1')", None),
        ("result.__class__", 1.0),
        ("result.__class__.__mro__", {}),
        ("().__class__", None),
        ("[].__class__", None),
        ('"".join(result)', ["a"]),
        ("result.keys()", {"a": 1}),
        ("lambda: 1", None),
        ("result.__dict__", [1.0]),
    ],
)
def test_no_python_objects_are_reachable(source: str, result: object) -> None:
    with pytest.raises(ExprError):
        evaluate(source, result)


def test_map_members_are_keys_not_attributes() -> None:
    # A dict's attributes (keys, __class__) are never looked up: only its keys are.
    assert evaluate("result.__class__", {}) is None
    assert evaluate("result.keys", {"keys": 3.0}) == 3.0
    with pytest.raises(ExprError):
        evaluate_condition("result.__class__", {})


def test_module_never_calls_eval_or_getattr() -> None:
    src = inspect.getsource(expr_mod)
    assert not re.search(r"(?<![.\w])(eval|exec|compile|literal_eval|getattr|__import__)\s*\(", src)


def test_errors_are_one_line_and_compile_is_cached() -> None:
    assert str(ExprError("a\n  b")) == "a b"
    assert compile_expr("result > 1") is compile_expr("result > 1")


# -- issue 16, Missing 1: the whole language ------------------------------------------------------
# Sources: ``builtin_test.go`` TestBuiltin / TestBuiltin_errors (expr-lang/expr v1.17.8,
# ``builtin/builtin_test.go``), ``expr_test.go`` TestExpr (``expr_test.go``), ``checker_test.go``
# (``checker/checker_test.go`` TestCheck_error), ``lib.go`` (``builtin/lib.go``), ``compiler.go``
# (``compiler/compiler.go`` BuiltinNode: how each predicate loops), ``vm.go`` (``vm/vm.go``).
# In expr's tables ``ArrayOfInt`` etc. are env values; here the same arrays are ``result``.

LANGUAGE = [
    # predicates with # (compiler.go BuiltinNode; expr_test.go TestExpr)
    ("all(result, # < 0.01)", [0.001, 0.005], True, "Argo docs analysis.md (Prometheus): all(result, # < 0.01)"),
    ("all(result, # < 0.01)", [0.001, 0.05], False, "compiler.go all: false at the first false"),
    ("all(result, # < 0.01)", [], True, "lang: all of an empty array is true"),
    ("all(1..3, {# > 0})", None, True, "expr_test.go TestExpr"),
    ("any(result, # > 0.5)", [0.1, 0.9], True, "lang any"),
    ("any(result, # > 0.5)", [], False, "lang: any of an empty array is false"),
    ("none(result, # > 0.5)", [0.1, 0.2], True, "lang none"),
    ("none(result, # > 0.5)", [], True, "lang: none of an empty array is true"),
    ("one(result, # > 0.5)", [0.1, 0.9], True, "lang one"),
    ("one(result, # > 0.5)", [0.6, 0.9], False, "compiler.go one: count == 1"),
    ("one(result, # > 0.5)", [], False, "lang: one of an empty array is false"),
    ("filter(1..9, {# > 7})", None, [8, 9], "expr_test.go TestExpr"),
    ("map(1..3, {# * #})", None, [1, 4, 9], "expr_test.go TestExpr"),
    ("count(1..30, {# % 3 == 0})", None, 10, "expr_test.go TestExpr"),
    ("count([true, true, false])", None, 2, "expr_test.go TestExpr: count without a predicate"),
    ("len(filter(1..99, # % 7 == 0))", None, 14, "expr_test.go TestExpr"),
    ("findLast(1..9, # % 2 == 0)", None, 8, "expr_test.go TestExpr"),
    ("findLastIndex(1..9, # % 2 == 0)", None, 7, "expr_test.go TestExpr"),
    ("find([1, 2, 3, 4], # > 2)", None, 3, "lang find"),
    ("findIndex([1, 2, 3, 4], # > 2)", None, 2, "lang findIndex"),
    ("find(result, # > 2)", [1.0], None, "compiler.go find: nil when nothing matches"),
    ("findIndex(result, # > 2)", [1.0], None, "compiler.go findIndex: nil when nothing matches"),
    ("filter(1..9, # % 2 == 0)[-1]", None, 8, "expr_test.go TestExpr"),
    ("last(filter(1..9, # % 2 == 0))", None, 8, "expr_test.go TestExpr"),
    ("map(filter(1..9, # % 2 == 0), # * 2)", None, [4, 8, 12, 16], "expr_test.go TestExpr"),
    ("first(map(filter(1..9, # % 2 == 0), # * 2))", None, 4, "expr_test.go TestExpr"),
    ("all(1..3, { all(1..3, { # > 0 }) and # > 0 })", None, True, "expr_test.go: nested predicates"),
    ("map(result, #index)", [5.0, 6.0], [0, 1], "checker.go builtinNode map: #index is an int"),
    ("filter(result, .ok)", [{"ok": True}, {"ok": False}], [{"ok": True}], "lang: .field is #.field"),
    ("any(result, #.code == 500)", [{"code": 200}, {"code": 500}], True, "lang predicates over maps"),
    ("sum(result, # * 2)", [1.0, 2.5], 7.0, "lang sum with a predicate"),
    ("result | all(# > 0)", [1.0], True, "lang: the pipe passes the left side as first argument"),
    # aggregates (builtin_test.go TestBuiltin)
    ("sum(1..9)", None, 45, "builtin_test.go TestBuiltin"),
    ("sum([.5, 1.5, 2.5])", None, 4.5, "builtin_test.go TestBuiltin"),
    ("sum([])", None, 0, "builtin_test.go TestBuiltin: the int 0 (OpSetAcc starts from int 0)"),
    ("sum([1, 2, 3.0, 4])", None, 10.0, "builtin_test.go TestBuiltin"),
    ("sum(result)", [0.25, 0.5], 0.75, "lang sum over a Prometheus vector"),
    ("max(1, 2, 3)", None, 3, "builtin_test.go TestBuiltin"),
    ("max(1.5, 2.5, 3.5)", None, 3.5, "builtin_test.go TestBuiltin"),
    ("max([1, 2, 4, 10], 20, [29, 23, -19])", None, 29, "builtin_test.go TestBuiltin"),
    ("min([1, 2, 4, 10], 20, [29, 23, -19])", None, -19, "builtin_test.go TestBuiltin"),
    ("min(-1, [1.5, 2.5, 3.5])", None, -1, "builtin_test.go TestBuiltin"),
    ("max(result, 5)", [], 5, "builtin_test.go TestBuiltin max(EmptyIntArray, 5)"),
    ("max(result)", [[1, 2], [3, 4]], 4, "builtin_test.go TestBuiltin max(NestedIntArrays)"),
    ("max(result)", [1, [2, 3], [4.0, 5.0]], 5.0, "builtin_test.go TestBuiltin max(MixedNestedArray)"),
    ("min(result)", [1, [2, 3], [4.0, 5.0]], 1, "builtin_test.go TestBuiltin min(MixedNestedArray)"),
    ("max(result)", [], None, "lib.go minMax: nil when there is no number"),
    ("max(result) < 0.5", [0.1, 0.4], True, "lang max over a Prometheus vector"),
    ("mean(1..9)", None, 5.0, "builtin_test.go TestBuiltin"),
    ("mean([])", None, 0.0, "builtin_test.go TestBuiltin"),
    ("mean(10, [1, 2, 3], 1..9)", None, 4.6923076923076925, "builtin_test.go TestBuiltin"),
    ("mean(10.9, 1..9)", None, 5.59, "builtin_test.go TestBuiltin"),
    ("mean(result)", [[1, 2], [3, 4]], 2.5, "builtin_test.go TestBuiltin mean(NestedIntArrays)"),
    ("median(1..9)", None, 5.0, "builtin_test.go TestBuiltin"),
    ("median([1, 2, 3, 4])", None, 2.5, "builtin_test.go TestBuiltin"),
    ("median(10, [1, 2, 3], 1..9)", None, 4.0, "builtin_test.go TestBuiltin"),
    ("median(1..5, 4.9)", None, 3.5, "builtin_test.go TestBuiltin"),
    ("median([])", None, 0.0, "builtin_test.go TestBuiltin"),
    ("first(result)", ["foo", "bar", "baz"], "foo", "builtin_test.go TestBuiltin first(ArrayOfString)"),
    ("last(result)", [1, "2", True], True, "builtin_test.go TestBuiltin last(ArrayOfAny)"),
    ("first([])", None, None, "builtin_test.go TestBuiltin"),
    ("last([])", None, None, "builtin_test.go TestBuiltin"),
    ("get(result, 99)", ["foo"], None, "builtin_test.go TestBuiltin get(ArrayOfString, 99)"),
    ("get(result, -1)", [1, 2, 3], 3, "builtin_test.go TestBuiltin get(ArrayOfInt, -1)"),
    ('get({foo: 1, bar: 2}, "unknown")', None, None, "builtin_test.go TestBuiltin"),
    ("take(result, 2)", ["foo", "bar", "baz"], ["foo", "bar"], "builtin_test.go TestBuiltin"),
    ('"foo" in keys({foo: 1, bar: 2})', None, True, "builtin_test.go TestBuiltin"),
    ("1 in values({foo: 1, bar: 2})", None, True, "builtin_test.go TestBuiltin"),
    # numbers (builtin_test.go TestBuiltin; lib.go)
    ("abs(-5)", None, 5, "builtin_test.go TestBuiltin"),
    ("abs(-.5)", None, 0.5, "builtin_test.go TestBuiltin"),
    ("ceil(5.5)", None, 6.0, "builtin_test.go TestBuiltin"),
    ("ceil(5)", None, 5.0, "builtin_test.go TestBuiltin: always a float"),
    ("floor(5.5)", None, 5.0, "builtin_test.go TestBuiltin"),
    ("round(5.5)", None, 6.0, "builtin_test.go TestBuiltin"),
    ("round(5.49)", None, 5.0, "builtin_test.go TestBuiltin"),
    ("round(2.5)", None, 3.0, "lib.go Round is math.Round: half away from zero (Python's round gives 2)"),
    ("round(-2.5)", None, -3.0, "lib.go Round: half away from zero"),
    ("round(0.49999999999999994)", None, 0.0, "math.Round: exact, not floor(x + 0.5)"),
    ("int(5.5)", None, 5, "builtin_test.go TestBuiltin"),
    ("int(-5.5)", None, -5, "lib.go Int: Go's int(f) truncates"),
    ('int("5")', None, 5, "builtin_test.go TestBuiltin"),
    ("float(5)", None, 5.0, "builtin_test.go TestBuiltin"),
    ('float("5.5")', None, 5.5, "builtin_test.go TestBuiltin"),
    ("string(5)", None, "5", "builtin_test.go TestBuiltin"),
    ("string(5.5)", None, "5.5", "builtin_test.go TestBuiltin"),
    ('string("5.5")', None, "5.5", "builtin_test.go TestBuiltin"),
    ("string(1000000.0)", None, "1e+06", "lib.go String is fmt %v: strconv 'g', shortest"),
    ("string(123456.0)", None, "123456", "fmt %v"),
    ("string(0.0001)", None, "0.0001", "fmt %v"),
    ("string(0.00001)", None, "1e-05", "fmt %v"),
    ("string(result)", [0.5, 2.0], "[0.5 2]", "fmt %v of a []float64"),
    ("string(result)", None, "<nil>", "fmt %v of nil"),
    ("string(true)", None, "true", "fmt %v"),
    ("type(result)", [1.0], "array", "lib.go Type"),
    ("type(1.5) + type(1) + type(nil)", None, "floatintnil", "lib.go Type"),
    # strings (expr_test.go TestExpr, builtin_test.go TestBuiltin)
    ('"foobar" contains "bar"', None, True, "expr_test.go TestExpr"),
    ('"foobar" startsWith "foo"', None, True, "expr_test.go TestExpr"),
    ('"foobar" endsWith "bar"', None, True, "expr_test.go TestExpr"),
    ('"foobar" not contains "bar"', None, False, "parser.go: not + AllowedNegateSuffix"),
    ('result matches "s.+"', "string", True, "expr_test.go TestExpr String matches"),
    ("'foo' + 'bar' not matches 'foobar'", None, False, "expr_test.go TestExpr"),
    ('result.s matches "^[0-9]+$"', {"s": "123"}, True, "vm.go OpMatches: regexp.MatchString"),
    ('result.missing contains "x"', {}, False, "vm.go OpContains: a nil operand gives false"),
    ("len('北京')", None, 2, "expr_test.go TestExpr: len counts runes (lib.go Len)"),
    ('len("hello, world")', None, 12, "expr_test.go TestExpr"),
    ('upper("foo") + lower("FOO")', None, "FOOfoo", "builtin_test.go TestBuiltin"),
    ('trim("__foo___", "_")', None, "foo", "builtin_test.go TestBuiltin"),
    ('trimPrefix("prefix_foo", "prefix_")', None, "foo", "builtin_test.go TestBuiltin"),
    ('trimSuffix("foo_suffix", "_suffix")', None, "foo", "builtin_test.go TestBuiltin"),
    ('split("foo,bar,baz", ",")', None, ["foo", "bar", "baz"], "builtin_test.go TestBuiltin"),
    ('split("foo,bar,baz", ",", 2)', None, ["foo", "bar,baz"], "builtin_test.go TestBuiltin"),
    ('replace("foo,bar,baz", ",", ";")', None, "foo;bar;baz", "builtin_test.go TestBuiltin"),
    ('indexOf("foo,bar,baz", ",")', None, 3, "builtin_test.go TestBuiltin"),
    ('lastIndexOf("foo,bar,baz", ",")', None, 7, "builtin_test.go TestBuiltin"),
    ('hasPrefix("foo,bar,baz", "foo") && hasSuffix("foo,bar,baz", "baz")', None, True, "builtin_test.go"),
    # in, ranges, slices, literals (expr_test.go TestExpr)
    ("0 in -1..1 and 1 in 1..1", None, True, "expr_test.go TestExpr"),
    ('1 in [1, 2, 3] && "foo" in {foo: 0, bar: 1}', None, True, "expr_test.go TestExpr"),
    ("1 in [1.5] || 1 not in [1]", None, False, "expr_test.go TestExpr"),
    ("-1 not in [1]", None, True, "expr_test.go TestExpr"),
    ("4 in 5..1", None, False, "expr_test.go TestExpr"),
    ("4..0", None, [], "expr_test.go TestExpr"),
    ("(0..10)[5]", None, 5, "expr_test.go TestExpr"),
    ("result[1:4]", [1, 2, 3, 4, 5], [2, 3, 4], "expr_test.go TestExpr ArrayOfInt[1:4]"),
    ("result[-4:-1]", [1, 2, 3, 4, 5], [2, 3, 4], "expr_test.go TestExpr"),
    ("result[:3]", [1, 2, 3, 4, 5], [1, 2, 3], "expr_test.go TestExpr"),
    ("result[3:]", [1, 2, 3, 4, 5], [4, 5], "expr_test.go TestExpr"),
    ("result[:] == result", [1.0, 2.0], True, "expr_test.go TestExpr"),
    ("result[1:99]", [1, 2], [2], "runtime.Slice clamps the bounds"),
    ("{foo: 0, bar: 1}", None, {"foo": 0, "bar": 1}, "expr_test.go TestExpr"),
    ("(true ? 0+1 : 2+3) + (false ? -1 : -2)", None, -1, "expr_test.go TestExpr"),
    ("-(2-5)**3-2/(+4-3)+-2", None, 23.0, "expr_test.go TestExpr"),
    ("8 % 3", None, 2, "expr_test.go TestExpr"),
    ("0x2A == 42 && 0o52 == 42 && 0b101010 == 42", None, True, "lang: integer literals"),
    ("`a\\n` == 'a\\\\n'", None, True, "lang: backtick strings are raw"),
    ("'\\u00e9' == 'é'", None, True, "lang: \\u escapes"),
    ("1 /* one */ + 1 // two", None, 2, "lang: comments"),
    # nil handling: ?? and ?. (lang; expr_test.go TestExpr_nil_coalescing)
    ('result.bar ?? "default"', {"bar": None}, "default", 'expr_test.go: foo.bar ?? "default"'),
    ('result.bar ?? "default"', {"bar": "x"}, "x", "lang ??"),
    ("result ?? 0", None, 0, "lang ??: nil result"),
    ("result?.a?.b", {"a": None}, None, "lang ?.: a nil member ends the chain"),
    ("result.a?.b.c", {"a": None}, None, "lang ?.: the whole chain is skipped"),
    ("result?.a.b", {"a": {"b": 2}}, 2, "lang ?."),
    ("result.a?.[0]", {"a": [7]}, 7, "lang ?.[]"),
    ("isNil(result) ? 0 : result", None, 0, "a nil result in a ternary"),
    ("false ?: true", None, True, "parser.go parseConditional: `a ?: b` is `a ? a : b`"),
    ("not true == false", None, True, "op.go: not (50) binds tighter than == (20)"),
    ("all(result, # >= 0.95) ? 1 : 0", [0.99], 1, "predicate as a condition"),
    # variables, sequences and if/else (lang "Variables"; expr_test.go TestExpr)
    ("let x = 42; x * 2", None, 84, "lang: let"),
    ("map(1..3, let x = #; let y = x * x; y * y)", None, [1, 16, 81], "expr_test.go TestExpr"),
    ("map(1..2, let x = #; map(2..3, let y = #; x + y))", None, [[3, 4], [4, 5]], "expr_test.go TestExpr"),
    ("filter(result, { let v = #; v > 1 })", [1.0, 2.0], [2.0], "lang: a predicate in braces takes a let"),
    ("let worst = max(result); worst < 0.05", [0.01, 0.02], True, "lang: let over a vector"),
    ("(1; 2)", None, 2, "parser.go parseSequenceExpression: the last value"),
    ('if result > 1 { "big" } else if result > 0 { "small" } else { "none" }', 0.5, "small", "parseConditionalIf"),
]


@pytest.mark.parametrize(("source", "result", "expected", "why"), LANGUAGE, ids=[f"{v[0]}|{v[1]!r}" for v in LANGUAGE])
def test_language(source: str, result: object, expected: object, why: str) -> None:
    got = evaluate(source, result)
    assert type(got) is type(expected), why
    assert got == expected, why


# (source, result, message) each from expr's checker or VM, as Argo reports them
LANGUAGE_ERRORS = [
    ("all(result, # < 0.01)", 0.5, r"^builtin all takes only array \(got float64\)$", "checker.go builtinNode"),
    ("all(result, # < 0.01)", None, r"^builtin all takes only array \(got nil\)$", "checker.go builtinNode"),
    ("count(1, {#})", None, r"builtin count takes only array \(got int\)", "checker_test.go"),
    ("map(1, {2})", None, r"builtin map takes only array \(got int\)", "checker_test.go"),
    ("all(result, {# + 1})", [1.0], r"predicate should return boolean \(got float64\)", "checker_test.go"),
    ("count(result, {#})", [1.0], r"predicate should return boolean \(got float64\)", "checker_test.go"),
    ("map(1..9, #unknown)", None, r"unknown pointer #unknown", "checker_test.go"),
    ("all(result, # == 'a')", [1.0], r"mismatched types float64 and string", "checker.go: # is a float64"),
    ("all(result.xs, # > 1)", {"xs": ["a"]}, r"mismatched types string and int|invalid operation", "vm: run time"),
    ("all(result.xs, #)", {"xs": [1]}, r"interface conversion: interface \{\} is int, not bool", "vm.go"),
    ("all(result.xs, # > 0)", {"xs": 3}, r"reflect: call of reflect.Value.Len on int Value", "vm.go OpBegin"),
    ("42 in ['a', 'b', 'c']", None, r"cannot use int as type string in array", "checker_test.go"),
    ("'s' matches 1", None, r"invalid operation: matches \(mismatched types string and int\)", "checker_test.go"),
    ("1 contains 's'", None, r"invalid operation: contains \(mismatched types int and string\)", "checker_test.go"),
    ("'s' matches '('", None, r"error parsing regexp", "checker.go: a constant pattern is compiled"),
    ("'s' matches '(?=s)'", None, r"invalid or unsupported Perl syntax", "RE2 refuses lookahead"),
    ("1..true", None, r"invalid operation: \.\. \(mismatched types int and bool\)", "checker_test.go"),
    ("result[true:]", [1], r"non-integer slice index bool", "checker_test.go"),
    ("true[:]", None, r"cannot slice bool", "checker_test.go"),
    ("len(42)", None, r"invalid argument for len \(type int\)", "checker_test.go"),
    ("len()", None, r"invalid number of arguments \(expected 1, got 0\)", "builtin_test.go TestBuiltin_errors"),
    ("abs(1, 2)", None, r"invalid number of arguments \(expected 1, got 2\)", "builtin_test.go"),
    ('abs("foo")', None, r"invalid argument for abs \(type string\)", "builtin_test.go"),
    ("string(1, 2)", None, r"too many arguments to call string", "builtin_test.go"),
    ("trim()", None, r"not enough arguments to call trim", "builtin_test.go"),
    ("max()", None, r"not enough arguments to call max", "builtin_test.go"),
    ('max(1, "2")', None, r"invalid argument for max \(type string\)", "builtin_test.go"),
    ('max([1, "2"])', None, r"invalid argument for max \(type string\)", "builtin_test.go (run time)"),
    ('median(1..9, "t")', None, r"invalid argument for median \(type string\)", "builtin_test.go"),
    ('mean("s", 1..9)', None, r"invalid argument for mean \(type string\)", "builtin_test.go"),
    ("get(1, 2)", None, r"type int does not support indexing", "builtin_test.go"),
    ("first(1)", None, r"cannot get first element from int", "builtin.go first Validate"),
    ('int("1.5")', None, r"invalid operation: int\(1.5\)", "lib.go Int: strconv.Atoi"),
    ('float("x")', None, r"invalid operation: float\(x\)", "lib.go Float"),
    ("ceil('a')", None, r"invalid argument for ceil \(type string\)", "validation.go validateRoundFunc"),
    ("isNaN(result)", "x", r"cannot use string as argument \(type float64\) to call isNaN", "checker.go"),
    ("result ?? 1 + 2", None, r"cannot be mixed", "parser.go: ?? and other operators need parentheses"),
    ("-999999..999999", None, r"memory budget exceeded", "expr_test.go TestMemoryBudget"),
    ("map(1..999999, 1..999999)", None, r"memory budget exceeded", "expr_test.go TestMemoryBudget"),
    ("let result = 1; result", None, r"cannot redeclare result", "checker.go variableDeclaratorNode: env names"),
    ("let len = 1; len", None, r"cannot redeclare builtin len", "checker_test.go"),
    ("let x = 1; let x = 2; x", None, r"cannot redeclare variable x", "checker_test.go"),
    ("all([1], # > 0; true)", None, r"wrap predicate with brackets", "parser.go parsePredicate"),
    ("$env.result", None, r"not supported", "$env is outside what pdsim models"),
    ("result?.a", None, r"type nil has no field a", "checker.go memberNode: a nil nature errs, ?. or not"),
    ("reduce(1..9, # + #acc)", None, r"unknown func reduce", "reduce is outside what pdsim models"),
    ("now()", None, r"unknown func now", "dates are outside what pdsim models"),
    ("filter(1..9, # > 9)[0]", None, r"index out of range: 0 \(array length is 0\)", "expr_test.go"),
]


@pytest.mark.parametrize(("source", "result", "message", "why"), LANGUAGE_ERRORS, ids=[e[0] for e in LANGUAGE_ERRORS])
def test_language_errors(source: str, result: object, message: str, why: str) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(source, result)


def test_an_evaluation_error_is_an_error_measurement() -> None:
    """evaluate.go EvaluateResult: an EvalCondition error is AnalysisPhaseError, worded by
    formatEvalError; isNilOrEmpty words a nil result's error as no data."""
    phase, message = evaluate_result(0.5, "all(result, # < 0.01)", None)
    assert phase == "Error"
    assert message == (
        'could not evaluate successCondition "all(result, # < 0.01)": builtin all takes only array (got float64)'
    )
    assert evaluate_result(None, "all(result, # < 0.01)", None) == (
        "Error",
        'could not evaluate successCondition "all(result, # < 0.01)": metric result is nil or empty: '
        "no data returned from the metric provider",
    )
    # an empty vector is not an error under all(): every one of no samples passes
    assert evaluate_result([], "all(result, # < 0.01)", None) == ("Successful", "")
    assert evaluate_result([0.001, 0.02], "all(result, # < 0.01)", None) == ("Failed", "")
    assert evaluate_result([0.9, 0.99], "all(result, # >= 0.95)", "any(result, # < 0.9)") == ("Inconclusive", "")


def test_prometheus_results_reach_conditions_as_argo_hands_them() -> None:
    """prometheus.go processResponse: a scalar is a float64 (``result >= 0.95``), a vector a
    []float64 of every sample (``result[0]``, ``all(result, ...)``); analysis_run.prometheus_result
    makes the same values."""
    from sim.policies.argo.analysis_run import prometheus_result
    from sim.policies.base import ScalarResult

    scalar, vector, empty = prometheus_result(ScalarResult(0.97)), prometheus_result((0.97, 0.5)), prometheus_result(())
    assert evaluate("result >= 0.95", scalar) is True
    assert evaluate("all(result, # >= 0.95)", vector) is False and evaluate("any(result, # >= 0.95)", vector) is True
    assert evaluate("all(result, # >= 0.95)", empty) is True
    with pytest.raises(ExprError, match="takes only array"):
        evaluate("all(result, # >= 0.95)", scalar)
    with pytest.raises(ExprError, match="mismatched types"):
        evaluate("result >= 0.95", vector)


def test_integer_and_float_arithmetic_follow_go() -> None:
    """runtime: int op int stays an int (wrapping at 64 bits), any float makes a float64,
    / and ** are always float64 (op.go; vm/runtime helpers)."""
    assert evaluate("sum(1..3) * 2", None) == 12 and type(evaluate("sum(1..3) * 2", None)) is int
    assert type(evaluate("sum(result) * 2", [1.0])) is float
    assert evaluate("count(result, # > 0) / len(result)", [1.0, -1.0]) == 0.5
    assert evaluate("abs(-9223372036854775807 - 1)", None) == -(2**63)  # Go's -MinInt64 wraps
    assert evaluate("mean(1, 2) == 1.5", None) is True  # checker types it int, the value is a float64


def test_budget_counts_what_expr_builds_not_what_it_visits(monkeypatch: pytest.MonkeyPatch) -> None:
    # vm.go memGrow counts ranges, arrays and maps built; a run fails once the count reaches
    # the budget (1e6 by default; 1,000 here to keep the test fast). Iterating is not building.
    monkeypatch.setattr(expr_mod, "MAX_ITEMS", 1000)
    assert evaluate("all(result, # >= 0)", [0.5] * 1500) is True
    assert len(evaluate("map(result, #)", [0.5] * 999)) == 999  # type: ignore[arg-type]
    with pytest.raises(ExprError, match="memory budget exceeded"):
        evaluate("map(result, #)", [0.5] * 1000)
    with pytest.raises(ExprError, match="memory budget exceeded"):
        evaluate("len(1..1000)", None)


def test_pdsim_bounds_the_elements_predicates_visit(monkeypatch: pytest.MonkeyPatch) -> None:
    # expr has no such bound; nested predicates over a long vector would run for minutes here.
    assert expr_mod.MAX_STEPS == 1_000_000
    monkeypatch.setattr(expr_mod, "MAX_STEPS", 10_000)
    assert evaluate("all(result, all(result, # >= 0))", [0.5] * 99) is True  # 99 + 99 * 99 visits
    with pytest.raises(ExprError, match="visits more than 10000 elements"):
        evaluate("all(result, all(result, # >= 0))", [0.5] * 101)


def test_compiled_once_and_checked_once_per_result_type() -> None:
    compiled = compile_expr("all(result, # < 0.02)")
    assert compiled is compile_expr("all(result, # < 0.02)")
    for _ in range(3):
        compiled.evaluate([0.001])
        compiled.evaluate([])
    assert set(compiled._checked) == {"[]float64"}  # one check for every list of numbers


# Conditions from argo-rollouts' own docs and tests, with results of the shape each provider hands.
UPSTREAM_CONDITIONS = [
    ("all(result, # < 1000)", [200.0, 950.0], "Successful", "docs/analysis/prometheus.md (range query)"),
    ("all(result, # < 1000)", [200.0, 1200.0], "Failed", "docs/analysis/prometheus.md: every value is checked"),
    ("max(result) < 0.05", [0.01, 0.087, 0.04], "Failed", "metricproviders/datadog/datadogV2_test.go grouped max"),
    ("all(result, # < 0.05)", [0.01, 0.02, 0.03], "Successful", "datadogV2_test.go grouped query passes with all"),
    ("max(result) < 0.05", [0.087], "Failed", "datadogV2_test.go single-group query stays a slice"),
    (
        "len(result[0].Values) >= 5 and all(result[0].Values, {# <= 0.01})",
        [{"Values": [0.0, 0.01, 0.0, 0.005, 0.0]}],
        "Successful",
        "docs/analysis/cloudwatch.md",
    ),
    (
        "len(result[0].Values) >= 5 and all(result[0].Values, {# <= 0.01})",
        [{"Values": [0.0, 0.02]}],
        "Failed",
        "docs/analysis/cloudwatch.md: fewer than 5 values",
    ),
    (
        "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
        {"service_apdex": {"values": {"values": [{"value": "9950"}, {"value": "9990"}]}}},
        "Successful",
        "docs/analysis/skywalking.md",
    ),
    (
        "all(result.service_apdex.values.values, {asFloat(.value) >= 9900})",
        {"service_apdex": {"values": {"values": [{"value": "9950"}, {"value": "9800"}]}}},
        "Failed",
        "docs/analysis/skywalking.md",
    ),
]


@pytest.mark.parametrize(("condition", "result", "phase", "why"), UPSTREAM_CONDITIONS)
def test_upstream_conditions(condition: str, result: object, phase: str, why: str) -> None:
    assert measurement_phase(result, condition, None) == phase, why
