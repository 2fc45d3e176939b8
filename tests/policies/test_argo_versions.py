"""Which Argo Rollouts release a policy simulates (issue 16, item 6).

argoproj/argo-rollouts: #3873 (in v1.8.2, ``rollout/analysis.go`` ``needsNewAnalysisRun``)
stops replacing an Inconclusive background run during a pause step; #4692 (v1.10,
``metricproviders/job/job.go``) makes a Job with infrastructure errors Inconclusive. The
tick-by-tick difference is pinned by the conformance cases 31 and 32.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sim.policies.argo.plan import build_plan, resolve_analyses
from sim.policies.argo.spec import LATEST_VERSION, ArgoPolicySpec, parse_version

STRATEGY = {"canary": {"steps": [{"setWeight": 20}]}}


def _spec(**fields: object) -> ArgoPolicySpec:
    return ArgoPolicySpec.model_validate({"strategy": STRATEGY, **fields})


def test_the_latest_release_by_default():
    spec = _spec()
    assert spec.version == LATEST_VERSION and spec.controller_version == (1, 10, 0)
    assert not build_plan(spec, resolve_analyses(spec), 8).new_run_in_pause_step


@pytest.mark.parametrize(
    ("version", "parsed", "replaces"),
    [("1.8", (1, 8, 0), True), ("1.8.1", (1, 8, 1), True), ("v1.8.2", (1, 8, 2), False), ("1.9", (1, 9, 0), False)],
)
def test_named_versions(version, parsed, replaces):
    """#3873 is in v1.8.2 (cherry-picked) and every release after it."""
    spec = _spec(version=version)
    assert spec.controller_version == parsed == parse_version(version)
    assert build_plan(spec, resolve_analyses(spec), 8).new_run_in_pause_step is replaces


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (1.10, "a YAML number 1.10 reads as 1.1"),
        ("1.11", "pdsim simulates Argo Rollouts 1.0 to 1.10"),
        ("0.9", "pdsim simulates Argo Rollouts 1.0 to 1.10"),
        ("latest", "not an Argo Rollouts version"),
    ],
)
def test_unknown_versions_are_refused(version, message):
    with pytest.raises(ValidationError, match=message):
        _spec(version=version)
