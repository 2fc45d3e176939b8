"""A single-file HTML report of simulated rollouts.

The page is self-contained (inline CSS, figures as ``data:`` URIs, no scripts, no
network), so it can be attached to a CI run or mailed around and still open anywhere.
Rendering goes through Jinja2 with autoescaping on: scenario names and descriptions are
user input and must never become markup.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.figure import Figure

from sim.inputs.scenario import Scenario
from sim.policies.base import MetricQuery, Policy
from sim.report.plots import figure_png_base64, timeline_figure
from sim.stats import format_summary_table, summarize_records

if TYPE_CHECKING:  # only for annotations; records are duck-typed (any object with the fields)
    from sim.outcomes import RunRecord

__all__ = [
    "FigureBlock",
    "figure_block",
    "ScenarioSection",
    "build_section",
    "render_report",
    "write_report",
    "describe_faults",
    "describe_policy",
    "format_quantity",
    "quantity_parts",
    "template_env",
]


@dataclass
class ScenarioSection:
    """Everything the report shows about one scenario.

    Attributes:
        name: scenario name (or the file name when it failed to load).
        description: free text from the scenario file.
        policy: policy name.
        policy_lines: human-readable policy summary, one line each.
        faults: one line per release fault; empty means a good release.
        runs: rollouts simulated.
        seed: root seed.
        summary: ``sim.stats.summarize_records`` output (None on error).
        figure_png: base64 PNG of the run-0 timeline (None: no figure).
        figure_alt: alt text of the figure.
        run0: one-line outcome of run 0 (e.g. "rolled back at 8.0 min").
        source: scenario file path, for the per-scenario reproducing command.
        error: a one-line error; when set the section is shown as a failure.
        details: ``sim.stats.format_summary_table`` text, shown folded.
        described: the scenario file was read (policy and faults are known); False for
            a section built from result records alone.
        command: the shell command that reproduces this section (default: ``pdsim run``
            of ``source``).
    """

    name: str
    description: str = ""
    policy: str = ""
    policy_lines: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    runs: int = 0
    seed: int | None = None
    summary: dict[str, Any] | None = None
    figure_png: str | None = None
    figure_alt: str = ""
    run0: str = ""
    source: str | None = None
    error: str | None = None
    details: str = ""
    described: bool = True
    command: str | None = None


@dataclass
class FigureBlock:
    """A figure of the report's overview: what it shows, and the PNG itself.

    Attributes:
        title: heading above the figure.
        png: base64 PNG (see ``sim.report.plots.figure_png_base64``).
        alt: alt text (what the figure shows, for screen readers).
        caption: how to read it.
    """

    title: str
    png: str
    alt: str
    caption: str = ""


def figure_block(fig: Figure, *, title: str, alt: str, caption: str = "") -> FigureBlock:
    """Render a figure into a report block (PNG embedded as base64)."""
    return FigureBlock(title=title, png=figure_png_base64(fig), alt=alt, caption=caption)


def _num(v: float) -> str:
    return f"{v:g}"


def _duration(seconds: float) -> str:
    """``90`` -> ``1m30s``; the unit syntax scenario files use."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 3600:g}h" if seconds % 3600 == 0 else f"{seconds / 60:g}m"
    return f"{seconds:g}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:g}s"


def describe_faults(scenario: Scenario) -> list[str]:
    """One line per release fault, e.g. ``error_rate: rate=0.05`` (defaults left out)."""
    out = []
    for f in scenario.release.faults:
        d = f.model_dump(exclude_defaults=True)
        kind = d.pop("kind", type(f).__name__)
        parts = []
        for k, v in d.items():
            if k in ("onset", "duration") and isinstance(v, (int, float)):
                v = _duration(float(v))
            parts.append(f"{k}={v}")
        if getattr(f, "onset", 0) == 0:
            parts.append("from the start")
        out.append(f"{kind}: {', '.join(parts)}")
    return out


def _query_line(q: MetricQuery) -> str:
    unit = {"request-success-rate": "%", "request-duration": " ms"}.get(q.signal, "")
    bounds = []
    if q.min is not None:
        bounds.append(f"≥ {_num(q.min)}{unit}")
    if q.max is not None:
        bounds.append(f"≤ {_num(q.max)}{unit}")
    return f"check {q.name} {' and '.join(bounds) or '(no bounds)'} over {_duration(q.window_s)}"


def describe_policy(policy: Policy) -> list[str]:
    """A short human summary of the policy actually run: its strategy settings, then its checks.

    The strategy lines come from the policy itself (``Policy.describe``), so a run under an
    Argo policy is described as Argo even when its scenario also names a Flagger policy.
    """
    return [*policy.describe(), *(_query_line(q) for q in policy.queries())]


