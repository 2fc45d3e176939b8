"""The calibrated scenario simulated as a stable service, and recorded against simulated.

``simulate_stable`` runs the world with all traffic held on the primary (a Flagger
analysis whose ``confirm-rollout`` gate never opens: in fluxcd/flagger
``pkg/controller/scheduler.go`` ``checkCanaryStatus`` the gate comes before
``ScaleFromZero``, so the canary is never scaled up nor given traffic)
and a plan whose queries select the primary workload's raw families, so the world
simulates exactly the series a recording of the stable service holds
(``sim.world.metrics.metric_plan`` simulates only what some query selects). Its series
are read by the same code as a real recording's.

``compare`` computes the statistics both share, each with a 95% interval from a moving
block bootstrap over time (blocks long enough to keep the autocorrelation), and says in a
plain sentence where the simulated value falls outside what sampling explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.calibrate.fit import autocorrelation, bucket_quantile, dispersion_index, fit_profile
from sim.calibrate.recording import Recording, recording_from_batch
from sim.calibrate.scenario_out import windows_intervals
from sim.inputs.scenario import Scenario
from sim.promql.series import SeriesBatch
from sim.units import format_duration

#: Providers whose primary families ``simulate_stable`` selects.
SIMULATED_PROVIDERS = ("istio",)
#: Seconds per bootstrap block: long enough to keep 5-minute windows and short lags whole.
BLOCK_S = 1800.0
#: Bootstrap resamples per statistic.
RESAMPLES = 200


def _hold_policy(scenario: Scenario, provider: str) -> Scenario:
    """``scenario`` with a policy that never shifts traffic and reads the primary's series."""
    from sim.inputs.scenario import PolicySpec, WebhookScript
    from sim.policies.flagger.spec import FlaggerPolicySpec

    fam = {"istio": ("istio_requests_total", "istio_request_duration_milliseconds_bucket")}.get(provider)
    if fam is None:
        raise ValueError(f"simulating the {provider} exporter's families is not supported yet")
    selector = '{reporter="destination",destination_workload="podinfo-primary"}'
    query = " + ".join(f"sum({name}{selector})" for name in fam)
    spec = FlaggerPolicySpec.model_validate(
        {
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [{"name": "primary-series", "query": query, "thresholdRange": {"min": 0}, "interval": "1m"}],
                "webhooks": [{"name": "hold", "type": "confirm-rollout", "url": "http://hold.invalid/"}],
            }
        }
    )
    return scenario.model_copy(
        update={
            "policy": PolicySpec(flagger=spec),
            "webhooks": {"confirm-rollout": WebhookScript(outcome="fail")},
            "release": scenario.release.model_copy(update={"faults": []}),
        }
    )


def stable_series(scenario: Scenario, provider: str, duration_s: float, seed: int) -> SeriesBatch:
    """The raw series of one run of ``scenario`` as a stable service, scraped over
    ``duration_s`` after its first scrape (times in seconds from the run's start), as
    ``pdsim run --series`` holds them.

    Raises:
        ValueError: a provider whose families are not simulated here.
    """
    from sim.inputs.policy import build_policy
    from sim.runs.runner import run_one

    # One scrape more than the span: the first scrape's counters start the recording (its
    # increments are unknown, as at a real recording's first timestamp), so the simulated
    # run has as many intervals as a recording of duration_s.
    held = _hold_policy(scenario, provider).model_copy(
        update={"horizon": duration_s + scenario.telemetry.scrape_interval}
    )
    assert held.policy is not None
    policy = build_policy(held.policy, name=f"{scenario.name}/stable")
    result = run_one(held, policy, seed, series=True)
    if result.series is None:
        raise ValueError("the world returned no series")
    return result.series


def simulate_stable(scenario: Scenario, provider: str, duration_s: float, seed: int) -> Recording:
    """``stable_series`` read as a recording (by the code that reads real ones)."""
    return recording_from_batch(stable_series(scenario, provider, duration_s, seed), ["simulated"])


