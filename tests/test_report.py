"""Tests of sim.report.html (the HTML page) and sim.report.demo (the command that writes it).

Most tests build sections from hand-written records and traces, so they pin the page
without running the simulator; ``test_demo_end_to_end`` runs the real thing once.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim.policies.base import MetricQuery
from sim.report.demo import main as demo_main
from sim.report.html import ScenarioSection, build_section, format_quantity, render_report, write_report
from sim.report.plots import figure_png_base64, timeline_figure
from sim.stats import summarize_records
from tests.helpers import SCENARIOS
from tests.helpers import parse_page as parse
from tests.helpers.browser import chromium, needs_chromium

QUERIES = [
    MetricQuery("request-success-rate", "request-success-rate", 60.0, min=99.0),
    MetricQuery("request-duration", "request-duration", 60.0, max=500.0),
]
COMMAND = "python -m sim.report.demo --out reports --runs 300"
EVIL = "<script>alert(1)</script>"

SCENARIO_YAML = """\
name: tiny-spike
description: A 5% error spike <b>from the start</b>.
traffic: {rate: 50/s, users: 1000}
release:
  faults:
    - {kind: error_rate, rate: 0.05, onset: 30s}
policy:
  flagger:
    analysis:
      interval: 1m
      threshold: 2
      maxWeight: 50
      stepWeight: 10
      metrics:
        - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
        - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}
