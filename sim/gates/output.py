"""What ``pdsim check`` writes: a text summary, JUnit XML for CI, markdown for pull requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sim.gates.decide import GateReport, Verdict

__all__ = ["text_lines", "junit_xml", "markdown"]

_MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
_EMOJI = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "➖"}


def _label(v: Verdict) -> str:
    """``FAIL (inconclusive)`` when the treatment changed what the interval decided."""
    mark = _MARK[v.outcome]
    return f"{mark} (inconclusive)" if v.decision == "inconclusive" else mark


def text_lines(report: GateReport) -> list[str]:
    """One line per requirement and per comparison, then the verdict line."""
    lines = [
        f"gates: {report.name}  policy: {report.policy}"
        + (f"  baseline: {report.baseline}" if report.baseline else "")
        + f"  confidence: {100 * report.confidence:g}%  inconclusive: {report.inconclusive}"
    ]
    for v in report.verdicts:
        lines.append(f"{_label(v):<19} {v.scenario}: {v.requirement} {v.bound}: {v.message}")
    for r in report.regressions:
        mark = "FAIL" if r.significant else "ok"
        lines.append(f"{mark:<19} {r.scenario}: {r.requirement} vs baseline: {r.message}")
    counts = {k: sum(v.outcome == k for v in report.verdicts) for k in _MARK}
    regressions = sum(r.significant for r in report.regressions)
    tail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    if report.regressions:
        tail += f"; {regressions} significant regression{'s' if regressions != 1 else ''}"
    lines.append(f"{'PASSED' if report.passed else 'FAILED'}: {tail}")
    return lines


def junit_xml(report: GateReport) -> str:
    """JUnit XML: one testsuite per gates file, one testcase per requirement and scenario.

    A failed requirement (or an inconclusive one treated as a failure) is a ``<failure>``;
    one treated as a warning, or not applicable, is ``<skipped>`` with the reason, which CI
    pages show apart from passes. Baseline comparisons are testcases of their own; the
    frontier gate is one testcase, a ``<failure type="dominated">`` when it fails.
    """
    cases = []
    for v in report.verdicts:
        case = ET.Element("testcase", classname=f"{report.name}.{v.scenario}", name=f"{v.requirement} {v.bound}")
        if v.outcome == "fail" and v.kind == "frontier":
            ET.SubElement(case, "failure", message=v.message, type="dominated").text = v.message
        elif v.outcome == "fail":
            kind = "inconclusive" if v.decision == "inconclusive" else ("no-data" if v.decision == "n/a" else "bound")
            ET.SubElement(case, "failure", message=v.message, type=kind).text = v.message
        elif v.outcome in ("warn", "skip"):
            ET.SubElement(case, "skipped", message=v.message)
        ET.SubElement(case, "system-out").text = v.message
        cases.append(case)
    for r in report.regressions:
        case = ET.Element(
            "testcase", classname=f"{report.name}.{r.scenario}", name=f"{r.requirement} vs baseline {report.baseline}"
        )
        if r.significant:
            ET.SubElement(case, "failure", message=r.message, type="regression").text = r.message
        ET.SubElement(case, "system-out").text = r.message
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    suites = ET.Element("testsuites", name="pdsim check", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=report.name,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("policy", report.policy),
        ("baseline", report.baseline or ""),
        ("confidence", f"{report.confidence:g}"),
        ("inconclusive", report.inconclusive),
        ("gates_file", report.file),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    suite.extend(cases)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _cell(text: str) -> str:
    """Markdown table cells cannot hold a pipe or a line break."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: GateReport, *, command: str | None = None) -> str:
    """A pull-request comment: verdict, one table row per requirement, comparisons, command."""
    head = "✅ passed" if report.passed else "❌ failed"
    out = [
        f"### pdsim check `{report.name}`: {head}",
        "",
        f"Policy **{_cell(report.policy)}**"
        + (f" against baseline **{_cell(report.baseline)}** (same seeds)" if report.baseline else "")
        + f"; {100 * report.confidence:g}% intervals; inconclusive counts as *{report.inconclusive}*.",
        "",
        "| | scenario | requirement | estimate [interval] | verdict |",
        "|---|---|---|---|---|",
    ]
    requirements = [v for v in report.verdicts if v.kind != "frontier"]
    frontier = [v for v in report.verdicts if v.kind == "frontier"]
    if not requirements:
        out = out[:-3]  # a gates file with the frontier gate alone: no requirements table
    for v in requirements:
        out.append(
            f"| {_EMOJI[v.outcome]} | {_cell(v.scenario)} | `{_cell(v.requirement)}` {_cell(v.bound)} | "
            f"{_cell(v.message.split(': ')[0])} | {_cell(_label(v).lower())} |"
        )
    if report.regressions:
        out += ["", "| | scenario | requirement | changed − baseline |", "|---|---|---|---|"]
        for r in report.regressions:
            out.append(
                f"| {'❌' if r.significant else '✅'} | {_cell(r.scenario)} | `{_cell(r.requirement)}` | "
                f"{_cell(r.message)} |"
            )
    for v in frontier:
        out += ["", f"{_EMOJI[v.outcome]} **Frontier of `{_cell(v.scenario)}`** ({_cell(v.bound)}): {_cell(v.message)}"]
    undecided = [v for v in report.verdicts if v.decision == "inconclusive"]
    if undecided:
        out += ["", "Inconclusive requirements: the interval straddles the bound; raise `runs` in the gates file."]
    if command:
        out += ["", f"Reproduce: `{command}`"]
    return "\n".join(out) + "\n"
