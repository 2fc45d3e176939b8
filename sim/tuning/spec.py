"""TUNE files: what ``pdsim tune`` searches, read with file/line error messages.

::

    name: flagger-default            # optional; default the file's stem
    base: canary.yaml                # a policy PATH as --policy takes it, or a list of them
    space:                           # PATH (rooted at policy.) -> a distribution (sim.tuning.space)
      policy.flagger.analysis.interval: {choices: [15s, 30s, 1m, 2m]}
      policy.flagger.analysis.stepWeight: {low: 2, high: 50}
    portfolio:                       # scenario files and weights (summing to 1)
      - {scenario: good.yaml, weight: 0.9, name: good}
      - {scenario: error-spike.yaml, weight: 0.1}
    validation: {portfolio: [...], runs: 2000}     # optional fresh-seed check
    objectives: [excess_errors.mean, detection_time_s.median]
    constraints: {false_rollback_rate: {max: 0.01}}
    budget: 200
    seed: 1
    racing: {min_runs: 40, max_runs: 1000, eta: 3}
    pick: balanced                   # or an objective's name
    confidence: 0.95

Relative paths are relative to the file. Everything a search needs is read and checked
here, before anything is simulated: the base policy, the portfolio's scenarios, the metric
names, and that both ends of every range and every choice build a valid policy from the
base (an error names this file's line of the space key).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from sim.errors import NOT_GIVEN, InputError, field_path
from sim.inputs.policy import LoadedPolicy, build_policy, read_policy
from sim.inputs.scenario import PolicySpec
from sim.inputs.validation import validate_document, validation_to_input_error
from sim.limits import MAX_RUNS, MAX_SWEEP_ROLLOUTS
from sim.models import RunCount, Seed, StrictModel, Text, field_error
from sim.sweeps.plan import set_path
from sim.sweeps.spec import file_sha256, parse_path
from sim.tuning.metrics import MetricName, parse_metric
from sim.tuning.portfolio import Portfolio, load_portfolio, rung_runs
from sim.tuning.space import Param, Space, make_param
from sim.yamlio import YamlDoc, load_yaml

#: Most candidate policies one search may ask for.
MAX_BUDGET = 100_000
#: The pick rule that balances every objective against the base (see ``sim.tuning.search``).
BALANCED = "balanced"

_Number = StrictInt | float
_Path = Annotated[str, Field(min_length=1)]


class Distribution(StrictModel):
    """A space key's values: ``{low, high}`` (with ``log``, ``step``, ``format``) or ``{choices}``."""

    low: _Number | None = None
    high: _Number | None = None
    log: bool = False
    step: Annotated[_Number, Field(gt=0)] | None = None
    choices: list[Any] | None = None
    format: str | None = None

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Distribution:
        if self.choices is not None:
            extra = [k for k in ("low", "high", "step", "format") if getattr(self, k) is not None] + (
                ["log"] if self.log else []
            )
            if extra:
                raise field_error("Distribution", (extra[0],), "give either choices or low and high", None)
            if not self.choices:
                raise field_error("Distribution", ("choices",), "give at least one choice", self.choices)
            return self
        for end in ("low", "high"):
            if getattr(self, end) is None:
                raise field_error("Distribution", (end,), "give low and high (or choices)", None)
        assert self.low is not None and self.high is not None
        if not self.low <= self.high:
            raise field_error("Distribution", ("high",), f"must be at least low ({self.low})", self.high)
        if not math.isfinite(self.high - self.low):
            raise field_error("Distribution", ("high",), "the range spans more than the largest float", self.high)
        if self.log and self.low <= 0:
            raise field_error("Distribution", ("low",), "log: true needs low > 0", self.low)
        if self.log and self.step is not None:
            raise field_error("Distribution", ("step",), "give log or step, not both", self.step)
        if self.format is not None and self.format.count("{}") != 1:
            raise field_error("Distribution", ("format",), "must hold {} once, where the number goes", self.format)
        return self


class Bound(StrictModel):
    """A constraint: ``{max: x}`` and/or ``{min: x}`` on a metric's interval."""

    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if self.max is None and self.min is None:
            raise ValueError("give max or min")
        return self

    def as_dict(self) -> dict[str, float]:
        """The bound as written (``{"max": 0.01}``)."""
        return {k: v for k, v in (("max", self.max), ("min", self.min)) if v is not None}


class Racing(StrictModel):
    """Successive halving: runs per portfolio scenario at the first and the last rung, and
    the factor between rungs (1/eta of the candidates go on)."""

    min_runs: Annotated[int, Field(ge=2, le=MAX_RUNS)] = 40
    max_runs: Annotated[int, Field(ge=2, le=MAX_RUNS)] = 1000
    eta: Annotated[int, Field(ge=2, le=100)] = 3

    @model_validator(mode="after")
    def _order(self) -> Racing:
        if self.max_runs < self.min_runs:
            raise field_error("Racing", ("max_runs",), f"must be at least min_runs ({self.min_runs})", self.max_runs)
        return self

    def rungs(self) -> list[int]:
        """Runs per scenario at each rung: min_runs, x eta each rung, the last max_runs."""
        return rung_runs(self.min_runs, self.max_runs, self.eta)


