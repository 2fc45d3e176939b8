"""The fits of ``pdsim calibrate``: each takes counts per scrape interval and returns
estimates with standard errors, by the laws the world simulates (``Noise`` and
``Latency`` in ``sim.inputs.scenario`` state them).

* traffic profile: ``λ(t) = mean (1 + a sin(2π(t + phase)/1 day))`` by linear least squares
  on ``b0 + b1 sin ωt + b2 cos ωt`` (t from the recording's first timestamp);
* request overdispersion: the dispersion index (variance / mean of counts per window,
  around the profile) at several windows and the autocorrelation of the residuals,
  matched (method of moments, ``scipy.optimize``) by gamma blocks of one window or by an
  Ornstein–Uhlenbeck log-rate;
* errors: the ratio and the Pearson dispersion of error counts given the requests;
* pods: the between-pod variance of the error ratio and of the log latency beyond
  sampling, as the variance of lognormal multipliers;
* latency: lognormal and 2-component lognormal mixture by maximum likelihood on the
  interval-censored bucket counts, chosen by AIC, or the empirical histogram when neither
  fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

DAY_S = 86400.0
#: z of the 99th percentile: p99 = median * exp(Z99 * sigma).
Z99 = float(stats.norm.ppf(0.99))
#: A daily cycle is fitted only from recordings this long (the sinusoid's period is known;
#: less than half a day cannot tell a cycle from a trend).
MIN_DIURNAL_SPAN_S = 12 * 3600.0
#: AIC lead the mixture needs over the lognormal (Burnham and Anderson: a difference above
#: 10 leaves the other model essentially no support); below it the simpler law is kept.
MIXTURE_AIC_LEAD = 10.0
#: Largest gap between the fitted law's and the recorded CDF at a bucket bound for a
#: parametric law to stand; beyond it the empirical histogram is written.
MAX_CDF_GAP = 0.02


@dataclass(frozen=True)
class Estimate:
    """A fitted value, its standard error (NaN: not available) and what it came from."""

    value: float
    se: float = math.nan

    def text(self, fmt: str = ".4g") -> str:
        """``value ± se`` (the value alone when there is no standard error)."""
        if math.isnan(self.se):
            return format(self.value, fmt)
        return f"{format(self.value, fmt)} ± {format(self.se, '.2g')}"


# --- traffic profile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The fitted request rate: constant, or a daily sinusoid.

    Attributes:
        mean: requests/s.
        amplitude: relative amplitude ``a`` (None: constant rate).
        phase_s: the ``phase`` of ``Diurnal`` (seconds), so that simulated t = 0 is the
            recording's first timestamp.
        expected: (T,) expected requests per interval under the profile.
    """

    mean: Estimate
    amplitude: Estimate | None
    phase_s: Estimate | None
    expected: np.ndarray


def fit_profile(counts: np.ndarray, step_s: float, *, period_s: float = DAY_S) -> Profile:
    """Fit the traffic profile to requests per interval.

    Interval i covers ``(i step, (i + 1) step]`` after the first timestamp; the sinusoid
    is evaluated at its middle. ``b1 sin ωt + b2 cos ωt = A sin(ω(t + phase))`` with
    ``A = hypot(b1, b2)`` and ``phase = atan2(b2, b1) / ω``. The cycle is kept when the
    recording spans ``MIN_DIURNAL_SPAN_S`` and its amplitude is 3 standard errors from 0.
    """
    counts = np.asarray(counts, dtype=float)
    n = len(counts)
    mid = (np.arange(n) + 0.5) * step_s
    mean_count = counts.mean()
    se_mean = counts.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    constant = Profile(Estimate(mean_count / step_s, se_mean / step_s), None, None, np.full(n, mean_count))
    if n * step_s < MIN_DIURNAL_SPAN_S or mean_count <= 0:
        return constant
    w = 2 * math.pi / period_s
    x = np.column_stack([np.ones(n), np.sin(w * mid), np.cos(w * mid)])
    beta, *_ = np.linalg.lstsq(x, counts, rcond=None)
    resid = counts - x @ beta
    cov = np.linalg.inv(x.T @ x) * (resid @ resid) / (n - 3)
    b0, b1, b2 = beta
    big = math.hypot(b1, b2)
    amp = big / b0
    # Delta method for a = hypot(b1, b2) / b0 and phase = atan2(b2, b1) / w.
    grad_a = np.array([-amp / b0, b1 / (big * b0), b2 / (big * b0)]) if big > 0 else np.zeros(3)
    se_amp = math.sqrt(max(grad_a @ cov @ grad_a, 0.0))
    if amp < 3 * se_amp:
        return constant
    grad_p = np.array([0.0, -b2 / big**2, b1 / big**2]) / w
    se_phase = math.sqrt(max(grad_p @ cov @ grad_p, 0.0))
    amp = min(amp, 0.99)  # λ stays positive (Diurnal allows at most 1)
    phase = (math.atan2(b2, b1) / w) % period_s
    expected = np.clip(b0 * (1 + amp * np.sin(w * (mid + phase))), 1e-9, None)
    return Profile(
        Estimate(b0 / step_s, math.sqrt(cov[0, 0]) / step_s), Estimate(amp, se_amp), Estimate(phase, se_phase), expected
    )


