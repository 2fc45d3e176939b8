"""Class stepping of ``ArgoRollout`` (issue 17): ``observation_keys`` and state equality.

The promise (``sim.policies.base.BatchObservation``): runs that tick together with equal
states, equal routes and readiness and equal key rows get the same step result, a state
``==`` the class's and the same actions. Checked here on random batches: states reached by
stepping many rollouts with random observations (metric values around the conditions'
bounds, NaN, -0.0, Inf, empty and multi-sample vectors, scalars, range vectors, failed
queries), each state also paired with other observations so that equal states meet
different results. A key with a column dropped must break the promise (the check can fail).

Upstream: a measurement's phase is ``utils/evaluate/evaluate.go`` ``EvaluateResult`` of the
Prometheus provider's result (``metricproviders/prometheus/prometheus.go`` ``Run``,
``processResponse``; a failed query is ``MarkMeasurementError``), and only the phase feeds
``analysis/analysis.go`` ``runMeasurements`` (the counters) and ``assessMetricStatus``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import load_scenario
from sim.policies.argo import analysis_run as ar
from sim.policies.argo.class_keys import OUTCOME_CODES, MetricOutcomes
from sim.policies.argo.expr import evaluate_result, vector_condition
from sim.policies.argo.rollout import ArgoRollout
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.base import (
    BatchObservation,
    MatrixResult,
    MetricValue,
    Observation,
    QueryError,
    Readiness,
    Routes,
    ScalarResult,
    SetWeights,
)

ROOT = Path(__file__).resolve().parents[2]
NAN, INF = float("nan"), float("inf")
QUERY = 'sum(rate(istio_requests_total{response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total[1m]))'

#: Samples around the bounds the specs below use (0.90, 0.95, 0.5), and the odd ones.
SAMPLES = (0.5, 0.8, 0.899, 0.9, 0.901, 0.949, 0.95, 0.951, 0.99, 1.0, NAN, -0.0, 0.0, INF, -INF)
#: Results that are not one sample: empty, failed, scalar, several samples, a range vector.
OTHERS: tuple[MetricValue, ...] = (
    (),
    None,
    QueryError("query timed out"),
    QueryError("bad_data: parse error"),
    ScalarResult(0.4),
    ScalarResult(0.6),
    ScalarResult(NAN),
    (0.99, 0.5),
    (0.96, 0.97),
    MatrixResult((0.99,)),
    MatrixResult(()),
)


def _metric(name: str, success: str | None, failure: str | None = None, **fields: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "provider": {"prometheus": {"address": "http://p:9090", "query": QUERY}}}
    if success is not None:
        m["successCondition"] = success
    if failure is not None:
        m["failureCondition"] = failure
    return {**m, **fields}


#: A canary with a background run (both conditions: Inconclusive is possible), a step run
#: on a scalar condition, and one whose condition is not vectorised (decided run by run);
#: limits loose enough that most rollouts reach the step run.
MIXED = {
    "replicas": 2,
    "progressDeadlineSeconds": 300,
    "strategy": {
        "canary": {
            "canaryService": "c",
            "stableService": "s",
            "trafficRouting": {"istio": {"virtualService": {"name": "v"}}},
            "analysis": {"templates": [{"templateName": "bg"}], "startingStep": 1},
            "steps": [
                {"setWeight": 20},
                {"pause": {"duration": "60s"}},
                {"analysis": {"templates": [{"templateName": "gate"}]}},
                {"setWeight": 50},
                {"pause": {}},
            ],
        }
    },
    "templates": {
        "bg": {
            "metrics": [
                _metric(
                    "sr",
                    "result[0] >= 0.95",
                    "result[0] < 0.90 || isNaN(result[0])",
                    interval="20s",
                    inconclusiveLimit=4,
                    failureLimit=6,
                    consecutiveErrorLimit=4,
                )
            ]
        },
        "gate": {
            "metrics": [
                _metric("lat", "result >= 0.5", interval="10s", count=3, failureLimit=2, consecutiveErrorLimit=12),
                _metric(
                    "all", "all(result, {# > 0.9})", interval="10s", count=2, failureLimit=1, consecutiveErrorLimit=12
                ),
            ]
        },
    },
}

#: Blue/green: the same template before and after the switch (one query, two run kinds).
BLUE_GREEN = {
    "replicas": 2,
    "strategy": {
        "blueGreen": {
            "activeService": "a",
            "previewService": "p",
            "autoPromotionEnabled": True,
            "prePromotionAnalysis": {"templates": [{"templateName": "sr"}]},
            "postPromotionAnalysis": {"templates": [{"templateName": "sr"}]},
        }
    },
    "templates": {
        "sr": {
            "metrics": [
                _metric("sr", None, "result[0] < 0.95", interval="15s", count=3, failureLimit=1, inconclusiveLimit=1)
            ]
        }
    },
}


#: An experiment step (issue 16) whose required analysis decides the step, then a step run
#: of the same template (one query, two run kinds).
EXPERIMENT = {
    "replicas": 2,
    "strategy": {
        "canary": {
            "canaryService": "c",
            "stableService": "s",
            "trafficRouting": {"istio": {"virtualService": {"name": "v"}}},
            "steps": [
                {"setWeight": 20},
                {
                    "experiment": {
                        "templates": [{"name": "exp-canary", "specRef": "canary", "weight": 10}],
                        "analyses": [{"name": "sr", "templateName": "sr", "requiredForCompletion": True}],
                    }
                },
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": "sr"}]}},
                {"pause": {}},
            ],
        }
    },
    "templates": {
        "sr": {
            "metrics": [
                _metric("sr", "result[0] >= 0.95", interval="15s", count=3, failureLimit=1, consecutiveErrorLimit=6)
            ]
        }
    },
}


def _scenario_policy() -> ArgoRollout:
    policy = scenario_policy(load_scenario(ROOT / "scenarios" / "argo-canary-steps.yaml"))
    assert isinstance(policy, ArgoRollout)
    return policy


#: The policies, and how long their rollouts are stepped (seconds).
POLICIES: dict[str, tuple[Callable[[], ArgoRollout], float]] = {
    "argo-canary-steps": (_scenario_policy, 1300.0),  # 4 pauses of 5m
    "mixed-canary": (lambda: ArgoRollout(ArgoPolicySpec.model_validate(MIXED)), 600.0),
    "blue-green": (lambda: ArgoRollout(ArgoPolicySpec.model_validate(BLUE_GREEN)), 400.0),
    "experiment": (lambda: ArgoRollout(ArgoPolicySpec.model_validate(EXPERIMENT)), 400.0),
}

READINESS = (
    Readiness(),
    Readiness(ready=False, unready_since=0.0, available=0, startup_s=30.0),
    Readiness(ready=False, unready_since=0.0, available=1, startup_s=30.0),
    Readiness(ready=True, updated=5, available=5, startup_s=30.0),
)


def _random_result(rng: np.random.Generator) -> MetricValue:
    u = rng.random()
    if u < 0.2:
        return OTHERS[rng.integers(len(OTHERS))]
    sample = SAMPLES[rng.integers(len(SAMPLES))]
    return sample if u < 0.3 else (sample,)  # a plain float (a replay) or a vector of one


def _sweep(
    policy: ArgoRollout,
    seed: int,
    keyings: dict[str, Callable[[np.ndarray], np.ndarray]],
    horizon: float,
    *,
    rollouts: int = 80,
) -> dict[str, int]:
    """Step ``rollouts`` rollouts on a 5 s grid with random observations; at each tick
    also step extra runs pairing rollouts' states with other random observations; for
    each way of keying, count the classes (equal state, routes, readiness and key row)
    whose runs' step results differ. Returns those counts and, under "classes", how many
    classes held more than one run (so the check is not vacuous)."""
    rng = np.random.default_rng(seed)
    names = [q.name for q in policy.queries()]
    states = [policy.initial_state() for _ in range(rollouts)]
    routes = [Routes() for _ in range(rollouts)]
    bad = dict.fromkeys(keyings, 0)
    bad["classes"] = 0
    for tick, t in enumerate(np.arange(0.0, horizon, 5.0).tolist(), 1):
        # Each rollout, plus as many runs again on rollouts' states (equal states, other results).
        picks = list(range(rollouts)) + rng.integers(rollouts, size=rollouts).tolist()
        obs = [
            Observation(
                t,
                tick,
                {name: _random_result(rng) for name in names},
                routes[i],
                canary=READINESS[rng.integers(len(READINESS))] if rng.random() < 0.3 else READINESS[0],
            )
            for i in picks
        ]
        stepped = [policy.step(states[i], o) for i, o in zip(picks, obs)]
        keys = policy.observation_keys(BatchObservation.of(t, [o.metrics for o in obs]))
        assert keys is not None and keys.shape[0] == len(picks)
        for label, keying in keyings.items():
            classes: dict[Any, tuple[Any, tuple]] = {}
            sizes: dict[Any, int] = {}
            for j, i in enumerate(picks):
                row = keying(keys)[j].tobytes()
                cls = (states[i], obs[j].routes, obs[j].canary, obs[j].primary, row)
                first = classes.setdefault(cls, stepped[j])
                sizes[cls] = sizes.get(cls, 0) + 1
                if first[0] != stepped[j][0] or first[1] != stepped[j][1]:
                    bad[label] += 1
            if label == "full":
                bad["classes"] += sum(1 for n in sizes.values() if n > 1)
        for i in range(rollouts):
            states[i] = stepped[i][0]
            for a in stepped[i][1]:
                if isinstance(a, SetWeights):
                    routes[i] = Routes(a.canary_weight, a.mirrored, a.matched)
    return bad


@pytest.mark.parametrize("name", list(POLICIES))
def test_runs_with_equal_states_and_keys_step_alike_and_each_key_column_is_needed(name):
    make, horizon = POLICIES[name]
    policy = make()
    assert policy.tags.steps_by_class
    columns = len(policy._outcomes or ())
    assert columns >= 1
    keyings: dict[str, Callable[[np.ndarray], np.ndarray]] = {"full": lambda k: k}
    for c in range(columns):  # a deliberately truncated key: column c left out
        keyings[f"without column {c}"] = lambda k, c=c: np.delete(k, c, axis=1)
    bad = _sweep(policy, 17, keyings, horizon)
    assert bad["full"] == 0, bad
    assert bad["classes"] > 100, "equal states must meet often, or the check says nothing"
    for c in range(columns):
        assert bad[f"without column {c}"] > 0, f"column {c} ({policy._outcomes[c][0]}) is never needed: {bad}"


CONDITIONS = [
    ("result[0] >= 0.95", None),
    (None, "result[0] < 0.90"),
    ("result[0] >= 0.95", "result[0] < 0.90 || isNaN(result[0])"),
    ("result[-1] > 0.9 && !isInf(result[0])", "not (result[0] <= 1)"),
    ("len(result) == 1 && result[0] != 0.95", None),
    ("1 / result[0] < 0", "result[0] * 2 - 1 >= 0.9"),
    ("result[0] == 0 && 2 > 1", "-result[0] > -0.5"),
    ("result >= 0.5", None),  # a scalar's condition: every vector is an Error
    ("all(result, {# > 0.9})", None),  # not vectorised: decided run by run
    ("result[1] > 0", None),  # index out of range on one sample: an Error
    ("result[0]", None),  # not a bool: an Error
    (None, None),  # no condition: Successful
]


@pytest.mark.parametrize(("success", "failure"), CONDITIONS)
def test_outcome_codes_are_evaluate_result_run_by_run(success, failure):
    """utils/evaluate/evaluate.go EvaluateResult (with metricproviders/prometheus
    prometheus.go processResponse: a vector is the list ``result``, a scalar the number,
    a failed query an Error): the array path gives every run the phase the per-run
    evaluation gives it."""
    rng = np.random.default_rng(5)
    results = [_random_result(rng) for _ in range(3000)]
    batch = BatchObservation.of(0.0, [{"m": v} for v in results])
    judged = MetricOutcomes(success, failure)
    codes = judged.codes(batch.metrics["m"], batch.values["m"], batch.single["m"])
    for v, code in zip(results, codes.tolist()):
        got = ar.prometheus_result(v)
        phase = ar.ERROR if isinstance(got, ar.ProviderError) else evaluate_result(got, success, failure)[0]
        assert code == OUTCOME_CODES[phase], (v, phase)
    assert set(codes.tolist()) >= {OUTCOME_CODES[ar.ERROR]}  # the empty vectors and failed queries


def test_the_common_conditions_are_vectorised():
    for success, failure in CONDITIONS[:7]:
        assert MetricOutcomes(success, failure).vectorised, (success, failure)
    for source in ("result >= 0.5", "all(result, {# > 0.9})", "result[1] > 0", "result[0]", "result[0] > 'x'"):
        assert vector_condition(source) is None, source


def test_a_vectorised_condition_reads_minus_zero_and_nan_as_go_does():
    """Go float64: 1/-0.0 is -Inf, NaN compares false (``!=`` true)."""
    v = np.array([-0.0, 0.0, NAN])
    assert vector_condition("1 / result[0] < 0")(v).tolist() == [True, False, False]  # type: ignore[misc]
    assert vector_condition("result[0] != result[0]")(v).tolist() == [False, False, True]  # type: ignore[misc]
    assert math.isnan(v[2])


def test_a_judge_or_kayenta_is_not_keyed():
    spec = {**MIXED, "judge": {"kind": "sequential"}}
    policy = ArgoRollout(ArgoPolicySpec.model_validate(spec))
    assert not policy.tags.steps_by_class
    assert policy.observation_keys(BatchObservation.of(0.0, [{"sr": 0.9, "lat": 0.9, "all": 0.9}])) is None


def test_display_only_fields_are_left_out_of_equality():
    """The measured value and the messages differ between runs whose decisions agree."""
    m1 = ar.Measurement(ar.FAILED, [0.91], 75.0, 75.0, "")
    m2 = ar.Measurement(ar.FAILED, [0.12], 75.0, 75.0, "x")
    assert m1 == m2 and hash(m1) == hash(m2)
    assert ar.Measurement(ar.FAILED, [0.9], 75.0, 75.0) != ar.Measurement(ar.ERROR, [0.9], 75.0, 75.0)
    r1 = ar.MetricResult("sr", ar.RUNNING, 1, failed=1, measurements=(m1,), message="a")
    r2 = ar.MetricResult("sr", ar.RUNNING, 1, failed=1, measurements=(m2,), message="b")
    assert r1 == r2 and hash(r1) == hash(r2)
    assert r1 != ar.MetricResult("sr", ar.RUNNING, 1, failed=1, measurements=(m1, m1))


def test_a_batch_without_a_query_the_policy_reads_is_not_keyed():
    policy = POLICIES["mixed-canary"][0]()
    assert policy.observation_keys(BatchObservation.of(0.0, [{"sr": 0.9, "lat": 0.9}] * 3)) is None


def test_a_policy_without_prometheus_metrics_is_keyed_on_nothing():
    """Job and web measurements read only the scripted webhooks (which the world does not
    key: it steps runs one by one when a scenario scripts them)."""
    spec = {
        "replicas": 1,
        "strategy": {"canary": {"steps": [{"analysis": {"templates": [{"templateName": "job"}]}}]}},
        "templates": {"job": {"metrics": [{"name": "smoke", "provider": {"job": {"spec": {}}}}]}},
    }
    policy = ArgoRollout(ArgoPolicySpec.model_validate(spec))
    assert policy.tags.steps_by_class
    batch = BatchObservation(0.0, 4, {}, {"other": np.zeros(4)}, {"other": np.ones(4, dtype=bool)})
    keys = policy.observation_keys(batch)
    assert keys is not None and keys.shape == (4, 0)


def test_shared_result_objects_are_decided_once_and_alike():
    failed, empty = QueryError("down"), ()
    results = [failed, empty, (0.96,), failed, empty, (0.5,)]
    batch = BatchObservation.of(0.0, [{"m": v} for v in results])
    codes = MetricOutcomes("result[0] >= 0.95", None).codes(results, batch.values["m"], batch.single["m"])
    error, ok, failed_code = OUTCOME_CODES[ar.ERROR], OUTCOME_CODES[ar.SUCCESSFUL], OUTCOME_CODES[ar.FAILED]
    assert codes.tolist() == [error, error, ok, error, error, failed_code]


def test_the_worlds_own_ticks_step_alike_by_class():
    """The observations the world serves (argo-canary-steps: real PromQL results of the
    simulated series, empty vectors while the canary has no traffic yet): stepping one run
    per class gives every run of the class its own one-by-one result."""
    from sim.runs.seedseq import run_seeds
    from sim.world.controller import World

    scenario = load_scenario(ROOT / "scenarios" / "argo-canary-steps.yaml")
    policy = scenario_policy(scenario)
    assert isinstance(policy, ArgoRollout)
    seen: list[tuple[Any, Observation, Any]] = []
    real = policy.step

    def recording(state: Any, obs: Observation) -> tuple[Any, tuple]:
        metrics = {q.name: obs.metrics.get(q.name) for q in policy.queries()}
        out = real(state, obs)
        seen.append((state, Observation(obs.t, obs.tick, metrics, obs.routes, obs.canary, obs.primary), out))
        return out

    policy.step = recording  # type: ignore[method-assign]
    world = World(scenario, policy, run_seeds(3, 0, range(150)))
    world.by_class = False  # every run's own step, to compare the classes' steps with
    world.run()
    del policy.step
    ticks: dict[float, list[tuple[Any, Observation, Any]]] = {}
    for item in seen:
        ticks.setdefault(item[1].t, []).append(item)
    stepped = shared = 0
    for t, items in ticks.items():
        keys = policy.observation_keys(BatchObservation.of(t, [o.metrics for _, o, _ in items]))
        assert keys is not None
        classes: dict[Any, tuple[Any, tuple]] = {}
        for (state, obs, own), row in zip(items, keys):
            cls = (state, obs.routes, obs.canary, obs.primary, row.tobytes())
            if cls not in classes:
                classes[cls] = policy.step(state, obs)
                stepped += 1
            else:
                shared += 1
            assert classes[cls][0] == own[0] and classes[cls][1] == own[1]
    assert shared > 5 * stepped  # most runs share a class's step
