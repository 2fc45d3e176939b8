"""The judge contract: what a statistical judge sees and what it answers.

A *judge* decides whether the canary looks healthy at a tick by comparing the two
versions' raw counters, instead of checking one metric value against a fixed range.
Strategy and judgement are separate axes (docs/architecture.md section 1): any judge plugs into any
strategy, which keeps its hooks, gates and counters and asks the judge for the verdict of
the metrics it judges.

Judges are pure, like policies: ``judge(state, data) -> (state, judgement)``, with the
state passed in and returned (Gymnasium ``FuncEnv`` style). Constructors store their
parameters and compute nothing.

**Batches (issue 17).** The world judges many runs at one tick. ``JudgeBatch`` holds their
counters as (runs, slots) arrays and ``Judge.judge_batch`` answers them all in one pass,
as ``Judgements`` columns. Its state is the one fenced exception to purity: a batch state
(``batch_state(n)``) holds n runs as arrays and ``judge_batch`` updates the rows it judges
in place, because copying arrays of n runs every tick would cost more than the judging.
Its contract: for every run, the same verdict, ``reject`` and ``accept`` as ``judge`` on
``state_row(state, i)`` and ``data.row(i)``, and ``state_row`` afterwards equal to the
scalar's new state. ``RowByRow`` is the default (a loop over ``judge``) for a judge
without a vectorised pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, eq=False)
class VersionSeries:
    """Scraped counters of one version since the rollout started, slot by slot.

    Slot k holds the increments in ((k-1)·S, k·S], S the scrape interval; slot 0 is
    empty (nothing happens before t = 0). Only slots already scraped and ingested at the
    tick are included, so the series ends at the latest sample a Prometheus query could
    read. Requests include mirrored and load-test copies that reached the version (what
    its metrics see), not only live users'.

    Attributes:
        requests: (K,) request counts per slot.
        errors: (K,) failed requests per slot.
        hist: (K, B) non-cumulative latency bucket counts per slot (bounds in
            ``JudgeData.bounds_ms``, then +Inf), or None when latency is not recorded
            for this version.
    """

    requests: np.ndarray
    errors: np.ndarray
    hist: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class JudgeData:
    """Both versions' counters at a tick: what a judge compares.

    Attributes:
        t: the tick time (seconds since the new revision was applied).
        scrape_s: the scrape interval S (slot width).
        bounds_ms: finite latency bucket upper bounds in ms (the last bucket is +Inf).
        canary: the candidate's series.
        primary: the stable version's series (the baseline / control).
    """

    t: float
    scrape_s: float
    bounds_ms: tuple[float, ...]
    canary: VersionSeries
    primary: VersionSeries


class Verdict(str, Enum):  # noqa: UP042 (StrEnum would change str(): "Verdict.FAIL" is printed)
    """A judge's verdict for one tick."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no-data"


@dataclass(frozen=True)
class Judgement:
    """What a judge answers at a tick.

    Attributes:
        verdict: the tick's check result; a strategy treats FAIL and NO_DATA as a failed
            check (as Flagger does), INCONCLUSIVE as its own rules say.
        reject: roll back now, without waiting for the strategy's threshold (a
            sequential test whose evidence against the canary is sufficient).
        accept: harm is ruled out: the strategy may promote early.
        detail: statistics for the trace (e-value, score, p-value, ...), JSON-able.
    """

    verdict: Verdict
    reject: bool = False
    accept: bool = False
    detail: Mapping[str, float | str | None] = field(default_factory=dict)


#: Verdict codes of ``Judgements.verdict``: an index into this tuple.
VERDICTS: tuple[Verdict, ...] = (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.NO_DATA)
PASS_CODE, FAIL_CODE, INCONCLUSIVE_CODE, NO_DATA_CODE = range(4)

Detail = dict[str, float | str | None]


