"""sim.tuning.metrics: metric names, portfolio-weighted estimates and paired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from sim.tuning.metrics import Estimate, estimate, estimates, meets, paired, parse_metric, projected


def _frame(entries: list[dict]) -> pd.DataFrame:
    """Run records of synthetic entries: {bad, values, outcome?} each."""
    rows = []
    for i, e in enumerate(entries):
        for k, v in enumerate(e["values"]):
            outcome = e.get("outcome", ["rolled_back"] * len(e["values"]))[k]
            rows.append(
                {
                    "scenario": i,
                    "run": k,
                    "seed": 1000 * i + k,
                    "release_bad": e["bad"],
                    "outcome": outcome,
                    "false_rollback": (not e["bad"]) and outcome == "rolled_back",
                    "missed": e["bad"] and outcome == "promoted",
                    "detection_time_s": v,
                    "excess_errors": v,
                    "decision_time_s": v,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("text", "quantity", "stat", "population", "q"),
    [
        ("false_rollback_rate", "false_rollback_rate", None, "good", None),
        ("missed_rate", "missed_rate", None, "bad", None),
        ("excess_errors.mean", "excess_errors", "mean", "bad", None),
        ("detection_time_s.median", "detection_time_s", "median", "bad", 0.5),
        ("decision_time_s.mean.good", "decision_time_s", "mean", "good", None),
        ("detection_time_s.p99.9.all", "detection_time_s", "p99.9", "all", 0.999),
    ],
)
def test_parse_metric(text: str, quantity: str, stat: str | None, population: str, q: float | None) -> None:
    m = parse_metric(text)
    assert (m.quantity, m.stat, m.population, str(m)) == (quantity, stat, population, text)
    assert m.q == (pytest.approx(q) if q is not None else None)


@pytest.mark.parametrize(
    "text", ["excess_errors", "excess_errors.max", "speed.mean", "excess_errors.mean.ugly", "x.p100", "a.b.c.d"]
)
def test_parse_metric_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="metric|statistic|population"):
        parse_metric(text)


def test_entries_count_by_weight_not_by_runs() -> None:
    # Entry 0 (weight 0.9) rolls back every good release, entry 1 (weight 0.1) none; entry 1
    # has 9x the runs. The rate is 0.9 (per release drawn from the portfolio), not 0.1.
    f = _frame(
        [
            {"bad": False, "values": [1.0] * 100, "outcome": ["rolled_back"] * 100},
            {"bad": False, "values": [1.0] * 900, "outcome": ["promoted"] * 900},
        ]
    )
    e = estimate(f, {0: 0.9, 1: 0.1}, parse_metric("false_rollback_rate"))
    assert e.value == pytest.approx(0.9)
    assert e.low < 0.9 < e.high and e.n == 1000


def test_population_keeps_bad_runs_only() -> None:
    f = _frame([{"bad": False, "values": [1000.0] * 50}, {"bad": True, "values": [10.0] * 50}])
    assert estimate(f, {0: 0.5, 1: 0.5}, parse_metric("excess_errors.mean")).value == pytest.approx(10.0)
    assert estimate(f, {0: 0.5, 1: 0.5}, parse_metric("excess_errors.mean.good")).value == pytest.approx(1000.0)
    assert estimate(f, {0: 0.5, 1: 0.5}, parse_metric("excess_errors.mean.all")).value == pytest.approx(505.0)


def test_percentile_counts_missing_as_infinite_and_mean_leaves_it_out() -> None:
    # 60% of bad releases never detected: the median detection time is infinite.
    values = [60.0] * 40 + [math.nan] * 60
    f = _frame([{"bad": True, "values": values}])
    assert estimate(f, {0: 1.0}, parse_metric("detection_time_s.median")).value == math.inf
    assert estimate(f, {0: 1.0}, parse_metric("detection_time_s.p30")).value == 60.0
    assert estimate(f, {0: 1.0}, parse_metric("detection_time_s.mean")).value == pytest.approx(60.0)


def test_undefined_population_is_nan() -> None:
    f = _frame([{"bad": True, "values": [1.0, 2.0]}])
    e = estimate(f, {0: 1.0}, parse_metric("false_rollback_rate"))
    assert math.isnan(e.value) and e.n == 0
    assert not meets(e, {"max": 0.5}) and not meets(projected(e, 10, 1000), {"max": 0.5})


def test_meets_is_pessimistic() -> None:
    e = Estimate(0.005, 0.001, 0.02, 500)
    assert not meets(e, {"max": 0.01}) and meets(e, {"max": 0.02})
    assert meets(e, {"min": 0.001}) and not meets(e, {"min": 0.002})


def test_projected_interval_shrinks_as_one_over_sqrt_runs() -> None:
    e = Estimate(0.008, 0.002, 0.030, 120)
    p = projected(e, 40, 1000)  # 25x the runs: ends 5x closer
    assert (p.value, p.low, p.high) == pytest.approx((0.008, 0.008 - 0.006 / 5, 0.008 + 0.022 / 5))
    assert not meets(p, {"max": 0.01})  # 0.8% never shows it is under 1% on 1,000 runs ...
    assert meets(projected(Estimate(0.0, 0.0, 0.030, 120), 40, 1000), {"max": 0.01})  # ... 0 of 120 may
    assert projected(e, 1000, 1000) == e and projected(e, 2000, 1000) == e
    inf = projected(Estimate(60.0, 30.0, math.inf, 9), 40, 1000)
    assert inf.high == math.inf and inf.low == pytest.approx(54.0)


def test_weighted_median_interval_covers_the_truth() -> None:
    """Coverage of the stratified bootstrap interval of a weighted median: 400 searches'
    worth of portfolios (two entries, weights 0.7/0.3, exponential values with means 1 and
    10). Ignoring the weights, or the strata, would miss the true mixture median."""
    w0, w1 = 0.7, 0.3

    def cdf(x: float) -> float:
        return w0 * stats.expon.cdf(x) + w1 * stats.expon.cdf(x, scale=10.0)

    truth = optimize.brentq(lambda x: cdf(x) - 0.5, 0.0, 50.0)
    rng = np.random.default_rng(20261206)
    reps, hits = 400, 0
    for r in range(reps):
        f = _frame(
            [
                {"bad": True, "values": list(rng.exponential(1.0, 150))},
                {"bad": True, "values": list(rng.exponential(10.0, 250))},
            ]
        )
        e = estimate(f, {0: w0, 1: w1}, parse_metric("detection_time_s.median"), seed=r)
        hits += e.low <= truth <= e.high
    # Binomial(400, 0.95) lies in [360, 393] with probability > 0.999.
    assert 360 <= hits <= 393, hits


def test_paired_ratio_is_exact_for_a_scaled_policy() -> None:
    rng = np.random.default_rng(7)
    a = _frame([{"bad": True, "values": list(rng.exponential(100.0, 300))}, {"bad": False, "values": [0.0] * 50}])
    b = a.copy()
    b["excess_errors"] = a["excess_errors"] / 10.0
    out = paired(a, b, {0: 0.2, 1: 0.8}, parse_metric("excess_errors.mean"))
    assert out["ratio"].value == pytest.approx(0.1)
    assert out["ratio"].low == pytest.approx(0.1) and out["ratio"].high == pytest.approx(0.1)
    assert out["diff"].value == pytest.approx(-0.9 * out["a"].value)
    assert out["diff"].low < out["diff"].value < out["diff"].high


def test_paired_refuses_different_runs() -> None:
    a = _frame([{"bad": True, "values": [1.0, 2.0]}])
    with pytest.raises(ValueError, match="same runs"):
        paired(a, a.iloc[:1], {0: 1.0}, parse_metric("excess_errors.mean"))


def test_estimates_keyed_by_text() -> None:
    f = _frame([{"bad": True, "values": [1.0, 3.0]}])
    out = estimates(f, {0: 1.0}, [parse_metric("excess_errors.mean"), parse_metric("missed_rate")])
    assert list(out) == ["excess_errors.mean", "missed_rate"] and out["excess_errors.mean"].value == 2.0
