"""The fast path and the per-request mode (``--exact``) agree in distribution.

One small scenario with everything the fast path has to get right at once: Zipf users
with a 30% cohort, a cohort-specific error fault on top of a global one, a latency
shift, a Flagger canary whose checks (success rate >= 99, p99 <= 400 ms) sit close to
their thresholds so that rollouts end both ways, and an ``after_promotion`` window.
Exact runs of it (every request a simpy event) are compared with fast runs (Poisson
cells per segment) on:

* the request-success-rate and request-duration (p99) values read at tick 3, the first
  analysed tick; the weight behind them (20% since tick 2) is the same in every run;
* ``canary_requests``, ``canary_errors``, ``excess_errors``, ``users_exposed``,
  ``users_affected`` of the record;
* the outcome (promoted / rolled back) and ``decision_time_s`` (categorical).

Continuous-looking values are compared with a two-sample Cramér-von Mises permutation
test (exact under the null, with ties, as these counts have); categorical ones with
Fisher's exact test (2 categories) or a chi-square test of homogeneity. Agreement means
every p-value of the family exceeds ``LEVEL / len(family)`` (Bonferroni).

The same procedure must reject when the fast runs come from a deliberately perturbed
scenario (errors 20-25% more likely, latency shifted 20-30% more): that is the power
that makes "does not reject" mean something. The default test uses 100 exact runs;
the ``slow`` one 400 (``make test-slow``).

Size and power of the procedure, measured with fast runs standing in for the exact
ones (independent seeds per repetition): 100 vs 1000 runs of the same scenario rejected
1 time in 40, the default alternative (errors x1.25 and shift x1.2) 40 times in 40;
400 vs 4000 runs: same scenario 0/10, errors x1.2 10/10, shift x1.3 10/10 (shift x1.2
alone: 8/10, which is why the slow test uses x1.3). Against 20000 fast runs, 2000
exact runs gave p-values from 0.13 to 0.92 on all nine comparisons.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario, parse_scenario
from sim.runs.runner import run_one
from sim.seeds import run_seed
from sim.world.controller import RunResult, run_rollouts
from sim.yamlio import loads_yaml

ROOT = 20260611
#: Family-wise level of the agreement test (Bonferroni over the family).
LEVEL = 0.01
#: Permutations of the Cramér-von Mises tests (p-value resolution 1e-4 < LEVEL / family).
RESAMPLES = 9999
TICK = 3
RECORD_FIELDS = ("canary_requests", "canary_errors", "excess_errors", "users_exposed", "users_affected")
FAMILY = ("outcome", "decision_time_s", "success_rate@tick3", "p99@tick3") + RECORD_FIELDS

#: Fault parameters of the scenario under test.
BASE = dict(error_rate=0.008, cohort_error_rate=0.02, shift_ms=40.0)


def scenario(error_rate: float, cohort_error_rate: float, shift_ms: float) -> Scenario:
    text = textwrap.dedent(f"""\
        name: exact-agreement
        horizon: 30m
        after_promotion: 2m
        traffic:
          rate: 20/s
          users: 3000
          skew: 1
          cohorts:
            - {{name: beta, share: 0.3}}
        baseline:
          error_rate: 0.002
        release:
          faults:
            - {{kind: error_rate, rate: {error_rate}}}
            - {{kind: error_rate, rate: {cohort_error_rate}, cohort: beta}}
            - {{kind: latency, shift: {shift_ms}ms}}
        telemetry:
          scrape_interval: 10s
        policy:
          flagger:
            analysis:
              interval: 30s
              threshold: 3
              stepWeight: 20
              maxWeight: 60
              metrics:
                - name: request-success-rate
                  thresholdRange: {{min: 99}}
                  interval: 1m
                - name: request-duration
                  thresholdRange: {{max: 400}}
                  interval: 1m
        """)
    return parse_scenario(loads_yaml(text, file="exact-agreement.yaml"))


def perturbed(error_factor: float = 1.0, shift_factor: float = 1.0) -> Scenario:
    return scenario(
        BASE["error_rate"] * error_factor, BASE["cohort_error_rate"] * error_factor, BASE["shift_ms"] * shift_factor
    )


# --- running ---------------------------------------------------------------------------


def exact_runs(sc: Scenario, n: int, stream: int) -> list[RunResult]:
    policy = scenario_policy(sc)
    return [run_one(sc, policy, run_seed(ROOT, stream, k), run_index=k, exact=True, trace=True) for k in range(n)]


def fast_runs(sc: Scenario, n: int, stream: int) -> list[RunResult]:
    seeds = [run_seed(ROOT, stream, k) for k in range(n)]
    return run_rollouts(sc, scenario_policy(sc), seeds, trace=True)


@dataclass
class Sample:
    """What is compared, from a list of runs."""

    values: dict[str, np.ndarray]
    categories: dict[str, list]

    @classmethod
    def of(cls, results: Sequence[RunResult]) -> Sample:
        values: dict[str, list[float]] = {"success_rate@tick3": [], "p99@tick3": []}
        for r in results:
            line = next((x for x in r.trace if x["tick"] == TICK), None)
            if line is None:
                continue  # condition on runs that reach the tick (all do here)
            # The routes the window was served under: set at the tick before (the trace
            # shows the weight after a tick's actions).
            before = next(x for x in r.trace if x["tick"] == TICK - 1)
            assert before["routed_weight"] == 20, "tick 3 must read a window served at weight 20"
            for key, metric in (("success_rate@tick3", "request-success-rate"), ("p99@tick3", "request-duration")):
                v = line["metrics"][metric]
                if v is not None:
                    values[key].append(v)
        for f in RECORD_FIELDS:
            values[f] = [getattr(r.record, f) for r in results]
        cats = {
            "outcome": [r.record.outcome for r in results],
            "decision_time_s": [r.record.decision_time_s for r in results],
        }
        return cls({k: np.asarray(v, dtype=float) for k, v in values.items()}, cats)


# --- two-sample tests ------------------------------------------------------------------


def cramervonmises_permutation(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES
) -> float:
    """Two-sample Cramér-von Mises test, p-value by permutation.

    The statistic is the one of ``scipy.stats.cramervonmises_2samp`` computed from the
    empirical distribution functions at every distinct pooled value (weighted by its
    multiplicity), so ties are handled exactly; the permutation null makes the test exact
    for discrete data too, where the asymptotic p-value would be conservative.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n, m = len(a), len(b)
    N = n + m
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="stable")
    sorted_values = pooled[order]
    ends = np.flatnonzero(np.r_[sorted_values[1:] != sorted_values[:-1], True])  # last index of tie blocks
    weights = np.diff(np.r_[-1, ends]) / N

    def statistic(first: np.ndarray) -> np.ndarray:  # first: (..., N) bool, in sorted order
        cx = np.cumsum(first, axis=-1)[..., ends]
        return (n * m / N) * np.sum(weights * (cx / n - (ends + 1 - cx) / m) ** 2, axis=-1)

    labels = np.zeros(N, dtype=bool)
    labels[:n] = True
    observed = statistic(labels[order])
    hits = 0
    for start in range(0, resamples, 1000):
        k = min(1000, resamples - start)
        perms = rng.permuted(np.broadcast_to(labels, (k, N)), axis=1)
        hits += int(np.sum(statistic(perms) >= observed * (1 - 1e-12)))
    return (hits + 1) / (resamples + 1)


