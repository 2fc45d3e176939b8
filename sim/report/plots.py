"""Matplotlib figures of simulated rollouts.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: pyplot keeps global state (a current figure, an interactive backend) that
leaks memory in long batch jobs and fails on headless CI machines. A bare ``Figure``
renders with the Agg canvas when saved, whatever backend the user has chosen.

Colours are the Okabe–Ito palette, which stays distinguishable under the common forms
of colour blindness; pass/fail is also told apart by marker shape, not colour alone.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.policies.base import MetricQuery
from sim.report.palette import OKABE_ITO
from sim.report.plots_runs import (
    blast_radius_figure,
    detection_cdf_figure,
    false_rollback_figure,
    frontier_figure,
    power_curve_figure,
)

__all__ = [
    "OKABE_ITO",
    "timeline_figure",
    "figure_png_base64",
    "metric_label",
    "detection_cdf_figure",
    "blast_radius_figure",
    "power_curve_figure",
    "frontier_figure",
    "false_rollback_figure",
]

_C = OKABE_ITO

#: Axis labels (with units) of the builtin metric signals.
_SIGNAL_LABELS = {
    "request-success-rate": "success rate (%)",
    "request-duration": "p99 latency (ms)",
}

#: Trace actions drawn as decision lines: action -> (label, colour, line style).
_DECISIONS = {
    "promote": ("promoted", _C["green"], "-"),
    "rollback": ("rolled back", _C["vermillion"], "-"),
}


def metric_label(query: MetricQuery) -> str:
    """Y-axis label with unit for a metric query, e.g. ``success rate (%)``."""
    label = _SIGNAL_LABELS.get(query.signal, query.signal)
    # Name the query too when several queries share a signal or it was renamed.
    return label if query.name == query.signal else f"{query.name}\n{label}"


def _num(v: Any) -> float:
    """A trace value as a float; None (no data) and junk become NaN."""
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _passes(v: float, q: MetricQuery) -> bool:
    return (q.min is None or v >= q.min) and (q.max is None or v <= q.max)


def _steps(ax: Axes, t: Sequence[float], y: Sequence[float], end: float, **kw: Any) -> None:
    """Step plot of a status field from t=0 to ``end``.

    A trace line records the state right after its tick, held until the next tick,
    hence "post" steps. Before the first tick nothing has happened yet (weight and
    counters are 0), and the last state holds to the right edge so a final drop
    (weight back to 0 on rollback) stays visible.
    """
    if not t:
        return
    xs = [0.0, *t, end] if t[0] > 0 else [*t, end]
    ys = [0.0, *y, y[-1]] if t[0] > 0 else [*y, y[-1]]
    ax.step(xs, ys, where="post", **kw)


def _metric_panel(ax: Axes, t: list[float], trace: Sequence[Mapping[str, Any]], q: MetricQuery) -> None:
    """One judged metric: its values, the passing band and the no-data ticks."""
    values = [_num((line.get("metrics") or {}).get(q.name)) for line in trace]
    finite = [v for v in values if not math.isnan(v)]
    bounds = [b for b in (q.min, q.max) if b is not None]
    # Y range from data and thresholds together, so the band edge is always visible.
    pool = finite + bounds
    lo, hi = (min(pool), max(pool)) if pool else (0.0, 1.0)
    pad = (hi - lo) * 0.15 or max(abs(hi) * 0.05, 1.0)
    lo, hi = lo - pad, hi + pad
    if q.signal == "request-success-rate":
        hi = min(hi, 100.5)  # a percentage cannot exceed 100; do not waste space above it
    ax.set_ylim(lo, hi)
    band_lo = q.min if q.min is not None else lo
    band_hi = q.max if q.max is not None else hi
    if bounds:  # a query without bounds always passes: no band to draw
        ax.axhspan(band_lo, band_hi, color=_C["green"], alpha=0.12, lw=0, label="passing range")
    for b in bounds:
        ax.axhline(b, color=_C["green"], lw=1, ls="--")
    if finite:
        ax.plot(t, values, color=_C["blue"], lw=1, alpha=0.6)
        ok = [(ti, v) for ti, v in zip(t, values) if not math.isnan(v) and _passes(v, q)]
        bad = [(ti, v) for ti, v in zip(t, values) if not math.isnan(v) and not _passes(v, q)]
        if ok:
            ax.plot(*zip(*ok), ls="none", marker="o", ms=4, color=_C["blue"], label="pass")
        if bad:
            ax.plot(*zip(*bad), ls="none", marker="X", ms=6, color=_C["vermillion"], label="fail")
    nodata = [ti for ti, v in zip(t, values) if math.isnan(v)]
    if nodata:
        # No data fails a Flagger check when the metric is judged, so show where it was.
        ax.plot(
            nodata,
            [lo + (hi - lo) * 0.06] * len(nodata),
            ls="none",
            marker="|",
            ms=10,
            color=_C["black"],
            label="no data",
        )
    ax.set_ylabel(metric_label(q))
    # Legends sit above their panel, outside the data, so they never hide a point.
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", ncol=4, frameon=False, borderaxespad=0.1
        )


def _decisions(trace: Sequence[Mapping[str, Any]]) -> list[tuple[float, str]]:
    """``(minute, action)`` of every promote/rollback action in the trace."""
    out = []
    for line in trace:
        for act in line.get("actions") or ():
            name = act.get("action") if isinstance(act, Mapping) else None
            if name in _DECISIONS:
                out.append((_num(line.get("t")) / 60.0, name))
    return out


def timeline_figure(
    trace: Sequence[Mapping[str, Any]],
    queries: Sequence[MetricQuery],
    *,
    title: str,
    fault_onset_s: float | None = None,
) -> Figure:
    """The story of one rollout: traffic shift, judged metrics, checks and decisions.

    Panels, top to bottom, sharing a time axis in minutes: canary weight (the
    controller's status) and routed weight (what the router sends); one panel per
    judged metric with its passing band shaded; the failed-check counter. Vertical
    lines mark promotion/rollback decisions and the fault onset.

    Args:
        trace: trace lines of one run (docs/architecture.md section 6), in tick order.
        queries: the policy's metric queries (one panel each).
        title: figure title.
        fault_onset_s: seconds since the revision was applied; None: no fault line.

    Returns:
        A new figure (2 + len(queries) axes). An empty trace yields the same
        layout with a "no policy ticks recorded" note.
    """
    n = 2 + len(queries)
    fig = Figure(figsize=(10, 2.2 + 1.9 * n), layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, height_ratios=[3] + [2.5] * len(queries) + [1.5], squeeze=False)[:, 0]
    fig.suptitle(title, fontsize="large")
    t = [_num(line.get("t")) / 60.0 for line in trace]
    xmax = _x_end(t, fault_onset_s)

    top = axes[0]
    _steps(
        top,
        t,
        [_num(line.get("canary_weight")) for line in trace],
        xmax,
        color=_C["orange"],
        lw=2,
        label="canary weight (status)",
    )
    _steps(
        top,
        t,
        [_num(line.get("routed_weight")) for line in trace],
        xmax,
        color=_C["sky_blue"],
        lw=1.5,
        ls="--",
        label="routed weight (live traffic)",
    )
    top.set_ylim(-3, 105)
    top.set_ylabel("canary traffic (%)")
    top.set_xlim(0, xmax)

    for ax, q in zip(axes[1:-1], queries):
        _metric_panel(ax, t, trace, q)

    bottom = axes[-1]
    failed = [_num(line.get("failed_checks")) for line in trace]
    _steps(bottom, t, failed, xmax, color=_C["purple"], lw=2, label="failed checks")
    finite = [f for f in failed if not math.isnan(f)]
    bottom.set_ylim(-0.3, max(finite + [1.0]) + 0.7)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    bottom.set_ylabel("failed checks\n(count)")
    bottom.set_xlabel("time since new revision applied (min)")

    if not trace:
        top.text(
            0.5,
            0.5,
            "no policy ticks recorded",
            transform=top.transAxes,
            ha="center",
            va="center",
            fontsize="large",
            color=_C["black"],
        )

    marks: list[tuple[float, str, str, str]] = []
    if fault_onset_s is not None:
        marks.append((fault_onset_s / 60.0, "fault onset", _C["black"], ":"))
    marks += [(m, *_DECISIONS[a]) for m, a in _decisions(trace)]
    for m, label, colour, style in marks:
        for ax in axes:
            ax.axvline(m, color=colour, ls=style, lw=1.5, label=None)
        # Label once, in the top panel, on the side of the line with more room.
        right = m < 0.6 * xmax
        top.annotate(
            f"{label} @ {m:.1f} min",
            xy=(m, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3 if right else -3, -4),
            textcoords="offset points",
            rotation=90,
            ha="left" if right else "right",
            va="top",
            fontsize="small",
            color=colour,
        )
    if trace:  # an empty trace has nothing to name
        top.legend(
            loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize="small", ncol=2, frameon=False, borderaxespad=0.1
        )
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig


def _x_end(t: Sequence[float], fault_onset_s: float | None) -> float:
    """Right edge of the time axis (min): one tick-length past the last tick."""
    finite = [x for x in t if not math.isnan(x)]
    if fault_onset_s is not None:
        finite_onset = fault_onset_s / 60.0
    else:
        finite_onset = 0.0
    if not finite:
        return max(1.0, finite_onset * 1.1)
    step = finite[-1] - finite[-2] if len(finite) > 1 else 1.0
    return max(max(finite) + max(step, 0.5), finite_onset * 1.05)


def figure_png_base64(fig: Figure, *, dpi: int = 100) -> str:
    """Render a figure as PNG and return it base64-encoded (for a ``data:`` URI).

    Args:
        fig: the figure.
        dpi: resolution; 100 keeps an embedded report page small.

    Returns:
        ASCII base64 text of the PNG bytes.
    """
    buf = io.BytesIO()
    # No "Software"/date metadata, so the same figure gives the same bytes.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")
