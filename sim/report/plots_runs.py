"""Figures over many runs: detection-time CDFs, blast radius, power, trade-offs.

Every function takes a tidy frame (one row per simulated rollout: the run-record columns
of docs/architecture.md section 5 plus parameter columns, as ``sim.runs.runner.records_frame`` or a
sweep's results give it) and returns a new :class:`matplotlib.figure.Figure`; nothing is
shown or saved (see ``sim.report.plots`` for why pyplot is not used). Every rate is drawn with
its Wilson interval and every mean with its Student-t interval, so a reader never
mistakes Monte Carlo noise for a difference between settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from sim.report.palette import OKABE_ITO, series_style
from sim.report.tradeoffs import (
    BLAST_RADIUS,
    PARETO,
    PROMOTE_TIME,
    bool_column,
    format_value,
    group_items,
    tradeoff_table,
)
from sim.stats import mean_interval, wilson_interval

__all__ = [
    "detection_cdf_figure",
    "blast_radius_figure",
    "power_curve_figure",
    "frontier_figure",
    "false_rollback_figure",
]

#: Horizontal boxes: ``orientation`` since matplotlib 3.10 (``vert`` is deprecated there).
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)

#: Detection CDFs draw their confidence bands only up to this many curves.
_MAX_BANDS = 4

#: Axis labels (with units) of the record columns.
COLUMN_LABELS = {
    "excess_errors": "excess errors (requests)",
    "users_affected": "users affected (users)",
    "canary_errors": "canary errors (requests)",
    "canary_requests": "canary requests (requests)",
    "users_exposed": "users exposed (users)",
    "detection_time_s": "detection time (min)",
    "decision_time_s": "decision time (min)",
}


def _figure(title: str, size: tuple[float, float] = (8.0, 4.8)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    fig.suptitle(title, fontsize="large")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _empty(ax: Axes, why: str) -> None:
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize="large")


def _pct_ci(k: int, n: int, confidence: float) -> str:
    low, high = wilson_interval(k, n, confidence)
    return f"{100 * k / n:.0f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        raise KeyError(f"no column {col!r} in the results")
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)


def _rollbacks_by(frame: pd.DataFrame, column: str, confidence: float) -> list[tuple[Any, int, int, float, float]]:
    """Per value of ``column`` (sorted): the value, runs rolled back, runs, and the Wilson
    interval of the rollback rate."""
    out = []
    for value, cell in frame.groupby(column, sort=True):
        n = len(cell)
        k = int((cell["outcome"].astype(str) == "rolled_back").sum())
        low, high = wilson_interval(k, n, confidence)
        out.append((value, k, n, low, high))
    return out


def detection_cdf_figure(
    frame: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "policy",
    title: str = "Time to detect a bad release",
    confidence: float = 0.95,
) -> Figure:
    """Empirical CDF of detection time per group, over the bad-release runs.

    Runs that never rolled back stay in the denominator, so each curve levels off at its
    group's detection rate (named in the legend with its Wilson interval). The shaded band
    is the Dvoretzky–Kiefer–Wolfowitz band: it holds the whole true CDF at ``confidence``.

    Args:
        frame: one row per run (``release_bad``, ``detection_time_s`` used).
        by: column(s) whose values are the curves (None: one curve).
        title: figure title.
        confidence: level of the band and the intervals.
    """
    fig, ax = _figure(title)
    bad = frame[bool_column(frame, "release_bad")] if len(frame) else frame
    ax.set_xlabel("time from fault onset to rollback (min)")
    ax.set_ylabel("share of bad releases rolled back")
    ax.set_ylim(-0.02, 1.02)
    if bad.empty:
        _empty(ax, "no bad-release runs: nothing to detect")
        return fig
    eps = math.sqrt(math.log(2.0 / (1.0 - confidence)) / 2.0)
    t_max = 0.0
    curves = []
    for label, sub in group_items(bad, by):
        times = np.sort(_floats(sub, "detection_time_s")) / 60.0
        times = times[~np.isnan(times)]
        curves.append((label, times, len(sub)))
        if times.size:
            t_max = max(t_max, float(times[-1]))
    t_end = max(t_max * 1.08, 1.0)
    for i, (label, times, n) in enumerate(curves):
        style = series_style(i)
        xs = np.concatenate([[0.0], times, [t_end]])
        ys = np.concatenate([[0.0], np.arange(1, times.size + 1) / n, [times.size / n]])
        ax.step(
            xs,
            ys,
            where="post",
            color=style["color"],
            linestyle=style["linestyle"],
            lw=2,
            label=f"{label}: detected {_pct_ci(times.size, n, confidence)}, n={n}",
        )
        if len(curves) <= _MAX_BANDS:  # more bands than this overlap into mud
            band = eps / math.sqrt(n)
            ax.fill_between(
                xs,
                np.clip(ys - band, 0, 1),
                np.clip(ys + band, 0, 1),
                step="post",
                color=style["color"],
                alpha=0.12,
                lw=0,
            )
    ax.set_xlim(0, t_end)
    legend = {"fontsize": "small", "title": f"detection rate [{100 * confidence:g}% CI]", "title_fontsize": "small"}
    if len(curves) <= 3:
        ax.legend(loc="lower right", **legend)
    else:  # many curves: the legend goes under the axes, where it hides nothing
        longest = max(len(str(label)) for label, _, _ in curves)
        ncol = 2 if longest <= 40 else 1  # long labels side by side would run off the figure
        fig.set_size_inches(8.0, 4.8 + 0.2 * ((len(curves) + ncol - 1) // ncol))
        fig.legend(loc="outside lower center", ncol=ncol, frameon=False, **legend)
    return fig


def blast_radius_figure(
    frame: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "policy",
    column: str = "excess_errors",
    only_bad: bool = True,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Distribution of the blast radius per group: box (quartiles, whiskers at 5% and 95%)
    and the mean with its Student-t interval (diamond and bar).

    Means matter for cost (a promoted bad release's ``after_promotion`` damage sits in the
    tail); boxes show what a typical run costs. The axis turns logarithmic (symlog, so zero
    stays visible) when the values span more than two orders of magnitude.

    Args:
        frame: one row per run.
        by: column(s) whose values are the rows of the figure.
        column: the harm measured (``excess_errors``, ``users_affected``...).
        only_bad: keep only the bad-release runs (a good release's harm is noise).
        title: figure title (default: from the column).
        confidence: level of the mean's interval.
    """
    label = COLUMN_LABELS.get(column, column)
    data = frame[bool_column(frame, "release_bad")] if only_bad and len(frame) else frame
    groups = [(g, _floats(sub, column)) for g, sub in group_items(data, by)] if len(data) else []
    groups = [(g, v[~np.isnan(v)]) for g, v in groups]
    groups = [(g, v) for g, v in groups if v.size]
    height = max(3.0, 1.2 + 0.55 * len(groups))
    fig, ax = _figure(title or f"Blast radius: {label}" + (" per bad release" if only_bad else ""), size=(8.0, height))
    ax.set_xlabel(label)
    if not groups:
        _empty(ax, "no bad-release runs" if only_bad else "no runs")
        return fig
    positions = np.arange(len(groups))[::-1]
    for pos, (i, (g, v)) in zip(positions, enumerate(groups)):
        colour = series_style(i)["color"]
        ax.bxp(
            [
                {
                    "med": np.median(v),
                    "q1": np.percentile(v, 25),
                    "q3": np.percentile(v, 75),
                    "whislo": np.percentile(v, 5),
                    "whishi": np.percentile(v, 95),
                    "fliers": [],
                    "label": g,
                }
            ],
            positions=[pos],
            **_HORIZONTAL,
            widths=0.5,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": colour, "alpha": 0.35, "edgecolor": colour},
            medianprops={"color": OKABE_ITO["black"]},
            whiskerprops={"color": colour},
            capprops={"color": colour},
        )
        m = mean_interval(v, confidence)
        if m["low"] is not None:
            ax.errorbar(
                [m["value"]],
                [pos],
                xerr=[[m["value"] - m["low"]], [m["high"] - m["value"]]],
                fmt="D",
                color=OKABE_ITO["black"],
                ms=6,
                capsize=4,
                zorder=5,
            )
        else:
            ax.plot([m["value"]], [pos], "D", color=OKABE_ITO["black"], ms=6, zorder=5)
    ax.set_yticks(positions, [f"{g}\n(n={v.size})" for g, v in groups])
    values = np.concatenate([v for _, v in groups])
    positive = values[values > 0]
    if positive.size and positive.max() / max(positive.min(), 1e-12) > 100:
        ax.set_xscale("symlog", linthresh=max(1.0, float(np.percentile(positive, 5))))
    ax.plot([], [], "D", color=OKABE_ITO["black"], label=f"mean [{100 * confidence:g}% CI]")
    fig.legend(
        loc="outside lower center",
        fontsize="small",
        ncol=2,
        frameon=False,
        title="box: quartiles and median; whiskers: 5% and 95%",
        title_fontsize="small",
    )
    return fig


