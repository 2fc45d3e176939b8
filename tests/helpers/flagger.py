"""Flagger's builtin metrics, as a canary names them, and the observations policy tests feed.

The dicts are shared by many modules: never mutate them; build a changed copy
(``{**SR, "interval": "1m"}``, ``dict(GOOD, **{SUCCESS_RATE: 95.0})``).
"""

from __future__ import annotations

from typing import Any

from sim.policies.base import NO_DATA

#: The builtin metrics' names (fluxcd/flagger pkg/metrics/observers).
SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"

#: The two checks of Flagger's documentation, as users write them: at least 99% of
#: requests succeed, the p99 latency stays at or below 500 ms.
SR: dict[str, Any] = {"name": SUCCESS_RATE, "thresholdRange": {"min": 99}}
LAT: dict[str, Any] = {"name": REQUEST_DURATION, "thresholdRange": {"max": 500}}

#: One tick's metric values against those checks: both pass, one or both fail, no data.
GOOD = {SUCCESS_RATE: 99.9, REQUEST_DURATION: 100.0}
BAD_SR = {SUCCESS_RATE: 90.0, REQUEST_DURATION: 100.0}
BAD_LAT = {SUCCESS_RATE: 99.9, REQUEST_DURATION: 900.0}
BAD_BOTH = {SUCCESS_RATE: 90.0, REQUEST_DURATION: 900.0}
NOTHING = {SUCCESS_RATE: NO_DATA, REQUEST_DURATION: NO_DATA}

#: A pdsim policy file: Flagger's documented canary (1m, threshold 5, stepWeight 10 up to
#: 50, success rate at least 99%), as users write it. Tests check line numbers in it.
POLICY_FILE = """\
flagger:
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
"""

#: The same analysis in a real Flagger Canary manifest.
CANARY_MANIFEST = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
"""
