"""Synthetic run records with business outcomes (issue 19), for the summaries' and the
report's tests while no world produces them.

Each run is a fixed-horizon two-sided z test of a relative lift whose estimate is normal
around the true lift with standard error ``se``: the winner is ``candidate`` when
``estimate / se > z``, ``primary`` when it is ``< -z``, else ``none``; the interval is
``estimate ± z se``. So the false-winner rate is alpha, the interval covers the true lift
with probability 1 - alpha, and the power at lift d is ``Φ(d/se - z) + Φ(-d/se - z)``
(the textbook two-sided z test: e.g. Chow, Shao & Wang 2008, "Sample size calculations
in clinical research", section 3.1), each exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sim.outcomes import CANDIDATE, NO_WINNER, PRIMARY, RunRecord, winner_correct

#: z of the synthetic test (two-sided alpha 0.05).
Z = float(special.ndtri(0.975))


def analytic_power(lift: float, se: float) -> float:
    """P(winner == candidate) of the synthetic test: Φ(d/se - z) (the other side's term,
    Φ(-d/se - z), is a ``primary`` winner)."""
    return float(special.ndtr(lift / se - Z))


def business_records(
    lifts: list[float] | tuple[float, ...],
    runs: int,
    *,
    se: float = 0.02,
    min_effect: float = 0.01,
    seed: int = 0,
    policy: str = "experiment",
    scenario: str = "ab",
    decide_s: float = 86_400.0,
) -> list[RunRecord]:
    """``runs`` synthetic records per true lift in ``lifts`` (in that order), one scenario.

    Decision time: ``decide_s`` for a winner, twice that (the max duration) for ``none``,
    times a uniform jitter in [0.5, 1.5). Regret: conversions lost at 1000 sessions a day at
    3% conversion when the kept version is worse by |lift|, half of it during the test.
    """
    rng = np.random.default_rng(seed)
    out = []
    for lift in lifts:
        for _ in range(runs):
            i = len(out)
            estimate = lift + se * float(rng.standard_normal())
            z = estimate / se
            winner = CANDIDATE if z > Z else PRIMARY if z < -Z else NO_WINNER
            jitter = 0.5 + float(rng.random())
            time = (decide_s if winner != NO_WINNER else 2 * decide_s) * jitter
            days = time / 86_400.0
            during = 0.5 * 1000 * 0.03 * abs(lift) * days  # half the sessions on the worse version
            kept_worse = (lift > 0 and winner != CANDIDATE) or (lift < 0 and winner == CANDIDATE)
            after = 1000 * 0.03 * abs(lift) * 7.0 if kept_worse else 0.0
            out.append(
                RunRecord(
                    scenario=scenario,
                    policy=policy,
                    run=i,
                    seed=1000 + i,
                    outcome="promoted" if winner == CANDIDATE else "rolled_back",
                    release_bad=False,
                    decision_time_s=time,
                    detection_time_s=None,
                    canary_requests=100,
                    canary_errors=0,
                    excess_errors=0.0,
                    users_exposed=10,
                    users_affected=0,
                    false_rollback=winner != CANDIDATE,
                    missed=False,
                    excess_errors_after_promotion=0.0,
                    fault_onset_s=None,
                    final_phase="done",
                    ticks=10,
                    rollback_reason="",
                    winner=winner,
                    correct=winner_correct(winner, lift, min_effect),
                    true_lift=lift,
                    lift_estimate=estimate,
                    lift_ci_low=estimate - Z * se,
                    lift_ci_high=estimate + Z * se,
                    regret_conversions=during,
                    regret_revenue=40.0 * during,
                    regret_conversions_after_promotion=after,
                    regret_revenue_after_promotion=40.0 * after,
                    sessions=1000.0 * days,
                    srm=bool(rng.random() < 0.01),
                )
            )
    return out


__all__ = ["Z", "analytic_power", "business_records"]
