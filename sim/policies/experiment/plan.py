"""Planning a fixed-horizon A/B experiment: sample size, power, minimum detectable lift, duration.

Pure functions of the experiment's design (issue 19, item 4); ``pdsim plan-ab`` prints them.
Everything is the standard normal approximation of a two-sided two-sample z-test at level
``alpha``. The control arm has ``n`` units (sessions) and the candidate arm ``ratio * n``
(``ratio = split / (100 - split)``, ``split`` the percent of traffic on the candidate). A lift
is *relative*: the candidate's true value is ``baseline * (1 + lift)``.

Difference in proportions (a conversion rate ``p1`` on the control, ``p2 = p1 (1 + lift)`` on the
candidate, ``Δ = p2 - p1``, ``k = ratio``, ``z_a = z_{1-alpha/2}``, ``z_b = z_{power}``):

* ``method="pooled"`` (the default; Fleiss, Levin & Paik, *Statistical Methods for Rates and
  Proportions*, 3rd ed. 2003, section 4.2, eq. 4.14 without continuity correction, in its
  unequal-arms form): the test's statistic is standardised with the **pooled variance under
  H0** and its spread under the alternative is the **unpooled variance under H1**::

      p̄ = (p1 + k p2) / (1 + k)
      σ0 = sqrt(p̄ (1 - p̄) (1 + 1/k))          # sd of Δ̂ · sqrt(n) under H0
      σ1 = sqrt(p1 (1 - p1) + p2 (1 - p2) / k)  # sd of Δ̂ · sqrt(n) under H1
      n = ((z_a σ0 + z_b σ1) / Δ)²
      power(n) = Φ((|Δ| sqrt(n) - z_a σ0) / σ1) + Φ((-|Δ| sqrt(n) - z_a σ0) / σ1)

  The sample-size formula ignores the far tail (negligible); the power counts both. These are
  exactly statsmodels' ``samplesize_proportions_2indep_onetail`` and
  ``power_proportions_2indep`` (0.15).
* ``method="unpooled"`` (Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*,
  2nd ed. 2008, section 4.2.1, the two-sample test for equality): the **unpooled variance
  under H1** on both sides, ``n = ((z_a + z_b) σ1 / Δ)²``.
* ``method="arcsine"`` (Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.
  1988, section 6.2): the variance-stabilising effect size ``h = 2 asin(sqrt(p2)) -
  2 asin(sqrt(p1))``, whose estimate has variance ``1/n1 + 1/n2`` whatever the rates:
  ``n = ((z_a + z_b) / h)² (1 + 1/k)``. This is statsmodels' ``NormalIndPower`` fed
  ``proportion_effectsize``.

Difference in means (``mean_*``): the two-sample z-test with a **common standard deviation**
``sd`` in both arms (Chow, Shao & Wang 2008, section 3.2.1, the large-sample z form)::

    n = ((z_a + z_b) sd / Δ)² (1 + 1/k),   Δ = mean · lift
    power(n) = Φ(|Δ| / se - z_a) + Φ(-|Δ| / se - z_a),   se = sd sqrt(1/n + 1/(k n))

which is statsmodels' ``NormalIndPower`` with effect size ``Δ / sd``. For revenue per session
(``revenue_per_session``): a session converts with probability ``p`` and a conversion's order
value is lognormal with median ``m`` and log-sd ``s`` (``V = m e^{s Z}``), so ``R = B V`` with
``B ~ Bernoulli(p)`` independent of ``V``::

    E[R] = p m e^{s²/2},   E[R²] = p m² e^{2 s²},   Var R = E[R²] - E[R]²

(the lognormal's moments, e.g. Johnson, Kotz & Balakrishnan, *Continuous Univariate
Distributions* vol. 1, 2nd ed. 1994, eq. 14.8a). The lift is on ``E[R]``; the control's ``sd``
is used for both arms by default (a lift of a few percent changes it by about as much); give
``sd_candidate`` when it differs, e.g. ``(1 + lift) sd`` for a lift that scales every order value.

Sequential planning is left out on purpose: an anytime-valid test (the mixture SPRT of Johari
et al. 2017 that pdsim's experiment policy uses) needs more sessions than this fixed-horizon
sample for the same power, by a factor that depends on its mixing variance and the true lift;
no closed form gives it honestly, so pdsim measures it by simulation instead of quoting one.

scipy is imported inside the functions that need it (docs/architecture.md section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Method",
    "SampleSize",
    "days_needed",
    "mean_mde",
    "mean_power",
    "mean_sample_size",
    "proportion_mde",
    "proportion_power",
    "proportion_sample_size",
    "ratio_from_split",
    "revenue_per_session",
    "sessions_per_day",
]

#: Which variance the proportion formulas use (see the module's docstring).
Method = Literal["pooled", "unpooled", "arcsine"]

_METHODS = ("pooled", "unpooled", "arcsine")


@dataclass(frozen=True)
class SampleSize:
    """Units (sessions) each arm needs; floats as the formula gives them (round up to use).

    Attributes:
        control: Sessions on the control (primary) arm.
        candidate: Sessions on the candidate arm (``ratio * control``).
    """

    control: float
    candidate: float

    @property
    def total(self) -> float:
        """Sessions on both arms."""
        return self.control + self.candidate

    def rounded(self) -> tuple[int, int]:
        """Each arm's sessions rounded up: ``(control, candidate)``."""
        return math.ceil(self.control - 1e-9), math.ceil(self.candidate - 1e-9)


