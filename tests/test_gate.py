"""Tests of ``pdsim check`` (sim.gates.decide, sim.gates.spec, sim.gates.output): decisions on
intervals, the paired baseline comparison, bad gates files, JUnit XML and markdown."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.errors import InputError
from sim.gates.decide import compare_paired, evaluate
from sim.gates.spec import Requirement, load_gates, parse_gates
from sim.stats import wilson_interval
from sim.yamlio import loads_yaml
from tests.helpers import invoke

SPIKE = """\
name: spike
traffic: {rate: 100/s, users: 5000}
release:
  faults:
    - {kind: error_rate, rate: 0.05, onset: 0s}
policy:
  flagger:
    analysis:
      interval: 1m
      threshold: 5
      maxWeight: 50
      stepWeight: 10
      metrics:
        - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
runs: 10
seed: 3
"""
GOOD = SPIKE.replace("name: spike", "name: good").replace(
    "  faults:\n    - {kind: error_rate, rate: 0.05, onset: 0s}\n", "  faults: []\n"
)
POLICY = """\
flagger:
  analysis:
    interval: 1m
    threshold: THRESHOLD
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "spike.yaml").write_text(SPIKE)
    (tmp_path / "good.yaml").write_text(GOOD)
    for t in (1, 5):
        (tmp_path / f"threshold-{t}.yaml").write_text(POLICY.replace("THRESHOLD", str(t)))
    return tmp_path


def write_gates(repo: Path, body: str) -> Path:
    path = repo / "gates.yaml"
    path.write_text(body)
    return path


# --- decisions on intervals ----------------------------------------------------------------


def frame(outcomes: list[str], bad: bool, **cols: list[float]) -> pd.DataFrame:
    n = len(outcomes)
    data = {"run": list(range(n)), "outcome": outcomes, "release_bad": [bad] * n}
    data.update(cols)
    return pd.DataFrame(data)


def test_rate_decided_on_its_wilson_interval():
    req = Requirement("false_rollback_rate", None, None, 0.01)
    # 0 of 400: the interval [0, 0.95%] lies under 1%.
    v = evaluate(req, frame(["promoted"] * 400, False), scenario="s")
    assert (v.decision, v.outcome, v.k, v.n) == ("pass", "pass", 0, 400)
    assert v.high == pytest.approx(wilson_interval(0, 400)[1])
    # 0 of 100: the interval reaches 3.7%: the runs cannot tell.
    v = evaluate(req, frame(["promoted"] * 100, False), scenario="s")
    assert v.decision == "inconclusive" and v.outcome == "fail"
    assert "raise runs" in v.message
    # 10 of 100: the whole interval lies above 1%.
    v = evaluate(req, frame(["rolled_back"] * 10 + ["promoted"] * 90, False), scenario="s")
    assert (v.decision, v.outcome) == ("fail", "fail")


