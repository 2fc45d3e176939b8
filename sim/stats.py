"""Interval estimates and run-record summaries for pdsim.

Every rate pdsim reports carries a Wilson score interval and every quantile a
distribution-free (order-statistic) interval, so that a reader can tell a real
difference between policies from Monte Carlo noise. Nothing here prints and
nothing draws random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

# scipy.special's functions, not scipy.stats's distributions: the same values (ndtri is
# norm.ppf, stdtrit t.ppf; the binomial's cdf/sf give the same order-statistic ranks,
# tests/test_stats.py), without the second of import time scipy.stats costs every
# `pdsim run` (docs/architecture.md section 2, lazy imports).
from scipy import special

from sim.outcomes import BUSINESS_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FEW_PAIRED_VALUES",
    "wilson_interval",
    "rate",
    "quantile_interval",
    "mean_interval",
    "summarize_records",
    "format_summary_table",
]

#: Record fields summarised with quantiles and a mean (NaN/None values are skipped).
_QUANTITIES = ("detection_time_s", "decision_time_s", "excess_errors", "users_affected")
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}
#: The record's business columns ``summarize_records`` reads (null without ``business:``).
BUSINESS_SUMMARY_COLUMNS = tuple(BUSINESS_COLUMNS)
#: The record columns ``summarize_records`` reads (a caller holding many runs passes only these).
SUMMARY_COLUMNS = (
    "outcome",
    "release_bad",
    "false_rollback",
    "missed",
    *_QUANTITIES,
    "canary_requests",
    *BUSINESS_SUMMARY_COLUMNS,
)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        k: Number of successes, ``0 <= k <= n``.
        n: Number of trials, ``n >= 0``.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        ``(low, high)``. ``n == 0`` gives ``(0.0, 1.0)``; ``k == 0`` gives a low
        of exactly 0.0 and ``k == n`` a high of exactly 1.0.

    Raises:
        ValueError: On negative counts, ``k > n`` or a confidence outside (0, 1).
    """
    confidence = _check_confidence(confidence)
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = float(special.ndtri(0.5 + confidence / 2.0))
    p = k / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # The closed form reaches the edges only up to rounding; pin them exactly so
    # that "0 of n" never reports a tiny negative or positive lower bound.
    low = 0.0 if k == 0 else max(0.0, center - half)
    high = 1.0 if k == n else min(1.0, center + half)
    return low, high


def rate(k: int, n: int, confidence: float = 0.95) -> dict:
    """A proportion with its Wilson interval.

    Args:
        k: Number of successes.
        n: Number of trials.
        confidence: Two-sided confidence level.

    Returns:
        ``{"rate", "low", "high", "k", "n"}``; ``rate`` is None when ``n == 0``
        (low/high are then the uninformative ``0.0``/``1.0``).
    """
    low, high = wilson_interval(k, n, confidence)
    k, n = int(k), int(n)
    return {"rate": (k / n) if n else None, "low": low, "high": high, "k": k, "n": n}


def _order_stat_ranks(n: int, q: float, alpha: float) -> tuple[int, int]:
    """1-based ranks ``(l, u)`` with ``P(X_(l) <= xi_q <= X_(u)) >= 1 - alpha``.

    The count B of observations below ``xi_q`` is Binomial(n, q), and
    ``X_(l) <= xi_q <= X_(u)`` holds exactly when ``l <= B <= u - 1`` (continuous
    case; ties only raise coverage). Rank 0 means "no lower bound", rank
    ``n + 1`` "no upper bound".
    """
    j = np.arange(n + 1)
    cdf = special.bdtr(j, n, q)
    sf = special.bdtrc(j, n, q)  # P(B > j), computed directly to keep tail precision

    def lower(a: float) -> int:
        # Largest l with P(B <= l - 1) <= a; cdf is monotone so count the hits.
        return int(np.count_nonzero(cdf <= a))

    def upper(a: float) -> int:
        # Smallest u with P(B >= u) = sf(u - 1) <= a.
        hits = np.flatnonzero(sf <= a)
        return int(hits[0]) + 1 if hits.size else n + 1

    lo, up = lower(alpha / 2.0), upper(alpha / 2.0)
    # When one side cannot be bounded it contributes no miss probability, so the
    # whole alpha may go to the other side; still guarantees the coverage.
    if lo == 0 and up <= n:
        up = upper(alpha)
    elif up > n and lo >= 1:
        lo = lower(alpha)
    return lo, up


