"""Flagger webhook calls with ``retries`` and ``timeout``, through the world's scripts.

``pkg/controller/webhook.go`` (fluxcd/flagger 15bd6ad5): ``newHTTPClient`` builds a
go-retryablehttp client (v0.7.8) with ``RetryMax = retries`` and the hook's ``timeout`` per
attempt; ``callWebhook`` fails on a status above 202. The tables of each rule are in
``test_flagger_conformance.py`` (cases 33-35); here the rules meet the scenario's
``webhooks:`` scripts, where each retry is another call of the script.
"""

from __future__ import annotations

import textwrap

import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import parse_scenario
from sim.policies.base import HookCalled, Observation, Routes
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.plan import retry_wait
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.runs.runner import run_one
from sim.yamlio import loads_yaml


def scenario(hook: str, script: str) -> str:
    return textwrap.dedent(f"""\
        name: hooks
        horizon: 1h
        traffic: {{rate: 20/s}}
        baseline: {{error_rate: 0.001}}
        telemetry: {{noise: false}}
        webhooks:
          check: {script}
        policy:
          flagger:
            analysis:
              interval: 1m
              threshold: 3
              stepWeight: 50
              maxWeight: 50
              metrics: [{{name: request-success-rate, thresholdRange: {{min: 0}}, interval: 1m}}]
              webhooks: [{hook}]
        """)


def simulate(text: str):
    s = parse_scenario(loads_yaml(text, file="hooks.yaml"))
    return run_one(s, scenario_policy(s), 3, trace=True)


def test_backoff_doubles_from_one_second_up_to_thirty():
    """go-retryablehttp client.go DefaultBackoff: `2^attemptNum * RetryWaitMin`, capped at
    RetryWaitMax (defaultRetryWaitMin 1s, defaultRetryWaitMax 30s)."""
    assert [retry_wait(i) for i in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.mark.parametrize(("retries", "failed_checks"), [(0, 2), (1, 1), (2, 0)])
def test_each_retry_is_another_call_of_the_script(retries, failed_checks):
    """A rollout hook whose script fails its first 2 calls (``fail_first: 2``): without
    retries the first two analyses fail; each retry (Client.Do's loop, a 5xx is retried by
    baseRetryPolicy) is a call of the script, so 2 retries pass the very first analysis."""
    hook = f"{{name: check, type: rollout, url: http://x/, retries: {retries}}}"
    result = simulate(scenario(hook, "{fail_first: 2}"))
    assert result.record.outcome == "promoted"
    assert max(line["failed_checks"] for line in result.trace) == failed_checks
    calls = [(a["ok"], line["t"]) for line in result.trace for a in line["actions"] if a["action"] == "webhook"]
    # The first analysis (t=180) and, when it failed, the next ones, each with its attempts.
    expected = {
        0: [(False, 180.0), (False, 240.0), (True, 300.0)],
        1: [(False, 180.0), (False, 180.0), (True, 240.0)],
        2: [(False, 180.0), (False, 180.0), (True, 180.0)],
    }[retries]
    assert calls == expected


def test_a_hook_slower_than_its_timeout_fails_even_when_its_script_passes():
    """newHTTPClient: HTTPClient.Timeout = timeout; a slower answer is a client timeout, an
    error, and callWebhook fails: the rollout hook fails every analysis and the canary rolls
    back after `threshold` failed checks."""
    hook = "{name: check, type: rollout, url: http://x/, timeout: 5s}"
    result = simulate(scenario(hook, "{latency: 6s}"))
    assert result.record.outcome == "rolled_back"
    faster = simulate(scenario(hook, "{latency: 4s}"))
    assert faster.record.outcome == "promoted"


def test_a_zero_timeout_is_no_timeout():
    """Go's http.Client: Timeout 0 means no timeout (webhook.go passes "0s" through)."""
    spec = {"analysis": {"stepWeight": 10, "webhooks": [{"name": "h", "url": "http://x/", "timeout": "0s"}]}}
    p = FlaggerCanary(FlaggerPolicySpec.model_validate(spec))
    state, _ = p.step(p.initial_state(), Observation(60.0, 1))
    state, _ = p.step(state, Observation(120.0, 2))
    state, actions = p.step(state, Observation(180.0, 3, {}, Routes(10), webhook_latency={"h": 3600.0}))
    assert [a.ok for a in actions if isinstance(a, HookCalled)] == [True]
    # The run blocked an hour on the call: the next one starts when it returns.
    assert p.next_tick(state, 180.0) == 3780.0


def test_retries_use_the_time_they_are_made_at():
    """The attempt's time reaches the script (``fail_until``): a hook failing until 182s with
    retries 2 fails at 180 (call), 181 (1st retry after 1s), and passes at 183 (after 2s)."""
    hook = "{name: check, type: rollout, url: http://x/, retries: 2}"
    result = simulate(scenario(hook, "{fail_until: 182s}"))
    tick3 = next(line for line in result.trace if line["t"] == 180.0)
    assert tick3["failed_checks"] == 0 and tick3["canary_weight"] == 50