# --- dispersion and autocorrelation -------------------------------------------------------


@dataclass(frozen=True)
class Dispersions:
    """Dispersion indexes of counts around their expectation, per window.

    Attributes:
        windows: window lengths in intervals.
        index: Pearson dispersion ``Σ (C - E)² / V / (n - 1)`` of counts over
            non-overlapping windows aligned to the first interval (V: E for Poisson
            counts, N p (1 - p) for binomial errors).
        se: its standard error, ``index * sqrt(2 / (n - 1))`` (chi-square).
        blocks: windows counted.
    """

    windows: np.ndarray
    index: np.ndarray
    se: np.ndarray
    blocks: np.ndarray


def _blocks(x: np.ndarray, k: int) -> np.ndarray:
    n = len(x) // k
    return x[: n * k].reshape(n, k).sum(axis=1)


def dispersion_index(
    counts: np.ndarray, expected: np.ndarray, windows: Sequence[int], trials: np.ndarray | None = None
) -> Dispersions:
    """Dispersion of ``counts`` around ``expected`` over windows of ``windows`` intervals.

    With ``trials`` (requests per interval), counts are errors and the reference is the
    binomial variance ``N p (1 - p)`` given the requests, ``p = Σ expected / Σ trials``.
    Windows with fewer than 4 blocks are left out.
    """
    out = []
    for k in windows:
        c, e = _blocks(counts, k), _blocks(expected, k)
        if len(c) < 4:
            continue
        if trials is not None:
            n = _blocks(trials, k)
            p = e.sum() / max(n.sum(), 1.0)
            var = n * p * (1 - p)
        else:
            var = e
        ok = var > 0
        d = float(np.sum((c[ok] - e[ok]) ** 2 / var[ok]) / max(ok.sum() - 1, 1))
        out.append((k, d, d * math.sqrt(2 / max(ok.sum() - 1, 1)), int(ok.sum())))
    arr = np.array(out, dtype=float).reshape(-1, 4)
    return Dispersions(arr[:, 0].astype(int), arr[:, 1], arr[:, 2], arr[:, 3].astype(int))


def autocorrelation(counts: np.ndarray, expected: np.ndarray, lags: int) -> np.ndarray:
    """Autocorrelation of the Pearson residuals ``(C - E)/sqrt(E)`` at lags 1..``lags``."""
    r = (counts - expected) / np.sqrt(np.clip(expected, 1e-12, None))
    r = r - r.mean()
    denom = float(r @ r)
    if denom <= 0:
        return np.zeros(lags)
    return np.array([float(r[:-k] @ r[k:]) / denom if k < len(r) else 0.0 for k in range(1, lags + 1)])


# --- the noise model of requests -----------------------------------------------------------


