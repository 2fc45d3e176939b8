"""benchmarks/noise_decisions.py (issue 15, item 4): its noise models are valid ``noise:``
blocks, its guarantee verdicts follow the Wilson interval, and a tiny run prints both tables."""

from __future__ import annotations

import csv

import pytest

from benchmarks import noise_decisions as nd


@pytest.mark.parametrize("name", list(nd.NOISE_MODELS))
def test_every_noise_model_is_a_valid_scenario(name):
    good = nd.scenario(nd.NOISE_MODELS[name], 10.0, bad=False)
    bad = nd.scenario(nd.NOISE_MODELS[name], 10.0, bad=True)
    assert good.traffic.rate.constant == 10.0 and good.release.faults == []
    assert bad.release.faults[0].factor == 2.0
    assert good.noise.model_dump(exclude_defaults=True) == bad.noise.model_dump(exclude_defaults=True)
    if name == "none (Poisson)":
        assert good.noise.model_dump(exclude_defaults=True) == {}
    else:
        assert good.noise.model_dump(exclude_defaults=True) != {}


def _cell(policy: str, false_rollbacks: int, runs: int = 1000) -> nd.Cell:
    return nd.Cell("none (Poisson)", 10.0, policy, runs, false_rollbacks, runs, 0)


def test_guarantee_is_kept_while_the_interval_reaches_alpha():
    # 10/1000: Wilson [0.54%, 1.83%] reaches 1% -> kept; 20/1000: [1.30%, 3.07%] -> lost.
    assert _cell("sequential", 10).keeps_guarantee() is True
    assert _cell("sequential", 20).keeps_guarantee() is False
    # SPRT's bound is alpha / (1 - beta) = 1.05%: 19/1000 has Wilson low 1.22%.
    assert _cell("sprt", 19).keeps_guarantee() is False
    assert _cell("thresholds", 900).keeps_guarantee() is None
    assert _cell("bayes", 900).keeps_guarantee() is None


def test_tables_and_csv(tmp_path):
    cells = [_cell("sequential", 10), _cell("msprt", 30), _cell("thresholds", 5)]
    rows = nd.decisions_table(cells)
    assert len(rows) == 2 + 3 and "**lost**" in rows[3] and "none promised" in rows[4]
    summary = nd.guarantee_table(cells)
    assert summary[2] == "| none (Poisson) | 10 | sequential | msprt |"
    nd.write_csv(cells, tmp_path / "cells.csv")
    with (tmp_path / "cells.csv").open() as f:
        read = list(csv.DictReader(f))
    assert [r["keeps_guarantee"] for r in read] == ["True", "False", ""]
    assert float(read[1]["false_rollback_rate"]) == 0.03


def test_a_tiny_run_prints_both_tables(capsys, tmp_path):
    nd.main(["--noise", "none (Poisson)", "--rates", "10", "--runs", "4", "--csv", str(tmp_path / "x.csv")])
    out = capsys.readouterr().out
    assert "| none (Poisson) | 10 | sequential |" in out
    assert "keep their guarantee" in out
    assert len((tmp_path / "x.csv").read_text().splitlines()) == 1 + len(nd.POLICIES)
