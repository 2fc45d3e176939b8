"""Kayenta's classification and scoring rules (sim/policies/judges/kayenta_rules.py).

Upstream: spinnaker/kayenta, kayenta-judge/src/main/scala/com/netflix/kayenta/judge/
* classifiers/metric/MannWhitneyClassifier.scala (``classify``, ``compare``,
  ``addGaussianNoise``), replayed from src/test/scala/.../judge/ClassifierSuite.scala;
* scorers/WeightedSumScorer.scala (``score``, ``calculateGroupScore``,
  ``calculateSummaryScore``, ``criticalFailures``, ``tooManyNodata``), replayed from
  ScorerSuite.scala;
* classifiers/score/ThresholdScoreClassifier.scala (``classify``);
* NetflixACAJudge.scala (``transformMetric``, ``handleNaNs``, ``handleOutliers``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policies.judges.kayenta_rules import (
    MetricClassification,
    classify,
    classify_score,
    round_half_up,
    transform,
    weighted_sum_score,
)
from tests.policies.judges.kayenta_cases import suite

CLASSIFIER_CASES = {name: case for name, case in suite("ClassifierSuite").items() if "expected" in case}


@pytest.mark.parametrize("name", sorted(CLASSIFIER_CASES))
def test_classifier_suite(name):
    """Every MannWhitneyClassifier test of ClassifierSuite.scala, with its classifier
    parameters (tolerance, confLevel, effect/critical thresholds, measure) and classify
    arguments (direction, NaN strategy, critical), against its asserted outcome."""
    case = CLASSIFIER_CASES[name]
    result = classify(
        np.asarray(case["arrays"]["controlData"]),
        np.asarray(case["arrays"]["experimentData"]),
        np.random.default_rng(0),
        direction=case["direction"].lower(),
        nan_strategy=case["nanStrategy"].lower(),
        critical=case["isCriticalMetric"],
        tolerance=case["tolerance"],
        confidence=case["confLevel"],
        effect_thresholds=tuple(case.get("effectSizeThresholds", (1.0, 1.0))),
        critical_thresholds=tuple(case.get("criticalThresholds", (1.0, 1.0))),
        measure=case.get("effectSizeMeasure", "meanRatio"),
        name=name,
    )
    assert result.label == case["expected"]
    if "expectedCritical" in case:
        assert result.critical == case["expectedCritical"]
    if case.get("expectedDeviationNaN"):
        assert math.isnan(result.deviation)


def test_classifier_suite_was_extracted_in_full():
    """The fixture holds all 33 Mann–Whitney classifier tests with an asserted outcome."""
    assert len(CLASSIFIER_CASES) >= 33


def test_zero_mean_pass_has_unit_deviation_and_missing_data_has_a_reason():
    """ClassifierSuite "Zero Mean: Pass Metric" (deviation 1.0) and "Missing Data: Reason String"."""
    zeros = np.zeros(5)
    r = classify(zeros, zeros, np.random.default_rng(0), tolerance=0.1, confidence=0.95, effect_thresholds=(0.8, 1.2))
    assert (r.label, r.deviation) == ("Pass", 1.0)
    r = classify(np.array([]), np.array([]), np.random.default_rng(0), direction="decrease", critical=True)
    assert r.label == "Nodata" and r.critical and r.reason


def test_must_have_data_fails_a_non_critical_metric():
    """MannWhitneyClassifier.classify: mustHaveData and not critical -> NodataFailMetric."""
    r = classify(np.array([1.0]), np.array([]), np.random.default_rng(0), must_have_data=True)
    assert (r.label, r.critical) == ("NodataFailMetric", False)
    r = classify(np.array([1.0]), np.array([]), np.random.default_rng(0), must_have_data=True, critical=True)
    assert (r.label, r.critical) == ("Nodata", True)


def test_noise_is_added_only_to_two_constant_series_and_is_reproducible():
    """addGaussianNoise: two constant, different series get sd |value|·1e-5 noise, drawn
    from the Generator passed in (same seed, same result); other series are untouched."""
    c, e = np.full(20, 1.0), np.full(20, 1.01)
    a = classify(c, e, np.random.default_rng(7))
    b = classify(c, e, np.random.default_rng(7))
    assert a == b and a.label == "High"
    # with 1e-5 relative noise the estimate is the 0.01 shift, to within the noise
    assert a.estimate == pytest.approx(0.01, abs=1e-4)
    # not both constant: no randomness at all, whatever the generator
    e2 = np.r_[np.full(19, 1.01), 1.02]
    assert classify(c, e2, np.random.default_rng(1)) == classify(c, e2, np.random.default_rng(2))


def test_all_tied_after_shift_is_an_error():
    """One value each, 0 and 5: the 0 gets no noise (scale 0·1e-5), and at the range end
    every shifted value ties: MannWhitney throws, NetflixACAJudge reports Error."""
    r = classify(np.array([5.0]), np.array([0.0]), np.random.default_rng(0))
    assert r.label == "Error"


def test_transform_nan_strategies_and_outliers():
    """NetflixACAJudge.handleNaNs (remove / replace with 0) then handleOutliers (IQR,
    factor 3, reduced sensitivity)."""
    v = np.array([1.0, np.nan, 2.0, np.nan])
    assert transform(v, "remove").tolist() == [1.0, 2.0]
    assert transform(v, "replace").tolist() == [1.0, 0.0, 2.0, 0.0]
    data = np.r_[np.linspace(10.0, 11.0, 200), 1000.0]
    assert transform(data, "remove", "keep").max() == 1000.0
    assert transform(data, "remove", "remove").max() == 11.0


# --- ScorerSuite.scala ------------------------------------------------------------------


def _m(label: str, critical: bool = False) -> MetricClassification:
    return MetricClassification(label, reason=f"{label} reason", critical=critical)


@pytest.mark.parametrize(
    "test_name, weights, results, expected",
    [
        ("Single Metric Pass", {}, [("Pass", False, "g")], 100.0),
        ("Single Metric Fail", {}, [("High", False, "g")], 0.0),
        ("Single group Nodata", {}, [("Nodata", False, "g")], 0.0),
        (
            "Two Groups, one Pass, one Nodata",
            {},
            [("Pass", False, "pass"), ("Pass", False, "pass"), ("Nodata", False, "nodata")],
            100.0,
        ),
        ("One Group, Two Metrics", {}, [("Pass", False, "g"), ("High", False, "g")], 50.0),
        ("One Group, Three Metrics", {}, [("Pass", False, "g"), ("High", False, "g"), ("Low", False, "g")], 33.33),
        (
            "Two Groups, Three Metrics",
            {"group-1": 75.0, "group-2": 25.0},
            [("Pass", False, "group-1"), ("Pass", False, "group-1"), ("High", False, "group-2")],
            75.0,
        ),
        (
            "Two Groups, Three Metrics (Equal Weight)",
            {"group-1": 50.0, "group-2": 50.0},
            [("Pass", False, "group-1"), ("High", False, "group-1"), ("High", False, "group-2")],
            25.0,
        ),
        (
            "Two Groups, Three Metrics (Equal Weight), one NoData",
            {"group-1": 50.0, "group-2": 50.0},
            [("Pass", False, "group-1"), ("Nodata", False, "group-1"), ("High", False, "group-2")],
            50.0,
        ),
        ("Two Metrics, one good (normal), one fail (critical)", {}, [("Pass", False, "g"), ("High", True, "g")], 0.0),
        ("Two Metrics, one low (normal), one good (critical)", {}, [("Low", False, "g"), ("Pass", True, "g")], 50.0),
        (
            "Two Metrics, one good (normal), one nodata (critical)",
            {},
            [("Pass", False, "g"), ("Nodata", True, "g")],
            0.0,
        ),
        (
            "Two Groups (Unequal Weight), Four Metrics",
            {"group1": 15.0, "group2": 85.0},
            [("High", False, "group1"), ("Low", False, "group1"), ("Pass", False, "group1"), ("High", False, "group2")],
            5.0,
        ),
    ],
)
def test_scorer_suite(test_name, weights, results, expected):
    """ScorerSuite.scala "Weighted Sum Group Scorer: <test_name>"."""
    scored = weighted_sum_score([(_m(label, crit), [group]) for label, crit, group in results], weights)
    assert scored.score == expected


def test_group_scores_and_unweighted_groups_share_the_rest():
    """calculateSummaryScore: groups without a weight share 100 − Σweights equally; a
    group with only no-data metrics scores 0 but counts as 100 in the summary."""
    results = [(_m("Pass"), ["a"]), (_m("High"), ["b"]), (_m("Pass"), ["c"]), (_m("High"), ["c"])]
    scored = weighted_sum_score(results, {"a": 40.0})
    assert scored.group_scores == {"a": 100.0, "b": 0.0, "c": 50.0}
    assert scored.score == pytest.approx(40.0 + 0.0 * 30 + 50.0 * 0.30)
    # 1 of 3 metrics no data (< 50 %): its group counts as 100
    scored = weighted_sum_score([(_m("Nodata"), ["x"]), (_m("Pass"), ["y"]), (_m("High"), ["y"])], {})
    assert scored.group_scores["x"] == 0.0 and scored.score == 75.0
    # exactly 50 % no data: the canary fails
    scored = weighted_sum_score([(_m("Nodata"), ["x"]), (_m("Pass"), ["y"])], {})
    assert scored.score == 0.0 and "NODATA" in scored.reason


def test_summary_score_rounds_half_up():
    """calculateSummaryScore rounds with Precision.round(_, 2) (half up)."""
    assert round_half_up(33.333333, 2) == 33.33
    assert round_half_up(12.345, 2) == 12.35
    assert round_half_up(66.666666, 2) == 66.67


def test_threshold_score_classifier():
    """ThresholdScoreClassifier.classify: Pass at ≥ pass, Marginal at ≥ marginal, else Fail."""
    assert [classify_score(s, 95.0, 75.0) for s in (100.0, 95.0, 94.99, 75.0, 74.99, 0.0)] == [
        "Pass",
        "Pass",
        "Marginal",
        "Marginal",
        "Fail",
        "Fail",
    ]
