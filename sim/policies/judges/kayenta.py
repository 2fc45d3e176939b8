"""A replica of Kayenta's NetflixACAJudge as a pdsim judge (``judge: {kind: kayenta}``).

At every call (one Kayenta judgement per strategy interval) the judge builds, per configured
metric, the two time series Kayenta would fetch from Prometheus — one point per ``step``
over a window that grows from the rollout start or slides over ``lookback`` — and runs
Kayenta's rules on them (``kayenta_rules``: NaN strategy, outliers, Mann–Whitney
classification, weighted group score). The score maps to a verdict as the Kayenta
standalone canary analysis does over a canary's lifetime
(``kayenta-standalone-canary-analysis/.../orca/task/MonitorCanaryTask.java``: a judgement
scoring at or below ``marginal`` ends the analysis at once;
``GenerateCanaryAnalysisResultTask.getAggregatedJudgment``: the last score decides, and must
reach ``pass``).

pdsim departures, both forced by asking a judge at every tick: a judgement with nothing to
compare (no step has data for either version in any metric) answers NO_DATA instead of
Kayenta's score 0, because Kayenta is never asked before its first interval has data; and
the tiny noise Kayenta adds to two constant series comes from a numpy Generator seeded by
(``seed``, judgement number, metric index, tick) instead of a global RNG, so runs repeat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.models import Duration, StrictModel
from sim.policies.judges import kayenta_rules
from sim.policies.judges.base import (
    FAIL_CODE,
    INCONCLUSIVE_CODE,
    NO_DATA_CODE,
    PASS_CODE,
    Detail,
    JudgeBatch,
    JudgeData,
    Judgement,
    Judgements,
    Verdict,
    VersionSeries,
)
from sim.policies.judges.kayenta_rules import (
    MetricClassification,
    classify,
    classify_score,
    reason_for,
    transform,
    weighted_sum_score,
    weighted_sum_scores,
)
from sim.policies.judges.mannwhitney import interval_quantile
from sim.policies.judges.spec import ERRORS, LATENCY


class EffectSize(StrictModel):
    """``analysisConfigurations.canary.effectSize``; unset bounds default to 1.0 for
    ``meanRatio`` and 0.5 for ``cles`` (no effect)."""

    measure: Literal["meanRatio", "cles"] = "meanRatio"
    allowedIncrease: float | None = None
    allowedDecrease: float | None = None
    criticalIncrease: float | None = None
    criticalDecrease: float | None = None

    def bound(self, key: str) -> float:
        value = getattr(self, key)
        return value if value is not None else (0.5 if self.measure == "cles" else 1.0)


class Outliers(StrictModel):
    """``analysisConfigurations.canary.outliers``: IQR removal (reduced sensitivity)."""

    strategy: Literal["keep", "remove"] = "keep"
    outlierFactor: float = Field(default=3.0, gt=0)


class CanaryAnalysisConfig(StrictModel):
    """``analysisConfigurations.canary`` of a Kayenta metric, with Kayenta's defaults."""

    direction: Literal["increase", "decrease", "either"] = "either"
    nanStrategy: Literal["remove", "replace"] = "remove"
    critical: bool = False
    mustHaveData: bool = False
    muted: bool = False
    effectSize: EffectSize = EffectSize()
    outliers: Outliers = Outliers()


class AnalysisConfigurations(StrictModel):
    canary: CanaryAnalysisConfig = CanaryAnalysisConfig()


#: What a metric's series is, per step: error and success percentages of the requests,
#: or a latency quantile (ms) of the step's histogram.
Query = Literal["request-error-rate", "request-success-rate", "request-duration"]


