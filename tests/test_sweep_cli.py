"""`pdsim sweep` and `pdsim compare` (docs/architecture.md section 6): exit codes, one-line errors,
summaries with intervals, paired comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import SCENARIOS, invoke

SWEEP = f"""\
scenario: {SCENARIOS / "good-release.yaml"}
grid:
  policy.flagger.analysis.threshold: [1, 10]
portfolio:
  - {{name: good, weight: 0.9, set: {{release.faults: []}}}}
  - name: outage
    weight: 0.05
    set: {{release.faults: [{{kind: error_rate, rate: 0.03, target: both, onset: 2m, duration: 3m}}]}}
  - name: spike
    weight: 0.05
    set: {{release.faults: [{{kind: error_rate, rate: 0.05}}]}}
runs: 40
seed: 5
chunk_size: 20
"""

POLICY = """\
flagger:
  analysis:
    interval: 1m
    threshold: {threshold}
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {{name: request-success-rate, thresholdRange: {{min: 99}}, interval: 1m}}
"""


def test_sweep_prints_costs_writes_summary_and_refuses_to_overwrite(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    res = invoke("sweep", sweep, "--out", out, "--ceiling", 0.5)
    assert res.exit_code == 0, res.stderr
    assert "expected cost per release, value [95% CI]:" in res.stdout
    assert "rollouts: 240 (240 simulated now, 0 already in" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 240 and len(summary["cells"]) == 6
    strict, lax = summary["policies"]
    assert strict["policy"].endswith("{threshold=1}") and lax["policy"].endswith("{threshold=10}")
    # The outage (5% of releases, good) is rolled back by threshold 1, hardly by 10.
    assert strict["false_rollback_rate"] > lax["false_rollback_rate"]
    assert 0 <= strict["false_rollback_rate_low"] <= strict["false_rollback_rate"] <= strict["false_rollback_rate_high"]
    assert summary["frontier"] and set(summary["frontier"]) <= {strict["policy"], lax["policy"]}

    again = invoke("sweep", sweep, "--out", out)
    assert again.exit_code == 2 and again.stderr.count("\n") == 1
    assert "already holds sweep results: pass --resume" in again.stderr
    resumed = invoke("sweep", sweep, "--out", out, "--resume", "--json", "--ceiling", 0.5)
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["policies"] == summary["policies"]
    sweep.write_text(SWEEP.replace("seed: 5", "seed: 6"))
    changed = invoke("sweep", sweep, "--out", out, "--resume")
    assert changed.exit_code == 2 and changed.stderr.count("\n") == 1
    assert changed.stderr.startswith(f"pdsim: cannot resume into {out}: the sweep file {sweep} changed")


def test_sweep_runs_override_and_bad_files(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    res = invoke("sweep", sweep, "--out", tmp_path / "few", "--runs", 3, "--json", "--quiet")
    assert res.exit_code == 0 and json.loads(res.stdout)["runs"] == 18
    sweep.write_text(SWEEP.replace("threshold: [1, 10]", "thresold: [1, 10]"))
    bad = invoke("sweep", sweep, "--out", tmp_path / "bad")
    assert bad.exit_code == 2 and bad.stdout == ""
    assert (
        bad.stderr == f"{sweep}:3: grid.policy.flagger.analysis.thresold: unknown key "
        "(got policy.flagger.analysis.thresold)\n"
    )
    assert not (tmp_path / "bad").exists()


def test_dask_address_that_is_not_there(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    res = invoke("sweep", sweep, "--out", tmp_path / "o", "--dask", "tcp://127.0.0.1:9")
    assert res.exit_code == 2 and res.stderr.startswith("pdsim: --dask tcp://127.0.0.1:9: cannot reach")
    assert res.stderr.count("\n") == 1


def _policies(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    a.write_text(POLICY.format(threshold=1))
    b.write_text(POLICY.format(threshold=10))
    return a, b


def test_compare_is_paired(tmp_path: Path) -> None:
    a, b = _policies(tmp_path)
    outage = tmp_path / "outage.yaml"  # a 3-minute dependency outage: threshold 10 rides it out
    text = (SCENARIOS / "common-mode-outage.yaml").read_text()
    assert "duration: 10m" in text
    outage.write_text(text.replace("duration: 10m", "duration: 3m"))
    res = invoke("compare", outage, a, b, "--runs", 200, "--json")
    assert res.exit_code == 0, res.stderr
    cmp = json.loads(res.stdout)
    assert (cmp["policy_a"], cmp["policy_b"], cmp["runs"]) == ("strict", "lax", 200)
    fr = cmp["rates"]["false_rollback"]
    # Threshold 1 rolls back the outage's good release far more often than threshold 10.
    assert fr["a"]["rate"] > fr["b"]["rate"] and fr["low"] > 0 and fr["p_value"] < 0.001
    assert fr["diff"] == pytest.approx(fr["a"]["rate"] - fr["b"]["rate"])
    # A policy against itself: every pair agrees, so every difference is exactly zero.
    same = json.loads(invoke("compare", SCENARIOS / "error-spike.yaml", a, a, "--runs", 30, "--json").stdout)
    for r in same["rates"].values():
        assert (r["diff"], r["low"], r["high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    for m in same["means"].values():
        assert m["n"] == 0 or (m["diff"], m["low"], m["high"]) == (0.0, 0.0, 0.0)


def test_compare_text_and_errors(tmp_path: Path) -> None:
    a, b = _policies(tmp_path)
    res = invoke("compare", SCENARIOS / "error-spike.yaml", a, b, "--runs", 20)
    assert res.exit_code == 0, res.stderr
    assert "A: strict" in res.stdout and "B: lax" in res.stdout and "A - B [95% CI]" in res.stdout
    assert "paired over 20 runs" in res.stdout
    b.write_text(POLICY.format(threshold=1).replace("maxWeight: 50", "maxWeight: 150"))
    bad = invoke("compare", SCENARIOS / "error-spike.yaml", a, b)
    assert bad.exit_code == 2 and bad.stderr.startswith(f"{b}:5: flagger.analysis.maxWeight:")


def test_dask_address_runs_the_sweep(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.replace("runs: 40", "runs: 6"))
    serial = invoke("sweep", sweep, "--out", tmp_path / "serial", "--json")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        res = invoke("sweep", sweep, "--out", tmp_path / "dask", "--dask", cluster.scheduler_address, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == json.loads(serial.stdout)


def test_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from sim import cli as cli_mod

    monkeypatch.setattr(cli_mod, "_isatty", lambda stream: True)
    bar = cli_mod._progress_bar(1000)
    assert not bar.disable and bar.unit == "rollouts" and bar.total == 1000
    bar.update(250)
    assert "rollouts/s" in str(bar) and "250/1000" in str(bar)  # rate and ETA are shown
    bar.close()
    assert cli_mod._progress_bar(1000, disable=True).disable  # --quiet
    monkeypatch.setattr(cli_mod, "_isatty", lambda stream: False)
    assert cli_mod._progress_bar(1000).disable  # not a terminal
