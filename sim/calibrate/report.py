"""The calibration report: recorded and simulated side by side, as one self-contained page.

Built with the report machinery of ``sim.report`` (its Jinja2 templates with autoescaping,
matplotlib figures embedded as base64 PNG, the atomic page writer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.figure import Figure

from sim.calibrate.compare import Statistic, series_for_figures
from sim.calibrate.recording import Recording
from sim.report.html import FigureBlock, figure_block
from sim.report.palette import SERIES_COLOURS
from sim.units import format_duration

PRIMARY, CANARY = SERIES_COLOURS[0], SERIES_COLOURS[1]


def _figures(recorded: Recording, simulated: Recording) -> list[FigureBlock]:
    r, s = series_for_figures(recorded), series_for_figures(simulated)
    blocks = []
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    bins = np.histogram_bin_edges(np.concatenate([r["minutes"], s["minutes"]]), bins=40).tolist()
    for d, color, label in ((r, PRIMARY, "recorded"), (s, CANARY, "simulated")):
        ax.hist(d["minutes"], bins=bins, alpha=0.6, color=color, label=label, density=bool(np.sum(d["minutes"])))
    window = str(r["window"])
    ax.set_xlabel(f"requests per {window}")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    blocks.append(
        figure_block(
            fig,
            title=f"Requests per {window}",
            alt=f"Histograms of recorded and simulated requests per {window}",
            caption=f"Distribution of request counts per {window} over the whole span (the daily cycle included).",
        )
    )
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    for d, color, label in ((r, PRIMARY, "recorded"), (s, CANARY, "simulated")):
        ax.errorbar(
            d["windows_s"], d["dispersion"], yerr=1.96 * d["dispersion_se"], color=color, marker="o", label=label
        )
    ax.set_xscale("log")
    ticks = sorted(set(r["windows_s"].tolist()) | set(s["windows_s"].tolist()))
    ax.set_xticks(ticks, [format_duration(t) for t in ticks])
    ax.minorticks_off()
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("window")
    ax.set_ylabel("variance / mean")
    ax.legend()
    fig.tight_layout()
    blocks.append(
        figure_block(
            fig,
            title="Dispersion index against window",
            alt="Dispersion index of request counts against window length, recorded and simulated",
            caption="Variance over mean of request counts per window around the traffic profile; 1 is Poisson. "
            "Bars: 95% chi-square intervals.",
        )
    )
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    lags = np.arange(1, len(r["acf"]) + 1)
    ax.plot(lags, r["acf"], "o-", color=PRIMARY, label="recorded")
    ax.plot(lags[: len(s["acf"])], s["acf"], "s-", color=CANARY, label="simulated")
    band = 1.96 / np.sqrt(len(recorded.total_requests))
    ax.axhspan(-band, band, color="grey", alpha=0.15, label="±1.96/√n")
    ax.set_xlabel("lag (scrape intervals)")
    ax.set_ylabel("autocorrelation")
    ax.legend()
    fig.tight_layout()
    blocks.append(
        figure_block(
            fig,
            title="Autocorrelation of request counts",
            alt="Autocorrelation of request-count residuals by lag, recorded and simulated",
            caption="Autocorrelation of the Pearson residuals of request counts around the profile.",
        )
    )
    return blocks


def render_calibration(
    recorded: Recording,
    simulated: Recording,
    statistics: Sequence[Statistic],
    *,
    title: str,
    scenario_text: str,
    command: str,
) -> str:
    """The report page: statistics with intervals, a sentence per poor fit, the figures,
    and the scenario written.

    Returns:
        The HTML text.
    """
    env = Environment(
        autoescape=True,
        loader=PackageLoader("sim.report", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("calibration.html.j2").render(
        title=title,
        files=list(recorded.files),
        statistics=list(statistics),
        poor=[s.poor for s in statistics if s.poor],
        figures=_figures(recorded, simulated),
        scenario_text=scenario_text,
        command=command,
        duration_h=f"{recorded.duration_s / 3600:.3g}",
    )


__all__ = ["render_calibration"]
