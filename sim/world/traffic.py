"""Arrivals and users.

The arrival rate λ(t) is given by its integral Λ(t) = ∫₀ᵗ λ, in closed form, because
request counts over a segment are Poisson with mean Λ(t₁) − Λ(t₀): exact for any
segment length, so the fast path's cost does not depend on how long a segment is.

Users follow a Zipf activity law (rank r has weight ∝ r^-skew), discretised into
activity tiers of equal per-user weight. Within a tier every user is equally likely to
send a given request, which lets the fast path count distinct users from request counts
(an occupancy problem) without tracking user ids; the per-request mode uses the very
same population, so the two agree in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.inputs.scenario import RateProfile, Traffic

TWO_PI = 2.0 * np.pi


class RateFunction:
    """λ(t) of a ``RateProfile`` and its exact integral.

    Args:
        profile: the scenario's rate profile.
    """

    def __init__(self, profile: RateProfile) -> None:
        self.profile = profile
        if profile.steps is not None:
            self._step_at = np.array([s.at for s in profile.steps], dtype=float)
            self._step_rate = np.array([s.rate for s in profile.steps], dtype=float)
            widths = np.diff(self._step_at)
            self._step_cum = np.concatenate([[0.0], np.cumsum(widths * self._step_rate[:-1])])
        self._bursts = [(b.at, b.at + b.duration, b.factor) for b in profile.bursts]
        # Overlapping bursts multiply: split time at every burst edge into pieces with one
        # constant multiplier each, so the integral stays exact.
        edges = sorted({x for a, b, _ in self._bursts for x in (a, b)})
        self._pieces = []
        for a, b in zip(edges, edges[1:]):
            m = float(np.prod([f for s, e, f in self._bursts if s <= a and b <= e]))
            if m != 1.0:
                self._pieces.append((a, b, m))

    def _base_cum(self, t: np.ndarray) -> np.ndarray:
        p = self.profile
        if p.constant is not None:
            return p.constant * t
        if p.diurnal is not None:
            d = p.diurnal
            w = TWO_PI / d.period
            # ∫ mean (1 + a sin(w (s + φ))) ds = mean (t - a/w (cos(w(t+φ)) - cos(wφ)))
            return d.mean * (t - d.amplitude / w * (np.cos(w * (t + d.phase)) - np.cos(w * d.phase)))
        i = np.searchsorted(self._step_at, t, side="right") - 1
        return self._step_cum[i] + (t - self._step_at[i]) * self._step_rate[i]

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        """Λ(t): expected arrivals in [0, t)."""
        t = np.asarray(t, dtype=float)
        out = self._base_cum(t)
        for a, b, m in self._pieces:
            # Inside a piece the base rate is multiplied: add (m - 1) × its base integral.
            out = out + (m - 1.0) * (self._base_cum(np.clip(t, a, b)) - self._base_cum(np.asarray(a)))
        return out

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """λ(t), requests per second."""
        t = np.asarray(t, dtype=float)
        p = self.profile
        if p.constant is not None:
            out = np.full_like(t, p.constant)
        elif p.diurnal is not None:
            d = p.diurnal
            out = d.mean * (1.0 + d.amplitude * np.sin(TWO_PI / d.period * (t + d.phase)))
        else:
            out = self._step_rate[np.searchsorted(self._step_at, t, side="right") - 1]
        for a, b, f in self._bursts:
            out = np.where((t >= a) & (t < b), out * f, out)
        return out

    def max_rate(self, t0: float, t1: float) -> float:
        """An upper bound of λ on [t0, t1] (for thinning in the per-request mode)."""
        p = self.profile
        if p.constant is not None:
            base = p.constant
        elif p.diurnal is not None:
            base = p.diurnal.mean * (1.0 + p.diurnal.amplitude)
        else:
            base = float(self._step_rate.max())
        return base * max([1.0] + [f for _, _, f in self._bursts])

    def change_points(self) -> list[float]:
        """Times where λ jumps (steps, burst edges)."""
        pts = [a for a, _, _ in self._bursts] + [b for _, b, _ in self._bursts]
        if self.profile.steps is not None:
            pts += [s.at for s in self.profile.steps[1:]]
        return sorted(set(pts))


@dataclass(frozen=True)
class Population:
    """Users as groups of equally active users: one group per (activity tier, cohort).

    Attributes:
        users: group sizes (users), shape (G,).
        weight: each user's share of all traffic in that group, shape (G,).
        cohort: cohort index of each group (0 = no cohort; i = traffic.cohorts[i-1]).
        cohort_share: share of all traffic each cohort sends, shape (C,).
    """

    users: np.ndarray
    weight: np.ndarray
    cohort: np.ndarray
    cohort_share: np.ndarray

    @property
    def total_users(self) -> int:
        return int(self.users.sum())

    @property
    def n_cohorts(self) -> int:
        return len(self.cohort_share)

    def groups_of(self, cohort: int) -> tuple[np.ndarray, np.ndarray]:
        """Sizes of a cohort's groups and each group's share of the cohort's traffic."""
        g = self.cohort == cohort
        sizes = self.users[g]
        p = sizes * self.weight[g]
        return sizes, p / p.sum()


def build_population(traffic: Traffic, tiers: int = 24) -> Population:
    """Discretise Zipf activity into ``tiers`` log-spaced rank bands, split by cohort.

    Cohort membership is independent of activity: each cohort holds its share of every
    tier's users (rounded), and its users' weights are scaled so that its traffic share
    is exactly its share of the users (rounding would otherwise leave the few most active users,
    a large part of the traffic, all in one cohort).
    """
    n = traffic.users
    edges = np.unique(np.round(np.geomspace(1, n + 1, num=min(tiers, n) + 1)).astype(int))
    ranks = np.arange(1, n + 1, dtype=float)
    w = ranks**-traffic.skew
    w /= w.sum()
    tier_users = np.diff(edges)
    tier_total = np.add.reduceat(w, edges[:-1] - 1)
    shares = [1.0 - sum(c.share for c in traffic.cohorts)] + [c.share for c in traffic.cohorts]
    users, weight, cohort = [], [], []
    for nu, tw in zip(tier_users, tier_total):
        per_user = tw / nu
        # Largest-remainder split of the tier's users over cohorts.
        raw = np.array(shares) * nu
        alloc = np.floor(raw).astype(int)
        alloc[np.argsort(alloc - raw)[: nu - alloc.sum()]] += 1
        for c, k in enumerate(alloc):
            if k > 0:
                users.append(k)
                weight.append(per_user)
                cohort.append(c)
    users_a = np.array(users, dtype=np.int64)
    weight_a = np.array(weight)
    cohort_a = np.array(cohort, dtype=np.int64)
    # The few most active users fall in whole numbers into one cohort, which would skew
    # cohort traffic away from the cohorts' user shares; scale each cohort's weights so its
    # traffic share is its user share, keeping the activity shape within the cohort.
    current = np.bincount(cohort_a, weights=users_a * weight_a, minlength=len(shares))
    target = np.bincount(cohort_a, weights=users_a, minlength=len(shares)) / users_a.sum()
    weight_a = weight_a * np.where(current > 0, target / np.where(current > 0, current, 1.0), 0.0)[cohort_a]
    weight_a = weight_a / (users_a * weight_a).sum()
    cohort_share = np.bincount(cohort_a, weights=users_a * weight_a, minlength=len(shares))
    return Population(users_a, weight_a, cohort_a, cohort_share)
