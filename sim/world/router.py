"""The router: where each live request goes.

A narrow interface in Flagger's spirit (``pkg/router``): policies set routes through
actions, the world reads per-cohort canary shares from here. Weighted routing is not
sticky: each request independently goes to the canary with probability weight/100,
which keeps per-version arrivals Poisson (thinning).
"""

from __future__ import annotations

import numpy as np

from sim.policies.base import Routes


class Router:
    """Current routes and what they mean per cohort.

    Args:
        n_cohorts: cohorts including the default (index 0).
    """

    def __init__(self, n_cohorts: int) -> None:
        self.n_cohorts = n_cohorts
        self.routes = Routes()

    def set(self, canary_weight: int, mirrored: bool = False) -> None:
        self.routes = Routes(canary_weight, mirrored)

    def canary_share(self) -> np.ndarray:
        """Probability that a live request of each cohort goes to the canary, shape (C,)."""
        return np.full(self.n_cohorts, self.routes.canary_weight / 100.0)
