"""Tests for sim.stats: reference values, coverage by simulation, summary shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.stats import (
    format_summary_table,
    mean_interval,
    quantile_interval,
    rate,
    summarize_records,
    wilson_interval,
)

# --- wilson_interval ---------------------------------------------------------


def test_wilson_reference_values():
    low, high = wilson_interval(5, 10)
    assert (round(low, 3), round(high, 3)) == (0.237, 0.763)
    assert low == pytest.approx(0.2366, abs=1e-4)
    assert high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    # Reference: 1 of 20 at 95% -> (0.0089, 0.2361).
    low, high = wilson_interval(1, 20)
    assert low == pytest.approx(0.0089, abs=1e-4)
    assert high == pytest.approx(0.2361, abs=1e-4)


def test_wilson_edges_and_errors():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, _ = wilson_interval(0, 1_000_000)
    _, high = wilson_interval(1_000_000, 1_000_000)
    assert low == 0.0 and high == 1.0
    narrow = wilson_interval(5, 10, confidence=0.8)
    wide = wilson_interval(5, 10, confidence=0.99)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    for k, n in ((-1, 5), (6, 5), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)


def test_wilson_coverage_by_simulation():
    rng = np.random.default_rng(20240601)
    p, n = 0.1, 200
    ks = rng.binomial(n, p, size=4000)
    cover = np.mean([lo <= p <= hi for lo, hi in (wilson_interval(int(k), n) for k in ks)])
    assert cover >= 0.93


def test_rate_dict():
    assert rate(3, 12) == {
        "rate": 0.25,
        "low": pytest.approx(wilson_interval(3, 12)[0]),
        "high": pytest.approx(wilson_interval(3, 12)[1]),
        "k": 3,
        "n": 12,
    }
    r = rate(np.int64(0), np.int64(0))
    assert r["rate"] is None and (r["low"], r["high"]) == (0.0, 1.0)
    assert type(r["k"]) is int and type(r["n"]) is int


# --- quantile_interval -------------------------------------------------------


def test_quantile_interval_coverage_median():
    rng = np.random.default_rng(12345)
    reps, n = 2000, 50
    covered, widths = 0, []
    for _ in range(reps):
        res = quantile_interval(rng.normal(size=n), 0.5)
        covered += res["low"] <= 0.0 <= res["high"]
        widths.append(res["high"] - res["low"])
    assert covered / reps >= 0.93
    # Exact coverage for these ranks is ~0.967; far above means over-wide intervals.
    assert covered / reps <= 0.995
    # The asymptotic 95% width for the normal median at n=50 is about 0.70.
    assert np.mean(widths) < 1.0


def test_quantile_interval_coverage_p90_skewed():
    rng = np.random.default_rng(7)
    true_q = -math.log(0.1)  # p90 of Exp(1)
    reps, n = 1000, 100
    hits = 0
    for _ in range(reps):
        res = quantile_interval(rng.exponential(size=n), 0.9)
        assert math.isfinite(res["low"]) and math.isfinite(res["high"])
        hits += res["low"] <= true_q <= res["high"]
    assert hits / reps >= 0.93


def test_quantile_interval_small_and_edge_cases():
    # n=5 cannot bound the median at 95% (P(B=0) = 1/32 > 0.025) on either side.
    res = quantile_interval(np.arange(5.0), 0.5)
    assert res == {"value": 2.0, "low": -math.inf, "high": math.inf, "n": 5}
    # n=6: [min, max] covers with probability 1 - 2/64.
    res = quantile_interval(np.arange(6.0), 0.5)
    assert (res["low"], res["high"], res["value"]) == (0.0, 5.0, 2.5)
    # A high quantile at small n: upper side unbounded, lower still finite.
    res = quantile_interval(np.arange(50.0), 0.99)
    assert res["high"] == math.inf and math.isfinite(res["low"])
    assert res["low"] <= res["value"]
    # NaNs are dropped; empty input gives Nones.
    res = quantile_interval(np.array([np.nan, 1.0, 2.0, 3.0, np.nan]), 0.5)
    assert res["n"] == 3 and res["value"] == 2.0
    assert quantile_interval(np.array([np.nan]), 0.5) == {
        "value": None,
        "low": None,
        "high": None,
        "n": 0,
    }
    with pytest.raises(ValueError):
        quantile_interval(np.arange(5.0), 1.5)


@pytest.mark.parametrize("n", [1, 5, 6, 10, 30, 50, 71, 72, 200, 1000])
@pytest.mark.parametrize("q", [0.01, 0.1, 0.5, 0.9, 0.95, 0.99])
def test_order_stat_ranks_exact_coverage(n, q):
    # Coverage of [X_(l), X_(u)] is P(l <= B <= u - 1) with B ~ Binomial(n, q).
    from scipy.stats import binom

    from sim.stats import _order_stat_ranks

    lo, up = _order_stat_ranks(n, q, 0.05)
    assert 0 <= lo < up <= n + 1
    lower_miss = binom.cdf(lo - 1, n, q) if lo >= 1 else 0.0
    upper_miss = binom.sf(up - 1, n, q) if up <= n else 0.0
    assert 1.0 - lower_miss - upper_miss >= 0.95 - 1e-12


def test_quantile_interval_contains_point_estimate():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=300)
    for q in (0.05, 0.5, 0.9, 0.95):
        res = quantile_interval(x, q)
        assert res["low"] <= res["value"] <= res["high"]
        assert res["value"] == pytest.approx(np.quantile(x, q))


# --- mean_interval -----------------------------------------------------------


def test_mean_interval():
    res = mean_interval(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    # mean 2.5, s = 1.29099, t(0.975, 3) = 3.18245 -> half-width 2.0543
    assert res["value"] == 2.5 and res["n"] == 4
    assert res["low"] == pytest.approx(2.5 - 2.0543, abs=1e-3)
    assert res["high"] == pytest.approx(2.5 + 2.0543, abs=1e-3)
    assert mean_interval(np.array([7.0])) == {"value": 7.0, "low": None, "high": None, "n": 1}
    assert mean_interval(np.array([])) == {"value": None, "low": None, "high": None, "n": 0}


# --- summarize_records / format_summary_table --------------------------------


def _record(
    run,
    outcome,
    bad,
    *,
    decision=None,
    detection=None,
    fr=False,
    missed=False,
    excess=0.0,
    affected=0,
    requests=1000,
    errors=5,
):
    return {
        "scenario": "s",
        "policy": "p",
        "run": run,
        "seed": 100 + run,
        "outcome": outcome,
        "release_bad": bad,
        "decision_time_s": decision,
        "detection_time_s": detection,
        "canary_requests": requests,
        "canary_errors": errors,
        "excess_errors": excess,
        "users_exposed": 50,
        "users_affected": affected,
        "false_rollback": fr,
        "missed": missed,
    }


def _records():
    return [
        _record(0, "promoted", False, decision=600.0),
        _record(1, "promoted", False, decision=620.0),
        _record(2, "rolled_back", False, decision=300.0, fr=True),
        _record(3, "rolled_back", True, decision=240.0, detection=120.0, excess=40.0, affected=7),
        _record(4, "rolled_back", True, decision=200.0, detection=90.0, excess=25.0, affected=4),
        _record(5, "promoted", True, decision=610.0, missed=True, excess=300.0, affected=30),
        _record(6, "unfinished", True, excess=float("nan"), affected=2),
    ]


def test_summary_structure_and_rates():
    s = summarize_records(pd.DataFrame(_records()))
    assert s["runs"] == 7
    assert (s["promoted"]["k"], s["promoted"]["n"]) == (3, 7)
    assert (s["rolled_back"]["k"], s["unfinished"]["k"]) == (3, 1)
    assert s["false_rollback_rate"]["rate"] == pytest.approx(1 / 3)
    assert s["detection_rate"]["rate"] == pytest.approx(2 / 4)
    assert s["missed_rate"]["rate"] == pytest.approx(1 / 4)
    for key in ("detection_time_s", "decision_time_s", "excess_errors", "users_affected"):
        assert set(s[key]) == {"p50", "p90", "p95", "mean"}
    assert set(s["canary_requests"]) == {"mean"}
    assert s["detection_time_s"]["p50"]["n"] == 2
    assert s["detection_time_s"]["mean"]["value"] == pytest.approx(105.0)
    assert s["decision_time_s"]["p50"]["n"] == 6
    assert s["excess_errors"]["mean"]["n"] == 6  # the NaN is skipped
    # Tiny samples cannot bound quantiles: +-inf becomes None, not a float.
    assert s["detection_time_s"]["p50"]["low"] is None
    assert s["detection_time_s"]["p50"]["high"] is None
    assert s["detection_time_s"]["p90"]["low"] == 90.0
    assert s["detection_time_s"]["p90"]["high"] is None
    assert s["canary_requests"]["mean"]["value"] == 1000.0
    json.dumps(s, allow_nan=False)
    # A sequence of mappings gives the same result as a DataFrame.
    assert summarize_records(_records()) == s


def test_summary_undefined_rates_are_none():
    only_good = [r for r in _records() if not r["release_bad"]]
    s = summarize_records(only_good)
    assert s["detection_rate"]["rate"] is None and s["detection_rate"]["n"] == 0
    assert s["missed_rate"]["rate"] is None
    assert s["detection_time_s"]["p50"] == {"value": None, "low": None, "high": None, "n": 0}
    assert s["detection_time_s"]["mean"]["value"] is None
    json.dumps(s, allow_nan=False)

    empty = summarize_records([])
    assert empty["runs"] == 0 and empty["promoted"]["rate"] is None
    json.dumps(empty, allow_nan=False)


def test_summary_types_are_plain_python():
    def walk(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        else:
            assert obj is None or type(obj) in (int, float, bool), type(obj)
            if isinstance(obj, float):
                assert math.isfinite(obj)

    walk(summarize_records(pd.DataFrame(_records() * 20)))


def test_format_summary_table():
    s = summarize_records(_records() * 20)
    text = format_summary_table(s)
    lines = text.splitlines()
    assert lines[0] == "runs: 140"
    by_name = {ln.split()[0]: ln for ln in lines if ln.strip()}
    lo, hi = s["promoted"]["low"], s["promoted"]["high"]
    assert f"42.9% [{100 * lo:.1f}%, {100 * hi:.1f}%]" in by_name["promoted"]
    assert "60/140" in by_name["promoted"]
    assert "50.0%" in by_name["detection_rate"]
    for name in ("detection_time_s", "decision_time_s", "excess_errors", "users_affected", "canary_requests"):
        assert name in by_name
    p50 = s["decision_time_s"]["p50"]
    assert f"{p50['value']:.0f}s [{p50['low']:.0f}s, {p50['high']:.0f}s]" in by_name["decision_time_s"]
    assert "1,000" in by_name["canary_requests"]
    assert not text.endswith("\n")

    small = format_summary_table(summarize_records(_records()[:3]))
    small_lines = {ln.split()[0]: ln for ln in small.splitlines() if ln.strip()}
    assert "n/a" in small_lines["detection_rate"]
    assert "0/0" in small_lines["detection_rate"]
    assert "n/a" in small_lines["detection_time_s"]


def test_scipy_special_gives_what_scipy_stats_gave() -> None:
    """sim.stats uses scipy.special (which every run loads anyway) instead of scipy.stats
    (a second of start-up, issue 17): the intervals it reports must not change. ndtri is
    norm.ppf and stdtrit t.ppf bit for bit; the binomial's cdf/sf (cephes bdtr/bdtrc
    rather than boost) may differ in the last bits, so the order-statistic ranks they
    decide are compared, over every n up to 200 and larger ones, at each level used."""
    from scipy import special, stats

    from sim.stats import _order_stat_ranks

    for p in (0.5 + c / 2.0 for c in (0.8, 0.9, 0.95, 0.975, 0.99, 0.999)):
        assert special.ndtri(p) == stats.norm.ppf(p)
        for df in (1, 2, 3, 7, 30, 999, 10**6):
            assert special.stdtrit(df, p) == stats.t.ppf(p, df)

    def scipy_stats_ranks(n: int, q: float, alpha: float) -> tuple[int, int]:
        j = np.arange(n + 1)
        cdf, sf = stats.binom.cdf(j, n, q), stats.binom.sf(j, n, q)

        def lower(a: float) -> int:
            return int(np.count_nonzero(cdf <= a))

        def upper(a: float) -> int:
            hits = np.flatnonzero(sf <= a)
            return int(hits[0]) + 1 if hits.size else n + 1

        lo, up = lower(alpha / 2.0), upper(alpha / 2.0)
        if lo == 0 and up <= n:
            up = upper(alpha)
        elif up > n and lo >= 1:
            lo = lower(alpha)
        return lo, up

    for n in [*range(1, 201), 1000, 4999, 20000]:
        for q in (0.0, 0.5, 0.9, 0.95, 1.0):
            for alpha in (0.2, 0.1, 0.05, 0.01):
                assert _order_stat_ranks(n, q, alpha) == scipy_stats_ranks(n, q, alpha), (n, q, alpha)