def test_suggested_runs_would_decide():
    req = Requirement("detection_rate", None, 0.99, None)
    v = evaluate(req, frame(["rolled_back"] * 100, True), scenario="s")
    assert v.decision == "inconclusive" and v.suggested_runs is not None
    # At the suggested size, the same (perfect) detection decides; a bit below it does not.
    assert wilson_interval(v.suggested_runs, v.suggested_runs)[0] >= 0.99
    assert wilson_interval(v.suggested_runs // 2, v.suggested_runs // 2)[0] < 0.99
    assert f"{v.suggested_runs:,}" in v.message


@pytest.mark.parametrize("treatment,outcome", [("fail", "fail"), ("warn", "warn"), ("pass", "pass")])
def test_inconclusive_treatment(treatment, outcome):
    req = Requirement("detection_rate", None, 0.99, None)
    v = evaluate(req, frame(["rolled_back"] * 50, True), scenario="s", treatment=treatment)
    assert v.decision == "inconclusive" and v.outcome == outcome


def test_quantity_statistics():
    rng = np.random.default_rng(5)
    x = rng.exponential(100.0, size=2000)
    f = frame(["rolled_back"] * 2000, True, detection_time_s=list(x))
    p95 = Requirement("detection_time_s", "p95", None, 600.0)
    v = evaluate(p95, f, scenario="s")
    assert v.estimate == pytest.approx(np.quantile(x, 0.95))
    assert v.low <= v.estimate <= v.high and v.decision == "pass"  # true p95 is 300
    mean = Requirement("detection_time_s", "mean", None, 100.0)  # the true mean is on the bound
    v = evaluate(mean, f, scenario="s")
    assert v.decision == "inconclusive"
    assert evaluate(Requirement("detection_time_s", "mean", None, 80.0), f, scenario="s").decision == "fail"
    # 60 values cannot bound a p95 from above (0.95^60 > 2.5%): inconclusive, and the
    # suggestion is the smallest sample whose maximum can (0.95^72 < 2.5%).
    v = evaluate(p95, f.iloc[:60], scenario="s")
    assert v.decision == "inconclusive" and v.high == math.inf and v.suggested_runs == 72
    # NaN (not detected) values are left out of the statistic.
    g = frame(["rolled_back", "promoted"], True, detection_time_s=[10.0, math.nan])
    assert evaluate(Requirement("detection_time_s", "p50", None, 100.0), g, scenario="s").n == 1


def test_no_data_fails_own_requirement_and_skips_inherited_one():
    req = Requirement("detection_rate", None, 0.99, None)
    good = frame(["promoted"] * 10, False)
    assert evaluate(req, good, scenario="s").outcome == "fail"
    v = evaluate(req, good, scenario="s", inherited=True)
    assert (v.decision, v.outcome) == ("n/a", "skip") and "no bad releases" in v.message


# --- the paired comparison -----------------------------------------------------------------


def test_paired_rate_regression_uses_discordant_pairs():
    req = Requirement("false_rollback_rate", None, None, 0.05)
    n = 1000
    base = frame(["promoted"] * n, False)
    worse = frame(["rolled_back"] * 30 + ["promoted"] * (n - 30), False)
    r = compare_paired(req, worse, base, scenario="s")
    assert r.significant and r.difference == pytest.approx(0.03) and r.low > 0
    # The same marginal rates with the changes balanced both ways: no regression.
    mixed_a = frame(["rolled_back"] * 15 + ["promoted"] * (n - 15), False)
    mixed_b = frame(["promoted"] * 15 + ["rolled_back"] * 15 + ["promoted"] * (n - 30), False)
    r = compare_paired(req, mixed_a, mixed_b, scenario="s")
    assert not r.significant and r.low < 0 < r.high
    # Identical runs: exactly no difference.
    r = compare_paired(req, base, base, scenario="s")
    assert not r.significant and r.difference == 0


def test_paired_quantity_direction_follows_the_bound():
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 50, size=300)
    base = frame(["rolled_back"] * 300, True, excess_errors=list(100 + noise))
    changed = frame(["rolled_back"] * 300, True, excess_errors=list(110 + noise + rng.normal(0, 5, 300)))
    up = compare_paired(Requirement("excess_errors", "mean", None, 500.0), changed, base, scenario="s")
    assert up.significant and up.difference == pytest.approx(10, abs=1.5)
    # Bounded from below, a larger value is better: an improvement, not a regression.
    down = compare_paired(Requirement("excess_errors", "mean", 1.0, None), changed, base, scenario="s")
    assert not down.significant