def categorical_pvalue(a: list, b: list, min_expected: float = 5.0) -> float:
    """Homogeneity of two categorical samples: Fisher's exact test for two categories,
    chi-square otherwise; categories expected fewer than ``min_expected`` times are pooled
    with their neighbour (in sorted order, None last)."""
    cats = sorted(set(a) | set(b), key=lambda v: (v is None, 0 if v is None else v))
    table = np.array([[sum(1 for v in s if v == c) for c in cats] for s in (a, b)], dtype=float)
    while table.shape[1] > 2:
        expected = table.sum(1, keepdims=True) * table.sum(0) / table.sum()
        j = int(np.argmin(expected.min(axis=0)))
        if expected[:, j].min() >= min_expected:
            break
        into = j - 1 if j > 0 else j + 1
        table[:, into] += table[:, j]
        table = np.delete(table, j, axis=1)
    if table.shape[1] < 2:
        return 1.0
    if table.shape[1] == 2:
        return float(stats.fisher_exact(table).pvalue)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def compare(a: Sample, b: Sample, seed: int = 0) -> dict[str, float]:
    """The p-value of every comparison of the family."""
    rng = np.random.default_rng(seed)
    p = {k: categorical_pvalue(a.categories[k], b.categories[k]) for k in ("outcome", "decision_time_s")}
    for k in FAMILY[2:]:
        p[k] = cramervonmises_permutation(a.values[k], b.values[k], rng)
    assert set(p) == set(FAMILY)
    return p


