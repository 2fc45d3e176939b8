"""Sweeps (issue 6): sweep files, plans, seeds, backends, results folders, resume.

A sweep's rows are a function of the sweep file alone: serial, multi-worker and Dask
runs write identical frames, a sweep killed at any moment and resumed ends with exactly
the rows of an uninterrupted one, and every policy of a world meets the same seeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.errors import InputError
from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.outcomes import COLUMNS
from sim.runs.runner import records_frame, run_batch
from sim.runs.store import ResultsError, read_manifest
from sim.seeds import run_seed
from sim.sweeps.execute import run_sweep
from sim.sweeps.plan import SEVERITY_KEY, expand
from sim.sweeps.spec import load_sweep, parse_path
from tests.helpers import CANARY_MANIFEST as CANARY
from tests.helpers import REPO, SCENARIOS

SWEEP = f"""\
name: small
scenario: {SCENARIOS / "error-spike.yaml"}
grid:
  policy.flagger.analysis.threshold: [1, 5]
  release.faults[0].rate: [0.02, 0.05]
runs: 24
seed: 11
chunk_size: 10
"""

PORTFOLIO = f"""\
scenario: {SCENARIOS / "good-release.yaml"}
grid:
  policy.flagger.analysis.threshold: [2, 8]
portfolio:
  - {{name: good, weight: 0.7, set: {{release.faults: []}}}}
  - name: spike
    weight: 0.3
    set: {{release.faults: [{{kind: error_rate, rate: 0.02}}]}}
    severity: {{path: "release.faults[0].rate", loguniform: [0.005, 0.08]}}
    strata: 3
runs: 16
seed: 3
chunk_size: 8
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("serial")
    sweep = write(tmp, SWEEP)
    run_sweep(sweep, tmp / "out")
    return sweep, sim.load_results(tmp / "out")


# --- sweep files and plans ------------------------------------------------------------------------


def test_parse_path() -> None:
    assert parse_path("release.faults[0].rate") == ("release", "faults", 0, "rate")
    assert parse_path("policy.flagger.analysis.threshold") == ("policy", "flagger", "analysis", "threshold")
    for bad in ("release..faults", "faults[x]", "[0].rate", "a.b[", ""):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_plan_cells_worlds_and_chunks(tmp_path: Path) -> None:
    plan = expand(load_sweep(write(tmp_path, SWEEP)))
    # Two fault rates are two worlds; each world meets both thresholds.
    assert len(plan.worlds) == 2 and len(plan.cells) == 4
    assert [w.scenario.release.faults[0].rate for w in plan.worlds] == [0.02, 0.05]
    # Cells follow the grid's product in the file's key order (the last key varies fastest).
    assert [c.world for c in plan.cells] == [0, 1, 0, 1]
    assert [c.policy.spec.analysis.threshold for c in plan.cells] == [1, 1, 5, 5]
    assert plan.params == ["policy.flagger.analysis.threshold", "release.faults[0].rate"]
    chunks = plan.chunks()
    assert len(chunks) == 4 * 3 and [(c.start, c.stop) for c in chunks[:3]] == [(0, 10), (10, 20), (20, 24)]
    assert expand(load_sweep(write(tmp_path, SWEEP)), runs=5).chunks()[0].stop == 5  # --runs


