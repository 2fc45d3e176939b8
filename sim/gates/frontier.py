"""The frontier gate: fail a policy that a ``pdsim tune`` frontier beats by a wide margin.

A gates file's ``frontier:`` names a tune output folder and a ``margin``. The policy under
test (the file's ``policy:``) runs on the tune's portfolio with the tune's seed and the
search's random stream, so its run k meets the same releases, traffic and noise as each
candidate's run k did (common random numbers), and its objectives are estimated as the
tune estimated the candidates' (``sim.tuning.metrics``).

The rule: the policy is *dominated* when some feasible candidate of the frontier is better
than it by more than ``margin`` on every objective. Objectives are minimised, so a
candidate is better by the factor policy / candidate. Each factor is judged on the
intervals, pessimistically for the verdict: the policy's lower end against the candidate's
upper end times the margin,

    policy.low >= margin x candidate.high  and  policy.low > candidate.high
                                                          (for every objective),

so noise alone never fails the gate, and a candidate no better than the policy never
dominates it, even at margin 1. A candidate whose upper end is 0 (no excess error at all)
beats any policy whose lower end is above 0 by any margin. The factor's interval is
[policy.low / candidate.high, policy.high / candidate.low]; a candidate is compared at the
confidence the tune used, the policy at the gates file's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import InputError
from sim.gates.spec import FrontierGate
from sim.yamlio import YamlDoc, load_yaml

if TYPE_CHECKING:
    import pandas as pd

    from sim.policies.base import Policy
    from sim.tuning.metrics import Estimate, MetricName
    from sim.tuning.portfolio import Portfolio

__all__ = [
    "TuneFrontier",
    "Ratio",
    "Dominance",
    "FrontierSetup",
    "FrontierCheck",
    "read_tune",
    "ratio",
    "dominance",
    "load_frontier",
    "check_frontier",
]

#: Keys of ``tune.json`` the gate reads, and what each must be.
_TUNE_KEYS = {"portfolio": list, "objectives": list, "rungs": list, "seed": int}
#: How each objective's improvement reads in a verdict (default: "Nx lower METRIC [interval]").
_PHRASES = {
    "excess_errors": "loses {f} fewer {m} {i}",
    "excess_errors_after_promotion": "loses {f} fewer {m} {i}",
    "canary_errors": "loses {f} fewer {m} {i}",
    "detection_time_s": "detects {f} faster {i} ({m})",
    "decision_time_s": "decides {f} faster {i} ({m})",
    "users_affected": "affects {f} fewer users {i} ({m})",
    "users_exposed": "exposes {f} fewer users {i} ({m})",
}


@dataclass(frozen=True)
class TuneFrontier:
    """What the frontier gate reads from a tune output folder.

    Attributes:
        folder: the folder.
        doc: ``tune.json`` as loaded (with lines, for errors naming it).
        frontier: ``frontier.parquet``: one row per frontier candidate.
        name: the tune's name (the folder's name when ``tune.json`` has none).
        objectives: the objectives' names, in order.
        constraints: constraint name -> ``{"max": x}`` or ``{"min": x}``.
        space: the tuned PATHs, in order (columns of the frontier).
        seed: the tune's seed.
        last_rung: runs per portfolio scenario at the last rung.
        status: ``running`` or ``done``.
    """

    folder: Path
    doc: YamlDoc
    frontier: pd.DataFrame
    name: str
    objectives: tuple[str, ...]
    constraints: dict[str, dict[str, float]]
    space: tuple[str, ...]
    seed: int
    last_rung: int
    status: str = "done"


@dataclass(frozen=True)
class Ratio:
    """How much better a candidate is than the policy on one objective (policy / candidate).

    Attributes:
        metric: the objective.
        policy: the policy's estimate; ``candidate``: the candidate's (value, low, high).
        factor: policy.value / candidate.value (NaN when undefined).
        low: policy.low / candidate.high: the pessimistic factor the rule judges.
        high: policy.high / candidate.low.
        dominated: policy.low >= margin x candidate.high and policy.low > candidate.high
            (so any margin when candidate.high is 0 and policy.low > 0).
    """

    metric: str
    policy: tuple[float, float, float]
    candidate: tuple[float, float, float]
    factor: float
    low: float
    high: float
    dominated: bool


@dataclass(frozen=True)
class Dominance:
    """One feasible frontier candidate against the policy, objective by objective.

    Attributes:
        candidate: its id in the tune (``candidate`` column).
        settings: its tuned values, ``interval=30s, stepWeight=2``.
        ratios: one per objective, in the tune's order.
        constraints: its constraints as the tune bounded them, ``false_rollback_rate ≤ 0.8%``.
    """

    candidate: int
    settings: str
    ratios: tuple[Ratio, ...]
    constraints: tuple[str, ...] = ()

    @property
    def dominated(self) -> bool:
        """Better than the policy by the margin on every objective."""
        return all(r.dominated for r in self.ratios)

    @property
    def factor(self) -> float:
        """The pessimistic factor on every objective: the smallest ``low`` (NaN if any is)."""
        lows = [r.low for r in self.ratios]
        return math.nan if any(math.isnan(x) for x in lows) else min(lows)


@dataclass
class FrontierCheck:
    """The frontier gate's result; ``passed`` is its verdict.

    Attributes:
        tune: the tune it read.
        margin: the gates file's margin.
        policy: the name of the policy under test.
        runs: runs per portfolio scenario the policy ran.
        rollouts: runs in all (over the portfolio's scenarios).
        estimates: the policy's objectives and constraints on the tune's portfolio.
        candidates: every feasible frontier candidate, the most dominating first.
        unmet: the tune's constraints the policy itself does not meet (on its pessimistic end).
        warnings: e.g. a tune still running, or the policy's warnings.
    """

    tune: TuneFrontier
    margin: float
    policy: str
    runs: int
    rollouts: int
    estimates: dict[str, Estimate]
    candidates: list[Dominance]
    unmet: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No feasible candidate dominates the policy by the margin."""
        return not any(d.dominated for d in self.candidates)

    @property
    def closest(self) -> Dominance | None:
        """The candidate with the largest pessimistic factor on every objective."""
        return self.candidates[0] if self.candidates else None

    def message(self) -> str:
        """One line: who dominates and by how much, or the best factor found."""
        note = f"; the policy itself fails the tune's {', '.join(self.unmet)}" if self.unmet else ""
        return self._verdict() + note

    def _verdict(self) -> str:
        best = self.closest
        if best is None:
            return f"not dominated: the frontier of {self.tune.name} has no feasible candidate"
        where = f"candidate #{best.candidate}" + (f" ({best.settings})" if best.settings else "")
        parts = ", ".join(_phrase(r) for r in best.ratios)
        at = f" at {', '.join(best.constraints)}" if best.constraints else ""
        first = best.ratios[0]
        if best.dominated:
            return (
                f"dominated: {where} {parts}{at}: better by more than {self.margin:g}x on every objective, "
                f"on the intervals; your canary could be {_times(first.factor, 2)} better on {first.metric}"
            )
        if math.isnan(best.factor) or best.factor < 1.0:
            head = "not dominated: no frontier candidate is shown better on every objective; the closest,"
        else:
            head = f"not dominated by more than {self.margin:g}x: best factor {_times(best.factor)}, by"
        return f"{head} {where}, {parts}{at}"


def _times(x: float, digits: int = 3) -> str:
    if math.isnan(x):
        return "n/a"
    return "∞x" if math.isinf(x) else f"{x:.{digits}g}x"


def _phrase(r: Ratio) -> str:
    """``loses 12.3x fewer excess_errors.mean [9.1x, 15.2x]``."""
    template = _PHRASES.get(r.metric.partition(".")[0], "{f} lower {m} {i}")
    return template.format(f=_times(r.factor), m=r.metric, i=f"[{_times(r.low)}, {_times(r.high)}]")


def _quotient(top: float, bottom: float) -> float:
    """top / bottom for non-negative values: ∞ above 0 over 0, NaN for 0/0 or undefined."""
    if math.isnan(top) or math.isnan(bottom) or bottom < 0 or top < 0 or (top == 0 and bottom == 0):
        return math.nan
    if math.isinf(bottom):
        return 0.0 if math.isfinite(top) else math.nan
    return math.inf if bottom == 0 else top / bottom


def ratio(metric: str, policy: Estimate, candidate: tuple[float, float, float], margin: float) -> Ratio:
    """One objective's factor and whether the margin is met on the intervals.

    Args:
        metric: the objective's name.
        policy: the policy's estimate (value, low, high).
        candidate: the candidate's (value, low, high) from the frontier.
        margin: the factor the candidate must beat the policy by.
    """
    value, low, high = (float(x) for x in candidate)
    p_low = float(policy.low)
    if math.isnan(p_low) or math.isnan(high) or math.isinf(high):
        dominated = False  # an undefined or unbounded end shows nothing
    else:
        # Strictly better too: at margin 1 a candidate no better than the policy (the same
        # policy, with a degenerate interval) must not dominate it. A candidate with none
        # at all (high 0) beats any policy with some (low > 0) by any margin.
        dominated = p_low >= margin * high and p_low > high
    return Ratio(
        metric,
        (float(policy.value), p_low, float(policy.high)),
        (value, low, high),
        _quotient(float(policy.value), value),
        _quotient(p_low, high),
        _quotient(float(policy.high), low),
        dominated,
    )


def _settings(row: Mapping[str, Any], space: Sequence[str]) -> str:
    """``interval=30s, stepWeight=2``: each tuned PATH by its last field, in full when two clash."""
    short = {path: path.rsplit(".", 1)[-1] for path in space}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    out = []
    for path in space:
        if path in row:
            name = path.removeprefix("policy.") if short[path] in clashes else short[path]
            value = row[path]
            out.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(out)


def _value_text(metric: str, value: float) -> str:
    """A rate in percent, anything else with four digits."""
    from sim.gates.spec import RATES

    if math.isnan(value):
        return "n/a"
    return f"{100 * value:.2g}%" if metric in RATES else f"{value:,.4g}"


def _bound_text(metric: str, bound: Mapping[str, float], row: Mapping[str, Any]) -> str:
    """``false_rollback_rate ≤ 0.8%``: the candidate's pessimistic end on the constrained side."""
    side, end = ("≤", f"{metric}_high") if "max" in bound else ("≥", f"{metric}_low")
    return f"{metric} {side} {_value_text(metric, float(row.get(end, math.nan)))}"


def _limit(metric: str, bound: Mapping[str, float]) -> str:
    """``≤ 1%``: a constraint's bound as written in the tune."""
    side, x = ("≤", bound["max"]) if "max" in bound else ("≥", bound["min"])
    return f"{side} {_value_text(metric, float(x))}"


def dominance(
    policy: Mapping[str, Estimate], tune: TuneFrontier, margin: float, frontier: pd.DataFrame | None = None
) -> list[Dominance]:
    """Every feasible frontier candidate against the policy, the most dominating first.

    Args:
        policy: the policy's estimates, keyed by objective name.
        tune: the tune read by :func:`read_tune`.
        margin: the factor a candidate must beat the policy by on every objective.
        frontier: the candidates (default: ``tune.frontier``).

    Returns:
        One :class:`Dominance` per feasible candidate, sorted by the pessimistic factor on
        every objective, largest first (NaN last); dominating candidates come first.
    """
    rows = tune.frontier if frontier is None else frontier
    if "feasible" in rows.columns:
        rows = rows[rows["feasible"].astype(bool)]
    out = []
    for record in rows.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        ratios = tuple(
            ratio(m, policy[m], (row[m], row[f"{m}_low"], row[f"{m}_high"]), margin) for m in tune.objectives
        )
        bounds = tuple(_bound_text(m, b, row) for m, b in tune.constraints.items())
        out.append(Dominance(int(row["candidate"]), _settings(row, tune.space), ratios, bounds))
    return sorted(out, key=lambda d: (not d.dominated, math.inf if math.isnan(d.factor) else -d.factor))


def _tune_error(doc: YamlDoc, loc: tuple, message: str) -> InputError:
    return InputError(doc.file, doc.line_of(loc), doc.field_path(loc) or None, message)


def read_tune(folder: str | os.PathLike[str]) -> TuneFrontier:
    """Read a ``pdsim tune`` output folder's ``tune.json`` and ``frontier.parquet``.

    Raises:
        InputError: naming the file (and line of ``tune.json``) that is not what a tune writes.
    """
    import pandas as pd

    folder = Path(folder)
    doc = load_yaml(folder / "tune.json", what="tune.json")  # JSON is YAML: errors get a line
    data = doc.data
    if not isinstance(data, dict):
        raise InputError(doc.file, 1, None, "not a pdsim tune output: tune.json must hold a JSON object")
    for key, kind in _TUNE_KEYS.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is list and not value):
            what = "a non-empty list" if kind is list else "an integer"
            raise _tune_error(doc, (key,) if key in data else (), f"not a pdsim tune output: {key} must be {what}")
    for i, item in enumerate(data["portfolio"]):
        weight = item.get("weight") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("scenario"), str)
            or isinstance(weight, bool)
            or not isinstance(weight, (int, float))
        ):
            raise _tune_error(doc, ("portfolio", i), "not a pdsim tune output: an entry needs scenario and weight")
    objectives = tuple(str(m) for m in data["objectives"])
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, dict) or not all(isinstance(b, dict) for b in constraints.values()):
        raise _tune_error(doc, ("constraints",), "not a pdsim tune output: constraints must map a metric to {max: x}")
    rungs = data["rungs"]
    if not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in rungs):
        raise _tune_error(doc, ("rungs",), "not a pdsim tune output: rungs must be positive run counts")
    path = folder / "frontier.parquet"
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged or foreign file
        raise InputError(str(path), 1, None, f"not a readable Parquet file: {str(err)[:120]}") from None
    need = ["candidate", *(f"{m}{s}" for m in objectives for s in ("", "_low", "_high"))]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(str(path), 1, None, f"not a pdsim tune frontier: no column {', '.join(missing)}")
    name = data.get("name")
    return TuneFrontier(
        folder=folder,
        doc=doc,
        frontier=frame,
        name=name if isinstance(name, str) and name else folder.name,
        objectives=objectives,
        constraints={str(k): dict(v) for k, v in constraints.items()},
        space=tuple(str(p) for p in (data.get("space") or {})),
        seed=data["seed"],
        last_rung=rungs[-1],
        status=str(data.get("status", "done")),
    )


