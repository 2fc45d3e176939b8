"""Tests of sim.report.plots: the run timeline figure.

Traces are written by hand in the docs/architecture.md section 6 format so these tests pin the
figure's behaviour without running the simulator.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.policies.base import MetricQuery
from sim.report.plots import OKABE_ITO, figure_png_base64, metric_label, timeline_figure

SR = MetricQuery("request-success-rate", "request-success-rate", 60.0, min=99.0)
RD = MetricQuery("request-duration", "request-duration", 60.0, max=500.0)


def line(
    tick: int, weight: int, failed: int, sr: float | None, rd: float | None, actions=(), phase: str = "Progressing"
) -> dict:
    return {
        "t": 60.0 * tick,
        "tick": tick,
        "phase": phase,
        "canary_weight": weight,
        "routed_weight": weight,
        "failed_checks": failed,
        "iterations": 0,
        "actions": list(actions),
        "metrics": {"request-success-rate": sr, "request-duration": rd},
        "event": "",
    }


def rollback_trace() -> list[dict]:
    """Shaped like run 0 of scenarios/error-spike.yaml: rolled back at tick 8."""
    out = [
        line(1, 0, 0, None, None, [{"action": "scale_up"}]),
        line(2, 10, 0, None, None, [{"action": "set_weights", "canary_weight": 10, "mirrored": False}]),
    ]
    out += [line(k, 10, k - 2, 94.5, 250.0) for k in range(3, 8)]
    out.append(
        line(
            8,
            0,
            0,
            94.8,
            268.0,
            [
                {"action": "set_weights", "canary_weight": 0, "mirrored": False},
                {"action": "rollback", "reason": "failed checks threshold reached 5"},
                {"action": "finish", "phase": "Failed"},
            ],
            phase="Failed",
        )
    )
    return out


def promote_trace() -> list[dict]:
    out = [line(k, 10 * (k - 1), 0, 99.9, 240.0) for k in range(1, 7)]
    out.append(line(7, 50, 0, 99.8, 250.0, [{"action": "promote"}], phase="Promoting"))
    return out


def vlines_at(ax, x: float) -> list[Line2D]:
    """Vertical lines (axvline) of an axes at data x."""
    return [
        ln
        for ln in ax.get_lines()
        if len(ln.get_xdata()) == 2 and list(ln.get_xdata()) == [x, x] and tuple(ln.get_ydata()) == (0, 1)
    ]


def span_y(patch) -> tuple[float, float]:
    """Data y-extent of an axhspan (a Rectangle since matplotlib 3.9, a Polygon before)."""
    if hasattr(patch, "get_height"):
        return patch.get_y(), patch.get_y() + patch.get_height()
    ys = patch.get_xy()[:, 1]
    return min(ys), max(ys)


def texts(fig: Figure) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [t.get_text() for t in ax.texts]
    return "\n".join(parts)


def test_axes_count_and_labels_with_units():
    fig = timeline_figure(rollback_trace(), [SR, RD], title="error-spike run 0", fault_onset_s=0.0)
    axes = fig.axes
    assert len(axes) == 4  # weights + one per query + failed checks
    labels = [ax.get_ylabel() for ax in axes]
    assert labels[0] == "canary traffic (%)"
    assert labels[1] == "success rate (%)"
    assert labels[2] == "p99 latency (ms)"
    assert "failed checks" in labels[3] and "(count)" in labels[3]
    assert axes[-1].get_xlabel() == "time since new revision applied (min)"
    assert fig._suptitle.get_text() == "error-spike run 0"
    # Time axis in minutes, starting at the revision apply.
    assert axes[0].get_xlim()[0] == 0 and axes[0].get_xlim()[1] >= 8.0


def test_axes_count_follows_queries():
    assert len(timeline_figure(rollback_trace(), [SR], title="x").axes) == 3
    assert len(timeline_figure(rollback_trace(), [], title="x").axes) == 2


def test_rollback_decision_line_in_every_panel():
    fig = timeline_figure(rollback_trace(), [SR, RD], title="t")
    for ax in fig.axes:
        lines = vlines_at(ax, 8.0)
        assert lines, f"no decision line on {ax.get_ylabel()!r}"
        assert lines[0].get_color() == OKABE_ITO["vermillion"]
    assert "rolled back @ 8.0 min" in texts(fig)
    assert "promoted" not in texts(fig)


def test_promote_decision_and_fault_onset_lines():
    fig = timeline_figure(promote_trace(), [SR, RD], title="t", fault_onset_s=150.0)
    top = fig.axes[0]
    assert vlines_at(top, 7.0) and vlines_at(top, 2.5)
    assert "promoted @ 7.0 min" in texts(fig)
    assert "fault onset @ 2.5 min" in texts(fig)


def test_passing_band_shaded_from_query_bounds():
    fig = timeline_figure(rollback_trace(), [SR, RD], title="t")
    sr_ax, rd_ax = fig.axes[1], fig.axes[2]
    # axhspan patches: success rate band starts at min=99, duration band ends at max=500.
    assert span_y(sr_ax.patches[0])[0] == pytest.approx(99.0)
    assert span_y(rd_ax.patches[0])[1] == pytest.approx(500.0)
    # The failing success-rate points are drawn (as "fail" markers).
    assert any(ln.get_label() == "fail" for ln in sr_ax.get_lines())


def test_none_metric_values_are_no_data_markers():
    trace = [line(k, 10, 0, None, None) for k in range(1, 5)]
    fig = timeline_figure(trace, [SR, RD], title="all no data")
    for ax in fig.axes[1:3]:
        nodata = [ln for ln in ax.get_lines() if ln.get_label() == "no data"]
        assert nodata and len(nodata[0].get_xdata()) == 4
    assert figure_png_base64(fig)  # renders


def test_mixed_none_and_values_and_missing_keys():
    trace = rollback_trace()
    del trace[3]["metrics"]["request-duration"]  # a metric absent from the line: no data too
    trace[4]["metrics"] = None
    fig = timeline_figure(trace, [SR, RD], title="gaps")
    assert len(fig.axes) == 4
    figure_png_base64(fig)


def test_empty_trace_is_graceful():
    fig = timeline_figure([], [SR, RD], title="nothing", fault_onset_s=None)
    assert len(fig.axes) == 4
    assert "no policy ticks recorded" in texts(fig)
    png = base64.b64decode(figure_png_base64(fig))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_png_base64_roundtrip_and_deterministic():
    fig = timeline_figure(rollback_trace(), [SR, RD], title="t", fault_onset_s=0.0)
    a, b = figure_png_base64(fig), figure_png_base64(fig)
    assert base64.b64decode(a, validate=True).startswith(b"\x89PNG")
    assert a == b


def test_metric_label_names_renamed_queries():
    q = MetricQuery("error-rate-eu", "request-success-rate", 60.0, min=99.0)
    assert metric_label(q) == "error-rate-eu\nsuccess rate (%)"


def test_module_does_not_touch_pyplot():
    # pyplot's global figure registry leaks memory in batch jobs; the module must not need it.
    code = "import sys, sim.report.plots; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_query_without_bounds_has_no_band():
    q = MetricQuery("request-duration", "request-duration", 60.0)
    fig = timeline_figure([], [q], title="unbounded")
    assert not fig.axes[1].patches
