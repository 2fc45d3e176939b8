"""The frontier gate on a REAL ``pdsim tune`` output, from other directories (issue 18, "In CI").

``tests/gates/test_frontier_gate.py`` builds tune folders by hand; this one runs the tiny
search (``tests/tune/tiny.py``) and points a gates file in another directory at its
output, then runs ``pdsim check`` from a third working directory. ``tune.json`` names the
portfolio's scenarios relative to the output folder, so the gate must read them from
there, whatever the working directory. The margins that fail and pass are computed from
``frontier.parquet`` and the policy's own estimates on the tune's runs and seeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.inputs.policy import read_policy
from sim.tuning.metrics import Estimate, estimates, parse_metric
from sim.tuning.portfolio import evaluate, load_portfolio
from sim.yamlio import load_yaml
from tests.helpers import invoke
from tests.tune.tiny import write_tiny

#: The tiny search's space narrowed to fast checks that roll back at the first or second
#: failure, so that on its few runs the frontier beats the base (1m, threshold 5) on both
#: objectives by more than the intervals' width: a margin can then fail it.
FAST_SPACE = """\
space:
  policy.flagger.analysis.interval: {choices: [15s, 30s]}
  policy.flagger.analysis.threshold: {low: 1, high: 2}
  policy.flagger.analysis.stepWeight: {low: 2, high: 20}
"""


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pdsim tune`` run from ``root/search`` on ``tiny/tune.yaml`` into ``out``: the tmp root."""
    root = tmp_path_factory.mktemp("frontier-real")
    write_tiny(root / "search" / "tiny", space=FAST_SPACE)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root / "search")
        sim.tune("tiny/tune.yaml", "out")
    return root


def policy_estimates(out: Path, policy: Path) -> tuple[dict, dict[str, Estimate]]:
    """tune.json, and the policy's objectives as the tune estimated its candidates: the
    search's portfolio, runs 0..last rung-1, seed and stream (common random numbers)."""
    info = json.loads((out / "tune.json").read_text())
    doc = load_yaml(out / "tune.json", what="tune.json")
    items = [dict(item, scenario=str(out / item["scenario"])) for item in info["portfolio"]]
    portfolio = load_portfolio(items, Path(), doc, ("portfolio",), stream=0)
    frame = evaluate(read_policy([policy]).build(), portfolio, 0, info["rungs"][-1], info["seed"])
    metrics = [parse_metric(m) for m in info["objectives"]]
    return info, estimates(frame, portfolio.weights, metrics, confidence=0.95, seed=info["seed"])


def best_factor(out: Path, info: dict, policy: dict[str, Estimate]) -> tuple[float, int]:
    """The frontier gate's number: over feasible frontier candidates, the largest
    pessimistic factor on every objective (policy low / candidate high), and whose."""
    frontier = pd.read_parquet(out / "frontier.parquet")
    frontier = frontier[frontier["feasible"]]
    assert len(frontier), "the tiny search has a feasible frontier"
    factors = {}
    for row in frontier.to_dict("records"):
        assert all(row[f"{m}_high"] > 0 for m in info["objectives"])
        factors[int(row["candidate"])] = min(policy[m].low / row[f"{m}_high"] for m in info["objectives"])
    candidate = max(factors, key=lambda c: factors[c])
    return factors[candidate], candidate


def check(root: Path, margin: float, monkeypatch: pytest.MonkeyPatch):
    """``pdsim check ../ci/gates.yaml`` from ``root/elsewhere``; the gates file in ``root/ci``."""
    (root / "ci").mkdir(exist_ok=True)
    gates = root / "ci" / "gates.yaml"
    gates.write_text(
        f"name: canary\npolicy: ../search/tiny/canary.yaml\nfrontier:\n  tune: ../search/out\n  margin: {margin!r}\n"
    )
    (root / "elsewhere").mkdir(exist_ok=True)
    monkeypatch.chdir(root / "elsewhere")
    return invoke("check", "../ci/gates.yaml")


def test_tune_json_names_its_inputs_relative_to_the_output_folder(tuned: Path) -> None:
    # What makes the rest of this file a test of the gate's path handling: the names in
    # tune.json do not resolve from the working directory of the check.
    info = json.loads((tuned / "search" / "out" / "tune.json").read_text())
    assert [item["scenario"] for item in info["portfolio"]] == ["../tiny/good.yaml", "../tiny/bad.yaml"]
    assert info["status"] == "done"


def test_a_margin_below_the_best_factor_fails_the_base(tuned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tuned / "search" / "out"
    info, policy = policy_estimates(out, tuned / "search" / "tiny" / "canary.yaml")
    best, candidate = best_factor(out, info, policy)
    assert best > 1.1, best  # the tiny search beats its base on every objective, on the intervals
    margin = max(1.0, math.floor(best * 10) / 10)
    result = check(tuned, margin, monkeypatch)
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "FAILED: 1 fail"
    assert lines[-2].startswith("FAIL ")
    assert f"tune: frontier margin {margin:g}x: dominated: candidate #{candidate} " in lines[-2]
    e = info["objectives"][0]
    (row,) = pd.read_parquet(out / "frontier.parquet").query(f"candidate == {candidate}").to_dict("records")
    assert f"your canary could be {policy[e].value / row[e]:.2g}x better on {e}" in lines[-2]
    runs, seed = info["rungs"][-1], info["seed"]
    assert f"frontier tune: 2 portfolio scenarios x {runs} runs, seed {seed}" in result.stderr


def test_a_margin_above_the_best_factor_passes(tuned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tuned / "search" / "out"
    info, policy = policy_estimates(out, tuned / "search" / "tiny" / "canary.yaml")
    best, candidate = best_factor(out, info, policy)
    margin = math.floor(best * 10) / 10 + 0.1
    result = check(tuned, margin, monkeypatch)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "PASSED: 1 pass"
    assert f"not dominated by more than {margin:g}x: best factor {best:.3g}x, by candidate #{candidate}" in (
        result.stdout
    )
