"""The run record's contract, written down independently of ``sim`` so that tests pin it."""

from __future__ import annotations

#: The fields every run record starts with, in order: the outcome contract of pdsim's
#: records (JSON, Parquet, ``RunRecord``; docs/architecture.md section 5). Fields after
#: these are documented extensions.
RECORD_FIELDS = (
    "scenario",
    "policy",
    "run",
    "seed",
    "outcome",
    "release_bad",
    "decision_time_s",
    "detection_time_s",
    "canary_requests",
    "canary_errors",
    "excess_errors",
    "users_exposed",
    "users_affected",
    "false_rollback",
    "missed",
)
