"""What the command line must never do to the user's files and processes (issue 13):
overwrite an input with an output (item 3), print a traceback or stay silent when
interrupted (item 12), leave worker processes behind when killed (item 13).

The interrupt and kill tests run ``python -m sim`` as a real process: signals and worker
processes cannot be tested in-process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.helpers import SCENARIOS, TEST_FIXTURES, invoke

POLICY = """\
flagger:
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
"""

#: The same policy as JSON (a policy file may be .json), for files named like results.
POLICY_JSON = (
    '{"flagger": {"analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,'
    ' "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}}'
)


def _copy_scenario(tmp_path: Path, name: str = "error-spike.yaml") -> Path:
    path = tmp_path / name
    shutil.copy(SCENARIOS / "error-spike.yaml", path)
    return path


def _refused(result, option: str, victim: Path, before: bytes) -> None:  # type: ignore[no-untyped-def]
    """One line ``pdsim: OPTION ... would overwrite ...``, exit 2, the input untouched."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"pdsim: {option} ") and "would overwrite the input" in result.stderr
    assert victim.read_bytes() == before


# --- item 3: no output option overwrites an input ----------------------------------------------


def test_run_trace_onto_the_scenario_a_symlink_to_it_or_a_policy_is_refused(tmp_path: Path) -> None:
    scenario = _copy_scenario(tmp_path)
    before = scenario.read_bytes()
    _refused(invoke("run", scenario, "--runs", 2, "--trace", scenario), "--trace", scenario, before)
    link = tmp_path / "link.jsonl"
    link.symlink_to(scenario)
    _refused(invoke("run", scenario, "--runs", 2, "--trace", link), "--trace", scenario, before)
    hard = tmp_path / "hard.jsonl"
    os.link(scenario, hard)
    _refused(invoke("run", scenario, "--runs", 2, "--trace", hard), "--trace", scenario, before)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    _refused(
        invoke("run", scenario, "--policy", policy, "--runs", 2, "--trace", policy), "--trace", policy, POLICY.encode()
    )
    # a file inside a --policy directory is an input too
    pdir = tmp_path / "pdir"
    pdir.mkdir()
    (pdir / "canary.yaml").write_text(POLICY)
    _refused(
        invoke("run", scenario, "--policy", pdir, "--runs", 2, "--trace", pdir / "canary.yaml"),
        "--trace",
        pdir / "canary.yaml",
        POLICY.encode(),
    )
    # another path is fine
    ok = invoke("run", scenario, "--runs", 2, "--trace", tmp_path / "trace.jsonl")
    assert ok.exit_code == 0, ok.stderr


CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
"""


def test_run_trace_onto_the_manifest_a_scenario_names_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(CANARY)
    scenario = tmp_path / "scenario.yaml"
    head, _, _ = (SCENARIOS / "error-spike.yaml").read_text().partition("\npolicy:")
    scenario.write_text(head + "\npolicy: {manifest: canary.yaml}\n")
    assert invoke("validate", scenario).exit_code == 0
    _refused(invoke("run", scenario, "--runs", 2, "--trace", canary), "--trace", canary, CANARY.encode())
    # and a gates file naming that scenario guards the manifest too
    gates = tmp_path / "gates.yaml"
    gates.write_text("runs: 5\nscenarios: [scenario.yaml]\nrequirements: {detection_rate: {min: 0}}\n")
    _refused(invoke("check", gates, "--junit", canary), "--junit", canary, CANARY.encode())


def test_run_out_never_replaces_an_input_file(tmp_path: Path) -> None:
    # a policy file that happens to be called summary.json, in the --out folder
    scenario = _copy_scenario(tmp_path)
    policy = tmp_path / "summary.json"
    policy.write_text(POLICY_JSON)
    before = policy.read_bytes()
    _refused(invoke("run", scenario, "--policy", policy, "--runs", 2, "--out", tmp_path), "--out", policy, before)
    assert not list(tmp_path.glob("records-*.parquet"))


def test_replay_trace_onto_the_observations_or_the_policy_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    csv = tmp_path / "obs.csv"
    shutil.copy(TEST_FIXTURES / "replay" / "error-spike.csv", csv)
    before = csv.read_bytes()
    _refused(invoke("replay", policy, "--observations", csv, "--trace", csv), "--trace", csv, before)
    _refused(invoke("replay", policy, "--observations", csv, "--trace", policy), "--trace", policy, POLICY.encode())
    ok = invoke("replay", policy, "--observations", csv, "--trace", tmp_path / "t.jsonl")
    assert ok.exit_code == 0, ok.stderr


def _gates(tmp_path: Path) -> tuple[Path, Path]:
    scenario = _copy_scenario(tmp_path)
    gates = tmp_path / "gates.yaml"
    gates.write_text(f"runs: 5\nscenarios: [{scenario.name}]\nrequirements: {{detection_rate: {{min: 0}}}}\n")
    return gates, scenario


def test_check_junit_and_markdown_onto_the_gates_file_or_what_it_names_are_refused(tmp_path: Path) -> None:
    gates, scenario = _gates(tmp_path)
    before, scenario_before = gates.read_bytes(), scenario.read_bytes()
    _refused(invoke("check", gates, "--junit", gates), "--junit", gates, before)
    _refused(invoke("check", gates, "--markdown", gates), "--markdown", gates, before)
    _refused(invoke("check", gates, "--junit", scenario), "--junit", scenario, scenario_before)
    policy = tmp_path / "base.yaml"
    policy.write_text(POLICY)
    _refused(invoke("check", gates, "--baseline", policy, "--markdown", policy), "--markdown", policy, POLICY.encode())
    ok = invoke("check", gates, "--junit", tmp_path / "junit.xml")
    assert ok.exit_code == 0, ok.stderr


def test_report_html_onto_the_results_or_a_file_inside_them_is_refused(tmp_path: Path) -> None:
    scenario = _copy_scenario(tmp_path)
    out = tmp_path / "out"
    assert invoke("run", scenario, "--runs", 3, "--out", out).exit_code == 0
    chunk = next(out.glob("records-*.parquet"))
    before = chunk.read_bytes()
    _refused(invoke("report", out, "--html", chunk), "--html", chunk, before)
    _refused(invoke("report", chunk, "--html", chunk), "--html", chunk, before)
    summary = (out / "summary.json").read_bytes()
    _refused(invoke("report", out, "--html", out / "summary.json"), "--html", out / "summary.json", summary)
    _refused(
        invoke("report", out, "--scenario", scenario, "--html", scenario), "--html", scenario, scenario.read_bytes()
    )
    ok = invoke("report", out, "--html", out / "report.html")  # a new file beside the results is fine
    assert ok.exit_code == 0, ok.stderr


SWEEP = """\
scenario: error-spike.yaml
policies: [summary.json]
grid:
  policy.flagger.analysis.threshold: [1, 5]
runs: 4
seed: 5
"""


def test_sweep_out_onto_the_sweep_files_folder_keeps_its_inputs(tmp_path: Path) -> None:
    _copy_scenario(tmp_path)
    policy = tmp_path / "summary.json"  # a policy file the sweep names, where the summary goes
    policy.write_text(
        '{"flagger": {"analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,'
        ' "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}}'
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    before = policy.read_bytes()
    _refused(invoke("sweep", sweep, "--out", tmp_path), "--out", policy, before)
    assert not (tmp_path / "manifest.json").exists()
    # the sweep file's own folder is a fine --out when nothing there would be replaced
    policy.rename(tmp_path / "policy.json")
    sweep.write_text(SWEEP.replace("summary.json", "policy.json"))
    ok = invoke("sweep", sweep, "--out", tmp_path)
    assert ok.exit_code == 0, ok.stderr
