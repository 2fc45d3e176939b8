"""What the controllers make of a query's result (issue 14, items 2 and 5).

The world evaluates each PromQL query and hands the policy its result (``sim.policies.base``
``MetricValue``): a number, NaN included; None for an empty result; a tuple for an instant
vector; a ``ScalarResult`` for a PromQL scalar; a ``QueryError`` for a failed query. Each
rule below is read from upstream at the commits the conformance tables name (fluxcd/flagger
15bd6ad5, argoproj/argo-rollouts 9f8d111d) and cites the file and function it pins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.expr import evaluate_result
from sim.policies.argo.rollout import ArgoRollout
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.base import MatrixResult, MetricQuery, MetricValue, QueryError, ScalarResult, metric_values
from sim.policies.driver import metric_json, metric_queries, trace_line
from sim.policies.flagger.canary import FlaggerCanary, run_query
from sim.policies.flagger.plan import duration_unit_ms, go_duration_ms
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.promql import Matrix, Result, Scalar, Vector, labels_of
from sim.runs.replay import Observations, load_observations, replay
from tests.helpers import GOOD, drive
from tests.helpers import REQUEST_DURATION as LAT
from tests.helpers import SUCCESS_RATE as SR

NAN, INF = math.nan, math.inf
QUERY = 'sum(rate(istio_requests_total{response_code!~"5.."}[1m])) / sum(rate(istio_requests_total[1m])) * 100'

# -- Flagger ----------------------------------------------------------------------------------


def flagger(
    provider: str = "istio", threshold: int = 5, latency: dict[str, float] | None = None, **metric: Any
) -> FlaggerCanary:
    """A canary checking success rate >= 99 and p99 within ``latency`` (default at most
    500 ms), plus ``metric`` if given."""
    metrics: list[dict[str, Any]] = [
        {"name": SR, "thresholdRange": {"min": 99}, "interval": "1m"},
        {"name": LAT, "thresholdRange": latency or {"max": 500}, "interval": "1m"},
    ]
    if metric:
        metrics.append({"interval": "1m", **metric})
    spec = {
        "provider": provider,
        "analysis": {"interval": "1m", "threshold": threshold, "stepWeight": 10, "maxWeight": 50, "metrics": metrics},
    }
    return FlaggerCanary(FlaggerPolicySpec.model_validate(spec))


def analysed(policy: FlaggerCanary, values: Mapping[str, MetricValue]) -> tuple[int, str]:
    """(failedChecks, event) after the first tick that runs the metric checks (tick 3: tick 1
    scales up, tick 2 is the first step, pre-rollout hooks only) reading ``values``."""
    state, _ = drive(policy, [GOOD, GOOD, {**GOOD, **values}])[-1]
    return state.failed_checks, state.event


def test_the_last_series_of_a_vector_is_the_value():
    """prometheus.go RunQuery: each series of ``data.result`` overwrites ``value``, so the
    last one is compared (a 50% series first does not fail the check, last it does)."""
    assert run_query((50.0, 99.9)) == 99.9
    assert analysed(flagger(), {SR: (50.0, 99.9)}) == (0, "Advance canary weight 20")
    assert analysed(flagger(), {SR: (99.9, 50.0)}) == (1, "Halt advancement request-success-rate 50.00 < 99")


@pytest.mark.parametrize("value", [None, (), NAN, (NAN,), (99.9, NAN)], ids=repr)
def test_empty_and_a_last_nan_are_no_values_found(value):
    """prometheus.go RunQuery: ``value == nil || math.IsNaN(*value)`` -> ErrNoValuesFound;
    scheduler_metrics.go runBuiltinMetricChecks: the check fails (failedChecks + 1 in
    scheduler.go advanceCanary, when runAnalysis returns false)."""
    assert run_query(value) is None
    assert analysed(flagger(), {SR: value}) == (1, "Halt advancement no values found for metric request-success-rate")


def test_a_nan_before_the_last_series_is_overwritten():
    """prometheus.go RunQuery: only the last series' value is tested for NaN."""
    assert run_query((NAN, 99.9)) == 99.9
    assert analysed(flagger(), {SR: (NAN, 99.9)})[0] == 0


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({}, "Prometheus query failed: running query failed: connection refused"),
        ({"name": "errors", "query": QUERY, "thresholdRange": {"max": 1}}, "Prometheus query failed for errors: "),
        (
            {"name": "errors", "templateRef": {"name": "error-rate"}, "thresholdRange": {"max": 1}},
            "Metric query failed for errors: ",
        ),
    ],
    ids=["builtin", "inline-query", "template"],
)
def test_a_failed_query_is_a_failed_check_with_its_error(metric, message):
    """scheduler_metrics.go runBuiltinMetricChecks ("Prometheus query failed: %v", the
    observer wrapping it as "running query failed: %w"; "Prometheus query failed for %s:
    %v" for an inline query) and runMetricChecks ("Metric query failed for %s: %v"):
    an error other than ErrNoValuesFound also returns false, a failed check."""
    policy = flagger(**metric)
    name = metric.get("name", SR)
    failed, event = analysed(policy, {name: QueryError("connection refused")})
    assert failed == 1
    assert event.startswith(message) and event.endswith("connection refused")