# --- checks ---------------------------------------------------------------------------------


def _open_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be between 0 and 1, exclusive (got {value!r})")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number (got {value!r})")


def _design(alpha: float, power: float | None, ratio: float) -> None:
    _open_unit("alpha", alpha)
    if power is not None:
        _open_unit("power", power)
    _positive("ratio", ratio)


def _method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)} (got {method!r})")


def _candidate_rate(rate: float, lift: float) -> float:
    _open_unit("rate", rate)
    if not (isinstance(lift, (int, float)) and math.isfinite(lift)) or lift == 0:
        raise ValueError(f"lift must be a nonzero relative change, e.g. 0.02 for +2% (got {lift!r})")
    p2 = rate * (1.0 + lift)
    if not 0.0 < p2 < 1.0:
        raise ValueError(f"the candidate's rate rate * (1 + lift) = {p2:.6g} is outside (0, 1)")
    return p2


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _phi(x: float) -> float:
    from scipy.stats import norm

    return float(norm.cdf(x))


# --- proportions ----------------------------------------------------------------------------


def _proportion_sds(p1: float, p2: float, ratio: float, method: str) -> tuple[float, float, float]:
    """``(effect, σ0, σ1)``: the effect on the test's scale and the sd of its estimate times
    ``sqrt(n_control)`` under H0 and under H1 (Fleiss et al. 2003, eq. 4.14; Cohen 1988, 6.2)."""
    if method == "arcsine":
        h = 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))
        sd = math.sqrt(1.0 + 1.0 / ratio)
        return h, sd, sd
    sd1 = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio)
    if method == "unpooled":
        return p2 - p1, sd1, sd1
    pooled = (p1 + ratio * p2) / (1.0 + ratio)
    sd0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 + 1.0 / ratio))
    return p2 - p1, sd0, sd1


def proportion_sample_size(
    rate: float,
    lift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    method: Method = "pooled",
) -> SampleSize:
    """Sessions per arm for a two-sided test of a difference in conversion rates.

    ``n = ((z_{1-α/2} σ0 + z_{power} σ1) / Δ)²`` on the control and ``ratio * n`` on the
    candidate (Fleiss, Levin & Paik 2003, eq. 4.14; the variances per ``method`` in the
    module's docstring).

    Args:
        rate: The control's conversion rate per session, in (0, 1).
        lift: The candidate's relative change to detect (0.02: +2%; negative works too).
        alpha: Two-sided significance level.
        power: Probability of rejecting at that lift.
        ratio: Candidate sessions per control session.
        method: ``pooled`` (H0 pooled / H1 unpooled), ``unpooled`` or ``arcsine``.

    Returns:
        The sessions each arm needs.

    Raises:
        ValueError: A rate, lift, alpha, power or ratio out of range (one line).
    """
    _design(alpha, power, ratio)
    _method(method)
    p2 = _candidate_rate(rate, lift)
    effect, sd0, sd1 = _proportion_sds(rate, p2, ratio, method)
    n = ((_z(1.0 - alpha / 2.0) * sd0 + _z(power) * sd1) / effect) ** 2
    return SampleSize(n, ratio * n)


