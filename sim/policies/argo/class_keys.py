"""Class stepping for Argo Rollouts: what ``ArgoRollout.observation_keys`` keys on.

The world steps once per class of runs that tick together with equal states and equal
key rows (``sim.policies.base.BatchObservation``). What an Argo rollout's step reads from
``Observation.metrics`` is, for each Prometheus metric that is due, the measurement its
provider result makes (``analysis/analysis.go`` ``runMeasurements`` with
``metricproviders/prometheus/prometheus.go`` ``Run`` and ``utils/evaluate/evaluate.go``
``EvaluateResult``): its phase (Successful, Failed, Inconclusive or Error) decides the
counters, the metric's and the run's phase and so the rollout; the measured value and
the Error's message are display-only (``compare=False`` in ``analysis_run``). So a run's
key is, per (query, success condition, failure condition) of its metrics, the phase
its result would get: ``MetricOutcomes.codes``, for every run at once.

The conditions are compiled once per policy. The common result, an instant vector of one
sample, is decided over the batch's ``values`` arrays (``expr.vector_condition``); any
other result (empty, several samples, a scalar, a range vector, a failed query) and any
condition outside the vectorised forms is decided by ``expr.evaluate_result`` one run at a
time, cached per distinct result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.policies.argo import analysis_run as ar
from sim.policies.argo.expr import evaluate_result, vector_condition
from sim.policies.base import MetricValue

__all__ = ["OUTCOME_CODES", "MetricOutcomes"]

#: A measurement's phase as a key code.
OUTCOME_CODES = {ar.SUCCESSFUL: 0, ar.FAILED: 1, ar.INCONCLUSIVE: 2, ar.ERROR: 3}
_S, _F, _I = OUTCOME_CODES[ar.SUCCESSFUL], OUTCOME_CODES[ar.FAILED], OUTCOME_CODES[ar.INCONCLUSIVE]
#: Distinct results remembered per condition pair before the cache starts over (results
#: that are neither single samples nor repeated, e.g. scalars, would otherwise pile up).
_CACHE_LIMIT = 4096


class MetricOutcomes:
    """The phase a Prometheus measurement gets under one metric's conditions, for many
    runs' results at once.

    Args:
        success: ``successCondition`` (None or "": unset).
        failure: ``failureCondition`` (None or "": unset).
    """

    def __init__(self, success: str | None, failure: str | None) -> None:
        self.success, self.failure = success or None, failure or None
        conditions = [c for c in (self.success, self.failure) if c]
        compiled = [vector_condition(c) for c in conditions]
        #: Whether single samples are decided over arrays (every condition vectorises).
        self.vectorised = all(f is not None for f in compiled)
        self._success = vector_condition(self.success) if self.success else None
        self._failure = vector_condition(self.failure) if self.failure else None
        self._cache: dict[tuple[type, str], int] = {}

    def outcome(self, value: MetricValue) -> int:
        """One run's code: what ``ArgoRollout`` measures for ``value``
        (``analysis_run.prometheus_result``, then the conditions)."""
        key = (type(value), repr(value))  # repr tells -0.0 from 0.0 and keeps NaN equal to itself
        code = self._cache.get(key)
        if code is None:
            got = ar.prometheus_result(value)
            if isinstance(got, ar.ProviderError):
                code = OUTCOME_CODES[ar.ERROR]
            else:
                code = OUTCOME_CODES[evaluate_result(got, self.success, self.failure)[0]]
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = code
        return code

    def codes(
        self, results: Sequence[MetricValue], values: np.ndarray | None = None, single: np.ndarray | None = None
    ) -> np.ndarray:
        """Every run's code (int8).

        Args:
            results: each run's result, as ``Observation.metrics`` holds it.
            values: each run's single sample where ``single`` (``BatchObservation.values``);
                None: decide every run from ``results``.
            single: whether the run's result is that one sample.
        """
        n = len(results)
        if values is None or single is None or not self.vectorised:
            return np.fromiter((self.outcome(v) for v in results), dtype=np.int8, count=n)
        out = self._vector(values)
        seen: dict[int, int] = {}  # the world shares one object for many runs' failed query, empty vector...
        for i in np.flatnonzero(~single).tolist():
            v = results[i]
            code = seen.get(id(v))  # valid within the call: ``results`` keeps every object alive
            if code is None:
                code = seen[id(v)] = self.outcome(v)
            out[i] = code
        return out

    def _vector(self, values: np.ndarray) -> np.ndarray:
        """``EvaluateResult`` of ``[v]`` for every sample ``v`` (no condition errs on one)."""
        n = len(values)
        if self._success is None and self._failure is None:
            return np.full(n, _S, dtype=np.int8)
        if self._failure is None:  # not successful is a failure
            assert self._success is not None
            return np.where(self._success(values), _S, _F).astype(np.int8)
        bad = self._failure(values)
        if self._success is None:  # not failed is a success
            return np.where(bad, _F, _S).astype(np.int8)
        return np.where(bad, _F, np.where(self._success(values), _S, _I)).astype(np.int8)
