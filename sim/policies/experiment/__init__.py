"""A/B experiment decision rules (issue 19): pure, vectorised over the runs of a batch.

Fed at each look the cumulative per-arm aggregates of every run, a rule decides per run
*promote the candidate*, *keep the primary*, continue, or *inconclusive* at the last look,
and estimates the relative lift B/A − 1 with an interval at its own level. Parts:

* ``base``: the contract: ``Decision``, ``Looks``, ``LookResult``, the ``Test`` protocol, the
  ``test:`` specs (``ExperimentTestSpec``);
* ``sequential``: the anytime-valid mixture SPRT and its confidence sequence (Johari et al.);
* ``group_sequential``: Lan–DeMets alpha spending over planned looks;
* ``fixed``: the fixed-horizon z test at a planned sample size, and the same test peeked;
* ``bayes``: chance to beat and expected loss (no frequentist guarantee);
* ``srm``: the sample-ratio-mismatch chi-square check of the split;
* ``spec`` and ``policy``: the ``policy: {experiment: ...}`` block and ``ExperimentPolicy``,
  the policy that runs it (a user split, looks, guardrails, the SRM check, the rule);
* ``rules``: ``make_test``;
* ``plan``: fixed-horizon sample sizes, power and minimum detectable lifts (``pdsim
  plan-ab``), imported on its own.

``make_test`` builds the rule a ``test:`` block describes.
"""

from __future__ import annotations

from sim.policies.experiment.base import (
    WINNER_NAMES,
    BayesTestSpec,
    Decision,
    ExperimentTestSpec,
    FixedTestSpec,
    GroupSequentialTestSpec,
    LookResult,
    Looks,
    SequentialTestSpec,
    Test,
)
from sim.policies.experiment.bayes import BayesTest
from sim.policies.experiment.fixed import FixedTest
from sim.policies.experiment.group_sequential import GroupSequentialTest
from sim.policies.experiment.policy import ExperimentPolicy, ExperimentState
from sim.policies.experiment.rules import make_test
from sim.policies.experiment.sequential import SequentialTest
from sim.policies.experiment.spec import ExperimentPolicySpec, Guardrail
from sim.policies.experiment.srm import srm_check

__all__ = [
    "WINNER_NAMES",
    "BayesTest",
    "BayesTestSpec",
    "Decision",
    "ExperimentPolicy",
    "ExperimentPolicySpec",
    "ExperimentState",
    "ExperimentTestSpec",
    "FixedTest",
    "FixedTestSpec",
    "GroupSequentialTest",
    "GroupSequentialTestSpec",
    "Guardrail",
    "LookResult",
    "Looks",
    "SequentialTest",
    "SequentialTestSpec",
    "Test",
    "make_test",
    "srm_check",
]
