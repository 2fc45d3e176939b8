"""The router: where each live request goes, for every run of a batch.

A narrow interface in Flagger's spirit (``pkg/router``): policies set routes through
actions, the world reads per-cohort canary shares from here. Weighted routing is not
sticky: each request independently goes to the canary with probability weight/100,
which keeps per-version arrivals Poisson (thinning).
"""

from __future__ import annotations

import numpy as np

from sim.policies.base import Routes


class Router:
    """Current routes of ``runs`` simulated rollouts.

    Args:
        runs: rollouts in the batch.
        n_cohorts: cohorts including the default (index 0).
    """

    def __init__(self, runs: int, n_cohorts: int) -> None:
        self.n_cohorts = n_cohorts
        self.weight = np.zeros(runs)
        self._routes = [Routes()] * runs

    def routes(self, run: int) -> Routes:
        """What ``GetRoutes`` returns for one run."""
        return self._routes[run]

    def set(self, run: int, canary_weight: int, mirrored: bool = False) -> None:
        self._routes[run] = Routes(canary_weight, mirrored)
        self.weight[run] = canary_weight

    def canary_share(self, runs: np.ndarray) -> np.ndarray:
        """P(a live request of each cohort goes to the canary), shape (len(runs), C)."""
        return np.repeat((self.weight[runs] / 100.0)[:, None], self.n_cohorts, axis=1)
