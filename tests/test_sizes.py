"""Bounded work for any size asked (issue 13 items 8 and 9): run counts, sweep grids and
long horizons are refused with exit 2 stating the size when they cannot finish, and what
is accepted is simulated lazily, chunk by chunk, without lists of every run up front."""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from sim.errors import InputError
from sim.inputs.scenario import Scenario, load_scenario
from sim.limits import MAX_RUNS, MAX_SWEEP_CELLS, MAX_SWEEP_ROLLOUTS
from sim.runs.runner import iter_chunks, run_batch
from sim.runs.store import RUN_CHUNK_RE
from tests.helpers import POLICY_FILE, SCENARIOS, invoke, line_of, write

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
    grid = "grid:\n  policy.flagger.analysis.threshold: [" + ", ".join(str(v) for v in range(1, 401)) + "]\n"
    path = _sweep(tmp_path, grid + "runs: 3e6\n")
    line = _refused(invoke("sweep", path, "--out", tmp_path / "b"), f"{path}:4: runs: ", "1,200,000,000 rollouts")
    assert f"at most {MAX_SWEEP_ROLLOUTS:,}" in line
    path = _sweep(tmp_path, grid + "runs: 10\n")
    _refused(invoke("sweep", path, "--out", tmp_path / "c", "--runs", "3e6"), "(--runs)", "rollouts")
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


# --- item 9: long horizons ----------------------------------------------------------------------

NEVER = (
    """\
name: never-decides
horizon: HORIZON
traffic: {rate: 100/s, users: 20000}
telemetry: {scrape_interval: 15s}
webhooks: {confirm-promotion: fail}
policy:
"""
    + textwrap.indent(POLICY_FILE, "  ")
    + """\
      webhooks:
        - {name: approve, type: confirm-promotion, url: http://x/gate}
runs: 3
seed: 1
"""
)


def test_long_horizons_simulate_fewer_runs_at_once(tmp_path: Path) -> None:
    """A batch's scraped counters stay under BATCH_TELEMETRY_BYTES: a 366-day horizon is
    simulated one run at a time (before: 500 runs' year of scrapes in one batch)."""
    from sim.runs import runner

    # Scraped every 32 s: 988,200 scrapes, just inside MAX_SCRAPES_PER_RUN.
    text = NEVER.replace("HORIZON", "366d").replace("scrape_interval: 15s", "scrape_interval: 32s")
    year = load_scenario(write(tmp_path, "y.yaml", text))
    assert runner.batch_size(year) == 1
    for path in SCENARIOS.glob("*.yaml"):  # the bundled scenarios keep large batches
        scenario = load_scenario(path)  # (2 hours of 15-second scrapes: 1,577 runs),
        if scenario.horizon <= 86400:
            assert 1000 <= runner.batch_size(scenario) <= runner.BATCH, path.name
        else:  # but for the A/B experiments' 15 days of 5-minute scrapes: still 100s of runs
            assert 100 <= runner.batch_size(scenario) < runner.BATCH, path.name


def test_records_do_not_depend_on_the_batch_size(error_spike: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.runs import runner

    policy = _policy(error_spike)
    whole = run_batch(error_spike, policy, 7, 3)
    monkeypatch.setattr(runner, "BATCH_TELEMETRY_BYTES", 1)  # one run per batch
    assert runner.batch_size(error_spike) == 1
    assert run_batch(error_spike, policy, 7, 3) == whole


def test_a_rollout_that_ticks_too_often_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ticks per run are bounded (limits.MAX_TICKS_PER_RUN, lowered here to keep the test
    fast): a policy that never decides over a long horizon is refused, not run for hours."""
    import sim.world.controller as controller

    monkeypatch.setattr(controller, "MAX_TICKS_PER_RUN", 50)
    path = write(tmp_path, "never.yaml", NEVER.replace("HORIZON", "2h"))
    _refused(invoke("run", path), "never-decides:1: horizon: ", "ticks more than 50 times")
    assert invoke("run", write(tmp_path, "short.yaml", NEVER.replace("HORIZON", "45m"))).exit_code == 0


def _replay_files(tmp_path: Path, rows: str) -> tuple[Path, Path]:
    policy = write(
        tmp_path,
        "policy.yaml",
        "flagger:\n  analysis:\n    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 10\n"
        "    metrics:\n      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n",
    )
    return policy, write(tmp_path, "obs.csv", "t,metric,value\n" + rows)


def test_replay_observation_beyond_the_longest_horizon(tmp_path: Path) -> None:
    """Before: one row at t = 1e9 made 16 million ticks, kept in memory (7.4 GB)."""
    policy, obs = _replay_files(tmp_path, "0,request-success-rate,99.9\n1e9,request-success-rate,99\n")
    _refused(invoke("replay", policy, "--observations", obs), f"{obs}:3: t: must be at most", "(got 1e9)")
    policy, obs = _replay_files(tmp_path, "0,request-success-rate,99.9\n")
    _refused(invoke("replay", policy, "--observations", obs, "--horizon", "1000d"), "--horizon", "(got 1000d)")


def test_replay_keeps_its_trace_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.inputs.policy import load_policy
    from sim.policies import driver
    from sim.runs.replay import load_observations, replay

    policy_path, obs = _replay_files(tmp_path, "0,request-success-rate,99.9\n600,request-success-rate,99.9\n")
    policy, observations = load_policy([policy_path]), load_observations(obs)
    traced, bare = replay(policy, observations), replay(policy, observations, trace=False)
    assert len(traced.trace) == traced.ticks > 1 and bare.trace == []
    assert (bare.decision, bare.ticks, bare.final_phase) == (traced.decision, traced.ticks, traced.final_phase)
    monkeypatch.setattr(driver, "MAX_TICKS_PER_RUN", 3)
    with pytest.raises(InputError, match="ticks more than 3 times"):
        replay(policy, observations, trace=False)
