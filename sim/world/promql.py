"""Recognising well-known PromQL queries, so that real templates run without bindings.

Real AnalysisTemplates and MetricTemplates mostly ask one of a few questions: the share
of non-5xx (or 5xx) responses, or a latency quantile from a histogram. A query of such a
shape is bound to the matching simulated signal, with the scale its units need; anything
else must be bound in the scenario (``telemetry.metrics``).
"""

from __future__ import annotations

import re
from typing import Literal

from sim.inputs.scenario import MetricBinding

_NON_5XX = re.compile(r'(code|status|response_code|status_code)\s*!~\s*"5', re.I)
_5XX = re.compile(r'(code|status|response_code|status_code)\s*=~\s*"5', re.I)
_QUANTILE = re.compile(r"histogram_quantile\s*\(\s*0?\.(\d+)")
_PERCENT = re.compile(r"\*\s*100\b|\b100\s*\*")
#: The latency signals a ``histogram_quantile`` query binds to.
Quantile = Literal["latency-p50", "latency-p90", "latency-p95", "latency-p99"]
#: ``histogram_quantile(0.NN, ...)``: the digits after the point -> the signal.
_QUANTILES: dict[str, Quantile] = {
    "5": "latency-p50",
    "50": "latency-p50",
    "9": "latency-p90",
    "90": "latency-p90",
    "95": "latency-p95",
    "99": "latency-p99",
}


def infer_binding(query: str) -> MetricBinding | None:
    """The simulated signal a PromQL query of a well-known shape measures, or None."""
    q = " ".join(query.split())
    percent = bool(_PERCENT.search(q))
    m = _QUANTILE.search(q)
    if m:
        digits = m.group(1)
        signal = _QUANTILES.get(digits)
        if signal is None:
            return None
        # Histograms in seconds (…_seconds_bucket) need ms -> s.
        scale = 0.001 if "_seconds" in q else 1.0
        return MetricBinding(signal=signal, scale=scale)
    if "/" in q and _NON_5XX.search(q):
        return MetricBinding(signal="success-rate", scale=1.0 if percent else 0.01)
    if "/" in q and _5XX.search(q):
        return MetricBinding(signal="error-rate", scale=1.0 if percent else 0.01)
    return None
