"""PromQL over simulated series, as Prometheus 2.x evaluates it (issue 14).

Parts:
    series: the data the engine reads and returns (``SeriesBatch``, ``Vector``, ...),
        vectorised over the runs of a batch.
    parse: PromQL text into pdsim's own frozen expression tree (``PromQLError``).
    engine: ``compile_query`` and ``Query.evaluate``: bind once per universe of label
        sets, evaluate with numpy over runs.
    selectors, range_functions, functions, histograms, aggregate, binary: the operators
        (Prometheus v2.42.0's promql/engine.go, functions.go and quantile.go).
    kernels: compiled (numba) transcriptions of extrapolatedRate and instantValue.
    frames: the per-evaluation context and the values passed between operators.
"""

from sim.promql.engine import Query, compile_query
from sim.promql.parse import PromQLError
from sim.promql.selectors import STALE_NAN
from sim.promql.series import Labels, Matrix, Result, Scalar, SeriesBatch, Value, Vector, labels_of

__all__ = [
    "Labels",
    "Matrix",
    "PromQLError",
    "Query",
    "Result",
    "STALE_NAN",
    "Scalar",
    "SeriesBatch",
    "Value",
    "Vector",
    "compile_query",
    "labels_of",
]
