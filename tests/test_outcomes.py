"""Run records (the docs/architecture.md section 5 contract) and the derived outcome fields."""

from __future__ import annotations

import dataclasses

import pytest

from sim.outcomes import (
    BUSINESS_COLUMNS,
    COLUMNS,
    PROMOTED,
    ROLLED_BACK,
    UNFINISHED,
    RunRecord,
    decide,
    rollout_correct,
    winner_correct,
    winner_of,
)
from tests.helpers import RECORD_FIELDS


def test_outcome_names():
    assert (PROMOTED, ROLLED_BACK, UNFINISHED) == ("promoted", "rolled_back", "unfinished")


def test_record_starts_with_exactly_the_contract_fields():
    names = [f.name for f in dataclasses.fields(RunRecord)]
    assert tuple(names[: len(RECORD_FIELDS)]) == RECORD_FIELDS
    assert COLUMNS == names
    assert len(set(names)) == len(names)


def test_record_extensions_are_documented_ones():
    extensions = [f.name for f in dataclasses.fields(RunRecord)][len(RECORD_FIELDS) :]
    assert extensions == [
        "excess_errors_after_promotion",
        "fault_onset_s",
        "final_phase",
        "ticks",
        "rollback_reason",
        *BUSINESS_COLUMNS,
    ]
    assert BUSINESS_COLUMNS[0] == "winner" and BUSINESS_COLUMNS[-1] == "srm"


@pytest.mark.parametrize(
    ("winner", "true_lift", "min_effect", "correct"),
    [
        ("candidate", 0.05, 0.01, True),  # a real lift, found
        ("none", 0.05, 0.01, False),  # a real lift, missed
        ("primary", 0.05, 0.01, False),  # a real lift, called the wrong way
        ("primary", -0.05, 0.01, True),  # a real loss, kept the primary
        ("none", -0.05, 0.01, True),  # a real loss, inconclusive: the primary stays
        ("candidate", -0.05, 0.01, False),  # a real loss, shipped
        ("none", 0.0, 0.0, True),  # A/A: no winner is right
        ("candidate", 0.0, 0.0, False),  # A/A: a false winner
        ("primary", 0.0, 0.0, False),  # A/A: a false winner too
        ("candidate", 0.005, 0.01, True),  # below the effect of interest, right side
        ("primary", 0.005, 0.01, False),  # below it, wrong side
    ],
)
def test_winner_correct_rule(winner, true_lift, min_effect, correct):
    assert winner_correct(winner, true_lift, min_effect) is correct


def test_a_bad_release_is_never_right_to_ship():
    assert not winner_correct("candidate", 0.05, 0.01, release_bad=True)
    assert winner_correct("primary", 0.05, 0.01, release_bad=True)
    assert winner_correct("none", 0.05, 0.01, release_bad=True)


@pytest.mark.parametrize(
    ("outcome", "true_lift", "bad", "correct"),
    [
        (PROMOTED, 0.0, False, True),  # a neutral release shipped: right for a canary
        (ROLLED_BACK, 0.0, False, False),  # a neutral release rolled back: a false rollback
        (PROMOTED, -0.3, False, False),  # checkout broken, shipped
        (ROLLED_BACK, -0.3, False, True),
        (UNFINISHED, -0.3, False, True),  # not shipped
        (PROMOTED, 0.05, True, False),  # more conversions, more errors: not worth shipping
        (PROMOTED, -0.005, False, True),  # within the effect of interest
    ],
)
def test_rollout_correct_rule(outcome, true_lift, bad, correct):
    assert rollout_correct(outcome, true_lift, 0.01, bad) is correct


def test_winner_of_an_outcome():
    assert [winner_of(o) for o in (PROMOTED, ROLLED_BACK, UNFINISHED)] == ["candidate", "primary", "none"]


def record(**kw) -> RunRecord:
    base = dict(
        scenario="s",
        policy="p",
        run=3,
        seed=99,
        outcome=ROLLED_BACK,
        release_bad=True,
        decision_time_s=480.0,
        canary_requests=1000.0,
        canary_errors=60.0,
        excess_errors=55.0,
        users_exposed=200.0,
        users_affected=40.0,
        excess_errors_after_promotion=0.0,
        fault_onset_s=0.0,
        final_phase="Failed",
        ticks=8,
        rollback_reason="",
    )
    base.update(kw)
    return RunRecord(
        **base, **decide(base["outcome"], base["release_bad"], base["decision_time_s"], base["fault_onset_s"])
    )


def test_record_as_dict_follows_the_columns():
    d = record().as_dict()
    assert list(d) == COLUMNS
    assert d["detection_time_s"] == 480.0


def test_record_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        record().outcome = PROMOTED  # type: ignore[misc]


# --- decide -----------------------------------------------------------------------------


def test_rollback_of_a_bad_release_after_onset_has_a_detection_time():
    assert decide(ROLLED_BACK, True, 900.0, 300.0) == {
        "detection_time_s": 600.0,
        "false_rollback": False,
        "missed": False,
    }


def test_rollback_at_the_onset_detects_in_zero_seconds():
    assert decide(ROLLED_BACK, True, 300.0, 300.0)["detection_time_s"] == 0.0


def test_rollback_before_the_onset_has_no_detection_time():
    d = decide(ROLLED_BACK, True, 200.0, 300.0)
    assert d == {"detection_time_s": None, "false_rollback": False, "missed": False}


def test_rollback_of_a_good_release_is_a_false_rollback():
    assert decide(ROLLED_BACK, False, 200.0, None) == {
        "detection_time_s": None,
        "false_rollback": True,
        "missed": False,
    }


def test_rollback_of_a_release_declared_good_has_no_detection_time():
    """``release.bad: false`` overrides a fault that does not matter: its rollback is a
    false rollback, so nothing was detected (detection only for bad releases)."""
    d = decide(ROLLED_BACK, False, 500.0, 100.0)
    assert d["false_rollback"] is True
    assert d["detection_time_s"] is None


def test_rollback_of_a_bad_release_without_an_onset_has_no_detection_time():
    """``release.bad: true`` without a canary fault (e.g. only a common-mode incident)."""
    assert decide(ROLLED_BACK, True, 500.0, None) == {
        "detection_time_s": None,
        "false_rollback": False,
        "missed": False,
    }


def test_promoting_a_bad_release_is_a_miss():
    assert decide(PROMOTED, True, 900.0, 0.0) == {"detection_time_s": None, "false_rollback": False, "missed": True}


def test_promoting_a_good_release_is_right():
    assert decide(PROMOTED, False, 900.0, None) == {"detection_time_s": None, "false_rollback": False, "missed": False}


@pytest.mark.parametrize("bad", [True, False])
def test_unfinished_is_neither_a_miss_nor_a_false_rollback(bad):
    assert decide(UNFINISHED, bad, None, 0.0 if bad else None) == {
        "detection_time_s": None,
        "false_rollback": False,
        "missed": False,
    }
