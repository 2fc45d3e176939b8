"""The ``frontier:`` key of gates files (sim.gates.frontier, spec, decide, output): ``pdsim check``
fails a policy that a feasible ``pdsim tune`` frontier candidate beats by more than a margin on
every objective, judged on the intervals, on the tune's portfolio and seeds.

The tune folders here are synthetic (``tune.json`` and ``frontier.parquet`` as the issue 18
contract describes them) but their candidate's numbers are real: the candidate policy is
simulated on the same portfolio, runs and seeds with the same estimators, so the gate's
comparison is the one a real tune output would give.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from sim.errors import InputError
from sim.gates.frontier import TuneFrontier, dominance, ratio, read_tune
from sim.gates.spec import load_gates
from sim.inputs.policy import read_policy
from sim.tuning.metrics import Estimate, estimates, parse_metric
from sim.tuning.portfolio import evaluate, load_portfolio
from sim.yamlio import loads_yaml
from tests.helpers import SCENARIOS, invoke
from tests.helpers.flagger import POLICY_FILE

RUNS = 40
SEED = 7
OBJECTIVES = ["excess_errors.mean", "detection_time_s.median"]
CONSTRAINTS = {"false_rollback_rate": {"max": 0.1}}
PORTFOLIO = [
    {"name": "good", "scenario": str(SCENARIOS / "good-release.yaml"), "weight": 0.5},
    {"name": "spike", "scenario": str(SCENARIOS / "error-spike.yaml"), "weight": 0.5},
]
SPACE = {
    "policy.flagger.analysis.interval": {"choices": ["30s", "1m"]},
    "policy.flagger.analysis.threshold": {"low": 1, "high": 10},
    "policy.flagger.analysis.stepWeight": {"low": 2, "high": 50},
}
#: Flagger's default-like analysis (the bundled canary): detects an error spike after 5 failed
#: one-minute checks.
DEFAULT = POLICY_FILE
#: The hand-found policy of issue 18: 30 s checks, small steps, rollback at the first failure.
FAST = """\
flagger:
  analysis:
    interval: 30s
    threshold: 1
    maxWeight: 30
    stepWeight: 2
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 30s}
"""
FAST_VALUES = {"policy.flagger.analysis.interval": "30s", "policy.flagger.analysis.threshold": 1.0}
FAST_VALUES["policy.flagger.analysis.stepWeight"] = 2.0


def measure(policy_text: str, tmp: Path) -> dict[str, Estimate]:
    """A policy's objectives and constraints on the portfolio, as the tune estimates them."""
    path = tmp / "measured.yaml"
    path.write_text(policy_text)
    doc = loads_yaml(json.dumps({"portfolio": PORTFOLIO}), "tune.json")
    portfolio = load_portfolio(PORTFOLIO, Path(), doc, ("portfolio",), stream=0)
    frame = evaluate(read_policy([path]).build(), portfolio, 0, RUNS, SEED)
    metrics = [parse_metric(m) for m in [*OBJECTIVES, *CONSTRAINTS]]
    return estimates(frame, portfolio.weights, metrics, seed=SEED)


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, dict[str, Estimate]]:
    tmp = tmp_path_factory.mktemp("measured")
    return {"default": measure(DEFAULT, tmp), "fast": measure(FAST, tmp)}


def row(candidate: int, est: dict[str, Estimate], *, feasible: bool = True, **values: object) -> dict:
    """One frontier.parquet row with the contract's columns."""
    out: dict[str, object] = {"candidate": candidate, "label": f"#{candidate}", "base": False}
    out.update(values)
    out.update({"rung": 1, "runs": RUNS, "rollouts": RUNS * len(PORTFOLIO)})
    for m, e in est.items():
        out.update({m: e.value, f"{m}_low": e.low, f"{m}_high": e.high})
    for m in CONSTRAINTS:
        out[f"{m}_ok"] = feasible
    out.update({"feasible": feasible, "frontier": True, "best": candidate == 7})
    return out