def _quantile_input(values: np.ndarray, q: float, confidence: float) -> tuple[float, np.ndarray]:
    """alpha and the sorted non-NaN observations, after checking ``q`` and ``confidence``."""
    alpha = 1.0 - _check_confidence(confidence)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    x = np.asarray(values, dtype=float).ravel()
    return alpha, np.sort(x[~np.isnan(x)])


def quantile_interval(values: np.ndarray, q: float, confidence: float = 0.95) -> dict:
    """Sample quantile with a distribution-free order-statistic interval.

    Args:
        values: Observations; NaNs are ignored.
        q: Quantile level in [0, 1].
        confidence: Two-sided confidence level.

    Returns:
        ``{"value", "low", "high", "n"}``. ``value`` uses numpy's 'linear'
        method. A side that n is too small to bound is ``-inf``/``+inf``. With
        no observations value/low/high are None.

    Raises:
        ValueError: If ``q`` is outside [0, 1] or confidence outside (0, 1).
    """
    alpha, x = _quantile_input(values, q, confidence)
    n = int(x.size)
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    lo, up = _order_stat_ranks(n, q, alpha)
    return {
        "value": float(np.quantile(x, q, method="linear")),
        "low": float(x[lo - 1]) if lo >= 1 else -math.inf,
        "high": float(x[up - 1]) if up <= n else math.inf,
        "n": n,
    }


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> dict:
    """Sample mean with a Student-t interval.

    Args:
        values: Observations; NaNs are ignored.
        confidence: Two-sided confidence level.

    Returns:
        ``{"value", "low", "high", "n"}``; low/high are None when ``n < 2`` and
        value is None when ``n == 0``.
    """
    confidence = _check_confidence(confidence)
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"value": mean, "low": None, "high": None, "n": n}
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2.0)) * float(x.std(ddof=1)) / math.sqrt(n)
    return {"value": mean, "low": mean - half, "high": mean + half, "n": n}