def threshold() -> float:
    return LEVEL / len(FAMILY)


def agree(p: dict[str, float]) -> bool:
    return min(p.values()) > threshold()


def describe(name: str, a: Sample, b: Sample, p: dict[str, float]) -> str:
    rows = [f"{name} (reject below {threshold():.2g}):"]
    for k in FAMILY:
        if k in a.values:
            rows.append(f"  {k:20s} p={p[k]:.4g}  means {a.values[k].mean():10.3f} vs {b.values[k].mean():10.3f}")
        else:
            ca, cb = a.categories[k], b.categories[k]
            share = lambda xs: {c: round(xs.count(c) / len(xs), 3) for c in sorted(set(xs), key=str)}  # noqa: E731
            rows.append(f"  {k:20s} p={p[k]:.4g}  {share(ca)} vs {share(cb)}")
    return "\n".join(rows)


# --- the tests ---------------------------------------------------------------------------


def check(n_exact: int, n_fast: int, alternatives: dict[str, Scenario]) -> None:
    t0 = time.perf_counter()
    exact = Sample.of(exact_runs(scenario(**BASE), n_exact, stream=0))
    t_exact = time.perf_counter() - t0
    assert len(exact.values["success_rate@tick3"]) >= 0.95 * n_exact
    assert {"promoted", "rolled_back"} <= set(exact.categories["outcome"]), "outcomes must be mixed"

    fast = Sample.of(fast_runs(scenario(**BASE), n_fast, stream=1))
    p = compare(exact, fast, seed=1)
    report = [describe(f"exact ({n_exact}) vs fast ({n_fast}), same scenario", exact, fast, p)]
    rejected = {}
    for i, (name, sc) in enumerate(alternatives.items()):
        other = Sample.of(fast_runs(sc, n_fast, stream=2 + i))
        q = compare(exact, other, seed=2 + i)
        rejected[name] = not agree(q)
        report.append(describe(f"exact ({n_exact}) vs fast ({n_fast}), {name}", exact, other, q))
    report.append(
        f"exact runs: {t_exact:.1f}s ({1000 * t_exact / n_exact:.0f} ms/run); total {time.perf_counter() - t0:.1f}s"
    )
    text = "\n".join(report)
    print(text)
    assert agree(p), "the exact and the fast mode disagree:\n" + text
    assert all(rejected.values()), (
        "no power: the procedure did not reject a perturbed scenario "
        f"({[k for k, v in rejected.items() if not v]}):\n" + text
    )


def test_exact_and_fast_agree_in_distribution():
    """100 exact runs against 1000 fast runs; the same procedure rejects fast runs with
    25% more errors and a 20% larger latency shift."""
    check(100, 1000, {"errors x1.25, latency shift x1.2": perturbed(1.25, 1.2)})


@pytest.mark.slow
def test_exact_and_fast_agree_in_distribution_400_runs():
    """400 exact runs against 4000 fast runs; the same procedure rejects either
    perturbation alone: 20% more errors, or a 30% larger latency shift."""
    check(400, 4000, {"errors x1.2": perturbed(error_factor=1.2), "latency shift x1.3": perturbed(shift_factor=1.3)})


def test_two_sample_helpers():
    """The permutation Cramér-von Mises test gives about scipy's asymptotic p-value on
    tie-free data, p = 1 for identical samples (ties everywhere) and finds a shift of
    discrete data; the categorical test likewise."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=60), rng.normal(size=45)
    ours = cramervonmises_permutation(a, b, np.random.default_rng(0), resamples=1999)
    theirs = stats.cramervonmises_2samp(a, b).pvalue
    assert abs(ours - theirs) < 0.05
    ints = rng.poisson(2.0, size=300).astype(float)
    assert cramervonmises_permutation(ints, ints.copy(), np.random.default_rng(1), resamples=999) == 1.0
    assert cramervonmises_permutation(ints, ints + 1, np.random.default_rng(2), resamples=999) < 0.01
    assert categorical_pvalue(["a"] * 50 + ["b"] * 50, ["a"] * 50 + ["b"] * 50) == 1.0
    assert categorical_pvalue(["a"] * 80 + ["b"] * 20, ["a"] * 20 + ["b"] * 80) < 1e-6