def test_portfolio_strata_are_drawn_once_per_stratum_from_the_root_seed(tmp_path: Path) -> None:
    plan = expand(load_sweep(write(tmp_path, PORTFOLIO)))
    kinds = [(w.kind, w.stratum, round(w.weight, 12)) for w in plan.worlds]
    assert kinds == [("good", None, 0.7), ("spike", 0, 0.1), ("spike", 1, 0.1), ("spike", 2, 0.1)]
    assert sum(w.weight for w in plan.worlds) == pytest.approx(1.0)
    lo, hi = np.log(0.005), np.log(0.08)
    for w in plan.worlds[1:]:
        rate = w.scenario.release.faults[0].rate
        # Stratum s of a log-uniform severity lies in the s-th third of the log range.
        u = (np.log(rate) - lo) / (hi - lo)
        assert w.stratum / 3 <= u < (w.stratum + 1) / 3
        ss = np.random.SeedSequence(3, spawn_key=(SEVERITY_KEY, 1, w.stratum))
        expected = (w.stratum + np.random.Generator(np.random.PCG64(ss)).random()) / 3
        assert u == pytest.approx(expected)
        assert w.params == {"release.faults[0].rate": rate}
    assert plan.worlds[1].scenario.name == "good-release/spike"
    # Another root seed draws other severities; the same one draws the same.
    again = expand(load_sweep(write(tmp_path, PORTFOLIO)))
    assert [w.scenario for w in again.worlds] == [w.scenario for w in plan.worlds]
    other = expand(load_sweep(write(tmp_path, PORTFOLIO)), seed=4)
    assert other.worlds[1].scenario.release.faults[0].rate != plan.worlds[1].scenario.release.faults[0].rate


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        expand(load_sweep(write(tmp_path, text)))
    return str(info.value)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "edit, field, needle, message",
    [
        (("threshold: [1, 5]", "treshold: [1, 5]"), "grid.policy.flagger.analysis.treshold", "treshold", "unknown key"),
        (
            ("threshold: [1, 5]", "threshold: [1, 2.5]"),
            "grid.policy.flagger.analysis.threshold[1]",
            "threshold",
            "valid integer, got a number with a fractional part (got 2.5)",
        ),
        (
            ("threshold: [1, 5]", "threshold: [1, 5]\n  policy.flagger.analysis.maxWeight: [50, 150]"),
            "grid.policy.flagger.analysis.maxWeight[1]",
            "maxWeight",
            "(got 150)",
        ),
        (
            ("faults[0].rate: [0.02, 0.05]", "faults[3].rate: [0.02]"),
            "grid.release.faults[3].rate",
            "faults[3]",
            "release.faults has 1 item(s), no [3]",
        ),
        (
            ("faults[0].rate: [0.02, 0.05]", "faults[0].rate: [0.02, 1.5]"),
            "grid.release.faults[0].rate[1]",
            "faults[0]",
            "less than or equal to 1 (got 1.5)",
        ),
        (
            ("release.faults[0].rate", "release.faults[0]..rate"),
            "grid.release.faults[0]..rate",
            "..rate",
            "not a field path",
        ),
        (("runs: 24", "runs: 0"), "runs", "runs:", "greater than or equal to 1"),
        (("chunk_size: 10", "chunk_size: 10\nbogus: 1"), "bogus", "bogus", "unknown key"),
    ],
)
def test_bad_sweep_files_name_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], field: str, needle: str, message: str
) -> None:
    text = SWEEP.replace(*edit)
    err = _error(tmp_path, text)
    path = tmp_path / "sweep.yaml"
    assert err.startswith(f"{path}:{_line(text, needle)}: {field}: "), err
    assert message in err and "\n" not in err


def test_bad_portfolio_and_missing_files(tmp_path: Path) -> None:
    err = _error(tmp_path, PORTFOLIO.replace("weight: 0.3", "weight: 0.2"))
    assert "portfolio weights must sum to 1 (they sum to 0.9)" in err
    err = _error(tmp_path, PORTFOLIO.replace("set: {release.faults: []}", "set: {policy.flagger.x: 1}"))
    assert "portfolio[0].set.policy.flagger.x: a portfolio sets release fields" in err
    err = _error(tmp_path, SWEEP.replace("error-spike.yaml", "nope.yaml"))
    assert f"{tmp_path / 'sweep.yaml'}:2: scenario: no such file or directory" in err


def test_the_bundled_sweep_expands() -> None:
    plan = expand(load_sweep(REPO / "sweeps" / "flagger-thresholds.yaml"))
    assert len(plan.cells) == 8 * len(plan.worlds) and len(plan.worlds) == 7
    assert sum(w.weight for w in plan.worlds) == pytest.approx(1.0)


# --- seeds: common random numbers and `pdsim run` ----------------------------------------------------


def test_world_zero_is_pdsim_run_and_policies_share_seeds(
    serial: tuple[Path, pd.DataFrame], error_spike: Scenario
) -> None:
    _, frame = serial
    scenario = error_spike
    # Cell 2 is world 0 (the file's scenario with rate 0.02) under threshold 5.
    sc = scenario.model_copy(
        update={
            "release": scenario.release.model_copy(
                update={"faults": [scenario.release.faults[0].model_copy(update={"rate": 0.02})]}
            )
        }
    )
    policy = scenario_policy(scenario)
    expected = records_frame(run_batch(sc, policy, 24, 11))
    got = frame[frame["cell"] == 2]
    assert got["seed"].tolist() == expected["seed"].tolist() == [run_seed(11, 0, k) for k in range(24)]
    for col in ("outcome", "decision_time_s", "canary_requests", "excess_errors", "users_affected"):
        assert got[col].astype(object).tolist() == expected[col].astype(object).tolist(), col
    # Both thresholds of a world meet the same seeds; the two worlds have their own.
    seeds = frame.groupby("cell")["seed"].apply(list)
    assert seeds[0] == seeds[2] and seeds[1] == seeds[3] and seeds[0] != seeds[1]