def _json_num(v: Any) -> Any:
    """Plain Python number, or None for missing/non-finite values (JSON has no NaN/inf)."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else None


def _clean(d: dict) -> dict:
    return {key: _json_num(val) for key, val in d.items()}


def _bools(columns: Mapping[str, Any], n: int, col: str) -> np.ndarray:
    # Missing values (None/NaN) count as False rather than raising: a record that
    # does not say a release was bad is not evidence that it was.
    if col not in columns:
        return np.zeros(n, dtype=bool)
    values = columns[col]
    if isinstance(values, np.ndarray) and values.dtype == bool:
        return values
    return np.array([bool(v) if v is not None and v == v else False for v in values], dtype=bool)


def _floats(columns: Mapping[str, Any], n: int, col: str) -> np.ndarray:
    if col not in columns:
        return np.full(n, np.nan)
    values = columns[col]
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(float)
    # A DataFrame's column, or numpy objects (None for a missing number): read as pandas
    # reads them, a text that is a number counting as that number.
    import pandas as pd

    if isinstance(values, np.ndarray):
        values = pd.Series(values, dtype=object)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _record_columns(
    records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping],
) -> tuple[int, Mapping[str, Any]]:
    """The number of runs and the record columns: ``records`` as columns already (numpy
    arrays, e.g. ``RecordsTable.columns``), a DataFrame, or one mapping per run."""
    if isinstance(records, Mapping):
        columns = {name: np.asarray(values) for name, values in records.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"record columns of different lengths: {sorted(lengths)}")
        return (lengths.pop() if lengths else 0), columns
    import pandas as pd  # rows, or a DataFrame: the caller has pandas already

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    return len(df), {name: df[name] for name in df.columns}


def _quantity(x: np.ndarray, confidence: float, quantiles: bool = True) -> dict:
    out = {}
    if quantiles:
        for name, q in _QUANTILES.items():
            out[name] = _clean(quantile_interval(x, q, confidence))
    out["mean"] = _clean(mean_interval(x, confidence))
    return out


def summarize_records(
    records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping], confidence: float = 0.95
) -> dict:
    """Build the ``summary`` object of pdsim's ``--json`` output.

    Args:
        records: Run records following the run-record contract (outcome, release_bad,
            times, counts, ...): a DataFrame, a sequence of mappings (one per run), or a
            mapping of column name to values (one per run; numpy columns need no pandas).
        confidence: Confidence level of every interval.

    Returns:
        A JSON-serialisable dict (plain ints/floats/None, never NaN or inf) with
        ``runs``, ``confidence``, the outcome rates, ``false_rollback_rate``,
        ``detection_rate``, ``missed_rate`` and interval summaries of
        detection/decision time, excess errors, users affected and canary
        requests. Quantity intervals that cannot be bounded are None. When the runs
        carry business outcomes (issue 19: a ``winner``), the keys of
        :func:`summarize_business` too (``false_winner_rate``, ``power``,
        ``ci_coverage``, ``regret_conversions``...), at the same level as the others.
    """
    n, columns = _record_columns(records)
    outcome = np.asarray(columns["outcome"]).astype(str) if "outcome" in columns else np.array([], dtype=str)
    bad = _bools(columns, n, "release_bad")
    rolled_back = outcome == "rolled_back"
    summary: dict[str, Any] = {"runs": n, "confidence": float(confidence)}
    for name in ("promoted", "rolled_back", "unfinished"):
        summary[name] = rate(int(np.count_nonzero(outcome == name)), n, confidence)
    # Counting inside the conditioning set keeps k <= n even if a record is
    # inconsistent (e.g. false_rollback set on a bad release).
    good = ~bad
    summary["false_rollback_rate"] = rate(
        int(np.count_nonzero(_bools(columns, n, "false_rollback") & good)), int(good.sum()), confidence
    )
    summary["detection_rate"] = rate(int(np.count_nonzero(rolled_back & bad)), int(bad.sum()), confidence)
    summary["missed_rate"] = rate(int(np.count_nonzero(_bools(columns, n, "missed") & bad)), int(bad.sum()), confidence)
    for col in _QUANTITIES:
        summary[col] = _quantity(_floats(columns, n, col), confidence)
    summary["canary_requests"] = _quantity(_floats(columns, n, "canary_requests"), confidence, False)
    # Only a scenario with `business:` has these: the summary of any other stays as it was.
    if has_business(columns):
        summary.update(summarize_business(columns, confidence))
    return summary


# --- business outcomes of A/B experiments (issue 19) ---------------------------------------


#: Business rates of the summary, and the runs each is a share of (the form of
#: ``sim.gates.spec.RATES``: a gate can bound them by these names).
BUSINESS_RATES = {
    "false_winner_rate": "A/A runs (true lift 0)",
    "power": "runs with a positive true lift",
    "wrong_direction_rate": "runs with a non-zero true lift",
    "correct_rate": "runs with a business verdict",
    "ci_coverage": "runs with a lift interval",
    "srm_rate": "runs with a split check",
}
#: Business quantities of the summary, each with p50/p90/p95 and a mean (unit for messages).
#: ``regret_conversions_total`` and ``regret_revenue_total`` are the rollout's regret plus
#: the ``after_promotion`` window's; ``lift_error`` is ``lift_estimate - true_lift``.
BUSINESS_QUANTITIES = {
    "regret_conversions": "conversions",
    "regret_conversions_after_promotion": "conversions",
    "regret_conversions_total": "conversions",
    "regret_revenue": "revenue",
    "regret_revenue_after_promotion": "revenue",
    "regret_revenue_total": "revenue",
    "sessions": "sessions",
    "lift_estimate": "relative lift",
    "lift_error": "relative lift",
}
#: The winners a record may name (``sim.outcomes.WINNERS``, repeated: no import of outcomes here).
_WINNERS = ("candidate", "primary", "none")


def _texts(columns: Mapping[str, Any], n: int, col: str) -> np.ndarray:
    """A text column as objects, a missing value (None/NaN) as None."""
    if col not in columns:
        return np.full(n, None, dtype=object)
    return np.array([v if isinstance(v, str) else None for v in columns[col]], dtype=object)


def _named(texts: np.ndarray) -> np.ndarray:
    """Per run, whether a text column of :func:`_texts` holds a value."""
    return np.array([t is not None for t in texts], dtype=bool)


def _flags(columns: Mapping[str, Any], n: int, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, known) of a flag column whose missing values (None/NaN) are not False."""
    if col not in columns:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    values = columns[col]
    if isinstance(values, np.ndarray) and values.dtype == bool:
        return values, np.ones(n, dtype=bool)
    known = np.array([v is not None and v == v for v in values], dtype=bool)
    value = np.array([bool(v) if k else False for v, k in zip(values, known)], dtype=bool)
    return value, known


