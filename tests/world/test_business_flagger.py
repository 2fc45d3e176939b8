"""A Flagger A/B Canary judged on the simulated business counters (issue 19, item 5):
the application's ``pdsim_sessions_total`` and ``pdsim_conversions_total`` per pod
(``sim.world.exporters.BUSINESS_SERIES``), scraped like every other series, read by a
MetricTemplate's conversion-rate query with a ``thresholdRange`` min. Header routing
sends the insiders' cohort (50% of traffic) to the canary for 10 iterations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.promql.openmetrics import read_openmetrics
from sim.runs.runner import run_one
from sim.world.controller import run_rollouts
from sim.world.metrics import metric_plan
from tests.helpers import invoke, write

SELECT = 'kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
CONVERSION_RATE = (
    f"100 * sum(rate(pdsim_conversions_total{{{SELECT}}}[{{{{ interval }}}}])) / "
    f"sum(rate(pdsim_sessions_total{{{SELECT}}}[{{{{ interval }}}}]))"
)


def _scenario(lift: float) -> Scenario:
    return Scenario.model_validate(_doc(lift))


def _doc(lift: float) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "ab-conversion",
        "horizon": "30m",
        "traffic": {
            "rate": "100/s",
            "users": 20000,
            "cohorts": [{"name": "insiders", "share": 0.5, "cookie": "canary=always"}],
        },
        "baseline": {"error_rate": 0.001},
        "business": {"conversion": {"rate": 0.1}},
        "telemetry": {"scrape_interval": "15s"},
        "policy": {
            "flagger": {
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "iterations": 10,
                    "match": [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
                    "metrics": [
                        {
                            "name": "conversion-rate",
                            "templateRef": {"name": "conversion-rate"},
                            "thresholdRange": {"min": 8.5},
                            "interval": "1m",
                        }
                    ],
                },
                "metricTemplates": {"conversion-rate": {"query": CONVERSION_RATE}},
            }
        },
    }
    if lift:
        doc["release"] = {"effects": {"conversion": {"lift": lift}}}
    return doc


def test_the_conversion_query_selects_only_the_canary_pods_business_counters():
    sc = _scenario(0.0)
    plan = metric_plan(sc, scenario_policy(sc))
    assert not plan.warnings
    assert plan.universe is not None
    names = {dict(labels)["__name__"] for labels in plan.universe.labels}
    assert names == {"pdsim_sessions_total", "pdsim_conversions_total"}
    pods = {dict(labels)["kubernetes_pod_name"] for labels in plan.universe.labels}
    assert pods and not any("-primary-" in p for p in pods)


def test_a_conversion_drop_is_rolled_back_far_more_often_than_an_a_a_test():
    """A/A: the canary's conversion rate is 10% (sd of a 1m window about 0.55 points at
    3000 sessions), so a check below 8.5 is rare; at -30% (7%) nearly every check fails."""
    runs = 40
    outcomes = {}
    for lift in (0.0, -0.3):
        sc = _scenario(lift)
        records = [r.record for r in run_rollouts(sc, scenario_policy(sc), list(range(1, runs + 1)))]
        outcomes[lift] = np.mean([r.outcome == "rolled_back" for r in records])
        assert all(r.sessions is not None and r.sessions > 0 for r in records)
    assert outcomes[-0.3] >= 0.9
    assert outcomes[0.0] <= 0.2


def test_the_series_hold_the_business_counters_per_pod():
    sc = _scenario(-0.3)
    result = run_one(sc, scenario_policy(sc), 5, series=True)
    assert result.series is not None
    labels = [dict(x) for x in result.series.labels]
    sessions = [i for i, x in enumerate(labels) if x["__name__"] == "pdsim_sessions_total"]
    assert sessions
    values = result.series.values[0][:, sessions]
    present = result.series.present[0][:, sessions]
    last = values[present].max()
    assert last > 0  # the canary's sessions are counted and scraped


def test_pdsim_run_series_writes_the_business_counters_the_policy_read(tmp_path: Path) -> None:
    """``pdsim run --series`` writes the business counters; ``pdsim query`` over the file
    at a tick's time gives back the conversion rate the trace says the canary read."""
    path = write(tmp_path, "ab.yaml", yaml.safe_dump(_doc(-0.3)))
    series, trace = tmp_path / "series.om", tmp_path / "trace.jsonl"
    assert invoke("run", path, "--runs", 1, "--series", series, "--trace", trace).exit_code == 0
    names = {dict(labels)["__name__"] for labels in read_openmetrics(series).labels}
    assert names == {"pdsim_sessions_total", "pdsim_conversions_total"}
    checked = 0
    for line in (json.loads(x) for x in trace.read_text().splitlines()):
        read = line["metrics"].get("conversion-rate")
        if not isinstance(read, float):
            continue
        out = invoke("query", series, line["queries"]["conversion-rate"], "--at", f"{line['t']:g}s")
        assert out.exit_code == 0, out.stderr
        [sample] = json.loads(out.stdout)["result"]
        assert float(sample["value"][1]) == pytest.approx(read, rel=1e-12)
        checked += 1
    assert checked >= 2
