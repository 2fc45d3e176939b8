"""Error rates of the judges, by simulation (issue 5, "Validation").

Each judge is driven directly with simulated counts of a Flagger-like ramp (weights 10 ..
50% a minute apart, ten looks, 1,000 requests/s, 0.1% errors; ``harness``), on fixed
seeds. Claims, each with enough runs to fail when false:

* A/A (a good release): every anytime-valid judge (sequential e-processes, mSPRT, Wald's
  SPRT) and the group-sequential designs roll back at most alpha of the time over the whole
  rollout: the Wilson 95% upper bound is at most alpha + 0.01 over 2,000 runs (slow); the
  reduced version (500 runs, bound alpha + 0.02) still fails for a judge that rejects at
  twice its level.
* The naive fixed-horizon test, repeated at every look, visibly exceeds its alpha.
* A 2x error-rate regression (and a 1.2x latency scale-up for the latency tests) is
  detected with power >= 0.95 by every sequential judge, so a judge that never rejects fails.
* The Bayesian judge has no error guarantee: its A/A rate is measured, not bounded.
* Through the full world (Flagger policy, fast path, telemetry): good-release rolled back
  at most alpha (400 runs; 2,000 under slow), small-regression caught.
"""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from sim.policies.judges import JudgeSpec, make_judge
from sim.stats import wilson_interval
from tests.policies.judges.harness import Ramp, rejection_rate

ERR, LAT = "request-success-rate", "request-duration"
ALPHA = 0.01

#: name -> (judge block, signals, good ramp, bad ramp)
CASES = {
    "sequential-errors": ({"kind": "sequential"}, [ERR], Ramp(), Ramp(relative_risk=2.0)),
    "sequential-latency": ({"kind": "sequential"}, [LAT], Ramp(latency=True), Ramp(latency=True, latency_shift=1.2)),
    "sequential-both": ({"kind": "sequential"}, [ERR, LAT], Ramp(latency=True), Ramp(latency=True, relative_risk=2.0)),
    "sequential-both-mean": (
        {"kind": "sequential", "combine": "mean"},
        [ERR, LAT],
        Ramp(latency=True),
        Ramp(latency=True, latency_shift=1.2),
    ),
    "msprt-errors": ({"kind": "msprt"}, [ERR], Ramp(), Ramp(relative_risk=2.0)),
    "msprt-latency": ({"kind": "msprt"}, [LAT], Ramp(latency=True), Ramp(latency=True, latency_shift=1.2)),
    "sprt": ({"kind": "sprt"}, [ERR], Ramp(), Ramp(relative_risk=2.0)),
    "group-sequential-obf": ({"kind": "group-sequential"}, [ERR], Ramp(), Ramp(relative_risk=2.0)),
    "group-sequential-pocock": (
        {"kind": "group-sequential", "spending": "pocock"},
        [ERR],
        Ramp(),
        Ramp(relative_risk=2.0),
    ),
}


def _judge(block: dict, signals: list[str], alpha: float = ALPHA):
    return make_judge(TypeAdapter(JudgeSpec).validate_python({**block, "alpha": alpha}), signals)


def _check_aa(name: str, runs: int, slack: float) -> None:
    block, signals, good, _ = CASES[name]
    k, n = rejection_rate(_judge(block, signals), good, runs, seed=2024)
    upper = wilson_interval(k, n)[1]
    assert upper <= ALPHA + slack, f"{name}: {k}/{n} false rollbacks, upper bound {upper:.4f}"


def _check_power(name: str, runs: int) -> None:
    block, signals, _, bad = CASES[name]
    k, n = rejection_rate(_judge(block, signals), bad, runs, seed=7)
    assert k / n >= 0.95, f"{name}: detected {k}/{n}"


@pytest.mark.parametrize("name", list(CASES))
def test_false_rollbacks_stay_at_alpha(name):
    _check_aa(name, 500, 0.02)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_false_rollbacks_stay_at_alpha_2000_runs(name):
    _check_aa(name, 2000, 0.01)


