"""Kayenta's per-metric classification and scoring rules, on plain arrays.

Sources (spinnaker/kayenta, ``kayenta-judge/src/main/scala/com/netflix/kayenta/judge/``):

* ``NetflixACAJudge.scala``: ``transformMetric`` (NaN strategy, then optional IQR outlier
  removal with factor 3 and reduced sensitivity) and ``classifyMetric`` (tolerance 0.25,
  confidence 0.98, effect-size defaults 1.0 for ``meanRatio`` and 0.5 for ``cles``).
* ``classifiers/metric/MannWhitneyClassifier.scala``: ``classify`` and ``compare``.
* ``scorers/WeightedSumScorer.scala``: group scores, weights, critical failures and the
  50 % no-data rule; ``classifiers/score/ThresholdScoreClassifier.scala``.

Labels keep Kayenta's spelling (``Pass``, ``High``, ``Low``, ``Nodata``,
``NodataFailMetric``, ``Error``) so traces read like Kayenta's reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

import numpy as np

from sim.policies.judges.mannwhitney import AllTiedError, cles, iqr_outliers, mann_whitney_ci, mean_ratio

#: NetflixACAJudge.classifyMetric builds its MannWhitneyClassifier with these.
TOLERANCE = 0.25
CONFIDENCE = 0.98
#: WeightedSumScorer.NODATA_THRESHOLD: this percentage of no-data metrics fails the canary.
NODATA_THRESHOLD = 50.0
#: MannWhitneyClassifier.addGaussianNoise: noise scale relative to the constant value.
NOISE_SCALE = 1e-5


@dataclass(frozen=True)
class MetricClassification:
    """One metric's outcome (Kayenta's ``MetricClassification`` plus the test's numbers).

    Attributes:
        label: Pass, High, Low, Nodata, NodataFailMetric or Error.
        reason: Kayenta's explanation, if any.
        deviation: mean ratio experiment/control (NaN when a mean is 0).
        critical: whether this outcome fails the whole canary.
        effect_size: the configured effect size (mean ratio or CLES), NaN if not tested.
        lower: lower end of the shift's confidence interval (NaN if not tested).
        upper: upper end of the interval.
        estimate: Hodges–Lehmann estimate of the shift canary − baseline.
    """

    label: str
    reason: str | None = None
    deviation: float = 1.0
    critical: bool = False
    effect_size: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    estimate: float = math.nan


def transform(
    values: np.ndarray, nan_strategy: str = "remove", outliers: str = "keep", outlier_factor: float = 3.0
) -> np.ndarray:
    """``NetflixACAJudge.transformMetric``: drop or zero NaNs, then optionally drop outliers."""
    values = np.asarray(values, dtype=float)
    nan = np.isnan(values)
    values = values[~nan] if nan_strategy == "remove" else np.where(nan, 0.0, values)
    if outliers == "remove":
        values = values[~iqr_outliers(values, outlier_factor, reduce_sensitivity=True)]
    return values


class NormalDraws(Protocol):
    """Where the noise comes from: a ``numpy.random.Generator`` or anything drawing like it."""

    def standard_normal(self, size: int) -> np.ndarray: ...


def _with_noise(values: np.ndarray, rng: NormalDraws) -> np.ndarray:
    # Gaussian noise of sd |value|·1e-5 around a constant series (a value of 0 stays 0)
    return values + rng.standard_normal(len(values)) * (values[0] * NOISE_SCALE)


def classify(
    control: np.ndarray,
    experiment: np.ndarray,
    rng: NormalDraws,
    *,
    direction: str = "either",
    nan_strategy: str = "remove",
    critical: bool = False,
    must_have_data: bool = False,
    tolerance: float = TOLERANCE,
    confidence: float = CONFIDENCE,
    effect_thresholds: tuple[float, float] = (1.0, 1.0),
    critical_thresholds: tuple[float, float] = (1.0, 1.0),
    measure: str = "meanRatio",
    name: str = "metric",
) -> MetricClassification:
    """``MannWhitneyClassifier.classify`` of transformed series.

    Args:
        control: the baseline's values (after ``transform``).
        experiment: the canary's values (after ``transform``).
        rng: draws the tiny noise added when both series are constant (and differ).
        direction: increase, decrease or either: which deviations can fail.
        nan_strategy: remove or replace (decides what an empty series means).
        critical: a High/Low beyond ``critical_thresholds`` (or no data) fails the canary.
        must_have_data: no data counts as a failed metric (unless critical).
        tolerance: High needs the interval's lower end above tolerance·|HL| (Low mirrors).
        confidence: two-sided confidence of the interval.
        effect_thresholds: (allowed decrease, allowed increase) of the effect size.
        critical_thresholds: (critical decrease, critical increase).
        measure: meanRatio or cles.
        name: metric name for the reasons.
    """
    control = np.asarray(control, dtype=float)
    experiment = np.asarray(experiment, dtype=float)
    if len(experiment) == 0 or len(control) == 0:
        if nan_strategy != "remove":
            return MetricClassification("Pass")
        if must_have_data and not critical:
            return MetricClassification("NodataFailMetric", reason_for("NodataFailMetric", name, False))
        return MetricClassification("Nodata", reason_for("Nodata", name, critical), critical=critical)
    if len(experiment) == len(control) and np.array_equal(np.sort(experiment), np.sort(control)):
        return MetricClassification("Pass", "The Canary and Baseline data are identical")
    # (min == max: one distinct value; no NaN is left here)
    if min(experiment.min(), control.min()) == max(experiment.max(), control.max()):
        return MetricClassification("Pass")

    if experiment.min() == experiment.max() and control.min() == control.max():
        experiment, control = _with_noise(experiment, rng), _with_noise(control, rng)
    try:
        ci = mann_whitney_ci(experiment, control, confidence)
    except AllTiedError:
        # NetflixACAJudge.classifyMetric catches the RuntimeException: an Error result,
        # which no score counts
        return MetricClassification("Error", reason_for("Error", name, False))
    deviation = mean_ratio(control, experiment)
    effect = cles(control, experiment) if measure == "cles" else deviation
    bound = tolerance * abs(ci.estimate)
    is_high = (
        direction in ("increase", "either")
        and ci.lower > bound
        and (math.isnan(effect) or effect >= effect_thresholds[1])
    )
    is_low = (
        direction in ("decrease", "either")
        and ci.upper < -bound
        and (math.isnan(effect) or effect <= effect_thresholds[0])
    )
    label = "High" if is_high else "Low" if is_low else "Pass"
    crit_high = critical and label == "High" and (math.isnan(effect) or effect >= critical_thresholds[1])
    crit_low = critical and label == "Low" and (math.isnan(effect) or effect <= critical_thresholds[0])
    fails = crit_high or crit_low
    return MetricClassification(
        label,
        reason_for(label, name, fails),
        deviation=deviation,
        critical=fails,
        effect_size=effect,
        lower=ci.lower,
        upper=ci.upper,
        estimate=ci.estimate,
    )


def reason_for(label: str, name: str, critical: bool) -> str | None:
    """Kayenta's explanation of a metric's outcome (None for a Pass; ``classify`` gives two
    identical series their own), ``critical`` whether the outcome fails the canary."""
    if label in ("Nodata", "NodataFailMetric"):
        return f"Missing data for {name}"
    if label == "Error":
        return "Metric Classification Failed"
    if label == "Pass":
        return None
    return (
        f"The metric {name} was classified as {label} (Critical)" if critical else f"{name} was classified as {label}"
    )


@dataclass(frozen=True)
class ScoreResult:
    """``WeightedSumScorer.score``'s result.

    Attributes:
        score: summary score in [0, 100], rounded half-up to two decimals.
        group_scores: per group 100·pass / (pass + high + low + nodata-failures); 0.0
            (counted as 100 in the summary) for a group with none of those.
        reason: why the score was forced to 0, if it was.
    """

    score: float
    group_scores: dict[str, float]
    reason: str | None = None


def weighted_sum_score(
    results: Sequence[tuple[MetricClassification, Sequence[str]]], group_weights: dict[str, float]
) -> ScoreResult:
    """Score the (not muted) metric results: ``WeightedSumScorer.score``.

    Args:
        results: each metric's classification with its groups.
        group_weights: percentage weight per group; groups without one share what is left
            of 100 equally.
    """
    labels: dict[str, list[str]] = {}
    for result, groups in results:
        for group in groups:
            labels.setdefault(group, []).append(result.label)
    counted = ("Pass", "High", "Low", "NodataFailMetric")
    group_scores: dict[str, float] = {}
    no_data: dict[str, bool] = {}
    for group, group_labels in labels.items():
        total = sum(group_labels.count(x) for x in counted)
        no_data[group] = total == 0
        group_scores[group] = 0.0 if total == 0 else group_labels.count("Pass") / total * 100.0

    failures = [r for r, _ in results if r.critical and r.label != "Pass"]
    if failures:
        return ScoreResult(0.0, group_scores, f"Canary Failed: {failures[0].reason}")
    n_nodata = sum(1 for r, _ in results if r.label == "Nodata")
    if results and n_nodata / len(results) * 100.0 >= NODATA_THRESHOLD:
        return ScoreResult(0.0, group_scores, f"Canary Failed: {NODATA_THRESHOLD:g}% or more metrics returned NODATA")

    unweighted = [g for g in group_scores if g not in group_weights]
    shared = (100.0 - sum(group_weights.values())) / len(unweighted) if unweighted else 0.0
    summary = 0.0
    for group, score in group_scores.items():
        effective = 100.0 if no_data[group] else score
        summary += effective * (group_weights.get(group, shared) / 100.0)
    return ScoreResult(round_half_up(summary, 2), group_scores)


def round_half_up(x: float, places: int) -> float:
    """commons-math ``Precision.round``: half-up rounding of the decimal representation."""
    return float(Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def classify_score(score: float, pass_threshold: float, marginal_threshold: float) -> str:
    """``ThresholdScoreClassifier.classify``: Pass, Marginal or Fail."""
    if score >= pass_threshold:
        return "Pass"
    if score >= marginal_threshold:
        return "Marginal"
    return "Fail"


def weighted_sum_scores(
    labels: np.ndarray, fails: np.ndarray, groups: Sequence[Sequence[str]], group_weights: dict[str, float]
) -> np.ndarray:
    """``weighted_sum_score``'s score of n runs at once (the Kayenta judge's batch pass).

    Args:
        labels: (n, M) label codes (``kernels.KAYENTA_LABELS``) of the M not muted metrics.
        fails: (n, M) each outcome's ``MetricClassification.critical``.
        groups: each metric's groups.
        group_weights: percentage weight per group.

    Returns:
        (n,) scores, each the float ``weighted_sum_score`` gives for those results: the same
        operations elementwise, in the same order, and the same rounding.
    """
    from sim.policies.judges.kernels import LABEL_HIGH, LABEL_LOW, LABEL_NODATA, LABEL_NODATA_FAIL, LABEL_PASS

    n, n_metrics = labels.shape
    members: dict[str, list[int]] = {}
    for index, metric_groups in enumerate(groups):
        for group in metric_groups:
            members.setdefault(group, []).append(index)
    passed = labels == LABEL_PASS
    counted = passed | (labels == LABEL_HIGH) | (labels == LABEL_LOW) | (labels == LABEL_NODATA_FAIL)
    unweighted = [g for g in members if g not in group_weights]
    shared = (100.0 - sum(group_weights.values())) / len(unweighted) if unweighted else 0.0
    summary = np.zeros(n)
    for group, columns in members.items():
        total = counted[:, columns].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(total == 0, 0.0, passed[:, columns].sum(axis=1) / total * 100.0)
        effective = np.where(total == 0, 100.0, score)
        summary = summary + effective * (group_weights.get(group, shared) / 100.0)
    forced = (fails & ~passed).any(axis=1)
    if n_metrics:
        forced |= (labels == LABEL_NODATA).sum(axis=1) / n_metrics * 100.0 >= NODATA_THRESHOLD
    # few distinct sums: each rounded once, by the scalar's decimal rounding
    distinct, where = np.unique(summary, return_inverse=True)
    rounded = np.array([round_half_up(float(x), 2) for x in distinct])[where.reshape(-1)]
    return np.where(forced, 0.0, rounded)