class KayentaMetric(StrictModel):
    """One metric of the canary config: what to query and how Kayenta judges it.

    Attributes:
        name: the metric's name (reports and detail keys).
        query: the signal; ``request-duration`` is the ``quantile`` of latency.
        quantile: for ``request-duration`` (default 0.99, as Flagger's builtin).
        groups: score groups; Kayenta leaves a metric without groups out of every group
            score, so pdsim defaults to one group named after the metric.
        analysisConfigurations: Kayenta's per-metric judge settings.
    """

    name: str
    query: Query = "request-error-rate"
    quantile: float = Field(default=0.99, gt=0, lt=1)
    groups: list[str] | None = None
    analysisConfigurations: AnalysisConfigurations = AnalysisConfigurations()

    @property
    def canary(self) -> CanaryAnalysisConfig:
        return self.analysisConfigurations.canary

    @property
    def group_names(self) -> list[str]:
        return self.groups if self.groups else [self.name]


class Classifier(StrictModel):
    """The canary config's ``classifier``: percentage weights per group."""

    groupWeights: dict[str, Annotated[float, Field(ge=0)]] = {}

    @model_validator(mode="after")
    def _sum(self) -> Classifier:
        total = sum(self.groupWeights.values())
        if total > 100.0 + 1e-9:
            raise ValueError(f"groupWeights add up to {total:g}, more than 100")
        return self


class ScoreThresholds(StrictModel):
    """``scoreThresholds``: pass ≥ ``pass``; a judgement ≤ ``marginal`` ends the canary."""

    pass_: float = Field(default=95.0, alias="pass", ge=0, le=100)
    marginal: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreThresholds:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal:g}) is above pass ({self.pass_:g})")
        return self


def _default_metrics() -> list[KayentaMetric]:
    return [
        KayentaMetric(
            name="request-error-rate",
            query="request-error-rate",
            analysisConfigurations=AnalysisConfigurations(canary=CanaryAnalysisConfig(direction="increase")),
        )
    ]


class KayentaSpec(StrictModel):
    """``judge: {kind: kayenta, ...}``.

    Attributes:
        kind: "kayenta".
        metrics: the canary config's metrics (default: the error percentage, direction
            increase).
        classifier: group weights.
        scoreThresholds: ``pass`` and ``marginal``.
        step: the query resolution (Kayenta's default 60 s).
        lookback: sliding window length; None for a window growing from the start.
        beginCanaryAnalysisAfter: warm-up excluded from every window.
        seed: seeds the noise added to two constant series.
    """

    kind: Literal["kayenta"] = "kayenta"
    metrics: list[KayentaMetric] = Field(default_factory=_default_metrics, min_length=1)
    classifier: Classifier = Classifier()
    scoreThresholds: ScoreThresholds = ScoreThresholds()
    step: Duration = 60.0
    lookback: Duration | None = None
    beginCanaryAnalysisAfter: Duration = 0.0
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> KayentaSpec:
        if self.step <= 0:
            raise ValueError("step must be positive")
        if self.lookback is not None and self.lookback < self.step:
            raise ValueError(f"lookback ({self.lookback:g}s) is shorter than step ({self.step:g}s)")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be unique")
        return self


@dataclass(frozen=True)
class KayentaState:
    """Judgements made so far and the last score (None before the first)."""

    judgements: int = 0
    last_score: float | None = None


@dataclass(frozen=True, eq=False)
class KayentaBatchState:
    """``KayentaState`` of n runs as arrays (``KayentaJudge.batch_state``), updated in place.

    Attributes:
        judgements: (n,) judgements made so far.
        last_score: (n,) the last score (meaningless where not ``scored``).
        scored: (n,) whether a score was made yet (``last_score`` not None).
    """

    judgements: np.ndarray
    last_score: np.ndarray
    scored: np.ndarray