@pytest.mark.parametrize("name", list(CASES))
def test_a_regression_is_detected(name):
    _check_power(name, 150)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_a_regression_is_detected_1000_runs(name):
    block, signals, _, bad = CASES[name]
    k, n = rejection_rate(_judge(block, signals), bad, 1000, seed=8)
    assert wilson_interval(k, n)[0] >= 0.95, f"{name}: detected {k}/{n}"


def test_peeking_inflates_the_naive_tests_error_rate():
    # One-sided z test at alpha 0.05 looked at ten times: far above 5% (Armitage et al. 1969).
    k, n = rejection_rate(_judge({"kind": "naive"}, [ERR], alpha=0.05), Ramp(), 500, seed=2024)
    assert wilson_interval(k, n)[0] > 2 * 0.05, f"{k}/{n}"
    # ... while it does detect regressions (it is not merely broken).
    k, n = rejection_rate(_judge({"kind": "naive"}, [ERR], alpha=0.05), Ramp(relative_risk=2.0), 100, seed=7)
    assert k / n >= 0.95


def test_the_same_alpha_looked_at_once_is_honest():
    # The naive test's inflation comes from the looks: a single look holds its level.
    k, n = rejection_rate(_judge({"kind": "naive"}, [ERR], alpha=0.05), Ramp(weights=(50,), ticks=1), 2000, seed=5)
    lo, hi = wilson_interval(k, n)
    assert lo <= 0.05 + 0.005 and hi >= 0.05 - 0.02, f"{k}/{n}"


def test_bayes_detects_and_its_false_rollback_rate_is_only_measured():
    judge = _judge({"kind": "bayes"}, [ERR])
    k, n = rejection_rate(judge, Ramp(relative_risk=2.0), 150, seed=7)
    assert k / n >= 0.95
    # No frequentist guarantee: P(p_c > p_p) > 0.99 checked ten times is not a 1% test.
    k, n = rejection_rate(judge, Ramp(), 300, seed=2024)
    assert k / n > 0.01, f"{k}/{n}: the posterior rule happened to be conservative here"


# --- through the full world (fewer runs) ---------------------------------------------------


def _world(stem: str, judge: dict, runs: int):
    from sim.inputs.scenario import load_scenario
    from sim.policies.flagger.canary import FlaggerCanary
    from sim.policies.flagger.spec import FlaggerPolicySpec
    from sim.runs.runner import run_batch
    from tests.helpers import SCENARIOS

    sc = load_scenario(SCENARIOS / f"{stem}.yaml")
    spec = sc.policy.flagger.model_dump(exclude_unset=True)
    return run_batch(sc, FlaggerCanary(FlaggerPolicySpec.model_validate({**spec, "judge": judge})), runs, sc.seed)


@pytest.mark.parametrize("kind", ["sequential", "msprt", "sprt"])
def test_in_the_world_good_releases_are_rolled_back_at_most_alpha(kind):
    # good-release: 100 requests/s, the Flagger ramp 10..50%, both metrics judged where the
    # judge can; alpha 0.05 so that a broken judge shows within 400 runs.
    records = _world("good-release", {"kind": kind, "alpha": 0.05}, 400)
    k = sum(r.false_rollback for r in records)
    assert wilson_interval(k, len(records))[1] <= 0.05 + 0.01, f"{kind}: {k}/400"


@pytest.mark.parametrize("kind", ["sequential", "msprt", "sprt", "group-sequential"])
def test_in_the_world_a_small_regression_is_caught(kind):
    records = _world(
        "small-regression",
        {"kind": kind, "alpha": 0.01, "max_canary_requests": 90_000}
        if kind == "group-sequential"
        else {"kind": kind, "alpha": 0.01},
        200,
    )
    k = sum(r.outcome == "rolled_back" for r in records)
    assert k / len(records) >= 0.95, f"{kind}: {k}/200"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sequential", "msprt"])
def test_in_the_world_false_rollbacks_2000_runs(kind):
    records = _world("good-release", {"kind": kind, "alpha": 0.01}, 2000)
    k = sum(r.false_rollback for r in records)
    assert wilson_interval(k, len(records))[1] <= 0.01 + 0.01, f"{kind}: {k}/2000"
