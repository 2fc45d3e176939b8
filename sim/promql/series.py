"""The data the PromQL engine reads and returns, vectorised over the runs of a batch.

All runs of a batch share one *universe* of series: the same label sets, scraped at the
same timestamps. What differs between runs is which samples exist (a series exists from
its first increment; a lost scrape has no sample) and their values. So label work
(matching selectors, grouping, vector matching) is done once per query and universe, and
only value work is done per run, as numpy operations over a leading run axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A series' label set: (name, value) pairs sorted by name, ``__name__`` included when the
#: series has a metric name (results of functions and aggregations drop it, as Prometheus).
Labels = tuple[tuple[str, str], ...]


def labels_of(name: str | None = None, /, **labels: str) -> Labels:
    """A ``Labels`` from keyword labels (and the metric name), sorted by label name."""
    items = dict(labels)
    if name is not None:
        items["__name__"] = name
    return tuple(sorted(items.items()))


@dataclass
class SeriesBatch:
    """Raw samples of a batch of runs (what Prometheus's TSDB would hold, per run).

    Attributes:
        labels: the K series of the universe.
        times_s: (S,) sample timestamps in seconds, strictly increasing, shared by all runs.
        values: (R, S, K) sample values (meaningless where ``present`` is False).
        present: (R, S, K) whether run r has a sample of series k at ``times_s[s]``.
    """

    labels: tuple[Labels, ...]
    times_s: np.ndarray
    values: np.ndarray
    present: np.ndarray


@dataclass
class Scalar:
    """A scalar result, one per run: ``values`` (R,)."""

    values: np.ndarray


@dataclass
class Vector:
    """An instant vector, one per run, over a static set of output label sets.

    Attributes:
        labels: the K' possible output series (static for a query and universe).
        values: (R, K') sample values.
        present: (R, K') whether run r's result holds series k. A run whose row is all
            False has an *empty* result, which is not the same as a NaN value.
    """

    labels: tuple[Labels, ...]
    values: np.ndarray
    present: np.ndarray


@dataclass
class Matrix:
    """A range vector (a top-level range selector or subquery), one per run.

    Attributes:
        labels: the K' possible series.
        times_s: (T,) sample timestamps covered.
        values: (R, T, K') values.
        present: (R, T, K') whether the sample exists.
    """

    labels: tuple[Labels, ...]
    times_s: np.ndarray
    values: np.ndarray
    present: np.ndarray


#: What a query evaluates to. ``error`` on a result (see ``Result``) marks runs whose
#: evaluation failed (e.g. a many-to-many match): Flagger and Argo see an error there.
Value = Scalar | Vector | Matrix


@dataclass
class Result:
    """A query's value at one instant for each run, and which runs' evaluation failed.

    Attributes:
        value: the value (rows follow the ``rows`` the query was evaluated for).
        error: (R,) True where that run's evaluation is an error, or None when none is.
        message: the first error's text (Prometheus's wording where it has one).
    """

    value: Value
    error: np.ndarray | None = None
    message: str = ""

    def take(self, rows: np.ndarray) -> Result:
        """The result of the runs ``rows`` (indexes into this result's rows), in that order."""
        value = self.value
        taken: Value
        if isinstance(value, Scalar):
            taken = Scalar(value.values[rows])
        elif isinstance(value, Vector):
            taken = Vector(value.labels, value.values[rows], value.present[rows])
        else:
            taken = Matrix(value.labels, value.times_s, value.values[rows], value.present[rows])
        return Result(taken, None if self.error is None else self.error[rows], self.message)
