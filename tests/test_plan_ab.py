"""``sim.policies.experiment.plan`` and ``pdsim plan-ab`` (issue 19, item 4).

References, independent of the code under test:

* ``method="pooled"`` is Fleiss, Levin & Paik (2003) eq. 4.14; statsmodels 0.15's
  ``samplesize_proportions_2indep_onetail`` and ``power_proportions_2indep`` compute the same
  formula (pooled variance under H0, unpooled under H1; the sample size ignores the far tail,
  the power counts both): they agree to rounding (relative 1e-9).
* ``method="arcsine"`` and the means are statsmodels' ``NormalIndPower`` (``zt_ind_solve_power``)
  with Cohen's h (``proportion_effectsize``) or ``Δ / sd``. Its power is the same two-tailed
  formula (relative 1e-9); its sample size is solved numerically *with* the far tail, where ours
  is the closed form without it: they agree within relative 1e-4 (the far tail holds about
  Φ(-z_{α/2} - z_{α/2} - z_β) < 1e-5 of the power). Its effect-size solve is looser (about
  3e-4), so the MDE is checked by statsmodels' power at it instead (to 1e-5).
* ``method="unpooled"`` (Chow, Shao & Wang 2008, 4.2.1) is ``NormalIndPower`` fed the effect
  size ``Δ / sqrt((p1 q1 + p2 q2 / k) / (1 + 1/k))``, which turns its common-sd formula into
  the unpooled one (relative 1e-4, as above).
* Simulation: the planned sample, drawn as binomial counts (or conversions with lognormal
  order values) with fixed seeds and analysed by the z-test the plan assumes, rejects with
  the planned power within 4 binomial standard errors, and a sample 20% smaller falls outside.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    proportion_effectsize,
    samplesize_proportions_2indep_onetail,
)

from sim.cli import cli
from sim.policies.experiment import plan
from tests.helpers.cli import cli_runner

RATES = (0.01, 0.03, 0.1, 0.5)
LIFTS = (0.02, 0.1, -0.05)
ALPHAS = (0.05, 0.01)
POWERS = (0.8, 0.9)
RATIOS = (1.0, 0.25, 3.0)
CASES = list(itertools.product(RATES, LIFTS, ALPHAS, POWERS, RATIOS))


@pytest.mark.parametrize(("rate", "lift", "alpha", "power", "ratio"), CASES)
def test_pooled_is_statsmodels_2indep(rate: float, lift: float, alpha: float, power: float, ratio: float) -> None:
    p2 = rate * (1 + lift)
    size = plan.proportion_sample_size(rate, lift, alpha=alpha, power=power, ratio=ratio)
    # statsmodels' group 1 is our control (prop1 = rate), group 2 the candidate; ratio = nobs2 / nobs1.
    ref = samplesize_proportions_2indep_onetail(rate - p2, p2, power, ratio=ratio, alpha=alpha)
    assert size.control == pytest.approx(ref, rel=1e-9)
    assert size.candidate == pytest.approx(ratio * ref, rel=1e-9)
    for n in (size.control, size.control / 3, size.control * 2):
        ours = plan.proportion_power(rate, lift, n, alpha=alpha, ratio=ratio)
        theirs = power_proportions_2indep(rate - p2, p2, n, ratio=ratio, alpha=alpha).power
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("rate", "lift", "alpha", "power", "ratio"), CASES)
def test_arcsine_is_statsmodels_normalindpower(
    rate: float, lift: float, alpha: float, power: float, ratio: float
) -> None:
    h = proportion_effectsize(rate * (1 + lift), rate)
    size = plan.proportion_sample_size(rate, lift, alpha=alpha, power=power, ratio=ratio, method="arcsine")
    ref = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    assert size.control == pytest.approx(ref, rel=1e-4)
    ours = plan.proportion_power(rate, lift, size.control, alpha=alpha, ratio=ratio, method="arcsine")
    theirs = NormalIndPower().power(effect_size=h, nobs1=size.control, alpha=alpha, ratio=ratio)
    assert ours == pytest.approx(theirs, rel=1e-9)


@pytest.mark.parametrize(("rate", "lift", "alpha", "power", "ratio"), CASES)
def test_unpooled_is_normalindpower_with_the_unpooled_sd(
    rate: float, lift: float, alpha: float, power: float, ratio: float
) -> None:
    p2 = rate * (1 + lift)
    sd = math.sqrt((rate * (1 - rate) + p2 * (1 - p2) / ratio) / (1 + 1 / ratio))
    ref = NormalIndPower().solve_power(effect_size=(p2 - rate) / sd, alpha=alpha, power=power, ratio=ratio)
    size = plan.proportion_sample_size(rate, lift, alpha=alpha, power=power, ratio=ratio, method="unpooled")
    assert size.control == pytest.approx(ref, rel=1e-4)


def test_unpooled_by_hand_chow_shao_wang() -> None:
    """The formula of Chow, Shao & Wang 4.2.1 worked by hand: p1 = 0.65, p2 = 0.85, α = 0.05,
    80% power: (1.95996 + 0.84162)² (0.65·0.35 + 0.85·0.15) / 0.2² = 69.67, 70 per arm."""
    size = plan.proportion_sample_size(0.65, 0.2 / 0.65, method="unpooled")
    assert size.control == pytest.approx((1.959964 + 0.841621) ** 2 * 0.355 / 0.04, rel=1e-6)
    assert size.rounded() == (70, 70)


@pytest.mark.parametrize(("lift", "alpha", "power", "ratio"), list(itertools.product(LIFTS, ALPHAS, POWERS, RATIOS)))
def test_means_are_statsmodels_z_test(lift: float, alpha: float, power: float, ratio: float) -> None:
    mean, sd = plan.revenue_per_session(0.03, 40.0, 1.1)
    es = mean * lift / sd
    size = plan.mean_sample_size(mean, sd, lift, alpha=alpha, power=power, ratio=ratio)
    ref = zt_ind_solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio)
    assert size.control == pytest.approx(ref, rel=1e-4)
    ours = plan.mean_power(mean, sd, lift, size.control, alpha=alpha, ratio=ratio)
    assert ours == pytest.approx(NormalIndPower().power(es, size.control, alpha, ratio=ratio), rel=1e-9)
    mde = plan.mean_mde(mean, sd, size.control, alpha=alpha, power=power, ratio=ratio)
    es_ref = NormalIndPower().solve_power(nobs1=size.control, alpha=alpha, power=power, ratio=ratio)
    # statsmodels solves for the effect with a loose root finder (about 3e-4 off): its power at
    # our MDE is the target to 1e-5 (the far tail), its own root within relative 1e-3
    assert NormalIndPower().power(mde * mean / sd, size.control, alpha, ratio=ratio) == pytest.approx(power, abs=1e-5)
    assert mde == pytest.approx(es_ref * sd / mean, rel=1e-3)
    assert mde == pytest.approx(abs(lift), rel=1e-9)  # the MDE at the planned sample is the lift planned for


@pytest.mark.parametrize("method", ["pooled", "unpooled", "arcsine"])
@pytest.mark.parametrize(("rate", "ratio"), [(0.03, 1.0), (0.1, 0.25), (0.5, 3.0)])
def test_mde_inverts_power(method: plan.Method, rate: float, ratio: float) -> None:
    n = plan.proportion_sample_size(rate, 0.05, ratio=ratio, method=method).control
    mde = plan.proportion_mde(rate, n, ratio=ratio, method=method)
    assert plan.proportion_power(rate, mde, n, ratio=ratio, method=method) == pytest.approx(0.8, abs=1e-9)
    # the sample-size formula drops the far tail, so the MDE it implies is the planned lift to ~1e-5
    assert mde == pytest.approx(0.05, rel=1e-4)
    assert plan.proportion_mde(rate, 10.0, ratio=ratio, method=method) == math.inf or rate * (1 + mde) < 1


def test_revenue_per_session_moments_against_scipy_lognorm() -> None:
    rate, median, sigma = 0.03, 40.0, 1.1
    law = stats.lognorm(s=sigma, scale=median)
    mean, sd = plan.revenue_per_session(rate, median, sigma)
    assert mean == pytest.approx(rate * law.mean(), rel=1e-12)
    assert sd**2 == pytest.approx(rate * law.moment(2) - (rate * law.mean()) ** 2, rel=1e-12)


def test_traffic_and_duration() -> None:
    assert plan.ratio_from_split(50) == 1.0
    assert plan.ratio_from_split(20) == 0.25
    assert plan.sessions_per_day(100.0, 5.0) == 1_728_000.0
    size = plan.proportion_sample_size(0.03, 0.02, ratio=0.25)
    # 20% of the traffic fills the candidate's ratio * n exactly when 80% fills the control's n
    days = plan.days_needed(size, 20_000.0, 20)
    assert days == pytest.approx(size.total / 20_000.0, rel=1e-12)
    assert plan.days_needed(size, 20_000.0, 50) == pytest.approx(size.control / 10_000.0, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plan.proportion_sample_size(0.03, 0.0), "lift must be a nonzero"),
        (lambda: plan.proportion_sample_size(1.0, 0.02), "rate must be between 0 and 1"),
        (lambda: plan.proportion_sample_size(0.03, 0.02, power=1.0), "power must be between 0 and 1"),
        (lambda: plan.proportion_sample_size(0.03, 0.02, alpha=0.0), "alpha must be between 0 and 1"),
        (lambda: plan.proportion_sample_size(0.6, 1.0), "outside (0, 1)"),
        (lambda: plan.proportion_sample_size(0.03, 0.02, method="x"), "method must be one of"),  # type: ignore[arg-type]
        (lambda: plan.ratio_from_split(100), "split must be a percent"),
        (lambda: plan.mean_sample_size(1.0, 0.0, 0.02), "sd must be a positive number"),
    ],
)
def test_bad_design_is_one_line_value_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        call()  # type: ignore[operator]
    assert "\n" not in str(info.value)


# --- simulation: the planned sample has the planned power -------------------------------------

REPS = 20_000  # power's binomial sd at 0.8: 0.0028; the tolerance, 4 sd: 0.011


def _simulated_power(rate: float, lift: float, n1: int, n2: int, alpha: float, seed: int) -> float:
    """Share of REPS experiments of n1 and n2 sessions that the pooled two-sided z-test rejects."""
    rng = np.random.default_rng(seed)
    x1 = rng.binomial(n1, rate, REPS)
    x2 = rng.binomial(n2, rate * (1 + lift), REPS)
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    return float(np.mean(np.abs(z) > stats.norm.isf(alpha / 2)))


@pytest.mark.parametrize(
    ("rate", "lift", "alpha", "power", "ratio", "seed"),
    [
        (0.03, 0.02, 0.05, 0.8, 1.0, 1),
        (0.1, 0.05, 0.05, 0.9, 0.25, 2),
        (0.5, -0.02, 0.01, 0.8, 1.0, 3),
        (0.01, 0.1, 0.05, 0.8, 3.0, 4),
    ],
)
def test_planned_sample_has_the_planned_power(
    rate: float, lift: float, alpha: float, power: float, ratio: float, seed: int
) -> None:
    size = plan.proportion_sample_size(rate, lift, alpha=alpha, power=power, ratio=ratio)
    n1, n2 = size.rounded()
    tol = 4 * math.sqrt(power * (1 - power) / REPS)
    assert abs(_simulated_power(rate, lift, n1, n2, alpha, seed) - power) < tol
    # and the check can fail: 20% fewer sessions have visibly less power, as the formula says
    small = plan.proportion_power(rate, lift, 0.8 * size.control, alpha=alpha, ratio=ratio)
    assert power - small > 3 * tol
    simulated_small = _simulated_power(rate, lift, round(0.8 * n1), round(0.8 * n2), alpha, seed + 100)
    assert abs(simulated_small - small) < 4 * math.sqrt(small * (1 - small) / REPS)


def test_planned_revenue_sample_has_the_planned_power() -> None:
    """Revenue per session: conversions ~ Binomial(n, p), each with a lognormal order value; the
    Welch z-test on the sessions' revenue, 4000 experiments (tolerance 4 sd = 0.025). The lift
    scales every order value by 1.2, so the candidate's sd is 1.2 times the control's: planned
    with that sd the power is 0.8; planned with the common sd it is visibly less (0.72)."""
    reps, rate, median, sigma, lift = 4000, 0.03, 40.0, 1.1, 0.2
    mean, sd = plan.revenue_per_session(rate, median, sigma)
    n1, n2 = plan.mean_sample_size(mean, sd, lift, sd_candidate=(1 + lift) * sd).rounded()
    common = plan.mean_sample_size(mean, sd, lift).control
    assert plan.mean_power(mean, sd, lift, common, sd_candidate=(1 + lift) * sd) == pytest.approx(0.717, abs=0.001)
    rng = np.random.default_rng(7)

    def arm(n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
        k = rng.binomial(n, rate, reps)
        values = scale * median * np.exp(sigma * rng.standard_normal(int(k.sum())))
        which = np.repeat(np.arange(reps), k)
        total = np.bincount(which, values, reps)
        squares = np.bincount(which, values**2, reps)
        m = total / n
        return m, (squares / n - m**2) * n / (n - 1)

    m1, v1 = arm(n1, 1.0)
    m2, v2 = arm(n2, 1.0 + lift)  # the lift scales every order value: E[R] rises by the lift
    z = (m2 - m1) / np.sqrt(v1 / n1 + v2 / n2)
    rejected = float(np.mean(np.abs(z) > stats.norm.isf(0.025)))
    assert abs(rejected - 0.8) < 4 * math.sqrt(0.8 * 0.2 / reps)


# --- the command ------------------------------------------------------------------------------


def _run(*args: object) -> tuple[int, str, str]:
    result = cli_runner().invoke(cli, ["plan-ab", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_text() -> None:
    code, out, err = _run("--rate", "0.03", "--lift", "2%", "--sessions-per-day", "20000", "--days", "14")
    assert code == 0, err
    assert "sessions: 1,281,194 control + 1,281,194 candidate = 2,562,388" in out
    assert "traffic: 20,000 sessions/day: 128.1 days" in out
    assert "Fleiss, Levin & Paik 2003, eq. 4.14" in out
    assert "      +2%   0.800   0.153" in out
    assert "at 14 days: 280,000 sessions; power 0.153 at +2%; detects +6.11% with power 0.8" in out


def test_cli_json_matches_the_library() -> None:
    code, out, err = _run(
        "--rate", "0.03", "--lift", "0.05", "--split", "20", "--days", "3", "--sessions-per-day", "1e5", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    size = plan.proportion_sample_size(0.03, 0.05, ratio=0.25)
    assert doc["sessions"] == {
        "control": size.rounded()[0],
        "candidate": size.rounded()[1],
        "total": sum(size.rounded()),
    }
    assert doc["ratio"] == 0.25
    assert doc["days"] == pytest.approx(plan.days_needed(size, 1e5, 20))
    assert [row["lift"] for row in doc["power_curve"]] == pytest.approx([0.025, 0.0375, 0.05, 0.0625, 0.075, 0.1])
    assert doc["power_curve"][2]["power"] == pytest.approx(0.8, abs=1e-5)
    n3 = 3 * 1e5 * 0.8
    assert doc["at_days"]["mde"] == pytest.approx(plan.proportion_mde(0.03, n3, ratio=0.25))
    assert doc["at_days"]["power"] == pytest.approx(plan.proportion_power(0.03, 0.05, n3, ratio=0.25))


def test_cli_order_value() -> None:
    code, out, err = _run(
        "--rate", "0.03", "--lift", "0.02", "--metric", "order_value", "--median", "40", "--sigma", "1.1", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    mean, sd = plan.revenue_per_session(0.03, 40, 1.1)
    assert doc["mean_per_session"] == pytest.approx(mean)
    assert doc["sessions"]["control"] == plan.mean_sample_size(mean, sd, 0.02).rounded()[0] == 4_347_606
    assert doc["days"] is None


def test_cli_scenario_traffic(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: steps\nhorizon: 2h\ntraffic:\n  users: 1000\n"
        "  rate:\n    steps: [{at: 0s, rate: 10/s}, {at: 1h, rate: 30/s}]\n"
    )
    code, out, err = _run(
        "--rate", "0.03", "--lift", "0.1", "--scenario", path, "--requests-per-session", "4", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["sessions_per_day"] == pytest.approx(86400 * 20 / 4)  # the steps' mean over the horizon: 20/s
    assert doc["users"] == 1000
    code, out, _ = _run("--rate", "0.03", "--lift", "0.1", "--scenario", path)
    assert "note: the scenario has 1,000 users" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0.03", "--lift", "0"], "--lift: must be a nonzero relative change"),
        (["--rate", "1.5", "--lift", "0.02"], "--rate: 1.5 is not in the range 0<x<1"),
        (["--rate", "0", "--lift", "0.02"], "--rate: 0.0 is not in the range 0<x<1"),
        (["--rate", "0.03", "--lift", "0.02", "--power", "1"], "--power: 1.0 is not in the range 0<x<1"),
        (["--rate", "0.03", "--lift", "0.02", "--alpha", "0"], "--alpha: 0.0 is not in the range 0<x<1"),
        (["--rate", "0.03", "--lift", "x"], "--lift: must be a nonzero relative change"),
        (["--rate", "0.6", "--lift", "1"], "is outside (0, 1)"),
        (["--rate", "0.03", "--lift", "0.02", "--days", "3"], "--days needs the traffic"),
        (["--rate", "0.03", "--lift", "0.02", "--metric", "order_value"], "needs --median and --sigma"),
        (["--rate", "0.03", "--lift", "0.02", "--scenario", "/nonexistent.yaml"], "cannot read scenario file"),
        (["--rate", "0.03", "--lift", "0.02", "--split", "100"], "--split: 100.0 is not in the range 0<x<100"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = _run(*args)
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
