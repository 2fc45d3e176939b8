"""Running many rollouts: a run's record is a function of (scenario, policy, run seed).

Whatever the worker count, the chunking or the batch-mates a run is simulated with, its
record is the same, ``run_one(seed=record.seed)`` reproduces it, and every policy meets
the same traffic in run k (common random numbers).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.inputs.policy import build_policy, scenario_policy
from sim.inputs.scenario import PolicySpec, Scenario
from sim.outcomes import COLUMNS, PROMOTED, ROLLED_BACK
from sim.runs.runner import records_frame, run_batch, run_one
from sim.seeds import run_seed
from sim.world.controller import run_rollouts


def analysis(threshold: int = 3, max_weight: int = 30) -> dict:
    return {
        "flagger": {
            "analysis": {
                "interval": "1m",
                "threshold": threshold,
                "maxWeight": max_weight,
                "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
                ],
            }
        }
    }


def scenario(**over) -> Scenario:
    """Noisy enough to use every stream: lost scrapes, cohorts (users), a cohort fault
    that some runs catch and some do not, low traffic so some runs see no requests of a
    cohort at all."""
    doc = {
        "name": "runner",
        "horizon": "40m",
        "after_promotion": "10m",
        "traffic": {
            "rate": 3,
            "users": 2000,
            "skew": 1.1,
            "cohorts": [{"name": "beta", "share": 0.02}, {"name": "android", "share": 0.3}],
        },
        "release": {
            "faults": [
                {"kind": "error_rate", "rate": 0.03, "cohort": "android", "onset": "2m"},
                {"kind": "latency", "shift": "300ms", "onset": "3m", "intermittent": {"period": "2m", "duty": 0.5}},
            ]
        },
        "telemetry": {"missing_scrapes": 0.15, "lag": "10s", "noise": True},
        "policy": analysis(),
    }
    doc.update(over)
    return Scenario.model_validate(doc)


SC = scenario()
POLICY = scenario_policy(SC)


def outcomes(records) -> set[str]:
    return {r.outcome for r in records}


@pytest.fixture(scope="module")
def batch():
    return run_batch(SC, POLICY, 24, seed=5)


def test_batch_runs_are_numbered_and_seeded_in_order(batch):
    assert [r.run for r in batch] == list(range(24))
    assert [r.seed for r in batch] == [run_seed(5, 0, k) for k in range(24)]
    assert {r.scenario for r in batch} == {"runner"}
    assert {r.policy for r in batch} == {POLICY.name}


def test_the_test_scenario_is_not_degenerate(batch):
    """Both outcomes occur and runs differ: the batch-independence tests below would
    prove little otherwise."""
    assert outcomes(batch) >= {PROMOTED, ROLLED_BACK}
    assert len({r.canary_requests for r in batch}) > 1


def test_chunk_size_does_not_change_the_results(batch):
    assert run_batch(SC, POLICY, 24, seed=5, chunk_size=5) == batch
    assert run_batch(SC, POLICY, 24, seed=5, chunk_size=1) == batch


def test_a_run_depends_on_its_seed_only():
    """run_rollouts on ten seeds at once equals each seed alone, and the order of the
    batch does not matter either."""
    seeds = [run_seed(11, 0, k) for k in range(10)]
    together = [r.record for r in run_rollouts(SC, POLICY, seeds)]
    alone = [run_rollouts(SC, POLICY, [s], run_indexes=[k])[0].record for k, s in enumerate(seeds)]
    assert together == alone
    backwards = [r.record for r in run_rollouts(SC, POLICY, seeds[::-1], run_indexes=list(range(9, -1, -1)))]
    assert backwards[::-1] == together


def test_run_one_reproduces_any_record_of_a_batch(batch):
    for rec in (batch[0], batch[7], batch[-1]):
        assert run_one(SC, POLICY, rec.seed, run_index=rec.run).record == rec


def test_run_one_is_deterministic_and_trace_does_not_change_the_record(batch):
    rec = batch[3]
    traced = run_one(SC, POLICY, rec.seed, run_index=rec.run, trace=True)
    assert traced.record == rec
    assert len(traced.trace) == rec.ticks


def test_scenario_index_changes_the_seeds():
    a = run_batch(SC, POLICY, 3, seed=5, scenario_index=0)
    b = run_batch(SC, POLICY, 3, seed=5, scenario_index=1)
    assert [r.seed for r in b] == [run_seed(5, 1, k) for k in range(3)]
    assert [r.seed for r in a] != [r.seed for r in b]


def test_on_chunk_gets_the_chunks_in_order_and_they_make_the_result(batch):
    chunks: list = []
    out = run_batch(SC, POLICY, 24, seed=5, chunk_size=10, on_chunk=chunks.append)
    assert out == batch
    assert [[r.run for r in c] for c in chunks] == [list(range(0, 10)), list(range(10, 20)), list(range(20, 24))]
    assert [r for c in chunks for r in c] == out


def test_workers_do_not_change_the_results_nor_the_chunk_order(batch):
    """Two loky processes, chunks finishing in any order: the same records, and
    ``on_chunk`` still sees the chunks in run order."""
    chunks: list = []
    seen: list[int] = []
    out = run_batch(SC, POLICY, 24, seed=5, workers=2, chunk_size=7, on_chunk=chunks.append, progress=seen.append)
    assert out == batch
    assert [[r.run for r in c] for c in chunks] == [
        list(range(0, 7)),
        list(range(7, 14)),
        list(range(14, 21)),
        list(range(21, 24)),
    ]
    assert [r for c in chunks for r in c] == out
    assert sum(seen) == 24


def test_progress_adds_up_to_the_runs():
    seen: list[int] = []
    run_batch(SC, POLICY, 13, seed=5, chunk_size=4, progress=seen.append)
    assert sum(seen) == 13
    assert all(k > 0 for k in seen)


def test_records_frame_has_one_row_per_run_and_the_record_columns(batch):
    df = records_frame(batch)
    assert len(df) == len(batch)
    assert list(df.columns) == COLUMNS
    assert df["run"].tolist() == list(range(24))
    assert df["seed"].dtype == np.int64
    row = df.iloc[5].to_dict()
    rec = dataclasses.asdict(batch[5])
    for k, v in rec.items():
        assert (v is None and (row[k] is None or row[k] != row[k])) or row[k] == v, k


def test_records_frame_of_nothing_has_the_columns():
    df = records_frame([])
    assert len(df) == 0
    assert list(df.columns) == COLUMNS


def test_record_invariants(batch):
    for r in batch:
        assert r.canary_errors <= r.canary_requests
        assert r.excess_errors - r.excess_errors_after_promotion <= r.canary_errors + 1e-9
        assert r.users_affected <= r.users_exposed
        assert r.false_rollback == (r.outcome == ROLLED_BACK and not r.release_bad)
        assert r.missed == (r.outcome == PROMOTED and r.release_bad)


# --- common random numbers ----------------------------------------------------------------


def policy(threshold: int):
    return build_policy(PolicySpec.model_validate(analysis(threshold=threshold)), name=f"threshold-{threshold}")


def test_policies_that_act_alike_see_identical_runs():
    """Thresholds 2 and 10 on a good release with noise: in every run where both reach
    the same decision at the same time without a failed check, their records agree in
    everything but the policy's name."""
    good = scenario(release={"faults": []}, traffic={"rate": 20, "users": 3000})
    a = run_batch(good, policy(2), 12, seed=9)
    b = run_batch(good, policy(10), 12, seed=9)
    same = [(x, y) for x, y in zip(a, b) if (x.outcome, x.decision_time_s) == (y.outcome, y.decision_time_s)]
    assert len(same) >= 6
    for x, y in same:
        assert dataclasses.replace(x, policy="") == dataclasses.replace(y, policy="")


def test_policies_see_the_same_metrics_until_their_actions_differ():
    """A 5% error release: threshold 2 rolls back first; until that tick both policies
    read exactly the same metric values, because the traffic is the same."""
    bad = scenario(release={"faults": [{"kind": "error_rate", "rate": 0.05}]}, traffic={"rate": 20, "users": 3000})
    for k in range(3):
        seed = run_seed(9, 0, k)
        fast = run_one(bad, policy(2), seed, trace=True)
        slow = run_one(bad, policy(10), seed, trace=True)
        assert fast.record.outcome == slow.record.outcome == ROLLED_BACK
        assert fast.record.decision_time_s < slow.record.decision_time_s
        upto = len(fast.trace)
        assert [line["metrics"] for line in fast.trace] == [line["metrics"] for line in slow.trace[:upto]]
        assert [line["t"] for line in fast.trace] == [line["t"] for line in slow.trace[:upto]]
