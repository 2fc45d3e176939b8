"""Replay a policy against a recorded metric series (``pdsim replay``).

The replay driver plays the world's part with recorded data instead of simulated
traffic: the policy ticks on its own schedule (``policy.next_tick`` from t = 0, by the
rules of ``sim.policies.driver``, the loop the world and ``check_policy`` share) and at
each tick reads, for every metric it queries, the latest recorded row at or before the
tick. Nothing here simulates requests, so there is no blast radius, only the decision
and the tick-by-tick trace, written exactly as ``pdsim run --trace`` writes it (a policy
that traces on change only, as Argo's, gets a line only when its status changed or it
did something other than call a webhook).

Observations CSV (docs/architecture.md section 6), header ``t,metric,value``, one row per sample::

    t,metric,value
    60,request-success-rate,99.9        # a metric value
    120,request-success-rate,           # empty: no data (Prometheus returned nothing)
    150,success-rate,"[0.99, 0.97]"     # a vector, for Argo's result[0] (quoted: it has a comma)
    180,request-duration,NaN            # a NaN sample
    0,webhook:confirm-promotion,fail    # hook outcome by hook name or type: pass/fail
    300,webhook:confirm-promotion,pass
    0,ready:canary,false                # workload readiness: true/false
    240,ready:canary,true
    15,counter:canary:requests,1510     # a version's cumulative counter, for judges
    15,counter:primary:errors,14

``counter:<canary|primary>:<requests|errors>`` rows are scraped counters (as
``istio_requests_total`` reads): a statistical judge (``judge:``) sees their increments
between consecutive sample times up to the tick as ``Observation.versions`` (the first
sample is the baseline; a counter that decreases was reset and counts from 0). Without
counter rows a judge sees nothing and its verdict is no data. Latency histograms are not
read from a CSV: a judge of latency replays as no data.

A metric's number is what a Flagger provider reads and, for an Argo policy, a vector of one
sample (Argo's Prometheus provider hands a vector result to the conditions as a list:
``metricproviders/prometheus/prometheus.go`` ``processResponse``). A ``[...]`` cell is a
vector of any size (``[]``: empty, as no data); a policy that does not read vectors
(``PolicyTags.reads_vectors``) gets its last sample, as Flagger's provider keeps the last
one of a vector.

Rows may come in any order of ``t`` (they are sorted, stably: of two rows with the
same ``t`` and key the later one in the file wins). Blank lines are skipped.

What the driver models of the world, and what it does not:

* routes: the mesh router starts at weight 0; ``SetWeights`` and ``Rollback`` change
  what the next tick's ``Observation.routes`` reads back (``GetRoutes``);
* readiness: the latest ``ready:canary`` / ``ready:primary`` row (default ready). When
  unready, ``unready_since`` is the first ``false`` row of the current unready streak,
  but never earlier than the workload's (re)start: the canary starts at ``ScaleUp``, the
  primary's rolling update at ``Promote`` (as in the simulated world, whose progress
  deadline also counts from the start of the pods);
* webhooks: ``Observation.webhooks`` holds the latest ``webhook:<key>`` row of every
  key recorded so far; keys without a row are absent (the policy applies its defaults);
* the recorded values do not react to the policy's actions: a replay answers "what
  would this policy have decided on these numbers", not "what would the numbers have
  been under this policy". ``routed_weight`` is the router's weight as set by the
  actions, whatever traffic the recording saw.

The module is pure: no simpy.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.inputs.files import read_text
from sim.limits import MAX_CSV_BYTES, MAX_CSV_ROWS, MAX_HORIZON_S
from sim.outcomes import PROMOTED, ROLLED_BACK, UNFINISHED
from sim.policies.base import (
    MatrixResult,
    MetricValue,
    Observation,
    Policy,
    QueryError,
    Readiness,
    Routes,
    ScalarResult,
    single_value,
)
from sim.policies.driver import Rollout, TickLimitError, drive, metric_queries, trace_line, wants_line
from sim.policies.judges.base import JudgeData, VersionSeries

__all__ = [
    "Observations",
    "ReplayResult",
    "Series",
    "load_observations",
    "replay",
    "PROMOTED",
    "ROLLED_BACK",
    "UNFINISHED",
]

COLUMNS = ("t", "metric", "value")
WEBHOOK_PREFIX = "webhook:"
READY_PREFIX = "ready:"
COUNTER_PREFIX = "counter:"
WORKLOADS = ("canary", "primary")
COUNTERS = tuple(f"{v}:{c}" for v in WORKLOADS for c in ("requests", "errors"))
_WEBHOOK_VALUES = {"pass": True, "fail": False}
_READY_VALUES = {"true": True, "false": False}
_MISSING = object()
#: A replay's time, like a simulated one, is bounded (issue 13 item 9): a row at t = 1e9
#: would mean tens of millions of ticks.
_TOO_LATE = f"must be at most {MAX_HORIZON_S:g} seconds ({MAX_HORIZON_S / 86400:g} days) from the start"


@dataclass(frozen=True)
class Series:
    """One recorded key's rows, sorted by time.

    Attributes:
        times: sample times (seconds since the revision was applied), ascending.
        values: the value of each row.
    """

    times: tuple[float, ...]
    values: tuple[Any, ...]

    def at(self, t: float, default: Any = None) -> Any:
        """The latest value at or before ``t``, else ``default``."""
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else default

    def streak_start(self, t: float, value: Any) -> float | None:
        """When the run of rows equal to ``value`` that holds at ``t`` began, or None
        when the latest row at or before ``t`` is not ``value``."""
        i = bisect.bisect_right(self.times, t)
        if not i or self.values[i - 1] != value:
            return None
        j = i - 1
        while j > 0 and self.values[j - 1] == value:
            j -= 1
        return self.times[j]


@dataclass(frozen=True)
class Observations:
    """A recorded series: metric values, webhook outcomes and readiness over time.

    Attributes:
        metrics: metric name -> series of float values (None = no data, NaN = NaN) or
            vectors (tuples of floats).
        webhooks: hook name or type -> series of outcomes (True = pass).
        ready: ``canary`` / ``primary`` -> series of readiness (True = ready).
        last_t: time of the last row of any kind (None when there are no rows).
        source: the file it was read from ("" when built in code).
        counters: ``canary:requests`` ... ``primary:errors`` -> cumulative counter samples.
    """

    metrics: Mapping[str, Series] = field(default_factory=dict)
    webhooks: Mapping[str, Series] = field(default_factory=dict)
    ready: Mapping[str, Series] = field(default_factory=dict)
    last_t: float | None = None
    source: str = ""
    counters: Mapping[str, Series] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[float, str, Any]], source: str = "") -> Observations:
        """Build from ``(t, key, value)`` rows already typed: a metric's value is a float
        (a ``ScalarResult`` stays one), a tuple of floats (a vector; a ``MatrixResult``
        stays one), a ``QueryError`` or
        None (no data), a ``webhook:`` or ``ready:`` value a bool. Rows are sorted by
        ``t``, stably.

        Raises:
            ValueError: a key or value of the wrong kind.
        """
        keyed: dict[tuple[str, str], list[tuple[float, Any]]] = {}
        last: float | None = None
        for t, key, value in sorted(rows, key=lambda r: r[0]):
            t = float(t)
            if not math.isfinite(t):
                raise ValueError(f"time of {key} must be a finite number (got {t})")
            if abs(t) > MAX_HORIZON_S:
                raise ValueError(f"time of {key}: {_TOO_LATE} (got {t:g})")
            kind, name = _split_key(key)
            if kind == "metric":
                if isinstance(value, (ScalarResult, MatrixResult, QueryError)):
                    pass  # what the world hands a policy, kept for a replay of its observations
                elif isinstance(value, (tuple, list)) and all(_is_number(x) for x in value):
                    value = tuple(float(x) for x in value) or None  # an empty vector is no data
                elif value is None or _is_number(value):
                    value = None if value is None else float(value)
                else:
                    raise ValueError(
                        f"value of metric {name} must be a number, a vector, a QueryError or None (got {value!r})"
                    )
            elif kind == "counter":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    raise ValueError(f"value of {key} must be a count, 0 or more (got {value!r})")
                value = float(value)
            elif not isinstance(value, bool):
                raise ValueError(f"value of {key} must be a bool (got {value!r})")
            keyed.setdefault((kind, name), []).append((t, value))
            last = t
        groups: dict[str, dict[str, Series]] = {"metric": {}, "webhook": {}, "ready": {}, "counter": {}}
        for (kind, name), samples in keyed.items():
            groups[kind][name] = Series(tuple(s[0] for s in samples), tuple(s[1] for s in samples))
        return cls(
            metrics=groups["metric"],
            webhooks=groups["webhook"],
            ready=groups["ready"],
            last_t=last,
            source=source,
            counters=groups["counter"],
        )

    def versions(self, t: float) -> JudgeData | None:
        """Both versions' counter increments up to ``t`` for a judge (None: no counter rows).

        Slot i holds the increase between the i-th sample time and the one before (slot
        0, the first sample, is the baseline); a decrease is a counter reset."""
        if not self.counters:
            return None
        times = sorted({x for s in self.counters.values() for x in s.times if x <= t})
        if not times:
            return None

        def increments(key: str) -> np.ndarray:
            series = self.counters.get(key)
            if series is None:
                return np.zeros(len(times))
            values = np.array([series.at(x, 0.0) for x in times])
            step = np.diff(values, prepend=values[0])
            return np.where(step < 0, values, step)

        scrape = float(np.median(np.diff(times))) if len(times) > 1 else 15.0
        return JudgeData(
            t,
            scrape,
            (),
            VersionSeries(increments("canary:requests"), increments("canary:errors")),
            VersionSeries(increments("primary:requests"), increments("primary:errors")),
        )

    def metric(self, name: str, t: float) -> MetricValue:
        """The latest value of metric ``name`` at or before ``t`` (a tuple: a vector);
        None = no data."""
        series = self.metrics.get(name)
        return None if series is None else series.at(t)

    def webhooks_at(self, t: float) -> dict[str, bool]:
        """Outcome of every hook key recorded at or before ``t`` (latest row each)."""
        out = {}
        for key, series in self.webhooks.items():
            value = series.at(t, _MISSING)
            if value is not _MISSING:
                out[key] = value
        return out

    def readiness(self, workload: str, t: float, started_at: float | None = None) -> Readiness:
        """Readiness of ``canary`` or ``primary`` at ``t`` (ready when nothing is recorded).

        Args:
            workload: ``canary`` or ``primary``.
            t: the tick time.
            started_at: when the workload's pods were last (re)started; the unready
                streak is counted from no earlier than this.
        """
        series = self.ready.get(workload)
        if series is None or series.at(t, True):
            return Readiness(True, None)
        since = series.streak_start(t, False)
        if started_at is not None and since is not None:
            since = max(since, started_at)
        return Readiness(False, since)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _split_key(key: str) -> tuple[str, str]:
    """``("metric"|"webhook"|"ready", name)`` of a row's ``metric`` column.

    Raises:
        ValueError: an empty name after ``webhook:``, or ``ready:`` other than
            ``canary``/``primary``.
    """
    if key.startswith(WEBHOOK_PREFIX):
        name = key[len(WEBHOOK_PREFIX) :].strip()
        if not name:
            raise ValueError("webhook: needs a hook name or type, e.g. webhook:confirm-promotion")
        return "webhook", name
    if key.startswith(COUNTER_PREFIX):
        name = key[len(COUNTER_PREFIX) :].strip()
        if name not in COUNTERS:
            raise ValueError(f"must be {COUNTER_PREFIX}<canary|primary>:<requests|errors>")
        return "counter", name
    if key.startswith(READY_PREFIX):
        name = key[len(READY_PREFIX) :].strip()
        if name not in WORKLOADS:
            raise ValueError("must be ready:canary or ready:primary")
        return "ready", name
    if not key:
        raise ValueError("must name a metric, webhook:<type-or-name> or ready:canary|primary")
    return "metric", key


def load_observations(path: str | os.PathLike[str]) -> Observations:
    """Read an observations CSV (``t,metric,value``; see the module docstring).

    Raises:
        InputError: ``FILE:LINE: FIELD: what is wrong (got VALUE)`` for the first bad row.
    """
    file = os.fspath(path)
    text = read_text(path, what="observations CSV", limit=MAX_CSV_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[float, str, Any]] = []
    try:
        header: list[str] | None = None
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue  # blank line
            if header is None:
                header = [cell.strip() for cell in record]
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    raise InputError(
                        file,
                        line,
                        "header",
                        f"missing column {', '.join(missing)}; the header must be t,metric,value",
                        got=",".join(record),
                    )
                extra = [c for c in header if c not in COLUMNS]
                if extra or len(header) != len(COLUMNS):
                    raise InputError(
                        file, line, "header", "the header must be exactly t,metric,value", got=",".join(record)
                    )
                index = {c: header.index(c) for c in COLUMNS}
                continue
            if len(record) != len(COLUMNS):
                raise InputError(
                    file, line, None, f"a row needs {len(COLUMNS)} fields t,metric,value", got=",".join(record)
                )
            if len(rows) == MAX_CSV_ROWS:
                raise InputError(file, line, None, f"too many rows (limit is {MAX_CSV_ROWS:,})")
            rows.append(_parse_row(file, line, *(record[index[c]] for c in COLUMNS)))
    except csv.Error as err:
        raise InputError(file, reader.line_num or 1, None, f"not a valid CSV file: {err}") from None
    if header is None:
        raise InputError(file, 1, "header", "empty file; the header must be t,metric,value")
    return Observations.from_rows(rows, source=file)


def _parse_row(file: str, line: int, t_text: str, key: str, value_text: str) -> tuple[float, str, Any]:
    try:
        t = float(t_text)
    except ValueError:
        raise InputError(file, line, "t", "not a number of seconds", got=t_text) from None
    if not math.isfinite(t):
        raise InputError(file, line, "t", "must be a finite number of seconds", got=t_text)
    if abs(t) > MAX_HORIZON_S:
        raise InputError(file, line, "t", _TOO_LATE, got=t_text)
    key = key.strip()
    try:
        kind, name = _split_key(key)
    except ValueError as err:
        raise InputError(file, line, "metric", str(err), got=key) from None
    value = value_text.strip()
    if kind == "webhook":
        ok = _WEBHOOK_VALUES.get(value.lower())
        if ok is None:
            raise InputError(file, line, "value", f"{key} must be pass or fail", got=value_text)
        return t, key, ok
    if kind == "ready":
        ready = _READY_VALUES.get(value.lower())
        if ready is None:
            raise InputError(file, line, "value", f"{key} must be true or false", got=value_text)
        return t, key, ready
    if kind == "counter":
        try:
            count = float(value)
        except ValueError:
            count = math.nan
        if not count >= 0 or math.isinf(count):
            raise InputError(file, line, "value", f"{key} must be a count, 0 or more", got=value_text)
        return t, key, count
    if value == "":
        return t, key, None  # no data
    vector = value.startswith("[") and value.endswith("]")
    parts = [p.strip() for p in value[1:-1].split(",")] if vector else [value]
    try:
        # "NaN"/"nan": a NaN sample; "+Inf" as Prometheus writes it.
        numbers = [float(p) for p in parts] if parts != [""] else []
    except ValueError:
        raise InputError(
            file,
            line,
            "value",
            "not a number or a vector like [0.99] (empty for no data, NaN for a NaN sample)",
            got=value_text,
        ) from None
    if not vector:
        return t, key, numbers[0]
    return t, key, tuple(numbers) or None  # [] is an empty vector: no data


@dataclass(frozen=True)
class ReplayResult:
    """What the policy decided on the recorded series.

    Attributes:
        decision: ``promoted``, ``rolled_back`` or ``unfinished`` (horizon reached).
        decision_time_s: time of the first Promote or Rollback action, else None.
        final_phase: the policy's phase after its last tick.
        ticks: policy ticks run.
        trace: one dict per tick (per change for a change-only policy), as ``pdsim run --trace`` writes them.
        rollback_reason: the Rollback action's reason ("" unless rolled back).
    """

    decision: str
    decision_time_s: float | None
    final_phase: str
    ticks: int
    trace: list[dict[str, Any]] = field(default_factory=list)
    rollback_reason: str = ""


def replay(
    policy: Policy, observations: Observations, *, horizon_s: float | None = None, trace: bool = True
) -> ReplayResult:
    """Run ``policy`` against recorded ``observations``.

    Args:
        policy: the decision maker.
        observations: the recorded series.
        horizon_s: stop before a tick later than this; default the last row's time. At
            most ``limits.MAX_HORIZON_S``.
        trace: keep the trace; without it only the decision is kept, not a line per tick.

    Returns:
        The decision and the trace (a line per tick, or per change for a policy that
        traces on change only; empty without ``trace``).

    Raises:
        ValueError: ``horizon_s`` beyond ``limits.MAX_HORIZON_S``, or the policy's
            ``next_tick`` does not move time forward (``sim.policies.driver.TickError``).
        InputError: the policy would tick more than ``limits.MAX_TICKS_PER_RUN`` times
            before the horizon (named after the observations).
    """
    if horizon_s is not None and not abs(horizon_s) <= MAX_HORIZON_S:
        raise ValueError(f"horizon {_TOO_LATE} (got {horizon_s:g})")
    horizon = horizon_s if horizon_s is not None else (observations.last_t or 0.0)
    names = [q.name for q in policy.queries()]
    on_change = policy.tags.trace_on_change
    vectors = policy.tags.reads_vectors
    queries = metric_queries(policy)

    def observe(r: Rollout) -> Observation:
        t = r.t
        return Observation(
            t=t,
            tick=r.ticks,
            metrics={name: _as_read(observations.metric(name, t), vectors) for name in names},
            routes=r.routes,
            canary=observations.readiness("canary", t, r.canary_started),
            primary=observations.readiness("primary", t, r.primary_started),
            webhooks=observations.webhooks_at(t),
            versions=observations.versions(t),
        )

    rollout = Rollout.start(policy)
    lines: list[dict[str, Any]] = []
    # A tick at the horizon itself still runs: the driver ends at or past the bound it is given.
    ticks = drive(policy, rollout, observe, math.nextafter(horizon, math.inf))
    try:
        for tick in ticks:
            if wants_line(on_change, lines, rollout.status, tick.actions):
                if not trace:
                    del lines[:]  # a change-only policy compares with the last line alone
                lines.append(
                    trace_line(
                        rollout.t,
                        rollout.ticks,
                        rollout.status,
                        _routed_percent(rollout.routes),
                        tick.actions,
                        tick.obs.metrics,
                        policy.event(rollout.state),
                        queries,
                        vectors,
                    )
                )
    except TickLimitError as err:
        raise InputError(observations.source or "observations", None, "t", f"{err}: replay a shorter span") from None
    d = rollout.decision
    return ReplayResult(
        decision=d.outcome,
        decision_time_s=d.time,
        final_phase=str(rollout.status["phase"]),
        ticks=rollout.ticks,
        trace=lines if trace else [],
        rollback_reason=d.reason,
    )


def _as_read(value: MetricValue, vectors: bool) -> Any:
    """A recorded metric value as the policy reads it: a vector as is for a policy that
    reads vectors, else reduced as Flagger's Prometheus provider reduces one
    (``sim.policies.base.single_value``: the last sample; an empty one is no data)."""
    return value if vectors else single_value(value)


def _routed_percent(routes: Routes) -> float:
    """The trace's ``routed_weight``: the router's canary weight, a float as the world
    writes it. With A/B routes (``matched``) the world multiplies by the matching
    cohorts' share of traffic; a recording does not know that share, so the replay
    writes the weight of the matching requests."""
    return float(routes.canary_weight)