def test_failed_queries_count_towards_the_threshold_like_failed_checks():
    """scheduler.go advanceCanary: failedChecks >= threshold rolls back at the next tick,
    whatever made the checks fail (here query errors, then no values)."""
    run = drive(flagger(threshold=2), [GOOD, GOOD, {SR: QueryError("timeout")}, {SR: ()}, GOOD])
    assert [s.failed_checks for s, _ in run[:4]] == [0, 0, 1, 2]
    assert run[-1][0].phase == "Failed"


def test_a_scalar_result_cannot_be_decoded_by_flagger():
    """prometheus.go RunQuery: ``json.Unmarshal`` of ``data.result`` into a list of series
    fails on a scalar's ``[time, "value"]`` ("error unmarshaling result"): a query error, a
    failed check, even for a value that would pass. A plain float (a replay CSV) is a value."""
    read = run_query(ScalarResult(99.9))
    assert isinstance(read, QueryError) and read.message.startswith("error unmarshaling result")
    failed, event = analysed(flagger(), {SR: ScalarResult(99.9)})
    assert failed == 1 and "error unmarshaling result" in event
    assert analysed(flagger(), {SR: 99.9})[0] == 0


@pytest.mark.parametrize(
    ("value", "failed"),
    [(500.0, 0), (500.99, 0), (501.0, 1), (INF, 0), (-INF, 0), (1e13, 0), (9e12, 1)],
)
def test_request_duration_compares_go_durations(value, failed):
    """observers/istio.go GetRequestDuration: ``time.Duration(int64(value)) *
    time.Millisecond``; scheduler_metrics.go runBuiltinMetricChecks: ``val >
    time.Duration(*tr.Max)*time.Millisecond``. int64() truncates (500.99 -> 500 ms, not
    above 500); an infinity converts to MinInt64 on amd64 and MinInt64 * 1e6 wraps to 0 ns;
    1e13 ms is 1e19 ns, past int64, and wraps negative: all pass a maximum."""
    assert analysed(flagger(), {LAT: value})[0] == failed


def test_go_duration_conversion():
    """The arithmetic of the rule above, Go's on amd64 (cvttsd2sq, 64-bit wrap)."""
    assert go_duration_ms(500.99) == 500_000_000
    assert go_duration_ms(-1.5) == -1_000_000  # toward zero
    assert go_duration_ms(INF) == go_duration_ms(-INF) == go_duration_ms(NAN) == 0
    assert go_duration_ms(1e13) == 10**19 - 2**64


def test_request_duration_bounds_are_truncated_too():
    """scheduler_metrics.go runBuiltinMetricChecks: ``time.Duration(*tr.Min)`` truncates
    the bound, so a minimum of 99.9 ms is 99 ms: a 99.5 ms p99 (99 ms) passes it."""
    policy = flagger(latency={"min": 99.9})
    assert analysed(policy, {LAT: 99.5})[0] == 0
    assert analysed(policy, {LAT: 98.9})[0] == 1


def test_http_observer_reads_seconds():
    """observers/factory.go Observer: ``kubernetes`` and ``gatewayapi*`` get HttpObserver,
    whose query returns seconds and http.go GetRequestDuration converts with
    ``int64(value*1000)``; every other observer reads milliseconds."""
    assert duration_unit_ms("kubernetes") == duration_unit_ms("gatewayapi:v1") == 1000.0
    assert duration_unit_ms("istio") == duration_unit_ms("nginx") == duration_unit_ms("linkerd") == 1.0
    policy = flagger(provider="gatewayapi:v1")
    # The builtin as the world evaluates it: with its PromQL (the providers' rendering sets it).
    rendered = MetricQuery(LAT, LAT, 60.0, None, 500.0, query="histogram_quantile(0.99, ...)")
    policy.__dict__["_checks"] = (("builtin", rendered),)
    assert analysed(policy, {LAT: 0.5009})[0] == 0  # int64(500.9) = 500 ms
    assert analysed(policy, {LAT: 0.501})[0] == 1


