"""sim.tuning.space: distributions as optuna sees them, values written into policies."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sim.tuning.space import Space, apply, choice_text, make_param, number_text, round_value

JUDGE = {"kind": "sequential", "alpha": 0.01}


def test_ints_when_both_ends_are_ints() -> None:
    p = make_param("policy.flagger.analysis.stepWeight", {"low": 2, "high": 50})
    assert p.is_int
    assert p.optuna_distribution() == IntDistribution(2, 50)
    assert p.value(7) == 7 and isinstance(p.value(7), int)


def test_floats_log_and_step() -> None:
    f = make_param("policy.x", {"low": 2, "high": 50.0})
    assert not f.is_int and f.optuna_distribution() == FloatDistribution(2.0, 50.0)
    lg = make_param("policy.x", {"low": 1, "high": 100, "log": True})
    assert lg.optuna_distribution() == IntDistribution(1, 100, log=True)
    st = make_param("policy.x", {"low": 0.5, "high": 2.5, "step": 0.25})
    assert st.optuna_distribution() == FloatDistribution(0.5, 2.5, step=0.25)
    assert st.value(0.7500000000000001) == 0.75


def test_choices_are_drawn_as_indexes() -> None:
    p = make_param("policy.flagger.judge", {"choices": [None, JUDGE]})
    assert p.optuna_distribution() == CategoricalDistribution([0, 1])
    assert p.value(0) is None and p.value(1) == JUDGE
    assert p.number(0) == "null"
    assert p.number(1) == '{"alpha": 0.01, "kind": "sequential"}'
    assert make_param("policy.x", {"choices": ["30s", "1m"]}).number(1) == "1m"


def test_floats_are_rounded_to_four_significant_digits() -> None:
    p = make_param("policy.x", {"low": 95.0, "high": 99.9})
    assert p.value(99.372184) == 99.37
    assert round_value(0.000123456) == 0.0001235
    assert round_value(0.30000000000000004, 0.1) == 0.3


def test_format_writes_the_number_into_a_string() -> None:
    p = make_param(
        "policy.argo.templates.sr.metrics[0].successCondition", {"low": 0.9, "high": 0.999, "format": "result[0] >= {}"}
    )
    assert p.value(0.97123) == "result[0] >= 0.9712"
    assert p.number(0.97123) == 0.9712  # the column holds the number
    assert [v for _, v in p.ends()] == ["result[0] >= 0.9", "result[0] >= 0.999"]


@pytest.mark.parametrize(("value", "text"), [(5, "5"), (0.5, "0.5"), (2.0, "2"), (1e-7, "0.0000001"), (99.37, "99.37")])
def test_number_text(value: float, text: str) -> None:
    assert number_text(value) == text


def test_apply_sets_paths_below_policy_without_touching_the_base() -> None:
    base = {"flagger": {"analysis": {"stepWeight": 10, "metrics": [{"name": "sr", "thresholdRange": {"min": 99}}]}}}
    out = apply(
        base,
        {
            "policy.flagger.analysis.stepWeight": 4,
            "policy.flagger.analysis.metrics[0].thresholdRange.min": 97.5,
            "policy.flagger.judge": JUDGE,
        },
    )
    assert out["flagger"]["analysis"]["stepWeight"] == 4
    assert out["flagger"]["analysis"]["metrics"][0]["thresholdRange"]["min"] == 97.5
    assert out["flagger"]["judge"] == JUDGE
    assert base["flagger"]["analysis"]["stepWeight"] == 10  # a copy
    assert "judge" not in base["flagger"]


def test_apply_refuses_a_path_outside_policy() -> None:
    with pytest.raises(ValueError, match="policy."):
        apply({}, {"release.faults": []})


def test_label_uses_last_keys_unless_they_clash() -> None:
    a = make_param("policy.flagger.analysis.interval", {"choices": ["30s", "1m"]})
    b = make_param("policy.flagger.analysis.metrics[0].interval", {"choices": ["1m"]})
    c = make_param("policy.flagger.analysis.stepWeight", {"low": 2, "high": 5})
    space = Space((a, b, c))
    label = space.label({a.path: 0, b.path: 0, c.path: 3})
    assert label == "flagger.analysis.interval=30s flagger.analysis.metrics[0].interval=1m stepWeight=3"
    assert space.values({a.path: 1, b.path: 0, c.path: 3}) == {a.path: "1m", b.path: "1m", c.path: 3}


def test_choice_text_sorts_keys() -> None:
    assert choice_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert choice_text("1m") == "1m"
