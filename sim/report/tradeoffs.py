"""Per-setting summaries of many runs, and the Pareto frontier between speed and harm.

The input is a tidy frame: one row per simulated rollout with the run-record columns
(docs/architecture.md section 5) plus one column per swept parameter (``threshold``, ``stepWeight``,
a fault ``severity``...), as ``sim.runs.runner.records_frame`` or a sweep's results give it.
Nothing here draws random numbers or prints.

A release *portfolio* is simply several scenarios in the same frame: a setting's good
releases (no fault) measure what its caution costs (time to promote, false rollbacks),
its bad releases what its speed costs (blast radius, misses).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sim.stats import mean_interval, pareto_front, wilson_interval

__all__ = [
    "format_value",
    "bool_column",
    "tradeoff_table",
    "pareto_mask",
    "group_items",
    "PROMOTE_TIME",
    "BLAST_RADIUS",
    "USERS_AFFECTED",
    "FALSE_ROLLBACK_RATE",
    "DETECTION_RATE",
    "PARETO",
]

# The trade-off table's columns (see tradeoff_table): each estimate also has ``_low`` and
# ``_high`` columns, each rate ``_k`` and ``_n``. Readers of the table import these names.
#: Mean decision time of the promoted good releases (s).
PROMOTE_TIME = "promote_time_s"
#: Mean excess errors of a bad release (requests).
BLAST_RADIUS = "blast_radius"
#: Mean users affected by a bad release.
USERS_AFFECTED = "users_affected"
#: Rollbacks among good releases.
FALSE_ROLLBACK_RATE = "false_rollback_rate"
#: Rollbacks among bad releases.
DETECTION_RATE = "detection_rate"
#: Whether the setting is on the frontier of (PROMOTE_TIME, BLAST_RADIUS).
PARETO = "pareto"


def bool_column(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A boolean column as a numpy array; missing values (and a missing column) are False."""
    if col not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame[col].fillna(False).astype(bool).to_numpy()


