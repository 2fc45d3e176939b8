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

    def as_dict(self) -> dict:
        return asdict(self)


#: Column order of the tidy results table.
COLUMNS = [f.name for f in fields(RunRecord)]


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
