"""The judge contract: what a statistical judge sees and what it answers.

A *judge* decides whether the canary looks healthy at a tick by comparing the two
versions' raw counters, instead of checking one metric value against a fixed range.
Strategy and judgement are separate axes (docs/architecture.md section 1): any judge plugs into any
strategy, which keeps its hooks, gates and counters and asks the judge for the verdict of
the metrics it judges.

Judges are pure, like policies: ``judge(state, data) -> (state, judgement)``, with the
state passed in and returned (Gymnasium ``FuncEnv`` style). Constructors store their
parameters and compute nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
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