def has_business(records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping]) -> bool:
    """Whether any run carries business outcomes (a ``winner``: the scenario had ``business:``)."""
    n, columns = _record_columns(records)
    return bool(_named(_texts(columns, n, "winner")).any())


def business_population(
    records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """(indicator, conditioning mask) per run of a business rate of :data:`BUSINESS_RATES`.

    The rate is ``sum(indicator & mask) / sum(mask)``; a gate bounds it with the Wilson
    interval of those counts (as ``sim.gates.decide`` does for ``false_rollback_rate``).
    The definitions (a run counts only where its fields are not null):

    * ``false_winner_rate``: winner is not ``none``, among A/B experiments' runs (their
      ``srm`` is not null) whose true lift is exactly 0 (A/A tests). The record does not
      carry ``business.min_effect``, so runs with a small non-zero lift are not A/A runs
      here; ``correct_rate`` judges those against it. A canary's promotion of a neutral
      release is no false winner (it claims "not worse", not "better"), so canaries'
      runs are left out.
    * ``power``: winner is ``candidate``, among runs with true lift > 0 (for one lift at a
      time see the summary's ``power_by_lift``).
    * ``wrong_direction_rate``: a winner against the sign of a non-zero true lift
      (``primary`` when it is > 0, ``candidate`` when < 0), among experiments' runs with a
      non-zero lift
      (Gelman & Carlin 2014, "Beyond power calculations": the type S error).
    * ``correct_rate``: ``correct`` (``sim.outcomes.winner_correct``), among runs with one.
    * ``ci_coverage``: ``lift_ci_low <= true_lift <= lift_ci_high``, among runs with an
      interval. The interval is the rule's at its decision (a sequential rule's is frozen
      there) and the lift the long-run one: a novelty effect that had not faded by the
      decision lowers coverage, as it would in production.
    * ``srm_rate``: the split check flagged a sample-ratio mismatch, among runs with a check.

    Raises:
        ValueError: for a name not in :data:`BUSINESS_RATES`.
    """
    n, columns = _record_columns(records)
    winner = _texts(columns, n, "winner")
    lift = _floats(columns, n, "true_lift")
    has_lift = ~np.isnan(lift)
    # NaN compares False both ways: runs without a lift fall out of every lift condition.
    with np.errstate(invalid="ignore"):
        positive, negative, zero = lift > 0, lift < 0, lift == 0
    decided = _named(winner)
    experiment = _flags(columns, n, "srm")[1]  # only an A/B experiment's runs have one
    if metric == "false_winner_rate":
        return decided & (winner != "none"), zero & decided & experiment
    if metric == "power":
        return winner == "candidate", positive & decided
    if metric == "wrong_direction_rate":
        wrong = (positive & (winner == "primary")) | (negative & (winner == "candidate"))
        return wrong, (positive | negative) & decided & experiment
    if metric == "correct_rate":
        return _flags(columns, n, "correct")
    if metric == "ci_coverage":
        low, high = _floats(columns, n, "lift_ci_low"), _floats(columns, n, "lift_ci_high")
        has_ci = has_lift & ~np.isnan(low) & ~np.isnan(high)
        with np.errstate(invalid="ignore"):
            return (low <= lift) & (lift <= high), has_ci
    if metric == "srm_rate":
        return _flags(columns, n, "srm")
    raise ValueError(f"not a business rate: {metric!r} (one of {', '.join(BUSINESS_RATES)})")


def business_quantity(records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping], name: str) -> np.ndarray:
    """Per run, a quantity of :data:`BUSINESS_QUANTITIES` (NaN where the record has none).

    A total is NaN when either of its parts is (a run that did not measure both).

    Raises:
        ValueError: for a name not in :data:`BUSINESS_QUANTITIES`.
    """
    n, columns = _record_columns(records)
    if name not in BUSINESS_QUANTITIES:
        raise ValueError(f"not a business quantity: {name!r} (one of {', '.join(BUSINESS_QUANTITIES)})")
    if name.endswith("_total"):
        base = name.removesuffix("_total")
        return _floats(columns, n, base) + _floats(columns, n, f"{base}_after_promotion")
    if name == "lift_error":
        return _floats(columns, n, "lift_estimate") - _floats(columns, n, "true_lift")
    return _floats(columns, n, name)


