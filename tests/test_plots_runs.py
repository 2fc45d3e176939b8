"""Tests of the many-run figures (sim.report.plots_runs) and the per-setting tables behind them
(sim.report.tradeoffs), on hand-made tidy frames whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from sim.report.palette import OKABE_ITO, series_style
from sim.report.plots import (
    blast_radius_figure,
    detection_cdf_figure,
    false_rollback_figure,
    figure_png_base64,
    frontier_figure,
    power_curve_figure,
)
from sim.report.tradeoffs import pareto_mask, tradeoff_table
from sim.stats import wilson_interval


def runs(
    policy: str, bad: bool, outcomes: list[str], *, detection=None, excess=None, decision=None, **params
) -> pd.DataFrame:
    n = len(outcomes)
    return pd.DataFrame(
        {
            "scenario": "s",
            "policy": policy,
            "run": range(n),
            "outcome": outcomes,
            "release_bad": bad,
            "detection_time_s": detection if detection is not None else [np.nan] * n,
            "excess_errors": excess if excess is not None else [0.0] * n,
            "users_affected": [0.0] * n,
            "decision_time_s": decision if decision is not None else [420.0] * n,
            **{k: [v] * n for k, v in params.items()},
        }
    )


def step_lines(fig: Figure):
    return [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 2]


def test_detection_cdf_levels_off_at_the_detection_rate():
    frame = pd.concat(
        [
            runs("A", True, ["rolled_back"] * 3 + ["promoted"], detection=[60.0, 120.0, 180.0, np.nan]),
            runs("B", True, ["rolled_back"] * 2, detection=[300.0, 300.0]),
            runs("A", False, ["rolled_back"] * 5, detection=[1.0] * 5),  # good releases: not counted
        ]
    )
    fig = detection_cdf_figure(frame, by="policy")
    a, b = step_lines(fig)
    assert list(a.get_ydata())[-1] == pytest.approx(0.75) and list(b.get_ydata())[-1] == pytest.approx(1.0)
    assert list(a.get_xdata())[1:4] == [1.0, 2.0, 3.0]  # minutes
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    lo, hi = wilson_interval(3, 4)
    assert labels[0] == f"A: detected 75% [{100 * lo:.1f}, {100 * hi:.1f}], n=4"
    assert fig.axes[0].get_xlabel().endswith("(min)")
    figure_png_base64(fig)  # renders


def test_blast_radius_box_and_mean_per_group():
    frame = pd.concat(
        [
            runs("A", True, ["rolled_back"] * 4, excess=[10.0, 20.0, 30.0, 40.0]),
            runs("B", True, ["rolled_back"] * 2, excess=[100.0, 300.0]),
            runs("A", False, ["promoted"] * 3, excess=[1e6] * 3),
        ]
    )  # good runs left out
    fig = blast_radius_figure(frame, by="policy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A\n(n=4)", "B\n(n=2)"]
    means = sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_marker() == "D" and len(ln.get_xdata()))
    assert means == [25.0, 200.0]
    assert ax.get_xlabel() == "excess errors (requests)"


def test_power_curve_points_are_detection_rates_by_severity():
    frame = pd.concat(
        [
            runs("A", True, ["rolled_back"] * k + ["promoted"] * (10 - k), severity=s)
            for s, k in ((0.01, 2), (0.02, 6), (0.05, 10))
        ]
    )
    fig = power_curve_figure(frame, severity="severity", severity_label="error rate of the release")
    line = next(ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 3)
    assert list(line.get_xdata()) == [0.01, 0.02, 0.05]
    assert list(line.get_ydata()) == pytest.approx([0.2, 0.6, 1.0])
    assert fig.axes[0].get_ylabel() == "detection probability"


def test_false_rollback_rate_against_threshold():
    frame = pd.concat(
        [
            runs("A", False, ["rolled_back"] * k + ["promoted"] * (20 - k), threshold=t)
            for t, k in ((1, 8), (3, 2), (5, 0))
        ]
    )
    fig = false_rollback_figure(frame, x="threshold")
    line = next(ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 3)
    assert list(line.get_xdata()) == [1, 3, 5]
    assert list(line.get_ydata()) == pytest.approx([40.0, 10.0, 0.0])
    assert "(%)" in fig.axes[0].get_ylabel()
    with pytest.raises(KeyError):
        false_rollback_figure(frame, x="stepWeight")


def test_pareto_mask():
    x = [1, 2, 3, 2, np.nan, 1]
    y = [5, 3, 1, 4, 0, 5]
    # (2, 4) is dominated by (2, 3); the duplicate (1, 5)s dominate neither each other.
    assert list(pareto_mask(x, y)) == [True, True, True, False, False, True]


def test_tradeoff_table_and_frontier_figure():
    frame = pd.concat(
        [
            # fast and harmful: promotes in 5 min, 100 excess errors per bad release
            runs("p", False, ["promoted"] * 10, decision=[300.0] * 10, threshold=1),
            runs("p", True, ["rolled_back"] * 10, excess=[100.0] * 10, threshold=1),
            # slow and careful
            runs("p", False, ["promoted"] * 9 + ["rolled_back"], decision=[900.0] * 10, threshold=5),
            runs("p", True, ["rolled_back"] * 10, excess=[20.0] * 10, threshold=5),
            # slow and harmful: dominated
            runs("p", False, ["promoted"] * 10, decision=[900.0] * 10, threshold=9),
            runs("p", True, ["rolled_back"] * 10, excess=[150.0] * 10, threshold=9),
        ]
    )
    table = tradeoff_table(frame, ["threshold"])
    assert list(table["threshold"]) == [1, 5, 9]
    assert list(table["promote_time_s"]) == [300.0, 900.0, 900.0]
    assert list(table["blast_radius"]) == [100.0, 20.0, 150.0]
    assert list(table["pareto"]) == [True, True, False]
    assert list(table["false_rollback_rate_k"]) == [0, 1, 0] and set(table["false_rollback_rate_n"]) == {10}
    fig = frontier_figure(frame, ["threshold"])
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == ["threshold=1", "threshold=5"]  # the frontier, labelled fastest first
    assert "(min)" in fig.axes[0].get_xlabel() and "(requests)" in fig.axes[0].get_ylabel()


@pytest.mark.parametrize(
    "make",
    [
        lambda f: detection_cdf_figure(f),
        lambda f: blast_radius_figure(f),
        lambda f: power_curve_figure(f, severity="severity"),
        lambda f: false_rollback_figure(f, x="threshold"),
        lambda f: frontier_figure(f, []),
    ],
)
def test_empty_results_give_a_figure_with_a_note(make):
    fig = make(runs("A", False, [])[:0])
    assert isinstance(fig, Figure) and fig.axes[0].texts


def test_series_colours_are_okabe_ito_and_styles_differ():
    palette = {v.lower() for v in OKABE_ITO.values()}
    styles = [series_style(i) for i in range(12)]
    assert {s["color"].lower() for s in styles} <= palette
    # Series that share a colour never share a line style too.
    assert len({(s["color"], s["linestyle"]) for s in styles}) == 12
    frame = pd.concat([runs(p, True, ["rolled_back"], detection=[60.0]) for p in "ABCDE"])
    for ln in step_lines(detection_cdf_figure(frame)):
        assert to_hex(ln.get_color()) in palette


def test_tradeoff_table_weights_a_portfolio_by_stratum():
    # Two bad releases: a common one (weight 0.9, 10 excess errors) and a rare one (weight
    # 0.1, 1000): the expected blast radius is 0.9*10 + 0.1*1000 = 109, whatever the runs per
    # release; the unweighted mean over runs would say (10*30 + 1000*10)/40 = 257.5.
    common = runs("p", True, ["rolled_back"] * 30, excess=[9.0, 11.0] * 15, world="common", weight=0.9)
    rare = runs("p", True, ["promoted"] * 10, excess=[990.0, 1010.0] * 5, world="rare", weight=0.1)
    good = runs("p", False, ["promoted"] * 20, decision=[300.0] * 20, world="good", weight=1.0)
    frame = pd.concat([common, rare, good], ignore_index=True)
    plain = tradeoff_table(frame, [])
    assert plain["blast_radius"].iloc[0] == pytest.approx(257.5)
    weighted = tradeoff_table(frame, [], weight="weight", stratum="world")
    row = weighted.iloc[0]
    assert row["blast_radius"] == pytest.approx(109.0)
    assert row["blast_radius_low"] < 109.0 < row["blast_radius_high"]
    assert row["promote_time_s"] == pytest.approx(300.0)
