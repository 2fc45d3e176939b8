"""Serving live traffic: the ``Traffic`` protocol both modes implement, and its ``Ledger``.

The world drives a traffic model through this narrow interface only, so the fast path
(``sim.world.fast.FastTraffic``, whole segments of requests drawn at once) and the
per-request reference mode (``sim.world.exact.ExactTraffic``, every request a simpy
event) are swappable, as Ciw's state trackers are.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Ledger:
    """What the candidate did to live users: arrays of shape (runs, cohorts)."""

    def __init__(self, runs: int, n_cohorts: int) -> None:
        self.requests = np.zeros((runs, n_cohorts))
        self.errors = np.zeros((runs, n_cohorts))
        self.excess = np.zeros((runs, n_cohorts))
        self.after_requests = np.zeros((runs, n_cohorts))
        self.after_excess = np.zeros((runs, n_cohorts))


class Traffic(Protocol):
    """Live traffic of a batch of runs, served into telemetry and the ledger.

    Attributes:
        ledger: what the canary did to live users, per run and cohort.
    """

    ledger: Ledger

    def advance(self, runs: np.ndarray, t1: float) -> None:
        """Serve live traffic of ``runs`` up to ``t1`` under their current routes."""
        ...

    def start_load(self, run: int, t: float, rps: float, duration_s: float) -> None:
        """A load tester sends ``rps`` to the canary of ``run`` from ``t`` for ``duration_s``."""
        ...

    def decided(self, run: int) -> None:
        """The rollout promoted: its later traffic is no longer the canary's to account
        (``after_promotion`` counts what follows). A rollback does not call it: the
        ledger follows live traffic until the router sends it away from the canary."""
        ...

    def after_promotion(self, run: int, t0: float, duration_s: float) -> None:
        """Damage of a promoted release: all live traffic on the new version for ``duration_s``."""
        ...

    def users_counts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Distinct users exposed and affected per run, when the model knows its users by
        id; None when they must be counted from the ledger (``sim.world.users.count_users``)."""
        ...