def _rate_of(indicator: np.ndarray, mask: np.ndarray, confidence: float) -> dict:
    # Counting inside the mask keeps k <= n whatever the indicator says outside it.
    return rate(int(np.count_nonzero(indicator & mask)), int(mask.sum()), confidence)


def summarize_business(
    records: pd.DataFrame | Mapping[str, ArrayLike] | Sequence[Mapping], confidence: float = 0.95
) -> dict:
    """The business outcomes of A/B runs, every rate with a Wilson interval and every
    quantity with order-statistic intervals of its quantiles and a Student-t interval of
    its mean (the helpers above).

    Args:
        records: run records as :func:`summarize_records` takes them.
        confidence: level of every interval.

    Returns:
        A JSON-serialisable dict with the rates of :data:`BUSINESS_RATES` (each
        ``{"rate", "low", "high", "k", "n"}``; :func:`business_population` defines them),
        ``power_by_lift`` (one ``{"true_lift", "rate", "low", "high", "k", "n"}`` per
        distinct positive true lift, ascending), the quantities of
        :data:`BUSINESS_QUANTITIES` (each ``{"p50", "p90", "p95", "mean"}`` of
        ``{"value", "low", "high", "n"}``), ``decision_time_by_winner`` (per winner
        ``candidate``/``primary``/``none`` the decision time's quantities, over runs with a
        decision time) and ``winners`` (per winner its share of the runs with one).
    """
    n, columns = _record_columns(records)
    out: dict[str, Any] = {}
    for name in BUSINESS_RATES:
        out[name] = _rate_of(*business_population(columns, name), confidence)
    winner = _texts(columns, n, "winner")
    decided = int(np.count_nonzero(_named(winner)))
    out["winners"] = {w: rate(int(np.count_nonzero(winner == w)), decided, confidence) for w in _WINNERS}
    lift = _floats(columns, n, "true_lift")
    indicator, mask = business_population(columns, "power")
    by_lift = []
    for value in np.unique(lift[mask]):
        at = mask & (lift == value)
        by_lift.append({"true_lift": float(value), **_rate_of(indicator, at, confidence)})
    out["power_by_lift"] = by_lift
    for name in BUSINESS_QUANTITIES:
        out[name] = _quantity(business_quantity(columns, name), confidence)
    time = _floats(columns, n, "decision_time_s")
    out["decision_time_by_winner"] = {w: _quantity(np.where(winner == w, time, np.nan), confidence) for w in _WINNERS}
    return out


_RATE_ROWS = (
    "promoted",
    "rolled_back",
    "unfinished",
    "false_rollback_rate",
    "detection_rate",
    "missed_rate",
)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100.0 * v:.1f}%"


def _secs(v: float | None) -> str:
    if v is None:
        return "n/a"
    # Sub-10 s times need a decimal to be distinguishable; longer ones do not.
    return f"{v:.1f}s" if abs(v) < 10 else f"{v:.0f}s"


def _count(v: float | None) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if v == round(v):
        return f"{v:.0f}"  # whole counts (order statistics, often) need no decimals
    return f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}"


def _with_ci(d: Mapping | None, fmt: Any) -> str:
    if not d or d.get("value") is None:
        return "n/a"
    return f"{fmt(d['value'])} [{fmt(d.get('low'))}, {fmt(d.get('high'))}]"


