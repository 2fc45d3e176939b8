"""Sample-ratio mismatch: the chi-square test of assignment counts against the planned split.

A broken split (a redirect that loses users of one arm, a bot filter, a buggy hash)
biases every comparison, so experiment platforms test the observed counts against the
plan before trusting a result: Fabijan, Gupchup, Gupta, Omhover, Qin, Vermeer & Dmitriev,
"Diagnosing Sample Ratio Mismatch in Online Controlled Experiments" (KDD 2019); Kohavi,
Tang & Xu, *Trustworthy Online Controlled Experiments* (2020), ch. 21, which flag p-values
below 0.001. Pearson's statistic with one degree of freedom (two arms):

    X² = (n_A − N·π_A)²/(N·π_A) + (n_B − N·π_B)²/(N·π_B),   p = P(χ²₁ > X²)

with N = n_A + n_B and π_B the planned share of the candidate (scipy.stats.chisquare).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: p-value below which a split is flagged (Kohavi, Tang & Xu 2020, ch. 21).
SRM_THRESHOLD = 0.001


def srm_check(
    n_a: Any, n_b: Any, share_b: float = 0.5, threshold: float = SRM_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """(p-value, flagged) per run for the counts of each arm against the planned share of B.

    Args:
        n_a: units assigned to the primary, per run.
        n_b: units assigned to the candidate, per run.
        share_b: the planned share of the candidate, in (0, 1) (a 50% split: 0.5).
        threshold: flag p-values below it.

    Returns:
        p-values (1 where no unit was assigned) and whether each is below ``threshold``.

    Raises:
        ValueError: a share or threshold outside (0, 1) (a caller's spec validates them first).
    """
    from scipy.special import chdtrc

    if not 0.0 < share_b < 1.0:
        raise ValueError(f"the planned share of the candidate must be in (0, 1) (got {share_b})")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the SRM threshold must be in (0, 1) (got {threshold})")
    na, nb = np.atleast_1d(np.asarray(n_a, dtype=float)), np.atleast_1d(np.asarray(n_b, dtype=float))
    total = na + nb
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    ea, eb = safe * (1.0 - share_b), safe * share_b
    x2 = (na - ea) ** 2 / ea + (nb - eb) ** 2 / eb
    p = np.where(ok, chdtrc(1.0, x2), 1.0)
    return p, p < threshold
