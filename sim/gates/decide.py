"""``pdsim check``: decide requirements on confidence intervals, and compare with a baseline.

Each requirement is decided on its interval, never on the point estimate alone: *pass*
when the whole interval lies inside the bound, *fail* when it lies wholly outside, and
*inconclusive* when it straddles the bound: the runs cannot tell, and more runs would
(the verdict says about how many). The gates file's ``inconclusive`` setting says how an
undecided requirement counts (fail by default: a gate that cannot show the policy is good
does not pass it).

Rates use Wilson intervals, percentiles distribution-free order-statistic intervals and
means Student-t intervals (``sim.stats``). Each interval is two-sided at the file's
``confidence``, so each one-sided decision errs with probability at most (1 − confidence)/2.

``--baseline`` runs the current policy on the same seeds (common random numbers: run k of
both policies meets the same traffic, faults and noise) and tests, per requirement, the
paired difference changed − baseline: rates by the discordant pairs (McNemar's
conditioning), quantities by the mean of per-run differences. A significant regression
is an interval wholly on the worse side of zero, the worse side being the one the
requirement bounds (more false rollbacks, less detection, more excess errors...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.gates.frontier import FrontierCheck, check_frontier, load_frontier
from sim.gates.spec import RATES, Gates, GateScenario, Requirement, load_gates
from sim.stats import (
    BUSINESS_QUANTITIES,
    BUSINESS_RATES,
    business_population,
    business_quantity,
    mean_interval,
    quantile_interval,
    summarize_records,
    wilson_interval,
)

__all__ = [
    "Verdict",
    "Regression",
    "GateReport",
    "evaluate",
    "compare_paired",
    "frontier_verdict",
    "run_gates",
    "load_gates",
]

#: Upper limit of the runs a suggestion names (beyond it the bound is too close to tell).
_MAX_SUGGESTED = 10_000_000


@dataclass(frozen=True)
class Verdict:
    """One requirement decided on one scenario's runs.

    Attributes:
        scenario: scenario name.
        requirement: e.g. ``detection_time_s.p95``.
        bound: e.g. ``≤ 600``.
        decision: ``pass``, ``fail``, ``inconclusive`` or ``n/a`` (no data: e.g. a false
            rollback rate on a scenario without good releases).
        outcome: what counts after the inconclusive treatment: ``pass``, ``fail``, ``warn``
            or ``skip`` (an inherited requirement with no data).
        estimate: the point estimate (None without data).
        low: lower end of the interval (``-inf``: unbounded).
        high: upper end.
        n: observations behind the statistic.
        k: successes for a rate (None otherwise).
        message: one line explaining the decision.
        suggested_runs: for an inconclusive decision, about how many runs would decide it.
        kind: ``requirement``, or ``frontier`` for the frontier gate (``sim.gates.frontier``):
            then the scenario is the tune's name, ``estimate`` the smallest factor over the
            objectives by which the closest candidate beats the policy, ``low``/``high`` the
            ends of that factor's interval.
    """

    scenario: str
    requirement: str
    bound: str
    decision: str
    outcome: str
    estimate: float | None
    low: float | None
    high: float | None
    n: int
    k: int | None = None
    message: str = ""
    suggested_runs: int | None = None
    kind: str = "requirement"


@dataclass(frozen=True)
class Regression:
    """The paired difference (changed − baseline) of one requirement's metric on one scenario."""

    scenario: str
    requirement: str
    difference: float | None
    low: float | None
    high: float | None
    n: int
    significant: bool
    message: str


@dataclass
class GateReport:
    """Everything ``pdsim check`` found; ``passed`` is the exit decision."""

    name: str
    file: str
    policy: str
    confidence: float
    inconclusive: str
    verdicts: list[Verdict] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)
    baseline: str | None = None
    warnings: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No requirement failed (after the inconclusive treatment) and no significant regression."""
        return not any(v.outcome == "fail" for v in self.verdicts) and not any(r.significant for r in self.regressions)


def _fmt(v: float | None, rate: bool) -> str:
    if v is None:
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{100 * v:.2f}%" if rate else f"{v:,.4g}"


def _population(frame: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(indicator, conditioning mask) of a rate, per run."""
    if metric in BUSINESS_RATES:
        return business_population(frame, metric)
    outcome = frame["outcome"].astype(str).to_numpy()
    bad = frame["release_bad"].fillna(False).astype(bool).to_numpy()
    if metric == "false_rollback_rate":
        return outcome == "rolled_back", ~bad
    if metric == "detection_rate":
        return outcome == "rolled_back", bad
    if metric == "missed_rate":
        return outcome == "promoted", bad
    return outcome == metric, np.ones(len(frame), dtype=bool)