def format_summary_table(summary: dict) -> str:
    """Render a summary from :func:`summarize_records` as a fixed-width table.

    Args:
        summary: The dict returned by :func:`summarize_records`.

    Returns:
        Multi-line text: one line per rate (value, interval, k/n), then one line
        per quantity (p50/p90/p95 and mean, each with its interval). "n/a" marks
        undefined values. No trailing newline.
    """
    conf = summary.get("confidence", 0.95)
    ci = f"{100 * conf:g}% CI"
    lines = [f"runs: {summary.get('runs', 0)}", ""]
    lines.append(f"{'rate':<22}{'  value [' + ci + ']':<28}k/n")
    for name in _RATE_ROWS:
        r = summary.get(name)
        if r is None:
            continue
        # Right-align the value so the percent signs line up down the column.
        cell = f"{_pct(r.get('rate')):>6}"
        if r.get("rate") is not None:
            cell += f" [{_pct(r['low'])}, {_pct(r['high'])}]"
        lines.append(f"{name:<22}{cell:<28}{r['k']}/{r['n']}")
    lines.append("")
    cols = ("p50", "p90", "p95", "mean")
    lines.append(f"{'quantity':<20}" + "".join(f"{c:<26}" for c in cols).rstrip())
    for name in (*_QUANTITIES, "canary_requests"):
        block = summary.get(name)
        if block is None:
            continue
        fmt = _secs if name.endswith("_s") else _count
        cells = [_with_ci(block.get(c), fmt) if c in block else "-" for c in cols]
        lines.append(f"{name:<20}" + "".join(f"{c:<26}" for c in cells).rstrip())
    if "false_winner_rate" in summary:
        lines += ["", *_experiment_lines(summary, ci)]
    return "\n".join(lines)


def _duration(v: float | None) -> str:
    """Seconds as seconds, hours or days: experiments decide in days, canaries in minutes."""
    if v is None:
        return "n/a"
    if abs(v) < 600:
        return _secs(v)
    return f"{v / 3600:.1f}h" if abs(v) < 172_800 else f"{v / 86_400:.2f}d"


def _lift(v: float | None) -> str:
    return "n/a" if v is None else f"{100.0 * v:+.2f}%"


def _rate_line(name: str, r: Mapping[str, Any], width: int) -> str:
    # Right-align the value so the percent signs line up down the column.
    cell = f"{_pct(r.get('rate')):>6}"
    if r.get("rate") is not None:
        cell += f" [{_pct(r['low'])}, {_pct(r['high'])}]"
    return f"{name:<{width}}{cell:<28}{r['k']}/{r['n']}"


def _experiment_lines(summary: Mapping[str, Any], ci: str) -> list[str]:
    """The "experiment" block of :func:`format_summary_table`: business rates, power per
    true lift, winners, regret and lift quantities, decision time per winner."""
    width = 40
    lines = ["experiment (business outcomes)", f"{'rate':<{width}}{'  value [' + ci + ']':<28}k/n"]
    for name in BUSINESS_RATES:
        if name in summary:
            lines.append(_rate_line(name, summary[name], width))
    for row in summary.get("power_by_lift", []):
        lines.append(_rate_line(f"power at true lift {_lift(row['true_lift'])}", row, width))
    for winner, r in summary.get("winners", {}).items():
        lines.append(_rate_line(f"winner {winner}", r, width))
    lines.append("")
    cols = ("p50", "p90", "p95", "mean")
    lines.append(f"{'quantity':<{width}}" + "".join(f"{c:<26}" for c in cols).rstrip())
    rows: list[tuple[str, Any, Any]] = [
        (name, summary.get(name), _lift if name.startswith("lift_") else _count) for name in BUSINESS_QUANTITIES
    ]
    rows += [
        (f"decision_time_s, winner {w}", block, _duration)
        for w, block in summary.get("decision_time_by_winner", {}).items()
    ]
    for name, block, fmt in rows:
        if not block:
            continue
        cells = [_with_ci(block.get(c), fmt) for c in cols]
        lines.append(f"{name:<{width}}" + "".join(f"{c:<26}" for c in cells).rstrip())
    return lines


# --- bootstrap, stratified and paired estimates (sweeps and `pdsim compare`) ---------------


def _linear_position(n: int, q: float) -> tuple[int, float]:
    """0-based order statistic ``j`` and weight ``g`` of numpy's 'linear' quantile:
    ``x[j] * (1 - g) + x[j + 1] * g`` of the sorted sample."""
    h = (n - 1) * q
    j = min(int(math.floor(h)), n - 1)
    return j, h - j


