"""Bounded work for any size asked (issue 13 items 8 and 9): run counts, sweep grids and
long horizons are refused with exit 2 stating the size when they cannot finish, and what
is accepted is simulated lazily, chunk by chunk, without lists of every run up front."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from sim.inputs.scenario import Scenario, load_scenario
from sim.limits import MAX_RUNS, MAX_SWEEP_CELLS, MAX_SWEEP_ROLLOUTS
from sim.runs.runner import iter_chunks, run_batch
from sim.runs.store import RUN_CHUNK_RE
from tests.helpers import SCENARIOS, invoke, line_of, write

SPIKE = (SCENARIOS / "error-spike.yaml").read_text()


def _refused(result: object, *needles: str) -> str:
    """The error line of a refused command: exit 2, no traceback, every needle in it."""
    assert result.exit_code == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    for needle in needles:
        assert needle in line, line
    return line


# --- item 8: run counts -------------------------------------------------------------------------


@pytest.mark.parametrize("runs", ["1e9", "1000000000", "1e30", str(MAX_RUNS + 1)])
def test_run_option_beyond_the_limit_is_refused(runs: str) -> None:
    result = invoke("run", SCENARIOS / "error-spike.yaml", "--runs", runs)
    _refused(result, "--runs", f"at most {MAX_RUNS:,} runs", f"(got {runs})")


@pytest.mark.parametrize("runs", ["1.5", "abc", "inf", "nan"])
def test_run_option_must_be_a_whole_number(runs: str) -> None:
    _refused(invoke("run", SCENARIOS / "error-spike.yaml", "--runs", runs), "--runs", "whole number")


def test_run_option_in_scientific_notation(tmp_path: Path) -> None:
    """``--runs 2e0`` is two runs, as ``--runs 2``."""
    result = invoke("run", SCENARIOS / "error-spike.yaml", "--runs", "2e0", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"runs": 2' in result.stdout


@pytest.mark.parametrize("value", ["1e30", "1e9", "100000001"])
def test_scenario_runs_beyond_the_limit(tmp_path: Path, value: str) -> None:
    text = SPIKE.replace("runs: 1000", f"runs: {value}")
    path = write(tmp_path, "s.yaml", text)
    for command in ("validate", "run"):
        line = _refused(invoke(command, path), f"{path}:{line_of(text, 'runs:')}: runs: ", f"at most {MAX_RUNS:,}")
        assert f"(got {value})" in line


def test_scenario_runs_in_scientific_notation(tmp_path: Path) -> None:
    """YAML reads ``1e6`` as text: it is a whole number of runs, and accepted as one."""
    path = write(tmp_path, "s.yaml", SPIKE.replace("runs: 1000", "runs: 1e6"))
    assert load_scenario(path).runs == 1_000_000
    path = write(tmp_path, "t.yaml", SPIKE.replace("runs: 1000", "runs: 1.5e0"))
    _refused(invoke("validate", path), "runs: must be a whole number")


def test_gates_runs_beyond_the_limit(tmp_path: Path) -> None:
    spike = SCENARIOS / "error-spike.yaml"
    text = f"scenarios:\n  - path: {spike}\n    runs: 1e9\nrequirements: {{promoted: {{max: 0.5}}}}\n"
    path = write(tmp_path, "gates.yaml", text)
    _refused(invoke("check", path), f"{path}:3: scenarios[0].runs: must be at most {MAX_RUNS:,} runs", "(got 1e9)")
    top = write(tmp_path, "top.yaml", f"runs: 1e9\nscenarios: [{spike}]\nrequirements: {{promoted: {{max: 0.5}}}}\n")
    _refused(invoke("check", top), f"{top}:1: runs: must be at most")


def test_run_batch_makes_its_run_list_lazily(error_spike: Scenario) -> None:
    """Before: every run index of ``MAX_RUNS`` runs in lists, gigabytes before the first
    rollout. Now the first chunk comes at once and little is allocated."""

    class Stop(Exception):
        pass

    def stop(records: list) -> None:
        raise Stop

    tracemalloc.start()
    try:
        with pytest.raises(Stop):
            run_batch(error_spike, _policy(error_spike), MAX_RUNS, 1, on_chunk=stop, chunk_size=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    first = next(iter_chunks(error_spike, _policy(error_spike), MAX_RUNS, 1, chunk_size=3))
    assert [r.run for r in first] == [0, 1, 2]


def _policy(scenario: Scenario) -> object:
    from sim.inputs.policy import scenario_policy

    return scenario_policy(scenario)


# --- item 8: sweeps -----------------------------------------------------------------------------


def _sweep(tmp_path: Path, body: str) -> Path:
    return write(tmp_path, "sweep.yaml", f"scenario: {SCENARIOS / 'good-release.yaml'}\n{body}")


def test_sweep_grid_of_too_many_cells_is_refused_before_expanding(tmp_path: Path) -> None:
    """2.56e10 cells: counted from the axes (before: expanded into memory)."""
    values = "[" + ", ".join(str(v) for v in range(1, 401)) + "]"
    body = "grid:\n" + "".join(
        f"  policy.flagger.analysis.{k}: {values}\n" for k in ("threshold", "stepWeight", "maxWeight", "iterations")
    )
    path = _sweep(tmp_path, body + "runs: 10\n")
    line = _refused(invoke("sweep", path, "--out", tmp_path / "out"), f"{path}:2: grid: ", "25,600,000,000 cells")
    assert f"at most {MAX_SWEEP_CELLS:,}" in line
    assert not (tmp_path / "out").exists()


def test_sweep_runs_beyond_the_limits(tmp_path: Path) -> None:
    path = _sweep(tmp_path, "runs: 1e9\n")
    _refused(invoke("sweep", path, "--out", tmp_path / "a"), f"{path}:2: runs: must be at most {MAX_RUNS:,}")
    grid = "grid:\n  policy.flagger.analysis.threshold: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n"
    path = _sweep(tmp_path, grid + "runs: 1e8\n")
    line = _refused(invoke("sweep", path, "--out", tmp_path / "b"), f"{path}:4: runs: ", "1,100,000,000 rollouts")
    assert f"at most {MAX_SWEEP_ROLLOUTS:,}" in line
    path = _sweep(tmp_path, grid + "runs: 10\n")
    _refused(invoke("sweep", path, "--out", tmp_path / "c", "--runs", "1e8"), "(--runs)", "rollouts")
    _refused(invoke("sweep", path, "--out", tmp_path / "d", "--runs", "1e9"), "--runs", f"at most {MAX_RUNS:,}")


def test_sweep_into_a_run_folder_is_refused(tmp_path: Path) -> None:
    """As ``run --out`` refuses a sweep's folder, ``sweep --out`` refuses a run's."""
    out = tmp_path / "out"
    assert invoke("run", SCENARIOS / "error-spike.yaml", "--runs", 3, "--out", out).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    assert any(RUN_CHUNK_RE.fullmatch(n) for n in before)
    path = _sweep(tmp_path, "runs: 2\n")
    _refused(invoke("sweep", path, "--out", out), f"pdsim: {out} holds results of a pdsim run")
    assert sorted(p.name for p in out.iterdir()) == before
