"""Every example Rollout of argoproj/argo-rollouts ``examples/`` runs, or is refused with
one line naming the field pdsim does not model (issue 16, "Done when").

The manifests are copied in ``tests/fixtures/argo-examples`` (its README names the commit
and the licence). Each Rollout is applied with the example AnalysisTemplates and
ClusterAnalysisTemplates beside it, as ``kubectl apply -f`` of the three files would, and
simulated once in a small world of a good release.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.errors import InputError
from sim.inputs.policy import load_policy
from sim.inputs.scenario import Scenario
from sim.outcomes import PROMOTED, UNFINISHED
from sim.runs.runner import run_one
from tests.helpers import REPO

EXAMPLES = REPO / "tests" / "fixtures" / "argo-examples"
TEMPLATES = [EXAMPLES / "analysis-templates.yaml", EXAMPLES / "cluster-analysis-templates.yaml"]

#: What each example does here, read from its steps: "promoted" or "unfinished", or the field
#: path and the words of its one-line refusal.
EXPECTED: dict[str, str | tuple[str, str]] = {
    # Timed pauses only: promoted once the last pause ends and the full-size canary is available.
    "ambassador/rollout.yaml": PROMOTED,
    "rollout-analysis-step.yaml": PROMOTED,  # its Job metrics are scripted: default pass
    "rollout-template-ref.yaml": PROMOTED,
    "workload-ref/workload-ref.yaml": PROMOTED,
    # No steps: all steps are done at once, promoted when the full-size canary is available.
    "rollout-rolling-update.yaml": PROMOTED,
    # A `pause: {}` that nobody lifts (nobody runs `kubectl argo rollouts promote` here).
    "apisix/rollout.yaml": UNFINISHED,  # after a combined setCanaryScale + setHeaderRoute step (issue 16)
    "appmesh/canary-rollout.yaml": UNFINISHED,
    "istio/istio-mirror.yaml": UNFINISHED,
    "istio/istio-subset-split.yaml": UNFINISHED,
    "notifications/rollout-canary.yaml": UNFINISHED,
    "rollout-background-analysis.yaml": UNFINISHED,
    "rollout-canary.yaml": UNFINISHED,
    "rollout-secret.yaml": UNFINISHED,
    "rollout-bluegreen.yaml": UNFINISHED,  # autoPromotionEnabled: false
    # Experiment steps (issue 16): no duration and no analysis requiredForCompletion, so the
    # Experiment runs until someone ends it (argo-rollouts docs/features/experiment.md), and the
    # Rollout with it: still Progressing at the horizon (RUNS_ON below).
    "rollout-baseline-vs-canary.yaml": UNFINISHED,
    "rollout-canary-preview.yaml": UNFINISHED,
    "rollout-experiment-step.yaml": UNFINISHED,
    "traffic-routing-experiment-step/istio-host-split-experiment-step.yaml": UNFINISHED,
    "traffic-routing-experiment-step/rollout-alb-experiment-step.yaml": UNFINISHED,
    "traffic-routing-experiment-step/rollout-smi-experiment-step.yaml": UNFINISHED,
    # `linkerd.io/inject: {{args.linkerd-enabled}}` unquoted is a YAML mapping used as a key:
    # kubectl cannot apply the file either (sigs.k8s.io/yaml refuses non-string keys).
    "traffic-management/rollout-linkerd.yaml": (
        "spec.metrics[0].provider.job.spec.template.metadata.annotations.linkerd.io/inject",
        "mapping key must be a plain value",
    ),
}


#: Examples whose experiment step runs on: unfinished, and Progressing rather than Paused.
RUNS_ON = {
    name
    for name in EXPECTED
    if "experiment" in name or name in ("rollout-canary-preview.yaml", "rollout-baseline-vs-canary.yaml")
}


def _rollouts() -> list[str]:
    return sorted(
        str(p.relative_to(EXAMPLES))
        for p in EXAMPLES.rglob("*.yaml")
        if re.search(r"^kind: Rollout\s*$", p.read_text(), re.MULTILINE)
    )


def _world() -> Scenario:
    """A good release, small enough to simulate every example quickly."""
    return Scenario.model_validate(
        {
            "name": "argo-example",
            "horizon": "40m",
            "traffic": {"rate": "20/s", "users": 2000},
            "baseline": {"error_rate": 0.001, "latency": {"median": "40ms", "p99": "250ms"}},
            "release": {"startup": "20s", "test_rps": 5},
            "telemetry": {"noise": False},
            "runs": 1,
            "seed": 7,
        }
    )


def test_every_example_rollout_is_listed():
    assert _rollouts() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_or_is_refused_in_one_line(name: str):
    path: Path = EXAMPLES / name
    expected = EXPECTED[name]
    if isinstance(expected, tuple):
        field, words = expected
        with pytest.raises(InputError) as info:
            load_policy([path, *TEMPLATES])
        message = str(info.value)
        assert "\n" not in message and f": {field}: " in message and words in message, message
        return
    policy = load_policy([path, *TEMPLATES])
    record = run_one(_world(), policy, 7).record
    assert record.outcome == expected, (name, record)
    if name in RUNS_ON:
        assert record.final_phase == "Progressing", (name, record)
    elif expected == UNFINISHED:  # waiting for a person, not stuck: no progress deadline while paused
        assert record.final_phase == "Paused", (name, record)