def power_curve_figure(
    frame: pd.DataFrame,
    *,
    severity: str,
    by: str | Sequence[str] | None = "policy",
    severity_label: str | None = None,
    log_x: bool | None = None,
    title: str = "Detection probability by fault severity",
    confidence: float = 0.95,
) -> Figure:
    """Detection probability (share of bad releases rolled back) against fault severity.

    Args:
        frame: one row per run, with a ``severity`` column (e.g. the injected error rate).
        severity: the column holding the fault's size.
        by: column(s) whose values are the curves.
        severity_label: x-axis label with its unit (default: the column name).
        log_x: logarithmic x axis; None: when the severities span more than a decade.
        title: figure title.
        confidence: level of the Wilson intervals (error bars).
    """
    fig, ax = _figure(title)
    ax.set_xlabel(severity_label or severity)
    ax.set_ylabel("detection probability")
    ax.set_ylim(-0.03, 1.03)
    bad = frame[bool_column(frame, "release_bad")] if len(frame) else frame
    if bad.empty:
        _empty(ax, "no bad-release runs")
        return fig
    sev = _floats(bad, severity)
    for i, (label, sub) in enumerate(group_items(bad, by)):
        xs, ys, lo, hi = [], [], [], []
        for x, k, n, low, high in _rollbacks_by(sub, severity, confidence):
            xs.append(float(cast(float, x)))  # a group key of the severity column: a number
            ys.append(k / n)
            lo.append(k / n - low)
            hi.append(high - k / n)
        style = series_style(i)
        ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, lw=1.8, ms=5, label=label, **style)
    positive = sev[sev > 0]
    if log_x or (log_x is None and positive.size and positive.max() / positive.min() > 10):
        ax.set_xscale("log")
        # Plain numbers at the severities simulated, not powers of ten between them.
        ticks = np.unique(positive)
        if ticks.size <= 12:
            ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(
        loc="lower right",
        fontsize="small",
        title=f"error bars: {100 * confidence:g}% Wilson interval",
        title_fontsize="small",
    )
    return fig


