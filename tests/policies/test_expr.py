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
from sim.policies.argo.expr import ExprError, compile_expr, evaluate, evaluate_condition, measurement_phase

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
