"""The speed devices of ``ArgoRollout`` and the AnalysisRun functions keep the contract.

The spec-derived plan (``sim/policies/argo_plan.py``) is built on first use and travels
with the policy to worker processes; states copied without the dataclass ``__init__`` are
ordinary ``ArgoState`` / AnalysisRun values; shared actions equal freshly built ones;
``measure_due`` is ``due_metrics`` then ``record``. Argo's semantics themselves are pinned
by test_argo_conformance.py, test_argo_manual.py, test_argo_providers.py and test_analysis.py.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle

import numpy as np
import pytest

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.plan import desired_pods, manual_called, max_surge, replica_counts
from sim.policies.argo.rollout import ArgoRollout, ArgoState, Run
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.base import Finish, HookCalled, Observation, Rollback, Routes, SetWeights
from sim.policies.judges import JudgeData, VersionSeries
from tests import helpers

TEMPLATE = {
    "metrics": [
        {
            "name": "sr",
            "interval": "1m",
            "successCondition": "result[0] >= 0.95",
            "failureLimit": 1,
            "provider": {"prometheus": {"query": "sum(rate(x[1m]))"}},
        }
    ]
}
STEPS = [{"setWeight": 20}, {"pause": {"duration": "2m"}}, {"setWeight": 60}, {"pause": {}}, {"setWeight": 80}]


def policy(routing: bool = True, judge: dict | None = None) -> ArgoRollout:
    canary: dict = {"steps": STEPS, "analysis": {"templates": [{"templateName": "sr"}], "startingStep": 1}}
    if routing:
        canary["trafficRouting"] = {"istio": {"virtualService": {"name": "vs"}}}
    spec = {"replicas": 4, "strategy": {"canary": canary}, "templates": {"sr": TEMPLATE}}
    if judge is not None:
        spec["judge"] = judge
    return ArgoRollout(ArgoPolicySpec.model_validate(spec))


def drive(
    p: ArgoRollout,
    values: list[float | None],
    webhooks: dict | None = None,
    versions: list[JudgeData | None] | None = None,
) -> list[tuple[ArgoState, tuple]]:
    """The shared driver (tests.helpers.drive) with ``values`` as the metric "sr", one a tick."""
    return helpers.drive(p, [{"sr": v} for v in values], webhooks, versions)


GOOD = [0.99] * 200


def test_constructor_computes_nothing_and_the_plan_is_built_on_first_use():
    p = policy()
    assert "_plan" not in vars(p) and "_analyses" not in vars(p)
    p.step(p.initial_state(), Observation(0.0, 1))
    assert "_plan" in vars(p)


def test_a_used_policy_pickles_and_its_copy_steps_identically():
    p = policy()
    ticks = drive(p, GOOD, webhooks={"manual-promotion": True})
    q = pickle.loads(pickle.dumps(p))
    assert "_plan" in vars(q)
    assert drive(q, GOOD, webhooks={"manual-promotion": True}) == ticks
    assert ticks[-1][0].phase == "Healthy"
    fresh = pickle.loads(pickle.dumps(policy()))  # and one pickled before its plan exists
    assert drive(fresh, GOOD, webhooks={"manual-promotion": True}) == ticks


def test_states_built_by_the_fast_paths_are_ordinary_states():
    ticks = drive(policy(), [0.99] * 6 + [0.5] * 30)
    assert ticks[-1][0].phase == "Degraded"
    for state, _ in ticks:
        twin = ArgoState(**{f.name: getattr(state, f.name) for f in dataclasses.fields(ArgoState)})
        assert state == twin and repr(state) == repr(twin) and _hash(state) == _hash(twin)
        assert copy.deepcopy(state) == state and pickle.loads(pickle.dumps(state)) == state
        for run in state.runs:
            rebuilt = Run(run.kind, dataclasses.replace(run.state))
            assert run == rebuilt and _hash(run) == _hash(rebuilt)
        with pytest.raises(dataclasses.FrozenInstanceError):
            state.phase = "Healthy"  # type: ignore[misc]


def _hash(x: object) -> int | str:
    """hash(x), or the error's message (a measured value is a list, as Argo's []float64)."""
    try:
        return hash(x)
    except TypeError as e:
        return str(e)


def test_step_does_not_mutate_its_arguments_and_an_idle_reconcile_changes_nothing():
    p = policy()
    ticks = drive(p, GOOD[:4])
    state = ticks[-1][0]
    assert state.condition("CanaryPauseStep") is not None  # in the 2m pause, measured at 15s
    before = copy.deepcopy(state)
    t = p.next_tick(state, ticks[-1][0].conditions[0][1] + 15.0)
    new, actions = p.step(state, Observation(t, 5, {"sr": 0.99}, Routes(20)))
    assert state == before
    assert new == state and actions == ()


@pytest.mark.parametrize("routing", [True, False])
def test_the_plans_pods_are_the_replica_arithmetic(routing):
    p = policy(routing)
    c = p.spec.strategy.canary
    for w in list(range(101)) + [150, -5]:
        want = (math.ceil(w * 4 / 100), 4) if routing else replica_counts(4, w, max_surge(c, 4))
        assert desired_pods(p._plan, w) == want


def test_shared_actions_equal_fresh_ones():
    assert manual_called(True) == HookCalled("manual-promotion", "manual", True)
    assert manual_called(False) == HookCalled("manual-promotion", "manual", False)
    odd = manual_called(1)  # a script value that is not a bool is recorded as given
    assert odd == HookCalled("manual-promotion", "manual", 1) and odd.ok == 1  # type: ignore[arg-type]
    ticks = drive(policy(), GOOD[:3])
    first = ticks[0][1]
    assert [type(a).__name__ for a in first][0] == "ScaleUp"
    assert SetWeights(20) in [a for _, acts in ticks for a in acts]


def _versions(t: float, canary_error_rate: float) -> JudgeData:
    k = int(t // 15) + 1
    req = np.full(k, 1000.0)
    return JudgeData(
        t,
        15.0,
        (100.0, 250.0),
        VersionSeries(req, req * canary_error_rate, None),
        VersionSeries(req, req * 0.001, None),
    )


def test_a_judge_that_rejects_aborts_the_canary():
    # The judge is a background analysis that never stops (sim.policies.argo.rollout): its
    # rejection aborts like a failed background run (rollout/canary.go AddAbort: weight 0,
    # Degraded). Counters of a canary failing half its requests against 0.1%.
    p = policy(judge={"kind": "sequential"})
    ticks = drive(p, GOOD[:20], versions=[_versions(15.0 * n, 0.5) for n in range(20)])
    state, actions = ticks[-1]
    assert state.phase == "Degraded" and state.weight == 0
    weights, rollback, finish = actions[-3:]
    assert weights == SetWeights(0) and isinstance(rollback, Rollback) and finish == Finish("Degraded")
    assert "judge sequential rejected the canary" in rollback.reason
    assert dict(state.judge_detail) == p.status(state)["judge"]


# -- AnalysisRun --------------------------------------------------------------------------

SPECS = (
    ar.MetricSpec("a", interval_s=60.0, success_condition="result[0] >= 0.95", failure_limit=1),
    ar.MetricSpec("b", interval_s=30.0, initial_delay_s=45.0, provider="job"),
)


def test_start_run_equals_the_dataclasses_own_instances():
    run = ar.start_run("background", SPECS + (ar.MetricSpec("c", dry_run=True),), 5.0)
    twin = ar.AnalysisRunState(
        name="background",
        phase=ar.PENDING,
        started_at=5.0,
        metrics=(ar.MetricResult("a"), ar.MetricResult("b"), ar.MetricResult("c", dry_run=True)),
    )
    assert run == twin and hash(run) == hash(twin) and repr(run) == repr(twin)
    assert pickle.loads(pickle.dumps(run)) == run and copy.deepcopy(run) == run


def test_measurements_and_results_built_without_init_have_every_field():
    m = ar._measurement(ar.RUNNING, [0.5], 1.0, None, "x", 16.0)
    assert m == ar.Measurement(ar.RUNNING, [0.5], 1.0, None, "x", 16.0)
    assert list(vars(m)) == [f.name for f in dataclasses.fields(ar.Measurement)]
    assert list(ar._NEW_RESULT) == [f.name for f in dataclasses.fields(ar.MetricResult)]


def test_measure_due_is_due_metrics_then_record():
    rng = np.random.default_rng(4)
    answers = [
        [0.99],
        [0.5],
        [],
        ar.ProviderPhase(ar.RUNNING, resume_at=None),
        ar.ProviderPhase(ar.SUCCESSFUL),
        ar.ProviderError("boom"),
    ]
    for _ in range(40):
        state, t = ar.start_run("r", SPECS, 0.0), 0.0
        for _ in range(30):
            t += float(rng.choice([5.0, 15.0, 30.0, 60.0]))
            got = {name: answers[int(rng.integers(len(answers)))] for name in ("a", "b")}
            asked: list[str] = []

            def provide(name: str, asked: list[str] = asked, got: dict = got) -> object:
                asked.append(name)
                return got[name]

            new = ar.measure_due(SPECS, state, t, provide)
            due = ar.due_metrics(SPECS, state, t)
            assert asked == due
            if due:
                assert new == ar.record(SPECS, state, t, {n: got[n] for n in due})
            else:
                assert new is state
            state = new
            if state.completed:
                break
