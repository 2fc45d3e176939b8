"""The judges' batch pass (issue 17): every run of a batch judged in one pass, with the
same answers run for run as the scalar ``judge``.

The contract (``sim/policies/judges/base.py``): for random batches (ramps of the canary's
share, zero traffic, zero errors, histograms or none, several ticks with growing slots and
runs judged at different ticks), ``judge_batch`` gives every run the verdict, ``reject``,
``accept`` and detail of ``judge`` on ``state_row(...)`` and ``data.row(i)``, and
``state_row`` afterwards equals the scalar's new state. Judges whose scalar path is the
batch pass on a batch of one (sequential) must agree bit for bit; the others to 1e-12
relative on floats and exactly on verdicts. ``Telemetry.judge_batch`` holds, row by row,
``Telemetry.judge_data``'s numbers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from sim.policies.judges import JudgeSpec, make_judge
from sim.policies.judges.base import VERDICTS, JudgeBatch, Judgement, Judgements, RowByRow, Verdict
from sim.policies.judges.kayenta import KayentaSpec
from sim.policies.judges.spec import ERRORS, LATENCY, SequentialSpec
from sim.world.telemetry import CANARY, PRIMARY, Telemetry

BOUNDS = (25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
SCRAPE = 15.0


@dataclasses.dataclass
class Counters:
    """Random counters of n runs over K slots, both versions (what the world would scrape)."""

    requests: np.ndarray  # (n, K, 2) primary, canary
    errors: np.ndarray
    hist: np.ndarray  # (n, K, 2, B)


def random_counters(rng: np.random.Generator, n: int, slots: int) -> Counters:
    """Runs with their own traffic (some none at all), a ramp of the canary's weight that
    starts at a random slot, error probabilities (some zero, some canaries worse) and
    latency laws (some canaries slower)."""
    rate = rng.choice([0.0, 3.0, 50.0, 400.0], size=n, p=[0.05, 0.2, 0.5, 0.25])
    start = rng.integers(0, slots, size=n)
    k = np.arange(slots)
    weight = np.clip((k[None, :] - start[:, None]) // 4 * 0.1 + 0.05, 0.0, 1.0)
    weight[k[None, :] < start[:, None]] = 0.0
    weight[rng.random(n) < 0.05] = 1.0  # all traffic on the canary: shares of 1
    total = rng.poisson(rate[:, None] * np.ones(slots)).astype(np.int64)
    total[:, 0] = 0  # nothing happens before t = 0
    canary = rng.binomial(total, weight)
    requests = np.stack([total - canary, canary], axis=2)
    p_err = rng.choice([0.0, 0.002, 0.02], size=n)
    worse = rng.choice([1.0, 1.0, 3.0, 10.0], size=n)
    p_canary = np.minimum(p_err * worse, 1.0)
    errors = np.stack(
        [rng.binomial(requests[:, :, 0], p_err[:, None]), rng.binomial(requests[:, :, 1], p_canary[:, None])], axis=2
    )
    law = np.array([0.3, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02])
    slow = np.array([0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1])
    hist = np.zeros((n, slots, 2, len(law)))
    slower = rng.random(n) < 0.3
    for r in range(n):
        hist[r, :, 0] = rng.multinomial(requests[r, :, 0], law)
        hist[r, :, 1] = rng.multinomial(requests[r, :, 1], slow if slower[r] else law)
    return Counters(requests.astype(float), errors.astype(float), hist)


def batch_at(c: Counters, k: int, t: float, hist: str) -> JudgeBatch:
    """The batch of every run at a tick that has ingested k slots. ``hist``: "both",
    "canary" (the primary's not kept) or "none" (counters only, as a replayed CSV)."""
    return JudgeBatch(
        t,
        SCRAPE,
        BOUNDS,
        c.requests[:, :k, 1],
        c.errors[:, :k, 1],
        c.requests[:, :k, 0],
        c.errors[:, :k, 0],
        c.hist[:, :k, 1] if hist != "none" else None,
        c.hist[:, :k, 0] if hist == "both" else None,
    )


def same(a: Any, b: Any) -> bool:
    """Equal states or details, NaN equal to NaN, floats to 1e-12 relative (bytes of
    float64 arrays compared as arrays)."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, bytes) and isinstance(b, bytes) and len(a) % 8 == 0 and a != b:
        return len(a) == len(b) and same(np.frombuffer(a), np.frombuffer(b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return x.shape == y.shape and bool(np.allclose(x, y, rtol=1e-12, atol=1e-300, equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12)
    return bool(a == b)


def check_contract(
    judge: Any,
    seed: int,
    runs: int,
    slots: int = 40,
    hist: str = "both",
    exact: bool = False,
    exact_detail: bool = False,
) -> int:
    """Judge random runs tick by tick, each tick a random subset of them (in a shuffled
    order), by the batch pass and by the scalar ``judge``; assert they agree. Returns how
    many run-judgements rejected (so that a test can require both kinds of answers)."""
    rng = np.random.default_rng(seed)
    counters = random_counters(rng, runs, slots)
    state = judge.batch_state(runs)
    scalar = [judge.initial_state() for _ in range(runs)]
    rejected = 0
    for k in range(1, slots + 1, 3):
        data = batch_at(counters, k, k * SCRAPE + 7.5, hist)
        rows = rng.permutation(runs)[: int(rng.integers(runs // 2, runs + 1))]
        out = judge.judge_batch(state, rows, data.take(rows))
        assert isinstance(out, Judgements) and len(out) == len(rows)
        assert out.verdict.dtype == np.int8
        for j, r in enumerate(rows):
            scalar[r], want = judge.judge(scalar[r], data.row(int(r)))
            got = out.at(j)
            assert (VERDICTS[out.verdict[j]], bool(out.reject[j]), bool(out.accept[j])) == (
                want.verdict,
                want.reject,
                want.accept,
            ), (k, r)
            assert got == dataclasses.replace(got, verdict=want.verdict)
            assert same(dict(got.detail), dict(want.detail)), (k, r, got.detail, want.detail)
            if exact_detail:  # equal floats, None for a non-finite one: == is bit for bit
                assert dict(got.detail) == dict(want.detail), (k, r, got.detail, want.detail)
            row_state = judge.state_row(state, int(r))
            if exact:
                assert row_state == scalar[r] or same(row_state, scalar[r])
                if hasattr(row_state, "log_m"):
                    assert row_state.log_m == scalar[r].log_m  # bit for bit: one kernel
            else:
                assert same(row_state, scalar[r]), (k, r)
            rejected += bool(want.reject)
    # Runs never judged keep the initial state.
    never = judge.batch_state(2)
    assert same(judge.state_row(never, 1), judge.initial_state())
    return rejected


SEQUENTIAL = [
    {"kind": "sequential"},
    {"kind": "sequential", "combine": "mean", "alpha": 0.2},
    {"kind": "sequential", "metrics": ["request-duration"], "latency_bounds_ms": [60.0, 250.0, 5000.0]},
    {"kind": "sequential", "metrics": ["request-success-rate"], "alpha": 0.3},
]


@pytest.mark.parametrize("spec", SEQUENTIAL, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("hist", ["both", "canary", "none"])
def test_sequential_batch_is_the_scalar_run_for_run(spec, hist):
    judge = make_judge(SequentialSpec.model_validate(spec))
    rejected = check_contract(judge, seed=len(str(spec)) + len(hist), runs=600, hist=hist, exact=True)
    if ERRORS in judge.signals or hist == "both":  # else it sees no events: no rejection
        assert rejected > 0  # the random runs reach both answers


def test_sequential_without_signals_still_answers():
    judge = make_judge(SequentialSpec(kind="sequential"), signals=())
    check_contract(judge, seed=3, runs=50, exact=True)


def test_a_run_is_judged_alike_alone_and_among_others():
    """Bit for bit: the batch pass works run by run (no sum across runs)."""
    judge = make_judge(SequentialSpec(kind="sequential"))
    counters = random_counters(np.random.default_rng(5), 300, 30)
    big, alone = judge.batch_state(300), judge.batch_state(1)
    for k in (5, 12, 30):
        data = batch_at(counters, k, k * SCRAPE, "both")
        a = judge.judge_batch(big, np.arange(300), data)
        b = judge.judge_batch(alone, np.array([0]), data.take(np.array([7])))
        assert a.at(7) == b.at(0)
        x, y = judge.state_row(big, 7), judge.state_row(alone, 0)
        assert same(x, y) and x.log_m == y.log_m


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "msprt"},
        {"kind": "msprt", "one_sided": False, "min_failures": 0, "alpha": 0.2},
        {"kind": "group-sequential", "max_canary_requests": 20000.0},
        {"kind": "sprt", "alpha": 0.1},
        {"kind": "naive"},
        {"kind": "bayes"},
        # a prior with an infinite density at 0: posterior sums of NaN, kept as they were
        {"kind": "bayes", "prior_a": 0.5, "delta": 0.001, "probability": 0.9},
    ],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_other_judges_batch_is_the_scalar_run_for_run(spec):
    judge = make_judge(TypeAdapter(JudgeSpec).validate_python(spec))
    assert check_contract(judge, seed=11, runs=300) > 0


KAYENTA_SLIDING = {
    "step": 60,
    "lookback": 600,
    "metrics": [
        {"name": "errors", "analysisConfigurations": {"canary": {"direction": "increase"}}},
        {
            "name": "p99",
            "query": "request-duration",
            "analysisConfigurations": {"canary": {"direction": "increase", "outliers": {"strategy": "remove"}}},
        },
        {
            "name": "sr",
            "query": "request-success-rate",
            "analysisConfigurations": {"canary": {"nanStrategy": "replace"}},
        },
    ],
}


@pytest.mark.parametrize("hist", ["both", "none"])
def test_kayenta_sliding_window_batch_is_the_scalar_run_for_run(hist):
    """Kayenta's batch builds every run's series at once: a sliding window, outliers
    removed, NaN replaced, latency without histograms."""
    judge = make_judge(KayentaSpec.model_validate(KAYENTA_SLIDING))
    check_contract(judge, seed=23, runs=80, slots=50, hist=hist, exact=True, exact_detail=True)


def test_kayenta_batch_is_the_scalar_run_for_run():
    spec = KayentaSpec.model_validate(
        {
            "step": 60,
            "metrics": [
                {"name": "errors", "analysisConfigurations": {"canary": {"direction": "increase"}}},
                {
                    "name": "p99",
                    "query": "request-duration",
                    "analysisConfigurations": {"canary": {"direction": "increase"}},
                },
            ],
        }
    )
    assert check_contract(make_judge(spec), seed=13, runs=120, exact=True, exact_detail=True) > 0


def test_the_default_batch_pass_loops_over_the_scalar_judge():
    """A judge without a vectorised pass gets one from ``RowByRow``."""

    class Counting(RowByRow):
        kind = "counting"
        needs_latency = False
        signals = frozenset({ERRORS, LATENCY})

        def initial_state(self) -> int:
            return 0

        def judge(self, state, data):
            seen = state + 1
            verdict = Verdict.FAIL if data.canary.errors.sum() > data.primary.errors.sum() else Verdict.PASS
            return seen, Judgement(verdict, reject=verdict == Verdict.FAIL, detail={"calls": seen})

    check_contract(Counting(), seed=17, runs=60)


def test_judge_batch_rows_and_take_are_the_runs_data():
    c = random_counters(np.random.default_rng(19), 20, 10)
    data = batch_at(c, 8, 120.0, "both")
    rows = np.array([4, 1, 17])
    part = data.take(rows)
    for j, r in enumerate(rows):
        a, b = part.row(j), data.row(int(r))
        assert a.t == b.t == 120.0 and a.scrape_s == SCRAPE and a.bounds_ms == BOUNDS
        for x, y in [(a.canary, b.canary), (a.primary, b.primary)]:
            assert np.array_equal(x.requests, y.requests) and np.array_equal(x.errors, y.errors)
            assert np.array_equal(x.hist, y.hist)
        assert np.array_equal(a.canary.requests, c.requests[r, :8, 1])
        assert np.array_equal(a.primary.hist, c.hist[r, :8, 0])
    one = JudgeBatch.of(data.row(3))
    assert one.size == 1 and np.array_equal(one.canary_hist[0], data.canary_hist[3])


# --- the world's side: Telemetry.judge_batch ------------------------------------------------


def telemetry(rng: np.random.Generator, runs: int, lag: float, lost: float, primary_histogram: bool) -> Telemetry:
    slots = 30
    missing = rng.random((runs, slots + 10)) < lost if lost else None
    tel = Telemetry(runs, slots * SCRAPE, SCRAPE, lag, missing, BOUNDS, primary_histogram=primary_histogram)
    c = random_counters(rng, runs, slots)
    tel.add(
        np.arange(runs),
        np.arange(slots),
        c.requests,  # version axis: PRIMARY, CANARY
        c.errors,
        c.hist[:, :, CANARY],
        c.hist[:, :, PRIMARY] if primary_histogram else None,
        unique=True,
    )
    return tel


@pytest.mark.parametrize("lost", [0.0, 0.3])
@pytest.mark.parametrize("histograms", [True, False])
@pytest.mark.parametrize("primary_histogram", [True, False])
def test_telemetry_judge_batch_is_judge_data_run_by_run(lost, histograms, primary_histogram):
    rng = np.random.default_rng(int(lost * 10) + 2 * histograms + primary_histogram)
    tel = telemetry(rng, 40, lag=20.0, lost=lost, primary_histogram=primary_histogram)
    for t in (0.0, 10.0, 50.0, 200.0, 460.0, 10_000.0):
        group = rng.permutation(40)[:25]
        batch = tel.judge_batch(group, t, histograms)
        assert batch.t == t and batch.scrape_s == SCRAPE and batch.bounds_ms == BOUNDS
        for i, r in enumerate(group):
            got, want = batch.row(i), tel.judge_data(int(r), t, histograms)
            for x, y in [(got.canary, want.canary), (got.primary, want.primary)]:
                assert np.array_equal(x.requests, y.requests) and np.array_equal(x.errors, y.errors)
                assert (x.hist is None) == (y.hist is None)
                if x.hist is not None:
                    assert np.array_equal(x.hist, y.hist)
        assert not batch.canary_requests.flags.writeable  # judges must not write the world's counters


@pytest.mark.parametrize("kind", ["sequential", "msprt", "sprt", "naive", "bayes", "kayenta"])
def test_equal_inputs_give_equal_states(kind):
    """Policies are checked for determinism by comparing states with ``==``: a state
    holding NaN (a test without a prior share yet) must still equal itself (NaN is the one
    ``math.nan`` object, as the scalar judges always held it)."""
    judge = make_judge(TypeAdapter(JudgeSpec).validate_python({"kind": kind}))
    data = batch_at(random_counters(np.random.default_rng(29), 3, 6), 1, SCRAPE, "both").row(0)
    first, second = judge.judge(judge.initial_state(), data), judge.judge(judge.initial_state(), data)
    assert first == second


def test_a_replay_without_bounds_or_histograms_is_judged():
    """A replayed CSV of counters has no histogram bounds: the latency parts see nothing."""
    c = random_counters(np.random.default_rng(31), 40, 12)
    data = JudgeBatch(180.0, SCRAPE, (), c.requests[:, :, 1], c.errors[:, :, 1], c.requests[:, :, 0], c.errors[:, :, 0])
    for spec in (SequentialSpec(kind="sequential"), {"kind": "msprt"}):
        judge = make_judge(spec if not isinstance(spec, dict) else TypeAdapter(JudgeSpec).validate_python(spec))
        out = judge.judge_batch(judge.batch_state(40), np.arange(40), data)
        for i in range(40):
            want = judge.judge(judge.initial_state(), data.row(i))[1]
            assert out.at(i) == want


def test_prior_weights_survive_the_memory_being_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory of prior weights is emptied when it would outgrow its bound: the shares a
    call already knew must then be computed again, not looked up (a worker that had judged
    thousands of shares raised KeyError mid-search; issue 18)."""
    from sim.policies.judges import sequential

    monkeypatch.setattr(sequential, "_WEIGHTS", {})
    monkeypatch.setattr(sequential, "_WEIGHTS_KEPT", 4)
    known = np.array([0.1, 0.2, 0.3])
    first = sequential.prior_log_weights(known, 100.0, 1000.0)
    mixed = np.array([0.3, 0.4, 0.5, 0.1])  # 3 known + 2 new > 4: the memory is emptied
    again = sequential.prior_log_weights(mixed, 100.0, 1000.0)
    assert np.array_equal(again[0], first[2]) and np.array_equal(again[3], first[0])
    assert np.array_equal(again, sequential.mixture_log_weights(mixed, 100.0, 1000.0))


# --- Kayenta's compiled classification against the scalar rules ----------------------------

KAYENTA_LABELS_CONFIGS = [
    {},
    {"direction": "increase", "critical": True},
    {"direction": "decrease", "nan_strategy": "replace", "must_have_data": True},
    {"measure": "cles", "effect_thresholds": (0.4, 0.6), "critical": True, "critical_thresholds": (0.3, 0.7)},
    {"must_have_data": True, "effect_thresholds": (0.9, 1.1), "critical_thresholds": (0.5, 1.5)},
]


def random_step_series(rng: np.random.Generator, n: int, steps: int) -> np.ndarray:
    """(n, steps) values as Kayenta's series hold them: NaN for a step without requests,
    rows of one repeated value, of few values (ties) and of many, zeros, long rows."""
    kind = rng.integers(0, 5, size=n)
    out = np.round(rng.gamma(2.0, 1.5, size=(n, steps)), int(rng.integers(0, 4)))
    out[kind == 0] = rng.choice([0.0, 1.0, 2.5], size=(int((kind == 0).sum()), 1))
    out[kind == 1] = rng.choice([0.0, 0.5, 1.0, 3.0], size=(int((kind == 1).sum()), steps))
    out[kind == 2] *= 100.0
    out[rng.random((n, steps)) < rng.choice([0.0, 0.1, 0.6, 1.0], size=(n, 1))] = np.nan
    return out


@pytest.mark.parametrize("config", KAYENTA_LABELS_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
def test_kayenta_compiled_classify_is_the_scalar_bit_for_bit(config):
    """``kernels.kayenta_classify_rows`` over thousands of random pairs of series (short and
    long, NaN, ties, constants, zeros) gives ``kayenta_rules.classify``'s label, critical
    flag and numbers bit for bit, and leaves exactly the two-constant-series rows (which
    draw noise) to the scalar rule."""
    from sim.policies.judges import kayenta_rules, kernels
    from sim.policies.judges.mannwhitney import interval_quantile

    rng = np.random.default_rng(len(config))
    kwargs = {"direction": "either", "nan_strategy": "remove", "critical": False, "must_have_data": False}
    kwargs.update(config)
    checked, noisy = 0, 0
    for steps, n in [(0, 20), (1, 400), (3, 800), (7, 800), (12, 600), (40, 200), (300, 20)]:
        control, experiment = random_step_series(rng, n, steps), random_step_series(rng, n, steps)
        control[: n // 10] = experiment[: n // 10]  # identical series
        lengths = np.full(n, steps, dtype=np.int64)
        label, fails, numbers = kernels.kayenta_classify_rows(
            control,
            lengths,
            experiment,
            lengths,
            interval_quantile(kayenta_rules.CONFIDENCE),
            kwargs["direction"] in ("increase", "either"),
            kwargs["direction"] in ("decrease", "either"),
            kwargs["nan_strategy"] == "replace",
            kwargs["critical"],
            kwargs["must_have_data"],
            kayenta_rules.TOLERANCE,
            tuple(config.get("effect_thresholds", (1.0, 1.0))),
            tuple(config.get("critical_thresholds", (1.0, 1.0))),
            config.get("measure") == "cles",
        )
        for i in range(n):
            c = kayenta_rules.transform(control[i], kwargs["nan_strategy"])
            e = kayenta_rules.transform(experiment[i], kwargs["nan_strategy"])
            want = kayenta_rules.classify(c, e, np.random.default_rng(i), **kwargs)
            if label[i] == kernels.NEEDS_NOISE:
                assert c.min() == c.max() and e.min() == e.max() and c[0] != e[0], (steps, i)
                noisy += 1
                continue
            assert kernels.KAYENTA_LABELS[label[i]] == want.label, (steps, i, c, e)
            assert fails[i] == want.critical, (steps, i)
            got = numbers[i].tobytes()
            assert got == np.array([want.deviation, want.effect_size, want.lower, want.upper, want.estimate]).tobytes()
            checked += 1
    assert checked > 2000 and noisy > 0


def test_kayenta_scores_of_a_batch_are_the_scalar_scores():
    """``weighted_sum_scores`` (columns) gives ``weighted_sum_score``'s float for random
    labels, critical flags, groups (shared, repeated) and weights (some groups unweighted)."""
    from sim.policies.judges import kayenta_rules, kernels
    from sim.policies.judges.kayenta_rules import MetricClassification

    rng = np.random.default_rng(37)
    layouts = [
        ([["a"], ["b"], ["c"]], {}),
        ([["a"], ["a", "b"], ["b"], ["c"]], {"a": 30.0, "b": 33.3}),
        ([["x"], ["x"], ["y", "y"]], {"x": 100.0}),
        ([["only"]], {"only": 12.5, "absent": 7.0}),
    ]
    for groups, weights in layouts:
        n = 3000
        labels = rng.integers(0, len(kernels.KAYENTA_LABELS), size=(n, len(groups))).astype(np.int8)
        fails = (rng.random((n, len(groups))) < 0.05) & (labels != kernels.LABEL_PASS)
        got = kayenta_rules.weighted_sum_scores(labels, fails, groups, weights)
        for i in range(n):
            results = [
                (MetricClassification(kernels.KAYENTA_LABELS[code], "why", critical=bool(f)), g)
                for code, f, g in zip(labels[i], fails[i], groups, strict=True)
            ]
            assert got[i] == kayenta_rules.weighted_sum_score(results, weights).score, (groups, i)


KAYENTA_BRANCHES = {
    "step": 30,
    "metrics": [
        {
            "name": "errors",
            "groups": ["health", "errors"],
            "analysisConfigurations": {"canary": {"direction": "increase", "critical": True}},
        },
        {
            "name": "p99",
            "query": "request-duration",
            "groups": ["health"],
            "analysisConfigurations": {
                "canary": {"mustHaveData": True, "effectSize": {"measure": "cles", "allowedIncrease": 0.6}}
            },
        },
        {"name": "sr", "query": "request-success-rate", "analysisConfigurations": {"canary": {"muted": True}}},
    ],
    "classifier": {"groupWeights": {"health": 70.0}},
}


@pytest.mark.parametrize("hist", ["both", "canary"])
def test_kayenta_batch_with_critical_cles_and_muted_metrics_is_the_scalar(hist):
    """Groups shared by metrics, a weighted group, a critical metric, CLES with a must-have
    metric and a muted one: the batch's verdicts and states are the scalar's."""
    judge = make_judge(KayentaSpec.model_validate(KAYENTA_BRANCHES))
    assert check_contract(judge, seed=41, runs=150, slots=40, hist=hist, exact=True, exact_detail=True) > 0


def searchsorted_diff(mu: float, zq: float, xs: np.ndarray, ys: np.ndarray) -> float | None:
    """The rank-sum statistic as ``ranksum`` computed it before issue 17 (searchsorted
    counts, ties from sorting both samples): the reference of the merge. None: all tied."""
    nx, ny = len(xs), len(ys)
    shifted = xs - mu
    below = np.searchsorted(ys, shifted, side="left").sum()
    upto = np.searchsorted(ys, shifted, side="right").sum()
    dz = float(below) + 0.5 * float(upto - below) - nx * ny / 2.0
    _, runs = np.unique(np.concatenate((shifted, ys)), return_counts=True)
    ties = 0.0
    for t in runs.astype(float):
        ties += t * t * t - t
    n = nx + ny
    sigma = math.sqrt((nx * ny / 12.0) * ((n + 1.0) - ties / (n * (n - 1.0))))
    if sigma == 0.0:
        return None
    correction = math.copysign(0.5, dz) if dz != 0.0 else 0.0
    return (dz - correction) / sigma - zq


def test_rank_sum_statistic_by_merge_is_the_searchsorted_one():
    """``tied_or_diff`` (one merge, Python and compiled) gives the searchsorted statistic
    bit for bit, and flags exactly the all-tied samples, at the points the root finders
    evaluate (the range's ends) and elsewhere."""
    from sim.policies.judges import kernels, ranksum

    rng = np.random.default_rng(43)
    tied = 0
    for t in range(6000):
        nx, ny = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        if t % 3 == 0:
            xs, ys = rng.choice([0.0, 1.0, 2.0, 2.5], size=nx), rng.choice([0.0, 1.0, 2.0], size=ny)
        else:
            xs, ys = np.round(rng.gamma(2.0, 1.0, nx), 1), np.round(rng.gamma(2.0, 1.0, ny), 1)
        xs, ys = np.sort(xs), np.sort(ys)
        mu = float(rng.choice([0.0, 0.5, xs[0] - ys[-1], xs[-1] - ys[0], rng.normal()]))
        zq = float(rng.choice([0.0, 2.326, -2.326]))
        want = searchsorted_diff(mu, zq, xs, ys)
        for got, all_tied in (ranksum.tied_or_diff(mu, zq, xs, ys), kernels.tied_or_diff(mu, zq, xs, ys)):
            assert all_tied == (want is None), (xs, ys, mu)
            assert all_tied or got == want, (xs, ys, mu)
        tied += want is None
    assert tied > 0