def _q(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "…"  # the sample is too small to bound this side
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def quantity_parts(block: Mapping[str, Any] | None) -> tuple[str, str]:
    """``("480", "[470, 490]")`` from a ``{"value","low","high"}`` block.

    ``("n/a", "")`` when there is no value; an unbounded side shows as ``…``.
    """
    if not block or block.get("value") is None:
        return "n/a", ""
    if block.get("low") is None and block.get("high") is None:
        return _q(block["value"]), ""
    return _q(block["value"]), f"[{_q(block.get('low'))}, {_q(block.get('high'))}]"


def format_quantity(block: Mapping[str, Any] | None) -> str:
    """``480 [470, 490]``: a quantity with its interval on one line."""
    value, ci = quantity_parts(block)
    return f"{value} {ci}".strip()


def _run0_line(rec: RunRecord) -> str:
    when = f"{rec.decision_time_s / 60:.1f} min" if rec.decision_time_s is not None else "?"
    if rec.outcome == "rolled_back":
        why = f" ({rec.rollback_reason})" if rec.rollback_reason else ""
        return f"rolled back at {when}{why}"
    if rec.outcome == "promoted":
        return f"promoted at {when}"
    return "unfinished: no decision before the horizon"


def build_section(
    scenario: Scenario,
    policy: Policy,
    records: Sequence[RunRecord],
    trace: Sequence[Mapping[str, Any]],
    *,
    source: str | None = None,
) -> ScenarioSection:
    """Summarise one simulated scenario: statistics, run-0 timeline, descriptions.

    Args:
        scenario: the scenario simulated.
        policy: the policy it ran under.
        records: run records, run 0 first.
        trace: run 0's trace lines.
        source: scenario file path (for the reproducing command).

    Returns:
        A section ready for :func:`render_report`.
    """
    summary = summarize_records([r.as_dict() for r in records])
    rec0 = records[0] if records else None
    run0 = _run0_line(rec0) if rec0 is not None else "no runs"
    fig = timeline_figure(
        trace,
        list(policy.queries()),
        title=f"{scenario.name}, run 0: {run0}",
        fault_onset_s=rec0.fault_onset_s if rec0 is not None else None,
    )
    panels = ", ".join(q.name for q in policy.queries())
    alt = (
        f"Timeline of run 0 of scenario {scenario.name}: canary weight over time"
        f"{', ' + panels + ' against their passing ranges' if panels else ''}, and failed checks; "
        f"{run0}."
    )
    return ScenarioSection(
        name=scenario.name,
        description=scenario.description.strip(),
        policy=policy.name,
        policy_lines=describe_policy(policy),
        faults=describe_faults(scenario),
        runs=len(records),
        seed=scenario.seed,
        summary=summary,
        figure_png=figure_png_base64(fig),
        figure_alt=alt,
        run0=run0,
        source=source,
        details=format_summary_table(summary),
    )


def template_env() -> Environment:
    """The Jinja2 environment of every pdsim page: ``sim/report/templates``, autoescaping on
    (names and descriptions are user input), undefined names an error, the ``qparts`` filter."""
    env = Environment(
        autoescape=True,
        loader=PackageLoader("sim.report", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["qparts"] = quantity_parts
    return env


def render_report(
    sections: Sequence[ScenarioSection],
    *,
    title: str,
    command: str,
    figures: Sequence[FigureBlock] = (),
    intro: str = "",
    notice: str = "",
) -> str:
    """Render the whole report as one self-contained HTML page.

    Args:
        sections: one per scenario, in display order (error sections included).
        title: page title and heading.
        command: the shell command that reproduces the whole report.
        figures: overview figures, shown after the summary table.
        intro: a paragraph on what was simulated, shown under the title.
        notice: a warning shown boxed under the title (e.g. results that look incomplete).

    Returns:
        The HTML text.
    """
    return (
        template_env()
        .get_template("report.html.j2")
        .render(
            sections=list(sections), title=title, command=command, figures=list(figures), intro=intro, notice=notice
        )
    )


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write the page atomically: readers see the old page or the new, never half of one.

    Args:
        path: destination file; its directory is created if needed.
        html: page text.

    Returns:
        The destination path.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file must live in the destination directory (os.replace is atomic
    # only within one filesystem). Not mkstemp: its 0600 mode would make the published
    # page unreadable to others; open(..., "x") honours the umask like a normal write.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