@dataclass(frozen=True)
class CountNoise:
    """The model chosen for overdispersed counts.

    Attributes:
        kind: ``poisson`` (no overdispersion), ``blocks`` (gamma multiplier per window:
            ``noise.requests``/``noise.errors``) or ``ou`` (Ornstein–Uhlenbeck log-rate:
            ``noise.processes``).
        dispersion: ``blocks``: the dispersion index at ``window_s``.
        window_s: ``blocks``: the window.
        sigma: ``ou``: stationary standard deviation of the log multiplier.
        tau_s: ``ou``: correlation time.
        loss: the weighted squared misfit of the chosen model.
        losses: each candidate's misfit, for the comment.
    """

    kind: str
    dispersion: Estimate | None = None
    window_s: float | None = None
    sigma: Estimate | None = None
    tau_s: Estimate | None = None
    loss: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)


def blocks_dispersion(k: np.ndarray, d: float, w0: int) -> np.ndarray:
    """Dispersion index at windows of ``k`` intervals of counts whose mean is multiplied
    by a gamma variable per window of ``w0`` intervals with index ``d`` at that window:
    ``1 + (d - 1) min(k, w0) / w0`` (aligned windows)."""
    return 1.0 + (d - 1.0) * np.minimum(k, w0) / w0


def blocks_acf(lags: np.ndarray, d: float, w0: int) -> np.ndarray:
    """Lag autocorrelation of per-interval counts under ``blocks_dispersion``'s model:
    the share of interval pairs at that lag within one window, times the excess share of
    the variance ``(d1 - 1) / d1`` (d1: the index at one interval)."""
    d1 = 1.0 + (d - 1.0) / w0
    return np.clip(1 - lags / w0, 0, None) * (d1 - 1) / d1


def ou_dispersion(k: np.ndarray, sigma: float, tau_intervals: float, mu: float) -> np.ndarray:
    """Dispersion index at windows of ``k`` intervals of Poisson counts (mean ``mu`` per
    interval) whose rate is multiplied by ``exp(X - σ²/2)``, X an OU process constant
    over each interval with lag-j correlation ``exp(-j / tau)``:
    ``1 + mu / k Σ_{i,j<k} (exp(σ² ρ^|i-j|) - 1)``."""
    out = []
    rho = math.exp(-1.0 / tau_intervals)
    for kk in np.atleast_1d(k):
        j = np.arange(int(kk))
        weights = np.where(j == 0, kk, 2 * (kk - j))
        out.append(1 + mu / kk * float(np.sum(weights * np.expm1(sigma**2 * rho**j))))
    return np.array(out)


def ou_acf(lags: np.ndarray, sigma: float, tau_intervals: float, mu: float) -> np.ndarray:
    """Lag autocorrelation of per-interval counts under ``ou_dispersion``'s model."""
    rho = math.exp(-1.0 / tau_intervals)
    return mu * np.expm1(sigma**2 * rho ** np.asarray(lags)) / (1 + mu * math.expm1(sigma**2))


