"""``make_test``: the decision rule a ``test:`` block describes (issue 19)."""

from __future__ import annotations

from typing import Any

from sim.policies.experiment.base import Test
from sim.policies.experiment.bayes import BayesTest
from sim.policies.experiment.fixed import FixedTest
from sim.policies.experiment.group_sequential import GroupSequentialTest
from sim.policies.experiment.sequential import SequentialTest

_BUILDERS: dict[str, Any] = {
    "sequential": SequentialTest,
    "fixed": FixedTest,
    "group-sequential": GroupSequentialTest,
    "bayes": BayesTest,
}


def make_test(spec: Any) -> Test:
    """The rule a validated ``test:`` block (one of ``ExperimentTestSpec``) describes."""
    test: Test = _BUILDERS[spec.kind](spec)
    return test


__all__ = ["make_test"]
