"""How the world answers each query (sim.world.metrics) and what the CLI says about it.

Every Prometheus query is evaluated over the simulated series; a query the exporter cannot
answer is a load-time warning naming it, never a silent zero; a query Prometheus cannot
parse fails at every evaluation; metrics of other providers need a binding; and
``pdsim run --series`` writes what ``pdsim query`` reads back as the policy read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.limits import SERIES_EPOCH_S
from sim.policies.base import QueryError
from sim.promql.openmetrics import read_openmetrics
from sim.runs.runner import run_one
from sim.world.metrics import metric_plan, metric_warnings
from tests.helpers import invoke, write

ERROR_RATE = (
    'sum(rate(istio_requests_total{reporter="destination",destination_workload="{{ target }}",'
    'response_code=~"5.."}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload="{{ target }}"}[{{ interval }}]))'
)


def _doc(query: str, provider: str = "prometheus", **telemetry: Any) -> dict[str, Any]:
    return {
        "name": "plan",
        "horizon": "20m",
        "traffic": {"rate": "20/s"},
        "telemetry": {"scrape_interval": "15s", **telemetry},
        "policy": {
            "flagger": {
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "maxWeight": 50,
                    "stepWeight": 25,
                    "metrics": [
                        {
                            "name": "errors",
                            "templateRef": {"name": "errors"},
                            "thresholdRange": {"max": 1},
                            "interval": "1m",
                        }
                    ],
                },
                "metricTemplates": {"errors": {"query": query, "provider": {"type": provider}}},
            }
        },
    }


def _plan(query: str, provider: str = "prometheus", **telemetry: Any) -> tuple[Scenario, Any]:
    sc = Scenario.model_validate(_doc(query, provider, **telemetry))
    return sc, scenario_policy(sc)


def test_a_template_query_is_compiled_and_only_its_series_are_simulated() -> None:
    sc, policy = _plan(ERROR_RATE)
    plan = metric_plan(sc, policy)
    assert set(plan.compiled) == {"errors"} and not plan.bound and not plan.warnings
    assert plan.universe is not None
    names = {dict(labels)["__name__"] for labels in plan.universe.labels}
    assert names == {"istio_requests_total"}  # no histogram: nothing reads one


def test_a_metric_the_exporter_does_not_publish_is_a_warning_not_a_zero() -> None:
    sc, policy = _plan("sum(rate(http_server_errors_total[1m]))")
    [warning] = metric_warnings(sc, policy)
    assert "http_server_errors_total" in warning and "does not publish" in warning
    result = run_one(sc, policy, 1, trace=True)
    read = [line["metrics"]["errors"] for line in result.trace if "errors" in line["metrics"]]
    assert read and all(v is None for v in read)  # empty results: Flagger fails the checks
    assert result.record.outcome == "rolled_back"


def test_label_values_no_series_carries_are_a_warning() -> None:
    sc, policy = _plan('sum(rate(istio_requests_total{destination_workload="checkout"}[1m]))')
    [warning] = metric_warnings(sc, policy)
    assert 'destination_workload="checkout"' in warning and "selects none of the series" in warning


def test_a_query_prometheus_cannot_parse_fails_at_every_evaluation() -> None:
    sc, policy = _plan("sum(rate(istio_requests_total[1m])")
    [warning] = metric_warnings(sc, policy)
    assert "not valid PromQL" in warning
    assert isinstance(metric_plan(sc, policy).failing["errors"], QueryError)
    trace = run_one(sc, policy, 1, trace=True).trace
    assert any(isinstance(line["metrics"].get("errors"), dict) for line in trace)


def test_another_providers_metric_needs_a_binding(tmp_path: Path) -> None:
    path = write(tmp_path, "dd.yaml", yaml.safe_dump(_doc("avg:trace.errors{*}", provider="datadog")))
    result = invoke("run", path, "--runs", 2)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "telemetry.metrics" in result.stderr and "datadog" in result.stderr
    bound = _doc("avg:trace.errors{*}", provider="datadog", metrics={"errors": {"signal": "error-rate"}})
    assert invoke("run", write(tmp_path, "bound.yaml", yaml.safe_dump(bound)), "--runs", 2).exit_code == 0


def test_an_unknown_telemetry_provider_is_bad_input(tmp_path: Path) -> None:
    doc = _doc(ERROR_RATE)
    doc["telemetry"]["provider"] = "haproxy"
    path = write(tmp_path, "p.yaml", yaml.safe_dump(doc))
    result = invoke("run", path, "--runs", 2)
    assert result.exit_code == 2 and "telemetry.provider" in result.stderr and "haproxy" in result.stderr


def test_the_cli_prints_the_load_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "w.yaml", yaml.safe_dump(_doc("sum(rate(http_server_errors_total[1m]))")))
    result = invoke("run", path, "--runs", 2)
    assert result.exit_code == 0
    assert "http_server_errors_total" in result.stderr


def test_series_file_gives_back_what_the_policy_read(tmp_path: Path) -> None:
    """``pdsim run --series`` writes run 0's series (epoch 2026-01-01 + t); ``pdsim query``
    over that file at a tick's time gives the value the trace says the policy read."""
    path = write(tmp_path, "s.yaml", yaml.safe_dump(_doc(ERROR_RATE)))
    series, trace = tmp_path / "series.om", tmp_path / "trace.jsonl"
    assert invoke("run", path, "--runs", 1, "--series", series, "--trace", trace).exit_code == 0
    batch = read_openmetrics(series)
    assert batch.times_s.min() >= SERIES_EPOCH_S
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    checked = 0
    for line in lines:
        read = line["metrics"].get("errors")
        if not isinstance(read, float):
            continue
        out = invoke("query", series, line["queries"]["errors"], "--at", f"{line['t']:g}s")
        assert out.exit_code == 0, out.stderr
        [sample] = json.loads(out.stdout)["result"]
        assert float(sample["value"][1]) == pytest.approx(read, rel=1e-12)
        checked += 1
    assert checked >= 2


def test_series_epoch_moves_the_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", yaml.safe_dump(_doc(ERROR_RATE)))
    series = tmp_path / "series.om"
    assert invoke("run", path, "--runs", 1, "--series", series, "--series-epoch", 1000).exit_code == 0
    times = read_openmetrics(series).times_s
    assert 1000 < times.min() < 1000 + 20 * 60
