"""Per-slot counts for the judges: what arrived since the last look, and event shares.

Every judge in this package reads ``JudgeData`` the same way: the slots it has not seen
yet (the series only grow: a slot, once ingested, never changes), the requests and
events (failures, or requests slower than a latency bound) of each version in them.

Conditioning on the request counts of a slot, an event there is the canary's with
probability ``pi = n_canary / (n_canary + n_primary)`` when both versions share one event
rate (the null hypothesis): the slot's exposure-weighted canary share. That is exact for
Poisson arrivals (independent thinning), and for fixed counts the canary's events are
hypergeometric, which is smaller than binomial in the convex order (Hoeffding 1963,
Theorem 4), so every likelihood ratio below, convex in the canary's events, keeps
expectation at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.policies.judges.base import JudgeData


@dataclass(frozen=True, eq=False)
class Slots:
    """Counts of the slots a judge has not seen yet (arrays of shape (K,)).

    Attributes:
        n_canary, n_primary: requests per slot.
        e_canary, e_primary: events (failures, or slow requests) per slot.
    """

    n_canary: np.ndarray
    n_primary: np.ndarray
    e_canary: np.ndarray
    e_primary: np.ndarray

    def share(self) -> np.ndarray:
        """The canary's share of requests per slot (0 where the slot saw nothing)."""
        n = self.n_canary + self.n_primary
        return np.divide(self.n_canary, n, out=np.zeros_like(n, dtype=float), where=n > 0)


def slot_count(data: JudgeData) -> int:
    """Slots in the data (the same for both versions)."""
    return min(len(data.canary.requests), len(data.primary.requests))


def error_slots(data: JudgeData, seen: int) -> Slots:
    """Requests and failures of the slots after the first ``seen``."""
    k = slot_count(data)
    c, p = data.canary, data.primary
    return Slots(
        np.asarray(c.requests[seen:k], float),
        np.asarray(p.requests[seen:k], float),
        np.asarray(c.errors[seen:k], float),
        np.asarray(p.errors[seen:k], float),
    )


def bound_index(bounds_ms: tuple[float, ...], bound_ms: float) -> int | None:
    """Index of the largest histogram bound at or below ``bound_ms`` (None: none is)."""
    below = [i for i, b in enumerate(bounds_ms) if b <= bound_ms * (1 + 1e-9)]
    return below[-1] if below else None


def totals(data: JudgeData) -> tuple[float, float, float, float]:
    """(canary requests, canary failures, primary requests, primary failures) so far."""
    k = slot_count(data)
    c, p = data.canary, data.primary
    return (
        float(c.requests[:k].sum()),
        float(c.errors[:k].sum()),
        float(p.requests[:k].sum()),
        float(p.errors[:k].sum()),
    )