runs: 3
seed: 7
"""


def record(run: int, outcome: str, bad: bool, detection: float | None) -> dict:
    return {
        "scenario": "s",
        "policy": "p",
        "run": run,
        "seed": run,
        "outcome": outcome,
        "release_bad": bad,
        "decision_time_s": 480.0,
        "detection_time_s": detection,
        "canary_requests": 3000.0,
        "canary_errors": 150.0 if bad else 3.0,
        "excess_errors": 147.0 if bad else 0.0,
        "users_exposed": 1400.0,
        "users_affected": 100.0 if bad else 0.0,
        "false_rollback": outcome == "rolled_back" and not bad,
        "missed": outcome == "promoted" and bad,
        "excess_errors_after_promotion": 0.0,
        "fault_onset_s": 0.0 if bad else None,
        "final_phase": "Failed" if outcome == "rolled_back" else "Succeeded",
        "ticks": 8,
        "rollback_reason": "failed checks threshold reached 5" if outcome == "rolled_back" else "",
    }


def trace() -> list[dict]:
    lines = []
    for k in range(1, 9):
        acts = [{"action": "rollback", "reason": "threshold"}] if k == 8 else []
        lines.append(
            {
                "t": 60.0 * k,
                "tick": k,
                "phase": "Progressing",
                "canary_weight": 10 if 1 < k < 8 else 0,
                "routed_weight": 10 if 1 < k < 8 else 0,
                "failed_checks": max(0, k - 2),
                "iterations": 0,
                "actions": acts,
                "event": "",
                "metrics": {
                    "request-success-rate": None if k < 3 else 94.0,
                    "request-duration": None if k < 3 else 250.0,
                },
            }
        )
    return lines


def section(name: str, description: str, bad: bool) -> ScenarioSection:
    recs = [record(i, "rolled_back" if bad or i == 0 else "promoted", bad, 480.0 if bad else None) for i in range(20)]
    fig = timeline_figure(trace(), QUERIES, title=f"{name} run 0", fault_onset_s=0.0 if bad else None)
    return ScenarioSection(
        name=name,
        description=description,
        policy="scenario-policy",
        policy_lines=["check request-success-rate ≥ 99% over 1m"],
        faults=["error_rate: rate=0.05, from the start"] if bad else [],
        runs=len(recs),
        seed=42,
        summary=summarize_records(recs),
        figure_png=figure_png_base64(fig),
        figure_alt=f"Timeline of run 0 of {name}",
        run0="rolled back at 8.0 min",
        source=f"scenarios/{name}.yaml",
    )


@pytest.fixture(scope="module")
def two_sections() -> list[ScenarioSection]:
    return [
        section("error-spike", f"Fails 5% of requests. {EVIL}", True),
        section("good-release", "No fault & no worries.", False),
    ]


@pytest.fixture(scope="module")
def html(two_sections) -> str:
    return render_report(two_sections, title="pdsim test report", command=COMMAND)


def test_summary_table_has_one_row_per_scenario(html):
    page = parse(html)
    assert len(page.rows) == 2
    text = " ".join(page.text)
    assert "error-spike" in text and "good-release" in text
    assert "100.0%" in text  # detection rate of the bad release


def test_one_png_image_per_scenario(html):
    imgs = parse(html).imgs
    assert len(imgs) == 2
    for img in imgs:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG")
        assert img.get("alt", "").startswith("Timeline of run 0")


def test_command_and_description_present(html):
    text = " ".join(parse(html).text)
    assert COMMAND in text
    assert "pdsim run scenarios/error-spike.yaml --runs 20 --seed 42" in text
    assert "none: a good release" in text


def test_user_text_is_autoescaped(html):
    page = parse(html)
    assert page.scripts == 0  # the report itself has no scripts, so any would be injected
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL in " ".join(page.text)  # shown to the reader as text
    assert "No fault &amp; no worries." in html


def test_self_contained(html):
    # No external resources: the page must open offline and from a mail attachment.
    for needle in ("http://", "https://", "<link", 'src="http'):
        assert needle not in html


def test_error_section_is_a_row_not_a_crash(two_sections):
    bad = ScenarioSection(name="broken.yaml", error="scenarios/broken.yaml:3: bogus: unknown key (got 1)")
    html = render_report([*two_sections, bad], title="t", command="c")
    page = parse(html)
    assert len(page.rows) == 3 and page.rows[-1].get("class") == "error"
    assert len(page.imgs) == 2
    assert "bogus: unknown key" in " ".join(page.text)


def test_format_quantity_open_intervals():
    assert format_quantity({"value": 480.0, "low": 470.0, "high": None}) == "480 [470, …]"
    assert format_quantity({"value": None}) == "n/a"
    assert format_quantity({"value": 1.5, "low": None, "high": None}) == "1.5"


def test_write_report_atomic_and_readable(tmp_path):
    dest = tmp_path / "out" / "report.html"
    write_report(dest, "<p>one</p>")
    write_report(dest, "<p>two</p>")
    assert dest.read_text(encoding="utf-8") == "<p>two</p>"
    assert [p.name for p in dest.parent.iterdir()] == ["report.html"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask


def test_build_section_from_scenario_file(tmp_path):
    from sim.inputs.policy import scenario_policy
    from sim.inputs.scenario import load_scenario

    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO_YAML)
    scenario = load_scenario(path)
    policy = scenario_policy(scenario)
    recs = [
        SimpleNamespace(
            **record(i, "rolled_back", True, 450.0), as_dict=lambda i=i: record(i, "rolled_back", True, 450.0)
        )
        for i in range(3)
    ]
    s = build_section(scenario, policy, recs, trace(), source="scenarios/tiny.yaml")
    assert s.error is None and s.runs == 3 and s.seed == 7
    assert s.faults == ["error_rate: onset=30s, rate=0.05"]
    assert any("maxWeight 50%" in ln and "after 2 failed checks" in ln for ln in s.policy_lines)
    assert "check request-duration ≤ 500 ms over 1m" in s.policy_lines
    assert s.run0.startswith("rolled back at 8.0 min")
    assert base64.b64decode(s.figure_png).startswith(b"\x89PNG")
    page = parse(render_report([s], title="t", command="c"))
    assert "A 5% error spike <b>from the start</b>." in " ".join(page.text)


def test_describe_policy_is_the_policys_own_description_then_its_checks(tmp_path):
    from sim.inputs.policy import scenario_policy
    from sim.inputs.scenario import load_scenario
    from sim.report.html import describe_policy

    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO_YAML)
    policy = scenario_policy(load_scenario(path))
    assert describe_policy(policy) == [
        "Flagger canary: every 1m, stepWeight 10% up to maxWeight 50%, rollback after 2 failed checks",
        "check request-success-rate ≥ 99% over 1m",
        "check request-duration ≤ 500 ms over 1m",
    ]


def test_demo_without_scenario_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert demo_main(["--out", "reports"]) == 2
    assert "no scenario directory" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_demo_reports_broken_scenario_as_error_row(tmp_path, monkeypatch, capsys):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "broken.yaml").write_text("name: broken\ntraffic: {rate: 10/s}\nbogus: 1\n")
    monkeypatch.chdir(tmp_path)
    assert demo_main(["--out", "reports", "--runs", "2"]) == 2
    out, err = capsys.readouterr()
    assert out.strip() == str(Path("reports") / "demo.html")
    assert "[1/1] broken.yaml: ERROR scenarios/broken.yaml:3: bogus: unknown key" in err
    page = parse((tmp_path / "reports" / "demo.html").read_text(encoding="utf-8"))
    assert len(page.rows) == 1 and page.rows[0].get("class") == "error"


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    """Real simulation of a bundled scenario plus a broken one, few runs."""
    (tmp_path / "scenarios").mkdir()
    shutil.copy(SCENARIOS / "error-spike.yaml", tmp_path / "scenarios")
    (tmp_path / "scenarios" / "zz-broken.yaml").write_text("name: [\n")
    monkeypatch.chdir(tmp_path)
    assert demo_main(["--out", "reports", "--runs", "5", "--sweep-runs", "5"]) == 2  # 2: one scenario was bad input
    err = capsys.readouterr().err
    assert "[1/2] error-spike.yaml: 5 runs, run 0 " in err, err
    page = parse((tmp_path / "reports" / "demo.html").read_text(encoding="utf-8"))
    assert [r.get("class") for r in page.rows] == [None, "error"]
    # The timeline of error-spike, its detection CDF and blast radius, and the power curve
    # (the other sweeps need good-release, which is not in this directory).
    alts = [img["alt"] for img in page.imgs]
    assert len(alts) == 4 and sum(a.startswith("Timeline of run 0") for a in alts) == 1
    assert any("against the release's error rate" in a for a in alts)


def test_demo_covers_every_bundled_scenario_with_all_figures(tmp_path):
    """`make demo` in small: every bundled scenario has its row and timeline, and the page
    has all seven overview figures (detection CDFs, blast radius, false rollbacks, power,
    frontier; the A/B rules' power curve and regret against time to decide)."""
    out = tmp_path / "reports"
    assert demo_main(["--out", str(out), "--runs", "20", "--sweep-runs", "10", "--scenarios", str(SCENARIOS)]) == 0
    page = parse((out / "demo.html").read_text(encoding="utf-8"))
    bundled = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    assert len(page.rows) == len(bundled)
    assert all(r.get("class") is None for r in page.rows)
    alts = [img["alt"] for img in page.imgs]
    timelines = [a for a in alts if a.startswith("Timeline of run 0 of scenario ")]
    assert sorted(a.split()[6].rstrip(":,") for a in timelines) == bundled
    overview = [a for a in alts if not a.startswith("Timeline")]
    assert [a.split()[0] for a in overview] == [
        "Cumulative",
        "Excess",
        "False-rollback",
        "Share",
        "Mean",
        "Share",
        "Mean",
    ]
    assert "winner was the candidate against the true relative lift" in overview[5]
    assert "conversions lost per run against the median time to decide" in overview[6]


# --- headless Chromium: the page really renders in a browser -----------------------------


@pytest.fixture
def report_file(tmp_path, html) -> Path:
    return write_report(tmp_path / "report.html", html)


@needs_chromium
def test_chromium_screenshot_not_blank(tmp_path, report_file):
    shot = tmp_path / "shot.png"
    proc = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars", url=report_file.as_uri()
    )
    assert shot.exists(), f"no screenshot; chromium exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000  # a blank 1200x2000 PNG compresses to a few KB
    from matplotlib.image import imread

    pixels = imread(shot)
    # Non-blank: many distinct colours (text, table, the figures), not one flat fill.
    assert pixels.std() > 0.05
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50


@needs_chromium
def test_chromium_decodes_every_image(tmp_path, report_file):
    """Each embedded PNG really decodes in the browser (naturalWidth > 0), not just sits in
    the DOM. The report has no scripts of its own, so a copy gets one that writes each
    image's decoded size into the DOM once the page has loaded; --dump-dom reads it back."""
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { for (const img of document.images) {"
        " img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight); } });</script>"
    )
    probe.write_text(report_file.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", "--virtual-time-budget=5000", url=probe.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    sizes = [img.get("data-natural") for img in parse(proc.stdout).imgs]
    assert len(sizes) == 2 and None not in sizes, sizes
    for size in sizes:
        width, height = map(int, size.split("x"))
        assert width >= 500 and height >= 300  # the timeline figures are 1000 px wide at 100 dpi


@needs_chromium
def test_chromium_dom_has_images(tmp_path, report_file):
    proc = chromium(tmp_path, "--dump-dom", url=report_file.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = parse(proc.stdout)
    assert len(page.rows) == 2
    srcs = [img.get("src", "") for img in page.imgs]
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,iVBORw0KGgo") for s in srcs)
