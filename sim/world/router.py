"""The router: where each live request goes, for every run of a batch.

A narrow interface in Flagger's spirit (``pkg/router``): policies set routes through
actions, the world reads per-cohort shares from here. Weighted routing is not sticky:
each request independently goes to the canary with probability weight/100, which keeps
per-version arrivals Poisson (thinning). A/B routing is sticky by construction: a
cohort's users carry the header or cookie, so all their requests match, or none do.
"""

from __future__ import annotations

import numpy as np

from sim.policies.base import Routes, SetWeights
from sim.policies.driver import routes_after


class Router:
    """Current routes of ``runs`` simulated rollouts.

    Args:
        runs: rollouts in the batch.
        match_mask: per cohort (C,), whether its requests match the policy's A/B
            conditions.
        cohort_share: each cohort's share of traffic (C,), for the routed share.
    """

    def __init__(self, runs: int, match_mask: np.ndarray, cohort_share: np.ndarray) -> None:
        self.match_mask = match_mask.astype(float)
        self.cohort_share = cohort_share
        self.weight = np.zeros(runs)
        self.matched = np.zeros(runs, dtype=bool)
        self.header = np.zeros(runs, dtype=bool)
        self.mirror = np.zeros(runs)  # share of primary-bound traffic copied to the canary
        self._routes = [Routes()] * runs

    def routes(self, run: int) -> Routes:
        """What ``GetRoutes`` returns for one run."""
        return self._routes[run]

    def set(self, run: int, a: SetWeights) -> None:
        """Apply a policy's ``SetWeights`` to one run's routes."""
        self._routes[run] = routes_after(self._routes[run], a)
        self.weight[run] = a.canary_weight
        self.matched[run] = a.matched
        self.header[run] = a.header_route
        self.mirror[run] = a.mirror_percent / 100.0 if a.mirrored else 0.0

    def canary_share(self, runs: np.ndarray) -> np.ndarray:
        """P(a live request of each cohort goes to the canary), shape (len(runs), C)."""
        w = (self.weight[runs] / 100.0)[:, None]
        share = np.where(self.matched[runs][:, None], w * self.match_mask[None, :], w)
        return np.where(self.header[runs][:, None] & (self.match_mask[None, :] > 0), 1.0, share)

    def mirror_share(self, runs: np.ndarray) -> np.ndarray:
        """Share of primary-bound requests copied to the canary, shape (len(runs), 1)."""
        return self.mirror[runs][:, None]

    def routed_percent(self, run: int) -> float:
        """Percent of all live traffic the canary receives (weighted routing: the weight;
        A/B: the weight times the matching cohorts' share of traffic)."""
        if not self.matched[run] and not self.header[run]:
            return float(self.weight[run])
        return round(float(100.0 * (self.canary_share(np.array([run]))[0] * self.cohort_share).sum()), 6)
