"""sim.tuning.portfolio: portfolios from files, common random numbers, any worker count."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import InputError
from sim.inputs.policy import scenario_policy
from sim.tuning.portfolio import FRAME_COLUMNS, evaluate, load_portfolio, rung_runs, simulate
from sim.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def _portfolio(tmp_path: Path, weights: tuple[float, float] = (0.8, 0.2), *, stream: int = 0):
    text = (
        "portfolio:\n"
        f"  - {{scenario: {ROOT}/scenarios/good-release.yaml, weight: {weights[0]}}}\n"
        f"  - {{scenario: {ROOT}/scenarios/error-spike.yaml, weight: {weights[1]}, name: spike}}\n"
    )
    (tmp_path / "t.yaml").write_text(text)
    doc = load_yaml(tmp_path / "t.yaml")
    return load_portfolio(doc.data["portfolio"], tmp_path, doc, ("portfolio",), stream=stream)


def test_entries_and_names(tmp_path: Path) -> None:
    pf = _portfolio(tmp_path)
    assert [e.name for e in pf.entries] == ["good-release", "spike"]
    assert pf.weights == {0: 0.8, 1: 0.2}


def test_weights_must_sum_to_one(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        _portfolio(tmp_path, (0.5, 0.2))
    assert err.value.line == 1 and "sum to 1" in err.value.message


def test_missing_scenario_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("portfolio:\n  - {scenario: nope.yaml, weight: 1}\n")
    doc = load_yaml(tmp_path / "t.yaml")
    with pytest.raises(InputError) as err:
        load_portfolio(doc.data["portfolio"], tmp_path, doc, ("portfolio",))
    assert err.value.line == 2 and "nope.yaml" in err.value.message


def test_common_random_numbers_and_fresh_stream(tmp_path: Path) -> None:
    pf = _portfolio(tmp_path)
    policy = scenario_policy(pf.entries[0].scenario, pf.entries[0].path)
    a = simulate(policy, pf, 1, 0, 20, seed=5)
    b = simulate(policy, pf, 1, 10, 20, seed=5)  # the same runs, whatever the range asked
    assert list(a.columns) == list(FRAME_COLUMNS)
    assert a.iloc[10:].reset_index(drop=True).equals(b)
    fresh = simulate(policy, _portfolio(tmp_path, stream=1), 1, 0, 20, seed=5)
    assert not set(fresh["seed"]) & set(a["seed"])


def test_same_frame_for_any_worker_count(tmp_path: Path) -> None:
    pf = _portfolio(tmp_path)
    policy = scenario_policy(pf.entries[0].scenario, pf.entries[0].path)
    one = evaluate(policy, pf, 0, 60, seed=3)
    assert one.equals(evaluate(policy, pf, 0, 60, seed=3, workers=2))
    assert list(one["scenario"].unique()) == [0, 1] and len(one) == 120


def test_rung_runs() -> None:
    assert rung_runs(40, 1000, 3) == [40, 120, 360, 1000]
    assert rung_runs(50, 50, 3) == [50]
    assert rung_runs(10, 90, 3) == [10, 30, 90]
