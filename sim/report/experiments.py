"""Figures of A/B experiments' business outcomes (issue 19): the power curve and regret
against time to decide.

Each figure has a data function that returns the numbers it draws (tested directly) and a
figure function that draws them (``sim.report.plots_runs``'s conventions: a new
:class:`~matplotlib.figure.Figure`, nothing shown or saved, every rate with its Wilson
interval, every mean with its Student-t interval, every median with its order-statistic
interval, from ``sim.stats``).

Runs without business outcomes (a null ``winner``: a scenario without ``business:``) are
left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.report.html import FigureBlock, figure_block
from sim.report.palette import series_style
from sim.report.tradeoffs import group_items
from sim.stats import BUSINESS_QUANTITIES, business_quantity, mean_interval, quantile_interval, wilson_interval

__all__ = [
    "POWER_COLUMNS",
    "REGRET_TIME_COLUMNS",
    "business_runs",
    "power_curve_data",
    "regret_time_data",
    "experiment_power_figure",
    "regret_time_figure",
    "experiment_figures",
]

#: Columns of :func:`power_curve_data`.
POWER_COLUMNS = ["group", "true_lift", "k", "n", "rate", "low", "high"]
#: Columns of :func:`regret_time_data`.
REGRET_TIME_COLUMNS = [
    "group",
    "true_lift",
    "n",
    "regret",
    "regret_low",
    "regret_high",
    "time_p50_s",
    "time_low_s",
    "time_high_s",
    "decided",
]


def business_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs with business outcomes: a ``winner`` and a ``true_lift``."""
    if "winner" not in frame or "true_lift" not in frame:
        return frame.iloc[:0]
    lift = pd.to_numeric(frame["true_lift"], errors="coerce")
    keep = frame["winner"].map(lambda w: isinstance(w, str)).to_numpy(dtype=bool) & lift.notna().to_numpy()
    return frame[keep]