class Release(StrictModel):
    """A portfolio entry: a scenario file, how often such a release comes, a name."""

    scenario: Annotated[str, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0, le=1)]
    name: Annotated[Text, Field(min_length=1)] | None = None


class Validation(StrictModel):
    """The fresh-seed check: other releases (default: the search's) and runs per scenario."""

    portfolio: Annotated[list[Release], Field(min_length=1)] | None = None
    runs: RunCount | None = None


class TuneSpec(StrictModel):
    """The validated content of a TUNE file (paths still as written)."""

    name: Text | None = None
    description: Text = ""
    base: _Path | Annotated[list[_Path], Field(min_length=1)]
    space: Annotated[dict[str, Distribution], Field(min_length=1)]
    portfolio: Annotated[list[Release], Field(min_length=1)]
    validation: Validation | None = None
    objectives: Annotated[list[str], Field(min_length=1)]
    constraints: dict[str, Bound] = {}
    budget: Annotated[int, Field(ge=1, le=MAX_BUDGET)] = 100
    seed: Seed = 0
    racing: Racing = Racing()
    pick: str = BALANCED
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95


@dataclass(frozen=True)
class Constraint:
    """A constraint of a search: its metric and bound."""

    metric: MetricName
    bound: dict[str, float]

    @property
    def name(self) -> str:
        return str(self.metric)


class TuneFile:
    """A TUNE file, read and checked: its spec, its YAML (for lines), and what it names.

    Attributes:
        path: the file as given.
        doc: the loaded YAML document.
        spec: the validated spec.
        sha256: hex digest of the file's bytes.
        base_paths: the base's policy paths, relative to the working directory.
        base: the base policy as read (``.data`` is its pdsim policy mapping).
        space: the parameters.
        portfolio: the search portfolio (stream 0).
        validation: the validation portfolio (stream 1: seeds never used in the search).
        objectives: the objectives' metrics, in order.
        constraints: the constraints, in order.
    """

    def __init__(self, path: str, doc: YamlDoc, spec: TuneSpec, sha256: str) -> None:
        self.path = path
        self.doc = doc
        self.spec = spec
        self.sha256 = sha256
        self.base_paths: list[str] = []
        self.base: LoadedPolicy
        self.space: Space
        self.portfolio: Portfolio
        self.validation: Portfolio
        self.objectives: list[MetricName] = []
        self.constraints: list[Constraint] = []

    @property
    def folder(self) -> Path:
        """The directory relative paths in the file are read from."""
        return Path(self.path).parent

    @property
    def name(self) -> str:
        """The search's name: ``name:``, else the file's stem."""
        return self.spec.name or Path(self.path).stem

    @property
    def rungs(self) -> list[int]:
        """Runs per portfolio scenario at each racing rung."""
        return self.spec.racing.rungs()

    @property
    def validation_runs(self) -> int:
        """Runs per validation scenario (default: twice the last rung's)."""
        given = self.spec.validation.runs if self.spec.validation is not None else None
        return given if given is not None else min(2 * self.rungs[-1], MAX_RUNS)

    @property
    def metrics(self) -> list[MetricName]:
        """Every metric a candidate is judged by: objectives, then constraints (once each)."""
        seen: dict[str, MetricName] = {}
        for m in [*self.objectives, *(c.metric for c in self.constraints)]:
            seen.setdefault(str(m), m)
        return list(seen.values())

    def error(self, loc: tuple, message: str, **got: Any) -> InputError:
        """An InputError at the line of ``loc`` in this file."""
        return InputError(self.path, self.doc.line_of(loc), self.doc.field_path(loc), message, **got)

    def with_runs(self, min_runs: int, max_runs: int, validation_runs: int | None = None) -> TuneFile:
        """The same search on fewer (or more) runs: a quick look from a notebook or a test.

        Its ``sha256`` says so, so that ``--resume`` never mixes it with the file's own runs.
        """
        import copy

        racing = Racing(min_runs=min_runs, max_runs=max_runs, eta=self.spec.racing.eta)
        validation = (self.spec.validation or Validation()).model_copy(update={"runs": validation_runs})
        out = copy.copy(self)
        out.spec = self.spec.model_copy(update={"racing": racing, "validation": validation})
        out.sha256 = f"{self.sha256}+runs:{min_runs}:{max_runs}:{validation_runs}"
        return out


def _base(tune: TuneFile) -> None:
    given = tune.spec.base
    rels = [given] if isinstance(given, str) else list(given)
    paths = []
    for i, rel in enumerate(rels):
        loc = ("base",) if isinstance(given, str) else ("base", i)
        path = tune.folder / rel
        if not os.path.exists(path):  # False too for a name the system refuses (too long)
            raise tune.error(loc, f"no such file or directory: {path}")
        paths.append(str(path))
    tune.base_paths = paths
    tune.base = read_policy(paths)


def _metric(tune: TuneFile, loc: tuple, text: str) -> MetricName:
    try:
        return parse_metric(text)
    except ValueError as err:
        raise tune.error(loc, str(err), got=text) from None