def test_the_kubernetes_providers_request_duration_is_read_in_seconds():
    """observers/http.go GetRequestDuration: the query returns seconds, converted with
    ``value * 1000`` to ms: 0.1 passes the 500 ms maximum, 100 (100 s) does not, whoever
    supplies the value (the world's query, a replay CSV)."""
    assert analysed(flagger(provider="kubernetes"), {LAT: 0.1}) == (0, "Advance canary iteration 2/10")
    assert analysed(flagger(provider="kubernetes"), {LAT: 100.0})[0] == 1


# -- Argo -------------------------------------------------------------------------------------

SUCCESS = "result[0] >= 0.95"


def measure(value: MetricValue, success: str | None = SUCCESS, failure: str | None = None) -> ar.MetricResult:
    """One measurement of a Prometheus metric whose query returned ``value``."""
    specs = [ar.MetricSpec("sr", interval_s=60, success_condition=success, failure_condition=failure)]
    state = ar.record(specs, ar.start_run("run", specs, 0.0), 0.0, {"sr": ar.prometheus_result(value)})
    return state.result("sr")


@pytest.mark.parametrize("value", [(), None], ids=["empty-vector", "no-data"])
def test_an_empty_vector_makes_result_0_an_error(value):
    """prometheus.go processResponse: an empty vector is ``[]float64{}``; evaluate.go
    EvalCondition: ``result[0]`` is a run-time error, so EvaluateResult returns Error with
    formatEvalError's "metric result is nil or empty"; analysis.go runMeasurements: Error
    and ConsecutiveError + 1, Count unchanged."""
    r = measure(value)
    assert (r.error, r.consecutive_error, r.count) == (1, 1, 0)
    assert r.measurements[-1].phase == "Error"
    assert r.measurements[-1].message == (
        'could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: '
        "no data returned from the metric provider"
    )


def test_nan_is_a_value_that_fails_a_comparison():
    """evaluate.go EvaluateResult: ``NaN >= 0.95`` is false in Go, not an error; with a
    success condition only, failCondition = !successCondition: Failed."""
    r = measure((NAN,))
    assert (r.failed, r.error) == (1, 0)
    assert measure((NAN,), success="isNaN(result[0])").successful == 1  # evaluate.go env: isNaN
    assert measure((NAN,), success=None, failure="result[0] < 0.95").successful == 1


def test_a_failed_query_is_an_error_measurement():
    """prometheus.go Run: an executeQuery error -> metricutil.MarkMeasurementError."""
    r = measure(QueryError("bad_data: parse error"))
    assert (r.error, r.consecutive_error) == (1, 1)
    assert r.measurements[-1].message == "bad_data: parse error"


def test_a_scalar_is_a_number_and_a_vector_a_list():
    """prometheus.go processResponse: ``*model.Scalar`` -> ``float64(value.Value)``;
    ``model.Vector`` -> ``[]float64`` of its samples, in the result's order."""
    assert ar.prometheus_result(ScalarResult(0.97)) == 0.97
    assert ar.prometheus_result((0.97, 0.5)) == [0.97, 0.5]
    assert ar.prometheus_result(None) == ar.prometheus_result(()) == []
    assert ar.prometheus_result(0.97) == [0.97]  # a replay CSV's number: a one-sample vector
    assert measure(ScalarResult(0.97), success="result >= 0.95").successful == 1
    scalar_indexed = measure(ScalarResult(0.97))
    assert scalar_indexed.error == 1
    assert scalar_indexed.measurements[-1].message.startswith('could not evaluate successCondition "result[0]')
    assert measure((0.97, 0.5), success="result[1] >= 0.95").failed == 1


