"""How much each objective of a search depends on each tuned parameter.

Two views, read together, over the candidates of a search (``candidates.parquet``, one row
per candidate at the highest rung it reached; the base policy left out, since the sampler
did not draw it):

* ``importance``: optuna's PED-ANOVA (``optuna.importance.PedAnovaImportanceEvaluator``,
  Watanabe et al., IJCAI 2023): how differently a parameter is distributed among the best
  10% of candidates on that objective than among all of them, as a share of the total over
  the parameters. It needs no model fit (fANOVA needs scikit-learn, which pdsim does not
  depend on) and works for unordered choices. It is computed on a study rebuilt in memory
  with ``optuna.trial.create_trial``, so it reads nothing but the candidates.
* ``rho``: Spearman's rank correlation between the parameter and the objective, with a
  seeded percentile-bootstrap interval over candidates: the direction of the effect
  (positive: larger values give a larger, i.e. worse, objective) and whether it is more
  than noise. Rank correlation needs an order: choices that are all numbers or durations
  (``15s``, ``1m``) are ranked by value; other choices (a judge mapping, ``null``, free
  strings) are unordered, so ``rho`` is left NaN and ``note`` says why.

Both are descriptive: a parameter that barely varied in the search, or candidates compared
at different rungs, can hide an effect. Neither is a causal estimate.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.units import parse_duration

if TYPE_CHECKING:
    import pandas as pd
    from optuna.distributions import BaseDistribution

__all__ = ["sensitivity", "choice_text", "choice_order", "SENSITIVITY_COLUMNS"]

#: Columns of :func:`sensitivity`'s frame, in order.
SENSITIVITY_COLUMNS = ("objective", "param", "kind", "n", "importance", "rho", "rho_low", "rho_high", "note")

#: Bootstrap resamples of the rank correlation.
RESAMPLES = 2000

UNORDERED_NOTE = "unordered choices: rank correlation undefined"


def choice_text(choice: Any) -> str:
    """A choice as ``candidates.parquet`` stores it: a string as is, else its JSON text with
    sorted keys (``null`` for None)."""
    return choice if isinstance(choice, str) else json.dumps(choice, sort_keys=True)


def choice_order(choices: Sequence[Any]) -> list[float] | None:
    """The value of each choice when every choice is a number or a duration, else None.

    ``[15s, 30s, 1m]`` -> ``[15.0, 30.0, 60.0]``; ``[null, {kind: sequential}]`` -> None (no
    order, so no rank correlation). Booleans are not numbers here.
    """
    out = []
    for c in choices:
        if c is None or isinstance(c, bool) or not isinstance(c, (int, float, str)):
            return None
        try:
            out.append(parse_duration(c))
        except ValueError:
            return None
    return out


def _distribution(spec: Mapping[str, Any], observed: Sequence[str]) -> BaseDistribution:
    """The optuna distribution of one space entry as the TUNE file wrote it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if "choices" in spec:
        texts = [choice_text(c) for c in spec["choices"]]
        # A value stored that the space does not list (an older space, a resumed search)
        # still counts as a choice of its own rather than failing the whole table.
        texts += sorted(set(observed) - set(texts))
        return CategoricalDistribution(texts)
    low, high = spec["low"], spec["high"]
    log = bool(spec.get("log", False))
    step = spec.get("step")
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return IntDistribution(low, high, log=log, step=int(step) if step else 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if log or not step else float(step))


def _param_value(dist: BaseDistribution, value: Any) -> Any:
    """``value`` in the form ``dist`` contains, or None (missing or outside the space)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert isinstance(dist, (CategoricalDistribution, FloatDistribution, IntDistribution))
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None  # None, NaN, or pandas' NA of a nullable integer column
    if isinstance(dist, CategoricalDistribution):
        return str(value) if str(value) in dist.choices else None
    if isinstance(dist, IntDistribution):
        if float(value) != int(value):
            return None
        value = int(value)
    else:
        value = float(value)
    # Outside the space (e.g. a bound edited between a search and its resume): not a trial
    # optuna would accept, and not a draw of this space.
    return value if dist.low <= value <= dist.high else None


def _importances(
    params: dict[str, BaseDistribution], rows: list[dict[str, Any]], values: np.ndarray
) -> dict[str, float]:
    """PED-ANOVA shares of one objective (minimised), on a study rebuilt in memory."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # create_study logs one INFO line per study
    study = optuna.create_study(direction="minimize")
    for row, value in zip(rows, values, strict=True):
        present = {p: v for p, v in row.items() if v is not None}
        study.add_trial(
            optuna.trial.create_trial(value=float(value), params=present, distributions={p: params[p] for p in present})
        )
    with warnings.catch_warnings():
        # optuna warns for small samples and for normalize=False (experimental); the table
        # states n and normalises itself (an all-zero row stays zero, not equal shares).
        warnings.simplefilter("ignore")
        raw = get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), params=list(params), normalize=False
        )
    total = sum(raw.values())
    return {p: (raw.get(p, 0.0) / total if total > 0 else 0.0) for p in params}