def power_curve_data(
    frame: pd.DataFrame, *, by: str | Sequence[str] | None = "policy", confidence: float = 0.95
) -> pd.DataFrame:
    """P(winner == candidate) per group and true lift, with its Wilson interval.

    At a true lift of 0 the rate is the share of A/A runs that crowned the candidate (half
    the false-winner rate of a symmetric test); below 0 it is the rate of shipping a loser.

    Args:
        frame: one row per run (records, possibly of several scenarios and sweep cells).
        by: column(s) whose values are the curves (None: one curve).
        confidence: level of the intervals.

    Returns:
        One row per (group, true lift), lifts ascending within a group, columns
        :data:`POWER_COLUMNS` (``rate`` = k / n).
    """
    runs = business_runs(frame)
    rows = []
    for label, sub in group_items(runs, by) if len(runs) else []:
        lift = pd.to_numeric(sub["true_lift"], errors="coerce").to_numpy(dtype=float)
        candidate = (sub["winner"].astype(str) == "candidate").to_numpy()
        for value in np.unique(lift):
            at = lift == value
            k, n = int(np.count_nonzero(candidate & at)), int(at.sum())
            low, high = wilson_interval(k, n, confidence)
            rows.append((label, float(value), k, n, k / n, low, high))
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def regret_time_data(
    frame: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "policy",
    regret: str = "regret_conversions_total",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group and true lift: mean regret (Student-t interval) and median time to decide
    (order-statistic interval).

    Args:
        frame: one row per run.
        by: column(s) whose values are the series (None: one series).
        regret: a regret of :data:`sim.stats.BUSINESS_QUANTITIES` (default: conversions lost
            during the rollout and after promotion).
        confidence: level of the intervals.

    Returns:
        One row per (group, true lift), columns :data:`REGRET_TIME_COLUMNS`. The decision
        time is over runs with one (``decided`` of the ``n`` runs; an inconclusive run that
        stopped at its max duration has one); an interval side the sample cannot bound
        is NaN.

    Raises:
        ValueError: when ``regret`` is not a business quantity.
    """
    if regret not in BUSINESS_QUANTITIES:
        raise ValueError(f"not a business quantity: {regret!r}")
    runs = business_runs(frame)
    rows = []
    for label, sub in group_items(runs, by) if len(runs) else []:
        lift = pd.to_numeric(sub["true_lift"], errors="coerce").to_numpy(dtype=float)
        loss = business_quantity(sub, regret)
        time = (
            pd.to_numeric(sub["decision_time_s"], errors="coerce").to_numpy(dtype=float)
            if "decision_time_s" in sub
            else np.full(len(sub), np.nan)
        )
        for value in np.unique(lift):
            at = lift == value
            m = mean_interval(loss[at], confidence)
            q = quantile_interval(time[at], 0.5, confidence)

            rows.append(
                (
                    label,
                    float(value),
                    int(at.sum()),
                    _num(m["value"]),
                    _num(m["low"]),
                    _num(m["high"]),
                    _num(q["value"]),
                    _num(q["low"]),
                    _num(q["high"]),
                    int(q["n"]),
                )
            )
    return pd.DataFrame(rows, columns=REGRET_TIME_COLUMNS)


def _num(v: float | None) -> float:
    """A number of an interval, NaN for a missing or unbounded one (a frame holds no None)."""
    return float("nan") if v is None or not np.isfinite(v) else float(v)


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.subplots()
    fig.suptitle(title, fontsize="large")
    ax.grid(True, alpha=0.3)
    return fig, ax


def experiment_power_figure(
    frame: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "policy",
    confidence: float = 0.95,
    title: str = "Chance of promoting the candidate by true lift",
) -> Figure:
    """The power curve of :func:`power_curve_data`: one line per group, Wilson error bars
    and bands, the true lift in percent."""
    data = power_curve_data(frame, by=by, confidence=confidence)
    fig, ax = _figure(title)
    ax.set_xlabel("true relative lift of the primary metric (%)")
    ax.set_ylabel("P(winner = candidate)")
    ax.set_ylim(-0.03, 1.03)
    if data.empty:
        ax.text(0.5, 0.5, "no runs with business outcomes", transform=ax.transAxes, ha="center", va="center")
        return fig
    for i, (label, sub) in enumerate(data.groupby("group", sort=False)):
        x = 100.0 * sub["true_lift"].to_numpy()
        y = sub["rate"].to_numpy()
        lo, hi = sub["low"].to_numpy(), sub["high"].to_numpy()
        style = series_style(i)
        ax.errorbar(x, y, yerr=[y - lo, hi - y], capsize=3, lw=1.8, ms=5, label=str(label), **style)
        if len(sub) > 1:
            ax.fill_between(x, lo, hi, color=style["color"], alpha=0.12, lw=0)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.legend(
        loc="upper left",
        fontsize="small",
        title=f"bars, bands: {100 * confidence:g}% Wilson interval",
        title_fontsize="small",
    )
    return fig


def regret_time_figure(
    frame: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "policy",
    regret: str = "regret_conversions_total",
    confidence: float = 0.95,
    title: str = "Regret against time to decide",
) -> Figure:
    """:func:`regret_time_data` drawn: x the median time to decide (days), y the mean
    regret, both with interval bars; one colour per group, each point labelled with its
    true lift."""
    data = regret_time_data(frame, by=by, regret=regret, confidence=confidence)
    fig, ax = _figure(title)
    ax.set_xlabel("median time to decide (days)")
    ax.set_ylabel(f"mean {regret.replace('_', ' ')} per run")
    if data.empty:
        ax.text(0.5, 0.5, "no runs with business outcomes", transform=ax.transAxes, ha="center", va="center")
        return fig
    day = 86_400.0
    for i, (label, sub) in enumerate(data.groupby("group", sort=False)):
        x = sub["time_p50_s"].to_numpy() / day
        y = sub["regret"].to_numpy()
        # An unbounded side (NaN) draws no bar on that side.
        xerr = [
            np.nan_to_num(x - sub["time_low_s"].to_numpy() / day),
            np.nan_to_num(sub["time_high_s"].to_numpy() / day - x),
        ]
        yerr = [np.nan_to_num(y - sub["regret_low"].to_numpy()), np.nan_to_num(sub["regret_high"].to_numpy() - y)]
        style = series_style(i)
        ax.errorbar(
            x,
            y,
            xerr=xerr,
            yerr=yerr,
            capsize=3,
            ms=6,
            ls="none",
            label=str(label),
            color=style["color"],
            marker=style["marker"],
        )
        for xi, yi, lift in zip(x, y, sub["true_lift"]):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(
                    f"{100 * lift:+.1f}%", (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize="x-small"
                )
    ax.legend(
        loc="best",
        fontsize="small",
        title=f"bars: {100 * confidence:g}% intervals; labels: true lift",
        title_fontsize="small",
    )
    return fig


def experiment_figures(frame: pd.DataFrame, *, by: str | Sequence[str] | None = "policy") -> list[FigureBlock]:
    """The report blocks of the business figures, none when no run has business outcomes.

    Args:
        frame: the runs.
        by: the grouping of curves and points (``pdsim report``: the policy settings swept,
            else the policy).
    """
    if business_runs(frame).empty:
        return []
    cols = by if isinstance(by, str) or by is None else " and ".join(by)
    return [
        figure_block(
            experiment_power_figure(frame, by=by),
            title="Chance of promoting the candidate by true lift",
            alt=f"Share of runs whose winner was the candidate against the true relative lift, one curve per {cols}, "
            "with Wilson intervals",
            caption="At a true lift of 0 (A/A) the height is the rate of crowning the candidate falsely; above 0 it "
            "is the power at that lift; below 0 the rate of shipping a loser. Bars and bands: 95% Wilson intervals.",
        ),
        figure_block(
            regret_time_figure(frame, by=by),
            title="Regret against time to decide",
            alt=f"Mean conversions lost per run against the median time to decide, per {cols} and true lift",
            caption="Regret: conversions lost against always serving the truly better version, during the rollout "
            "and in the after_promotion window. Bars: 95% intervals (Student-t for the mean, order statistics for "
            "the median).",
        ),
    ]
