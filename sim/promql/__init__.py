"""PromQL over simulated series, as Prometheus 2.x evaluates it (issue 14).

Parts:
    series: the data the engine reads and returns (``SeriesBatch``, ``Vector``, ...),
        vectorised over the runs of a batch.
"""

from sim.promql.series import Labels, Matrix, Result, Scalar, SeriesBatch, Value, Vector, labels_of

__all__ = ["Labels", "Matrix", "Result", "Scalar", "SeriesBatch", "Value", "Vector", "labels_of"]
