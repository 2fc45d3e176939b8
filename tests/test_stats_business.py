"""Business summaries of A/B runs (issue 19): sim.stats.summarize_business and the
"experiment" block of the run summary, on synthetic records (tests/helpers/business_records)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.outcomes import BUSINESS_COLUMNS, RunRecord
from sim.runs.runner import RecordsTable
from sim.stats import (
    BUSINESS_QUANTITIES,
    BUSINESS_RATES,
    BUSINESS_SUMMARY_COLUMNS,
    SUMMARY_COLUMNS,
    business_population,
    business_quantity,
    format_summary_table,
    has_business,
    summarize_business,
    summarize_records,
    wilson_interval,
)
from tests.helpers.business_records import analytic_power, business_records


def _hand(winner: str | None, lift: float | None, **kw: object) -> dict:
    """A record dict with the business fields given (the others as a good release's)."""
    base = business_records([0.0], 1)[0]
    fields = {name: None for name in BUSINESS_COLUMNS}
    fields.update(winner=winner, true_lift=lift, **kw)
    return dataclasses.replace(base, **fields).as_dict()


def test_business_columns_are_the_records():
    assert set(BUSINESS_SUMMARY_COLUMNS) == set(BUSINESS_COLUMNS)
    assert set(BUSINESS_SUMMARY_COLUMNS) <= set(SUMMARY_COLUMNS)


def test_rates_count_as_defined_on_hand_made_runs():
    rows = [
        _hand("none", 0.0, correct=True, srm=False),  # A/A, no winner
        _hand("candidate", 0.0, correct=False, srm=True),  # A/A false winner
        _hand("primary", 0.0, correct=False, srm=False),  # A/A false winner
        _hand("candidate", 0.0, correct=True),  # a canary (no srm) promoting a neutral release: no false winner
        _hand("candidate", 0.05, correct=True, srm=False, lift_ci_low=0.01, lift_ci_high=0.08),  # covered
        _hand("primary", 0.05, correct=False, srm=False, lift_ci_low=-0.04, lift_ci_high=-0.01),  # wrong way
        _hand("none", 0.02, correct=False, srm=False, lift_ci_low=0.02, lift_ci_high=0.03),  # closed: covered
        _hand("candidate", -0.03, correct=False, srm=False),  # wrong way
        _hand("primary", -0.03, correct=True, srm=False),
        _hand("primary", -0.03, correct=True),  # a canary's rollback: not an experiment's direction
        _hand(None, None),  # a run without business outcomes (mixed results)
    ]
    s = summarize_business(rows)
    got = {name: (s[name]["k"], s[name]["n"]) for name in BUSINESS_RATES}
    assert got == {
        "false_winner_rate": (2, 3),
        "power": (1, 3),
        "wrong_direction_rate": (2, 5),
        "correct_rate": (5, 10),
        "ci_coverage": (2, 3),
        "srm_rate": (1, 8),
    }
    assert (s["false_winner_rate"]["low"], s["false_winner_rate"]["high"]) == wilson_interval(2, 3)
    assert [(r["true_lift"], r["k"], r["n"]) for r in s["power_by_lift"]] == [(0.02, 0, 1), (0.05, 1, 2)]
    assert {w: (r["k"], r["n"]) for w, r in s["winners"].items()} == {
        "candidate": (4, 10),
        "primary": (4, 10),
        "none": (2, 10),
    }


def test_totals_and_lift_error_per_run():
    rows = [
        _hand("candidate", 0.05, lift_estimate=0.07, regret_conversions=2.0, regret_conversions_after_promotion=1.0),
        _hand("none", 0.0, lift_estimate=-0.01, regret_conversions=3.0),  # no after-promotion part: no total
    ]
    total = business_quantity(rows, "regret_conversions_total")
    assert total[0] == 3.0 and math.isnan(total[1])
    assert business_quantity(rows, "lift_error") == pytest.approx([0.02, -0.01])
    s = summarize_business(rows)
    assert s["regret_conversions"]["mean"]["value"] == 2.5
    assert s["regret_conversions_total"]["mean"]["n"] == 1


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="not a business rate"):
        business_population([_hand("none", 0.0)], "false_rollback_rate")
    with pytest.raises(ValueError, match="not a business quantity"):
        business_quantity([_hand("none", 0.0)], "regret")


def test_summary_without_business_is_unchanged():
    records = business_records([0.0, 0.05], 50)
    plain = [dataclasses.replace(r, **{name: None for name in BUSINESS_COLUMNS}) for r in records]
    dicts = [r.as_dict() for r in plain]
    without_columns = [{k: v for k, v in d.items() if k not in BUSINESS_COLUMNS} for d in dicts]
    summary = summarize_records(dicts)
    assert not has_business(dicts)
    assert summary == summarize_records(without_columns)
    assert "false_winner_rate" not in summary
    assert "experiment" not in format_summary_table(summary)


