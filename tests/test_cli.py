"""Tests for the ``pdsim`` command line (sim.cli; docs/architecture.md section 6, a contract)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim import cli as cli_mod
from sim.seeds import run_seed
from tests.helpers import POLICY_FILE as POLICY
from tests.helpers import RECORD_FIELDS, REPO, invoke, line_of

# A copy of scenarios/error-spike.yaml (kept here so edits to the shipped scenarios do not
# move the line numbers these tests check), with a small default `runs`.
BASE = """\
name: error-spike
description: The release fails 5% of requests from the moment it starts.
horizon: 2h
after_promotion: 30m
traffic:
  rate: 100/s
  users: 20000
baseline:
  error_rate: 0.001
  latency: {median: 40ms, p99: 250ms}
release:
  faults:
    - {kind: error_rate, rate: 0.05, onset: 0s}
telemetry:
  scrape_interval: 15s
  noise: true
policy:
  flagger:
    analysis:
      interval: 1m
      threshold: 5
      maxWeight: 50
      stepWeight: 10
      metrics:
        - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
        - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}
runs: 20
seed: 42
"""


TRACE_FIELDS = {
    "t",
    "tick",
    "phase",
    "canary_weight",
    "routed_weight",
    "failed_checks",
    "iterations",
    "actions",
    "metrics",
}
JSON_KEYS = {"scenario", "policy", "runs", "seed", "outcomes", "summary", "records"}


def _stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "error-spike.yaml"
    path.write_text(BASE)
    return path


def run_json(*args: object) -> dict:
    result = invoke("run", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # exactly one JSON document, nothing else


# --- run --json ----------------------------------------------------------------------------


def test_run_json_contract(scenario: Path) -> None:
    out = run_json(scenario, "--runs", 20, "--seed", 7)
    assert set(out) == JSON_KEYS
    assert out["scenario"] == "error-spike"
    assert out["runs"] == 20 and out["seed"] == 7
    assert set(out["outcomes"]) == {"promoted", "rolled_back", "unfinished"}
    assert sum(out["outcomes"].values()) == 20
    assert len(out["records"]) == 20
    for k, rec in enumerate(out["records"]):
        assert set(RECORD_FIELDS) <= set(rec)
        assert rec["run"] == k
        assert rec["policy"] == out["policy"]
    assert out["records"][0]["seed"] == run_seed(7, 0, 0)
    assert out["summary"]["runs"] == 20
    assert out["summary"]["rolled_back"]["k"] == out["outcomes"]["rolled_back"]


def test_run_defaults_come_from_the_scenario(scenario: Path) -> None:
    out = run_json(scenario)
    assert out["runs"] == 20 and out["seed"] == 42
    assert out["records"][0]["seed"] == run_seed(42, 0, 0)
    assert out["outcomes"]["rolled_back"] == 20  # a 5% error spike is always caught


def test_run_json_has_no_nan_and_is_reproducible(scenario: Path) -> None:
    first = invoke("run", scenario, "--runs", 15, "--json")
    second = invoke("run", scenario, "--runs", 15, "--json")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout
    assert "NaN" not in first.stdout and "Infinity" not in first.stdout
    json.loads(first.stdout)


def test_run_workers_give_identical_records(scenario: Path) -> None:
    one = run_json(scenario, "--runs", 24, "--workers", 1, "--chunk-size", 8)
    two = run_json(scenario, "--runs", 24, "--workers", 2, "--chunk-size", 8)
    assert one["records"] == two["records"]
    assert one == two


def test_run_with_policy_file(scenario: Path, tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text(POLICY)
    out = run_json(scenario, "--policy", policy, "--runs", 5)
    assert out["policy"] == "strict"
    assert {r["policy"] for r in out["records"]} == {"strict"}


def test_run_without_any_policy_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "nopolicy.yaml"
    text = BASE[: BASE.index("policy:")] + BASE[BASE.index("runs:") :]
    path.write_text(text)
    result = invoke("run", path)
    assert result.exit_code == 2
    lines = _stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"{path}:1: policy: ")
    assert result.stdout == ""
    # ... but it is a valid scenario, and --policy supplies what it lacks.
    assert invoke("validate", path).exit_code == 0
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    assert run_json(path, "--policy", policy)["policy"] == "p"


def test_run_passes_exact_workers_and_chunk_size(scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.runs.runner

    real = sim.runs.runner.iter_chunks
    seen: dict = {}

    def spy(scenario, policy, runs, seed, **kw):
        seen.update(kw, runs=runs, seed=seed)
        return real(scenario, policy, runs, seed, **{**kw, "exact": False, "workers": 1})

    monkeypatch.setattr(sim.runs.runner, "iter_chunks", spy)
    out = run_json(scenario, "--runs", 4, "--seed", 3, "--exact", "--workers", 3, "--chunk-size", 2)
    assert out["runs"] == 4
    assert seen["exact"] is True and seen["workers"] == 3 and seen["chunk_size"] == 2
    assert (seen["runs"], seen["seed"]) == (4, 3)


# --- default output --------------------------------------------------------------------------


def test_run_default_table(scenario: Path) -> None:
    result = invoke("run", scenario, "--runs", 20)
    assert result.exit_code == 0
    text = result.stdout
    assert text.splitlines()[0] == "scenario: error-spike  policy: error-spike/flagger-canary  runs: 20  seed: 42"
    for name in (
        "promoted",
        "rolled_back",
        "unfinished",
        "detection_rate",
        "missed_rate",
        "detection_time_s",
        "excess_errors",
    ):
        assert name in text
    # rates carry their 95% intervals
    assert "95% CI" in text
    assert re.search(r"rolled_back\s+100\.0% \[\d+\.\d%, 100\.0%\]\s+20/20", text)
    assert "outcomes: promoted 0, rolled_back 20, unfinished 0" in text
    assert "rollouts" not in result.stderr  # no progress bar when stderr is not a terminal


# --- --trace -----------------------------------------------------------------------------------


def test_run_trace_jsonl(scenario: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    out = run_json(scenario, "--runs", 5, "--trace", trace)
    lines = trace.read_text().splitlines()
    assert lines
    ticks = [json.loads(line) for line in lines]
    for i, tick in enumerate(ticks, 1):
        assert TRACE_FIELDS <= set(tick)
        assert tick["tick"] == i
        assert isinstance(tick["actions"], list) and isinstance(tick["metrics"], dict)
    assert ticks[0]["t"] == 60.0 and ticks[0]["tick"] == 1 and ticks[0]["phase"] == "Progressing"
    assert "NaN" not in trace.read_text()
    # the trace is run 0 of the batch: it ends where run 0's record says it does
    rec = out["records"][0]
    assert len(ticks) == rec["ticks"]
    assert ticks[-1]["t"] == rec["decision_time_s"]


# --- --out ----------------------------------------------------------------------------------------


def test_run_out_dir_streams_parquet_chunks(scenario: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "results" / "deep"
    result = invoke("run", scenario, "--runs", 30, "--out", out_dir, "--chunk-size", 10, "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    names = sorted(os.listdir(out_dir))
    assert names == ["records-00000.parquet", "records-00001.parquet", "records-00002.parquet", "summary.json"]
    frames = [pd.read_parquet(out_dir / n) for n in names if n.endswith(".parquet")]
    assert [len(f) for f in frames] == [10, 10, 10]
    df = pd.concat(frames, ignore_index=True)
    assert list(df["run"]) == list(range(30))
    assert set(RECORD_FIELDS) <= set(df.columns)
    # every chunk has the same schema, nulls included
    assert len({tuple(map(str, f.dtypes)) for f in frames}) == 1
    assert df["seed"].tolist() == [r["seed"] for r in printed["records"]]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary == {k: v for k, v in printed.items() if k != "records"}


def test_run_out_replaces_an_earlier_run_with_force(scenario: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    assert invoke("run", scenario, "--runs", 30, "--out", out_dir, "--chunk-size", 10).exit_code == 0
    (out_dir / "notes.txt").write_text("mine")
    assert invoke("run", scenario, "--runs", 10, "--out", out_dir, "--chunk-size", 10).exit_code == 2  # issue 13
    assert invoke("run", scenario, "--runs", 10, "--out", out_dir, "--chunk-size", 10, "--force").exit_code == 0
    assert sorted(os.listdir(out_dir)) == ["notes.txt", "records-00000.parquet", "summary.json"]


def test_run_out_interrupted_keeps_finished_chunks(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "out"
    real_call = cli_mod.ChunkWriter.__call__

    def interrupt_after_two(self, records):
        if len(self.files) == 2:
            raise KeyboardInterrupt
        real_call(self, records)

    monkeypatch.setattr(cli_mod.ChunkWriter, "__call__", interrupt_after_two)
    result = invoke("run", scenario, "--runs", 40, "--out", out_dir, "--chunk-size", 10)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    assert sorted(os.listdir(out_dir)) == ["records-00000.parquet", "records-00001.parquet"]
    assert len(pd.read_parquet(out_dir / "records-00001.parquet")) == 10


def test_run_out_unusable_dir(scenario: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("run", scenario, "--runs", 5, "--out", blocker / "sub")
    assert result.exit_code == 2
    assert len(_stderr_lines(result)) == 1
    assert "Traceback" not in result.output


def test_run_trace_unwritable(scenario: Path, tmp_path: Path) -> None:
    result = invoke("run", scenario, "--runs", 5, "--trace", tmp_path / "no" / "such" / "t.jsonl")
    assert result.exit_code == 2
    assert [line for line in _stderr_lines(result) if "Warning" not in line and "np." not in line] == [
        f"pdsim: cannot write --trace {tmp_path / 'no' / 'such' / 't.jsonl'}: No such file or directory"
    ]


# --- bad input -------------------------------------------------------------------------------------


def _edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


BOMB = (
    "\n".join(
        [f"a: &a [{','.join(['lol'] * 9)}]"]
        + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    )
    + "\n"
)

#: name -> (file content, needle whose line is expected or a line number or None, field or None)
BAD_INPUTS = {
    "typo_optional_key": (_edit("baseline:", "baselin:"), "baselin:", "baselin"),
    "wrong_type": (_edit("users: 20000", "users: many"), "users: many", "traffic.users"),
    "negative_rate": (_edit("rate: 100/s", "rate: -5/s"), "rate: -5/s", "traffic.rate"),
    "error_rate_above_1": (_edit("error_rate: 0.001", "error_rate: 1.5"), "error_rate: 1.5", "baseline.error_rate"),
    "weight_above_100": (
        _edit("maxWeight: 50", "maxWeight: 150"),
        "maxWeight: 150",
        "policy.flagger.analysis.maxWeight",
    ),
    "p99_below_median": (_edit("p99: 250ms", "p99: 10ms"), "p99: 10ms", "baseline.latency"),
    "broken_yaml": ("name: x\ntraffic: {rate: 100/s\nbaseline: [\n", 3, None),
    "empty": ("", 1, None),
    "python_tag": (
        'name: !!python/object/apply:os.system ["echo pwned > {marker}"]\ntraffic: {{rate: 100/s}}\n',
        1,
        "name",
    ),
    "alias_bomb": (BOMB, None, None),
    "binary_junk": (random.Random(0).randbytes(700) + b"\0junk\n", None, None),
}


def _bad_file(tmp_path: Path, case: str) -> tuple[Path, int | None, str | None]:
    content, where, field = BAD_INPUTS[case]
    path = tmp_path / f"{case}.yaml"
    if case == "python_tag":
        content = content.format(marker=tmp_path / "pwned")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    line = line_of(content, where) if isinstance(where, str) else where
    return path, line, field


def _assert_one_error_line(result, path: Path, line: int | None, field: str | None) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    lines = _stderr_lines(result)
    assert len(lines) == 1, lines
    err = lines[0]
    prefix = re.escape(str(path)) + (rf":{line}:" if line is not None else r":\d+:")
    assert re.match(prefix, err), err
    if field is not None:
        assert err.startswith(f"{path}:{line}: {field}"), err
    return err


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(tmp_path: Path, case: str, command: str) -> None:
    path, line, field = _bad_file(tmp_path, case)
    args = ["validate", path] if command == "validate" else ["run", path, "--runs", 5]
    result = invoke(*args)
    err = _assert_one_error_line(result, path, line, field)
    assert result.stdout == ""
    if case == "python_tag":
        assert not (tmp_path / "pwned").exists()
        assert "pwned" not in result.stdout
    if case == "weight_above_100":
        assert "150" in err
    if case.startswith("typo"):
        assert "unknown key" in err


@pytest.mark.parametrize("command", ["validate", "run"])
def test_typo_of_required_key_names_the_typo(tmp_path: Path, command: str) -> None:
    path = tmp_path / "typo.yaml"
    text = _edit("traffic:", "trafic:")
    path.write_text(text)
    result = invoke(command, path)
    err = _assert_one_error_line(result, path, line_of(text, "trafic:"), "trafic")
    assert "unknown key" in err


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_file(tmp_path: Path, command: str) -> None:
    path = tmp_path / "nope.yaml"
    result = invoke(command, path)
    _assert_one_error_line(result, path, 1, None)


def test_bad_policy_file(scenario: Path, tmp_path: Path) -> None:
    policy = tmp_path / "bad-policy.yaml"
    text = POLICY.replace("maxWeight: 50", "maxWeight: 150")
    policy.write_text(text)
    line = line_of(text, "maxWeight")
    for args in (["validate", policy], ["run", scenario, "--policy", policy]):
        result = invoke(*args)
        _assert_one_error_line(result, policy, line, "flagger.analysis.maxWeight")


def test_usage_errors_exit_2(scenario: Path) -> None:
    for args in (
        ["run", scenario, "--bogus"],
        ["run", scenario, "--runs", 0],
        ["run", scenario, "--runs", "x"],
        ["validate"],
        ["nosuchcommand"],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


def test_internal_error_is_one_line_exit_3(scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.runs.runner

    def boom(*_a, **_k):
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(sim.runs.runner, "iter_chunks", boom)
    monkeypatch.delenv("PDSIM_DEBUG", raising=False)
    result = invoke("run", scenario, "--runs", 3)
    assert result.exit_code == 3
    assert _stderr_lines(result) == ["pdsim: internal error: RuntimeError: kaput second line"]


# --- validate and schema ------------------------------------------------------------------------------


def test_validate_good_scenario_and_policy(scenario: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    result = invoke("validate", scenario, policy)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{scenario}: ok (scenario error-spike)", f"{policy}: ok (policy)"]
    assert result.stderr == ""


def test_validate_mixed_good_and_bad(scenario: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_edit("users: 20000", "users: many"))
    result = invoke("validate", scenario, bad)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"{scenario}: ok (scenario error-spike)"]
    assert len(_stderr_lines(result)) == 1


def test_validate_shipped_scenarios() -> None:
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    assert files
    result = invoke("validate", *files)
    assert result.exit_code == 0, result.stderr


def test_schema() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"traffic", "policy", "name", "runs", "seed"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


# --- the real entry point -------------------------------------------------------------------------------


def _python_m_sim(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PDSIM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_python_m_sim(scenario: Path, tmp_path: Path) -> None:
    ok = _python_m_sim("run", scenario, "--runs", 5, "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)) == JSON_KEYS
    bad = tmp_path / "bad.yaml"
    bad.write_text(_edit("maxWeight: 50", "maxWeight: 150"))
    res = _python_m_sim("run", bad.name, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"bad.yaml:{line_of(BASE, 'maxWeight')}: policy.flagger.analysis.maxWeight: "
        "Input should be less than or equal to 100 (got 150)"
    ]


def test_version_is_the_installed_distributions():
    """``pdsim --version`` reads the version of the distribution that installed it
    (``pdsim-rollouts``), as results manifests do; never ``0+unknown`` once installed."""
    from importlib.metadata import version

    from sim import DISTRIBUTION
    from sim.runs.store import package_versions

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"pdsim {version(DISTRIBUTION)}"
    assert package_versions()["pdsim"] == version(DISTRIBUTION)
