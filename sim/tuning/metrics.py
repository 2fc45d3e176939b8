"""Objective and constraint metrics of a tuning search, estimated from run records.

A metric name is a RATE or ``QUANTITY.STAT[.POPULATION]``:

* rates: ``false_rollback_rate`` (rollbacks among good releases), ``missed_rate``
  (promotions among bad releases), ``detection_rate`` (rollbacks among bad releases) and
  ``promoted``, ``rolled_back``, ``unfinished`` (shares of all runs) — as ``pdsim check``
  defines them (``sim.gates.decide``);
* ``QUANTITY`` a run-record quantity of ``sim.gates.spec.QUANTITIES``
  (``excess_errors``, ``detection_time_s``, ...), ``STAT`` ``mean``, ``median`` or a
  percentile ``pNN`` (``p95``, ``p99.9``), ``POPULATION`` ``bad`` (the default: the
  damage a policy lets through is the damage of bad releases), ``good`` or ``all``.

**Weights.** A portfolio says how often each kind of release comes (its entries'
weights); each entry's runs share its weight equally, so a metric is an estimate for one
release drawn from the portfolio, whatever the run count of each entry. A population
keeps each entry's mass in proportion to its runs in the population.

**Runs without a value.** A percentile counts a run whose quantity has no value as
+infinity (a bad release never rolled back has no detection time: a policy that misses
most bad releases has an infinite median detection time, not a good one); a mean leaves
such runs out (bound ``missed_rate`` to see them).

**Intervals.** Rates: stratified Wilson (``sim.stats.stratified_rate``); means:
stratified normal (``sim.stats.stratified_mean``); percentiles: a stratified percentile
bootstrap (runs resampled within each entry), seeded by the caller. ``paired``
compares two policies on the same runs (common random numbers) by a paired stratified
bootstrap: the runs are resampled once for both, so the interval of the difference
reflects only how the policies differ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.gates.spec import QUANTITIES

if TYPE_CHECKING:
    import pandas as pd

#: Rates a metric can name, and the population each is a share of.
RATES = {
    "false_rollback_rate": "good",
    "detection_rate": "bad",
    "missed_rate": "bad",
    "promoted": "all",
    "rolled_back": "all",
    "unfinished": "all",
}
POPULATIONS = ("bad", "good", "all")
#: Bootstrap replicates of a percentile's interval (each one a weighted quantile over
#: every run: a few hundred keep a search's many estimates cheap).
N_BOOT = 400
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


@dataclass(frozen=True)
class MetricName:
    """A parsed metric name (``parse_metric``); ``str()`` gives the text back.

    Attributes:
        text: the name as written.
        quantity: the rate's name, or the run-record column.
        stat: ``mean``, ``median`` or ``pNN``; None for a rate.
        population: ``bad``, ``good`` or ``all``.
    """

    text: str
    quantity: str
    stat: str | None
    population: str

    def __str__(self) -> str:
        return self.text

    @property
    def is_rate(self) -> bool:
        return self.stat is None

    @property
    def q(self) -> float | None:
        """The percentile as a fraction (median 0.5), None for a mean or a rate."""
        if self.stat == "median":
            return 0.5
        m = _PERCENTILE.fullmatch(self.stat or "")
        return float(m.group(1)) / 100.0 if m else None


def parse_metric(text: str) -> MetricName:
    """``"decision_time_s.mean.good"`` -> its parts.

    Raises:
        ValueError: a one-line message naming what is allowed.
    """
    if not isinstance(text, str):
        raise ValueError("a metric is a name such as excess_errors.mean or false_rollback_rate")
    if text in RATES:
        return MetricName(text, text, None, RATES[text])
    parts = text.split(".")
    # pNN.N holds a dot of its own: glue it back.
    if len(parts) >= 3 and re.fullmatch(r"p\d{1,2}", parts[1]) and parts[2].isdigit():
        parts = [parts[0], f"{parts[1]}.{parts[2]}", *parts[3:]]
    if len(parts) not in (2, 3) or parts[0] not in QUANTITIES:
        raise ValueError(
            f"a metric is a rate ({', '.join(RATES)}) or QUANTITY.STAT[.POPULATION] with QUANTITY one of "
            f"{', '.join(QUANTITIES)}"
        )
    quantity, stat = parts[0], parts[1]
    m = _PERCENTILE.fullmatch(stat)
    if stat not in ("mean", "median") and not (m and 0 < float(m.group(1)) < 100):
        raise ValueError(f"{quantity}: the statistic is mean, median or a percentile pNN such as p95 (got {stat})")
    population = parts[2] if len(parts) == 3 else "bad"
    if population not in POPULATIONS:
        raise ValueError(f"{quantity}.{stat}: the population is bad, good or all (got {population})")
    return MetricName(text, quantity, stat, population)


@dataclass(frozen=True)
class Estimate:
    """A metric's point value and interval; NaN when undefined (no run in the population).

    Attributes:
        value: the estimate.
        low, high: the interval's ends.
        n: runs in the metric's population.
    """

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-safe: NaN as None, infinities kept as floats (``json`` writes Infinity)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in vars(self).items()}


_UNDEFINED = Estimate(math.nan, math.nan, math.nan, 0)


@dataclass(frozen=True)
class _Columns:
    """What a metric reads from a frame: per run, its entry, its mass and its value."""

    entry: np.ndarray  # entry index of each run in the population
    mass: np.ndarray  # the run's share of the portfolio (entry weight / entry runs)
    x: np.ndarray  # the indicator (rate) or the quantity (NaN: no value)


def _columns(frame: pd.DataFrame, weights: Mapping[int, float], metric: MetricName) -> _Columns:
    entry = frame["scenario"].to_numpy(dtype=np.int64)
    runs = np.bincount(entry)
    w = np.zeros(len(runs))
    for i, weight in weights.items():
        if i < len(w):
            w[i] = weight
    mass = w[entry] / runs[entry]
    bad = frame["release_bad"].fillna(False).to_numpy(dtype=bool)
    keep = bad if metric.population == "bad" else ~bad if metric.population == "good" else np.ones(len(bad), bool)
    if metric.is_rate:
        outcome = frame["outcome"].astype(str).to_numpy()
        event = "promoted" if metric.quantity == "missed_rate" else "rolled_back"
        x = (outcome == (metric.quantity if metric.population == "all" else event)).astype(float)
    else:
        x = frame[metric.quantity].to_numpy(dtype=float)
    return _Columns(entry[keep], mass[keep], x[keep])


def _strata(c: _Columns) -> tuple[np.ndarray, ...]:
    """Per entry present: (mass, runs, sum, sum of squares, valued runs) of the values."""
    ids, inv = np.unique(c.entry, return_inverse=True)
    valued = ~np.isnan(c.x)
    x0 = np.where(valued, c.x, 0.0)
    mass = np.bincount(inv, weights=c.mass)
    runs = np.bincount(inv)
    return mass, runs, np.bincount(inv, weights=x0), np.bincount(inv, weights=x0 * x0), np.bincount(inv, weights=valued)


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> np.ndarray:
    """Per row of ``x`` (values, +inf allowed) with weights ``w``: the smallest value whose
    cumulative weight reaches ``q`` of the total (the inverse of the weighted ECDF)."""
    order = np.argsort(x, axis=-1, kind="stable")
    xs = np.take_along_axis(x, order, axis=-1)
    ws = np.take_along_axis(np.broadcast_to(w, x.shape), order, axis=-1)
    cum = np.cumsum(ws, axis=-1)
    target = q * cum[..., -1:]
    # 1e-12 of slack: a cumulative sum that should equal the target may fall a hair short.
    at = np.argmax(cum >= target * (1 - 1e-12), axis=-1)
    return np.take_along_axis(xs, at[..., None], axis=-1)[..., 0]


def _resample(entry: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """``n_boot`` rows of run indexes, each run drawn from its own entry (stratified)."""
    idx = np.empty((n_boot, len(entry)), dtype=np.int64)
    for e in np.unique(entry):
        members = np.flatnonzero(entry == e)
        idx[:, members] = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
    return idx


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def estimate(
    frame: pd.DataFrame,
    weights: Mapping[int, float],
    metric: MetricName,
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """One metric over a portfolio's run records (see the module docstring).

    Args:
        frame: run records with a ``scenario`` column holding each run's entry index.
        weights: entry index -> portfolio weight.
        metric: what to estimate.
        confidence: the interval's level.
        seed: seeds a percentile's bootstrap (same records, same interval).
    """
    from sim.stats import stratified_mean, stratified_rate

    c = _columns(frame, weights, metric)
    if len(c.x) == 0 or c.mass.sum() <= 0:
        return _UNDEFINED
    mass, runs, total, squares, valued = _strata(c)
    if metric.is_rate:
        r = stratified_rate(total, runs, mass, confidence)
        return Estimate(math.nan if r["rate"] is None else r["rate"], r["low"], r["high"], len(c.x))
    q = metric.q
    if q is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = total / valued
            var = (squares - valued * means**2) / (valued - 1)
        m = stratified_mean(means, var, valued, mass, confidence)
        if m["value"] is None:
            return Estimate(math.nan, math.nan, math.nan, len(c.x))
        return Estimate(m["value"], m["low"], m["high"], len(c.x))
    x = np.where(np.isnan(c.x), np.inf, c.x)
    value = float(_weighted_quantile(x, c.mass, q))
    boot = _weighted_quantile(x[_resample(c.entry, _rng(seed), N_BOOT)], c.mass, q)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return Estimate(value, float(low), float(high), len(c.x))


def estimates(
    frame: pd.DataFrame,
    weights: Mapping[int, float],
    metrics: Sequence[MetricName],
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """``estimate`` of each metric, keyed by its text."""
    return {str(m): estimate(frame, weights, m, confidence=confidence, seed=seed + i) for i, m in enumerate(metrics)}


def _point(c: _Columns, metric: MetricName, rows: np.ndarray) -> np.ndarray:
    """The metric on each row of resampled run indexes (rows: n_boot x runs)."""
    x, mass = c.x[rows], c.mass[rows]
    q = metric.q
    if q is not None:
        return _weighted_quantile(np.where(np.isnan(x), np.inf, x), mass, q)
    valued = ~np.isnan(x)
    # A mean is a mass-weighted mean of the valued runs within each entry, then over entries
    # by entry mass: with runs resampled within entries, each entry's mass is fixed, so
    # weighting every valued run by mass / (valued share of its entry) is the same thing.
    entry = c.entry[rows]
    out = np.empty(len(rows))
    for b in range(len(rows)):
        e, inv = np.unique(entry[b], return_inverse=True)
        m = np.bincount(inv, weights=mass[b])
        s = np.bincount(inv, weights=np.where(valued[b], x[b], 0.0))
        k = np.bincount(inv, weights=valued[b])
        has = k > 0
        out[b] = np.sum(m[has] * s[has] / k[has]) / np.sum(m[has]) if has.any() else math.nan
    return out


def paired(
    a: pd.DataFrame,
    b: pd.DataFrame,
    weights: Mapping[int, float],
    metric: MetricName,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Estimate]:
    """Policy B against policy A on the same runs (run k of an entry met the same traffic
    and faults under both), by a paired stratified bootstrap.

    Returns:
        ``{"a": Estimate, "b": Estimate, "diff": b - a, "ratio": b / a}``; the ratio is
        NaN where A's value is 0.

    Raises:
        ValueError: when the frames do not hold the same runs.
    """
    key = ["scenario", "run"]
    a = a.sort_values(key, ignore_index=True)
    b = b.sort_values(key, ignore_index=True)
    if len(a) != len(b) or not (a[key].to_numpy() == b[key].to_numpy()).all() or not (a["seed"] == b["seed"]).all():
        raise ValueError("a paired comparison needs the same runs (entries, run indexes and seeds) for both policies")
    ea = estimate(a, weights, metric, confidence=confidence, seed=seed)
    eb = estimate(b, weights, metric, confidence=confidence, seed=seed)
    ca, cb = _columns(a, weights, metric), _columns(b, weights, metric)
    if len(ca.x) == 0 or len(ca.x) != len(cb.x) or not (ca.entry == cb.entry).all():
        # The populations differ only if release_bad differs, which the runs fix; guard anyway.
        return {"a": ea, "b": eb, "diff": _UNDEFINED, "ratio": _UNDEFINED}
    rows = _resample(ca.entry, _rng(seed), n_boot)
    pa_, pb_ = _point(ca, metric, rows), _point(cb, metric, rows)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = pb_ - pa_
        ratios = np.where(pa_ > 0, pb_ / np.where(pa_ > 0, pa_, 1.0), np.nan)

    def interval(values: np.ndarray, point: float) -> Estimate:
        finite = values[~np.isnan(values)]
        if len(finite) < len(values) * 0.5 or math.isnan(point):
            return Estimate(point, math.nan, math.nan, len(ca.x))
        lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
        return Estimate(point, float(lo), float(hi), len(ca.x))

    with np.errstate(invalid="ignore"):
        diff_point = eb.value - ea.value
    ratio_point = eb.value / ea.value if ea.value and not math.isnan(ea.value) and ea.value > 0 else math.nan
    return {"a": ea, "b": eb, "diff": interval(diffs, diff_point), "ratio": interval(ratios, ratio_point)}


def meets(est: Estimate, bound: Mapping[str, float]) -> bool:
    """Whether an estimate meets ``{max: x}`` (its upper end <= x) and/or ``{min: x}``
    (its lower end >= x): the pessimistic end, so a constraint holds only when the data
    show it does. An undefined estimate (no run in the population) meets nothing."""
    if math.isnan(est.high) or math.isnan(est.low):
        return False
    if "max" in bound and not est.high <= bound["max"]:
        return False
    return not ("min" in bound and not est.low >= bound["min"])


def projected(est: Estimate, runs_now: int, runs_then: int) -> Estimate:
    """The interval ``est`` would have on ``runs_then`` runs if its point value held: each
    end's distance from the value shrinks as ``sqrt(runs_now / runs_then)``.

    Racing judges a constraint on this projection of the last rung's interval: a candidate
    whose false-rollback rate is 0.8% will never *show* it is under 1% on the last rung's
    runs (the upper end stays above), however good it looks on the few runs of rung 0, and
    a candidate with no false rollback yet can. For a rate near 0 (Wilson's upper end falls
    as 1/n, not 1/sqrt(n)) the projection is conservative.
    """
    if math.isnan(est.value) or runs_then <= 0 or runs_now >= runs_then:
        return est
    shrink = math.sqrt(runs_now / runs_then)
    with np.errstate(invalid="ignore"):
        low = est.value - (est.value - est.low) * shrink if math.isfinite(est.low) else est.low
        high = est.value + (est.high - est.value) * shrink if math.isfinite(est.high) else est.high
    return Estimate(est.value, low, high, est.n)


__all__ = [
    "N_BOOT",
    "POPULATIONS",
    "RATES",
    "Estimate",
    "MetricName",
    "estimate",
    "estimates",
    "meets",
    "paired",
    "parse_metric",
    "projected",
]
