"""The router: where each live request goes, for every run of a batch.

A narrow interface in Flagger's spirit (``pkg/router``): policies set routes through
actions, the world reads per-cohort shares from here. Weighted routing is not sticky:
each request independently goes to the canary with probability weight/100, which keeps
per-version arrivals Poisson (thinning). A/B routing is sticky by construction: a
cohort's users carry the header or cookie, so all their requests match, or none do.

Argo's managed routes (issue 16): a ``setHeaderRoute`` sends the requests its match
selects all to the canary; a ``setMirrorRoute`` copies the requests its match selects
(method, path, headers: ``rollout/trafficrouting/istio/istio.go`` ``createMirrorRoute``)
to the canary, ``mirrorPercentage`` of them, whichever version serves them (an Istio
route's ``mirror`` is "in addition to forwarding the requests to the intended
destination"). Which cohorts a named route selects is asked of the policy once per
route (``Policy.route_matches``) from each cohort's request (``cohort_requests``).
"""

from __future__ import annotations

from collections.abc import Callable

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
        route_mask: a managed route's name -> which cohorts' requests it selects (C,);
            None: a named route selects the cohorts of ``match_mask``.
    """

    def __init__(
        self,
        runs: int,
        match_mask: np.ndarray,
        cohort_share: np.ndarray,
        route_mask: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        self.match_mask = match_mask.astype(float)
        self.cohort_share = cohort_share
        self._route_mask = route_mask
        self._masks: dict[str, np.ndarray] = {}
        C = len(self.match_mask)
        self.weight = np.zeros(runs)
        self.matched = np.zeros(runs, dtype=bool)
        self.header = np.zeros((runs, C), dtype=bool)  # cohorts a header route sends to the canary
        self.mirror = np.zeros((runs, C))  # share of each cohort's live requests copied to the canary
        self._routes = [Routes()] * runs

    def _mask(self, route: str, default: np.ndarray) -> np.ndarray:
        """Cohorts selected by the managed route ``route`` ("" : ``default``)."""
        if not route:
            return default
        mask = self._masks.get(route)
        if mask is None:
            mask = self._masks[route] = (
                self._route_mask(route).astype(float) if self._route_mask is not None else self.match_mask
            )
        return mask

    def routes(self, run: int) -> Routes:
        """What ``GetRoutes`` returns for one run."""
        return self._routes[run]

    def set(self, run: int, a: SetWeights) -> None:
        """Apply a policy's ``SetWeights`` to one run's routes."""
        self._routes[run] = routes_after(self._routes[run], a)
        self.weight[run] = a.canary_weight
        self.matched[run] = a.matched
        self.header[run] = (self._mask(a.header_match, self.match_mask) > 0) if a.header_route else False
        every = np.ones_like(self.match_mask)
        self.mirror[run] = a.mirror_percent / 100.0 * self._mask(a.mirror_match, every) if a.mirrored else 0.0

    def canary_share(self, runs: np.ndarray) -> np.ndarray:
        """P(a live request of each cohort goes to the canary), shape (len(runs), C)."""
        w = (self.weight[runs] / 100.0)[:, None]
        share = np.where(self.matched[runs][:, None], w * self.match_mask[None, :], w)
        return np.where(self.header[runs], 1.0, share)

    def mirror_share(self, runs: np.ndarray) -> np.ndarray:
        """Share of each cohort's live requests copied to the canary, shape (len(runs), C)."""
        return self.mirror[runs]

    def routed_percent(self, run: int) -> float:
        """Percent of all live traffic the canary receives (weighted routing: the weight;
        A/B and header routes: the weight times the matching cohorts' share of traffic)."""
        if not self.matched[run] and not self.header[run].any():
            return float(self.weight[run])
        return round(float(100.0 * (self.canary_share(np.array([run]))[0] * self.cohort_share).sum()), 6)