def _se_from_curvature(loss: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Standard errors of a weighted least-squares fit (loss Σ z², z standard normal):
    ``Var ≈ 2 H⁻¹``, H the loss's Hessian at the minimum."""
    try:
        cov = 2 * np.linalg.inv(_hessian(loss, x))
    except np.linalg.LinAlgError:
        return np.full(len(x), math.nan)
    return np.sqrt(np.clip(np.diag(cov), 0, None))


def fit_count_noise(
    disp: Dispersions, acf: np.ndarray, n_intervals: int, mu: float, step_s: float, *, ou: bool = True
) -> CountNoise:
    """Choose and fit the noise model of counts (method of moments).

    The misfit is ``Σ ((D_obs - D_model) / se)²`` over the windows plus
    ``Σ ((acf_obs - acf_model) · sqrt(n))²`` over the lags. Candidates: Poisson; gamma
    blocks at each window of ``disp`` (index fitted); with ``ou``, an OU log-rate (σ, τ
    fitted). The smallest misfit wins; Poisson when no window's index is 2 standard
    errors above 1.

    Args:
        disp: observed dispersion indexes.
        acf: observed autocorrelation at lags 1.., per interval.
        n_intervals: intervals behind ``acf``.
        mu: mean count per interval.
        step_s: seconds per interval.
        ou: whether the OU candidate is offered (requests: yes; errors: no, the world's
            error processes are multipliers of the rate, not of the counts' dispersion).
    """
    lags = np.arange(1, len(acf) + 1)
    se = np.maximum(disp.se, 1e-9)
    w_acf = math.sqrt(n_intervals)

    def misfit(d_model: np.ndarray, acf_model: np.ndarray | None) -> float:
        z = np.sum(((disp.index - d_model) / se) ** 2)
        if acf_model is not None:
            z += np.sum(((acf - acf_model) * w_acf) ** 2)
        return float(z)

    poisson_loss = misfit(np.ones(len(disp.index)), np.zeros(len(acf)))
    losses = {"poisson": poisson_loss}
    if not np.any(disp.index - 2 * se > 1.0):
        return CountNoise("poisson", loss=poisson_loss, losses=losses)
    best = CountNoise("poisson", loss=poisson_loss, losses=losses)
    for w0 in disp.windows:
        w0 = int(w0)

        def loss_b(x: np.ndarray, w0: int = w0) -> float:
            d = 1 + math.exp(x[0])
            return misfit(blocks_dispersion(disp.windows, d, w0), blocks_acf(lags, d, w0))

        start = max(float(np.max(disp.index)) - 1, 1e-3)
        res = optimize.minimize(loss_b, np.array([math.log(start)]), method="Nelder-Mead")
        d = 1 + math.exp(res.x[0])
        se_log = _se_from_curvature(loss_b, res.x)[0]
        name = f"blocks {w0 * step_s:g}s"
        losses[name] = float(res.fun)
        if res.fun < best.loss:
            best = CountNoise(
                "blocks", dispersion=Estimate(d, (d - 1) * se_log), window_s=w0 * step_s, loss=float(res.fun)
            )
    if ou and mu > 0:

        def loss_ou(x: np.ndarray) -> float:
            sigma, tau = math.exp(x[0]), math.exp(x[1])
            if sigma > 3:
                return 1e12
            return misfit(ou_dispersion(disp.windows, sigma, tau, mu), ou_acf(lags, sigma, tau, mu))

        starts = [(s, t) for s in (0.05, 0.2, 0.5) for t in (1.0, 10.0, 100.0)]
        res = min(
            (optimize.minimize(loss_ou, np.log(np.array(p)), method="Nelder-Mead") for p in starts),
            key=lambda r: r.fun,
        )
        losses["ou"] = float(res.fun)
        if res.fun < best.loss:
            se_log = _se_from_curvature(loss_ou, res.x)
            sigma, tau = math.exp(res.x[0]), math.exp(res.x[1])
            best = CountNoise(
                "ou",
                sigma=Estimate(sigma, sigma * se_log[0]),
                tau_s=Estimate(tau * step_s, tau * step_s * se_log[1]),
                loss=float(res.fun),
            )
    return CountNoise(
        best.kind,
        dispersion=best.dispersion,
        window_s=best.window_s,
        sigma=best.sigma,
        tau_s=best.tau_s,
        loss=best.loss,
        losses=losses,
    )


# --- errors ---------------------------------------------------------------------------------


def error_ratio(errors: np.ndarray, requests: np.ndarray, dispersion: float = 1.0) -> Estimate:
    """5xx over all responses; the binomial standard error inflated by the errors'
    ``dispersion`` index (at the longest window measured)."""
    n, e = float(requests.sum()), float(errors.sum())
    if n <= 0:
        return Estimate(0.0)
    p = e / n
    return Estimate(p, math.sqrt(max(p * (1 - p), 1e-300) * max(dispersion, 1.0) / n))


# --- pods -----------------------------------------------------------------------------------


def pod_error_sd(errors: np.ndarray, requests: np.ndarray) -> Estimate | None:
    """Standard deviation of per-pod log multipliers of the error rate, method of moments.

    With pod j's totals ``N_j, E_j`` and multipliers ``m_j`` of mean 1:
    ``E Σ (E_j - N_j p)² ≈ Σ N_j p (1 - p) + p² Var(m) Σ N_j²``, so
    ``Var(m) = (Σ (E_j - N_j p̂)² - Σ N_j p̂(1 - p̂)) / (p̂² Σ N_j²)`` and
    ``sd = sqrt(log(1 + Var(m)))`` (lognormal), 0 when negative. Shocks common to all pods
    cancel (they move every pod's ratio alike). None: fewer than 2 pods or no errors.
    """
    n = requests.sum(axis=0)
    e = errors.sum(axis=0)
    keep = n > 0
    n, e = n[keep], e[keep]
    if len(n) < 2 or e.sum() <= 0:
        return None
    p = e.sum() / n.sum()
    excess = float(np.sum((e - n * p) ** 2) - np.sum(n * p * (1 - p)) * (len(n) - 1) / len(n))
    var_m = max(excess / (p**2 * float(np.sum(n**2))), 0.0)
    sd = math.sqrt(math.log1p(var_m))
    # A variance from P pods has relative standard error about sqrt(2 / (P - 1)).
    se = sd * math.sqrt(2 / (len(n) - 1)) / 2 if sd > 0 else math.nan
    return Estimate(sd, se)


def _bucket_log_mid(le_ms: np.ndarray) -> np.ndarray:
    """Log of each bucket's representative latency: the geometric middle of its bounds
    (the first from half its bound, the one above the last bound at twice it)."""
    lo = np.concatenate([[le_ms[0] / 2], le_ms])
    hi = np.concatenate([le_ms, [le_ms[-1] * 2]])
    return 0.5 * (np.log(lo) + np.log(hi))


def pod_latency_sd(buckets: np.ndarray, le_ms: np.ndarray) -> Estimate | None:
    """Standard deviation of per-pod log multipliers of latency, method of moments:
    the between-pod variance of each pod's mean log latency (bucket middles) minus its
    sampling variance (within-pod variance / pod's count). None: fewer than 2 pods."""
    if buckets.shape[0] < 2 or len(le_ms) == 0:
        return None
    mid = _bucket_log_mid(le_ms)
    n = buckets.sum(axis=1)
    keep = n > 1
    if keep.sum() < 2:
        return None
    b, n = buckets[keep], n[keep]
    means = b @ mid / n
    within = (b @ mid**2) / n - means**2
    var = float(np.var(means, ddof=1) - np.mean(within / n))
    sd = math.sqrt(max(var, 0.0))
    return Estimate(sd, sd * math.sqrt(2 / (len(n) - 1)) / 2 if sd > 0 else math.nan)


# --- latency ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyFit:
    """The latency law chosen from the histogram.

    Attributes:
        kind: ``lognormal``, ``mixture`` or ``histogram``.
        components: (weight, median ms, p99 ms) per lognormal component, with standard errors
            of the medians and p99s.
        aic: AIC per candidate.
        gap: each candidate's largest CDF gap at a bucket bound.
        why: a sentence on the choice.
        le_ms, counts: the histogram (for ``histogram``; finite buckets, the overflow added
            to the last one).
        observations: requests behind the fit.
    """

    kind: str
    components: tuple[tuple[float, Estimate, Estimate], ...]
    aic: dict[str, float]
    gap: dict[str, float]
    why: str
    le_ms: tuple[float, ...]
    counts: tuple[float, ...]
    observations: float


def _cdf_lognormal(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return stats.norm.cdf((np.log(x) - mu) / sigma)


def _mixture_cdf(x: np.ndarray, params: np.ndarray) -> np.ndarray:
    """CDF at ``x`` of the mixture given as unconstrained parameters
    (logit weight, mu1, log sigma1, mu2, log sigma2), or a lognormal (mu, log sigma)."""
    if len(params) == 2:
        return _cdf_lognormal(x, params[0], math.exp(params[1]))
    w = 1 / (1 + math.exp(-params[0]))
    return w * _cdf_lognormal(x, params[1], math.exp(params[2])) + (1 - w) * _cdf_lognormal(
        x, params[3], math.exp(params[4])
    )


def _neg_loglik(params: np.ndarray, le: np.ndarray, counts: np.ndarray) -> float:
    cdf = np.concatenate([[0.0], _mixture_cdf(le, params), [1.0]])
    prob = np.clip(np.diff(cdf), 1e-300, None)
    return -float(counts @ np.log(prob))


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """The Hessian of ``f`` at ``x`` by central differences."""
    n = len(x)
    h = np.maximum(np.abs(x) * 1e-4, 1e-5)
    hess = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            hess[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return hess


def _component_estimates(params: np.ndarray, cov: np.ndarray) -> tuple[tuple[float, Estimate, Estimate], ...]:
    """(weight, median, p99) per component, standard errors by the delta method."""

    def one(mu_i: int, ls_i: int, weight: float) -> tuple[float, Estimate, Estimate]:
        mu, sigma = params[mu_i], math.exp(params[ls_i])
        med, p99 = math.exp(mu), math.exp(mu + Z99 * sigma)
        se_mu = math.sqrt(max(cov[mu_i, mu_i], 0.0))
        g = np.array([1.0, Z99 * sigma])  # d log p99 / d (mu, log sigma)
        sub = cov[np.ix_([mu_i, ls_i], [mu_i, ls_i])]
        se_log99 = math.sqrt(max(g @ sub @ g, 0.0))
        return weight, Estimate(med, med * se_mu), Estimate(p99, p99 * se_log99)

    if len(params) == 2:
        return (one(0, 1, 1.0),)
    w = 1 / (1 + math.exp(-params[0]))
    return tuple(sorted((one(1, 2, w), one(3, 4, 1 - w)), key=lambda c: c[1].value))


def fit_latency(le_ms: np.ndarray, counts: np.ndarray) -> LatencyFit | None:
    """Fit the latency law to histogram counts per bucket (``Recording.buckets`` summed).

    Maximum likelihood on interval-censored counts: bucket b's probability is
    ``F(le_b) - F(le_{b-1})`` (the last bucket ``1 - F(le_max)``). Candidates: a lognormal
    (2 parameters) and a 2-component lognormal mixture (5), from several starts; the
    mixture when its AIC is lower by ``MIXTURE_AIC_LEAD``. When the winner's CDF misses the recorded one by more than
    ``MAX_CDF_GAP`` at some bucket bound, the empirical histogram is written instead.
    None: no histogram or no observations.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if len(le_ms) == 0 or total <= 0:
        return None
    le = np.asarray(le_ms, dtype=float)
    recorded_cdf = np.cumsum(counts)[:-1] / total
    # Start: the median and p90 read off the recorded CDF.
    med0 = float(np.interp(0.5, recorded_cdf, le))
    p90 = float(np.interp(0.9, recorded_cdf, le))
    mu0 = math.log(max(med0, 1e-3))
    s0 = max(math.log(max(p90, med0 * 1.01) / max(med0, 1e-3)) / 1.2816, 0.05)
    fits: dict[str, tuple[np.ndarray, float]] = {}
    res = optimize.minimize(_neg_loglik, np.array([mu0, math.log(s0)]), args=(le, counts), method="Nelder-Mead")
    fits["lognormal"] = (res.x, float(res.fun))
    best_mix: optimize.OptimizeResult | None = None
    for w0, d1, d2 in ((0.0, -0.5, 0.8), (1.5, -0.2, 1.5), (-1.5, -1.0, 0.3), (0.5, 0.0, 2.5)):
        x0 = np.array([w0, mu0 + d1 * s0, math.log(s0 / 2), mu0 + d2 * s0, math.log(s0 / 2)])
        r = optimize.minimize(
            _neg_loglik,
            x0,
            args=(le, counts),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6},
        )
        if best_mix is None or r.fun < best_mix.fun:
            best_mix = r
    assert best_mix is not None
    fits["mixture"] = (best_mix.x, float(best_mix.fun))
    aic = {k: 2 * len(x) + 2 * nll for k, (x, nll) in fits.items()}
    gap = {k: float(np.max(np.abs(_mixture_cdf(le, x) - recorded_cdf))) for k, (x, _) in fits.items()}
    chosen = "mixture" if aic["mixture"] < aic["lognormal"] - MIXTURE_AIC_LEAD else "lognormal"
    hist_le, hist_counts = _histogram_law(le, counts)
    if gap[chosen] > MAX_CDF_GAP:
        why = (
            f"neither law fits: the {chosen}'s CDF misses the recorded one by {gap[chosen]:.3f} at a bucket bound "
            f"(more than {MAX_CDF_GAP}), so the recorded histogram is the law"
        )
        return LatencyFit("histogram", (), aic, gap, why, hist_le, hist_counts, total)
    x, nll = fits[chosen]
    try:
        cov = np.linalg.inv(_hessian(lambda p: _neg_loglik(p, le, counts), x))
    except np.linalg.LinAlgError:
        cov = np.full((len(x), len(x)), math.nan)
    other = "mixture" if chosen == "lognormal" else "lognormal"
    why = (
        f"{chosen} by AIC ({aic[chosen]:.1f} against the {other}'s {aic[other]:.1f}); largest CDF gap at a "
        f"bucket bound {gap[chosen]:.4f}"
    )
    return LatencyFit(chosen, _component_estimates(x, cov), aic, gap, why, hist_le, hist_counts, total)


#: Failed requests' latency gets its own law from this many observations on.
MIN_ERROR_OBSERVATIONS = 200


def errors_differ(le_ms: np.ndarray, ok: np.ndarray, failed: np.ndarray) -> tuple[bool, float]:
    """Whether failed requests' latency differs from successful ones' (timeouts, fast
    failures): the two-sample Kolmogorov–Smirnov distance of the bucketed CDFs at the
    bucket bounds, significant at 1% (``D > 1.63 sqrt((n1 + n2) / (n1 n2))``) and larger
    than ``MAX_CDF_GAP``; never with fewer than ``MIN_ERROR_OBSERVATIONS`` failures.

    Returns:
        (whether they differ, the distance).
    """
    n1, n2 = float(ok.sum()), float(failed.sum())
    if n2 < MIN_ERROR_OBSERVATIONS or n1 <= 0 or len(le_ms) == 0:
        return False, math.nan
    gap = float(np.max(np.abs(np.cumsum(ok)[:-1] / n1 - np.cumsum(failed)[:-1] / n2)))
    return gap > max(1.63 * math.sqrt((n1 + n2) / (n1 * n2)), MAX_CDF_GAP), gap


def _histogram_law(le: np.ndarray, counts: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The buckets as ``LatencyHistogram`` takes them: finite bounds, the overflow above the
    last bound added to the last bucket (the law has nothing above it), trailing empty
    buckets dropped."""
    c = counts[:-1].copy()
    c[-1] += counts[-1]
    last = int(np.flatnonzero(c)[-1]) + 1 if np.any(c > 0) else len(c)
    return tuple(float(v) for v in le[:last]), tuple(float(v) for v in c[:last])


def bucket_quantile(q: float, le_ms: np.ndarray, counts: np.ndarray) -> float:
    """The ``q`` quantile of bucket counts as ``histogram_quantile`` computes it (linear
    within a bucket, the first bucket from 0; in the overflow bucket the last bound)
    (prometheus ``promql/quantile.go`` ``bucketQuantile``)."""
    total = float(np.sum(counts))
    if total <= 0:
        return math.nan
    cum = np.cumsum(counts)
    rank = q * total
    b = int(np.searchsorted(cum, rank, side="left"))
    if b >= len(le_ms):
        return float(le_ms[-1])
    lo = 0.0 if b == 0 else float(le_ms[b - 1])
    below = 0.0 if b == 0 else float(cum[b - 1])
    inside = float(counts[b])
    return lo + (float(le_ms[b]) - lo) * ((rank - below) / inside if inside > 0 else 0.0)


__all__ = [
    "CountNoise",
    "DAY_S",
    "Dispersions",
    "Estimate",
    "LatencyFit",
    "MAX_CDF_GAP",
    "MIN_ERROR_OBSERVATIONS",
    "MIXTURE_AIC_LEAD",
    "MIN_DIURNAL_SPAN_S",
    "Profile",
    "autocorrelation",
    "blocks_acf",
    "blocks_dispersion",
    "bucket_quantile",
    "dispersion_index",
    "error_ratio",
    "errors_differ",
    "fit_count_noise",
    "fit_latency",
    "fit_profile",
    "ou_acf",
    "ou_dispersion",
    "pod_error_sd",
    "pod_latency_sd",
]
