"""The run record (docs/architecture.md section 5, a contract) and how outcomes are derived.

Field meanings beyond the contract's wording:

* ``excess_errors`` is the blast radius in requests: excess failures the candidate
  served before the decision (after a rollback: until live traffic left it, issue 16),
  plus, for a promoted release, those of the
  ``after_promotion`` window with all traffic on it (``excess_errors_after_promotion``).
  So ``excess_errors - excess_errors_after_promotion <= canary_errors <= canary_requests``.
* ``users_exposed``/``users_affected`` count distinct users over the same span as
  ``excess_errors``: the canary phase and, once promoted, the ``after_promotion`` window.
* ``detection_time_s`` is null when the rollback came before the fault's onset, or the
  release is not bad (``release.bad: false``): there was nothing to detect.

Business outcomes (issue 19), null unless the scenario has a ``business:`` block:

* ``winner``: ``candidate``, ``primary`` or ``none``. An A/B experiment says it
  (``ExperimentEnded``); for any other policy it follows the outcome (promoted:
  candidate, rolled back: primary, unfinished: none).
* ``true_lift``: the candidate's true long-run relative lift of the policy's business
  metric (``Policy.business_metric``): the effects' ``lift``, without the novelty that
  fades, over the whole population (a cohort-only effect weighted by the cohort's share
  of sessions).
* ``correct``, for an A/B experiment (``winner_correct``): against ``true_lift`` and the scenario's
  ``business.min_effect`` m. When |true_lift| > m the right call is the better version
  (``candidate`` if true_lift > m; ``primary`` or ``none`` if true_lift < -m: keeping the
  primary is right). When |true_lift| <= m (an A/A test among them) no version is
  worth declaring: ``none`` is right, and so is a winner on the right side of a
  non-zero true lift; a winner against its sign is wrong, and any winner of an exact
  A/A (true_lift 0) is a false winner. A release with a fault that matters
  (``release_bad``: more errors, say, whatever it does to conversions) is never right to
  ship: then ``primary`` and ``none`` are right. For any other policy (a canary, whose
  question is "ship or not", not "which is better") ``rollout_correct``: promoting is
  right exactly when the release is worth shipping (no fault that matters and a true lift
  of at least -``min_effect``), and rolling back (or not finishing) when it is not.
* ``lift_estimate``, ``lift_ci_low``, ``lift_ci_high``: the experiment's estimate of the
  relative lift of its primary metric and its interval at the rule's level (null for a
  policy that estimates none).
* ``regret_conversions``, ``regret_revenue``: expected conversions and revenue lost
  during the rollout against serving every session the truly better version (per
  moment, with novelty); ``..._after_promotion``: the same over the ``after_promotion``
  window with all traffic on the version the rollout kept (the candidate when promoted,
  else the primary).
* ``sessions``: sessions during the rollout, both versions; ``srm``: the experiment's
  sample-ratio-mismatch check flagged its split (null for other policies).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
UNFINISHED = "unfinished"
#: Every outcome a run record may hold (docs/architecture.md section 5).
OUTCOMES = (PROMOTED, ROLLED_BACK, UNFINISHED)


@dataclass(frozen=True)
class RunRecord:
    """One simulated rollout. The first fifteen fields are the contract of docs/architecture.md section 5."""

    scenario: str
    policy: str
    run: int
    seed: int
    outcome: str
    release_bad: bool
    decision_time_s: float | None
    detection_time_s: float | None
    canary_requests: float
    canary_errors: float
    excess_errors: float
    users_exposed: float
    users_affected: float
    false_rollback: bool
    missed: bool
    # pdsim extensions
    excess_errors_after_promotion: float
    fault_onset_s: float | None
    final_phase: str
    ticks: int
    rollback_reason: str
    # business outcomes (issue 19): null without a ``business:`` block
    winner: str | None = None
    correct: bool | None = None
    true_lift: float | None = None
    lift_estimate: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    regret_conversions: float | None = None
    regret_revenue: float | None = None
    regret_conversions_after_promotion: float | None = None
    regret_revenue_after_promotion: float | None = None
    sessions: float | None = None
    srm: bool | None = None

    def as_dict(self) -> dict:
        return asdict(self)


#: Column order of the tidy results table.
COLUMNS = [f.name for f in fields(RunRecord)]
#: The business outcomes' columns (issue 19), null for a scenario without ``business:``.
BUSINESS_COLUMNS = COLUMNS[COLUMNS.index("winner") :]

CANDIDATE, PRIMARY, NO_WINNER = "candidate", "primary", "none"
#: The winners a record may name.
WINNERS = (CANDIDATE, PRIMARY, NO_WINNER)


def winner_of(outcome: str) -> str:
    """The winner a rollout's outcome declares, for a policy that is not an experiment."""
    return CANDIDATE if outcome == PROMOTED else PRIMARY if outcome == ROLLED_BACK else NO_WINNER


def rollout_correct(outcome: str, true_lift: float, min_effect: float, release_bad: bool = False) -> bool:
    """Whether a rollout that is not an experiment shipped what was worth shipping (the
    module docstring states the rule)."""
    worth = not release_bad and true_lift >= -min_effect
    return (outcome == PROMOTED) == worth


def winner_correct(winner: str, true_lift: float, min_effect: float, release_bad: bool = False) -> bool:
    """Whether ``winner`` was the right call given the true relative lift and the minimum
    effect of interest (the module docstring states the rule); a release with a fault that
    matters (``release_bad``) is never right to ship, whatever its lift."""
    if release_bad:
        return winner != CANDIDATE
    if true_lift > min_effect:
        return winner == CANDIDATE
    if true_lift < -min_effect:
        return winner != CANDIDATE
    if winner == NO_WINNER:
        return True
    if true_lift == 0.0:
        return False
    return (winner == CANDIDATE) == (true_lift > 0.0)


def decide(outcome: str, release_bad: bool, decision_time_s: float | None, fault_onset_s: float | None) -> dict:
    """Derived fields: detection time, false rollback, missed."""
    detection = None
    if (
        outcome == ROLLED_BACK
        and release_bad
        and fault_onset_s is not None
        and decision_time_s is not None
        and decision_time_s >= fault_onset_s
    ):
        detection = decision_time_s - fault_onset_s
    return {
        "detection_time_s": detection,
        "false_rollback": outcome == ROLLED_BACK and not release_bad,
        "missed": outcome == PROMOTED and release_bad,
    }