@dataclass(frozen=True, eq=False)
class JudgeBatch:
    """Both versions' counters at one tick for n runs (row i = run i of the batch).

    Slot semantics are exactly ``VersionSeries``'s: column k holds the increments in
    ((k-1)·S, k·S], only slots already scraped and ingested at the tick; every run of a
    batch has the same slots (they tick at one time).

    Attributes:
        t: the tick time.
        scrape_s: the scrape interval S.
        bounds_ms: finite latency bucket upper bounds in ms (the last bucket is +Inf).
        canary_requests, canary_errors: (n, K) the canary's counts per slot.
        primary_requests, primary_errors: (n, K) the primary's.
        canary_hist, primary_hist: (n, K, B) latency bucket counts, or None when not recorded.
    """

    t: float
    scrape_s: float
    bounds_ms: tuple[float, ...]
    canary_requests: np.ndarray
    canary_errors: np.ndarray
    primary_requests: np.ndarray
    primary_errors: np.ndarray
    canary_hist: np.ndarray | None = None
    primary_hist: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of runs (rows)."""
        return len(self.canary_requests)

    def row(self, i: int) -> JudgeData:
        """Run i's data as the scalar ``judge`` reads it (views, no copy)."""
        return JudgeData(
            self.t,
            self.scrape_s,
            self.bounds_ms,
            VersionSeries(
                self.canary_requests[i],
                self.canary_errors[i],
                None if self.canary_hist is None else self.canary_hist[i],
            ),
            VersionSeries(
                self.primary_requests[i],
                self.primary_errors[i],
                None if self.primary_hist is None else self.primary_hist[i],
            ),
        )

    def take(self, rows: np.ndarray) -> JudgeBatch:
        """The batch of the runs ``rows`` (indexes into this batch), in that order."""
        return JudgeBatch(
            self.t,
            self.scrape_s,
            self.bounds_ms,
            self.canary_requests[rows],
            self.canary_errors[rows],
            self.primary_requests[rows],
            self.primary_errors[rows],
            None if self.canary_hist is None else self.canary_hist[rows],
            None if self.primary_hist is None else self.primary_hist[rows],
        )

    @classmethod
    def of(cls, data: JudgeData) -> JudgeBatch:
        """One run's data as a batch of one (the scalar path of a vectorised judge).

        Series of unequal length are cut to the shorter (``counts.slot_count``), as every
        judge reads them.
        """
        c, p = data.canary, data.primary
        k = min(len(c.requests), len(p.requests))

        def rows(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else np.asarray(x[:k], dtype=float)[None]

        return cls(
            data.t,
            data.scrape_s,
            data.bounds_ms,
            np.asarray(c.requests[:k], dtype=float)[None],
            np.asarray(c.errors[:k], dtype=float)[None],
            np.asarray(p.requests[:k], dtype=float)[None],
            np.asarray(p.errors[:k], dtype=float)[None],
            rows(c.hist),
            rows(p.hist),
        )


@dataclass(frozen=True, eq=False)
class Judgements:
    """A batch's answers, as columns (row i answers run i of the judged rows).

    Attributes:
        verdict: (n,) int8 codes, indexes into ``VERDICTS``.
        reject: (n,) bools: roll back now.
        accept: (n,) bools: the strategy may promote early.
        details: row -> that run's ``Judgement.detail`` (built on demand: most runs' details
            are never read), or None for empty details.
    """

    verdict: np.ndarray
    reject: np.ndarray
    accept: np.ndarray
    details: Callable[[int], Detail] | None = None

    def __len__(self) -> int:
        return len(self.verdict)

    def at(self, i: int) -> Judgement:
        """Run i's full ``Judgement``, detail included."""
        return Judgement(
            VERDICTS[int(self.verdict[i])],
            reject=bool(self.reject[i]),
            accept=bool(self.accept[i]),
            detail={} if self.details is None else self.details(i),
        )

    @classmethod
    def of(cls, judgements: list[Judgement]) -> Judgements:
        """Columns of scalar judgements (the row-by-row default)."""
        codes = {v: i for i, v in enumerate(VERDICTS)}
        details = [dict(j.detail) for j in judgements]
        return cls(
            np.array([codes[j.verdict] for j in judgements], dtype=np.int8),
            np.array([j.reject for j in judgements], dtype=bool),
            np.array([j.accept for j in judgements], dtype=bool),
            details.__getitem__,
        )


@runtime_checkable
class Judge(Protocol):
    """A pure decision rule over ``JudgeData``.

    Attributes:
        kind: the ``judge.kind`` it is configured by.
        needs_latency: whether it reads latency histograms (the world then records the
            primary's histogram too, which costs simulation time).
    """

    kind: str

    @property
    def needs_latency(self) -> bool: ...

    @property
    def signals(self) -> frozenset[str]:
        """The builtin metrics (``request-success-rate``, ``request-duration``) whose
        threshold checks the judge replaces."""
        ...

    def initial_state(self) -> Any: ...

    def judge(self, state: Any, data: JudgeData) -> tuple[Any, Judgement]: ...

    def batch_state(self, n: int) -> Any:
        """The initial state of n runs, held as arrays (owned by the caller)."""
        ...

    def judge_batch(self, state: Any, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Judge the runs ``rows`` (indexes into ``state``; ``data`` has one row per entry
        of ``rows``, in that order), updating those rows of ``state`` in place."""
        ...

    def state_row(self, state: Any, i: int) -> Any:
        """Run i's state as the scalar ``judge`` would hold it."""
        ...


class RowByRow:
    """The batch API by a loop over the scalar ``judge`` (the default for a judge without a
    vectorised pass): the batch state is a list of scalar states."""

    def batch_state(self, n: int) -> list[Any]:
        """n initial scalar states."""
        first = self.initial_state()  # type: ignore[attr-defined]
        return [first] * n  # states are immutable: sharing the first is safe

    def judge_batch(self, state: list[Any], rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """``judge`` on each row; ``state[rows[j]]`` replaced by run j's new state."""
        out = []
        for j, r in enumerate(rows):
            state[int(r)], judgement = self.judge(state[int(r)], data.row(j))  # type: ignore[attr-defined]
            out.append(judgement)
        return Judgements.of(out)

    def state_row(self, state: list[Any], i: int) -> Any:
        """Run i's scalar state."""
        return state[i]