def test_default_and_isnil_see_an_empty_vector_as_not_nil():
    """evaluate.go defaultFunc / isNilFunc: ``isNil`` of processResponse's ``[]float64{}``
    (made, not nil) is false, so ``default(result, [1])[0]`` still indexes the empty list:
    an Error, and ``isNil(result)`` is false."""
    assert evaluate_result([], "default(result, [1.0])[0] >= 0.95", None)[0] == "Error"
    assert evaluate_result([], "isNil(result)", None) == ("Failed", "")
    assert evaluate_result([], "len(result) == 0", None) == ("Successful", "")


def test_an_error_message_names_the_condition_and_the_expression_error():
    """evaluate.go formatEvalError: "could not evaluate <condition> "<expr>": <error>"; the
    success condition is evaluated first."""
    phase, message = evaluate_result([0.9], "result[2] > 1", "result[0] < 0")
    assert phase == "Error"
    assert message.startswith('could not evaluate successCondition "result[2] > 1": ')
    assert "index out of range" in message


# -- the trace --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "vectors", "shown"),
    [
        (99.5, False, 99.5),
        (ScalarResult(0.5), True, 0.5),
        (None, False, None),
        (NAN, False, "NaN"),
        (INF, False, "+Inf"),
        (-INF, False, "-Inf"),
        ((0.5, NAN), True, [0.5, "NaN"]),
        ((0.5, 99.0), False, 99.0),  # what Flagger's RunQuery keeps: the last series
        ((), False, None),
        ((), True, None),  # an empty result, whoever reads it
        (QueryError("timeout"), False, {"error": "timeout"}),
    ],
)
def test_metric_values_in_the_trace_are_valid_json(value, vectors, shown):
    """docs/architecture.md, the trace contract: a number, null for an empty result,
    "NaN" for NaN; a vector as the policy reads it; a failed query as its error."""
    got = metric_json(value, vectors)
    assert got == shown
    json.dumps(got, allow_nan=False)  # never a bare NaN or Infinity


def test_the_trace_line_carries_the_rendered_queries_of_its_metrics():
    """Issue 14 item 5: ``queries`` {name: PromQL} beside ``metrics``; metrics without
    PromQL are left out, and the key is absent when none has any."""
    metrics = {"errors": NAN, SR: 99.0}
    line = trace_line(60.0, 1, {"phase": "Progressing"}, 0.0, (), metrics, "", {"errors": QUERY, "other": "up"})
    assert line["metrics"] == {"errors": "NaN", SR: 99.0}
    assert line["queries"] == {"errors": QUERY}
    assert list(line)[-1] == "event"
    assert "queries" not in trace_line(60.0, 1, {}, 0.0, (), {SR: 99.0}, "", {})


def test_metric_queries_come_from_the_policy():
    policy = flagger(name="errors", query=QUERY, thresholdRange={"max": 1})
    assert metric_queries(policy) == {q.name: q.query for q in policy.queries() if q.query}


def test_replay_hands_the_world_s_results_on_and_traces_them():
    """``pdsim replay`` of observations the world served (``Observations.from_rows``, as
    tests/policies/test_driver.py records them): a failed query, a vector and a scalar reach
    the policy as they came, and the trace shows them as ``metric_json`` does."""
    rows = [(0.0, SR, 99.9), (0.0, LAT, 100.0), (180.0, SR, QueryError("timeout")), (240.0, SR, (50.0, 99.9))]
    rows += [(300.0, SR, ScalarResult(99.9)), (360.0, SR, 99.9)]
    result = replay(flagger(), Observations.from_rows(rows), horizon_s=360.0)
    lines = result.trace[2:6]
    assert [line["metrics"][SR] for line in lines] == [{"error": "timeout"}, 99.9, 99.9, 99.9]
    assert [line["failed_checks"] for line in lines] == [1, 1, 2, 2]
    assert lines[0]["event"] == "Prometheus query failed: running query failed: timeout"
    assert "error unmarshaling result" in lines[2]["event"]


ARGO = {
    "replicas": 1,
    "strategy": {
        "canary": {
            "canaryService": "canary",
            "stableService": "stable",
            "trafficRouting": {"istio": {"virtualService": {"name": "vsvc"}}},
            "steps": [{"setWeight": 20}, {"pause": {}}],
            "analysis": {"templates": [{"templateName": "sr"}]},
        }
    },
    "templates": {
        "sr": {
            "metrics": [
                {
                    "name": "sr",
                    "interval": "60s",
                    "successCondition": SUCCESS,
                    "provider": {"prometheus": {"address": "http://prometheus:9090", "query": QUERY}},
                }
            ]
        }
    },
}