def proportion_power(
    rate: float,
    lift: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    ratio: float = 1.0,
    method: Method = "pooled",
) -> float:
    """Power of the two-sided test with ``n_control`` and ``ratio * n_control`` sessions.

    ``Φ((|Δ| sqrt(n) - z σ0) / σ1) + Φ((-|Δ| sqrt(n) - z σ0) / σ1)``, both tails (Fleiss et al.
    2003, section 4.2; ``z = z_{1-α/2}``).

    Args:
        rate: The control's conversion rate.
        lift: The candidate's true relative change.
        n_control: Sessions on the control arm.
        alpha: Two-sided significance level.
        ratio: Candidate sessions per control session.
        method: As in ``proportion_sample_size``.

    Returns:
        The probability of rejecting H0.
    """
    _design(alpha, None, ratio)
    _method(method)
    _positive("n_control", n_control)
    p2 = _candidate_rate(rate, lift)
    effect, sd0, sd1 = _proportion_sds(rate, p2, ratio, method)
    z = _z(1.0 - alpha / 2.0)
    shift = abs(effect) * math.sqrt(n_control)
    return _phi((shift - z * sd0) / sd1) + _phi((-shift - z * sd0) / sd1)


def proportion_mde(
    rate: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    method: Method = "pooled",
) -> float:
    """The smallest positive relative lift detected with ``power`` at this sample.

    Solves ``proportion_power(rate, lift, n_control) = power`` for ``lift > 0`` (Brent's
    method; the power rises with the lift).

    Returns:
        The relative lift; ``inf`` when even ``rate * (1 + lift)`` near 1 falls short.
    """
    from scipy.optimize import brentq

    _design(alpha, power, ratio)
    _method(method)
    _open_unit("rate", rate)
    _positive("n_control", n_control)
    top = (1.0 - 1e-9) / rate - 1.0  # the largest lift that keeps the rate below 1

    def gap(lift: float) -> float:
        return proportion_power(rate, lift, n_control, alpha=alpha, ratio=ratio, method=method) - power

    if gap(top) < 0:
        return math.inf
    return float(brentq(gap, 1e-12, top, xtol=1e-12, rtol=1e-10))


# --- means ----------------------------------------------------------------------------------


def _mean_inputs(mean: float, sd: float) -> None:
    _positive("mean", mean)
    _positive("sd", sd)


def _lift(lift: float) -> None:
    if not (isinstance(lift, (int, float)) and math.isfinite(lift)) or lift == 0:
        raise ValueError(f"lift must be a nonzero relative change, e.g. 0.02 for +2% (got {lift!r})")


def mean_sample_size(
    mean: float,
    sd: float,
    lift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    sd_candidate: float | None = None,
) -> SampleSize:
    """Sessions per arm for a two-sided z-test of a difference in means (common ``sd``).

    ``n = ((z_{1-α/2} + z_{power}) sd / Δ)² (1 + 1/ratio)``, ``Δ = mean * lift`` (Chow, Shao &
    Wang 2008, section 3.2.1).

    Args:
        mean: The control's mean per session (e.g. revenue per session).
        sd: The per-session standard deviation, taken as the same in both arms.
        lift: The candidate's relative change of the mean.
        alpha: Two-sided significance level.
        power: Probability of rejecting at that lift.
        ratio: Candidate sessions per control session.
        sd_candidate: The candidate's sd when it differs (unequal variances, Chow, Shao & Wang
            2008, 3.2: ``n = (z_a + z_b)² (sd² + sd_candidate² / ratio) / Δ²``); e.g. a lift that
            scales every order value by ``1 + lift`` scales the sd too. Default: ``sd``.
    """
    _design(alpha, power, ratio)
    _mean_inputs(mean, sd)
    _lift(lift)
    var = _mean_var(sd, sd_candidate, ratio)
    n = ((_z(1.0 - alpha / 2.0) + _z(power)) / (mean * lift)) ** 2 * var
    return SampleSize(n, ratio * n)


