"""Parsing and formatting of durations, request rates and latencies.

Durations use Go syntax (``15s``, ``1h30m``, ``500ms``) because that is what
Flagger and Argo Rollouts manifests contain. Arithmetic is done on exact
fractions so ``"1.1s"`` or ``"250us"`` do not pick up binary rounding noise
before the single final conversion to float.

All parse errors are short ``ValueError`` messages meant for end users;
pydantic wraps them with the field location.
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction

_DURATION_MSG = "not a duration like 15s, 1m or 2h"
_RATE_MSG = "not a rate like 100/s, 6000/m or 100rps"
_LATENCY_MSG = "not a latency like 40ms, 1.5s or 250us"

# Unit -> length in seconds, exact.
_TIME_UNITS: dict[str, Fraction] = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "\u00b5s": Fraction(1, 10**6),  # micro sign
    "\u03bcs": Fraction(1, 10**6),  # Greek mu; Go accepts both
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
}
# Rate unit -> seconds per period; "/min" etc. are spelled-out aliases.
_RATE_UNITS: dict[str, Fraction] = {
    "/s": Fraction(1),
    "/sec": Fraction(1),
    "/second": Fraction(1),
    "rps": Fraction(1),
    "/m": Fraction(60),
    "/min": Fraction(60),
    "/minute": Fraction(60),
    "/h": Fraction(3600),
    "/hour": Fraction(3600),
}

# No sign, no exponent inside unit strings (Go does not allow them either).
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Bare numbers may carry a sign (to report "negative") and a short exponent;
# the exponent is capped so "1e999999999" cannot make Fraction build a huge int.
_BARE = re.compile(rf"[+-]?{_NUM}(?:[eE][+-]?\d{{1,3}})?")
_DURATION = re.compile(rf"([+-]?)((?:{_NUM}\s*(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)\s*)+)")
_DURATION_PART = re.compile(rf"({_NUM})\s*(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)")
_RATE = re.compile(rf"([+-]?{_NUM})\s*(/\s*[a-z]+|rps)")
_MAX_LEN = 64  # anything longer is not a hand-written quantity


def _number(value: object, msg: str) -> Fraction | None:
    """Exact value of a bare number (int, float or numeric string), else None."""
    if isinstance(value, bool):
        # bool is an int subclass, but `timeout: true` is certainly a mistake.
        raise ValueError(msg)
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise ValueError(msg)
        return Fraction(float(value))
    if not isinstance(value, str):
        raise ValueError(msg)
    text = value.strip()
    if len(text) > _MAX_LEN:
        raise ValueError(msg)
    return Fraction(text) if _BARE.fullmatch(text) else None


def _finish(amount: Fraction, what: str) -> float:
    if amount < 0:
        raise ValueError(f"{what} must not be negative")
    try:
        return float(amount)
    except OverflowError:
        raise ValueError(f"{what} is too large") from None


def _duration_seconds(value: object, msg: str, bare_unit: Fraction) -> Fraction:
    """Exact seconds of a duration; bare numbers are multiplied by bare_unit."""
    number = _number(value, msg)
    if number is not None:
        return number * bare_unit
    text = str(value).strip()
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(msg)
    total = sum(
        (Fraction(num) * _TIME_UNITS[unit] for num, unit in _DURATION_PART.findall(match.group(2))), Fraction(0)
    )
    return -total if match.group(1) == "-" else total


def parse_duration(value: str | int | float) -> float:
    """Parse a duration into seconds.

    Args:
        value: Go-style string (``"15s"``, ``"1h30m"``, ``"500ms"``,
            ``"250us"``/``"250µs"``, ``"1.5s"``) plus ``"d"`` for days, or a
            bare number (int, float or numeric string) meaning seconds.

    Returns:
        Seconds as a float.

    Raises:
        ValueError: Not a duration, a bool, negative or too large.
    """
    return _finish(_duration_seconds(value, _DURATION_MSG, Fraction(1)), "duration")


def parse_latency_ms(value: str | int | float) -> float:
    """Parse a latency into milliseconds.

    Args:
        value: Duration string (``"40ms"``, ``"1.5s"``, ``"250us"``, ``"2m"``)
            or a bare number meaning milliseconds.

    Returns:
        Milliseconds as a float.

    Raises:
        ValueError: Not a latency, a bool, negative or too large.
    """
    seconds = _duration_seconds(value, _LATENCY_MSG, Fraction(1, 1000))
    return _finish(seconds * 1000, "latency")


def parse_rate(value: str | int | float) -> float:
    """Parse a request rate into requests per second.

    Args:
        value: ``"100/s"``, ``"6000/m"`` or ``"6000/min"``, ``"3600/h"``,
            ``"100rps"``, or a bare number meaning per second.

    Returns:
        Requests per second as a float.

    Raises:
        ValueError: Not a rate, a bool, negative or too large.
    """
    number = _number(value, _RATE_MSG)
    if number is None:
        match = _RATE.fullmatch(str(value).strip())
        unit = match and re.sub(r"\s+", "", match.group(2))
        if match is None or unit not in _RATE_UNITS:
            raise ValueError(_RATE_MSG)
        number = Fraction(match.group(1)) / _RATE_UNITS[unit]
    return _finish(number, "rate")


def _decimal(ns: int, scale: int) -> str:
    """Exact decimal text of ns / scale without trailing zeros."""
    whole, frac = divmod(ns, scale)
    if not frac:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_duration(seconds: float) -> str:
    """Format seconds compactly in the syntax parse_duration accepts.

    Zero components are left out and the resolution is one nanosecond:
    ``0 -> "0s"``, ``90 -> "1m30s"``, ``3600 -> "1h"``, ``1.5 -> "1.5s"``,
    ``0.25 -> "250ms"``. Hours are not folded into days (like Go). Negative
    values get a leading ``-``; inf and nan come back as ``"inf"``/``"nan"``.

    Args:
        seconds: Duration in seconds.

    Returns:
        The formatted duration.
    """
    if not math.isfinite(seconds):
        return str(float(seconds))
    # Integer nanoseconds from the exact float value: no overflow, no noise.
    ns = round(Fraction(seconds) * 10**9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, scale in (("ms", 10**6), ("us", 10**3), ("ns", 1)):
            if ns >= scale:
                return f"{sign}{_decimal(ns, scale)}{unit}"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if rest:
        out += f"{_decimal(rest, 10**9)}s"
    return out