def _metrics(tune: TuneFile) -> None:
    spec = tune.spec
    tune.objectives = [_metric(tune, ("objectives", i), t) for i, t in enumerate(spec.objectives)]
    texts = [str(m) for m in tune.objectives]
    for i, t in enumerate(texts):
        if t in texts[:i]:
            raise tune.error(("objectives", i), "listed twice", got=t)
    tune.constraints = [
        Constraint(_metric(tune, ("constraints", k), k), b.as_dict()) for k, b in spec.constraints.items()
    ]
    if spec.pick != BALANCED and spec.pick not in texts:
        shown = ", ".join([BALANCED, *texts])
        raise tune.error(("pick",), f"must be {BALANCED} or one of the objectives ({shown})", got=spec.pick)


def _space_error(tune: TuneFile, loc: tuple, param: Param, inner: InputError, value: Any) -> InputError:
    """A policy's validation error from a space value, at the TUNE file's line of it."""
    own = field_path(param.parts[1:])
    if inner.message == "unknown key" and inner.field == own:
        return tune.error(loc[:2], "unknown key in the base policy", got=param.path)
    message = f"{inner.field}: {inner.message}" if inner.field and inner.field != own else inner.message
    return tune.error(loc, message, got=inner.got if inner.got is not NOT_GIVEN else value)


def check_value(tune: TuneFile, param: Param, loc: tuple, value: Any) -> None:
    """Build the base policy with ``value`` at ``param``'s field.

    Raises:
        InputError: at ``loc`` in the TUNE file, saying what the policy makes of it.
    """
    try:
        data = set_path(tune.base.data, param.parts[1:], value)
    except ValueError as err:
        raise tune.error(loc[:2], str(err), got=param.path) from None
    holder = YamlDoc(data, f"{tune.base.name} (policy)", {})
    try:
        try:
            spec = PolicySpec.model_validate(data)
        except ValidationError as err:
            raise validation_to_input_error(err, holder) from None
        if spec.manifest is not None:
            raise InputError(holder.file, 1, "manifest", "a tuned policy cannot name manifests")
        build_policy(spec, name=tune.base.name)
    except InputError as inner:
        raise _space_error(tune, loc, param, inner, value) from None
    except ValueError as err:
        raise tune.error(loc, str(err), got=value) from None


def _space(tune: TuneFile) -> None:
    params = []
    for key, dist in tune.spec.space.items():
        loc = ("space", key)
        try:
            parts = parse_path(key)
        except ValueError as err:
            raise tune.error(loc, str(err), got=key) from None
        if parts[0] != "policy" or len(parts) < 2:
            raise tune.error(loc, "a space PATH is a policy field: it starts with policy.", got=key)
        param = make_param(key, dist.model_dump(exclude_defaults=True))
        for where, value in param.ends():
            check_value(tune, param, loc + where, value)
        params.append(param)
    tune.space = Space(tuple(params))


def _portfolios(tune: TuneFile) -> None:
    spec = tune.spec
    items = [r.model_dump() for r in spec.portfolio]
    tune.portfolio = load_portfolio(items, tune.folder, tune.doc, ("portfolio",), stream=0)
    fresh = spec.validation.portfolio if spec.validation is not None else None
    if fresh is None:
        tune.validation = load_portfolio(items, tune.folder, tune.doc, ("portfolio",), stream=1)
    else:
        rows = [r.model_dump() for r in fresh]
        tune.validation = load_portfolio(rows, tune.folder, tune.doc, ("validation", "portfolio"), stream=1)


def _sizes(tune: TuneFile) -> None:
    """Refuse a search that cannot finish: more rollouts than a sweep may hold."""
    spec = tune.spec
    rungs = tune.rungs
    n, total, before = spec.budget, 0, 0
    for runs in rungs:
        total += (n + 1) * (runs - before) * len(tune.portfolio.entries)
        n, before = max(1, math.ceil(n / spec.racing.eta)), runs
    if total > MAX_SWEEP_ROLLOUTS:
        raise tune.error(
            ("budget",),
            f"the search needs up to {total:,} rollouts; at most {MAX_SWEEP_ROLLOUTS:,}: lower budget or racing runs",
        )


def load_tune(path: str | os.PathLike[str]) -> TuneFile:
    """Read and check a TUNE file and every file it names.

    Raises:
        InputError: one line naming the file, the line and the field of the first problem
            (a policy or scenario file's own problems name that file).
    """
    doc = load_yaml(path, what="TUNE file")
    spec = validate_document(doc, TuneSpec, "a TUNE file must be a mapping (base, space, portfolio, objectives, ...)")
    tune = TuneFile(str(path), doc, spec, file_sha256(path))
    _metrics(tune)
    _base(tune)
    _space(tune)
    _portfolios(tune)
    _sizes(tune)
    return tune


__all__ = [
    "BALANCED",
    "MAX_BUDGET",
    "Bound",
    "Constraint",
    "Distribution",
    "Racing",
    "Release",
    "TuneFile",
    "TuneSpec",
    "Validation",
    "check_value",
    "load_tune",
]
