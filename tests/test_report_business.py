"""Report figures and page sections of A/B business outcomes (issue 19): the data of the
power curve and of regret against time to decide, and ``pdsim report`` pages holding them,
on synthetic records (tests/helpers/business_records)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.report.experiments import (
    POWER_COLUMNS,
    REGRET_TIME_COLUMNS,
    business_runs,
    experiment_figures,
    experiment_power_figure,
    power_curve_data,
    regret_time_data,
    regret_time_figure,
)
from sim.report.results import overview_figures
from sim.runs.store import records_table
from sim.stats import quantile_interval, wilson_interval
from tests.helpers.business_records import business_records
from tests.helpers.cli import invoke


def _frame(*parts: list) -> pd.DataFrame:
    return pd.DataFrame([r.as_dict() for part in parts for r in part])


def _two_policies() -> pd.DataFrame:
    a = business_records([0.0, 0.02, 0.05], 80, seed=1, policy="sequential")
    b = business_records([0.0, 0.02, 0.05], 80, seed=2, policy="fixed", se=0.01, decide_s=3 * 86_400.0)
    return _frame(a, b)


def test_power_curve_data_counts_candidate_winners_per_policy_and_lift():
    frame = _two_policies()
    data = power_curve_data(frame)
    assert list(data.columns) == POWER_COLUMNS
    assert list(zip(data["group"], data["true_lift"])) == [
        (p, lift) for p in ("sequential", "fixed") for lift in (0.0, 0.02, 0.05)
    ]
    for row in data.itertuples():
        sub = frame[(frame["policy"] == row.group) & (frame["true_lift"] == row.true_lift)]
        k = int((sub["winner"] == "candidate").sum())
        assert (row.k, row.n) == (k, len(sub)) == (k, 80)
        assert (row.low, row.high) == wilson_interval(k, 80)
        assert row.rate == k / 80
    # the smaller standard error has the higher power at +2%
    at = data[data["true_lift"] == 0.02].set_index("group")["rate"]
    assert at["fixed"] > at["sequential"]


def test_runs_without_business_outcomes_are_left_out():
    biz = business_records([0.05], 10)
    plain = business_records([0.05], 5, seed=9)
    plain = [r.__class__(**{**r.as_dict(), "winner": None, "true_lift": None}) for r in plain]
    frame = _frame(biz, plain)
    assert len(business_runs(frame)) == 10
    assert power_curve_data(frame)["n"].tolist() == [10]
    assert experiment_figures(_frame(plain)) == []
    assert power_curve_data(_frame(plain)).empty and regret_time_data(_frame(plain)).empty


def test_regret_time_data_means_and_medians_with_intervals():
    frame = _two_policies()
    data = regret_time_data(frame)
    assert list(data.columns) == REGRET_TIME_COLUMNS
    assert len(data) == 6
    for row in data.itertuples():
        sub = frame[(frame["policy"] == row.group) & (frame["true_lift"] == row.true_lift)]
        total = sub["regret_conversions"] + sub["regret_conversions_after_promotion"]
        assert row.regret == pytest.approx(total.mean())
        assert row.regret_low < row.regret < row.regret_high or total.std() == 0
        q = quantile_interval(sub["decision_time_s"].to_numpy(), 0.5)
        assert (row.time_p50_s, row.time_low_s, row.time_high_s) == (q["value"], q["low"], q["high"])
        assert row.n == row.decided == 80
    # A/A runs lose nothing whichever version stays
    assert (data[data["true_lift"] == 0.0]["regret"] == 0.0).all()
    # the slower policy takes longer to decide
    p50 = data.groupby("group")["time_p50_s"].mean()
    assert p50["fixed"] > p50["sequential"]
    revenue = regret_time_data(frame, regret="regret_revenue")
    assert revenue["regret"].to_numpy() == pytest.approx(
        40.0 * regret_time_data(frame, regret="regret_conversions")["regret"].to_numpy()
    )
    with pytest.raises(ValueError):
        regret_time_data(frame, regret="excess_errors")


def test_unbounded_median_side_is_nan_not_inf():
    frame = _frame(business_records([0.05], 3))  # 3 runs cannot bound a median's interval at 95%
    row = regret_time_data(frame).iloc[0]
    assert math.isnan(row["time_low_s"]) and math.isnan(row["time_high_s"])
    regret_time_figure(frame)  # still draws


def test_figures_draw_one_series_per_group():
    frame = _two_policies()
    fig = experiment_power_figure(frame)
    assert len(fig.axes[0].get_legend().get_texts()) == 2
    fig = regret_time_figure(frame, by=None)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["all runs"]


def test_overview_figures_add_the_business_figures_only_for_business_runs():
    frame = _two_policies()
    titles = [b.title for b in overview_figures(frame)]
    assert titles[-2:] == ["Chance of promoting the candidate by true lift", "Regret against time to decide"]
    plain = frame.assign(winner=None, true_lift=np.nan)
    assert "Regret against time to decide" not in [b.title for b in overview_figures(plain)]


def _write_runs(folder, records) -> None:
    folder.mkdir(parents=True)
    pq.write_table(records_table(records), folder / "records-00000.parquet")


def test_pdsim_report_page_holds_the_experiment_table_and_figures(tmp_path):
    aa = business_records([0.0], 60, seed=1, scenario="ab-aa")
    lift = business_records([0.03], 60, seed=2, scenario="ab-lift")
    _write_runs(tmp_path / "res" / "aa", aa)
    _write_runs(tmp_path / "res" / "lift", lift)
    page = tmp_path / "page.html"
    result = invoke("report", tmp_path / "res", "--html", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert 'id="experiments"' in html
    assert "Chance of promoting the candidate by true lift" in html
    assert "Regret against time to decide" in html
    assert html.count("data:image/png;base64,") >= 2
    assert "experiment (business outcomes)" in html  # the sections' statistics
    k = sum(r.winner != "none" for r in aa)
    assert f"{k}/60" in html  # the A/A false winners, in the table


def test_pdsim_report_of_plain_runs_has_no_experiment_section(tmp_path):
    records = business_records([0.0], 20)
    plain = [
        r.__class__(**{**r.as_dict(), **dict.fromkeys(("winner", "true_lift", "correct", "srm"))}) for r in records
    ]
    _write_runs(tmp_path / "res", plain)
    page = tmp_path / "page.html"
    assert invoke("report", tmp_path / "res", "--html", page).exit_code == 0
    html = page.read_text()
    assert 'id="experiments"' not in html and "experiment (business outcomes)" not in html
