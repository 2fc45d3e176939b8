"""The calibrated scenario: every fit of a recording, and the YAML that states them.

``calibrate_recording`` runs the fits of ``sim.calibrate.fit`` on a ``Recording``;
``scenario_yaml`` writes a complete, loadable scenario (a good release and a default
Flagger policy, so ``pdsim run`` works at once) with a comment above each block saying
what was fitted from what: file, series, window, estimate ± standard error. ruamel.yaml
writes the comments (a round-trip YAML library), not string formatting.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sim.calibrate.fit import (
    CountNoise,
    Dispersions,
    Estimate,
    LatencyFit,
    Profile,
    autocorrelation,
    dispersion_index,
    error_ratio,
    errors_differ,
    fit_count_noise,
    fit_latency,
    fit_profile,
    pod_error_sd,
    pod_latency_sd,
)
from sim.calibrate.recording import Recording
from sim.inputs.scenario import Scenario
from sim.units import format_duration

#: The longest horizon written: a rollout decides within hours; a longer recording still
#: sets the noise (``pdsim calibrate --report`` simulates its whole span).
ROLLOUT_HORIZON_S = 86400.0

#: Windows (seconds) at which dispersion is measured and fitted, besides the scrape interval.
WINDOWS_S = (60.0, 300.0, 900.0, 3600.0)
#: Lags (intervals) of the autocorrelation matched by the request noise's fit.
ACF_LAGS = 10


@dataclass(frozen=True)
class Calibration:
    """Every estimate ``pdsim calibrate`` draws from a recording.

    Attributes:
        recording: what was read.
        profile: the traffic profile.
        request_dispersion, request_acf: requests' dispersion around the profile and the
            autocorrelation of their residuals.
        request_noise: the model chosen for them.
        error_rate: 5xx share.
        error_dispersion: errors' Pearson dispersion given the requests.
        error_noise: the model chosen for them.
        pod_errors, pod_latency: sd of per-pod log multipliers (None: one pod).
        latency: the latency law (None: no histogram): of successful requests when
            ``error_latency`` is set, else of all.
        error_latency: failed requests' law, when it differs (``fit.errors_differ``).
        error_latency_gap: the KS distance between failed and successful requests' CDFs.
    """

    recording: Recording
    profile: Profile
    request_dispersion: Dispersions
    request_acf: np.ndarray
    request_noise: CountNoise
    error_rate: Estimate
    error_dispersion: Dispersions
    error_noise: CountNoise
    pod_errors: Estimate | None
    pod_latency: Estimate | None
    latency: LatencyFit | None
    error_latency: LatencyFit | None = None
    error_latency_gap: float = math.nan


def windows_intervals(step_s: float, n: int) -> list[int]:
    """The scrape interval and ``WINDOWS_S`` as whole numbers of intervals (at least 4
    windows in the recording)."""
    out = [1]
    for w in WINDOWS_S:
        k = round(w / step_s)
        if k > out[-1] and abs(k * step_s - w) < 1e-6 * w and n // k >= 4:
            out.append(k)
    return out


def calibrate_recording(rec: Recording) -> Calibration:
    """Fit every part of the scenario to a recording (``sim.calibrate.fit`` states each)."""
    step = rec.step_s
    req, err = rec.total_requests, rec.total_errors
    windows = windows_intervals(step, len(req))
    profile = fit_profile(req, step)
    rdisp = dispersion_index(req, profile.expected, windows)
    racf = autocorrelation(req, profile.expected, ACF_LAGS)
    rnoise = fit_count_noise(rdisp, racf, len(req), float(profile.expected.mean()), step)
    p = float(err.sum() / max(req.sum(), 1.0))
    edisp = dispersion_index(err, p * req, windows, trials=req)
    eacf = autocorrelation(err, p * req, ACF_LAGS) if p > 0 else np.zeros(ACF_LAGS)
    enoise = (
        fit_count_noise(edisp, eacf, len(err), p * float(req.mean()), step, ou=False)
        if p > 0
        else CountNoise("poisson")
    )
    ratio = error_ratio(err, req, float(edisp.index[-1]) if len(edisp.index) else 1.0)
    latency = error_latency = None
    gap = math.nan
    if rec.buckets.size:
        every = rec.buckets.sum(axis=0)
        ok = np.clip(every - rec.error_buckets, 0.0, None)
        differ, gap = errors_differ(rec.le_ms, ok, rec.error_buckets)
        if differ:
            latency, error_latency = fit_latency(rec.le_ms, ok), fit_latency(rec.le_ms, rec.error_buckets)
        else:
            latency = fit_latency(rec.le_ms, every)
    return Calibration(
        recording=rec,
        profile=profile,
        request_dispersion=rdisp,
        request_acf=racf,
        request_noise=rnoise,
        error_rate=ratio,
        error_dispersion=edisp,
        error_noise=enoise,
        pod_errors=pod_error_sd(rec.errors, rec.requests),
        pod_latency=pod_latency_sd(rec.buckets, rec.le_ms) if rec.buckets.size else None,
        latency=latency,
        error_latency=error_latency,
        error_latency_gap=gap,
    )


# --- YAML -------------------------------------------------------------------------------------


def _num(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (what a comment's ± can support)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def _ms(x: float) -> str:
    return f"{_num(x)}ms"


def _comment(doc: CommentedMap, key: str, lines: list[str] | str) -> None:
    """A comment above ``key``, each line wrapped to the page width."""
    lines = [lines] if isinstance(lines, str) else lines
    wrapped = [w for line in lines for w in textwrap.wrap(line, 100, subsequent_indent="    ") or [""]]
    doc.yaml_set_comment_before_after_key(key, before="\n".join(wrapped))


def _flow(**items: Any) -> CommentedMap:
    m = CommentedMap(items)
    m.fa.set_flow_style()
    return m


def _windows_text(d: Dispersions, step_s: float) -> str:
    return ", ".join(f"{format_duration(k * step_s)} {v:.3g} ± {s:.2g}" for k, v, s in zip(d.windows, d.index, d.se))


def _latency_block(fit: LatencyFit) -> CommentedMap:
    if fit.kind == "lognormal":
        _, med, p99 = fit.components[0]
        return _flow(median=_ms(med.value), p99=_ms(max(p99.value, med.value)))
    if fit.kind == "mixture":
        seq = CommentedSeq(
            _flow(weight=_num(w), median=_ms(med.value), p99=_ms(max(p99.value, med.value)))
            for w, med, p99 in fit.components
        )
        return CommentedMap(mixture=seq)
    hist = CommentedMap(le=CommentedSeq(_num(v, 6) for v in fit.le_ms), counts=CommentedSeq(fit.counts))
    hist["le"].fa.set_flow_style()
    hist["counts"].fa.set_flow_style()
    return CommentedMap(histogram=hist)


def _component_notes(fit: LatencyFit) -> list[str]:
    """One comment line per mixture component: its weight, median and p99 with their errors."""
    return [f"  component weight {w:.3g}: median {med.text()}ms, p99 {p99.text()}ms" for w, med, p99 in fit.components]


def _policy(cal: Calibration) -> CommentedMap:
    """A default Flagger analysis fitted to the service: the success-rate floor below the
    recorded error ratio (twice it, or one point more, whichever is lower), the latency
    ceiling at twice the fitted p99, so a good release usually passes."""
    p = cal.error_rate.value
    floor = math.floor((1 - max(2 * p, p + 0.01)) * 1000) / 10
    ceiling = 500.0
    if cal.latency is not None and cal.latency.kind != "histogram":
        ceiling = max(c[2].value for c in cal.latency.components) * 2
    elif cal.latency is not None:
        ceiling = cal.latency.le_ms[-1]
    # rate() over a metric interval needs two scrapes in it: at least twice the scrape
    # interval (a 5-minute recording gets 10m analyses), never below Flagger's usual 1m.
    every = format_duration(max(60.0, 2 * cal.recording.step_s))
    metrics = CommentedSeq(
        [
            _flow(name="request-success-rate", thresholdRange=_flow(min=floor), interval=every),
            _flow(name="request-duration", thresholdRange=_flow(max=_num(ceiling, 3)), interval=every),
        ]
    )
    analysis = CommentedMap(interval=every, threshold=5, maxWeight=50, stepWeight=10, metrics=metrics)
    return CommentedMap(flagger=CommentedMap(analysis=analysis))


def scenario_document(cal: Calibration, name: str) -> CommentedMap:
    """The calibrated scenario as a commented YAML mapping (see ``scenario_yaml``)."""
    rec = cal.recording
    step = rec.step_s
    files = ", ".join(os.path.basename(f) for f in rec.files)
    req_series = rec.series[0]
    doc = CommentedMap()
    doc["name"] = name
    doc["description"] = (
        f"Calibrated by pdsim calibrate from {files}: {format_duration(rec.duration_s)} of {req_series} "
        f"({rec.provider}) scraped every {format_duration(step)}, {len(rec.pods)} pod(s). A good release."
    )
    horizon = min(max(math.ceil(rec.duration_s / step) * step, step), ROLLOUT_HORIZON_S)
    doc["horizon"] = format_duration(horizon)
    _comment(
        doc,
        "horizon",
        "How long a rollout is simulated at most: the recording's span (first to last timestamp), "
        f"at most {format_duration(ROLLOUT_HORIZON_S)}.",
    )

    prof = cal.profile
    if prof.amplitude is None or prof.phase_s is None:
        rate: Any = f"{_num(prof.mean.value)}/s"
        rate_note = (
            f"traffic.rate: the mean of {req_series} (all codes and pods) per {format_duration(step)} over the "
            f"recording, {prof.mean.text()}/s; constant: no daily cycle (the recording spans "
            f"{format_duration(rec.duration_s)}, a cycle is fitted from 12h, and kept when its amplitude is 3 "
            "standard errors from 0)."
        )
    else:
        rate = CommentedMap(
            diurnal=_flow(
                mean=f"{_num(prof.mean.value)}/s",
                amplitude=_num(prof.amplitude.value, 3),
                period="24h",
                phase=format_duration(round(prof.phase_s.value)),
            )
        )
        rate_note = (
            f"traffic.rate: least squares of {req_series} per {format_duration(step)} on a 24h sinusoid: mean "
            f"{prof.mean.text()}/s, amplitude {prof.amplitude.text('.3g')}, phase {prof.phase_s.text('.5g')}s, "
            "chosen so that simulated t = 0 is the time of day of the recording's first timestamp."
        )
    doc["traffic"] = CommentedMap(rate=rate)
    _comment(doc, "traffic", rate_note)

    base = CommentedMap(error_rate=_num(cal.error_rate.value))
    if rec.total_errors.sum() > 0:
        notes = [
            f"baseline.error_rate: 5xx responses over all in {req_series}, {cal.error_rate.text()} "
            "(standard error inflated by the errors' dispersion)."
        ]
    else:
        n = float(rec.total_requests.sum())
        notes = [
            f"baseline.error_rate: no 5xx response in {req_series} ({n:.0f} requests): 0, with a 95% upper "
            f"bound of {3 / max(n, 1):.2g} (the rule of three). Set it if the recording leaves errors out."
        ]
    if cal.latency is not None:
        base["latency"] = _latency_block(cal.latency)
        notes.append(
            f"baseline.latency: maximum likelihood on {rec.series[-1]}'s {cal.latency.observations:.0f} "
            f"{'successful requests' if cal.error_latency is not None else 'observations'} "
            f"(interval-censored buckets): {cal.latency.why}."
        )
        notes += _component_notes(cal.latency)
    else:
        notes.append(
            "baseline.latency: the recording has no request-duration histogram: pdsim's default (median "
            "40ms, p99 250ms) is kept. Set it from your service's latency."
        )
    if cal.error_latency is not None:
        base["error_latency"] = _latency_block(cal.error_latency)
        notes.append(
            f"baseline.error_latency: failed (5xx) requests' latency differs from successful ones' (KS distance "
            f"{cal.error_latency_gap:.3f} of the bucketed CDFs), so each has its own law, fitted as above on its "
            f"{cal.error_latency.observations:.0f} observations: {cal.error_latency.why}."
        )
        notes += _component_notes(cal.error_latency)
    if len(rec.pods) > 1:
        base["replicas"] = len(rec.pods)
        notes.append(f"baseline.replicas: the {len(rec.pods)} values of the pod label.")
    doc["baseline"] = base
    _comment(doc, "baseline", notes)

    doc["release"] = CommentedMap(faults=CommentedSeq())
    _comment(doc, "release", "A good release: the candidate behaves as the baseline.")
    doc["telemetry"] = CommentedMap(scrape_interval=format_duration(step), provider=rec.provider)
    _comment(doc, "telemetry", "The recording's step (median spacing of its timestamps) and exporter.")

    noise, noise_notes = _noise_block(cal)
    doc["noise"] = noise  # empty: Poisson counts fit
    _comment(doc, "noise", noise_notes)
    doc["policy"] = _policy(cal)
    _comment(
        doc,
        "policy",
        "A default Flagger analysis: success rate at least 1 - max(2 x, x + 1%) of the recorded error "
        "ratio x, request duration at most twice the fitted p99. Replace it with your own (--policy).",
    )
    doc["runs"] = 100
    doc["seed"] = 0
    return doc


def _noise_block(cal: Calibration) -> tuple[CommentedMap, list[str]]:
    step = cal.recording.step_s
    series = cal.recording.series[0]
    noise = CommentedMap()
    notes = []
    rn = cal.request_noise
    notes.append(
        f"Requests: dispersion index (variance / mean of counts per window around the profile) "
        f"{_windows_text(cal.request_dispersion, step)}; lag-1..3 autocorrelation "
        + ", ".join(f"{a:.3f}" for a in cal.request_acf[:3])
        + f" (1/sqrt(n) = {1 / math.sqrt(len(cal.recording.total_requests)):.3f})."
    )
    notes.append("  Models matched to both by weighted least squares (misfit " + _losses(rn) + f"): {rn.kind}.")
    if rn.kind == "blocks" and rn.dispersion is not None and rn.window_s is not None:
        noise["requests"] = _flow(dispersion=_num(rn.dispersion.value, 3), window=format_duration(rn.window_s))
        notes.append(
            f"  noise.requests: gamma blocks of {format_duration(rn.window_s)}, index {rn.dispersion.text('.3g')}."
        )
    elif rn.kind == "ou" and rn.sigma is not None and rn.tau_s is not None:
        noise["processes"] = CommentedSeq(
            [_flow(of="rate", sigma=_num(rn.sigma.value, 3), tau=format_duration(max(round(rn.tau_s.value), 1)))]
        )
        notes.append(f"  noise.processes: an OU log-rate, sigma {rn.sigma.text('.3g')}, tau {rn.tau_s.text('.3g')}s.")
    en = cal.error_noise
    if cal.recording.total_errors.sum() > 0:
        notes.append(
            f"Errors: Pearson dispersion of 5xx counts of {series} given the requests (against N p) "
            f"{_windows_text(cal.error_dispersion, step)}; misfit " + _losses(en) + f": {en.kind}."
        )
    else:
        notes.append("Errors: none recorded, so no error noise is fitted.")
    if en.kind == "blocks" and en.dispersion is not None and en.window_s is not None:
        noise["errors"] = _flow(dispersion=_num(en.dispersion.value, 3), window=format_duration(en.window_s))
        notes.append(
            f"  noise.errors: gamma blocks of {format_duration(en.window_s)}, index {en.dispersion.text('.3g')}."
        )
    pods = CommentedMap()
    if cal.pod_errors is not None:
        pods["error_rate"] = _num(cal.pod_errors.value, 3)
        notes.append(
            f"noise.pods.error_rate: sd of per-pod log multipliers from the between-pod variance of the error "
            f"ratio beyond binomial sampling ({len(cal.recording.pods)} pods), {cal.pod_errors.text('.3g')}."
        )
    if cal.pod_latency is not None:
        pods["latency"] = _num(cal.pod_latency.value, 3)
        notes.append(
            "noise.pods.latency: from the between-pod variance of mean log latency (bucket middles) beyond "
            f"sampling, {cal.pod_latency.text('.3g')}."
        )
    if pods and any(v > 0 for v in pods.values()):
        pods.fa.set_flow_style()
        noise["pods"] = pods
    return noise, notes


def _losses(n: CountNoise) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in n.losses.items())


def scenario_yaml(cal: Calibration, name: str) -> str:
    """The calibrated scenario as YAML text with comments (see the module doc)."""
    out = io.StringIO()
    yaml = YAML()
    yaml.width = 110
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(scenario_document(cal, name), out)
    return out.getvalue()


def scenario_of(text: str, file: str) -> Scenario:
    """Validate written scenario text as pdsim loads it (``sim.inputs.scenario``)."""
    from sim.inputs.scenario import parse_scenario
    from sim.yamlio import loads_yaml

    return parse_scenario(loads_yaml(text, file))


__all__ = [
    "ACF_LAGS",
    "Calibration",
    "WINDOWS_S",
    "calibrate_recording",
    "scenario_document",
    "scenario_of",
    "scenario_yaml",
    "windows_intervals",
]