def _mean_var(sd: float, sd_candidate: float | None, ratio: float) -> float:
    """``n_control`` times the variance of the difference of the arms' means."""
    if sd_candidate is None:
        sd_candidate = sd
    _positive("sd_candidate", sd_candidate)
    return sd**2 + sd_candidate**2 / ratio


def mean_power(
    mean: float,
    sd: float,
    lift: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    ratio: float = 1.0,
    sd_candidate: float | None = None,
) -> float:
    """Power of the two-sided z-test for means: ``Φ(|Δ|/se - z) + Φ(-|Δ|/se - z)``,
    ``se = sqrt(sd²/n + sd_candidate²/(ratio n))`` (Chow, Shao & Wang 2008, section 3.2)."""
    _design(alpha, None, ratio)
    _mean_inputs(mean, sd)
    _lift(lift)
    _positive("n_control", n_control)
    se = math.sqrt(_mean_var(sd, sd_candidate, ratio) / n_control)
    z = _z(1.0 - alpha / 2.0)
    shift = abs(mean * lift) / se
    return _phi(shift - z) + _phi(-shift - z)


def mean_mde(
    mean: float,
    sd: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    sd_candidate: float | None = None,
) -> float:
    """The smallest positive relative lift of the mean detected with ``power``:
    ``(z_{1-α/2} + z_{power}) se / mean`` (the far tail ignored, as in the sample size)."""
    _design(alpha, power, ratio)
    _mean_inputs(mean, sd)
    _positive("n_control", n_control)
    se = math.sqrt(_mean_var(sd, sd_candidate, ratio) / n_control)
    return (_z(1.0 - alpha / 2.0) + _z(power)) * se / mean


def revenue_per_session(rate: float, median: float, sigma: float) -> tuple[float, float]:
    """Mean and sd of revenue per session: a conversion with probability ``rate``, then a
    lognormal order value of median ``median`` and log-sd ``sigma``.

    ``E[R] = p m e^{σ²/2}``, ``Var R = p m² e^{2σ²} - E[R]²`` (the lognormal's moments,
    Johnson, Kotz & Balakrishnan 1994, eq. 14.8a).

    Returns:
        ``(mean, sd)`` per session.
    """
    _open_unit("rate", rate)
    _positive("median", median)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a number >= 0 (got {sigma!r})")
    mean = rate * median * math.exp(sigma**2 / 2.0)
    second = rate * median**2 * math.exp(2.0 * sigma**2)
    return mean, math.sqrt(second - mean**2)


# --- traffic --------------------------------------------------------------------------------


def ratio_from_split(split: float) -> float:
    """Candidate sessions per control session when ``split`` percent of traffic goes to the
    candidate: ``split / (100 - split)``."""
    if not (isinstance(split, (int, float)) and 0.0 < split < 100.0):
        raise ValueError(f"split must be a percent between 0 and 100, exclusive (got {split!r})")
    return split / (100.0 - split)


def sessions_per_day(requests_per_s: float, requests_per_session: float) -> float:
    """Sessions a day from a mean request rate: ``86400 * rate / requests_per_session``."""
    _positive("requests per second", requests_per_s)
    _positive("requests per session", requests_per_session)
    return 86400.0 * requests_per_s / requests_per_session


def days_needed(sample: SampleSize, daily_sessions: float, split: float) -> float:
    """Days until both arms have their sessions, when ``split`` percent of ``daily_sessions``
    go to the candidate and the rest to the control: the larger of the two arms' times."""
    _positive("sessions per day", daily_sessions)
    share = split / 100.0
    if not 0.0 < share < 1.0:
        raise ValueError(f"split must be a percent between 0 and 100, exclusive (got {split!r})")
    return max(sample.control / ((1.0 - share) * daily_sessions), sample.candidate / (share * daily_sessions))