# --- bad gates files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,line,needle",
    [
        (
            "scenarios: [good.yaml]\nrequirements:\n  detection_rat: {min: 0.9}\n",
            3,
            "requirements.detection_rat: unknown requirement",
        ),
        (
            "scenarios: [good.yaml]\nrequirements:\n  excess_errors.p100: {max: 3}\n",
            3,
            "requirements.excess_errors.p100: unknown statistic",
        ),
        ("scenarios: [good.yaml]\nrequirements:\n  excess_errors.median: {max: 3}\n", 3, "unknown statistic"),
        ("scenarios: [good.yaml]\nrequirements:\n  excess_errors: {max: 3}\n", 3, "needs a statistic"),
        ("scenarios: [good.yaml]\nrequirements:\n  detection_rate.mean: {min: 0.9}\n", 3, "takes no statistic"),
        (
            "scenarios: [good.yaml]\nrequirements:\n  false_rollback_rate: {max: 5}\n",
            3,
            "false_rollback_rate.max: a rate's bound must be between 0 and 1",
        ),
        ("scenarios: [good.yaml]\nrequirements:\n  false_rollback_rate: {max: lots}\n", 3, "must be a finite number"),
        ("scenarios: [good.yaml]\nrequirements:\n  false_rollback_rate: {below: 0.1}\n", 3, "unknown key"),
        (
            "scenarios: [good.yaml]\nrequirements:\n  excess_errors.mean: {min: 3, max: 1}\n",
            3,
            "min must not exceed max",
        ),
        ("scenarios: [good.yaml]\nrequirements:\n  excess_errors.mean: {}\n", 3, "needs a bound"),
        (
            "scenarios:\n  - good.yaml\n  - missing.yaml\nrequirements: {promoted: {min: 0.5}}\n",
            3,
            "scenarios[1]: no such file",
        ),
        (
            "policy: nope.yaml\nscenarios: [good.yaml]\nrequirements: {promoted: {min: 0.5}}\n",
            1,
            "policy: no such file",
        ),
        ("runs: 0\nscenarios: [good.yaml]\nrequirements: {promoted: {min: 0.5}}\n", 1, "runs: must be an integer"),
        ("inconclusive: maybe\nscenarios: [good.yaml]\n", 1, "inconclusive: must be one of fail, warn, pass"),
        ("scenarios: [good.yaml]\n", 1, "scenarios[0]: no requirements"),
        ("scenarios:\n  - path: good.yaml\n    runz: 3\n", 3, "scenarios[0].runz: unknown key"),
        ("scenario: [good.yaml]\n", 1, "scenario: unknown key"),
        ("requirements: {promoted: {min: 0.5}}\n", 1, "missing key scenarios"),
    ],
)
def test_bad_gates_file_is_one_line_and_exit_2(repo, body, line, needle):
    gates = write_gates(repo, body)
    result = invoke("check", gates)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{gates}:{line}: ") and needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_bad_scenario_named_by_a_gates_file_is_exit_2(repo):
    (repo / "broken.yaml").write_text(SPIKE.replace("runs: 10", "runs: many"))
    result = invoke("check", write_gates(repo, "scenarios: [broken.yaml]\nrequirements: {promoted: {min: 0}}\n"))
    assert result.exit_code == 2 and "broken.yaml:" in result.stderr and "runs" in result.stderr


def test_parse_gates_defaults_and_overrides(repo):
    gates = load_gates(
        write_gates(
            repo,
            """\
policy: [threshold-5.yaml]
runs: 50
requirements:
  false_rollback_rate: {max: 0.05}
scenarios:
  - good.yaml
  - path: spike.yaml
    runs: 70
    seed: 9
    requirements:
      detection_rate: {min: 0.9}
      false_rollback_rate: {max: 0.5}
""",
        )
    )
    assert gates.name == "gates" and gates.inconclusive == "fail" and gates.confidence == 0.95
    good, spike = gates.scenarios
    assert (good.runs, good.seed, good.requirements) == (50, None, ())
    assert [r.name for r in good.inherited] == ["false_rollback_rate"]
    assert (spike.runs, spike.seed) == (70, 9)
    assert [r.name for r in spike.requirements] == ["detection_rate", "false_rollback_rate"]
    assert spike.inherited == ()  # the scenario's own bound replaces the file-wide one
    with pytest.raises(InputError):
        parse_gates(loads_yaml("scenarios: 3\n", "x.yaml"))


# --- end to end ------------------------------------------------------------------------------

PASSING = """\
name: small
policy: threshold-5.yaml
runs: 60
seed: 11
requirements:
  false_rollback_rate: {max: 0.2}
scenarios:
  - good.yaml
  - path: spike.yaml
    requirements:
      detection_rate: {min: 0.8}
      detection_time_s.p90: {max: 900}
      excess_errors.mean: {max: 1000}
"""


def junit_cases(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
    return cases


def test_check_passes_with_junit_and_markdown(repo):
    gates = write_gates(repo, PASSING)
    junit, md = repo / "out" / "junit.xml", repo / "summary.md"
    (repo / "out").mkdir()
    result = invoke("check", gates, "--junit", junit, "--markdown", md)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "PASSED: 4 pass, 1 skip"
    cases = junit_cases(junit)
    # One testcase per requirement and scenario: the inherited false-rollback bound is
    # skipped (no good releases) on the bad release.
    names = sorted((c.get("classname"), c.get("name").split()[0]) for c in cases)
    assert names == sorted(
        [
            ("small.good", "false_rollback_rate"),
            ("small.spike", "false_rollback_rate"),
            ("small.spike", "detection_rate"),
            ("small.spike", "detection_time_s.p90"),
            ("small.spike", "excess_errors.mean"),
        ]
    )
    assert all(c.find("failure") is None for c in cases)
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert [c.get("classname") for c in skipped] == ["small.spike"]
    text = md.read_text()
    assert text.startswith("### pdsim check `small`: ✅ passed")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "requirement" not in ln]
    assert len(rows) == 5  # one row per requirement and scenario
    assert "Reproduce: `pdsim check" in text


