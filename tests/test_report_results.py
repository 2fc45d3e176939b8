"""Tests of ``pdsim report RESULTS --html FILE`` (sim.report.results): reading stored runs,
the page's structure, the figures the results support, and bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest

from sim.errors import InputError
from sim.report.results import overview_figures, parameter_columns, read_results, results_sections
from tests.helpers import REPO, invoke
from tests.helpers import parse_page as parse

SPIKE = REPO / "scenarios" / "error-spike.yaml"
GOOD = REPO / "scenarios" / "good-release.yaml"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two `pdsim run --out` directories under one results directory."""
    root = tmp_path_factory.mktemp("results")
    for path, sub in ((SPIKE, "spike"), (GOOD, "good")):
        result = invoke("run", path, "--runs", "40", "--out", root / sub, "--chunk-size", "15")
        assert result.exit_code == 0, result.stderr
    return root


def test_read_results_directory_file_and_csv(results, tmp_path):
    frame = read_results(results)
    assert len(frame) == 80 and set(frame["scenario"]) == {"error-spike", "good-release"}
    one = read_results(results / "spike" / "records-00000.parquet")
    assert len(one) == 15
    frame.to_csv(tmp_path / "runs.csv", index=False)
    assert len(read_results(tmp_path / "runs.csv")) == 80
    assert parameter_columns(frame) == []


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda d: d / "missing", "no such file or directory"),
        (lambda d: d, "no *.parquet result files"),
        (lambda d: written(d / "x.csv", "a,b\n1,2\n"), "not run records: no column 'scenario'"),
        (lambda d: written(d / "x.parquet", "not parquet"), "cannot read results"),
        (lambda d: written(d / "x.txt", ""), "results must be"),
    ],
)
def test_bad_results_are_one_line_errors(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_results(path)
    assert str(info.value).startswith(f"{path}:1: ") and needle in str(info.value)
    result = invoke("report", path, "--html", tmp_path / "r.html")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_report_page_structure(results, tmp_path):
    out = tmp_path / "report.html"
    result = invoke("report", results, "--html", out, "--scenario", SPIKE)
    assert result.exit_code == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    assert len(page.rows) == 2 and page.scripts == 0
    alts = [img["alt"] for img in page.imgs]
    # The overview (detection CDF and blast radius of the bad release) and, for the
    # scenario whose file was given, run 0's timeline.
    assert len(alts) == 3 and sum(a.startswith("Timeline of run 0 of scenario error-spike") for a in alts) == 1
    for img in page.imgs:
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(b"\x89PNG")
    text = " ".join(page.text)
    assert f"pdsim report {results} --html {out} --scenario {SPIKE}" in text  # the page's command
    # The described section reproduces with pdsim run: the records are runs 0..39 of the file's seed.
    assert f"pdsim run {SPIKE} --runs 40 --seed 42 --trace run0.jsonl" in text
    assert "80 simulated rollouts" in text
    assert "40 good-release runs, 0 bad-release runs (from the records)" in text


def test_run0_timeline_is_the_stored_run(results):
    frame = read_results(results)
    sections = results_sections(frame, scenario_files=[SPIKE, GOOD])
    spike = next(s for s in sections if s.name.startswith("error-spike"))
    rec0 = frame[(frame.scenario == "error-spike") & (frame.run == 0)].iloc[0]
    # The re-simulated run 0 decided exactly as the stored record says.
    assert spike.run0.startswith(f"rolled back at {rec0.decision_time_s / 60:.1f} min")
    assert spike.summary["runs"] == 40 and spike.described


def test_parameter_columns_give_sweep_figures(results):
    frame = read_results(results)
    a, b = frame.copy(), frame.copy()
    a["threshold"], b["threshold"] = 1, 5
    b.loc[b.scenario == "good-release", "outcome"] = "rolled_back"  # a made-up noisy setting
    b.loc[b.scenario == "good-release", "false_rollback"] = True
    both = pd.concat([a, b], ignore_index=True)
    assert parameter_columns(both) == ["threshold"]
    titles = [f.title for f in overview_figures(both)]
    assert titles == [
        "How fast bad releases are rolled back",
        "Blast radius of bad releases",
        "False rollbacks against threshold",
        "Speed against harm over the settings",
    ]
    both["severity"] = [0.01 if i % 2 else 0.05 for i in range(len(both))]
    assert "Detection probability by fault severity" in [f.title for f in overview_figures(both)]


def test_sweep_folder_read_through_the_sweep_engine(results, tmp_path, monkeypatch):
    """A folder with a manifest.json is a sweep's: its own reader (sim.runs.store.load_results,
    which joins the swept parameters) is used."""
    from sim.report import results as results_mod

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "manifest.json").write_text("{}")
    frame = read_results(results)
    frame["policy.flagger.analysis.threshold"] = [1 if i % 2 else 5 for i in range(len(frame))]
    frame["release.faults[0].rate"] = [0.01 if i % 4 < 2 else 0.05 for i in range(len(frame))]
    frame.loc[~frame.release_bad, "release.faults[0].rate"] = float("nan")
    frame["cell"] = range(len(frame))  # bookkeeping, not a setting

    def load_results(path):
        assert Path(path) == sweep
        return frame

    monkeypatch.setattr(results_mod, "load_results", load_results)
    got = read_results(sweep)
    assert got is frame
    assert parameter_columns(got) == ["policy.flagger.analysis.threshold", "release.faults[0].rate"]
    titles = [f.title for f in overview_figures(got)]
    # The swept fault size gives a power curve; the policy setting (short name) the others.
    assert titles == [
        "How fast bad releases are rolled back",
        "Blast radius of bad releases",
        "Detection probability by fault severity",
        "False rollbacks against threshold",
        "Speed against harm over the settings",
    ]


def test_report_describes_the_policy_run_not_the_scenarios(tmp_path):
    """An Argo policy given with --policy is the one described, not the scenario's Flagger one."""
    argo = REPO / "gates" / "policies" / "argo-canary.yaml"
    out = tmp_path / "runs"
    result = invoke("run", GOOD, "--policy", argo, "--runs", "3", "--out", out)
    assert result.exit_code == 0, result.stderr
    frame = read_results(out)
    (section,) = results_sections(frame, scenario_files=[GOOD], policy_paths=[argo])
    assert section.error is None and section.policy_lines
    assert section.policy_lines[0].startswith("Argo"), section.policy_lines
    assert not any("Flagger" in line for line in section.policy_lines), section.policy_lines
    html = tmp_path / "r.html"
    result = invoke("report", out, "--html", html, "--scenario", GOOD, "--policy", argo)
    assert result.exit_code == 0, result.stderr
    text = " ".join(parse(html.read_text(encoding="utf-8")).text)
    assert "Argo" in text and "Flagger canary" not in text
