"""What the world shows a statistical judge (``Observation.versions``).

* Only slots scraped and ingested by the tick (timestamp + lag <= t), as a Prometheus
  query would read them (``Telemetry.span``); a lost scrape's increments arrive with the
  next sample (counters are cumulative).
* The primary's counters are drawn only for judged policies, its histogram only when the
  judge reads latency: plain threshold policies keep their speed.
* A run's record still depends on its seed only (not on its batch-mates).
"""

from __future__ import annotations

import numpy as np

from sim.inputs.scenario import load_scenario
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.policies.judges.base import RowByRow
from sim.runs.runner import run_batch, run_one
from sim.world.controller import World
from tests.helpers import SCENARIOS
from tests.world.test_telemetry import filled


def test_judge_data_holds_only_ingested_slots():
    tel = filled(lag=30.0)
    data = tel.judge_data(0, 120.0, histograms=True)
    # Ingested by t = 120 with a 30 s lag: samples at 0, 15, ..., 90 -> slots 0..6.
    assert len(data.canary.requests) == len(data.primary.requests) == 7
    assert data.canary.requests.tolist() == [2.0**k for k in range(7)]
    assert data.canary.errors.tolist() == list(range(7))
    assert data.primary.requests.tolist() == [7.0] * 7
    assert data.canary.hist.shape == (7, 5) and data.primary.hist is None  # not kept here
    assert not data.canary.requests.flags.writeable  # judges must not write the world's counters
    assert len(tel.judge_data(0, 20.0, histograms=False).canary.requests) == 1


def test_a_lost_scrape_arrives_with_the_next_sample():
    missing = np.zeros((1, 50), dtype=bool)
    missing[0, [3, 4, 8]] = True
    tel = filled(missing=missing)
    got = tel.judge_data(0, 120.0, histograms=False).canary.requests.tolist()  # slots 0..8
    want = [1, 2, 4, 0, 0, 8 + 16 + 32, 64, 128, 0]
    assert got == want  # slot 8's increments wait for the sample at 135 s


def _judged(scenario, judge: dict) -> FlaggerCanary:
    spec = scenario.policy.flagger.model_dump(exclude_unset=True)
    return FlaggerCanary(FlaggerPolicySpec.model_validate({**spec, "judge": judge}), name="judged")


def test_primary_counters_are_drawn_only_for_judges():
    sc = load_scenario(SCENARIOS / "good-release.yaml")
    plain = World(sc, FlaggerCanary(sc.policy.flagger), [1])
    assert not plain.traffic.primary_counts and not plain.traffic.primary_histogram
    errors_only = World(sc, _judged(sc, {"kind": "sprt"}), [1])
    assert errors_only.traffic.primary_counts and not errors_only.traffic.primary_histogram
    latency = World(sc, _judged(sc, {"kind": "sequential"}), [1])
    assert latency.traffic.primary_counts and latency.traffic.primary_histogram


class _Spy(RowByRow):
    """A judge that records what it is shown (a test double: not pure). The world judges
    a class of runs at once (``judge_batch``); ``RowByRow`` shows it each run's data."""

    kind, needs_latency, signals = "spy", True, frozenset({"request-success-rate", "request-duration"})

    def __init__(self) -> None:
        self.seen: list = []

    def initial_state(self) -> int:
        return 0

    def judge(self, state, data):
        from sim.policies.judges.base import Judgement, Verdict

        self.seen.append(data)
        return state + 1, Judgement(Verdict.INCONCLUSIVE)


def test_the_world_shows_the_judge_both_versions_up_to_the_tick():
    sc = load_scenario(SCENARIOS / "good-release.yaml")
    sc = sc.model_copy(update={"telemetry": sc.telemetry.model_copy(update={"lag": 20.0})})
    policy = _judged(sc, {"kind": "sequential"})
    spy = _Spy()
    policy.__dict__["judge"] = spy  # replaces the cached judge
    rec = run_one(sc, policy, 5).record
    assert rec.outcome == "promoted" and spy.seen
    for data in spy.seen:
        assert len(data.canary.requests) == int((data.t - 20.0) // 15.0) + 1
        assert data.primary.requests.sum() > 0 and data.primary.hist is not None
        assert data.canary.hist.sum() == data.canary.requests.sum()
        assert data.primary.hist.sum() == data.primary.requests.sum()


def test_judged_records_depend_on_the_seed_only():
    sc = load_scenario(SCENARIOS / "small-regression.yaml")
    policy = _judged(sc, {"kind": "sequential", "alpha": 0.01})
    batch = run_batch(sc, policy, 6, 99)
    for rec in batch[::2]:
        alone = run_one(sc, policy, rec.seed, run_index=rec.run).record
        assert alone == rec


def test_exact_mode_feeds_the_judge_too():
    sc = load_scenario(SCENARIOS / "error-spike.yaml")
    rec = run_one(sc, _judged(sc, {"kind": "sequential", "alpha": 0.01}), 3, exact=True).record
    assert rec.outcome == "rolled_back" and rec.rollback_reason.startswith("judge sequential")


def test_a_judged_checks_queries_are_evaluated_only_for_a_trace():
    """``PolicyTags.trace_only_queries``: an untraced world leaves the judged checks'
    queries out (nothing reads them), a traced one shows their values, and the records
    are the same either way (a query draws no random number)."""
    sc = load_scenario(SCENARIOS / "error-spike.yaml")
    policy = _judged(sc, {"kind": "sequential", "alpha": 0.01})
    assert {q.name for q in World(sc, policy, [1]).read_queries} == set()
    assert {q.name for q in World(sc, policy, [1], trace=True).read_queries} == {
        "request-success-rate",
        "request-duration",
    }
    plain = FlaggerCanary(sc.policy.flagger)
    assert len(World(sc, plain, [1]).read_queries) == len(plain.queries()) == 2
    for seed in (3, 4, 5):
        traced = run_one(sc, policy, seed, trace=True)
        assert traced.record == run_one(sc, policy, seed).record
        assert any(line.get("metrics", {}).get("request-success-rate") is not None for line in traced.trace)