def write_tune(folder: Path, rows: list[dict], **overrides: object) -> Path:
    """A pdsim tune output folder: tune.json and frontier.parquet per the issue 18 contract."""
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "name": "flagger-default",
        "tune_file": "tune.yaml",
        "sha256": "0" * 64,
        "seed": SEED,
        "budget": 20,
        "objectives": OBJECTIVES,
        "constraints": CONSTRAINTS,
        "confidence": 0.95,
        "space": SPACE,
        "rungs": [10, RUNS],
        "portfolio": PORTFOLIO,
        "validation_portfolio": PORTFOLIO,
        "base": {"paths": ["canary.yaml"], "name": "canary", "kind": "flagger", "manifest": False},
        "pick": {"rule": "balanced", "description": "..."},
        "best": 7,
        "status": "done",
        "elapsed_s": 1.0,
        "rollouts": 1000,
    }
    info.update(overrides)
    (folder / "tune.json").write_text(json.dumps(info, indent=2))
    pd.DataFrame(rows).to_parquet(folder / "frontier.parquet")
    return folder


@pytest.fixture
def repo(tmp_path: Path, measured) -> Path:
    (tmp_path / "default.yaml").write_text(DEFAULT)
    (tmp_path / "fast.yaml").write_text(FAST)
    write_tune(tmp_path / "tune" / "out", [row(7, measured["fast"], **FAST_VALUES)])
    return tmp_path


def gates_file(repo: Path, margin: object = 2, policy: str = "default.yaml", extra: str = "") -> Path:
    path = repo / "gates.yaml"
    path.write_text(f"name: canary\npolicy: {policy}\nfrontier:\n  tune: tune/out\n  margin: {margin}\n{extra}")
    return path


def est(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 100)


# --- the rule, objective by objective -----------------------------------------------------


def test_margin_is_judged_on_the_policy_low_end_against_the_candidate_high_end():
    policy = est(400, 300, 500)
    # 300 >= 2 x 150 exactly: dominated at the margin; the candidate's point value never counts.
    at = ratio("excess_errors.mean", policy, (100, 50, 150), 2)
    assert at.dominated and at.low == 2.0 and at.factor == 4.0 and at.high == 10.0
    assert not ratio("excess_errors.mean", policy, (100, 50, 150.001), 2).dominated
    assert ratio("excess_errors.mean", policy, (100, 50, 150.001), 1.99).dominated
    # The point values say 4x, but the intervals overlap: noise alone never fails the gate.
    assert not ratio("excess_errors.mean", est(400, 100, 700), (100, 10, 190), 1).dominated


def test_a_candidate_with_none_at_all_dominates_by_any_margin():
    assert ratio("excess_errors.mean", est(5, 1, 9), (0, 0, 0), 1e9).dominated
    assert math.isinf(ratio("excess_errors.mean", est(5, 1, 9), (0, 0, 0), 2).low)
    # ... but not a policy that has none either, not even at margin 1.
    none = ratio("excess_errors.mean", est(0, 0, 0), (0, 0, 0), 1)
    assert not none.dominated and math.isnan(none.factor)


def test_a_candidate_no_better_never_dominates_even_at_margin_1():
    # A degenerate interval (every bad release detected at the same tick) equal on both sides.
    assert not ratio("detection_time_s.median", est(480, 480, 480), (480, 480, 480), 1).dominated
    assert ratio("detection_time_s.median", est(480, 480, 480), (479, 479, 479), 1).dominated


def test_undefined_and_unbounded_ends():
    # A candidate whose median detection is unbounded above shows nothing.
    assert not ratio("detection_time_s.median", est(500, 400, 600), (100, 50, math.inf), 1).dominated
    assert not ratio("detection_time_s.median", est(500, 400, 600), (math.nan,) * 3, 1).dominated
    assert not ratio("detection_time_s.median", est(math.nan, math.nan, math.nan), (1, 1, 1), 1).dominated
    # A policy that misses most bad releases has an infinite median detection time: any finite
    # candidate beats it there.
    assert ratio("detection_time_s.median", est(math.inf, math.inf, math.inf), (120, 120, 150), 100).dominated