def histogram_quantile(q: float, bounds_ms: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Prometheus ``histogram_quantile`` of each row of non-cumulative bucket counts.

    Linear interpolation inside the bucket holding rank q·total (from 0 in the first
    bucket); the last finite bound when the rank falls in +Inf; NaN for an empty row.
    """
    total = counts.sum(axis=1)
    cum = np.cumsum(counts, axis=1)
    rank = q * total
    b = np.argmax(cum >= rank[:, None], axis=1)
    nb = len(bounds_ms)
    bi = np.minimum(b, nb - 1)
    rows = np.arange(len(counts))
    lo = np.where(bi == 0, 0.0, bounds_ms[np.maximum(bi - 1, 0)])
    below = np.where(bi == 0, 0.0, cum[rows, np.maximum(bi - 1, 0)])
    inside = counts[rows, bi]
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(inside > 0, lo + (bounds_ms[bi] - lo) * (rank - below) / inside, bounds_ms[bi])
    val = np.where(b >= nb, bounds_ms[-1], val)
    return np.where(total > 0, val, np.nan)


def step_edges(data: JudgeData, spec: KayentaSpec) -> np.ndarray:
    """Slot indices bounding each step of the window (Prometheus range-query points).

    Points are at window start + i·step (i ≥ 1), each covering the step before it, up to
    the latest ingested sample; a counter's value at a point is its value at the last
    slot ending by then. Returns the slot index of every point, starting with the window
    start's, so consecutive differences of cumulative counts are the steps' increments.
    """
    return window_edges(data.t, data.scrape_s, min(len(data.canary.requests), len(data.primary.requests)), spec)


def window_edges(t: float, scrape: float, slots: int, spec: KayentaSpec) -> np.ndarray:
    """``step_edges`` at tick t of series of ``slots`` slots (the same for every run of a
    batch)."""
    last_sample_s = (slots - 1) * scrape
    end_s = min(t, last_sample_s)
    start_s = spec.beginCanaryAnalysisAfter
    if spec.lookback is not None:
        start_s = max(start_s, end_s - spec.lookback)
    n_points = int(math.floor((end_s - start_s) / spec.step + 1e-9))
    if n_points < 1:
        return np.zeros(0, dtype=int)
    times = start_s + spec.step * np.arange(n_points + 1)
    return np.floor(times / scrape + 1e-9).astype(int)


def metric_series(series: VersionSeries, metric: KayentaMetric, edges: np.ndarray, bounds_ms: np.ndarray) -> np.ndarray:
    """One version's values of ``metric`` per step (NaN for a step without requests)."""
    hist = None if series.hist is None else np.asarray(series.hist)[None]
    requests, errors = np.asarray(series.requests)[None], np.asarray(series.errors)[None]
    return metric_rows(requests, errors, hist, metric, edges, bounds_ms)[0]


def metric_rows(
    requests: np.ndarray,
    errors: np.ndarray,
    hist: np.ndarray | None,
    metric: KayentaMetric,
    edges: np.ndarray,
    bounds_ms: np.ndarray,
) -> np.ndarray:
    """``metric_series`` of n runs at once: (n, K) counts and (n, K, B) histograms (or
    None) to (n, steps) values; row by row the same numbers (sums run along slots)."""
    n = len(requests)
    if len(edges) < 2:
        return np.zeros((n, 0))

    def steps(counts: np.ndarray) -> np.ndarray:
        # increments between the points: differences of the cumulative counts at the edges
        cum = np.concatenate([np.zeros((n, 1) + counts.shape[2:]), np.cumsum(counts, axis=1, dtype=float)], axis=1)
        return np.diff(cum[:, edges + 1], axis=1)

    if metric.query == "request-duration":
        if hist is None:
            return np.full((n, len(edges) - 1), np.nan)
        per_step = steps(hist)
        flat = histogram_quantile(metric.quantile, bounds_ms, per_step.reshape(-1, per_step.shape[2]))
        return flat.reshape(n, -1)
    requests = steps(requests)
    errors = steps(errors)
    with np.errstate(invalid="ignore", divide="ignore"):
        error_pct = np.where(requests > 0, 100.0 * errors / requests, np.nan)
    return error_pct if metric.query == "request-error-rate" else 100.0 - error_pct


class SeededDraws:
    """A ``numpy.random.Generator`` of ``seed``, made on the first draw: most judgements
    draw nothing (noise is added only to two constant series) and making a generator
    costs more than the rest of a judgement."""

    def __init__(self, seed: list[int]) -> None:
        self.seed = seed
        self._generator: np.random.Generator | None = None

    def standard_normal(self, size: int) -> np.ndarray:
        if self._generator is None:
            self._generator = np.random.default_rng(self.seed)
        return self._generator.standard_normal(size)


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class KayentaJudge:
    """NetflixACAJudge over pdsim's counters, judged at every call (see module doc).

    Attributes:
        kind: "kayenta".
        spec: the configuration.
    """

    kind = "kayenta"

    def __init__(self, spec: KayentaSpec) -> None:
        self.spec = spec

    @property
    def needs_latency(self) -> bool:
        """Whether a configured (not muted) metric reads latency histograms."""
        return any(m.query == "request-duration" and not m.canary.muted for m in self.spec.metrics)

    @property
    def signals(self) -> frozenset[str]:
        """The builtin checks a Kayenta verdict replaces: the error rate's, and the
        latency's when a configured metric reads latency (Kayenta judges the metrics of its
        own canary config, not the strategy's)."""
        return frozenset({ERRORS, LATENCY}) if self.needs_latency else frozenset({ERRORS})

    def initial_state(self) -> KayentaState:
        return KayentaState()

    def judge(self, state: KayentaState, data: JudgeData) -> tuple[KayentaState, Judgement]:
        """One Kayenta judgement over the window ending at ``data.t``."""
        batch = JudgeBatch.of(data)
        edges, series = self._series(batch)
        return self._judge_series(state, data.t, edges, [(c[0], p[0]) for c, p in series])

    def batch_state(self, n: int) -> KayentaBatchState:
        """n runs before their first judgement."""
        return KayentaBatchState(np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n, dtype=bool))

    def state_row(self, state: KayentaBatchState, i: int) -> KayentaState:
        """Run i's ``KayentaState``."""
        return KayentaState(int(state.judgements[i]), float(state.last_score[i]) if state.scored[i] else None)

    def judge_batch(self, state: KayentaBatchState, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Each run's judgement, all runs at once: the metrics' series in one numpy pass,
        every series classified by one compiled loop (``kernels.kayenta_classify_rows``),
        the scores as columns (``kayenta_rules.weighted_sum_scores``). The verdicts and
        states are ``judge``'s bit for bit; a run's detail, read for few runs, is ``judge``'s
        own, made when asked."""
        spec = self.spec
        edges, series = self._series(data)
        n = len(rows)
        judged = state.judgements[rows]
        anything = np.zeros(n, dtype=bool)
        outcomes = [self._classify_rows(index, c, p, judged, data.t) for index, (c, p) in enumerate(series)]
        labels, fails, groups = [], [], []
        for metric, (raw_canary, raw_primary), (label, fail, _, _) in zip(spec.metrics, series, outcomes, strict=True):
            if metric.canary.muted:
                continue  # its classification is in the detail only
            anything |= np.isfinite(raw_canary).any(axis=1) & np.isfinite(raw_primary).any(axis=1)
            labels.append(label)
            fails.append(fail)
            groups.append(metric.group_names)
        scores = weighted_sum_scores(
            np.column_stack(labels) if labels else np.zeros((n, 0), dtype=np.int8),
            np.column_stack(fails) if fails else np.zeros((n, 0), dtype=bool),
            groups,
            spec.classifier.groupWeights,
        )
        thresholds = spec.scoreThresholds
        reject = anything & (scores <= thresholds.marginal)
        verdict = np.where(
            ~anything,
            NO_DATA_CODE,
            np.where(reject, FAIL_CODE, np.where(scores >= thresholds.pass_, PASS_CODE, INCONCLUSIVE_CODE)),
        ).astype(np.int8)
        state.judgements[rows] = judged + 1
        state.last_score[rows] = np.where(anything, scores, state.last_score[rows])
        state.scored[rows] |= anything

        def detail(j: int) -> Detail:
            before = KayentaState(int(judged[j]))  # the last score is not in a detail
            runs_series = [(c[j], p[j]) for c, p in series]
            results = [self._outcome(index, outcome, j) for index, outcome in enumerate(outcomes)]
            return dict(self._judge_series(before, data.t, edges, runs_series, results)[1].detail)

        return Judgements(verdict, reject, np.zeros(n, dtype=bool), detail)

    def _classify_rows(
        self, index: int, raw_canary: np.ndarray, raw_primary: np.ndarray, judged: np.ndarray, t: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, MetricClassification]]:
        """Metric ``index``'s label codes and critical flags of every run, (n,) each, and
        their numbers (``kayenta_classify_rows``): the compiled ``classify`` of every row,
        the scalar one where it needs noise (those rows' results by row)."""
        from sim.policies.judges import kernels  # numba: compiled on first use, not at import

        metric = self.spec.metrics[index]
        cfg = metric.canary
        canary, canary_len = self._transformed_rows(cfg, raw_canary)
        primary, primary_len = self._transformed_rows(cfg, raw_primary)
        es = cfg.effectSize
        label, fail, numbers = kernels.kayenta_classify_rows(
            primary,
            primary_len,
            canary,
            canary_len,
            interval_quantile(kayenta_rules.CONFIDENCE),
            cfg.direction in ("increase", "either"),
            cfg.direction in ("decrease", "either"),
            cfg.nanStrategy == "replace",
            cfg.critical,
            cfg.mustHaveData,
            kayenta_rules.TOLERANCE,
            (es.bound("allowedDecrease"), es.bound("allowedIncrease")),
            (es.bound("criticalDecrease"), es.bound("criticalIncrease")),
            es.measure == "cles",
        )
        codes = {name: code for code, name in enumerate(kernels.KAYENTA_LABELS)}
        noisy = {}
        for j in np.flatnonzero(label == kernels.NEEDS_NOISE).tolist():
            canary_j, primary_j = self._transformed(cfg, raw_canary[j]), self._transformed(cfg, raw_primary[j])
            noisy[j] = result = self._classify(index, canary_j, primary_j, int(judged[j]), t)
            label[j], fail[j] = codes[result.label], result.critical
        return label, fail, numbers, noisy

    def _outcome(
        self, index: int, outcome: tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, MetricClassification]], j: int
    ) -> MetricClassification:
        """Row j's ``MetricClassification`` of metric ``index`` from ``_classify_rows``'s
        columns (two identical series' Pass lacks its reason, which no detail shows)."""
        from sim.policies.judges.kernels import KAYENTA_LABELS

        label, fail, numbers, noisy = outcome
        if j in noisy:
            return noisy[j]
        name, critical = KAYENTA_LABELS[int(label[j])], bool(fail[j])
        deviation, effect, lower, upper, estimate = numbers[j].tolist()
        return MetricClassification(
            name,
            reason_for(name, self.spec.metrics[index].name, critical),
            deviation=deviation,
            critical=critical,
            effect_size=effect,
            lower=lower,
            upper=upper,
            estimate=estimate,
        )

    @staticmethod
    def _transformed_rows(cfg: CanaryAnalysisConfig, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``kayenta_classify_rows`` and their lengths: the raw rows (the kernel
        applies the NaN strategy), or each row's ``transform`` when outliers are removed."""
        if cfg.outliers.strategy == "keep":
            return raw, np.full(len(raw), raw.shape[1], dtype=np.int64)
        rows = [KayentaJudge._transformed(cfg, x) for x in raw]
        out = np.zeros(raw.shape)
        for i, x in enumerate(rows):
            out[i, : len(x)] = x
        return out, np.array([len(x) for x in rows], dtype=np.int64)

    def _series(self, data: JudgeBatch) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """The window's step edges and, per metric, the (canary, primary) values of every
        run per step, (n, steps) each."""
        edges = window_edges(data.t, data.scrape_s, data.canary_requests.shape[1], self.spec)
        bounds = np.asarray(data.bounds_ms, dtype=float)
        return edges, [
            (
                metric_rows(data.canary_requests, data.canary_errors, data.canary_hist, metric, edges, bounds),
                metric_rows(data.primary_requests, data.primary_errors, data.primary_hist, metric, edges, bounds),
            )
            for metric in self.spec.metrics
        ]

    @staticmethod
    def _transformed(cfg: CanaryAnalysisConfig, raw: np.ndarray) -> np.ndarray:
        return transform(raw, cfg.nanStrategy, cfg.outliers.strategy, cfg.outliers.outlierFactor)

    def _classify(
        self, index: int, canary: np.ndarray, primary: np.ndarray, judgements: int, t: float
    ) -> MetricClassification:
        """``classify`` of metric ``index``'s transformed series at a run's judgement number
        ``judgements`` (from 0), noise seeded by (seed, judgement, metric, tick)."""
        spec = self.spec
        metric = spec.metrics[index]
        cfg = metric.canary
        es = cfg.effectSize
        return classify(
            primary,
            canary,
            SeededDraws([spec.seed, judgements, index, int(round(t * 1000))]),
            direction=cfg.direction,
            nan_strategy=cfg.nanStrategy,
            critical=cfg.critical,
            must_have_data=cfg.mustHaveData,
            tolerance=kayenta_rules.TOLERANCE,
            confidence=kayenta_rules.CONFIDENCE,
            effect_thresholds=(es.bound("allowedDecrease"), es.bound("allowedIncrease")),
            critical_thresholds=(es.bound("criticalDecrease"), es.bound("criticalIncrease")),
            measure=es.measure,
            name=metric.name,
        )

    def _judge_series(
        self,
        state: KayentaState,
        t: float,
        edges: np.ndarray,
        series: list[tuple[np.ndarray, np.ndarray]],
        classified: list[MetricClassification] | None = None,
    ) -> tuple[KayentaState, Judgement]:
        """One judgement of one run from its metrics' (canary, primary) step values, with
        their classifications if already made (the batch pass's)."""
        spec = self.spec
        detail: dict[str, float | str | None] = {
            "judgement": float(state.judgements + 1),
            "points": float(max(len(edges) - 1, 0)),
        }
        results: list[tuple[MetricClassification, list[str]]] = []
        anything = False
        for index, metric in enumerate(spec.metrics):
            cfg = metric.canary
            raw_canary, raw_primary = series[index]
            if not cfg.muted:
                anything |= bool(np.isfinite(raw_canary).any() and np.isfinite(raw_primary).any())
            canary, primary = self._transformed(cfg, raw_canary), self._transformed(cfg, raw_primary)
            if classified is None:
                result = self._classify(index, canary, primary, state.judgements, t)
            else:
                result = classified[index]
            key = f"metric.{metric.name}"
            detail.update(
                {
                    f"{key}.classification": result.label,
                    f"{key}.hl_estimate": _num(result.estimate),
                    f"{key}.ci_lower": _num(result.lower),
                    f"{key}.ci_upper": _num(result.upper),
                    f"{key}.ratio": _num(result.deviation),
                    f"{key}.effect_size": _num(result.effect_size),
                    f"{key}.points": float(min(len(canary), len(primary))),
                }
            )
            if cfg.muted:
                detail[f"{key}.classification"] = f"{result.label} (muted)"
            else:
                results.append((result, metric.group_names))
        new_state = KayentaState(state.judgements + 1, state.last_score)
        if not anything:
            detail["classification"] = "Nodata"
            return new_state, Judgement(Verdict.NO_DATA, detail=detail)

        scored = weighted_sum_score(results, spec.classifier.groupWeights)
        thresholds = spec.scoreThresholds
        detail.update({f"group.{g}": s for g, s in scored.group_scores.items()})
        detail.update(
            {
                "score": scored.score,
                "reason": scored.reason,
                "classification": classify_score(scored.score, thresholds.pass_, thresholds.marginal),
                # what Kayenta's aggregated judgement would be if this were the last one
                "final_if_last": "pass" if scored.score >= thresholds.pass_ else "fail",
            }
        )
        new_state = KayentaState(state.judgements + 1, scored.score)
        if scored.score <= thresholds.marginal:
            detail["statistic"] = f"score {scored.score:.1f} <= marginal {thresholds.marginal:g}"
            return new_state, Judgement(Verdict.FAIL, reject=True, detail=detail)
        verdict = Verdict.PASS if scored.score >= thresholds.pass_ else Verdict.INCONCLUSIVE
        return new_state, Judgement(verdict, detail=detail)