@dataclass(frozen=True)
class FrontierSetup:
    """Everything the frontier gate reads, checked before anything runs.

    Attributes:
        gate: the gates file's ``frontier:``.
        tune: the tune output.
        portfolio: the tune's search portfolio (stream 0: the search's seeds).
        policy: the policy under test.
        metrics: the tune's objectives, then its constraints.
        warnings: the policy's unmodelled fields, a tune still running.
    """

    gate: FrontierGate
    tune: TuneFrontier
    portfolio: Portfolio
    policy: Policy
    metrics: tuple[MetricName, ...]
    warnings: tuple[str, ...] = ()


def _scenario_path(tune: TuneFrontier, item: Mapping[str, Any]) -> Path:
    """A portfolio scenario as ``tune.json`` names it: relative to the tune folder (as
    ``pdsim tune`` writes it), or absolute."""
    return tune.folder / str(item["scenario"])


def load_frontier(gate: FrontierGate, policy_paths: Sequence[str | os.PathLike[str]]) -> FrontierSetup:
    """Read the tune folder, its portfolio and the policy under test.

    Raises:
        InputError: for a folder that is not a tune output, a portfolio scenario or a
            policy file that does not load; each names its file and line.
    """
    from sim.inputs.policy import load_policy_with_warnings
    from sim.tuning.metrics import parse_metric
    from sim.tuning.portfolio import load_portfolio

    tune = read_tune(gate.tune)
    data = tune.doc.data
    metrics = []
    for loc, text in [(("objectives", i), m) for i, m in enumerate(tune.objectives)] + [
        (("constraints", m), m) for m in tune.constraints
    ]:
        try:
            metrics.append(parse_metric(text))
        except ValueError as err:
            raise _tune_error(tune.doc, loc, str(err)) from None
    items = [dict(item, scenario=str(_scenario_path(tune, item))) for item in data["portfolio"]]
    portfolio = load_portfolio(items, Path(), tune.doc, ("portfolio",), stream=0)
    policy, warnings = load_policy_with_warnings(policy_paths)
    if tune.status != "done":
        warnings.append(f"{tune.folder}: the tune is still {tune.status}: its frontier may still improve")
    return FrontierSetup(gate, tune, portfolio, policy, tuple(metrics), tuple(warnings))