def tune_of(rows: list[dict]) -> TuneFrontier:
    return TuneFrontier(
        folder=Path("out"),
        doc=loads_yaml("{}", "tune.json"),
        frontier=pd.DataFrame(rows),
        name="t",
        objectives=tuple(OBJECTIVES),
        constraints=CONSTRAINTS,
        space=tuple(SPACE),
        seed=SEED,
        last_rung=RUNS,
    )


def test_every_objective_must_be_beaten_and_infeasible_candidates_do_not_count():
    policy = {"excess_errors.mean": est(300, 280, 320), "detection_time_s.median": est(480, 480, 480)}
    better_on_one = {"excess_errors.mean": est(10, 8, 12), "detection_time_s.median": est(500, 480, 540)}
    better_on_both = {"excess_errors.mean": est(10, 8, 12), "detection_time_s.median": est(120, 120, 150)}
    fr = {"false_rollback_rate": est(0.01, 0.0, 0.05)}
    found = dominance(policy, tune_of([row(1, better_on_one | fr)]), 2)
    assert [d.dominated for d in found] == [False]
    assert found[0].ratios[0].dominated and not found[0].ratios[1].dominated
    infeasible = dominance(policy, tune_of([row(2, better_on_both | fr, feasible=False)]), 2)
    assert infeasible == []
    both = dominance(policy, tune_of([row(1, better_on_one | fr), row(3, better_on_both | fr, **FAST_VALUES)]), 2)
    assert [d.candidate for d in both] == [3, 1]  # the dominating candidate first
    assert both[0].dominated and both[0].factor == pytest.approx(480 / 150)
    assert both[0].settings == "interval=30s, threshold=1, stepWeight=2"
    assert both[0].constraints == ("false_rollback_rate ≤ 5%",)


# --- pdsim check end to end ---------------------------------------------------------------


def test_dominated_policy_fails_check_with_junit_and_markdown(repo, measured):
    junit, md = repo / "junit.xml", repo / "summary.md"
    result = invoke("check", gates_file(repo, 2), "--junit", junit, "--markdown", md)
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "FAILED: 1 fail"
    verdict = lines[-2]
    assert verdict.startswith("FAIL ") and "flagger-default: frontier margin 2x: dominated: candidate #7" in verdict
    assert "(interval=30s, threshold=1, stepWeight=2)" in verdict
    # The factor per objective and its interval, from the two policies' estimates.
    pol, cand = measured["default"], measured["fast"]
    e, d = "excess_errors.mean", "detection_time_s.median"
    factor = pol[e].value / cand[e].value
    interval = f"[{pol[e].low / cand[e].high:.3g}x, {pol[e].high / cand[e].low:.3g}x]"
    assert f"loses {factor:.3g}x fewer {e} {interval}" in verdict
    assert f"detects {pol[d].value / cand[d].value:.3g}x faster [{pol[d].low / cand[d].high:.3g}x, " in verdict
    assert f"at false_rollback_rate ≤ {100 * cand['false_rollback_rate'].high:.2g}%" in verdict
    assert f"your canary could be {factor:.2g}x better on {e}" in verdict
    assert "frontier flagger-default: 2 portfolio scenarios x 40 runs, seed 7" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    (case,) = suite.findall("testcase")
    assert case.get("classname") == "canary.flagger-default" and case.get("name") == "frontier margin 2x"
    assert case.find("failure").get("type") == "dominated"
    text = md.read_text()
    assert text.startswith("### pdsim check `canary`: ❌ failed")
    assert "❌ **Frontier of `flagger-default`** (margin 2x): dominated: candidate #7" in text
    assert "| scenario | requirement |" not in text  # no requirements: no empty table


def test_policy_not_dominated_by_the_margin_passes_with_the_best_factor(repo, measured):
    pol, cand = measured["default"], measured["fast"]
    best = min(pol[m].low / cand[m].high for m in OBJECTIVES)
    assert 2 < best < 5  # the fast policy's detection interval is what limits the factor
    result = invoke("check", gates_file(repo, 5))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "PASSED: 1 pass"
    assert f"not dominated by more than 5x: best factor {best:.3g}x, by candidate #7" in result.stdout