def _quantity(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """Per run, a quantity's values (a business one may be derived: a total, an error)."""
    if metric in BUSINESS_QUANTITIES:
        return business_quantity(frame, metric)
    return pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=float)


def _baseline_side(merged: pd.DataFrame) -> pd.DataFrame:
    """The baseline's columns of a paired merge (``x_base`` as ``x``)."""
    return pd.DataFrame({c.removesuffix("_base"): merged[c] for c in merged.columns if c.endswith("_base")})


def _decide(req: Requirement, low: float, high: float) -> str:
    """pass / fail / inconclusive of an interval against the requirement's bounds."""
    outside = (req.max is not None and low > req.max) or (req.min is not None and high < req.min)
    if outside:
        return "fail"
    inside = (req.max is None or high <= req.max) and (req.min is None or low >= req.min)
    return "pass" if inside else "inconclusive"


def _suggest_rate(req: Requirement, k: int, n: int, confidence: float) -> int | None:
    """About how many runs decide a rate requirement if the observed rate holds."""
    p = k / n
    m = n
    while m < _MAX_SUGGESTED:
        m *= 2
        kk = round(p * m)
        if _decide(req, *wilson_interval(kk, m, confidence)) != "inconclusive":
            # Refine between m/2 and m by bisection: the decision is monotone enough in m.
            lo, hi = m // 2, m
            while hi - lo > max(1, lo // 50):
                mid = (lo + hi) // 2
                if _decide(req, *wilson_interval(round(p * mid), mid, confidence)) != "inconclusive":
                    hi = mid
                else:
                    lo = mid
            return hi
    return None


def _suggest_quantity(
    req: Requirement, estimate: float, low: float, high: float, n: int, confidence: float
) -> int | None:
    """Intervals shrink like 1/sqrt(n): the runs at which the half-width equals the margin.

    An unbounded side of a percentile's interval first needs enough runs for an order
    statistic to bound it: the largest of m values exceeds the q-quantile with probability
    1 - q^m, so m >= log(alpha/2) / log(q).
    """
    q = req.quantile
    if not (math.isfinite(low) and math.isfinite(high)):
        if q is None:
            return None
        side = 1.0 - q if math.isinf(high) else q
        return math.ceil(math.log((1.0 - confidence) / 2.0) / math.log(1.0 - side))
    bounds = [b for b in (req.min, req.max) if b is not None]
    margin = min(abs(estimate - b) for b in bounds)
    half = (high - low) / 2.0
    if margin <= 0 or half <= 0:
        return None
    m = math.ceil(n * (half / margin) ** 2 * 1.1)
    return m if m < _MAX_SUGGESTED else None


def evaluate(
    req: Requirement,
    frame: pd.DataFrame,
    *,
    scenario: str,
    confidence: float = 0.95,
    treatment: str = "fail",
    inherited: bool = False,
) -> Verdict:
    """Decide one requirement on one scenario's runs.

    Args:
        req: the requirement.
        frame: the scenario's runs (one row per run; run-record columns).
        scenario: its name (for the verdict).
        confidence: level of the interval.
        treatment: how an inconclusive decision counts: ``fail``, ``warn`` or ``pass``.
        inherited: a file-wide requirement: without data it is skipped, not failed.
    """
    is_rate = req.metric in RATES
    if is_rate:
        hit, mask = _population(frame, req.metric)
        n, k = int(mask.sum()), int((hit & mask).sum())
        estimate = k / n if n else None
        low, high = wilson_interval(k, n, confidence) if n else (None, None)
    else:
        values = _quantity(frame, req.metric)
        k = None
        q = req.quantile
        stat = quantile_interval(values, q, confidence) if q is not None else mean_interval(values, confidence)
        n, estimate = stat["n"], stat["value"]
        low = stat["low"] if stat["low"] is not None else (-math.inf if n else None)
        high = stat["high"] if stat["high"] is not None else (math.inf if n else None)
    if not n or estimate is None or low is None or high is None:
        population = RATES.get(req.metric, "runs with a value")
        return Verdict(
            scenario,
            req.name,
            req.bound_text,
            "n/a",
            "skip" if inherited else "fail",
            None,
            None,
            None,
            0,
            k,
            f"no data: no {population} in this scenario",
        )
    decision = _decide(req, low, high)
    ci = f"{_fmt(estimate, is_rate)} [{_fmt(low, is_rate)}, {_fmt(high, is_rate)}]"
    count = f"{k}/{n}" if is_rate else f"n={n}"
    suggested = None
    if decision == "pass":
        message = f"{ci}, {count}: the interval lies within {req.bound_text}"
    elif decision == "fail":
        message = f"{ci}, {count}: the interval lies outside {req.bound_text}"
    else:
        if is_rate:
            suggested = _suggest_rate(req, k or 0, n, confidence)
        else:
            suggested = _suggest_quantity(req, estimate, low, high, n, confidence)
        more = f" (about {suggested:,} runs would decide it)" if suggested else ""
        message = f"{ci}, {count}: the interval straddles {req.bound_text}: inconclusive, raise runs{more}"
    outcome = decision if decision != "inconclusive" else treatment
    return Verdict(scenario, req.name, req.bound_text, decision, outcome, estimate, low, high, n, k, message, suggested)


def _worse_up(req: Requirement) -> bool:
    """True when a larger value is worse (the requirement bounds it from above)."""
    return req.max is not None


def compare_paired(
    req: Requirement, changed: pd.DataFrame, baseline: pd.DataFrame, *, scenario: str, confidence: float = 0.95
) -> Regression:
    """Paired difference changed − baseline of a requirement's metric, runs matched by ``run``.

    Rates: among the runs where the two policies disagree (b: only the changed policy
    has the event, c: only the baseline), the share b/(b+c) gets a Wilson interval and
    the difference is (b − c)/n, conditional on b + c (McNemar). Quantities: Student-t
    interval of the mean per-run difference over runs where both have a value.
    """
    merged = changed.merge(baseline, on="run", suffixes=("", "_base"))
    up = _worse_up(req)
    if req.metric in RATES:
        hit_c, mask = _population(merged, req.metric)
        # Same seeds, same scenario: release_bad agrees run by run, so one mask serves both.
        base = _baseline_side(merged)
        hit_b, _ = _population(base, req.metric)
        n = int(mask.sum())
        b = int((hit_c & ~hit_b & mask).sum())
        c = int((~hit_c & hit_b & mask).sum())
        if n == 0:
            return Regression(scenario, req.name, None, None, None, 0, False, "no paired runs with data")
        diff = (b - c) / n
        if b + c:
            lo, hi = wilson_interval(b, b + c, confidence)
            low, high = (b + c) / n * (2 * lo - 1), (b + c) / n * (2 * hi - 1)
        else:
            low = high = 0.0
        detail = f"{b} runs worse, {c} better of {n} paired"
        scale, unit = 100.0, " pts"
    else:
        x = _quantity(merged, req.metric)
        y = _quantity(_baseline_side(merged), req.metric)
        d = (x - y)[~(np.isnan(x) | np.isnan(y))]
        n = int(d.size)
        m = mean_interval(d, confidence)
        if m["value"] is None:
            return Regression(scenario, req.name, None, None, None, 0, False, "no paired runs with data")
        diff = m["value"]
        low = m["low"] if m["low"] is not None else -math.inf
        high = m["high"] if m["high"] is not None else math.inf
        if n >= 2 and float(np.std(d)) == 0.0:
            low = high = diff  # identical paired values: the difference is known exactly
        detail = f"mean per-run difference of {req.metric} over {n} paired runs"
        scale, unit = 1.0, ""
    significant = (low > 0) if up else (high < 0)
    better = (high < 0) if up else (low > 0)
    verdict = (
        "significant regression" if significant else "significant improvement" if better else "no significant change"
    )
    message = (
        f"{verdict}: changed − baseline = {diff * scale:+.3g}{unit} "
        f"[{low * scale:+.3g}, {high * scale:+.3g}] ({detail})"
    )
    return Regression(scenario, req.name, diff, low, high, n, significant, message)


def frontier_verdict(check: FrontierCheck) -> Verdict:
    """The frontier gate as a verdict: ``fail`` when a feasible candidate dominates the policy
    by the margin on every objective (judged on the intervals: noise alone never fails it)."""

    def smallest(values: list[float]) -> float | None:
        return None if not values or any(math.isnan(x) for x in values) else min(values)

    ratios = check.closest.ratios if check.closest is not None else ()
    decision = "pass" if check.passed else "fail"
    return Verdict(
        check.tune.name,
        "frontier",
        f"margin {check.margin:g}x",
        decision,
        decision,
        smallest([r.factor for r in ratios]),
        smallest([r.low for r in ratios]),
        smallest([r.high for r in ratios]),
        check.rollouts,
        message=check.message(),
        kind="frontier",
    )


def _simulate(
    gs: GateScenario, policy_paths: Sequence[os.PathLike[str] | str] | None, workers: int
) -> tuple[str, int, pd.DataFrame, str, list[str]]:
    from sim.inputs.policy import load_scenario_and_policy
    from sim.runs.runner import run_frame

    scenario, policy, warnings = load_scenario_and_policy(gs.path, policy_paths or ())
    seed = scenario.seed if gs.seed is None else gs.seed
    frame = run_frame(scenario, policy, gs.runs, seed, workers=workers)
    return scenario.name, seed, frame, policy.name, warnings


def run_gates(
    gates: Gates,
    *,
    baseline: Sequence[str | os.PathLike[str]] | None = None,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Simulate every scenario of a gates file and decide every requirement.

    Args:
        gates: the parsed gates file.
        baseline: policy paths of the current policy: adds a paired comparison per
            requirement, on the same seeds.
        workers: processes per batch (results do not depend on it).
        progress: called with a short line per scenario (the CLI prints it).

    Raises:
        InputError: for a bad scenario or policy file.
    """
    report = GateReport(
        name=gates.name, file=gates.file, policy="", confidence=gates.confidence, inconclusive=gates.inconclusive
    )
    names = []
    # The tune folder, its portfolio and the policy are read first: bad input before any run.
    setup = load_frontier(gates.frontier, gates.policy) if gates.frontier is not None else None
    for gs in gates.scenarios:
        name, seed, frame, policy_name, warnings = _simulate(gs, gates.policy, workers)
        names.append(policy_name)
        report.warnings += [w for w in warnings if w not in report.warnings]
        report.runs[name] = len(frame)
        for req, inherited in [(r, False) for r in gs.requirements] + [(r, True) for r in gs.inherited]:
            report.verdicts.append(
                evaluate(
                    req,
                    frame,
                    scenario=name,
                    confidence=gates.confidence,
                    treatment=gates.inconclusive,
                    inherited=inherited,
                )
            )
        if baseline:
            _, _, base, base_name, base_warnings = _simulate(
                GateScenario(gs.path, gs.runs, seed, ()), baseline, workers
            )
            report.baseline = base_name
            report.warnings += [w for w in base_warnings if w not in report.warnings]
            for req in (*gs.requirements, *gs.inherited):
                if req.metric in RATES and not _population(frame, req.metric)[1].any():
                    continue  # undefined here (e.g. false rollbacks of a bad release)
                report.regressions.append(compare_paired(req, frame, base, scenario=name, confidence=gates.confidence))
        if progress is not None:
            summary = summarize_records(frame)
            progress(f"{name}: {len(frame)} runs, seed {seed}, rolled back {summary['rolled_back']['k']}/{len(frame)}")
    if setup is not None:
        check = check_frontier(setup, confidence=gates.confidence, workers=workers, progress=progress)
        names.append(check.policy)
        report.warnings += [w for w in check.warnings if w not in report.warnings]
        report.runs[f"frontier {check.tune.name}"] = check.rollouts
        report.verdicts.append(frontier_verdict(check))
    report.policy = ", ".join(dict.fromkeys(names))
    return report