def test_every_input_form_gives_the_same_json_summary():
    records = business_records([0.0, 0.02, 0.05], 60, seed=3)
    table = RecordsTable()
    table.add(records[:100])
    table.add(records[100:])
    from_table = summarize_records(table.columns(SUMMARY_COLUMNS))
    dicts = [r.as_dict() for r in records]
    assert from_table == summarize_records(dicts) == summarize_records(pd.DataFrame(dicts))
    json.dumps(from_table, allow_nan=False)  # plain numbers, no NaN or inf
    for name in (*BUSINESS_RATES, *BUSINESS_QUANTITIES, "power_by_lift", "decision_time_by_winner", "winners"):
        assert name in from_table
    # the gate-style names resolve: a rate's counts, a quantity's statistic
    assert from_table["regret_conversions"]["mean"]["value"] == pytest.approx(
        np.mean([r.regret_conversions for r in records])
    )


def test_text_block_names_every_rate_and_quantity():
    text = format_summary_table(summarize_records([r.as_dict() for r in business_records([0.0, 0.05], 40)]))
    block = text[text.index("experiment (business outcomes)") :]
    for name in (*BUSINESS_RATES, *BUSINESS_QUANTITIES):
        assert f"\n{name} " in block
    assert "power at true lift +5.00%" in block
    assert "decision_time_s, winner candidate" in block


def test_rates_match_the_synthetic_tests_known_values():
    """The synthetic z test has false-winner rate alpha = 5% (both sides), coverage 95% and
    a known power: each must lie in its summary's 95% Wilson interval. With 3000 runs per
    lift an interval is about ±0.8% around 5% and ±1.8% around 50%, so a rate counted in the
    wrong population (e.g. power counting primary winners, coverage counting runs without
    an interval) misses by far more. Fixed seed: deterministic."""
    se = 0.02
    lifts = (0.0, 0.02, 0.04, 0.06)
    s = summarize_business([r.as_dict() for r in business_records(lifts, 3000, se=se, seed=11)])
    fw = s["false_winner_rate"]
    assert fw["n"] == 3000 and fw["low"] <= 0.05 <= fw["high"]
    cov = s["ci_coverage"]
    assert cov["n"] == 12000 and cov["low"] <= 0.95 <= cov["high"]
    assert [row["true_lift"] for row in s["power_by_lift"]] == list(lifts[1:])
    for row in s["power_by_lift"]:
        assert row["low"] <= analytic_power(row["true_lift"], se) <= row["high"], row
    # Type S error at d/se = 1: Φ(-1 - z) = 0.05%; at 2 and 3 far less.
    assert s["wrong_direction_rate"]["rate"] < 0.002


def test_record_type_has_the_contract_fields():
    # The summaries read the record's names: a rename in sim/outcomes.py must fail here.
    names = {f.name for f in dataclasses.fields(RunRecord)}
    assert set(BUSINESS_SUMMARY_COLUMNS) <= names


def _fake_chunks(records: list[RunRecord]):
    """An ``iter_chunks`` that yields the given records, whatever the scenario (the world
    does not produce business outcomes yet: the CLI's summary printing is what is tested)."""

    def fake(scenario, policy, runs, seed, *, progress=None, chunk_size=1000, **_kw):
        for start in range(0, runs, chunk_size):
            chunk = records[start : min(runs, start + chunk_size)]
            if progress is not None:
                progress(len(chunk))
            yield chunk

    return fake


def test_pdsim_run_prints_the_experiment_block_and_json_carries_it(monkeypatch, tmp_path):
    import sim.runs.runner as runner
    from tests.helpers.cli import invoke
    from tests.helpers.paths import SCENARIOS

    records = business_records([0.0, 0.05], 100, seed=5)
    monkeypatch.setattr(runner, "iter_chunks", _fake_chunks(records))
    scenario = SCENARIOS / "good-release.yaml"
    text = invoke("run", scenario, "--runs", 200, "--chunk-size", 64)
    assert text.exit_code == 0, text.output
    assert "experiment (business outcomes)" in text.output
    assert "false_winner_rate" in text.output and "power at true lift +5.00%" in text.output
    result = invoke("run", scenario, "--runs", 200, "--json", "--out", tmp_path / "out")
    assert result.exit_code == 0
    head = json.loads(result.output)
    want = summarize_records([r.as_dict() for r in records])
    assert head["summary"] == json.loads(json.dumps(want))
    stored = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert stored["summary"]["false_winner_rate"] == head["summary"]["false_winner_rate"]
