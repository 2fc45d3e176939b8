"""``pdsim replay`` with an Argo Rollouts policy.

The expected decisions are derived from argoproj/argo-rollouts (commit 9f8d111d), as in
tests/policies/test_argo_conformance.py, not by running the policy:

* the first reconcile of the new revision applies step 0 at once; with the canary
  available (no ``ready:canary`` rows: ready) a ``setWeight`` step completes in the same
  instant (``rollout/canary.go`` ``completedCurrentCanaryStep``);
* a ``pause: {duration}`` step expires at its start + duration (``rollout/pause.go``
  ``CompletedCanaryPauseStep``, requeued by ``checkEnqueueRolloutDuringWait``);
* the background run exists from ``startingStep`` on (``BeforeStartingStep``), measures
  when it is created and then every ``interval`` (``analysis/analysis.go``
  ``generateMetricTasks``); each tick reads the latest recorded row at or before it;
* a metric fails when ``failed > failureLimit`` (cumulative), the run fails, the rollout
  aborts: weight 0, step index 0, Degraded (``rollout/analysis.go``
  ``reconcileBackgroundAnalysisRun``, ``rollout/canary.go`` ``syncRolloutStatusCanary``);
* an empty value is an empty vector: ``result[0]`` is an Error, retried 10 s later, the
  5th consecutive one is an Error of the run (``DefaultErrorRetryInterval``,
  ``DefaultConsecutiveErrorLimit`` 4);
* a ``webhook:manual-promotion,pass`` row is ``kubectl argo rollouts promote``: it
  completes a ``pause: {}`` step (``promote.go`` clears the pause condition;
  ``CompletedCanaryPauseStep``: controllerPause and no condition) or the blue/green
  pause with ``autoPromotionEnabled: false`` (``CompletedBlueGreenPause``). The replay
  keeps the latest row of a key, so a promotion meant once is a ``pass`` row followed
  by a ``fail`` row at the next resync (15 s).

Only decisions are compared here (time, step index, weights, AnalysisRun counters): the
rollout phase during timed pauses is a known disagreement pinned in the conformance suite.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sim.cli import cli
from sim.inputs.policy import load_policy
from sim.runs.replay import load_observations, replay
from tests.helpers import POLICY_FILE, cli_runner

POLICY = textwrap.dedent("""\
    argo:
      replicas: 1
      strategy:
        canary:
          canaryService: rollouts-demo-canary
          stableService: rollouts-demo-stable
          trafficRouting:
            istio:
              virtualService: {name: rollouts-demo-vsvc}
          analysis:
            startingStep: 1
            templates:
              - templateName: success-rate
          steps:
            - setWeight: 20
            - pause: {duration: 2m}
            - setWeight: 40
            - pause: {duration: 2m}
            - setWeight: 60
            - pause: {duration: 2m}
            - setWeight: 80
            - pause: {duration: 2m}
      templates:
        success-rate:
          metrics:
            - name: success-rate
              interval: 1m
              failureLimit: 1
              successCondition: result[0] >= 0.95
              provider:
                prometheus:
                  address: http://prometheus.istio-system:9090
                  query: |
                    sum(irate(istio_requests_total{destination_service=~"demo-canary",response_code!~"5.*"}[1m]))
                    /
                    sum(irate(istio_requests_total{destination_service=~"demo-canary"}[1m]))
    """)

MANUAL = textwrap.dedent("""\
    argo:
      strategy:
        canary:
          trafficRouting:
            istio:
              virtualService: {name: rollouts-demo-vsvc}
          steps:
            - setWeight: 20
            - pause: {}
            - setWeight: 50
            - pause: {}
            - setWeight: 80
    """)

BLUE_GREEN = textwrap.dedent("""\
    argo:
      strategy:
        blueGreen:
          activeService: rollouts-demo-active
          previewService: rollouts-demo-preview
          autoPromotionEnabled: false
          prePromotionAnalysis:
            templates:
              - templateName: smoke
      templates:
        smoke:
          metrics:
            - name: success-rate
              successCondition: result[0] >= 0.95
              provider:
                prometheus:
                  query: sum(rate(http_requests_total{code!~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
    """)

#: Columns compared: a row per change of (step, weight, routed weight, runs).
FIELDS = ("step_index", "canary_weight", "routed_weight", "analysis_runs")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def series(tmp_path: Path, rows: list[str], name: str = "obs.csv") -> Path:
    return write(tmp_path, name, "t,metric,value\n" + "\n".join(rows) + "\n")


def success_rate(until: int, value_at) -> list[str]:
    """A row every 15 s from 0 to ``until``: ``value_at(t)`` ('' for no data)."""
    return [f"{t},success-rate,{value_at(t)}" for t in range(0, until + 1, 15)]


def changes(trace: list[dict]) -> list[tuple]:
    """(t, step, weight, routed weight, runs) at every change; runs as ``kind: phase
    c/s/f/e/ce`` (one metric per run here)."""
    out: list[tuple] = []
    for line in trace:
        runs = {
            k: f"{r['phase']} c{r['count']} s{r['successful']} f{r['failed']} e{r['error']} ce{r['consecutive_error']}"
            for k, r in line["analysis_runs"].items()
        }
        key = (line["t"], line["step_index"], line["canary_weight"], line["routed_weight"], runs)
        if not out or key[1:] != out[-1][1:]:
            out.append(key)
    return out


def test_success_ratio_drop_mid_ramp_aborts_at_300(tmp_path: Path) -> None:
    """0.99 until 195 s, 0.90 from 210 s. The run (startingStep 1) starts at 0 with step 1:
    passes at 0, 60, 120, 180; the pauses expire at 120 (-> setWeight 40, step 3) and 240
    (-> setWeight 60, step 5). The measurement at 240 reads the 240 s row (0.90): failed 1;
    at 300 failed 2 > failureLimit 1 -> Failed -> abort at 300 from step 5 at weight 60."""
    policy = load_policy([write(tmp_path, "policy.yaml", POLICY)])
    obs = load_observations(series(tmp_path, success_rate(600, lambda t: 0.99 if t < 210 else 0.90)))
    result = replay(policy, obs)
    assert changes(result.trace) == [
        (0.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e0 ce0"}),
        (60.0, 1, 20, 20.0, {"background": "Running c2 s2 f0 e0 ce0"}),
        (120.0, 3, 40, 40.0, {"background": "Running c3 s3 f0 e0 ce0"}),
        (180.0, 3, 40, 40.0, {"background": "Running c4 s4 f0 e0 ce0"}),
        (240.0, 5, 60, 60.0, {"background": "Running c5 s4 f1 e0 ce0"}),
        (300.0, 0, 0, 0.0, {"background": "Failed c6 s4 f2 e0 ce0"}),
    ]
    assert (result.decision, result.decision_time_s, result.final_phase) == ("rolled_back", 300.0, "Degraded")
    assert result.rollback_reason == "background analysis phase failed"
    aborted = result.trace[-1]
    assert [a["action"] for a in aborted["actions"]] == ["set_weights", "rollback", "finish"]
    assert aborted["metrics"] == {"success-rate": 0.90}


def test_trace_lines_only_on_change(tmp_path: Path) -> None:
    """As in ``pdsim run --trace``, an Argo policy's replay trace gets a line when the
    status changed or something other than a webhook call was done, not at every resync."""
    policy = load_policy([write(tmp_path, "policy.yaml", POLICY)])
    obs = load_observations(series(tmp_path, success_rate(600, lambda t: 0.99 if t < 210 else 0.90)))
    result = replay(policy, obs)
    assert len(result.trace) < result.ticks
    for before, line in zip(result.trace, result.trace[1:]):
        acted = any(a["action"] != "webhook" for a in line["actions"])
        status = {
            k: v for k, v in line.items() if k not in ("t", "tick", "routed_weight", "actions", "metrics", "event")
        }
        assert acted or any(before.get(k) != v for k, v in status.items()), line


def test_empty_rows_are_errors_retried_every_10s(tmp_path: Path) -> None:
    """Empty values from 60 s: result[0] on [] -> Error at 60, 70, 80, 90, 100 (retry
    after 10 s, count stays 2); the 5th consecutive Error (> 4) -> Error -> abort at 100."""
    policy = load_policy([write(tmp_path, "policy.yaml", POLICY)])
    obs = load_observations(series(tmp_path, success_rate(600, lambda t: 0.99 if t < 60 else "")))
    result = replay(policy, obs)
    assert changes(result.trace) == [
        (0.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e0 ce0"}),
        (60.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e1 ce1"}),
        (70.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e2 ce2"}),
        (80.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e3 ce3"}),
        (90.0, 1, 20, 20.0, {"background": "Running c1 s1 f0 e4 ce4"}),
        (100.0, 0, 0, 0.0, {"background": "Error c1 s1 f0 e5 ce5"}),
    ]
    assert (result.decision, result.decision_time_s, result.final_phase) == ("rolled_back", 100.0, "Degraded")


def test_manual_promotion_rows_resume_pauses(tmp_path: Path) -> None:
    """pause {} waits for a promote: one at 300 (pass, then fail at 315) completes step 1,
    setWeight 50, and stops at the next pause {}; the one at 600 completes it, setWeight
    80 completes, all steps done -> promoted at 600."""
    policy = load_policy([write(tmp_path, "manual.yaml", MANUAL)])
    obs = load_observations(
        series(
            tmp_path,
            [
                "300,webhook:manual-promotion,pass",
                "315,webhook:manual-promotion,fail",
                "600,webhook:manual-promotion,pass",
            ],
        )
    )
    result = replay(policy, obs)
    assert changes(result.trace) == [
        (0.0, 1, 20, 20.0, {}),
        (300.0, 3, 50, 50.0, {}),
        (600.0, 5, 100, 0.0, {}),
    ]
    assert (result.decision, result.decision_time_s, result.final_phase) == ("promoted", 600.0, "Healthy")
    # Without a promotion the rollout waits at the first pause until the horizon.
    waiting = replay(policy, obs, horizon_s=299)
    assert (waiting.decision, waiting.final_phase) == ("unfinished", "Paused")
    assert {line["step_index"] for line in waiting.trace} == {1}


def test_blue_green_manual_promotion_row_switches(tmp_path: Path) -> None:
    """autoPromotionEnabled false: the pre-promotion run (one measurement) succeeds at 0, the
    BlueGreenPause holds the switch until the promote at 300, which switches and, with no
    post-promotion analysis, promotes."""
    policy = load_policy([write(tmp_path, "bg.yaml", BLUE_GREEN)])
    obs = load_observations(series(tmp_path, ["0,success-rate,0.99", "300,webhook:manual-promotion,pass"]))
    result = replay(policy, obs)
    assert [
        (line["t"], line["canary_weight"])
        for line in result.trace
        if line["actions"] and any(a["action"] != "webhook" for a in line["actions"])
    ] == [(0.0, 0), (300.0, 100)]
    assert result.trace[0]["analysis_runs"]["pre"]["phase"] == "Successful"
    assert (result.decision, result.decision_time_s, result.final_phase) == ("promoted", 300.0, "Healthy")


def test_cli_replays_an_argo_policy(tmp_path: Path) -> None:
    policy = write(tmp_path, "policy.yaml", POLICY)
    obs = series(tmp_path, success_rate(600, lambda t: 0.99 if t < 210 else 0.90))
    trace = tmp_path / "trace.jsonl"
    result = cli_runner().invoke(
        cli,
        ["replay", str(policy), "--observations", str(obs), "--json", "--trace", str(trace)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["policy"], out["decision"], out["decision_time_s"], out["final_phase"]) == (
        "policy",
        "rolled_back",
        300.0,
        "Degraded",
    )
    assert out["rollback_reason"] == "background analysis phase failed"
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert changes(lines)[-2:] == [
        (240.0, 5, 60, 60.0, {"background": "Running c5 s4 f1 e0 ce0"}),
        (300.0, 0, 0, 0.0, {"background": "Failed c6 s4 f2 e0 ce0"}),
    ]
    text = cli_runner().invoke(cli, ["replay", str(policy), "--observations", str(obs)], catch_exceptions=False)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].startswith("rolled_back at 300s (phase Degraded, ")


# --- vectors in the observations CSV (issue 13, "Clearer messages") --------------------------------------
#
# argoproj/argo-rollouts metricproviders/prometheus/prometheus.go ``processResponse``: a
# ``model.Vector`` result becomes ``[]float64`` (one value per sample) for the conditions, so
# ``result[0]`` reads its first sample and ``result`` alone is a list; an empty vector is ``[]``.
# A recorded number is a one-sample vector; a ``[...]`` cell is a vector of any size.


def test_a_vector_cell_feeds_result_0(tmp_path: Path) -> None:
    """``[0.99, 0.5]``: result[0] = 0.99 passes, as the number 0.99 does; ``[0.5, 0.99]``:
    result[0] = 0.5 fails, as in the ratio-drop case above (abort when failed 2 > 1)."""
    policy = load_policy([write(tmp_path, "policy.yaml", POLICY)])
    number = replay(policy, load_observations(series(tmp_path, success_rate(600, lambda t: 0.99))))
    passing = replay(policy, load_observations(series(tmp_path, success_rate(600, lambda t: '"[0.99, 0.5]"'))))
    assert (passing.decision, passing.decision_time_s) == (number.decision, number.decision_time_s)
    assert changes(passing.trace) == changes(number.trace)
    assert passing.trace[0]["metrics"] == {"success-rate": [0.99, 0.5]}  # the trace shows the vector
    failing = replay(policy, load_observations(series(tmp_path, success_rate(600, lambda t: "[0.5]"))))
    assert (failing.decision, failing.decision_time_s, failing.rollback_reason) == (
        "rolled_back",
        60.0,
        "background analysis phase failed",
    )


def test_an_empty_vector_cell_is_no_data(tmp_path: Path) -> None:
    """``[]`` is the empty vector an empty cell stands for: result[0] is an Error, retried."""
    policy = load_policy([write(tmp_path, "policy.yaml", POLICY)])
    empty = replay(policy, load_observations(series(tmp_path, success_rate(600, lambda t: 0.99 if t < 60 else ""))))
    brackets = replay(
        policy, load_observations(series(tmp_path, success_rate(600, lambda t: 0.99 if t < 60 else "[]")))
    )
    assert changes(brackets.trace) == changes(empty.trace)
    assert (brackets.decision, brackets.decision_time_s) == ("rolled_back", 100.0)


def test_a_condition_on_a_later_sample(tmp_path: Path) -> None:
    """``result[1]`` reads the second sample of a vector; a recorded number is a one-sample
    vector, where ``result[1]`` is out of range: an Error (aborted by the 5th in a row)."""
    text = POLICY.replace("successCondition: result[0] >= 0.95", "successCondition: result[1] >= 0.95")
    policy = load_policy([write(tmp_path, "second.yaml", text)])
    good = replay(policy, load_observations(series(tmp_path, success_rate(1200, lambda t: '"[0.5, 0.97]"'))))
    bad = replay(policy, load_observations(series(tmp_path, success_rate(1200, lambda t: '"[0.99, 0.90]"'))))
    one = replay(policy, load_observations(series(tmp_path, success_rate(1200, lambda t: 0.99))))
    assert (good.decision, good.decision_time_s) == ("promoted", 480.0)
    assert (bad.decision, bad.rollback_reason) == ("rolled_back", "background analysis phase failed")
    assert (one.decision, one.rollback_reason) == ("rolled_back", "background analysis phase error")


def test_a_bad_vector_cell_is_one_line(tmp_path: Path) -> None:
    policy = write(tmp_path, "policy.yaml", POLICY)
    obs = series(tmp_path, ["0,success-rate,0.99", "60,success-rate,[0.99 x]"])
    result = cli_runner().invoke(cli, ["replay", str(policy), "--observations", str(obs)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{obs}:3: value: not a number or a vector like [0.99] (empty for no data, NaN for a NaN sample) (got [0.99 x])"
    ]


def test_a_policy_without_vectors_reads_the_last_sample(tmp_path: Path) -> None:
    """Flagger's Prometheus provider (fluxcd/flagger pkg/metrics/providers/prometheus.go
    ``RunQuery``) keeps the last sample of a vector result: a Flagger policy replays a
    ``[...]`` cell as its last number."""
    policy = load_policy([write(tmp_path, "flagger.yaml", POLICY_FILE)])
    rows = lambda v: [f"{t},request-success-rate,{v}" for t in range(0, 901, 60)]  # noqa: E731
    number = replay(policy, load_observations(series(tmp_path, rows("99.9"))))
    vector = replay(policy, load_observations(series(tmp_path, rows('"[10, 99.9]"'))))
    assert (vector.decision, vector.decision_time_s) == (number.decision, number.decision_time_s) == ("promoted", 420.0)
    assert [line["metrics"] for line in vector.trace] == [line["metrics"] for line in number.trace]