def test_margin_boundary_end_to_end(repo, measured):
    pol, cand = measured["default"], measured["fast"]
    best = min(pol[m].low / cand[m].high for m in OBJECTIVES)
    assert invoke("check", gates_file(repo, repr(best * (1 - 1e-9)))).exit_code == 1
    assert invoke("check", gates_file(repo, repr(best * (1 + 1e-9)))).exit_code == 0


def test_the_candidate_itself_is_not_dominated_even_at_margin_1(repo):
    """Gated against a frontier holding its own numbers (same runs, same seeds), a policy
    passes: only a candidate better on the intervals can fail it."""
    result = invoke("check", gates_file(repo, 1, policy="fast.yaml"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "not dominated: no frontier candidate is shown better on every objective" in result.stdout


def test_infeasible_candidates_are_ignored(repo, measured):
    write_tune(repo / "tune" / "out", [row(7, measured["fast"], feasible=False, **FAST_VALUES)])
    result = invoke("check", gates_file(repo, 2))
    assert result.exit_code == 0 and "has no feasible candidate" in result.stdout


def test_frontier_runs_and_scenarios_together(repo):
    (repo / "gates.yaml").write_text(
        "policy: default.yaml\nruns: 20\nseed: 1\nscenarios:\n"
        f"  - path: {SCENARIOS / 'error-spike.yaml'}\n    requirements: {{detection_rate: {{min: 0.5}}}}\n"
        "frontier: {tune: tune/out, margin: 2, runs: 20}\n"
    )
    result = invoke("check", repo / "gates.yaml")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "2 portfolio scenarios x 20 runs" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "FAILED: 1 pass, 1 fail"


def test_a_tune_still_running_warns(repo, measured):
    write_tune(repo / "tune" / "out", [row(7, measured["fast"], **FAST_VALUES)], status="running")
    result = invoke("check", gates_file(repo, 2))
    assert result.exit_code == 1 and "the tune is still running" in result.stderr


def test_parse_frontier_key(repo):
    gates = load_gates(gates_file(repo, 3, extra="  runs: 1e3\n"))
    assert gates.scenarios == () and gates.frontier is not None
    assert (gates.frontier.tune, gates.frontier.margin, gates.frontier.runs, gates.frontier.line) == (
        repo / "tune" / "out",
        3.0,
        1000,
        3,
    )
    assert load_gates(gates_file(repo, 2)).frontier.runs is None  # the tune's last rung


# --- bad input: one line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("frontier: {tune: tune/out, margin: 2}\n", 1, "frontier: needs policy:"),
        ("policy: default.yaml\nfrontier:\n  tune: tune/out\n  margin: 0.5\n", 4, "frontier.margin: must be at least"),
        ("policy: default.yaml\nfrontier:\n  tune: tune/out\n  margin: lots\n", 4, "must be a finite number"),
        ("policy: default.yaml\nfrontier:\n  tune: tune/out\n", 2, "frontier: missing key margin"),
        ("policy: default.yaml\nfrontier:\n  margin: 2\n", 2, "frontier: missing key tune"),
        ("policy: default.yaml\nfrontier:\n  tune: tune/out\n  margin: 2\n  mrgin: 3\n", 5, "unknown key"),
        ("policy: default.yaml\nfrontier:\n  tune: nowhere\n  margin: 2\n", 3, "no such file or directory"),
        ("policy: default.yaml\nfrontier:\n  tune: default.yaml\n  margin: 2\n", 3, "not a file"),
        ("policy: default.yaml\nfrontier:\n  tune: .\n  margin: 2\n", 3, "not a pdsim tune output folder: no tune"),
        ("policy: default.yaml\nfrontier: {tune: tune/out, margin: 2, runs: 0}\n", 2, "frontier.runs"),
        (
            "policy: default.yaml\nrequirements: {promoted: {min: 0}}\nfrontier: {tune: tune/out, margin: 2}\n",
            2,
            "requirements need scenarios",
        ),
    ],
)
def test_bad_frontier_key_is_one_line_and_exit_2(repo, body, line, needle):
    path = repo / "gates.yaml"
    path.write_text(body)
    result = invoke("check", path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{line}: ") and needle in lines[0], lines[0]


def test_folder_without_frontier_parquet_is_exit_2(repo):
    (repo / "tune" / "out" / "frontier.parquet").unlink()
    result = invoke("check", gates_file(repo, 2))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    head = f"{repo / 'gates.yaml'}:4: frontier.tune: not a pdsim tune output folder: no frontier.parquet"
    assert result.stderr.startswith(head)


@pytest.mark.parametrize(
    ("change", "where", "needle"),
    [
        ({"objectives": []}, "tune.json:", "objectives must be a non-empty list"),
        ({"rungs": [0]}, "tune.json:", "rungs must be positive run counts"),
        ({"seed": "one"}, "tune.json:", "seed must be an integer"),
        ({"portfolio": [{"weight": 1}]}, "tune.json:", "an entry needs scenario and weight"),
        ({"portfolio": [{"scenario": "missing.yaml", "weight": 1}]}, "tune.json:", "no such scenario file"),
        ({"objectives": ["excess_errors.mean", "users_affected.mean"]}, "frontier.parquet:1:", "no column"),
        ({"objectives": ["excess_errors.avg"]}, "frontier.parquet:1:", "no column"),
    ],
)
def test_bad_tune_folder_is_one_line_and_exit_2(repo, measured, change, where, needle):
    write_tune(repo / "tune" / "out", [row(7, measured["fast"], **FAST_VALUES)], **change)
    result = invoke("check", gates_file(repo, 2))
    assert result.exit_code == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert where in line and needle in line, line
    assert "Traceback" not in result.stderr


def test_bad_metric_in_tune_json_names_its_line(repo, measured):
    rows = [row(7, measured["fast"], **FAST_VALUES)]
    rows[0].update({"excess_errors.avg": 1.0, "excess_errors.avg_low": 1.0, "excess_errors.avg_high": 1.0})
    folder = write_tune(repo / "tune" / "out", rows, objectives=["excess_errors.avg"])
    text = (folder / "tune.json").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if '"excess_errors.avg"' in t)
    result = invoke("check", gates_file(repo, 2))
    assert result.exit_code == 2
    (message,) = result.stderr.strip().splitlines()
    assert message.startswith(f"{folder / 'tune.json'}:{line}: objectives[0]: ") and "avg" in message, message


