"""compile_query: what a query selects, what it refuses (sim/promql/parse.py, engine.py)."""

from __future__ import annotations

import pytest

from sim.promql import PromQLError, compile_query


def test_metric_names_include_name_matchers_and_selectors_keep_their_matchers() -> None:
    query = compile_query('sum(rate(x{a="b",code!~"5.*"}[1m])) / sum(rate({__name__="y"}[5m])) * 100')
    assert query.metric_names == frozenset({"x", "y"})
    assert query.range_seconds() == 300.0
    first = query.selectors[0]
    assert first.name == "x"
    assert [(m.name, m.op, m.value) for m in first.matchers] == [
        ("__name__", "=", "x"),
        ("a", "=", "b"),
        ("code", "!~", "5.*"),
    ]


def test_query_without_range_has_no_range_seconds() -> None:
    assert compile_query("up").range_seconds() is None


def test_compile_is_cached_by_text() -> None:
    assert compile_query("up == 1") is compile_query("up == 1")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sum(", "cannot parse"),
        ("nofunction(x)", "cannot parse"),
        ('count_values("v", x)', "count_values is not supported"),
        # Prometheus 3.x's "or" inside braces does not exist in 2.42 (promql/parser/lex.go).
        ('x{a="b" or a="c"}', "3.x"),
    ],
)
def test_unsupported_or_bad_text_is_one_line_promql_error(text: str, fragment: str) -> None:
    with pytest.raises(PromQLError) as caught:
        compile_query(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_regex_matchers_are_anchored_like_prometheus() -> None:
    # prometheus model/labels/regexp.go NewFastRegexMatcher: "^(?:" + v + ")$".
    matcher = compile_query('x{code=~"5.."}').selectors[0].matchers[1]
    assert matcher.matches("503")
    assert not matcher.matches("5030")
    assert not matcher.matches("1503")
    assert not matcher.matches("503\n")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("up", 300.0),
        ("time()", 0.0),
        ("rate(x[1m])", 60.0),
        ("rate(x[1m] offset 30s) / y", 300.0),
        ("max_over_time(rate(x[1m])[5m:30s] offset 1m)", 60.0 + 300.0 + 60.0),
        ("sum(rate(x[2m])) / sum(rate(x[1m] offset 1m))", 120.0),
    ],
)
def test_history_adds_ranges_offsets_and_lookback(text: str, seconds: float) -> None:
    assert compile_query(text).history_seconds() == seconds