def frontier_figure(
    frame: pd.DataFrame,
    params: Sequence[str],
    *,
    title: str = "Speed against harm: time to promote vs expected blast radius",
    confidence: float = 0.95,
    max_labels: int = 8,
    weight: str | None = None,
    stratum: str = "scenario",
) -> Figure:
    """Each parameter setting as a point: mean time to promote a good release (x) against
    the mean blast radius of a bad one (y), both with intervals; the Pareto frontier (no
    other setting is faster *and* less harmful) is drawn and labelled.

    Args:
        frame: one row per run over a release portfolio (good and bad releases), with the
            parameter columns.
        params: the columns that define a setting (e.g. ``["interval", "threshold"]``).
        title: figure title.
        confidence: level of the intervals.
        max_labels: label at most this many frontier points (the fastest first).
        weight: portfolio share column: means weighted by release (see
            :func:`sim.report.tradeoffs.tradeoff_table`).
        stratum: the column that names a release of the portfolio.
    """
    table = (
        tradeoff_table(frame, params, confidence=confidence, weight=weight, stratum=stratum)
        if len(frame)
        else pd.DataFrame()
    )
    fig, ax = _figure(title, size=(9.0, 5.6))
    ax.set_xlabel("time to promote a good release, mean (min)")
    ax.set_ylabel("blast radius of a bad release,\nmean excess errors (requests)")
    usable = table.dropna(subset=[PROMOTE_TIME, BLAST_RADIUS]) if len(table) else table
    if usable.empty:
        _empty(ax, "needs good releases that were promoted and bad releases")
        return fig

    def err(col: str, scale: float = 1.0) -> np.ndarray:
        v, lo, hi = (usable[c].to_numpy(dtype=float) / scale for c in (col, f"{col}_low", f"{col}_high"))
        return np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)

    x = usable[PROMOTE_TIME].to_numpy(dtype=float) / 60.0
    y = usable[BLAST_RADIUS].to_numpy(dtype=float)
    front = usable[PARETO].to_numpy(dtype=bool)
    others = ~front
    ax.errorbar(
        x[others],
        y[others],
        xerr=err(PROMOTE_TIME, 60.0)[:, others],
        yerr=err(BLAST_RADIUS)[:, others],
        fmt="o",
        mfc="none",
        color="#8a8a8a",
        ms=6,
        capsize=2,
        lw=0.8,
        label="dominated setting",
    )
    order = np.argsort(x[front])
    fx, fy = x[front][order], y[front][order]
    ax.errorbar(
        fx,
        fy,
        xerr=err(PROMOTE_TIME, 60.0)[:, front][:, order],
        yerr=err(BLAST_RADIUS)[:, front][:, order],
        fmt="o",
        color=OKABE_ITO["vermillion"],
        ms=7,
        capsize=3,
        lw=1.2,
        label="Pareto frontier",
    )
    ax.step(fx, fy, where="post", color=OKABE_ITO["vermillion"], lw=1.2, ls="--")
    rows = usable[front].iloc[order]
    x_lo, x_hi = float(np.nanmin(x)), float(np.nanmax(x))
    for (_, row), px, py in list(zip(rows.iterrows(), fx, fy))[:max_labels]:
        text = ", ".join(f"{p}={format_value(row[p])}" for p in params)
        # Labels of points in the right part of the plot go to their left, inside the axes.
        left = x_hi > x_lo and (px - x_lo) > 0.6 * (x_hi - x_lo)
        ax.annotate(
            text,
            (px, py),
            xytext=(-6 if left else 6, 6),
            textcoords="offset points",
            ha="right" if left else "left",
            fontsize="x-small",
            color=OKABE_ITO["black"],
        )
    if (y > 0).all() and y.max() / y.min() > 30:
        ax.set_yscale("log")
    ax.legend(
        loc="upper right", fontsize="small", title=f"bars: {100 * confidence:g}% intervals", title_fontsize="small"
    )
    return fig