def test_load_results_is_tidy(serial: tuple[Path, pd.DataFrame]) -> None:
    _, frame = serial
    assert len(frame) == 4 * 24
    assert list(frame.columns[: len(COLUMNS) + 1]) == ["cell", *COLUMNS]
    assert {"world", "kind", "stratum", "weight", "policy.flagger.analysis.threshold", "release.faults[0].rate"} <= set(
        frame.columns
    )
    assert frame.groupby("cell")["run"].apply(list).tolist() == [list(range(24))] * 4
    assert frame.loc[frame["cell"] == 1, "release.faults[0].rate"].eq(0.05).all()
    assert frame.loc[frame["cell"] == 3, "policy.flagger.analysis.threshold"].eq(5).all()
    assert frame["policy"].nunique() == 2  # one label per threshold, the same in both worlds
    assert (frame["outcome"] == "rolled_back").any() and frame["release_bad"].all()
    assert len(sim.load_results(serial[0].parent / "out", columns=["outcome"]).columns) < len(frame.columns)


# --- backends: identical frames -----------------------------------------------------------------------


def test_workers_give_the_serial_frame(serial: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    sweep, expected = serial
    run_sweep(sweep, tmp_path / "w2", workers=2)
    pd.testing.assert_frame_equal(sim.load_results(tmp_path / "w2"), expected)


def test_dask_local_cluster_gives_the_serial_frame(serial: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    sweep, expected = serial
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = run_sweep(sweep, tmp_path / "dask", dask=client)
        assert result.chunks_run == 12
        # The CLI's form: the scheduler's address.
        run_sweep(sweep, tmp_path / "dask-address", dask=cluster.scheduler_address, runs=24)
    pd.testing.assert_frame_equal(sim.load_results(tmp_path / "dask"), expected)
    pd.testing.assert_frame_equal(sim.load_results(tmp_path / "dask-address"), expected)


# --- results folders: manifest, resume, refusals ----------------------------------------------------


def test_manifest_records_the_sweep(serial: tuple[Path, pd.DataFrame]) -> None:
    sweep, _ = serial
    manifest = read_manifest(sweep.parent / "out")
    assert manifest["seed"] == 11 and manifest["runs"] == 24 and manifest["chunk_size"] == 10
    assert len(manifest["sweep"]["sha256"]) == 64 and str(SCENARIOS / "error-spike.yaml") in manifest["inputs"]
    assert {"numpy", "pandas", "pyarrow", "python", "pdsim"} <= set(manifest["versions"])
    assert [c["params"] for c in manifest["cells"]][3] == {
        "policy.flagger.analysis.threshold": 5,
        "release.faults[0].rate": 0.05,
    }


def test_resume_skips_finished_chunks_and_refuses_other_sweeps(
    serial: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    sweep, expected = serial
    out = tmp_path / "out"
    run_sweep(sweep, out)
    # Lose three chunks and leave a half-written temporary behind, as a kill would.
    for name in sorted(p.name for p in out.glob("records-*.parquet"))[4:7]:
        (out / name).unlink()
    (out / ".records-c00002-00000.parquet.999.tmp").write_bytes(b"PAR1 half")
    done = []
    result = run_sweep(sweep, out, resume=True, progress=done.append)
    assert (result.chunks_run, result.chunks_skipped) == (3, 9)
    assert sum(done) == 96 and not list(out.glob(".*.tmp"))
    pd.testing.assert_frame_equal(sim.load_results(out), expected)
    with pytest.raises(ResultsError, match="already holds sweep results: pass --resume"):
        run_sweep(sweep, out)
    with pytest.raises(ResultsError, match="runs is 30 now but 24"):
        run_sweep(sweep, out, runs=30, resume=True)
    changed = write(tmp_path, SWEEP.replace("seed: 11", "seed: 12"), "sweep2.yaml")
    changed_same_name = write(sweep.parent, SWEEP.replace("[1, 5]", "[1, 6]"), "sweep.yaml")
    with pytest.raises(ResultsError, match="changed since these results were started"):
        run_sweep(changed_same_name, out, resume=True)
    with pytest.raises(ResultsError, match="changed since"):
        run_sweep(changed, out, resume=True)
    write(sweep.parent, SWEEP, "sweep.yaml")


def _cli(*args: object, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_gives_the_uninterrupted_rows(tmp_path: Path) -> None:
    text = SWEEP.replace("runs: 24", "runs: 200").replace("chunk_size: 10", "chunk_size: 25")
    sweep = write(tmp_path, text)
    out = tmp_path / "killed"
    proc = _cli("sweep", sweep, "--out", out, "--quiet", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while len(list(out.glob("records-*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished = len(list(out.glob("records-*.parquet")))
    assert 3 <= finished < 32, "the kill should land mid-sweep"
    resumed = _cli("sweep", sweep, "--out", out, "--resume", "--quiet", cwd=tmp_path)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"({(32 - finished) * 25:,} simulated now, {finished * 25:,} already in" in stdout
    run_sweep(sweep, tmp_path / "whole")
    pd.testing.assert_frame_equal(sim.load_results(out), sim.load_results(tmp_path / "whole"))


def test_listed_policies_manifests_and_inline_meet_the_same_worlds(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").write_text(CANARY)
    text = f"""\
scenario: {SCENARIOS / "error-spike.yaml"}
policies:
  - canary.yaml
  - name: fast
    flagger: {{analysis: {{interval: 30s, threshold: 2, maxWeight: 50, stepWeight: 25,
               metrics: [{{name: request-success-rate, thresholdRange: {{min: 99}}}}]}}}}
grid:
  policy.flagger.analysis.maxWeight: [30, 50]
runs: 6
seed: 1
"""
    plan = expand(load_sweep(write(tmp_path, text)))
    assert [c.policy.name for c in plan.cells] == [
        "podinfo{maxWeight=30}",
        "fast{maxWeight=30}",
        "podinfo{maxWeight=50}",
        "fast{maxWeight=50}",
    ]
    assert [c.policy.spec.analysis.maxWeight for c in plan.cells] == [30, 30, 50, 50]
    assert str(tmp_path / "canary.yaml") in plan.inputs  # a changed manifest refuses --resume
    run_sweep(load_sweep(tmp_path / "sweep.yaml"), tmp_path / "out")
    frame = sim.load_results(tmp_path / "out")
    assert frame.groupby("cell")["seed"].apply(tuple).nunique() == 1  # one world: the same seeds
    bad = text.replace("stepWeight: 25", "stepWeight: 250")
    err = _error(tmp_path, bad)
    assert err.startswith(f"{tmp_path / 'sweep.yaml'}:5: policies[1].flagger.analysis.stepWeight:"), err


def test_cases_combine_with_the_grid_and_policy_names_stay_distinct(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "canary.yaml").write_text(CANARY)
    (tmp_path / "b" / "canary.yaml").write_text(CANARY.replace("threshold: 5", "threshold: 3"))
    text = f"""\
scenario: {SCENARIOS / "error-spike.yaml"}
policies: [a/canary.yaml, b/canary.yaml]
cases:
  - {{"release.faults[0].rate": 0.01, policy.flagger.analysis.stepWeight: 5}}
  - {{"release.faults[0].rate": 0.2}}
grid:
  policy.flagger.analysis.maxWeight: [30, 50]
runs: 4
"""
    plan = expand(load_sweep(write(tmp_path, text)))
    assert len(plan.worlds) == 2 and len(plan.cells) == 2 * 2 * 2
    names = {c.policy.name for c in plan.cells}
    assert "podinfo{stepWeight=5,maxWeight=30}" in names and "podinfo#1{stepWeight=5,maxWeight=30}" in names
    assert "podinfo{maxWeight=50}" in names and len(names) == 8
    err = _error(tmp_path, text.replace("stepWeight: 5}", "stepWeight: 5, policy.flagger.analysis.maxWeight: 1}"))
    assert f"{tmp_path / 'sweep.yaml'}:7: grid.policy.flagger.analysis.maxWeight: set by both grid and cases" in err, (
        err
    )


def test_severity_distributions() -> None:
    from sim.sweeps.spec import Severity

    assert Severity(path="a", uniform=[1, 3]).quantile(0.25) == pytest.approx(1.5)
    assert Severity(path="a", loguniform=[0.01, 1]).quantile(0.5) == pytest.approx(0.1)
    assert Severity(path="a", lognormal={"median": 2, "sigma": 0.5}).quantile(0.5) == pytest.approx(2)
    assert Severity(path="a", lognormal={"median": 2, "sigma": 0.5}).quantile(0.8413447) == pytest.approx(
        2 * np.exp(0.5), rel=1e-5
    )
    with pytest.raises(ValueError):
        Severity(path="a", uniform=[3, 1])
    with pytest.raises(ValueError):
        Severity(path="a", uniform=[1, 3], loguniform=[1, 3])