def test_check_fails_on_a_bound_and_on_inconclusive(repo):
    failing = PASSING.replace("excess_errors.mean: {max: 1000}", "excess_errors.mean: {max: 1}")
    junit = repo / "junit.xml"
    result = invoke("check", write_gates(repo, failing), "--junit", junit)
    assert result.exit_code == 1
    failed = [c for c in junit_cases(junit) if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["excess_errors.mean ≤ 1"]
    assert failed[0].find("failure").get("type") == "bound"
    # 60 runs cannot show a detection rate of at least 99%: inconclusive, a failure by default...
    strict = PASSING.replace("detection_rate: {min: 0.8}", "detection_rate: {min: 0.99}")
    result = invoke("check", write_gates(repo, strict), "--junit", junit)
    assert result.exit_code == 1 and "FAIL (inconclusive)" in result.stdout and "raise runs" in result.stdout
    failed = [c for c in junit_cases(junit) if c.find("failure") is not None]
    assert [c.find("failure").get("type") for c in failed] == ["inconclusive"]
    # ... a warning when the file says so.
    result = invoke("check", write_gates(repo, "inconclusive: warn\n" + strict), "--junit", junit)
    assert result.exit_code == 0 and "WARN (inconclusive)" in result.stdout
    assert sum(c.find("skipped") is not None for c in junit_cases(junit)) == 2


def test_baseline_regression_on_common_random_numbers(repo):
    gates = write_gates(repo, PASSING)
    # The same policy as baseline: the same seeds give identical runs, no difference at all.
    same = invoke("check", gates, "--baseline", repo / "threshold-5.yaml")
    assert same.exit_code == 0, same.stdout + same.stderr
    assert "significant regression:" not in same.stdout and "no significant change" in same.stdout
    assert same.stdout.strip().splitlines()[-1].endswith("; 0 significant regressions")
    # Against a baseline that rolls back after one failed check, threshold 5 detects later
    # and lets more errors through: a significant regression.
    junit = repo / "junit.xml"
    worse = invoke("check", gates, "--baseline", repo / "threshold-1.yaml", "--junit", junit)
    assert worse.exit_code == 1
    assert worse.stdout.strip().splitlines()[-1].endswith("; 2 significant regressions")
    regressions = [c for c in junit_cases(junit) if "vs baseline" in c.get("name")]
    failed = {c.get("name").split()[0] for c in regressions if c.find("failure") is not None}
    assert failed == {"detection_time_s.p90", "excess_errors.mean"}


def test_bad_baseline_is_exit_2(repo):
    result = invoke("check", write_gates(repo, PASSING), "--baseline", repo / "missing.yaml")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


# --- calibration: how often the gate errs --------------------------------------------------


def test_wrong_decisions_are_rare_at_the_bound_and_power_away_from_it():
    """Each side of a 95% interval errs at most 2.5% of the time: a policy whose true false-
    rollback rate sits exactly on the bound passes (wrongly) at most ~2.5% of the time, and
    one whose true rate is far inside the bound passes nearly always. Binomial draws from a
    fixed-seed Generator; 2000 replications bound each frequency to about ±1%."""
    rng = np.random.default_rng(20261130)
    req = Requirement("false_rollback_rate", None, None, 0.05)
    n, reps = 400, 2000

    cache: dict[int, str] = {}

    def decide(k: int) -> str:  # the decision depends on k only: evaluate each k once
        if k not in cache:
            cache[k] = evaluate(req, frame(["rolled_back"] * k + ["promoted"] * (n - k), False), scenario="s").decision
        return cache[k]

    def decisions(p: float) -> dict[str, float]:
        out = [decide(int(k)) for k in rng.binomial(n, p, size=reps)]
        return {d: out.count(d) / reps for d in ("pass", "fail", "inconclusive")}

    on_bound = decisions(0.05)
    assert on_bound["pass"] <= 0.035 and on_bound["fail"] <= 0.035  # Wilson: each side <= ~2.5%
    assert on_bound["inconclusive"] >= 0.93
    inside = decisions(0.01)
    assert inside["pass"] >= 0.95 and inside["fail"] == 0.0
    outside = decisions(0.12)
    assert outside["fail"] >= 0.95 and outside["pass"] == 0.0