@dataclass(frozen=True)
class Statistic:
    """One statistic, recorded and simulated, each with a 95% interval.

    Attributes:
        name: what it is.
        recorded, simulated: point estimates.
        recorded_ci, simulated_ci: 95% bootstrap intervals.
        poor: a sentence when the fit is poor (the difference is outside its 95% interval
            from both bootstraps), else "".
    """

    name: str
    recorded: float
    simulated: float
    recorded_ci: tuple[float, float]
    simulated_ci: tuple[float, float]
    poor: str = ""


def _per_window(req: np.ndarray, step_s: float) -> np.ndarray:
    """Request counts per minute, or per scrape interval when that is longer."""
    per = max(round(60 / step_s), 1)
    return req[: len(req) // per * per].reshape(-1, per).sum(axis=1)


def _window_name(step_s: float) -> str:
    """What ``_per_window`` counts over: ``minute``, or the scrape interval (``5m``)."""
    window = max(round(60 / step_s), 1) * step_s
    return "minute" if window == 60 else format_duration(window)


def _stats(rec: Recording, profile: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """The compared statistics of a recording, or of intervals ``rows`` of it (a
    resample), around the traffic ``profile`` fitted to the whole recording (a resample
    shuffles the time of day, so it is not refitted)."""
    step = rec.step_s
    req, err = rec.total_requests, rec.total_errors
    if rows is not None:
        req, err, profile = req[rows], err[rows], profile[rows]
    out: dict[str, float] = {}
    n = max(float(req.sum()), 1.0)
    out["mean rate (requests/s)"] = float(req.mean() / step)
    out["error ratio"] = float(err.sum() / n)
    windows = windows_intervals(step, len(req))
    d = dispersion_index(req, profile, windows)
    for k, v in zip(d.windows, d.index):
        out[f"request dispersion at {k * step:g}s"] = float(v)
    p = float(err.sum() / n)
    if p > 0:  # errors' dispersion is nothing to compare where there are none
        de = dispersion_index(err, p * req, windows, trials=req)
        for k, v in zip(de.windows, de.index):
            out[f"error dispersion at {k * step:g}s"] = float(v)
    acf = autocorrelation(req, profile, 3)
    for lag, a in enumerate(acf, 1):
        out[f"request autocorrelation at lag {lag}"] = float(a)
    minutes = _per_window(req, step)
    for q in (0.1, 0.5, 0.9):
        out[f"requests per {_window_name(step)}, q{q:g}"] = float(np.quantile(minutes, q)) if len(minutes) else math.nan
    if rec.buckets.size:
        counts = (rec.interval_buckets if rows is None else rec.interval_buckets[rows]).sum(axis=0)
        for q in (0.5, 0.9, 0.99):
            out[f"latency p{round(q * 100)} (ms)"] = bucket_quantile(q, rec.le_ms, counts)
    return out


def _bootstrap(rec: Recording, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Point estimates and 95% moving-block bootstrap intervals (blocks of ``BLOCK_S``,
    at most a quarter of the recording)."""
    profile = fit_profile(rec.total_requests, rec.step_s).expected
    point = _stats(rec, profile)
    n = len(rec.total_requests)
    block = max(min(round(BLOCK_S / rec.step_s), n // 4), 1)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(RESAMPLES):
        starts = rng.integers(0, n - block + 1, size=math.ceil(n / block))
        rows = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        s = _stats(rec, profile, rows)
        for k in point:
            draws[k].append(s.get(k, math.nan))
    ci = {k: _interval(np.asarray(v)) for k, v in draws.items()}
    return point, ci


def _interval(draws: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of the finite draws (NaN when none is)."""
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return math.nan, math.nan
    return float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))


def between_runs(scenario: Scenario) -> dict[str, float]:
    """Relative standard deviation between simulated days of the statistics that per-run
    noise moves as a whole (``sim.world.noise``): a day's pods and its run effects are
    one draw, which no resampling within the day can see. The error ratio's is that of
    the mean of the primary's pods' multipliers times the run effect; a latency
    quantile's, approximately, that of the pods' and run's latency multipliers."""
    n = scenario.noise
    pods = scenario.baseline.replicas or 1

    def combined(pod_sd: float, run_sd: float) -> float:
        var = (1.0 + math.expm1(pod_sd**2) / pods) * (1.0 + math.expm1(run_sd**2)) - 1.0
        return math.sqrt(max(var, 0.0))

    pod_err, pod_lat = (n.pods.error_rate, n.pods.latency) if n.pods is not None else (0.0, 0.0)
    run_err, run_lat = (n.run.error_rate, n.run.latency) if n.run is not None else (0.0, 0.0)
    out = {"error ratio": combined(pod_err, run_err)}
    for q in (50, 90, 99):
        out[f"latency p{q} (ms)"] = combined(pod_lat, run_lat)
    return {k: v for k, v in out.items() if v > 0}


def compare(
    recorded: Recording, simulated: Recording, seed: int = 0, between: dict[str, float] | None = None
) -> list[Statistic]:
    """Recorded and simulated statistics side by side (see the module doc).

    The fit of a statistic is poor when ``simulated - recorded`` lies outside the 95%
    interval of the difference, ``±1.96 sqrt(2 se_r² + se_s² + 2 (b r)²)``: the recorded
    and the simulated sampling errors, the error of the parameters estimated from the
    recording (about ``se_r`` again), and ``b``, the relative spread between days of a
    statistic that per-run noise moves (``between``, from ``between_runs``: the recorded
    and the simulated day each drew their own). Each standard error is read off its
    bootstrap interval (its width / 3.92).
    """
    rng = np.random.default_rng(seed)
    rp, rci = _bootstrap(recorded, rng)
    sp, sci = _bootstrap(simulated, rng)
    out = []
    for name, r in rp.items():
        if name not in sp or not math.isfinite(r):  # not in the recording (e.g. no latency histogram)
            continue
        s = sp[name]
        r_ci, s_ci = rci.get(name, (math.nan, math.nan)), sci.get(name, (math.nan, math.nan))
        se_r, se_s = (r_ci[1] - r_ci[0]) / 3.92, (s_ci[1] - s_ci[0]) / 3.92
        # The simulated run's parameters were estimated from the recording: their error
        # is about the recording's own sampling error, counted a second time.
        b = (between or {}).get(name, 0.0) * abs(r)
        se = math.sqrt(2 * se_r**2 + se_s**2 + 2 * b**2)
        poor = ""
        if math.isfinite(se) and abs(s - r) > 1.96 * se + 1e-12:
            poor = (
                f"The simulated {name} ({s:.4g}) is {'above' if s > r else 'below'} the recorded {r:.4g} by more "
                f"than sampling explains (95% interval of the difference ±{1.96 * se:.2g})."
            )
        out.append(Statistic(name, r, s, r_ci, s_ci, poor))
    return out


def series_for_figures(rec: Recording) -> dict[str, np.ndarray]:
    """What the report's figures draw: per-minute counts, dispersion against window,
    autocorrelation by lag."""
    step = rec.step_s
    req = rec.total_requests
    minutes = _per_window(req, step)
    profile = fit_profile(req, step).expected
    d = dispersion_index(req, profile, windows_intervals(step, len(req)))
    return {
        "minutes": minutes,
        "window": np.array(_window_name(step)),
        "windows_s": d.windows * step,
        "dispersion": d.index,
        "dispersion_se": d.se,
        "acf": autocorrelation(req, profile, 20),
    }


__all__ = [
    "BLOCK_S",
    "RESAMPLES",
    "SIMULATED_PROVIDERS",
    "Statistic",
    "compare",
    "series_for_figures",
    "simulate_stable",
    "stable_series",
]
