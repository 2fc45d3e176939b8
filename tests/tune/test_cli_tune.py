"""`pdsim tune` end to end on a tiny search: summary, outputs, resume, errors, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sim.tuning import portfolio as portfolio_module
from tests.helpers import invoke
from tests.tune.tiny import write_tiny


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cli")
    path = write_tiny(folder)
    out = folder / "out"
    return path, out, invoke("tune", path, "--out", out, "--quiet")


def test_tune_prints_the_frontier_recommendation_and_fresh_check(ran) -> None:
    _, out, res = ran
    assert res.exit_code == 0, res.stderr
    text = res.stdout
    assert text.startswith("tune: tune  candidates: 8 (budget 8)  runs/scenario by rung: 4, 12  seed: 1\n")
    assert "frontier: " in text and "recommendation (balanced): " in text
    assert "fresh seeds, 16 runs/scenario, paired with the base:" in text
    assert "excess_errors.mean: best " in text and "best/base " in text
    assert "constraint false_rollback_rate (max 0.5) on fresh seeds: " in text
    for name in ("tune.json", "candidates.parquet", "frontier.parquet", "validation.json", "best-policy.yaml"):
        assert (out / name).is_file()


def test_best_policy_runs_with_pdsim_run(ran) -> None:
    path, out, _ = ran
    res = invoke("run", path.parent / "bad.yaml", "--policy", out / "best-policy.yaml", "--runs", 2, "--json")
    assert res.exit_code == 0, res.stderr


def test_a_full_folder_is_refused_then_resumed(ran) -> None:
    path, out, _ = ran
    before = pd.read_parquet(out / "candidates.parquet")
    again = invoke("tune", path, "--out", out)
    assert again.exit_code == 2 and again.stderr.count("\n") == 1
    assert again.stderr.startswith(f"pdsim: {out} is not empty") and "--resume" in again.stderr
    resumed = invoke("tune", path, "--out", out, "--resume", "--quiet")
    assert resumed.exit_code == 0, resumed.stderr
    pd.testing.assert_frame_equal(before, pd.read_parquet(out / "candidates.parquet"))
    other = invoke("tune", path, "--out", out, "--resume", "--seed", 9)
    assert other.exit_code == 2 and "seed 1, not 9" in other.stderr


def test_bad_tune_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    path.write_text(path.read_text().replace("budget: 8", "budget: -1"))
    res = invoke("tune", path, "--out", tmp_path / "out")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith(f"{path}:13: budget: ") and res.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time", "soon"], "pdsim: --time: "),
        (["--budget", "0"], "--budget"),
        (["--budget", "1000000"], "pdsim: --budget: at most 100,000"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    res = invoke("tune", write_tiny(tmp_path), "--out", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in res.stderr and res.stderr.count("\n") == 1


def test_out_may_not_overwrite_an_input(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    (tmp_path / "canary.yaml").rename(tmp_path / "best-policy.yaml")
    path.write_text(path.read_text().replace("base: canary.yaml", "base: best-policy.yaml"))
    res = invoke("tune", path, "--out", tmp_path, "--resume", "--quiet")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "would overwrite the input" in res.stderr and "best-policy.yaml" in res.stderr


def test_time_stops_asking_after_a_batch(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, budget=40)
    res = invoke("tune", path, "--out", tmp_path / "out", "--time", "1ms", "--quiet")
    assert res.exit_code == 0, res.stderr
    assert "candidates: 8 (budget 8)" in res.stdout
    assert json.loads((tmp_path / "out" / "tune.json").read_text())["budget"] == 8


def test_ctrl_c_keeps_the_study_and_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tiny(tmp_path)
    out = tmp_path / "out"
    real = portfolio_module.simulate
    calls = []

    def interrupted(*args):
        calls.append(args)
        if len(calls) > 6:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(portfolio_module, "simulate", interrupted)
    res = invoke("tune", path, "--out", out, "--quiet")
    assert res.exit_code == 130
    assert res.stderr == (
        f"pdsim: interrupted; the study and 6 simulated piece(s) kept in {out}; "
        f"resume with pdsim tune {path} --out {out} --resume\n"
    )
    monkeypatch.setattr(portfolio_module, "simulate", real)
    assert invoke("tune", path, "--out", out, "--resume", "--quiet").exit_code == 0


def test_dask_gives_the_same_search(ran, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    path, out, _ = ran
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        res = invoke("tune", path, "--out", tmp_path / "dask", "--dask", cluster.scheduler_address, "--quiet")
    assert res.exit_code == 0, res.stderr
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "candidates.parquet"), pd.read_parquet(tmp_path / "dask" / "candidates.parquet")
    )


CANARY_MANIFEST = """\
# our canary
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  analysis:
    interval: 1m   # keep
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
"""


def test_a_manifest_base_gets_best_manifest(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, budget=3)
    (tmp_path / "canary.yaml").write_text(CANARY_MANIFEST)
    res = invoke("tune", path, "--out", tmp_path / "out", "--quiet")
    assert res.exit_code == 0, res.stderr
    info = json.loads((tmp_path / "out" / "tune.json").read_text())
    assert info["base"]["manifest"] is True and info["base"]["name"] == "podinfo"
    text = (tmp_path / "out" / "best-manifest.yaml").read_text()
    assert "# our canary" in text and "kind: Canary" in text
    assert "does not read back" not in res.stdout  # it re-imports as best-policy.yaml's policy


def _argo_policy() -> str:
    """The Rollout policy of the bundled argo-canary-steps scenario, as a pdsim policy file."""
    import yaml

    from tests.helpers import SCENARIOS

    policy = yaml.safe_load((SCENARIOS / "argo-canary-steps.yaml").read_text())["policy"]
    return yaml.safe_dump(policy, sort_keys=False)


ARGO_SPACE = """\
space:
  policy.argo.templates.success-rate.metrics[0].successCondition: {low: 0.9, high: 0.999, format: "result[0] >= {}"}
  policy.argo.templates.success-rate.metrics[0].failureLimit: {low: 0, high: 5}
  policy.argo.strategy.canary.steps[1].pause.duration: {choices: [1m, 2m, 5m]}