def bootstrap_quantile_interval(
    values: np.ndarray, q: float, rng: np.random.Generator, confidence: float = 0.95, n_boot: int = 2000
) -> dict:
    """Sample quantile with a percentile-bootstrap interval.

    A bootstrap resample's ``r``-th order statistic is ``x_(ceil(n U_(r)))`` with
    ``U_(r)`` the ``r``-th of n uniforms, ``U_(r) ~ Beta(r, n - r + 1)`` and ``U_(r+1) =
    U_(r) + (1 - U_(r)) Beta(1, n - r)``; drawing those two instead of n indexes per
    replicate gives exactly the bootstrap distribution of numpy's 'linear' quantile at
    O(n_boot) cost whatever n (Efron & Tibshirani 1993, ch. 13: the percentile method).

    Args:
        values: observations; NaNs are ignored.
        q: quantile level in [0, 1].
        rng: the generator of the resamples (seeded by the caller: same seed, same interval).
        confidence: two-sided level.
        n_boot: bootstrap replicates.

    Returns:
        ``{"value", "low", "high", "n"}``; all None but n when there are no observations.
    """
    alpha, x = _quantile_input(values, q, confidence)
    n = int(x.size)
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    j, g = _linear_position(n, q)
    r = j + 1  # 1-based rank
    u1 = rng.beta(r, n - r + 1, size=n_boot)
    idx1 = np.clip(np.ceil(n * u1).astype(np.int64) - 1, 0, n - 1)
    boot = x[idx1]
    if g > 0 and r < n:
        u2 = u1 + (1.0 - u1) * rng.beta(1, n - r, size=n_boot)
        idx2 = np.clip(np.ceil(n * u2).astype(np.int64) - 1, 0, n - 1)
        boot = boot * (1.0 - g) + x[idx2] * g
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return {"value": float(np.quantile(x, q, method="linear")), "low": float(low), "high": float(high), "n": n}


def stratified_rate(k: ArrayLike, n: ArrayLike, weights: ArrayLike, confidence: float = 0.95) -> dict:
    """A weighted mix of stratum proportions, ``p = sum w_s k_s/n_s / sum w_s``, with a
    Wilson interval at the effective sample size ``p (1 - p) / var`` where ``var = sum
    w_s^2 p_s (1 - p_s) / n_s`` (Korn & Graubard 1998, "Confidence intervals for proportions
    with small expected number of positive counts estimated from survey data"; not capped at
    the total count: weighted strata can be more precise than one simple sample). When that
    variance is zero (every stratum all-yes or all-no) Kish's ``(sum w)^2 / sum(w^2 / n)``
    stands in, so "0 of n" still gets a Wilson upper bound.

    Strata with ``n == 0`` are left out. Returns ``{"rate", "low", "high", "n_eff"}``.
    """
    conf = _check_confidence(confidence)
    yes, size, w = (np.asarray(a, dtype=float) for a in (k, n, weights))
    keep = size > 0
    yes, size, w = yes[keep], size[keep], w[keep]
    if not keep.any() or w.sum() <= 0:
        return {"rate": None, "low": 0.0, "high": 1.0, "n_eff": 0.0}
    w = w / w.sum()
    ps = yes / size
    p = float(np.sum(w * ps))
    var = float(np.sum(w * w * ps * (1.0 - ps) / size))
    kish = float(1.0 / np.sum(w * w / size))
    n_eff = p * (1.0 - p) / var if var > 0 else kish
    low, high = _wilson_real(p, n_eff, conf)
    return {"rate": p, "low": low, "high": high, "n_eff": n_eff}


