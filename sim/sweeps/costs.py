"""Statistics of sweep results and paired comparisons, from tidy frames of run records.

* :func:`cell_summary`: per cell, rates with Wilson intervals and quantiles of decision
  time, detection time and blast radius with bootstrap intervals;
* :func:`policy_costs`: per policy, one expected cost per release over the sweep's
  worlds (weighted by the portfolio when there is one, else equally): expected excess
  errors, false rollback rate, missed rate, time to promote good releases, blast radius
  of bad ones — stratified estimates, each with an interval;
* :func:`frontier`: the Pareto frontier of policies on (time to promote good releases,
  blast radius of bad ones) among those under a false-rollback ceiling;
* :func:`paired_comparison`: policy A against policy B run by run on common random
  numbers (paired bootstrap for differences, McNemar for yes/no outcomes).

Every bootstrap draws from a generator seeded by the caller's seed and the cell, so the
same results give the same intervals. Nothing here prints.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd

from sim.stats import (
    bootstrap_quantile_interval,
    mcnemar,
    mean_interval,
    paired_difference,
    rate,
    stratified_mean,
    stratified_rate,
)

#: Columns the summaries read (load_results(DIR, columns=SUMMARY_COLUMNS) keeps memory small).
SUMMARY_COLUMNS = (
    "scenario",
    "policy",
    "run",
    "outcome",
    "release_bad",
    "decision_time_s",
    "detection_time_s",
    "excess_errors",
    "users_affected",
    "false_rollback",
    "missed",
    "canary_requests",
)
_QUANTILE_OF = ("decision_time_s", "detection_time_s", "excess_errors")

# The per-policy cost table's estimates (see policy_costs; each also has ``_low``/``_high``).
#: Expected excess errors per release, all worlds.
EXCESS_ERRORS = "excess_errors"
#: Rollbacks among good releases.
FALSE_ROLLBACK_RATE = "false_rollback_rate"
#: Promotions among bad releases.
MISSED_RATE = "missed_rate"
#: Decision time of promoted good releases (s).
TIME_TO_PROMOTE = "time_to_promote_s"
#: Expected excess errors per bad release.
BLAST_RADIUS_BAD = "blast_radius_bad"


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _num(v: Any) -> Any:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def cell_summary(
    frame: pd.DataFrame,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_boot: int = 2000,
    quantiles: tuple[float, ...] = (0.5, 0.9),
) -> pd.DataFrame:
    """One row per cell: rates with Wilson intervals, quantiles with bootstrap intervals.

    Rate columns ``NAME``, ``NAME_low``, ``NAME_high`` for promoted, rolled_back,
    false_rollback (among good releases), detection (rolled back among bad ones) and
    missed; quantile columns ``COLUMN_pNN`` with ``_low``/``_high`` for decision time,
    detection time and excess errors; ``excess_errors_mean``.
    """
    rows = []
    for cell, g in frame.groupby("cell", sort=True, observed=True):
        cell_id = int(cast(int, cell))  # the ``cell`` column is int32
        out: dict[str, Any] = {
            "cell": cell_id,
            "scenario": str(g["scenario"].iloc[0]),
            "policy": str(g["policy"].iloc[0]),
            "runs": len(g),
        }
        outcome = g["outcome"].astype(str).to_numpy()
        bad = g["release_bad"].to_numpy(dtype=bool)
        rb = outcome == "rolled_back"
        rates: dict[str, tuple[int | np.integer, int | np.integer]] = {
            "promoted": (np.count_nonzero(outcome == "promoted"), len(g)),
            "rolled_back": (np.count_nonzero(rb), len(g)),
            "false_rollback": (np.count_nonzero(rb & ~bad), np.count_nonzero(~bad)),
            "detection": (np.count_nonzero(rb & bad), np.count_nonzero(bad)),
            "missed": (np.count_nonzero((outcome == "promoted") & bad), np.count_nonzero(bad)),
        }
        for name, (k, n) in rates.items():
            r = rate(int(k), int(n), confidence)
            out[name], out[f"{name}_low"], out[f"{name}_high"] = r["rate"], r["low"], r["high"]
        rng = _rng(seed, cell_id)
        for col in _QUANTILE_OF:
            x = g[col].to_numpy(dtype=float)
            for q in quantiles:
                b = bootstrap_quantile_interval(x, q, rng, confidence, n_boot)
                name = f"{col}_p{round(100 * q)}"
                out[name], out[f"{name}_low"], out[f"{name}_high"] = b["value"], b["low"], b["high"]
        out["excess_errors_mean"] = float(g["excess_errors"].mean())
        rows.append(out)
    return pd.DataFrame(rows)


def _world_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (policy, world): counts, means and variances the stratified estimates combine."""
    f = pd.DataFrame(
        {
            "policy": frame["policy"].astype(str),
            "world": frame["world"] if "world" in frame else 0,
            "weight": frame["weight"].fillna(1.0) if "weight" in frame else 1.0,
            "bad": frame["release_bad"].astype(bool),
            "rb": frame["outcome"].astype(str) == "rolled_back",
            "promoted": frame["outcome"].astype(str) == "promoted",
            "excess": frame["excess_errors"].astype(float),
        }
    )
    f["promote_time"] = frame["decision_time_s"].astype(float).where(f["promoted"] & ~f["bad"])
    g = f.groupby(["policy", "world"], sort=False)  # the sweep's order (cells are in it)
    return pd.DataFrame(
        {
            "weight": g["weight"].first(),
            "bad": g["bad"].first(),
            "n": g.size(),
            "rb": g["rb"].sum(),
            "promoted": g["promoted"].sum(),
            "excess_mean": g["excess"].mean(),
            "excess_var": g["excess"].var(ddof=1),
            "t_n": g["promote_time"].count(),
            "t_mean": g["promote_time"].mean(),
            "t_var": g["promote_time"].var(ddof=1),
        }
    ).reset_index()


