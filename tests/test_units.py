"""Tests for sim.units."""

from __future__ import annotations

import math

import pytest

from sim.units import format_duration, parse_duration, parse_latency_ms, parse_rate


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15s", 15.0),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1.1s", 1.1),
        ("250us", 0.00025),
        ("250µs", 0.00025),  # micro sign
        ("250μs", 0.00025),  # Greek mu
        ("100ns", 1e-7),
        ("1d", 86400.0),
        ("0", 0.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("  30s ", 30.0),
        ("10", 10.0),
        ("2.5", 2.5),
        ("1e3", 1000.0),  # YAML 1.1 leaves 1e3 a string
        (10, 10.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_parse_duration_good(value, expected):
    assert parse_duration(value) == pytest.approx(expected, rel=1e-15, abs=0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "s",
        "15x",
        "1 h 30 q",
        "15S",
        "1e3s",
        "h1",
        "1.2.3s",
        "15s30",
        "--1s",
        "nan",
        "inf",
        "1_000s",
        "1" * 100 + "s",
        None,
        [1],
        True,
        False,
        math.nan,
        math.inf,
    ],
)
def test_parse_duration_bad(value):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["-1s", "-5", -1, -0.5, "-1h30m"])
def test_parse_duration_negative(value):
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


def test_parse_duration_message_is_short_and_user_facing():
    with pytest.raises(ValueError) as info:
        parse_duration("soon")
    assert str(info.value) == "not a duration like 15s, 1m or 2h"


def test_parse_duration_too_large():
    with pytest.raises(ValueError, match="too large"):
        parse_duration(10**400)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100/s", 100.0),
        ("6000/m", 100.0),
        ("6000/min", 100.0),
        ("3600/h", 1.0),
        ("100rps", 100.0),
        ("100 rps", 100.0),
        ("2.5/s", 2.5),
        ("30/ min", 0.5),
        ("100", 100.0),
        (100, 100.0),
        (0.5, 0.5),
        (0, 0.0),
    ],
)
def test_parse_rate_good(value, expected):
    assert parse_rate(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value", ["", "fast", "100/", "100/d", "100/x", "/s", "100 per second", "100rpm", None, True, math.nan]
)
def test_parse_rate_bad(value):
    with pytest.raises(ValueError, match="not a rate like"):
        parse_rate(value)


@pytest.mark.parametrize("value", ["-1/s", -3, "-100rps"])
def test_parse_rate_negative(value):
    with pytest.raises(ValueError, match="must not be negative"):
        parse_rate(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("40ms", 40.0),
        ("1.5s", 1500.0),
        ("250us", 0.25),
        ("2m", 120000.0),
        ("40", 40.0),
        (40, 40.0),
        (0.5, 0.5),
    ],
)
def test_parse_latency_ms_good(value, expected):
    assert parse_latency_ms(value) == expected  # exact arithmetic: no approx needed


@pytest.mark.parametrize("value", ["", "40 millis", "ms", True, None, math.inf])
def test_parse_latency_ms_bad(value):
    with pytest.raises(ValueError, match="not a latency like"):
        parse_latency_ms(value)


@pytest.mark.parametrize("value", ["-40ms", -1])
def test_parse_latency_ms_negative(value):
    with pytest.raises(ValueError, match="must not be negative"):
        parse_latency_ms(value)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (90, "1m30s"),
        (3600, "1h"),
        (3601, "1h1s"),
        (5400, "1h30m"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (0.0015, "1.5ms"),
        (0.00025, "250us"),
        (1e-7, "100ns"),
        (1e-12, "0s"),
        (0.1 + 0.2, "300ms"),
        (86400, "24h"),
        (-90, "-1m30s"),
        (60.5, "1m0.5s"),
    ],
)
def test_format_duration(seconds, expected):
    assert format_duration(seconds) == expected


@pytest.mark.parametrize("seconds", [0, 0.25, 1.5, 90, 3601, 5415.125, 86400 * 3 + 7])
def test_format_parse_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_duration_non_finite():
    assert format_duration(math.inf) == "inf"
    assert format_duration(math.nan) == "nan"