def _wilson_real(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``p`` out of a (possibly fractional) ``n``."""
    z = float(special.ndtri(0.5 + confidence / 2.0))
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(max(p * (1.0 - p), 0.0) / n + z2n / (4.0 * n))
    return (0.0 if p <= 0 else max(0.0, center - half)), (1.0 if p >= 1 else min(1.0, center + half))


def stratified_mean(
    means: ArrayLike,
    variances: ArrayLike,
    n: ArrayLike,
    weights: ArrayLike,
    confidence: float = 0.95,
) -> dict:
    """``sum w_s mean_s / sum w_s`` with a normal interval from ``sum w_s^2 var_s / n_s``.

    Strata with ``n == 0`` are left out; a stratum with one observation adds no variance
    term (its variance is unknown), so intervals need strata of at least two.
    Returns ``{"value", "low", "high", "n"}``.
    """
    conf = _check_confidence(confidence)
    m, v, size, w = (np.asarray(a, dtype=float) for a in (means, variances, n, weights))
    keep = size > 0
    m, v, size, w = m[keep], np.nan_to_num(v[keep]), size[keep], w[keep]
    if not keep.any() or w.sum() <= 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    w = w / w.sum()
    value = float(np.sum(w * m))
    half = float(special.ndtri(0.5 + conf / 2.0)) * math.sqrt(float(np.sum(w * w * v / size)))
    return {"value": value, "low": value - half, "high": value + half, "n": int(size.sum())}


#: Most distinct paired differences bootstrapped by counts (``paired_difference``): measured
#: at 40,000 pairs and 2,000 resamples, counts take 0.06 s at 256 values and 0.29 s at 1,024,
#: resampling indexes 0.4-0.9 s whatever the values.
FEW_PAIRED_VALUES = 512


def paired_difference(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, confidence: float = 0.95, n_boot: int = 2000
) -> dict:
    """Mean of ``a - b`` over pairs (run k of policy A against run k of policy B, which met
    the same traffic and faults), with a paired percentile-bootstrap interval.

    Pairs where either side is NaN are dropped. Resamples pairs, never sides, so the
    interval has the width of the paired differences' spread (common random numbers).

    Returns:
        ``{"a", "b", "diff", "low", "high", "n"}`` (means of A and B over the pairs kept).
    """
    alpha = 1.0 - _check_confidence(confidence)
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples need the same length, got {a.size} and {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return {"a": None, "b": None, "diff": None, "low": None, "high": None, "n": 0}
    d = a - b
    values, codes = np.unique(d, return_inverse=True)
    if values.size <= FEW_PAIRED_VALUES:
        # A resample's mean depends only on how often it draws each distinct difference,
        # and those counts are Multinomial(n, the differences' frequencies): the same
        # bootstrap distribution as resampling n indexes, drawn as K counts per resample.
        # Rates' differences take 3 values; at 40,000 pairs this is 0.002 s instead of
        # 0.9 s a metric, serial work that kept `pdsim compare` from scaling with workers.
        freq = np.bincount(codes, minlength=values.size) / n
        means = rng.multinomial(n, freq, size=n_boot) @ values / n
    else:
        means = np.empty(n_boot)
        step = max(1, 2_000_000 // n)  # resample in blocks of ~2e6 indexes: bounded memory
        for s in range(0, n_boot, step):
            m = min(step, n_boot - s)
            means[s : s + m] = d[rng.integers(0, n, size=(m, n))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return {
        "a": float(a.mean()),
        "b": float(b.mean()),
        "diff": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "n": n,
    }


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict:
    """McNemar's exact test for paired yes/no outcomes (e.g. rolled back by A, by B).

    Only discordant pairs inform the test: under "A and B have the same rate" the
    ``a_only`` pairs are Binomial(a_only + b_only, 1/2). Returns ``{"a_only", "b_only",
    "p_value"}`` with a two-sided exact p-value (1.0 when there are no discordant pairs).
    """
    a, b = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples need the same length, got {a.size} and {b.size}")
    from scipy.stats import binomtest

    a_only, b_only = int(np.count_nonzero(a & ~b)), int(np.count_nonzero(b & ~a))
    m = a_only + b_only
    p = 1.0 if m == 0 else float(binomtest(a_only, m, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def pareto_front(x: ArrayLike, y: ArrayLike) -> list[int]:
    """Indexes of the points no other point dominates, both coordinates minimised.

    A point is dominated when another is at least as good on both and better on one.
    NaN points are never on the front. Returned in increasing ``x``.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.flatnonzero(~(np.isnan(xs) | np.isnan(ys)))
    front = []
    for i in ok:
        dominated = np.any((xs[ok] <= xs[i]) & (ys[ok] <= ys[i]) & ((xs[ok] < xs[i]) | (ys[ok] < ys[i])))
        if not dominated:
            front.append(int(i))
    return sorted(front, key=lambda i: (xs[i], ys[i]))


__all__ += [
    "bootstrap_quantile_interval",
    "stratified_rate",
    "stratified_mean",
    "paired_difference",
    "mcnemar",
    "pareto_front",
    "BUSINESS_SUMMARY_COLUMNS",
    "BUSINESS_RATES",
    "BUSINESS_QUANTITIES",
    "has_business",
    "business_population",
    "business_quantity",
    "summarize_business",
]
