"""A sweep file expanded into worlds, cells and chunks.

* A **world** is one scenario as simulated: a base scenario with the sweep's scenario-side
  values set (grid/cases paths not under ``policy.``, a portfolio kind, a severity
  stratum). World *w*'s replicate *k* has the seed ``run_seed(root, w, k)``, i.e.
  ``SeedSequence(root, spawn_key=(w, k))``: it never depends on the policy, so every
  policy of a world meets the same traffic and faults (common random numbers). World 0
  is the first base scenario as written, so its runs are ``pdsim run``'s runs.
* A **cell** is a world under one policy (a policy of the sweep with the ``policy.``
  values of the grid point set): ``runs`` replicates.
* A **chunk** is a range of a cell's replicates, simulated as one task and stored as one
  Parquet file.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.errors import NOT_GIVEN, InputError, field_path
from sim.inputs.policy import build_policy, read_policy
from sim.inputs.scenario import PolicySpec, Scenario, parse_scenario
from sim.inputs.validation import validation_to_input_error
from sim.limits import MAX_SWEEP_CELLS, MAX_SWEEP_ROLLOUTS
from sim.policies.base import Policy
from sim.sweeps.spec import SweepFile, file_sha256, parse_path
from sim.yamlio import YamlDoc, load_yaml

#: First spawn-key word of the severity draws; run seeds use (world, replicate) keys and
#: no sweep has this many worlds, so the streams never meet.
SEVERITY_KEY = 2**31 - 1


@dataclass(frozen=True)
class World:
    """One simulated scenario of a sweep (see the module docstring)."""

    index: int
    scenario: Scenario
    source: str
    kind: str | None
    stratum: int | None
    weight: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """A world under one policy; ``params`` holds every swept value of the cell."""

    index: int
    world: int
    policy: Policy
    params: dict[str, Any]

    @property
    def policy_name(self) -> str:
        return self.policy.name


@dataclass(frozen=True)
class Chunk:
    """Replicates ``start .. stop-1`` of a cell: one task, one Parquet file."""

    cell: int
    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"records-c{self.cell:05d}-{self.index:05d}.parquet"


@dataclass
class Plan:
    """Everything a sweep simulates, in a fixed order."""

    name: str
    worlds: list[World]
    cells: list[Cell]
    runs: int
    seed: int
    chunk_size: int
    params: list[str]
    inputs: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every chunk, cell by cell, made as it is needed (a sweep may hold millions)."""
        for c in self.cells:
            for i, a in enumerate(range(0, self.runs, self.chunk_size)):
                yield Chunk(c.index, i, a, min(a + self.chunk_size, self.runs))

    def chunks(self) -> list[Chunk]:
        """Every chunk as a list (``iter_chunks`` for large sweeps)."""
        return list(self.iter_chunks())

    @property
    def n_chunks(self) -> int:
        """How many chunks (files) the sweep has."""
        return len(self.cells) * -(-self.runs // self.chunk_size)

    @property
    def rollouts(self) -> int:
        return len(self.cells) * self.runs

    def cells_table(self) -> list[dict[str, Any]]:
        """One JSON-safe row per cell: what manifest.json records and results are joined with."""
        return [
            {
                "cell": c.index,
                "world": c.world,
                "scenario": self.worlds[c.world].scenario.name,
                "policy": c.policy_name,
                "kind": self.worlds[c.world].kind,
                "stratum": self.worlds[c.world].stratum,
                "weight": self.worlds[c.world].weight,
                "params": {k: _json_value(v) for k, v in c.params.items()},
            }
            for c in self.cells
        ]


def _json_value(v: Any) -> Any:
    return v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v, sort_keys=True)


def set_path(data: Any, parts: tuple[str | int, ...], value: Any) -> Any:
    """A deep copy of ``data`` with ``value`` at ``parts`` (missing mapping keys are created).

    Raises:
        ValueError: an index past a list's end, or a step into a value that is not a
            mapping or a list.
    """
    out = copy.deepcopy(data) if data is not None else {}
    node: Any = out  # a mapping or a list, checked step by step below
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = field_path(parts[:i]) or "the top level"
        if isinstance(part, int):
            if not isinstance(node, list):
                raise ValueError(f"{where} is not a list")
            if part >= len(node):
                raise ValueError(f"{where} has {len(node)} item(s), no [{part}]")
        elif not isinstance(node, dict):
            raise ValueError(f"{where} is not a mapping")
        if last:
            node[part] = copy.deepcopy(value)
        else:
            if isinstance(part, str) and part not in node:
                node[part] = {}
            node = node[part]
    return out


@dataclass(frozen=True)
class _Setting:
    """A value the sweep file sets at a PATH, and where it says so (for messages)."""

    loc: tuple
    path: tuple[str | int, ...]
    value: Any