def group_items(frame: pd.DataFrame, by: str | Sequence[str] | None) -> list[tuple[str, pd.DataFrame]]:
    """``(label, sub-frame)`` per group, in order of first appearance.

    Args:
        frame: the runs.
        by: a column, several columns (labelled ``a=1, b=2``), or None (one group, "all runs").
    """
    if by is None or (not isinstance(by, str) and not by):
        return [("all runs", frame)]
    cols = [by] if isinstance(by, str) else list(by)
    out = []
    for key, sub in frame.groupby(cols, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        if len(cols) == 1 and not pd.api.types.is_numeric_dtype(frame[cols[0]]):
            label = str(key[0])  # a name (scenario, policy) speaks for itself
        else:  # a number needs its setting's name: "threshold=5", not "5"
            label = ", ".join(f"{c}={format_value(v)}" for c, v in zip(cols, key))
        out.append((label, sub))
    return out


def format_value(v: object) -> str:
    """A parameter value as a label: ``0.5``, ``3``, ``1m``."""
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def pareto_mask(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Which points are Pareto-optimal when both coordinates are to be minimised.

    A point is optimal when no other point is at least as good on both axes and better on
    one. NaN coordinates (e.g. a setting that never promoted a good release, whose time to
    promote is undefined) are never optimal.

    Returns:
        A boolean array, True for the frontier's points.
    """
    mask = np.zeros(np.size(x), dtype=bool)
    mask[pareto_front(x, y)] = True
    return mask


def _mean_cols(prefix: str, values: np.ndarray, confidence: float) -> dict[str, float]:
    m = mean_interval(values, confidence)
    nan = float("nan")
    return {
        prefix: nan if m["value"] is None else m["value"],
        f"{prefix}_low": nan if m["low"] is None else m["low"],
        f"{prefix}_high": nan if m["high"] is None else m["high"],
    }


def _stratified_mean_cols(
    prefix: str, values: np.ndarray, strata: np.ndarray, weights: np.ndarray, confidence: float
) -> dict[str, float]:
    """Weighted mean over strata (a release portfolio's worlds, each with its share), with a
    normal interval from the per-stratum variances: sum_s (w_s/W)^2 var_s/n_s."""
    ok = ~np.isnan(values)
    values, strata, weights = values[ok], strata[ok], weights[ok]
    total, mean, var = 0.0, 0.0, 0.0
    parts = []
    for s in dict.fromkeys(strata.tolist()):
        x = values[strata == s]
        w = float(weights[strata == s][0])
        parts.append((w, float(x.mean()), float(x.var(ddof=1)) / x.size if x.size > 1 else float("nan")))
        total += w
    nan = float("nan")
    if not parts or total <= 0:
        return {prefix: nan, f"{prefix}_low": nan, f"{prefix}_high": nan}
    for w, m, v in parts:
        mean += w / total * m
        var += (w / total) ** 2 * v
    from scipy.stats import norm

    half = float(norm.ppf(0.5 + confidence / 2.0)) * np.sqrt(var)
    return {prefix: mean, f"{prefix}_low": mean - half, f"{prefix}_high": mean + half}


def _rate_cols(prefix: str, k: int, n: int, confidence: float) -> dict[str, float]:
    low, high = wilson_interval(k, n, confidence)
    return {
        prefix: k / n if n else float("nan"),
        f"{prefix}_low": low if n else float("nan"),
        f"{prefix}_high": high if n else float("nan"),
        f"{prefix}_k": k,
        f"{prefix}_n": n,
    }


def tradeoff_table(
    frame: pd.DataFrame,
    params: Sequence[str],
    *,
    confidence: float = 0.95,
    weight: str | None = None,
    stratum: str = "scenario",
) -> pd.DataFrame:
    """One row per parameter setting: speed, harm and error rates, each with its interval.

    Columns, besides the parameters: ``runs``, ``good_runs``, ``bad_runs``;
    ``promote_time_s`` (mean decision time of the promoted good releases; Student-t
    interval in ``_low``/``_high``); ``blast_radius`` (mean ``excess_errors`` over the bad
    releases: the expected harm of a bad release, misses' ``after_promotion`` damage
    included); ``users_affected`` (same, in users); ``false_rollback_rate`` and
    ``detection_rate`` with Wilson intervals (``_low``, ``_high``, ``_k``, ``_n``); and
    ``pareto``: the setting is on the frontier of (promote_time_s, blast_radius).

    Args:
        frame: one row per run with the record columns and the parameter columns.
        params: the columns that define a setting (may be empty: one row for all runs).
        confidence: level of every interval.
        weight: a column with each release's share of the portfolio (constant within a
            stratum, e.g. a sweep's ``weight``): ``promote_time_s``, ``blast_radius`` and
            ``users_affected`` are then weighted means over the strata, with normal
            intervals, instead of plain means over runs.
        stratum: the column that identifies a release of the portfolio (e.g. ``world``).

    Raises:
        KeyError: when a parameter column is missing.
    """
    missing = [p for p in params if p not in frame]
    if missing:
        raise KeyError(f"no column {missing[0]!r} in the results (columns: {', '.join(map(str, frame.columns))})")
    rows = []
    groups = frame.groupby(list(params), sort=True, dropna=False) if params else [((), frame)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        bad = bool_column(sub, "release_bad")
        good = ~bad
        outcome = sub["outcome"].astype(str).to_numpy()
        promoted_good = good & (outcome == "promoted")
        row: dict[str, object] = dict(zip(params, key))
        row.update(runs=len(sub), good_runs=int(good.sum()), bad_runs=int(bad.sum()))
        decision = pd.to_numeric(sub["decision_time_s"], errors="coerce").to_numpy(dtype=float)
        excess = pd.to_numeric(sub["excess_errors"], errors="coerce").to_numpy(dtype=float)
        users = pd.to_numeric(sub["users_affected"], errors="coerce").to_numpy(dtype=float)
        estimates = ((PROMOTE_TIME, decision, promoted_good), (BLAST_RADIUS, excess, bad), (USERS_AFFECTED, users, bad))
        if weight is None:
            for name, values, mask in estimates:
                row.update(_mean_cols(name, values[mask], confidence))
        else:
            strata = sub[stratum].astype(str).to_numpy()
            w = pd.to_numeric(sub[weight], errors="coerce").fillna(0.0).to_numpy(dtype=float)
            for name, values, mask in estimates:
                row.update(_stratified_mean_cols(name, values[mask], strata[mask], w[mask], confidence))
        row.update(
            _rate_cols(FALSE_ROLLBACK_RATE, int((good & (outcome == "rolled_back")).sum()), int(good.sum()), confidence)
        )
        row.update(
            _rate_cols(DETECTION_RATE, int((bad & (outcome == "rolled_back")).sum()), int(bad.sum()), confidence)
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    table[PARETO] = pareto_mask(table[PROMOTE_TIME], table[BLAST_RADIUS])
    return table