def check_frontier(
    setup: FrontierSetup,
    *,
    confidence: float = 0.95,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> FrontierCheck:
    """Run the policy on the tune's portfolio and judge it against the frontier.

    The policy runs runs 0..N-1 of each portfolio scenario on the search's stream with the
    tune's seed: the runs every frontier candidate was estimated on (N: the gate's ``runs``,
    by default the tune's last rung).

    Args:
        setup: from :func:`load_frontier`.
        confidence: level of the policy's intervals.
        workers: processes (results do not depend on it).
        progress: called with a short line once the policy has run.
    """
    from sim.tuning.metrics import estimates, meets
    from sim.tuning.portfolio import evaluate

    tune, gate = setup.tune, setup.gate
    runs = gate.runs or tune.last_rung
    frame = evaluate(setup.policy, setup.portfolio, 0, runs, tune.seed, workers=workers)
    found = estimates(frame, setup.portfolio.weights, setup.metrics, confidence=confidence, seed=tune.seed)
    unmet = tuple(
        f"{m} {_limit(m, b)} ({'upper' if 'max' in b else 'lower'} end "
        f"{_value_text(m, found[m].high if 'max' in b else found[m].low)})"
        for m, b in tune.constraints.items()
        if not meets(found[m], b)
    )
    if progress is not None:
        progress(
            f"frontier {tune.name}: {len(setup.portfolio.entries)} portfolio scenarios x {runs} runs, seed {tune.seed}"
        )
    return FrontierCheck(
        tune=tune,
        margin=gate.margin,
        policy=setup.policy.name,
        runs=runs,
        rollouts=len(frame),
        estimates=found,
        candidates=dominance(found, tune, gate.margin),
        unmet=unmet,
        warnings=list(setup.warnings),
    )