class _Expander:
    def __init__(self, sweep: SweepFile, runs: int | None, seed: int | None) -> None:
        self.sweep = sweep
        self.spec = sweep.spec
        self.runs = self.spec.runs if runs is None else runs
        self.seed = self.spec.seed if seed is None else seed
        self.inputs: dict[str, str] = {sweep.path: sweep.sha256}
        self.warnings: list[str] = []
        self._scenarios: list[tuple[str, YamlDoc]] = []
        self._policies: dict[tuple, Policy] = {}

    # -- reading the files the sweep names ------------------------------------------------
    def _file(self, loc: tuple, rel: str) -> str:
        path = self.sweep.base / rel
        if not os.path.exists(path):  # False too for a name the system refuses (too long)
            raise self.sweep.error(loc, f"no such file or directory: {path}")
        return str(path)

    def _remember(self, path: str) -> None:
        p = Path(path)
        files = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
        for f in files:
            self.inputs[str(f)] = file_sha256(f)

    def load_scenarios(self) -> None:
        for i, rel in enumerate(self.spec.scenario_paths):
            loc = ("scenario",) if self.spec.scenario is not None else ("scenarios", i)
            path = self._file(loc, rel)
            doc = load_yaml(path, what="scenario file")
            parse_scenario(doc)  # the base must be valid on its own: errors point into it
            self._remember(path)
            self._scenarios.append((path, doc))

    def policy_sources(self) -> list[tuple[str, dict[str, Any], YamlDoc | None]]:
        """(name, pdsim policy mapping, doc for messages) of each listed policy."""
        out: list[tuple[str, dict[str, Any], YamlDoc | None]] = []
        for i, entry in enumerate(self.spec.policies or []):
            loc = ("policies", i)
            if isinstance(entry, dict):
                data = {k: v for k, v in entry.items() if k != "name"}
                name = str(entry.get("name") or f"policy-{i}")
                try:
                    PolicySpec.model_validate(data)
                except ValidationError as err:
                    raise validation_to_input_error(err, self.sweep.doc, loc) from None
                out.append((name, data, None))
                continue
            rels = entry if isinstance(entry, list) else [entry]
            paths = [self._file(loc + ((j,) if isinstance(entry, list) else ()), r) for j, r in enumerate(rels)]
            loaded = read_policy(paths)
            self.warnings += list(loaded.warnings)
            for p in paths:
                self._remember(p)
            out.append((loaded.name, loaded.data, None))
        # Two policies of one name (two manifests of a Canary "podinfo") would pool their
        # results: later ones get their position as a suffix.
        seen: set[str] = set()
        for i, (name, data, doc) in enumerate(out):
            if name in seen:
                out[i] = (f"{name}#{i}", data, doc)
            seen.add(out[i][0])
        return out

    # -- applying settings -------------------------------------------------------------------
    def _key_loc(self, setting: _Setting) -> tuple:
        """Where the sweep file names the PATH of a setting (a grid value's key)."""
        return setting.loc[:2] if setting.loc[0] == "grid" else setting.loc

    def _fail(self, setting: _Setting, inner: InputError, root: tuple) -> InputError:
        own = field_path(setting.path[len(root) :])
        if inner.message == "unknown key" and inner.field == own:
            return self.sweep.error(self._key_loc(setting), "unknown key", got=field_path(setting.path))
        message = f"{inner.field}: {inner.message}" if inner.field and inner.field != own else inner.message
        got = {"got": inner.got} if inner.got is not NOT_GIVEN else {"got": setting.value}
        return self.sweep.error(setting.loc, message, **got)

    def _apply(self, data: Any, settings: list[_Setting], validate: Any, root: tuple = ()) -> Any:
        """``validate`` of ``data`` with every setting applied; an error names the sweep
        file's line of the setting that causes it (tried alone), else of the first one."""

        def build(chosen: list[_Setting]) -> Any:
            out = data
            for s in chosen:
                try:
                    out = set_path(out, s.path[len(root) :], s.value)
                except ValueError as err:
                    raise self.sweep.error(self._key_loc(s), str(err), got=field_path(s.path)) from None
            return validate(out)

        try:
            return build(settings)
        except InputError as err:
            if err.file == self.sweep.path or not settings:
                raise
            for s in settings:
                try:
                    build([s])
                except InputError as alone:
                    if alone.file == self.sweep.path:
                        raise
                    raise self._fail(s, alone, root) from None
            raise self._fail(settings[0], err, root) from None

    def world_scenario(self, path: str, doc: YamlDoc, settings: list[_Setting]) -> Scenario:
        return self._apply(doc.data, settings, lambda d: parse_scenario(YamlDoc(d, doc.file, doc.lines)))

    def policy(self, key: tuple, name: str, data: dict[str, Any], settings: list[_Setting]) -> Policy:
        cache = (key, tuple((s.path, json.dumps(s.value, sort_keys=True, default=str)) for s in settings))
        hit = self._policies.get(cache)
        if hit is not None:
            return hit
        holder = YamlDoc(data, f"{name} (policy)", {})

        def validate(d: Any) -> PolicySpec:
            try:
                return PolicySpec.model_validate(d)
            except ValidationError as err:
                raise validation_to_input_error(err, YamlDoc(d, holder.file, {})) from None

        spec = self._apply(data, settings, validate, root=("policy",))
        if spec.manifest is not None:
            raise self.sweep.error(
                settings[0].loc if settings else ("policies",),
                "a manifest policy is read from its files: list it under policies",
            )
        label = name + (
            "{" + ",".join(f"{self._short(s.path)}={_json_value(s.value)}" for s in settings) + "}" if settings else ""
        )
        built = self._policies[cache] = build_policy(spec, name=label)
        return built

    def _short(self, path: tuple[str | int, ...]) -> str:
        """A policy path as policy labels show it: its last key when no other swept policy
        path ends the same way (``threshold``), else in full (``flagger.analysis.threshold``)."""
        swept = {parse_path(k) for k in self.spec.grid} | {parse_path(k) for c in self.spec.cases for k in c}
        last = [p for p in swept if p[0] == "policy" and p[-1] == path[-1]]
        return str(path[-1]) if len(last) == 1 and isinstance(path[-1], str) else field_path(path[1:])

    def own_policy(self, path: str, scenario: Scenario, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A scenario's own policy as (name, pdsim policy mapping)."""
        if scenario.policy is None:
            raise self.sweep.error(
                ("scenario",) if self.spec.scenario else ("scenarios",),
                f"{path} has no policy: list policies in the sweep file",
            )
        if scenario.policy.manifest is not None:
            values = scenario.policy.manifest
            paths = [str(Path(path).parent / v) for v in (values if isinstance(values, list) else [values])]
            loaded = read_policy(paths)
            self.warnings += list(loaded.warnings)
            for p in paths:
                self._remember(p)
            return loaded.name, loaded.data
        kind = "flagger-canary" if scenario.policy.flagger is not None else "argo-rollout"
        return f"{data.get('name')}/{kind}", data["policy"]

    # -- the grid ----------------------------------------------------------------------------
    def points(self) -> list[list[_Setting]]:
        grid = [
            [_Setting(("grid", k, i), parse_path(k), v) for i, v in enumerate(vals)]
            for k, vals in self.spec.grid.items()
        ]
        cases = [
            [_Setting(("cases", i, k), parse_path(k), v) for k, v in case.items()]
            for i, case in enumerate(self.spec.cases)
        ] or [[]]
        out = []
        for case in cases:
            for combo in itertools.product(*grid):
                keys = [s.path for s in case]
                dup = next((s for s in combo if s.path in keys), None)
                if dup is not None:
                    raise self.sweep.error(dup.loc[:2], "set by both grid and cases", got=field_path(dup.path))
                out.append(case + list(combo))
        return out

    def kinds(self) -> list[tuple[str | None, int | None, float | None, list[_Setting], dict[str, Any]]]:
        """(kind, stratum, world weight, settings, swept values) of each portfolio world."""
        if not self.spec.portfolio:
            return [(None, None, None, [], {})]
        out: list[tuple[str | None, int | None, float | None, list[_Setting], dict[str, Any]]] = []
        for i, kind in enumerate(self.spec.portfolio):
            base = [_Setting(("portfolio", i, "set", k), parse_path(k), v) for k, v in kind.set.items()]
            for s in range(kind.strata):
                settings, values = list(base), {}
                if kind.severity is not None:
                    ss = np.random.SeedSequence(self.seed, spawn_key=(SEVERITY_KEY, i, s))
                    u = (s + float(np.random.Generator(np.random.PCG64(ss)).random())) / kind.strata
                    value = kind.severity.quantile(u)
                    settings.append(_Setting(("portfolio", i, "severity"), parse_path(kind.severity.path), value))
                    values[kind.severity.path] = value
                out.append(
                    (kind.name, s if kind.severity is not None else None, kind.weight / kind.strata, settings, values)
                )
        return out


def count_cells(sweep: SweepFile) -> tuple[int, str]:
    """How many cells the sweep expands to, counted from its axes without expanding
    them, and the product that gives it (for messages).

    Scenarios x portfolio worlds (a kind's strata each) x grid points (cases x the grid's
    value lists) x policies.
    """
    spec = sweep.spec
    axes = {
        "scenarios": len(spec.scenario_paths),
        "releases": sum(k.strata for k in spec.portfolio) or 1,
        "cases": len(spec.cases) or 1,
        **{f"grid {k}": len(v) for k, v in spec.grid.items()},
        "policies": len(spec.policies or []) or 1,
    }
    shown = " x ".join(f"{n:,} {name}" for name, n in axes.items() if n != 1) or "1"
    return math.prod(axes.values()), shown


def check_size(sweep: SweepFile, runs: int | None = None) -> None:
    """Refuse a sweep that cannot finish, before anything is expanded or read: more than
    ``limits.MAX_SWEEP_CELLS`` cells, or more than ``limits.MAX_SWEEP_ROLLOUTS`` rollouts.

    Args:
        sweep: the loaded sweep file.
        runs: replicates per cell given on the command line (``--runs``), else None.

    Raises:
        InputError: naming the sweep file's line of the axis (or ``runs``) and the size.
    """
    spec = sweep.spec
    cells, shown = count_cells(sweep)
    if cells > MAX_SWEEP_CELLS:
        loc = ("grid",) if spec.grid else ("cases",) if spec.cases else ("portfolio",) if spec.portfolio else ()
        raise sweep.error(loc, f"the sweep expands to {cells:,} cells ({shown}); at most {MAX_SWEEP_CELLS:,}")
    per_cell = spec.runs if runs is None else runs
    if cells * per_cell > MAX_SWEEP_ROLLOUTS:
        given = "" if runs is None else " (--runs)"
        raise sweep.error(
            ("runs",),
            f"{cells:,} cells x {per_cell:,} runs{given} = {cells * per_cell:,} rollouts; "
            f"at most {MAX_SWEEP_ROLLOUTS:,} in one sweep",
        )


def expand(
    sweep: SweepFile, *, runs: int | None = None, seed: int | None = None, chunk_size: int | None = None
) -> Plan:
    """The plan of a sweep file: worlds, cells and chunks in a fixed order.

    Args:
        sweep: the loaded sweep file.
        runs: replicates per cell (default: the file's ``runs``).
        seed: root seed (default: the file's ``seed``).
        chunk_size: replicates per chunk (default: the file's ``chunk_size``).

    Raises:
        InputError: naming the sweep file's line (or the scenario/policy file's) of the
            first problem.
    """
    check_size(sweep, runs)
    ex = _Expander(sweep, runs, seed)
    ex.load_scenarios()
    sources = ex.policy_sources() if sweep.spec.policies else None
    worlds: list[World] = []
    cells: list[Cell] = []
    world_keys: dict[tuple, int] = {}
    params: dict[str, None] = {}
    for si, (path, doc) in enumerate(ex._scenarios):
        for kind, stratum, weight, kind_settings, kind_values in ex.kinds():
            for point in ex.points():
                side = [s for s in point if s.path[0] != "policy"]
                pol = [s for s in point if s.path[0] == "policy"]
                key = (
                    si,
                    kind,
                    stratum,
                    tuple((s.path, json.dumps(s.value, sort_keys=True, default=str)) for s in side),
                )
                values = {**kind_values, **{field_path(s.path): s.value for s in point}}
                params.update(dict.fromkeys(values))
                if key not in world_keys:
                    # A portfolio world is named after its kind: records say which release it was.
                    named = [_Setting(("portfolio",), ("name",), f"{doc.data.get('name')}/{kind}")] if kind else []
                    scenario = ex.world_scenario(path, doc, kind_settings + side + named)
                    world_keys[key] = len(worlds)
                    worlds.append(
                        World(
                            len(worlds),
                            scenario,
                            path,
                            kind,
                            stratum,
                            weight,
                            {**kind_values, **{field_path(s.path): s.value for s in side}},
                        )
                    )
                world = worlds[world_keys[key]]
                if sources is None:
                    # Scenario-side settings never touch `policy:`: the file's own mapping.
                    name, pdata = ex.own_policy(path, world.scenario, doc.data)
                    policies = [
                        ex.policy(("own", si, json.dumps(pdata, sort_keys=True, default=str)), name, pdata, pol)
                    ]
                else:
                    policies = [
                        ex.policy(("listed", pi), name, pdata, pol) for pi, (name, pdata, _) in enumerate(sources)
                    ]
                for policy in policies:
                    cells.append(Cell(len(cells), world.index, policy, values))
    chunk = sweep.spec.chunk_size if chunk_size is None else chunk_size
    return Plan(
        sweep.name(), worlds, cells, ex.runs, ex.seed, chunk, list(params), ex.inputs, list(dict.fromkeys(ex.warnings))
    )


__all__ = ["Cell", "Chunk", "Plan", "World", "check_size", "count_cells", "expand", "set_path"]
