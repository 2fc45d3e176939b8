"""Gates files: what ``pdsim check`` requires of a policy, read with file/line errors.

A gates file (YAML)::

    name: flagger-canary               # optional; default: the file's stem
    policy: ../deploy/canary.yaml      # optional; paths relative to this file, several combine
                                       # (a Canary plus its MetricTemplates); default: each
                                       # scenario's own policy
    runs: 400                          # rollouts per scenario (default 1000)
    seed: 1                            # root seed (default: each scenario's seed)
    confidence: 0.95                   # level of every interval (default 0.95)
    inconclusive: fail                 # fail | warn | pass: how an undecided requirement counts
    requirements:                      # apply to every scenario where they are defined
      false_rollback_rate: {max: 0.01}
    scenarios:
      - ../scenarios/good-release.yaml
      - path: ../scenarios/error-spike.yaml
        runs: 600                      # per-scenario overrides: runs, seed, requirements
        requirements:
          detection_rate: {min: 0.99}
          detection_time_s.p95: {max: 600}
          excess_errors.mean: {max: 200}
    frontier:                          # optional: fail when a tuned policy is much better
      tune: ../tune/out                # a ``pdsim tune`` output folder (relative to this file)
      margin: 2                        # fail when a feasible frontier candidate is better by
                                       # more than this factor on every objective
      runs: 1000                       # runs per portfolio scenario for the policy under test
                                       # (default: the tune's last rung)

Requirement names are the summary's rates (``false_rollback_rate``, ``detection_rate``,
``missed_rate``, ``promoted``, ``rolled_back``, ``unfinished``; for A/B runs the business
rates ``false_winner_rate``, ``power``, ``ci_coverage``... of ``sim.stats.BUSINESS_RATES``), or
a run-record quantity (or a business one: ``regret_conversions_total``...) and a statistic:
``mean`` or a percentile ``pNN`` (``p50``, ``p95``, ``p99.9``).

``frontier:`` needs ``policy:`` (the policy it judges) and makes ``scenarios:`` optional: a
gates file may hold the frontier gate alone. The rule itself is in ``sim.gates.frontier``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sim.errors import InputError
from sim.limits import MAX_SEED, SEED_LIMIT
from sim.models import parse_run_count
from sim.stats import BUSINESS_QUANTITIES, BUSINESS_RATES
from sim.yamlio import YamlDoc, load_yaml

__all__ = [
    "RATES",
    "QUANTITIES",
    "TREATMENTS",
    "Requirement",
    "GateScenario",
    "FrontierGate",
    "Gates",
    "load_gates",
    "parse_gates",
]

#: Rates a requirement can bound, and the runs each is a share of.
RATES = {
    "false_rollback_rate": "good releases",
    "detection_rate": "bad releases",
    "missed_rate": "bad releases",
    "promoted": "runs",
    "rolled_back": "runs",
    "unfinished": "runs",
    # A/B experiments' business outcomes (issue 19): sim.stats.business_population
    **BUSINESS_RATES,
}
#: Run-record quantities a requirement can bound with a statistic (unit for messages).
QUANTITIES = {
    "detection_time_s": "s",
    "decision_time_s": "s",
    "excess_errors": "requests",
    "excess_errors_after_promotion": "requests",
    "canary_requests": "requests",
    "canary_errors": "requests",
    "users_affected": "users",
    "users_exposed": "users",
    # A/B experiments' business outcomes (issue 19): sim.stats.business_quantity
    **BUSINESS_QUANTITIES,
}
TREATMENTS = ("fail", "warn", "pass")
_TOP_KEYS = {
    "name",
    "description",
    "policy",
    "runs",
    "seed",
    "confidence",
    "inconclusive",
    "requirements",
    "scenarios",
    "frontier",
}
_SCENARIO_KEYS = {"path", "runs", "seed", "requirements"}
_FRONTIER_KEYS = {"tune", "margin", "runs"}
#: What makes a folder a ``pdsim tune`` output, for the frontier gate.
TUNE_FILES = ("tune.json", "frontier.parquet")
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


@dataclass(frozen=True)
class Requirement:
    """One bound on one statistic, e.g. ``detection_time_s.p95 <= 600``.

    Attributes:
        metric: a key of :data:`RATES` or :data:`QUANTITIES`.
        stat: None for a rate; ``"mean"`` or ``"pNN"`` for a quantity.
        min: lower bound, or None.
        max: upper bound, or None.
        line: line of the requirement in the gates file.
    """

    metric: str
    stat: str | None
    min: float | None
    max: float | None
    line: int = 1

    @property
    def name(self) -> str:
        """The requirement as written: ``detection_rate``, ``excess_errors.mean``."""
        return self.metric if self.stat is None else f"{self.metric}.{self.stat}"

    @property
    def quantile(self) -> float | None:
        """The quantile level of a ``pNN`` statistic (0.95 for p95), else None."""
        m = _PERCENTILE.fullmatch(self.stat or "")
        return float(m.group(1)) / 100.0 if m else None

    @property
    def bound_text(self) -> str:
        """``≤ 600``, ``≥ 99%`` (rates in percent) or ``in [1, 2]``."""

        def fmt(v: float) -> str:
            return f"{100 * v:g}%" if self.stat is None else f"{v:g}"

        if self.min is not None and self.max is not None:
            return f"in [{fmt(self.min)}, {fmt(self.max)}]"
        if self.max is not None:
            return f"≤ {fmt(self.max)}"
        return f"≥ {fmt(cast(float, self.min))}"  # a requirement has a bound (checked when read)


@dataclass(frozen=True)
class GateScenario:
    """A scenario to simulate and the requirements its runs must meet."""

    path: Path
    runs: int
    seed: int | None
    requirements: tuple[Requirement, ...]
    #: requirements inherited from the file's top level: skipped where undefined
    inherited: tuple[Requirement, ...] = ()
    line: int = 1


@dataclass(frozen=True)
class FrontierGate:
    """The ``frontier:`` key: judge the policy against a ``pdsim tune`` frontier.

    Attributes:
        tune: the tune output folder (holds ``tune.json`` and ``frontier.parquet``).
        margin: the factor (at least 1) a frontier candidate must beat the policy by, on
            every objective, for the gate to fail.
        runs: runs per portfolio scenario for the policy; None: the tune's last rung.
        line: line of ``frontier:`` in the gates file.
    """

    tune: Path
    margin: float
    runs: int | None = None
    line: int = 1


@dataclass(frozen=True)
class Gates:
    """A parsed gates file (see the module docstring)."""

    file: str
    name: str
    policy: tuple[Path, ...]
    scenarios: tuple[GateScenario, ...]
    confidence: float = 0.95
    inconclusive: str = "fail"
    description: str = ""
    frontier: FrontierGate | None = None


class _Reader:
    """Checks a gates document key by key, raising one-line errors with the line."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.base = Path(doc.file).parent

    def fail(self, loc: tuple, message: str, got: Any = None, *, show_got: bool = True) -> InputError:
        kwargs = {"got": got} if show_got else {}
        return InputError(self.doc.file, self.doc.line_of(loc), self.doc.field_path(loc) or None, message, **kwargs)

    def mapping(self, value: Any, loc: tuple, keys: set[str], what: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(loc, f"{what} must be a mapping", type(value).__name__)
        for key in value:
            if key not in keys:
                raise self.fail(loc + (key,), f"unknown key; expected one of {', '.join(sorted(keys))}", key)
        return value

    def integer(self, value: Any, loc: tuple, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(loc, f"must be an integer of at least {minimum}", value)
        return value

    def seed(self, value: Any, loc: tuple) -> int:
        """A root seed: 0 to ``MAX_SEED`` (issue 13: larger ones failed deep inside a run)."""
        seed = self.integer(value, loc, 0)
        if seed > MAX_SEED:
            raise self.fail(loc, f"at most {SEED_LIMIT}", value)
        return seed

    def runs(self, value: Any, loc: tuple) -> int:
        """A ``runs:`` value: a whole number up to ``limits.MAX_RUNS`` (``1e6`` allowed)."""
        try:
            return parse_run_count(value)
        except ValueError as err:
            raise self.fail(loc, str(err), value) from None

    def number(self, value: Any, loc: tuple) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(loc, "must be a finite number", value)
        return float(value)

    def path(self, value: Any, loc: tuple) -> Path:
        if not isinstance(value, str) or not value:
            raise self.fail(loc, "must be a path (relative to the gates file)", value)
        path = self.base / value
        if not os.path.exists(path):  # False too for a name the system refuses (too long)
            raise self.fail(loc, f"no such file or directory: {path}", value)
        return path

    def requirements(self, value: Any, loc: tuple) -> tuple[Requirement, ...]:
        if not isinstance(value, dict):
            raise self.fail(
                loc,
                "must be a mapping of requirement to bounds, e.g. detection_rate: {min: 0.99}",
                type(value).__name__,
            )
        return tuple(self.requirement(str(key), bounds, loc + (key,)) for key, bounds in value.items())

    def requirement(self, key: str, bounds: Any, loc: tuple) -> Requirement:
        metric, _, stat = key.partition(".")
        if metric in RATES:
            if stat:
                raise self.fail(loc, f"{metric} is a rate and takes no statistic (write {metric}: {{max: ...}})", key)
            stat_or_none = None
        elif metric in QUANTITIES:
            if not stat:
                raise self.fail(loc, f"needs a statistic: {metric}.mean or {metric}.pNN (e.g. {metric}.p95)", key)
            m = _PERCENTILE.fullmatch(stat)
            if stat != "mean" and not (m and 0 < float(m.group(1)) < 100):
                raise self.fail(
                    loc, "unknown statistic; use mean or a percentile pNN with 0 < NN < 100 (p50, p95, p99.9)", stat
                )
            stat_or_none = stat
        else:
            known = ", ".join(sorted(RATES)) + "; or a quantity with .mean/.pNN: " + ", ".join(sorted(QUANTITIES))
            raise self.fail(loc, f"unknown requirement; known: {known}", key)
        self.mapping(bounds, loc, {"min", "max"}, "a requirement")
        if not bounds:
            raise self.fail(loc, "needs a bound: {min: X}, {max: X} or both", bounds)
        lo = self.number(bounds["min"], loc + ("min",)) if "min" in bounds else None
        hi = self.number(bounds["max"], loc + ("max",)) if "max" in bounds else None
        if stat_or_none is None:
            for b, name in ((lo, "min"), (hi, "max")):
                if b is not None and not 0.0 <= b <= 1.0:
                    raise self.fail(loc + (name,), "a rate's bound must be between 0 and 1 (0.01 is 1%)", b)
        if lo is not None and hi is not None and lo > hi:
            raise self.fail(loc, f"min must not exceed max (min {lo:g}, max {hi:g})", show_got=False)
        return Requirement(metric, stat_or_none, lo, hi, self.doc.line_of(loc))

    def frontier(self, value: Any, loc: tuple) -> FrontierGate:
        """The ``frontier:`` mapping; the folder must hold a tune's ``tune.json`` and ``frontier.parquet``."""
        self.mapping(value, loc, _FRONTIER_KEYS, "frontier")
        for key in ("tune", "margin"):
            if key not in value:
                what = "a pdsim tune output folder" if key == "tune" else "the factor that fails the gate, e.g. 2"
                raise self.fail(loc, f"missing key {key} ({what})", show_got=False)
        tune = self.path(value["tune"], loc + ("tune",))
        if not tune.is_dir():
            raise self.fail(loc + ("tune",), f"must be a pdsim tune output folder, not a file: {tune}", value["tune"])
        missing = [name for name in TUNE_FILES if not (tune / name).is_file()]
        if missing:
            raise self.fail(
                loc + ("tune",),
                f"not a pdsim tune output folder: no {' or '.join(missing)} in {tune}",
                value["tune"],
            )
        margin = self.number(value["margin"], loc + ("margin",))
        if margin < 1.0:
            # Below 1 a policy would fail against a candidate *worse* than itself.
            raise self.fail(loc + ("margin",), "must be at least 1 (a factor: 2 fails at 2x better)", value["margin"])
        runs = self.runs(value["runs"], loc + ("runs",)) if "runs" in value else None
        return FrontierGate(tune, margin, runs, self.doc.line_of(loc))


def parse_gates(doc: YamlDoc) -> Gates:
    """Check and convert a loaded gates document.

    Raises:
        InputError: ``FILE:LINE: FIELD.PATH: what is wrong (got VALUE)`` for the first problem.
    """
    r = _Reader(doc)
    data = r.mapping(doc.data, (), _TOP_KEYS, "a gates file")
    if "scenarios" not in data and "frontier" not in data:
        raise r.fail((), "missing key scenarios (the scenario files to simulate)", show_got=False)
    name = data.get("name", Path(doc.file).stem)
    if not isinstance(name, str) or not name:
        raise r.fail(("name",), "must be a non-empty string", name)
    policy_value = data.get("policy")
    policy: tuple[Path, ...] = ()
    if policy_value is not None:
        values = policy_value if isinstance(policy_value, list) else [policy_value]
        if not values:
            raise r.fail(("policy",), "must name at least one policy file or manifest", policy_value)
        loc_of = (lambda i: ("policy", i)) if isinstance(policy_value, list) else (lambda i: ("policy",))
        policy = tuple(r.path(v, loc_of(i)) for i, v in enumerate(values))
    runs = r.runs(data["runs"], ("runs",)) if "runs" in data else 1000
    seed = r.seed(data["seed"], ("seed",)) if "seed" in data else None
    confidence = r.number(data["confidence"], ("confidence",)) if "confidence" in data else 0.95
    if not 0.5 <= confidence < 1.0:
        raise r.fail(("confidence",), "must be at least 0.5 and below 1", confidence)
    treatment = data.get("inconclusive", "fail")
    if treatment not in TREATMENTS:
        raise r.fail(("inconclusive",), f"must be one of {', '.join(TREATMENTS)}", treatment)
    frontier = r.frontier(data["frontier"], ("frontier",)) if "frontier" in data else None
    if frontier is not None and not policy:
        raise r.fail(("frontier",), "needs policy: (the policy the frontier gate judges)", show_got=False)
    defaults = r.requirements(data["requirements"], ("requirements",)) if "requirements" in data else ()
    items = data.get("scenarios", [])
    if frontier is not None and "scenarios" not in data:
        if defaults:
            raise r.fail(("requirements",), "requirements need scenarios: (the scenario files to run)", show_got=False)
    elif not isinstance(items, list) or not items:
        raise r.fail(("scenarios",), "must be a non-empty list of scenario files", items)
    scenarios = []
    for i, item in enumerate(items):
        loc: tuple[str | int, ...] = ("scenarios", i)
        if isinstance(item, str):
            item = {"path": item}
            path_loc = loc
        else:
            r.mapping(item, loc, _SCENARIO_KEYS, "a scenario entry")
            if "path" not in item:
                raise r.fail(loc, "missing key path (the scenario file)", show_got=False)
            path_loc = loc + ("path",)
        own = r.requirements(item["requirements"], loc + ("requirements",)) if "requirements" in item else ()
        own_names = {q.name for q in own}
        inherited = tuple(q for q in defaults if q.name not in own_names)
        if not own and not inherited:
            raise r.fail(loc, "no requirements: add requirements to the entry or at the top level", show_got=False)
        scenarios.append(
            GateScenario(
                path=r.path(item["path"], path_loc),
                runs=r.runs(item["runs"], loc + ("runs",)) if "runs" in item else runs,
                seed=r.seed(item["seed"], loc + ("seed",)) if "seed" in item else seed,
                requirements=own,
                inherited=inherited,
                line=doc.line_of(loc),
            )
        )
    description = data.get("description", "")
    return Gates(
        file=doc.file,
        name=name,
        policy=policy,
        scenarios=tuple(scenarios),
        confidence=confidence,
        inconclusive=treatment,
        description=description if isinstance(description, str) else "",
        frontier=frontier,
    )


def load_gates(path: str | os.PathLike[str]) -> Gates:
    """Read and check a gates file.

    Raises:
        InputError: for an unreadable file or the first invalid field.
    """
    return parse_gates(load_yaml(path, what="gates file"))