def false_rollback_figure(
    frame: pd.DataFrame,
    *,
    x: str,
    by: str | Sequence[str] | None = None,
    x_label: str | None = None,
    title: str = "False rollbacks of good releases",
    confidence: float = 0.95,
) -> Figure:
    """False-rollback rate (good releases rolled back) against a threshold setting.

    Args:
        frame: one row per run, with the ``x`` parameter column.
        x: the setting on the x axis (e.g. ``threshold``, the failed checks tolerated).
        by: column(s) whose values are separate curves (e.g. the metric threshold).
        x_label: x-axis label with unit (default: the column name).
        title: figure title.
        confidence: level of the Wilson intervals.
    """
    fig, ax = _figure(title)
    ax.set_xlabel(x_label or x)
    ax.set_ylabel("false rollback rate (%)")
    good = frame[~bool_column(frame, "release_bad")] if len(frame) else frame
    if good.empty:
        _empty(ax, "no good-release runs")
        return fig
    if x not in good:
        raise KeyError(f"no column {x!r} in the results")
    numeric = pd.api.types.is_numeric_dtype(good[x])
    for i, (label, sub) in enumerate(group_items(good, by)):
        xs: list[Any] = []  # the setting's own values (numbers or labels)
        ys, lo, hi = [], [], []
        for value, k, n, low, high in _rollbacks_by(sub, x, confidence):
            xs.append(value if numeric else str(value))
            ys.append(100 * k / n)
            lo.append(100 * (k / n - low))
            hi.append(100 * (high - k / n))
        ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, lw=1.8, ms=5, label=label, **series_style(i))
    ax.set_ylim(bottom=-1)
    ax.legend(
        loc="upper right",
        fontsize="small",
        title=f"error bars: {100 * confidence:g}% Wilson interval",
        title_fontsize="small",
    )
    return fig