def test_read_tune(repo):
    tune = read_tune(repo / "tune" / "out")
    assert (tune.name, tune.objectives, tune.seed, tune.last_rung) == ("flagger-default", tuple(OBJECTIVES), SEED, RUNS)
    assert tune.space == tuple(SPACE) and tune.constraints == CONSTRAINTS and len(tune.frontier) == 1
    (repo / "tune" / "out" / "tune.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        read_tune(repo / "tune" / "out")


def test_verdict_fields(measured):
    from sim.gates.decide import frontier_verdict
    from sim.gates.frontier import FrontierCheck

    pol, cand = measured["default"], measured["fast"]
    tune = tune_of([row(7, cand, **FAST_VALUES)])
    check = FrontierCheck(tune, 2.0, "default", RUNS, 2 * RUNS, pol, dominance(pol, tune, 2.0))
    v = frontier_verdict(check)
    assert (v.kind, v.decision, v.outcome, v.n) == ("frontier", "fail", "fail", 2 * RUNS)
    assert v.low == pytest.approx(min(pol[m].low / cand[m].high for m in OBJECTIVES))
    assert v.estimate == pytest.approx(min(pol[m].value / cand[m].value for m in OBJECTIVES))
    empty = frontier_verdict(FrontierCheck(tune_of([]), 2.0, "default", RUNS, 2 * RUNS, pol, []))
    assert (empty.decision, empty.estimate, empty.low) == ("pass", None, None)