"""


def test_an_argo_space(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, budget=3, space=ARGO_SPACE)
    (tmp_path / "canary.yaml").write_text(_argo_policy())
    res = invoke("tune", path, "--out", tmp_path / "out", "--quiet")
    assert res.exit_code == 0, res.stderr
    frame = pd.read_parquet(tmp_path / "out" / "candidates.parquet")
    cond = frame["policy.argo.templates.success-rate.metrics[0].successCondition"]
    assert cond.dtype == float and cond.iloc[1:].between(0.9, 0.999).all()
    assert set(frame["policy.argo.strategy.canary.steps[1].pause.duration"].iloc[1:]) <= {"1m", "2m", "5m"}
    best = (tmp_path / "out" / "best-policy.yaml").read_text()
    assert "successCondition: result[0] >= " in best


def test_nothing_feasible_means_no_recommendation(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, budget=3)
    path.write_text(path.read_text().replace("{max: 0.5}", "{max: 0.0}"))  # no upper bound is 0
    res = invoke("tune", path, "--out", tmp_path / "out", "--quiet")
    assert res.exit_code == 1, res.stderr  # a failed check, as a gate's
    assert "recommendation: none (no candidate met every constraint)" in res.stdout
    assert not (tmp_path / "out" / "best-policy.yaml").exists()
    assert json.loads((tmp_path / "out" / "validation.json").read_text()) == {}
    assert json.loads((tmp_path / "out" / "tune.json").read_text())["best"] is None
    assert pd.read_parquet(tmp_path / "out" / "frontier.parquet").empty


def test_a_recommendation_that_breaks_a_constraint_on_fresh_seeds_exits_1(tmp_path: Path) -> None:
    """The check's releases are not the search's: here every validation release is good but
    meets an outage of both versions (a rollback of it is a false one), so the
    recommendation's false-rollback ceiling breaks there, and pdsim tune says so with exit 1."""
    path = write_tiny(tmp_path, budget=3)
    outage = (
        (tmp_path / "good.yaml")
        .read_text()
        .replace("faults: []", "faults: [{kind: error_rate, rate: 0.5, target: both, onset: 0s}]")
    )
    (tmp_path / "outage.yaml").write_text(outage.replace("name: good", "name: outage"))
    text = path.read_text().replace(
        "validation: {runs: 16}", "validation: {runs: 16, portfolio: [{scenario: outage.yaml, weight: 1}]}"
    )
    path.write_text(text)
    res = invoke("tune", path, "--out", tmp_path / "out", "--quiet")
    assert res.exit_code == 1, res.stderr
    assert "constraint false_rollback_rate (max 0.5) on fresh seeds: NOT met" in res.stdout
    assert (tmp_path / "out" / "best-policy.yaml").is_file()  # written all the same, to be read
