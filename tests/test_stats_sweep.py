"""Bootstrap, stratified and paired estimates (sim.stats) and sweep summaries (sim.sweeps.costs).

Statistical properties are checked with fixed seeds and enough repetitions to fail when
the property is false (coverage far from nominal, a biased estimate).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from sim.stats import (
    FEW_PAIRED_VALUES,
    bootstrap_quantile_interval,
    mcnemar,
    paired_difference,
    pareto_front,
    stratified_mean,
    stratified_rate,
    wilson_interval,
)
from sim.sweeps.costs import cell_summary, frontier, paired_comparison, policy_costs


def rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


# --- bootstrap quantiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.5, 0.9, 0.37])
def test_order_statistic_bootstrap_is_the_resampling_bootstrap(q: float) -> None:
    """The Beta draws give the same bootstrap distribution as resampling n values (two-sample
    KS on 4000 replicates each), for numpy's 'linear' quantile including interpolation."""
    x = rng(1).lognormal(0, 1, size=57)
    n, B = x.size, 4000
    naive = np.quantile(x[rng(2).integers(0, n, size=(B, n))], q, axis=1, method="linear")
    xs = np.sort(x)
    h = (n - 1) * q
    j, g = int(h), h - int(h)
    g2 = rng(3)
    u1 = g2.beta(j + 1, n - j, size=B)
    u2 = u1 + (1 - u1) * g2.beta(1, n - j - 1, size=B)
    fast = xs[np.ceil(n * u1).astype(int) - 1] * (1 - g) + xs[np.ceil(n * u2).astype(int) - 1] * g
    # Rounded: the two sides compute equal values in different orders (1-ulp apart), and
    # KS would count those as distinct values at every tie.
    assert st.ks_2samp(np.round(naive, 10), np.round(fast, 10)).pvalue > 0.01
    # and the function's interval is the percentile interval of that distribution
    got = bootstrap_quantile_interval(x, q, rng(4), n_boot=20000)
    lo, hi = np.quantile(naive, [0.025, 0.975])
    assert got["value"] == pytest.approx(np.quantile(x, q))
    assert abs(got["low"] - lo) <= 0.05 * (hi - lo) + 1e-12 or got["low"] == lo
    assert abs(got["high"] - hi) <= 0.05 * (hi - lo) + 1e-12 or got["high"] == hi


def test_bootstrap_quantile_coverage_and_determinism() -> None:
    truth = math.log(2)  # median of Exponential(1)
    gen = rng(7)
    hits = 0
    reps = 400
    for _ in range(reps):
        x = gen.exponential(1.0, size=200)
        r = bootstrap_quantile_interval(x, 0.5, gen, n_boot=1000)
        hits += r["low"] <= truth <= r["high"]
    assert 0.91 <= hits / reps <= 0.985  # nominal 0.95; a broken interval is far off
    x = rng(8).normal(size=100)
    assert bootstrap_quantile_interval(x, 0.9, rng(5)) == bootstrap_quantile_interval(x, 0.9, rng(5))
    empty = bootstrap_quantile_interval(np.array([np.nan]), 0.5, rng(5))
    assert empty == {"value": None, "low": None, "high": None, "n": 0}


# --- stratified estimates -------------------------------------------------------------------------------


def test_stratified_rate_reduces_to_wilson_and_covers() -> None:
    one = stratified_rate([7], [50], [1.0])
    assert (one["low"], one["high"]) == pytest.approx(wilson_interval(7, 50))
    assert stratified_rate([0, 0], [10, 0], [0.5, 0.5])["n_eff"] == pytest.approx(10)
    # Coverage of the weighted rate sum w_s p_s with unequal strata.
    p, w, n = np.array([0.02, 0.2, 0.5]), np.array([0.7, 0.2, 0.1]), np.array([300, 200, 100])
    truth = float(np.sum(w * p))
    gen = rng(11)
    hits = 0
    for _ in range(1000):
        k = gen.binomial(n, p)
        r = stratified_rate(k, n, w)
        hits += r["low"] <= truth <= r["high"]
    assert 0.92 <= hits / 1000 <= 0.98


def test_stratified_mean_weights_strata() -> None:
    r = stratified_mean([10.0, 20.0], [4.0, 9.0], [100, 100], [0.75, 0.25])
    assert r["value"] == pytest.approx(12.5)
    half = 1.959963984540054 * math.sqrt(0.75**2 * 4 / 100 + 0.25**2 * 9 / 100)
    assert (r["low"], r["high"]) == pytest.approx((12.5 - half, 12.5 + half))
    assert stratified_mean([1.0, 5.0], [1.0, 1.0], [10, 0], [0.5, 0.5])["value"] == 1.0


# --- paired estimates ---------------------------------------------------------------------------------


