"""``pdsim replay``: a policy driven by a recorded metric series (docs/architecture.md section 6).

The expected traces are written down from the rules of fluxcd/flagger (commit 15bd6ad5),
``pkg/controller/scheduler.go`` ``advanceCanary``, as in tests/world/test_flagger_in_world.py:

* tick 1 (t = interval) picks up the new revision: Progressing, weight 0, canary scaled
  up, nothing analysed (``checkCanaryStatus``);
* tick 2 runs the pre-rollout hooks only and steps the weight (the
  ``canaryWeight == 0 && Iterations == 0`` branch, then ``runCanary``);
* from tick 3 the metrics are checked; a failure adds one failed check and holds the
  weight; ``failedChecks >= threshold`` rolls back at the start of the next tick;
* no data (empty result) and NaN fail a check (``pkg/metrics/providers/prometheus.go``:
  ``ErrNoValuesFound``);
* an unready canary makes a tick wait without counting; past ``progressDeadlineSeconds``
  it rolls back (``pkg/canary/deployment_ready.go``);
* a failing confirm-promotion hook holds the promotion in WaitingPromotion, where the
  analysis goes on; a rollback hook that answers rolls back
  (``pkg/controller/scheduler_hooks.go``).

Fixtures in tests/fixtures/replay/ (every 15 s from t = 0 to 600):

* ``error-spike.csv``: request-success-rate 99.9 until t = 135, then 94-96 from 150 s;
  request-duration 200-300 ms throughout;
* ``good-release.csv``: request-success-rate 99.6-99.95, request-duration 200-300 ms.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sim.cli import cli
from sim.errors import InputError
from sim.inputs.policy import load_policy, scenario_policy
from sim.inputs.scenario import load_scenario
from sim.runs.replay import Observations, load_observations, replay
from tests.helpers import REPO, SCENARIOS, TEST_FIXTURES, cli_runner

FIXTURES = TEST_FIXTURES / "replay"
ERROR_SPIKE = FIXTURES / "error-spike.csv"
GOOD = FIXTURES / "good-release.csv"

FIELDS = ("tick", "t", "phase", "canary_weight", "routed_weight", "failed_checks", "iterations")
#: Keys of a trace line, in the order the simulator writes them (sim/world/controller.py).
TRACE_KEYS = [
    "t",
    "tick",
    "phase",
    "canary_weight",
    "failed_checks",
    "iterations",
    "routed_weight",
    "actions",
    "metrics",
    "queries",  # the rendered PromQL of each metric (Flagger's builtins carry their provider's)
    "event",
]

#: The tail every good Flagger canary of these tests shares: weights 10..50, then
#: Promoting at tick 7, Finalising, Succeeded (runCanary, runPromotionTrafficShift).
GOOD_TABLE = [
    (1, 60.0, "Progressing", 0, 0, 0, 0),
    (2, 120.0, "Progressing", 10, 10, 0, 0),
    (3, 180.0, "Progressing", 20, 20, 0, 0),
    (4, 240.0, "Progressing", 30, 30, 0, 0),
    (5, 300.0, "Progressing", 40, 40, 0, 0),
    (6, 360.0, "Progressing", 50, 50, 0, 0),
    (7, 420.0, "Promoting", 50, 50, 0, 0),
    (8, 480.0, "Finalising", 0, 0, 0, 0),
    (9, 540.0, "Succeeded", 0, 0, 0, 0),
]


def table(trace: list[dict]) -> list[tuple]:
    return [tuple(line[k] for k in FIELDS) for line in trace]


@pytest.fixture(scope="module")
def policy():
    """The Flagger policy of scenarios/error-spike.yaml (success rate >= 99, p99 <= 500 ms,
    interval 1m, threshold 5, stepWeight 10, maxWeight 50)."""
    return scenario_policy(load_scenario(SCENARIOS / "error-spike.yaml"))


def write_policy(tmp_path: Path, extra: str = "", threshold: int = 5) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        textwrap.dedent("""\
        flagger:
          analysis:
            interval: 1m
            threshold: {threshold}
            maxWeight: 50
            stepWeight: 10
            metrics:
              - {{name: request-success-rate, thresholdRange: {{min: 99}}, interval: 1m}}
              - {{name: request-duration, thresholdRange: {{max: 500}}, interval: 1m}}
        """).format(threshold=threshold)
        + extra
    )
    return path


def series_with(base: Path, tmp_path: Path, *rows: str, drop_after: float | None = None) -> Path:
    """``base`` plus extra CSV rows (appended: rows are sorted by t, stably, so at equal t
    an appended row wins)."""
    lines = base.read_text().splitlines()
    if drop_after is not None:
        lines = [lines[0]] + [ln for ln in lines[1:] if float(ln.split(",")[0]) <= drop_after]
    path = tmp_path / "obs.csv"
    path.write_text("\n".join(lines + list(rows)) + "\n")
    return path


# --- the recorded series reproduce Flagger's decisions ---------------------------------------


def test_error_spike_series_rolls_back_at_tick_8(policy) -> None:
    """Failed checks count 1..5 at ticks 3-7 with the weight held at 10; tick 8 (t = 480)
    rolls back: SyncStatus{Failed, weight 0}, which zeroes failedChecks too
    (scheduler.go rollback, pkg/canary/status.go syncCanaryStatus)."""
    result = replay(policy, load_observations(ERROR_SPIKE))
    assert table(result.trace) == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 10, 10, 0, 0),
        (3, 180.0, "Progressing", 10, 10, 1, 0),
        (4, 240.0, "Progressing", 10, 10, 2, 0),
        (5, 300.0, "Progressing", 10, 10, 3, 0),
        (6, 360.0, "Progressing", 10, 10, 4, 0),
        (7, 420.0, "Progressing", 10, 10, 5, 0),
        (8, 480.0, "Failed", 0, 0, 0, 0),
    ]
    assert (result.decision, result.decision_time_s, result.final_phase, result.ticks) == (
        "rolled_back",
        480.0,
        "Failed",
        8,
    )
    assert result.rollback_reason == "failed checks threshold reached 5"
    # Each tick reads the latest row at or before it: 180 s reads the 180 s row.
    assert result.trace[2]["metrics"] == {"request-success-rate": 96.0, "request-duration": 212.0}
    assert [a["action"] for a in result.trace[0]["actions"]] == ["scale_up"]
    assert [a["action"] for a in result.trace[-1]["actions"]] == ["set_weights", "rollback", "finish"]


def test_trace_lines_are_the_simulators(policy) -> None:
    """Same keys in the same order as ``pdsim run --trace``; and on the same decisions the
    same table: the deterministic world (noise off) of the error-spike scenario fails
    every check from tick 3, as the recorded series does."""
    from sim.inputs.scenario import parse_scenario
    from sim.runs.runner import run_one
    from sim.yamlio import loads_yaml

    text = (SCENARIOS / "error-spike.yaml").read_text().replace("noise: true", "noise: false")
    scenario = parse_scenario(loads_yaml(text, file="error-spike.yaml"))
    simulated = run_one(scenario, scenario_policy(scenario), 1, trace=True).trace
    replayed = replay(policy, load_observations(ERROR_SPIKE)).trace
    assert [list(line) for line in replayed] == [TRACE_KEYS] * len(replayed)
    assert [list(line) for line in simulated] == [TRACE_KEYS] * len(simulated)
    assert table(replayed) == table(simulated)
    assert [[type(v) for v in line.values()] for line in replayed][: len(simulated)] == [
        [type(v) for v in line.values()] for line in simulated
    ][: len(replayed)]
    assert [line["actions"] for line in replayed] == [line["actions"] for line in simulated]


def test_good_series_promotes(policy) -> None:
    result = replay(policy, load_observations(GOOD))
    assert table(result.trace) == GOOD_TABLE
    assert (result.decision, result.decision_time_s, result.final_phase, result.ticks) == (
        "promoted",
        420.0,
        "Succeeded",
        9,
    )
    assert result.trace[6]["actions"] == [{"action": "promote"}]


def test_horizon_stops_an_undecided_replay(policy, tmp_path: Path) -> None:
    result = replay(policy, load_observations(GOOD), horizon_s=300)
    assert (result.decision, result.decision_time_s, result.final_phase, result.ticks) == (
        "unfinished",
        None,
        "Progressing",
        5,
    )
    # Default horizon: the last row's time (a tick exactly at it still runs).
    short = replay(policy, load_observations(series_with(GOOD, tmp_path, drop_after=360)))
    assert short.ticks == 6 and short.decision == "unfinished"


@pytest.mark.parametrize("value", ["", "NaN", "nan"])
def test_no_data_and_nan_fail_a_check(policy, tmp_path: Path, value: str) -> None:
    """An empty value is no data; NaN is a NaN sample: either fails the check
    (prometheus.go: empty vector or NaN -> ErrNoValuesFound) and holds the weight. A later
    number is read again."""
    # The gap is recorded on the tick itself (the appended row wins over the good one).
    obs = series_with(GOOD, tmp_path, f"180,request-success-rate,{value}")
    result = replay(policy, load_observations(obs))
    assert table(result.trace)[:5] == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 10, 10, 0, 0),
        (3, 180.0, "Progressing", 10, 10, 1, 0),
        (4, 240.0, "Progressing", 20, 20, 1, 0),  # failedChecks is cumulative, never reset
        (5, 300.0, "Progressing", 30, 30, 1, 0),
    ]
    # The trace keeps them apart, in valid JSON: null for no data, "NaN" for a NaN sample.
    assert result.trace[2]["metrics"]["request-success-rate"] == (None if value == "" else "NaN")
    assert result.trace[2]["event"] == "Halt advancement no values found for metric request-success-rate"
    assert result.decision == "promoted"


def test_a_metric_never_recorded_is_no_data(policy, tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("t,metric,value\n" + "".join(f"{t},request-success-rate,99.9\n" for t in range(0, 901, 60)))
    result = replay(policy, load_observations(path))
    assert [line["failed_checks"] for line in result.trace] == [0, 0, 1, 2, 3, 4, 5, 0]
    assert result.trace[2]["metrics"] == {"request-success-rate": 99.9, "request-duration": None}
    assert result.decision == "rolled_back"


def test_unready_canary_waits_without_counting(policy, tmp_path: Path) -> None:
    """``IsCanaryReady`` retriable: the tick returns before the analysis; the bad metrics
    of ticks 2-3 count nothing. Ready again at 200 s, the analysis resumes."""
    obs = series_with(ERROR_SPIKE, tmp_path, "0,ready:canary,false", "200,ready:canary,true")
    result = replay(policy, load_observations(obs))
    assert table(result.trace)[:5] == [
        (1, 60.0, "Progressing", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 0, 0, 0, 0),
        (3, 180.0, "Progressing", 0, 0, 0, 0),
        (4, 240.0, "Progressing", 10, 10, 0, 0),
        (5, 300.0, "Progressing", 10, 10, 1, 0),
    ]
    assert result.trace[1]["event"] == "waiting for the canary to be ready"
    assert (result.decision, result.decision_time_s) == ("rolled_back", 600.0)


def test_unready_canary_past_the_progress_deadline_rolls_back(policy, tmp_path: Path) -> None:
    """progressDeadlineSeconds 600 (default), counted from the canary's scale-up at tick 1
    (t = 60; an unready row before the pods exist does not start the clock earlier):
    ``unready_since + deadline < now`` first holds at t = 720 (deployment_ready.go)."""
    obs = series_with(GOOD, tmp_path, "0,ready:canary,false", "900,ready:canary,false")
    result = replay(policy, load_observations(obs))
    assert [line["phase"] for line in result.trace] == ["Progressing"] * 11 + ["Failed"]
    assert all(line["canary_weight"] == 0 and line["failed_checks"] == 0 for line in result.trace)
    assert (result.decision, result.decision_time_s, result.ticks) == ("rolled_back", 720.0, 12)
    assert result.rollback_reason == "canary progress deadline exceeded"


def test_unready_primary_holds_the_start(policy, tmp_path: Path) -> None:
    """``IsPrimaryReady`` runs before ``checkCanaryStatus``: no new revision is picked up
    while the primary is not ready."""
    obs = series_with(GOOD, tmp_path, "0,ready:primary,false", "100,ready:primary,true")
    result = replay(policy, load_observations(obs))
    assert table(result.trace)[:3] == [
        (1, 60.0, "Initialized", 0, 0, 0, 0),
        (2, 120.0, "Progressing", 0, 0, 0, 0),
        (3, 180.0, "Progressing", 10, 10, 0, 0),
    ]
    assert result.decision == "promoted" and result.decision_time_s == 480.0


def test_observations_from_rows_in_code(policy) -> None:
    """Notebooks and tests can build a series without a file."""
    rows = [(t, "request-success-rate", 99.9) for t in range(0, 601, 60)]
    rows += [(t, "request-duration", 250.0) for t in range(0, 601, 60)]
    result = replay(policy, Observations.from_rows(rows))
    assert table(result.trace) == GOOD_TABLE


# --- webhooks (pkg/controller/scheduler_hooks.go) --------------------------------------------

WEBHOOKS = """\
    webhooks:
      - {name: approve, type: confirm-promotion, url: http://flagger-loadtester/gate/check}
"""
ROLLBACK_HOOK = """\
    webhooks:
      - {name: manual-rollback, type: rollback, url: http://flagger-loadtester/rollback/check}
"""


@pytest.mark.parametrize("key", ["confirm-promotion", "approve"])
def test_failing_confirm_promotion_hook_holds_the_promotion(tmp_path: Path, key: str) -> None:
    """``runCanary`` at maxWeight calls ``runConfirmPromotionHooks``: a failing hook sets
    phase WaitingPromotion (setStatusPhase zeroes ``status.canaryWeight``; the router
    keeps 50) and returns; each later tick re-runs the analysis and asks again. The hook
    passes from 500 s: tick 9 (540 s) promotes. A row may name the hook's type or name
    (pkg/canary/status.go setStatusPhase for the status fields)."""
    policy = load_policy([write_policy(tmp_path, WEBHOOKS)])
    obs = series_with(
        GOOD,
        tmp_path,
        f"0,webhook:{key},fail",
        f"500,webhook:{key},pass",
        "660,request-success-rate,99.9",
        "660,request-duration,250",
    )
    result = replay(policy, load_observations(obs))
    assert table(result.trace)[:6] == GOOD_TABLE[:6]
    assert table(result.trace)[6:] == [
        # setStatusPhase(WaitingPromotion): canaryWeight 0, iterations = analysis.iterations - 1
        # (-1 for a canary); a repeated failure sets iterations to the same value again.
        (7, 420.0, "WaitingPromotion", 0, 50, 0, -1),
        (8, 480.0, "WaitingPromotion", 0, 50, 0, -1),
        (9, 540.0, "Promoting", 0, 50, 0, -1),  # setStatusPhase(Promoting) touches neither
        (10, 600.0, "Finalising", 0, 0, 0, 0),
        (11, 660.0, "Succeeded", 0, 0, 0, 0),
    ]
    hooks = [[a for a in line["actions"] if a["action"] == "webhook"] for line in result.trace]
    assert hooks[6:9] == [
        [{"action": "webhook", "name": "approve", "type": "confirm-promotion", "ok": ok}] for ok in (False, False, True)
    ]
    assert not any(a["action"] == "promote" for line in result.trace[:8] for a in line["actions"])
    assert (result.decision, result.decision_time_s, result.final_phase) == ("promoted", 540.0, "Succeeded")


def test_waiting_promotion_keeps_analysing(tmp_path: Path) -> None:
    """In WaitingPromotion the analysis still runs (advanceCanary) and the failed-checks
    threshold applies to WaitingPromotion as to Progressing: a release that degrades
    while it waits for approval is rolled back."""
    policy = load_policy([write_policy(tmp_path, WEBHOOKS, threshold=2)])
    obs = series_with(
        GOOD,
        tmp_path,
        "0,webhook:confirm-promotion,fail",
        *(f"{t},request-success-rate,90" for t in range(450, 601, 15)),
    )
    result = replay(policy, load_observations(obs))
    rows = [(line["tick"], line["phase"], line["routed_weight"], line["failed_checks"]) for line in result.trace]
    assert rows[6:] == [
        (7, "WaitingPromotion", 50, 0),
        (8, "WaitingPromotion", 50, 1),
        (9, "WaitingPromotion", 50, 2),
        (10, "Failed", 0, 0),
    ]
    assert (result.decision, result.decision_time_s) == ("rolled_back", 600.0)


def test_rollback_hook_that_answers_rolls_back(tmp_path: Path) -> None:
    """``runRollbackHooks``: a rollback hook that returns 2xx rolls back Progressing (no
    row: no rollback signal)."""
    policy = load_policy([write_policy(tmp_path, ROLLBACK_HOOK)])
    quiet = replay(policy, load_observations(GOOD))
    assert quiet.decision == "promoted"
    obs = series_with(GOOD, tmp_path, "0,webhook:rollback,fail", "250,webhook:rollback,pass")
    result = replay(policy, load_observations(obs))
    assert [line["phase"] for line in result.trace] == ["Progressing"] * 4 + ["Failed"]
    assert (result.decision, result.decision_time_s) == ("rolled_back", 300.0)


# --- the CSV reader ---------------------------------------------------------------------------


def test_rows_are_sorted_by_time_stably(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text(
        "t,metric,value\n"
        "120,m,3\n"
        "0,m,1\n"
        "\n"
        "60,m,2\n"
        "60,m,2.5\n"  # same t: the later row wins
        "30,webhook:gate,FAIL\n"
        "90,ready:canary,false\n"
        "100,ready:canary,false\n"
    )
    obs = load_observations(path)
    assert obs.metric("m", -1) is None
    assert [obs.metric("m", t) for t in (0, 59.9, 60, 119, 120, 1e9)] == [1, 1, 2.5, 2.5, 3, 3]
    assert obs.webhooks_at(29) == {} and obs.webhooks_at(30) == {"gate": False}
    assert obs.readiness("canary", 80).ready
    r = obs.readiness("canary", 150)
    assert (r.ready, r.unready_since) == (False, 90.0)
    assert obs.readiness("canary", 150, started_at=95).unready_since == 95.0
    assert obs.readiness("primary", 150).ready
    assert obs.last_t == 120.0


def test_header_columns_in_any_order_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    path.write_bytes("\ufeffmetric,value,t\nm,5,10\n".encode())
    assert load_observations(path).metric("m", 10) == 5.0


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("t,metric\n0,m\n", 1, "header: missing column value"),
        ("time,metric,value\n0,m,1\n", 1, "header: missing column t"),
        ("t,metric,value,extra\n0,m,1,2\n", 1, "header: the header must be exactly t,metric,value"),
        ("", 1, "empty file"),
        ("t,metric,value\n0,m,1\n1m,m,2\n", 3, "t: not a number of seconds (got 1m)"),
        ("t,metric,value\n0,m,1\ninf,m,2\n", 3, "t: must be a finite number"),
        ("t,metric,value\n0,m,1\n\n5,m,abc\n", 4, "value: not a number"),
        ("t,metric,value\n0,m\n", 2, "a row needs 3 fields"),
        (
            "t,metric,value\n0,webhook:confirm-promotion,ok\n",
            2,
            "value: webhook:confirm-promotion must be pass or fail (got ok)",
        ),
        ("t,metric,value\n0,webhook:confirm-promotion,\n", 2, "must be pass or fail (got '')"),
        ("t,metric,value\n0,webhook:,pass\n", 2, "metric: webhook: needs a hook name or type"),
        ("t,metric,value\n0,ready:canary,yes\n", 2, "value: ready:canary must be true or false (got yes)"),
        ("t,metric,value\n0,ready:both,true\n", 2, "metric: must be ready:canary or ready:primary"),
        ("t,metric,value\n0,,1\n", 2, "metric: must name a metric"),
        ('t,metric,value\n0,"m,1\n', 2, "not a valid CSV file"),
    ],
)
def test_bad_csv_names_file_line_and_field(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "obs.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_observations(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^.*missing\.csv:1: cannot read observations"):
        load_observations(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"t,metric,value\n0,m,1\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"bin\.csv:3: not a text observations CSV"):
        load_observations(binary)


def test_replay_does_not_need_simpy_to_load() -> None:
    """The module is pure: importing it (and reading observations) imports no simpy."""
    import subprocess
    import sys

    code = (
        "import sys; import sim.runs.replay as r; r.load_observations(sys.argv[1]); "
        "assert 'simpy' not in sys.modules, 'simpy imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ERROR_SPIKE)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr


# --- pdsim replay -------------------------------------------------------------------------------


def invoke(*args: object):
    return cli_runner().invoke(cli, ["replay", *[str(a) for a in args]], catch_exceptions=False)


def test_cli_prints_the_decision(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    result = invoke(policy, "--observations", ERROR_SPIKE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "rolled_back at 480s (phase Failed, 8 ticks)",
        "reason: failed checks threshold reached 5",
    ]
    assert result.stderr == ""
    good = invoke(policy, "--observations", GOOD)
    assert good.stdout.splitlines() == ["promoted at 420s (phase Succeeded, 9 ticks)"]
    open_ = invoke(policy, "--observations", GOOD, "--horizon", "5m")
    assert open_.stdout.splitlines() == ["unfinished at horizon 300s (phase Progressing, 5 ticks)"]


def test_cli_json(tmp_path: Path) -> None:
    result = invoke(write_policy(tmp_path), "--observations", ERROR_SPIKE, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON document
    assert out == {
        "policy": "policy",
        "decision": "rolled_back",
        "decision_time_s": 480.0,
        "final_phase": "Failed",
        "ticks": 8,
        "rollback_reason": "failed checks threshold reached 5",
    }
    unfinished = json.loads(
        invoke(write_policy(tmp_path), "--observations", GOOD, "--horizon", "200s", "--json").stdout
    )
    assert unfinished["decision"] == "unfinished" and unfinished["decision_time_s"] is None


def test_cli_trace_file_equals_the_library_trace(tmp_path: Path) -> None:
    policy_path = write_policy(tmp_path)
    obs = series_with(ERROR_SPIKE, tmp_path, "180,request-duration,NaN", "240,request-duration,")
    trace = tmp_path / "trace.jsonl"
    result = invoke(policy_path, "--observations", obs, "--trace", trace)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    library = replay(load_policy([policy_path]), load_observations(obs)).trace
    assert len(lines) == len(library) == 8
    for written, expected in zip(lines, library):
        assert list(written) == TRACE_KEYS
        assert written == expected
    # docs/architecture.md's trace contract: "NaN" for NaN, null for no data (never a bare NaN).
    assert lines[2]["metrics"]["request-duration"] == "NaN"
    assert lines[3]["metrics"]["request-duration"] is None
    assert ": NaN" not in trace.read_text()


def test_cli_warns_about_metrics_with_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("t,metric,value\n0,success-rate,99.9\n600,success-rate,99.9\n")
    result = invoke(write_policy(tmp_path), "--observations", path)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"pdsim: warning: {path} has no rows for request-success-rate, request-duration: no data at every tick"
    ]
    assert result.stdout.startswith("rolled_back at 480s")


def test_cli_bad_csv_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("t,metric,value\n0,request-success-rate,99.9\n60,ready:canary,maybe\n")
    result = invoke(write_policy(tmp_path), "--observations", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"{path}:3: value: ready:canary must be true or false (got maybe)"]


@pytest.mark.parametrize("case", ["missing-csv", "bad-policy", "bad-horizon"])
def test_cli_other_bad_input_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    policy = write_policy(tmp_path)
    args: list[object] = [policy, "--observations", GOOD]
    if case == "missing-csv":
        args = [policy, "--observations", tmp_path / "nope.csv"]
    elif case == "bad-policy":
        bad = tmp_path / "bad.yaml"
        bad.write_text("flagger:\n  analysis:\n    interval: 1m\n    stepWeight: 10\n    maxWeight: 500\n")
        args = [bad, "--observations", GOOD]
    else:
        args += ["--horizon", "soon"]
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if case == "missing-csv":
        assert lines[0].startswith(f"{tmp_path / 'nope.csv'}:1: cannot read observations")
    elif case == "bad-policy":
        assert lines[0].startswith(f"{tmp_path / 'bad.yaml'}:5: ")
    else:
        assert lines[0].startswith("pdsim: --horizon: not a duration")