def _spearman(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, confidence: float) -> tuple[float, float, float]:
    """Spearman's rho of (x, y) and its percentile-bootstrap interval over pairs."""
    from scipy.stats import rankdata

    def rho(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        rx, ry = rankdata(xs, axis=-1), rankdata(ys, axis=-1)
        rx = rx - rx.mean(axis=-1, keepdims=True)
        ry = ry - ry.mean(axis=-1, keepdims=True)
        den = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (rx * ry).sum(axis=-1) / den, np.nan)

    n = x.size
    point = float(rho(x, y))
    if n < 3 or math.isnan(point):
        return point, math.nan, math.nan
    idx = rng.integers(0, n, size=(RESAMPLES, n))
    boot = rho(x[idx], y[idx])
    boot = boot[~np.isnan(boot)]  # a resample with a constant column has no rank correlation
    if boot.size < RESAMPLES // 2:
        return point, math.nan, math.nan
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return point, float(low), float(high)


def sensitivity(candidates: pd.DataFrame, meta: Mapping[str, Any], *, seed: int | None = None) -> pd.DataFrame:
    """One row per (objective, parameter): PED-ANOVA importance and Spearman's rho.

    Args:
        candidates: ``candidates.parquet`` of a search (columns as docs say: one per space
            PATH, one per objective, ``base``). The base policy's row is left out.
        meta: ``tune.json`` of the search: ``space``, ``objectives``, ``confidence`` and
            ``seed`` are read.
        seed: seed of the bootstrap resamples (default: the search's seed), so the same
            candidates give the same intervals.

    Returns:
        A frame with the columns of ``SENSITIVITY_COLUMNS``: ``objective``, ``param``,
        ``kind`` (``int``, ``float``, ``ordered choices`` or ``choices``), ``n`` (candidates
        with both a value of the parameter and of the objective), ``importance`` (share of
        the objective's PED-ANOVA total, NaN under two candidates), ``rho``, ``rho_low``,
        ``rho_high`` (NaN for unordered choices and for too few candidates) and ``note``
        (why a value is missing; empty otherwise).
    """
    import pandas as pd
    from optuna.distributions import CategoricalDistribution, IntDistribution

    space: Mapping[str, Mapping[str, Any]] = meta.get("space") or {}
    objectives: list[str] = list(meta.get("objectives") or [])
    confidence = float(meta.get("confidence", 0.95))
    rng = np.random.default_rng(int(meta.get("seed", 0) if seed is None else seed))
    frame = candidates
    if "base" in frame.columns:
        frame = frame[~frame["base"].astype(bool)]
    params = {p: spec for p, spec in space.items() if p in frame.columns}
    dists = {
        p: _distribution(spec, [str(v) for v in frame[p].dropna()] if "choices" in spec else [])
        for p, spec in params.items()
    }
    table = [{p: _param_value(dists[p], rec[p]) for p in params} for rec in frame[list(params)].to_dict("records")]
    out: list[dict[str, Any]] = []
    for objective in objectives:
        y = (
            pd.to_numeric(frame[objective], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if objective in frame.columns
            else np.full(len(frame), np.nan)
        )
        keep = np.isfinite(y)
        rows = [r for r, k in zip(table, keep, strict=True) if k]
        shares = _importances(dists, rows, y[keep]) if len(rows) >= 2 else {}
        for p, spec in params.items():
            dist = dists[p]
            xs = [r[p] for r in rows]
            has = np.array([x is not None for x in xs], dtype=bool)
            n = int(has.sum())
            note = ""
            if isinstance(dist, CategoricalDistribution):
                order = choice_order(spec["choices"])
                texts = [choice_text(c) for c in spec["choices"]]
                kind = "choices" if order is None else "ordered choices"
                rank = None if order is None else dict(zip(texts, order, strict=True))
                if rank is not None and all(x in rank for x, h in zip(xs, has, strict=True) if h):
                    x = np.array([rank[x] for x, h in zip(xs, has, strict=True) if h], dtype=float)
                else:
                    x = None
                    note = UNORDERED_NOTE
            else:
                kind = "int" if isinstance(dist, IntDistribution) else "float"
                x = np.array([v for v, h in zip(xs, has, strict=True) if h], dtype=float)
            r = lo = hi = math.nan
            if x is not None:
                r, lo, hi = _spearman(x, y[keep][has], rng, confidence)
                if n < 3:
                    note = "fewer than 3 candidates"
                elif math.isnan(r):
                    note = "no variation: rank correlation undefined"
            importance = shares.get(p, math.nan)
            if not shares:
                note = note or "fewer than 2 candidates with a value"
            out.append(
                {
                    "objective": objective,
                    "param": p,
                    "kind": kind,
                    "n": n,
                    "importance": importance,
                    "rho": r,
                    "rho_low": lo,
                    "rho_high": hi,
                    "note": note,
                }
            )
    return pd.DataFrame(out, columns=list(SENSITIVITY_COLUMNS))
