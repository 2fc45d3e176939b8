"""Gate requirements on A/B business outcomes (issue 19): the summary's business rates and
quantities are requirement names of a gates file, decided like ``false_rollback_rate``."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from sim.errors import InputError
from sim.gates.decide import compare_paired, evaluate
from sim.gates.spec import QUANTITIES, RATES, Requirement, parse_gates
from sim.stats import BUSINESS_QUANTITIES, BUSINESS_RATES, summarize_records, wilson_interval
from sim.yamlio import loads_yaml
from tests.helpers.business_records import business_records
from tests.helpers.paths import SCENARIOS

GOOD = SCENARIOS / "good-release.yaml"


def _frame(records: list) -> pd.DataFrame:
    return pd.DataFrame([r.as_dict() for r in records])


def test_business_names_are_requirement_names():
    assert set(BUSINESS_RATES) <= set(RATES) and set(BUSINESS_QUANTITIES) <= set(QUANTITIES)
    doc = loads_yaml(
        f"scenarios: [{GOOD}]\nrequirements:\n  false_winner_rate: {{max: 0.06}}\n  power: {{min: 0.8}}\n"
        "  regret_conversions_total.mean: {max: 100}\n",
        "g.yaml",
    )
    names = [r.name for r in parse_gates(doc).scenarios[0].inherited]
    assert names == ["false_winner_rate", "power", "regret_conversions_total.mean"]
    with pytest.raises(InputError, match="takes no statistic"):
        parse_gates(loads_yaml(f"scenarios: [{GOOD}]\nrequirements:\n  power.mean: {{min: 0.8}}\n", "g.yaml"))


def test_business_rate_and_quantity_verdicts_agree_with_the_summary():
    frame = _frame(business_records([0.0, 0.05], 300, seed=4))
    summary = summarize_records(frame)
    for name in BUSINESS_RATES:
        v = evaluate(Requirement(name, None, None, 1.0), frame, scenario="ab")
        r = summary[name]
        assert (v.k, v.n) == (r["k"], r["n"]), name
        assert (v.low, v.high) == wilson_interval(r["k"], r["n"])
    v = evaluate(Requirement("regret_conversions_total", "mean", None, 1e9), frame, scenario="ab")
    assert v.estimate == pytest.approx(summary["regret_conversions_total"]["mean"]["value"])
    assert v.outcome == "pass"
    fw = evaluate(Requirement("false_winner_rate", None, None, 0.01), frame, scenario="ab")
    assert fw.decision == "fail"  # about 5% of 300 A/A runs: far above 1%


def test_paired_business_comparisons():
    changed = _frame(business_records([0.0, 0.05], 200, seed=4))
    # the same runs, none declared: fewer false winners, less power
    base = _frame([dataclasses.replace(r, winner="none") for r in business_records([0.0, 0.05], 200, seed=4)])
    r = compare_paired(Requirement("false_winner_rate", None, None, 0.05), changed, base, scenario="ab")
    assert r.n == 200 and r.difference > 0 and r.significant
    r = compare_paired(Requirement("regret_conversions_total", "mean", None, 1e9), changed, changed, scenario="ab")
    assert r.difference == 0.0 and not r.significant