@pytest.mark.parametrize(("cell", "shown", "outcome"), [("NaN", "NaN", "rolled_back"), ("", None, "unfinished")])
def test_a_replay_csv_keeps_nan_and_empty_apart_for_argo(tmp_path, cell, shown, outcome):
    """Issue 14 item 5, replay: the text ``NaN`` is a NaN sample, a value that fails
    ``result[0] >= 0.95`` (evaluate.go EvaluateResult: Failed, the run fails and the rollout
    aborts at once); an empty cell is no data, an empty vector, whose ``result[0]`` is an
    Error (analysis.go runMeasurements: retried 10 s later, no abort before the fifth)."""
    path = tmp_path / "obs.csv"
    path.write_text(f"t,metric,value\n0,sr,0.99\n60,sr,{cell}\n")
    result = replay(ArgoRollout(ArgoPolicySpec.model_validate(ARGO)), load_observations(path), horizon_s=80.0)
    at_60 = next(line for line in result.trace if line["t"] == 60.0)
    assert at_60["metrics"] == {"sr": shown}
    assert at_60["queries"] == {"sr": QUERY}
    assert result.decision == outcome
    errors = [line["analysis_runs"]["background"]["error"] for line in result.trace if line["t"] >= 60.0]
    assert errors == ([0] if cell else [1, 2, 3])  # at 60, 70 and 80


# -- from the engine's result to the policy's value ------------------------------------------


def test_metric_values_from_engine_results():
    """``metric_values``: one value per run of a ``sim.promql`` result. A vector keeps its
    present samples in series order (run 1: empty; NaN stays NaN), a scalar is a
    ``ScalarResult``, a failed run a ``QueryError`` with the engine's message."""
    labels = (labels_of(code="200"), labels_of(code="500"))
    vector = Vector(labels, np.array([[1.0, NAN], [2.0, 3.0], [4.0, 5.0]]), np.array([[1, 1], [0, 0], [0, 1]], bool))
    got = metric_values(Result(vector, np.array([False, False, True]), "many-to-many matching not allowed"))
    assert got[0][0] == 1.0 and math.isnan(got[0][1]) and len(got[0]) == 2
    assert got[1] == ()
    assert got[2] == QueryError("many-to-many matching not allowed")
    scalars = metric_values(Result(Scalar(np.array([0.5, NAN]))))
    assert all(isinstance(v, ScalarResult) for v in scalars) and scalars[0] == 0.5 and math.isnan(scalars[1])


def test_a_matrix_is_flattened_series_by_series():
    """prometheus.go (Argo) processResponse: ``model.Matrix`` -> every sample of every
    series, series after series, as ``result``; prometheus.go (Flagger) RunQuery: a series
    with ``values`` -> ErrMultipleValuesReturned, a query error; no series -> no values."""
    times = np.array([0.0, 15.0])
    values = np.array([[[1.0, 10.0], [2.0, 20.0]], [[0.0, 0.0], [0.0, 0.0]]])  # (R, T, K)
    present = np.array([[[1, 1], [1, 0]], [[0, 0], [0, 0]]], bool)
    got = metric_values(Result(Matrix((labels_of(a="1"), labels_of(a="2")), times, values, present)))
    assert got == [(1.0, 2.0, 10.0), ()] and all(isinstance(v, MatrixResult) for v in got)
    assert ar.prometheus_result(got[0]) == [1.0, 2.0, 10.0]
    assert run_query(got[0]) == QueryError("query returned multiple values")
    assert run_query(got[1]) is None


def test_a_matrix_in_the_trace_and_in_a_replay():
    """A policy that does not read vectors is handed, and traced, a range vector as
    Flagger's RunQuery reads it (ErrMultipleValuesReturned); Argo sees the flat list."""
    matrix = MatrixResult((0.5, 0.7))
    assert metric_json(matrix) == {"error": "query returned multiple values"}
    assert metric_json(matrix, vectors=True) == [0.5, 0.7]
    rows = [(0.0, SR, 99.9), (0.0, LAT, 100.0), (180.0, SR, matrix), (240.0, SR, 99.9)]
    result = replay(flagger(), Observations.from_rows(rows), horizon_s=240.0)
    assert result.trace[2]["failed_checks"] == 1
    assert result.trace[2]["event"] == "Prometheus query failed: running query failed: query returned multiple values"