def test_paired_difference_coverage_and_common_random_numbers() -> None:
    gen = rng(21)
    hits, paired_w, unpaired_w = 0, [], []
    for _ in range(300):
        noise = gen.normal(0, 10, size=200)  # shared by both arms: common random numbers
        a = 5 + noise + gen.normal(0, 1, size=200)
        b = 4 + noise + gen.normal(0, 1, size=200)
        r = paired_difference(a, b, gen, n_boot=500)
        hits += r["low"] <= 1.0 <= r["high"]
        paired_w.append(r["high"] - r["low"])
        unpaired_w.append(2 * 1.96 * math.sqrt(a.var(ddof=1) / 200 + b.var(ddof=1) / 200))
    assert 0.91 <= hits / 300 <= 0.98
    # Pairing removes the shared noise: intervals several times narrower than unpaired ones.
    assert np.mean(paired_w) < 0.2 * np.mean(unpaired_w)
    same = paired_difference(np.arange(5.0), np.arange(5.0), rng(1))
    assert (same["diff"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_difference(np.ones(3), np.ones(4), rng(1))


def test_mcnemar_exact() -> None:
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 58, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 58, dtype=bool)
    r = mcnemar(a, b)
    assert (r["a_only"], r["b_only"]) == (10, 2)
    # Two-sided exact binomial test of 10 of 12 at 1/2: 2 * P(X >= 10) = 2 * 79 / 4096.
    assert r["p_value"] == pytest.approx(2 * 79 / 4096)
    assert mcnemar(a, a)["p_value"] == 1.0


def test_pareto_front() -> None:
    x = [1, 2, 3, 2, 5, np.nan]
    y = [5, 3, 1, 4, 0.5, 0]
    assert pareto_front(x, y) == [0, 1, 2, 4]  # (2, 4) is dominated by (2, 3); NaN never on it
    assert pareto_front([1, 1], [2, 2]) == [0, 1]  # ties dominate neither


# --- sweep summaries ----------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    """Two policies over a good world (weight 0.8) and a bad one (0.2), 4 runs each."""
    rows = []
    for p, (fr, exc_bad, t) in {"A": (1, 100.0, 300.0), "B": (0, 300.0, 200.0)}.items():
        for world, bad, weight in ((0, False, 0.8), (1, True, 0.2)):
            for k in range(4):
                rolled = (fr > k) if not bad else k < 3
                rows.append(
                    {
                        "cell": 2 * world + (p == "B"),
                        "scenario": f"w{world}",
                        "policy": p,
                        "run": k,
                        "seed": k,
                        "world": world,
                        "weight": weight,
                        "release_bad": bad,
                        "outcome": "rolled_back" if rolled else "promoted",
                        "decision_time_s": t + k if not rolled else 60.0,
                        "detection_time_s": 60.0 if rolled and bad else np.nan,
                        "excess_errors": (exc_bad + k) if bad else 0.0,
                        "users_affected": 0.0,
                        "canary_requests": 1000.0 + k,
                        "false_rollback": rolled and not bad,
                        "missed": bad and not rolled,
                    }
                )
    return pd.DataFrame(rows)


def test_policy_costs_are_weighted_over_worlds() -> None:
    costs = policy_costs(_frame()).set_index("policy")
    assert costs.loc["A", "excess_errors"] == pytest.approx(0.2 * 101.5)
    assert costs.loc["A", "blast_radius_bad"] == pytest.approx(101.5)
    assert costs.loc["A", "false_rollback_rate"] == pytest.approx(0.25)
    assert costs.loc["B", "false_rollback_rate"] == 0.0
    assert costs.loc["A", "missed_rate"] == pytest.approx(0.25)
    # Time to promote: promoted good runs only (A promoted runs 1..3: 301, 302, 303).
    assert costs.loc["A", "time_to_promote_s"] == pytest.approx(302.0)
    assert costs.loc["B", "time_to_promote_s"] == pytest.approx(201.5)
    front = frontier(policy_costs(_frame()), ceiling=1.0)
    assert set(front["policy"]) == {"A", "B"}  # A: smaller blast radius, B: faster promotion
    assert list(frontier(policy_costs(_frame()), ceiling=0.2, bound="rate")["policy"]) == ["B"]


def test_cell_summary_rates_and_quantiles() -> None:
    cells = cell_summary(_frame(), n_boot=200).set_index("cell")
    assert cells.loc[2, "detection"] == 0.75 and cells.loc[2, "missed"] == 0.25
    assert (cells.loc[0, "false_rollback_low"], cells.loc[0, "false_rollback_high"]) == pytest.approx(
        wilson_interval(1, 4)
    )
    assert cells.loc[2, "excess_errors_p50"] == pytest.approx(101.5)
    assert cells.loc[2, "excess_errors_p50_low"] <= 101.5 <= cells.loc[2, "excess_errors_p50_high"]


@pytest.mark.parametrize("levels", [3, 40, FEW_PAIRED_VALUES + 100])
def test_paired_difference_of_discrete_outcomes_covers(levels: int) -> None:
    """Few distinct differences (rates: -1, 0, 1) are bootstrapped by their counts, many by
    resampling indexes: both intervals cover the true difference at their level and have
    the width of the differences' standard error."""
    gen = rng(5)
    hits, widths = 0, []
    n = 400
    for _ in range(300):
        a = gen.integers(0, levels, size=n).astype(float)
        b = np.where(gen.random(n) < 0.5, a, gen.integers(0, levels, size=n)).astype(float)
        r = paired_difference(a, b, gen, n_boot=400)
        hits += r["low"] <= 0.0 <= r["high"]
        widths.append((r["high"] - r["low"]) / (2 * 1.96 * np.std(a - b, ddof=1) / math.sqrt(n)))
    assert 0.91 <= hits / 300 <= 0.98, hits
    assert 0.9 <= np.mean(widths) <= 1.1, np.mean(widths)


def test_paired_comparison_needs_the_same_runs() -> None:
    f = _frame()
    a, b = f[f["policy"] == "A"].iloc[:4], f[f["policy"] == "B"].iloc[:4]
    r = paired_comparison(a, b, n_boot=100)
    assert r["rates"]["false_rollback"]["a"]["k"] == 1 and r["rates"]["false_rollback"]["b"]["k"] == 0
    with pytest.raises(ValueError, match="same runs"):
        paired_comparison(a, b.iloc[:3])
