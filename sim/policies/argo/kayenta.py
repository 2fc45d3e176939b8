"""Argo's ``kayenta`` metric provider, answered by pdsim's Kayenta replica.

argoproj/argo-rollouts ``metricproviders/kayenta/kayenta.go``: ``Run`` asks Kayenta for a
canary judgement of the scope from ``start`` to now (``getStartTime``: the AnalysisRun's
start with ``lookback: true``, else now minus the metric's ``interval``, an Error without
one) and returns a Running measurement; ``Resume``, every 15 s (``resumeDelay``), reads the
score: ``evaluateResult(int(score), pass, marginal)`` is Successful at or above ``pass``,
Inconclusive at or above ``marginal``, Failed below.

The canary config itself lives in Kayenta, not in the manifest, so pdsim takes it from the
policy's ``canaryConfigs`` (by ``canaryConfigName``; pdsim's extension beside the
templates), and without one uses the Kayenta judge's default config: the error
percentage, direction increase. The judgement is the replica's
(``sim.policies.judges.kayenta``), over both versions' counters (the stable version is
the control scope, the canary the experiment scope) at the scope's ``step``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.policies.argo import analysis_run as ar
from sim.policies.judges.base import JudgeData, VersionSeries
from sim.policies.judges.kayenta import KayentaJudge, KayentaSpec

#: ``resumeDelay``: how long after ``Run`` (and after an incomplete ``Resume``) Argo polls.
RESUME_DELAY_S = 15.0


def evaluate_result(score: float, pass_: int, marginal: int) -> str:
    """``evaluateResult``: the measurement phase of a score (truncated to an int, as
    ``int(result)`` does)."""
    value = int(score)
    if value >= pass_:
        return ar.SUCCESSFUL
    if value >= marginal:
        return ar.INCONCLUSIVE
    return ar.FAILED


def scope_window(data: JudgeData, start_s: float, end_s: float) -> JudgeData:
    """The counters Kayenta would read for a scope ending at ``end_s``: the slots scraped
    by then (a judge's window ends at ``data.t``; the start is passed as the lookback)."""
    last = int(math.floor(end_s / data.scrape_s + 1e-9)) + 1

    def cut(v: VersionSeries) -> VersionSeries:
        return VersionSeries(v.requests[:last], v.errors[:last], None if v.hist is None else v.hist[:last])

    return JudgeData(end_s, data.scrape_s, data.bounds_ms, cut(data.canary), cut(data.primary))


def config_for(provider: Mapping[str, Any], configs: Mapping[str, KayentaSpec]) -> KayentaSpec:
    """The canary config a provider names, with the scope's step."""
    config = configs.get(str(provider.get("canaryConfigName", "")), KayentaSpec())
    scopes = provider.get("scopes") or [{}]
    step = (scopes[0].get("controlScope") or {}).get("step") if isinstance(scopes[0], Mapping) else None
    return config.model_copy(update={"step": float(step) if step else config.step})


def judge_measurement(
    provider: Mapping[str, Any],
    config: KayentaSpec,
    data: JudgeData | None,
    run_started_s: float,
    measured_at_s: float,
    interval_s: float | None,
) -> ar.ProviderResult:
    """The finished measurement of a Kayenta judgement that ``Run`` started at
    ``measured_at_s``: its phase from the replica's score, or an Error."""
    if data is None:
        return ar.ProviderError("no counters of the two versions to judge (Kayenta needs the simulator)")
    if provider.get("lookback"):
        start = run_started_s
    elif interval_s:
        start = measured_at_s - interval_s
    else:
        return ar.ProviderError('Invalid duration "": a Kayenta metric without lookback needs an interval')
    window = max(measured_at_s - start, config.step)
    judge = KayentaJudge(config.model_copy(update={"lookback": window}))
    _, verdict = judge.judge(judge.initial_state(), scope_window(data, start, measured_at_s))
    score = verdict.detail.get("score")
    if score is None:
        # Nothing to compare: NetflixACAJudge scores no data as 0.
        score = 0.0
    threshold = provider.get("threshold") or {}
    phase = evaluate_result(float(score), int(threshold.get("pass", 0)), int(threshold.get("marginal", 0)))
    return ar.ProviderPhase(phase, value=int(float(score)))