def policy_costs(frame: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per policy: what one release costs, over the sweep's worlds.

    Worlds are weighted by their portfolio weight (``weight``: a kind's probability over
    its strata), or equally when the sweep has no portfolio; within a world every run
    counts the same. Columns (each estimate with ``_low``/``_high``):

    * ``excess_errors``: expected excess errors per release (all worlds);
    * ``false_rollback_rate``: rollbacks among good releases (weighted Wilson);
    * ``missed_rate``: promotions among bad releases;
    * ``time_to_promote_s``: decision time of promoted good releases;
    * ``blast_radius_bad``: expected excess errors per bad release.
    """
    swept = [c for c in frame.columns if str(c).startswith("policy.")]
    params = (
        {}
        if not swept
        else {
            str(k): {c: v for c, v in zip(swept, row)}
            for k, *row in frame[["policy", *swept]].drop_duplicates("policy").itertuples(index=False)
        }
    )
    return costs_from_worlds(_world_table(frame), params, confidence=confidence)


def costs_from_worlds(
    table: pd.DataFrame, params: dict[str, dict[str, Any]] | None = None, *, confidence: float = 0.95
) -> pd.DataFrame:
    """:func:`policy_costs` from per-(policy, world) aggregates (streamed summaries build
    those cell by cell)."""
    params = params or {}
    rows = []
    for policy, w in table.groupby("policy", sort=False):
        good, bad = w[~w["bad"]], w[w["bad"]]
        out: dict[str, Any] = {
            "policy": policy,
            **params.get(str(policy), {}),
            "runs": int(w["n"].sum()),
            "worlds": len(w),
        }
        est = {
            EXCESS_ERRORS: stratified_mean(w["excess_mean"], w["excess_var"], w["n"], w["weight"], confidence),
            FALSE_ROLLBACK_RATE: stratified_rate(good["rb"], good["n"], good["weight"], confidence),
            MISSED_RATE: stratified_rate(bad["promoted"], bad["n"], bad["weight"], confidence),
            TIME_TO_PROMOTE: stratified_mean(good["t_mean"], good["t_var"], good["t_n"], good["weight"], confidence),
            BLAST_RADIUS_BAD: stratified_mean(
                bad["excess_mean"], bad["excess_var"], bad["n"], bad["weight"], confidence
            ),
        }
        for name, e in est.items():
            value = e.get("value", e.get("rate"))
            out[name], out[f"{name}_low"], out[f"{name}_high"] = _num(value), _num(e["low"]), _num(e["high"])
        rows.append(out)
    return pd.DataFrame(rows)


def frontier(costs: pd.DataFrame, *, ceiling: float = 0.05, bound: str = "high") -> pd.DataFrame:
    """The Pareto frontier of policies on (time to promote good releases, blast radius of
    bad ones), both minimised, among policies whose false rollback rate is at most
    ``ceiling``: its upper interval end (``bound="high"``, the default: admitted only when
    the data show the rate is under the ceiling) or its point estimate (``"rate"``).

    Returns the frontier's rows of ``costs``, by increasing time to promote.
    """
    col = f"{FALSE_ROLLBACK_RATE}_high" if bound == "high" else FALSE_ROLLBACK_RATE
    fr = costs[col].astype(float)
    admitted = costs[fr.isna() | (fr <= ceiling)].reset_index(drop=True)
    from sim.stats import pareto_front

    idx = pareto_front(admitted[TIME_TO_PROMOTE].astype(float), admitted[BLAST_RADIUS_BAD].astype(float))
    return admitted.iloc[idx].reset_index(drop=True)


_PAIRED_RATES = ("promoted", "rolled_back", "false_rollback", "missed")
_PAIRED_MEANS = ("decision_time_s", "detection_time_s", "excess_errors", "users_affected", "canary_requests")


def paired_comparison(
    a: pd.DataFrame, b: pd.DataFrame, *, confidence: float = 0.95, seed: int = 0, n_boot: int = 2000
) -> dict[str, Any]:
    """Policy A against policy B, run by run: run k of both met the same traffic and faults.

    Args:
        a, b: run records of the two policies on one scenario and root seed (same runs).
        confidence: level of every interval.
        seed: seeds the paired bootstrap.
        n_boot: bootstrap replicates.

    Returns:
        ``{"runs", "rates": {NAME: {"a", "b" (Wilson rates), "diff", "low", "high", "a_only",
        "b_only", "p_value"}}, "means": {COLUMN: {"a", "b", "diff", "low", "high", "n"}}}``;
        a mean is over the runs where both policies have a value (e.g. both detected).

    Raises:
        ValueError: when the two frames are not the same runs.
    """
    a = a.sort_values("run", ignore_index=True)
    b = b.sort_values("run", ignore_index=True)
    if (
        len(a) != len(b)
        or not np.array_equal(a["run"].to_numpy(), b["run"].to_numpy())
        or not np.array_equal(a["seed"].to_numpy(), b["seed"].to_numpy())
    ):
        raise ValueError("paired comparison needs the same runs (run indexes and seeds) for both policies")
    n = len(a)
    out: dict[str, Any] = {"runs": n, "confidence": confidence, "rates": {}, "means": {}}

    def flag(df: pd.DataFrame, name: str) -> np.ndarray:
        if name in ("promoted", "rolled_back"):
            return (df["outcome"].astype(str) == name).to_numpy()
        return df[name].to_numpy(dtype=bool)

    for i, name in enumerate(_PAIRED_RATES):
        x, y = flag(a, name), flag(b, name)
        d = paired_difference(x.astype(float), y.astype(float), _rng(seed, 0, i), confidence, n_boot)
        out["rates"][name] = {
            "a": rate(int(x.sum()), n, confidence),
            "b": rate(int(y.sum()), n, confidence),
            "diff": d["diff"],
            "low": d["low"],
            "high": d["high"],
            **mcnemar(x, y),
        }
    for i, col in enumerate(_PAIRED_MEANS):
        x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
        d = paired_difference(x, y, _rng(seed, 1, i), confidence, n_boot)
        both = ~(np.isnan(x) | np.isnan(y))  # each side's mean over the pairs compared
        d["a_ci"] = [mean_interval(x[both], confidence)[k] for k in ("low", "high")]
        d["b_ci"] = [mean_interval(y[both], confidence)[k] for k in ("low", "high")]
        out["means"][col] = d
    return out


def summarize_sweep(out: str, *, confidence: float = 0.95, ceiling: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """The summary of a results folder (``DIR/summary.json``): per-policy costs, the
    frontier and per-cell rates/quantiles, JSON-safe. Streams the folder cell by cell and
    reads only the columns it needs, so memory is bounded by the largest cell."""
    from sim.runs.store import iter_cells

    worlds: list[pd.DataFrame] = []
    cell_rows: list[pd.DataFrame] = []
    params: dict[str, dict[str, Any]] = {}
    runs = 0
    for frame in iter_cells(out, columns=SUMMARY_COLUMNS):  # one cell in memory at a time
        runs += len(frame)
        worlds.append(_world_table(frame))
        cell_rows.append(cell_summary(frame, confidence=confidence, seed=seed))
        swept = [c for c in frame.columns if str(c).startswith("policy.")]
        params.setdefault(str(frame["policy"].iloc[0]), {c: frame[c].iloc[0] for c in swept})
    costs = (
        costs_from_worlds(pd.concat(worlds, ignore_index=True), params, confidence=confidence)
        if worlds
        else pd.DataFrame()
    )
    front = frontier(costs, ceiling=ceiling) if len(costs) else costs
    cells = pd.concat(cell_rows, ignore_index=True) if cell_rows else pd.DataFrame()

    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {
                str(k): (
                    _num(v) if isinstance(v, (float, np.floating)) else v.item() if isinstance(v, np.generic) else v
                )
                for k, v in row.items()
            }
            for row in df.to_dict(orient="records")
        ]

    return {
        "runs": runs,
        "confidence": confidence,
        "false_rollback_ceiling": ceiling,
        "policies": records(costs),
        "frontier": [str(p) for p in front.get("policy", [])],
        "cells": records(cells),
    }


def _ci(v: Any, lo: Any, hi: Any, fmt: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if lo is not None and hi is not None else f"{v:{fmt}}"


def format_costs(summary: dict[str, Any]) -> str:
    """The per-policy cost table of :func:`summarize_sweep` as fixed-width text."""
    conf = f"{100 * summary['confidence']:g}% CI"
    front = set(summary["frontier"])
    cols = [
        ("excess errors/release", EXCESS_ERRORS, ",.1f", 1),
        ("false rollback", FALSE_ROLLBACK_RATE, ".2%", 1),
        ("missed", MISSED_RATE, ".1%", 1),
        ("time to promote s", TIME_TO_PROMOTE, ",.0f", 1),
        ("blast radius (bad)", BLAST_RADIUS_BAD, ",.0f", 1),
    ]
    cells = []
    for p in summary["policies"]:
        row = [("* " if p["policy"] in front else "  ") + str(p["policy"])]
        for _, key, fmt, _x in cols:
            row.append(_ci(p.get(key), p.get(f"{key}_low"), p.get(f"{key}_high"), fmt))
        cells.append(row)
    head = ["  policy"] + [c[0] for c in cols]
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(len(head))]
    lines = [f"expected cost per release, value [{conf}]:"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *cells]]
    lines.append(
        f"* Pareto frontier on (time to promote, blast radius of bad releases) among policies whose "
        f"false rollback rate is at most {summary['false_rollback_ceiling']:.1%} (upper {conf} end)"
    )
    return "\n".join(lines)


def format_comparison(cmp: dict[str, Any], name_a: str, name_b: str) -> str:
    """:func:`paired_comparison` as fixed-width text: A, B and A - B with intervals."""
    conf = f"{100 * cmp['confidence']:g}% CI"
    rows = [["", f"A [{conf}]", f"B [{conf}]", f"A - B [{conf}]", "McNemar p"]]
    for name, r in cmp["rates"].items():
        a, b = r["a"], r["b"]
        rows.append(
            [
                name,
                _ci(a["rate"], a["low"], a["high"], ".1%"),
                _ci(b["rate"], b["low"], b["high"], ".1%"),
                _ci(r["diff"], r["low"], r["high"], "+.1%"),
                f"{r['p_value']:.3g}",
            ]
        )
    for col, m in cmp["means"].items():
        a_low, a_high = m.get("a_ci", (None, None))
        b_low, b_high = m.get("b_ci", (None, None))
        rows.append(
            [
                f"mean {col}" + ("" if m["n"] == cmp["runs"] else f" (n={m['n']})"),
                _ci(m["a"], a_low, a_high, ",.1f"),
                _ci(m["b"], b_low, b_high, ",.1f"),
                _ci(m["diff"], m["low"], m["high"], "+,.1f"),
                "",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"A: {name_a}",
        f"B: {name_b}",
        f"paired over {cmp['runs']} runs: run k of A and of B met the same traffic and faults",
        "",
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


__all__ = [
    "SUMMARY_COLUMNS",
    "EXCESS_ERRORS",
    "FALSE_ROLLBACK_RATE",
    "MISSED_RATE",
    "TIME_TO_PROMOTE",
    "BLAST_RADIUS_BAD",
    "cell_summary",
    "costs_from_worlds",
    "frontier",
    "paired_comparison",
    "policy_costs",
    "format_comparison",
    "format_costs",
    "summarize_sweep",
]
