"""Release faults: what the candidate (and, in a common-mode incident, the primary) does.

Within one traffic segment every fault is either on or off (segments are cut at onsets,
ends and flapping edges), so a segment's behaviour is evaluated at its midpoint. The
one fault that changes inside a segment, the leak, grows linearly, so its value at the
midpoint is its average over the segment: the fast path stays exact.

How faults combine, per request:

* ``error_rate`` with ``rate``: the error probability is at least ``rate``; with
  ``factor``: the baseline's is multiplied. Several error-rate faults: the worst wins,
  whatever their order in the file.
* ``leak`` and ``load``: independent extra causes of failure, 1 − (1−p)(1−x).
* ``latency``: transforms of the latency distribution, applied in file order.
* ``target: both`` faults act on the primary first; the canary starts from the
  primary's state and adds its own faults. Excess errors are counted against the
  primary, so a common-mode incident by itself causes no excess.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.inputs.scenario import (
    Baseline,
    ErrorRateFault,
    Fault,
    LatencyFault,
    LeakFault,
    LoadFault,
    NeverReadyFault,
    Scenario,
)
from sim.world.service import LatencyDist, LatencyLaw, latency_law


def _active(f: Fault, t: np.ndarray) -> np.ndarray:
    """Whether fault ``f`` is on at times ``t``."""
    on = t >= f.onset
    if f.duration is not None:
        on &= t < f.onset + f.duration
    if f.intermittent is not None:
        period = f.intermittent.period
        on &= np.mod(t - f.onset, period) < f.intermittent.duty * period
    return on


class ReleaseModel:
    """Error probabilities and latency of both versions over time.

    Args:
        scenario: the scenario (baseline, faults, cohorts).
    """

    def __init__(self, scenario: Scenario) -> None:
        self.baseline: Baseline = scenario.baseline
        self.faults: Sequence[Fault] = scenario.release.faults
        cohorts = [c.name for c in scenario.traffic.cohorts]
        self.n_cohorts = 1 + len(cohorts)
        # Cohort index of each fault's target (None: every cohort).
        self._cohort = [None if f.cohort is None else 1 + cohorts.index(f.cohort) for f in self.faults]
        #: The latency law of successful requests (of every request without ``error_latency``).
        self.base_latency: LatencyLaw = latency_law(self.baseline.latency)
        #: Failed requests' own law (``baseline.error_latency``), or None: the same as ``base_latency``.
        self.error_latency_law: LatencyLaw | None = (
            None if self.baseline.error_latency is None else latency_law(self.baseline.error_latency)
        )
        self.has_error_latency = self.error_latency_law is not None
        self.never_ready = any(isinstance(f, NeverReadyFault) and f.target == "canary" for f in self.faults)
        self.has_latency_faults = any(isinstance(f, LatencyFault) for f in self.faults)
        self.has_load_faults = any(isinstance(f, LoadFault) for f in self.faults)
        # A load fault on both versions: each is loaded by its own traffic (error_probs).
        self._both_load = any(isinstance(f, LoadFault) and f.target == "both" for f in self.faults)
        #: No faults: both versions behave as the baseline at all times.
        self.static = not self.faults
        self._static_p = np.full((1, 1, self.n_cohorts), self.baseline.error_rate)
        # Fixed edges (delayed onsets, ends); flapping edges are generated per window.
        edges = [f.onset for f in self.faults if f.onset > 0]
        edges += [f.onset + f.duration for f in self.faults if f.duration is not None]
        # A leak stops growing at its cap: cut there so segment midpoints stay exact.
        edges += [f.onset + 3600.0 * f.max / f.per_hour for f in self.faults if isinstance(f, LeakFault)]
        self._edges = np.unique(np.array(edges, dtype=float))
        self._flapping = [(f.onset, f.intermittent) for f in self.faults if f.intermittent is not None]

    def onset_s(self) -> float | None:
        """Onset of the earliest fault of the candidate's own (None: a good release)."""
        onsets = [f.onset for f in self.faults if f.target == "canary"]
        return min(onsets) if onsets else None

    def change_points(self, t0: float, t1: float) -> np.ndarray:
        """Times in (t0, t1) where some fault switches on or off."""
        pts = [self._edges[(self._edges > t0) & (self._edges < t1)]]
        for onset, flap in self._flapping:
            period, duty = flap.period, flap.duty
            k0 = max(0, int(np.floor((t0 - onset) / period)))
            k1 = int(np.ceil((t1 - onset) / period)) + 1
            if k1 > k0:
                starts = onset + period * np.arange(k0, k1)
                both = np.concatenate([starts, starts + duty * period])
                pts.append(both[(both > t0) & (both < t1)])
        return pts[0] if len(pts) == 1 else np.unique(np.concatenate(pts))

    def error_probs(
        self, mid: np.ndarray, canary_rate: np.ndarray | None = None, primary_rate: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Error probability per run, segment and cohort: ``(primary, canary)``, shape
        (R|1, S|1, C); the run axis is 1 unless load faults make it run-dependent.

        A ``load`` fault overloads each version by its own traffic: one of the canary's
        by the canary's request rate, one with ``target: both`` the primary by the
        primary's and the canary by the canary's (the primary's probability is also the
        counterfactual a canary request is compared with, at the primary's load).

        Args:
            mid: segment midpoints (s), shape (S,).
            canary_rate: the canary's request rate per run and segment (R, S), for load faults.
            primary_rate: the primary's (R, S), for load faults with ``target: both``.
        """
        if self.static:
            return self._static_p, self._static_p
        base = np.full((1, len(mid), self.n_cohorts), self.baseline.error_rate)
        primary = self._apply(base, mid, "both", primary_rate)
        common = self._apply(base, mid, "both", canary_rate) if self._both_load else primary
        canary = self._apply(common, mid, "canary", canary_rate)
        return primary, canary

    def _apply(self, p: np.ndarray, mid: np.ndarray, target: str, canary_rate: np.ndarray | None) -> np.ndarray:
        cohorts = np.arange(self.n_cohorts)
        base = p
        # Error-rate faults: the worst of those active in a cell wins, whatever the file
        # order; a cell with none keeps the base probability.
        worst = np.full(np.broadcast_shapes(p.shape, (1, len(mid), self.n_cohorts)), -np.inf)
        extras: list[tuple[np.ndarray, np.ndarray]] = []  # independent extra failure causes
        for f, cohort in zip(self.faults, self._cohort):
            if f.target != target or isinstance(f, (LatencyFault, NeverReadyFault)):
                continue
            on = _active(f, mid)
            if not on.any():
                continue
            mask = on[None, :, None] if cohort is None else (on[None, :, None] & (cohorts == cohort)[None, None, :])
            if isinstance(f, ErrorRateFault):
                new = np.maximum(base, f.rate) if f.rate is not None else np.minimum(1.0, base * f.factor)
                worst = np.where(mask, np.maximum(worst, new), worst)
            elif isinstance(f, LeakFault):
                extra = np.minimum(f.max, f.per_hour * np.maximum(mid - f.onset, 0.0) / 3600.0)
                extras.append((mask, extra[None, :, None]))
            else:  # LoadFault: only above capacity (per run: it depends on that run's weight)
                load = np.zeros((1, len(mid))) if canary_rate is None else canary_rate
                over = load > f.capacity
                shed = np.where(over, 1.0 - f.capacity / np.maximum(load, 1e-300), 0.0)
                extra = np.where(over, f.rate if f.rate is not None else shed, 0.0)
                extras.append((mask, extra[:, :, None]))
        p = np.where(worst > -np.inf, worst, base)
        for mask, extra in extras:
            p = np.where(mask, 1.0 - (1.0 - p) * (1.0 - extra), p)
        return p

    def latency(self, t: float, cohort: int, failed: bool = False) -> tuple[LatencyLaw, LatencyLaw]:
        """Latency laws ``(primary, canary)`` at time ``t`` for one cohort, of successful
        requests or (``failed``) of failed ones: the same latency faults transform
        ``error_latency`` when the baseline has one, else both are the same laws."""
        base = self.error_latency_law if failed and self.error_latency_law is not None else self.base_latency
        primary = self._latency(base, t, cohort, "both")
        return primary, self._latency(primary, t, cohort, "canary")

    def _latency(self, dist: LatencyLaw, t: float, cohort: int, target: str) -> LatencyLaw:
        for f, c in zip(self.faults, self._cohort):
            if not isinstance(f, LatencyFault) or f.target != target or (c is not None and c != cohort):
                continue
            if not bool(_active(f, np.array([t]))[0]):
                continue
            if f.shift is not None:
                dist = dist.shifted(f.shift)
            elif f.factor is not None:
                dist = dist.scaled(f.factor)
            elif f.p99 is not None:  # exactly one of the three is set (LatencyFault validates it)
                # The scenario refuses p99 faults unless every latency law is a lognormal.
                assert isinstance(dist, LatencyDist), "a p99 latency fault needs a lognormal latency"
                dist = dist.with_p99(f.p99)
        return dist
